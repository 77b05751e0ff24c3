from django.contrib import admin

from .models import Contract, Customer, EmailMessage


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["email", "name", "signed_up_at"]
    date_hierarchy = "signed_up_at"


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    list_display = ["reference", "customer", "plan", "value", "created_at", "validated_at"]
    list_filter = ["plan"]
    date_hierarchy = "created_at"


@admin.register(EmailMessage)
class EmailMessageAdmin(admin.ModelAdmin):
    list_display = ["type", "customer", "date_sent"]
    list_filter = ["type"]
    date_hierarchy = "date_sent"
