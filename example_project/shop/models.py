"""A small shop: customers sign up, sign contracts that get validated, and receive emails."""

from __future__ import annotations

from django.db import models


class Customer(models.Model):
    """Someone who signed up."""

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=200)
    signed_up_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.email


class Contract(models.Model):
    """A contract a customer signs; it becomes effective once validated by the sales team."""

    class Plan(models.TextChoices):
        BASIC = "basic", "Basic"
        PRO = "pro", "Pro"
        ENTERPRISE = "enterprise", "Enterprise"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="contracts")
    reference = models.CharField(max_length=32, unique=True)
    plan = models.CharField(max_length=16, choices=Plan.choices)
    value = models.DecimalField(max_digits=10, decimal_places=2)
    discount_code = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(db_index=True)
    validated_at = models.DateTimeField(null=True, blank=True, db_index=True)

    def __str__(self) -> str:
        return self.reference


class EmailMessage(models.Model):
    """An email the shop sent."""

    class Type(models.TextChoices):
        WELCOME = "welcome", "Welcome"
        REMINDER = "reminder", "Contract reminder"
        CONTRACT_VALIDATED = "contract_validated", "Contract validated"
        NEWSLETTER = "newsletter", "Newsletter"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="emails")
    type = models.CharField(max_length=32, choices=Type.choices)
    date_sent = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.type} to {self.customer_id} at {self.date_sent:%Y-%m-%d %H:%M}"
