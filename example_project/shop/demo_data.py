"""Deterministic demo data: the same seed and number of days give the same shop, shifted to today.

Data covers the ``days`` complete local days before today (in ``TIME_ZONE``), so that every day
created is also a day ``smolqwery_extract`` exports (it never exports today, which is not over).
All events fall between 07:00 and 23:59 local time, away from daylight-saving transitions.
"""

from __future__ import annotations

import dataclasses
import datetime
import random
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import Contract, Customer, EmailMessage

PRICES = {
    Contract.Plan.BASIC: Decimal("240.00"),
    Contract.Plan.PRO: Decimal("890.00"),
    Contract.Plan.ENTERPRISE: Decimal("4800.00"),
}
PLAN_WEIGHTS = (60, 30, 10)
DISCOUNT_CODE = "WELCOME10"
NEWSLETTER_WEEKDAY = 1  # Tuesday
FIRST_NAMES = ("Alice", "Bruno", "Chloé", "David", "Emma", "Farid", "Gaëlle", "Hugo", "Inès")
LAST_NAMES = ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Petit", "Durand", "Leroy")


@dataclasses.dataclass(frozen=True)
class DemoSummary:
    first_day: datetime.date
    last_day: datetime.date
    customers: int
    contracts: int
    validated: int
    emails: int


def _at(day: datetime.date, seconds: int, tz: datetime.tzinfo) -> datetime.datetime:
    """Local wall time ``seconds`` after midnight on ``day`` (only called for 07:00-23:59)."""
    return datetime.datetime.combine(day, datetime.time(), tz) + datetime.timedelta(seconds=seconds)


@transaction.atomic
def generate(
    days: int, seed: int, today: datetime.date | None = None, tz: datetime.tzinfo | None = None
) -> DemoSummary:
    """Replace the shop's data with ``days`` days of activity before ``today``."""
    if days < 1:
        raise ValueError("days must be at least 1")
    tz = tz or ZoneInfo(settings.TIME_ZONE)
    today = today or timezone.localdate(timezone=tz)
    first_day = today - datetime.timedelta(days=days)
    end = datetime.datetime.combine(today, datetime.time(), tz)  # nothing at or after this
    rng = random.Random(seed)  # noqa: S311 - demo data, not security

    Customer.objects.all().delete()  # cascades to contracts and emails

    customers: list[Customer] = []
    for index in range(days):
        day = first_day + datetime.timedelta(days=index)
        for _ in range(rng.randint(3, 8) + index // 6):
            n = len(customers) + 1
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            signed_up = _at(day, rng.randint(7 * 3600, 23 * 3600), tz)
            customers.append(
                Customer(email=f"customer{n}@example.com", name=name, signed_up_at=signed_up)
            )
    customers = Customer.objects.bulk_create(customers)

    contracts: list[Contract] = []
    emails: list[EmailMessage] = []

    def email(customer: Customer, type_: str, when: datetime.datetime) -> None:
        if when < end:
            emails.append(EmailMessage(customer=customer, type=type_, date_sent=when))

    for customer in customers:
        email(
            customer,
            EmailMessage.Type.WELCOME,
            customer.signed_up_at + datetime.timedelta(minutes=1),
        )
        if rng.random() >= 0.55:
            continue
        created = customer.signed_up_at + datetime.timedelta(hours=rng.uniform(0.5, 72))
        if created >= end:
            continue
        plan = rng.choices(list(PRICES), weights=PLAN_WEIGHTS)[0]
        value = PRICES[plan] * rng.randint(1, 3)
        discount = DISCOUNT_CODE if rng.random() < 0.2 else ""
        if discount:
            value = (value * Decimal("0.9")).quantize(Decimal("0.01"))
        validated: datetime.datetime | None = None
        if rng.random() < 0.75:
            validated = created + datetime.timedelta(hours=rng.uniform(2, 96))
            if validated >= end:
                validated = None
        contracts.append(
            Contract(
                customer=customer,
                reference=f"C-{len(contracts) + 1:05d}",
                plan=plan,
                value=value,
                discount_code=discount,
                created_at=created,
                validated_at=validated,
            )
        )
        reminder = created + datetime.timedelta(days=2)
        if validated is None or validated > reminder:
            email(customer, EmailMessage.Type.REMINDER, reminder)
        if validated is not None:
            email(
                customer,
                EmailMessage.Type.CONTRACT_VALIDATED,
                validated + datetime.timedelta(minutes=5),
            )

    for index in range(days):
        day = first_day + datetime.timedelta(days=index)
        if day.weekday() != NEWSLETTER_WEEKDAY:
            continue
        sent = _at(day, 10 * 3600, tz)
        for customer in customers:
            if customer.signed_up_at < sent:
                email(customer, EmailMessage.Type.NEWSLETTER, sent)

    Contract.objects.bulk_create(contracts)
    EmailMessage.objects.bulk_create(emails)
    return DemoSummary(
        first_day=first_day,
        last_day=today - datetime.timedelta(days=1),
        customers=len(customers),
        contracts=len(contracts),
        validated=sum(1 for c in contracts if c.validated_at is not None),
        emails=len(emails),
    )
