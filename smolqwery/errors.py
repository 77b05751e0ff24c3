"""Exceptions smolqwery raises on purpose, each with a message a user can act on."""

from __future__ import annotations

from django.core.management.base import CommandError


class SmolqweryError(Exception):
    """Base of every error smolqwery raises on purpose."""


class ConfigurationError(SmolqweryError):
    """A setting is missing or invalid."""


class SchemaError(SmolqweryError, ValueError):
    """An extractor's dataclass cannot be turned into a warehouse table."""


class ActivityConfigurationError(SchemaError, ConfigurationError):
    """A built-in activity extractor is missing a class attribute or names a wrong one."""


class TableChangedError(SmolqweryError):
    """An extractor's table differs from the table its migrations created (tables are immutable)."""


class RowError(SmolqweryError, ValueError):
    """A row yielded by an extractor does not fit its table."""


class WarehouseError(SmolqweryError):
    """A warehouse operation failed; the message names the operation and the table."""


class SchemaMismatchError(WarehouseError):
    """An existing warehouse table differs from the one expected."""


class ExportLockedError(SmolqweryError):
    """Another export holds the lock."""


class LeaseLostError(ExportLockedError):
    """This run's lease expired and another run took it over: stop (a failure, not a skip)."""


class ExtractorError(SmolqweryError):
    """An extractor's ``extract()`` raised; the message names the extractor and the day."""


class WarehouseAccessError(WarehouseError):
    """The warehouse refused for want of a permission or of billing; the message says which."""


class UnsafeDatasetError(WarehouseError):
    """A dataset or table setting would delete exported data (an expiration); refused."""


class WarehouseMigrationError(SmolqweryError, CommandError):
    """A warehouse operation of a migration failed for a reason the message states.

    A ``CommandError``, so that ``manage.py migrate`` prints the message alone, not a
    traceback through Django's migration executor (``--traceback`` still shows it)."""


def user_message(exc: BaseException) -> str:
    """An error for users: our own messages as they are, others prefixed by their type."""
    if isinstance(exc, SmolqweryError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def user_traceback(exc: BaseException | None) -> BaseException | None:
    """The exception whose traceback helps the user: what an extractor's own code raised (not
    our wrapper around it), or an unexpected error; None for our one-line refusals."""
    if isinstance(exc, ExtractorError):
        return exc.__cause__ or exc
    if exc is None or isinstance(exc, SmolqweryError):
        return None
    return exc


#: ``extra`` of a log record whose failure the running command prints itself (its FAILED line
#: and summary): the commands' stderr fallback (``management/commands/_output.py``) skips it,
#: the project's own handlers keep it, traceback included.
REPORTED_ATTRIBUTE = "smolqwery_reported"
REPORTED = {REPORTED_ATTRIBUTE: True}
