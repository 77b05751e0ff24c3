"""Exceptions smolqwery raises on purpose, each with a message a user can act on."""

from __future__ import annotations


class SmolqweryError(Exception):
    """Base of every error smolqwery raises on purpose."""


class ConfigurationError(SmolqweryError):
    """A setting is missing or invalid."""


class SchemaError(SmolqweryError, ValueError):
    """An extractor's dataclass cannot be turned into a warehouse table."""


class RowError(SmolqweryError, ValueError):
    """A row yielded by an extractor does not fit its table."""


class WarehouseError(SmolqweryError):
    """A warehouse operation failed; the message names the operation and the table."""


class SchemaMismatchError(WarehouseError):
    """An existing warehouse table differs from the one expected."""


class ExportLockedError(SmolqweryError):
    """Another export holds the lock."""


class WarehouseAccessError(WarehouseError):
    """The warehouse refused for want of a permission or of billing; the message says which."""


class UnsafeDatasetError(WarehouseError):
    """A dataset or table setting would delete exported data (an expiration); refused."""
