"""Google credentials of the BigQuery backend, built from the settings (never logged).

Part of the BigQuery backend: importing google-auth is this module's business only, so a project
on another warehouse needs no Google package (they come with ``smolqwery[bigquery]``).

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from django.core.checks import CheckMessage
    from google.auth.credentials import Credentials

    from ..settings import SmolqwerySettings

#: The fields google-auth needs to build service-account credentials.
GOOGLE_REQUIRED_FIELDS = ("private_key", "client_email", "token_uri")


class CredentialsError(ConfigurationError):
    """No usable Google credentials; the message never contains key material."""


def _require_project(project: str | None, source: str) -> str:
    """Never leave the project to the client's own guess (0.1.3 defect D16)."""
    if not project:
        raise CredentialsError(
            f"no Google Cloud project is known: set SMOLQWERY_BIGQUERY_PROJECT (or {source})"
        )
    return project


def bigquery_credentials(config: SmolqwerySettings) -> tuple[Credentials, str | None]:
    """Credentials and project, from the split settings, a key file, or ADC — in that order.

    The project comes from ``SMOLQWERY_BIGQUERY_PROJECT``, else the key's ``project_id``, else
    ADC's: never from ``GOOGLE_CLOUD_PROJECT`` behind the key's back (0.1.3 defect D16).
    """
    from google.auth import default as google_default
    from google.auth.credentials import AnonymousCredentials
    from google.auth.exceptions import DefaultCredentialsError
    from google.oauth2 import service_account

    if config.bigquery_anonymous:
        return AnonymousCredentials(), config.bigquery_project  # type: ignore[no-untyped-call]
    if config.google_key_info is not None:
        missing = [
            f"SMOLQWERY_GOOGLE_{f.upper()}"
            for f in GOOGLE_REQUIRED_FIELDS
            if not config.google_key_info.get(f)
        ]
        if missing:
            raise CredentialsError(
                f"BigQuery credentials are incomplete: {', '.join(missing)} not set"
            )
        try:
            creds = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                dict(config.google_key_info)
            )
        except (ValueError, TypeError) as exc:
            # The library's message may quote the key; never repeat it.
            raise CredentialsError(
                "BigQuery credentials from SMOLQWERY_GOOGLE_* are invalid "
                f"({type(exc).__name__}): check SMOLQWERY_GOOGLE_PRIVATE_KEY and "
                "SMOLQWERY_GOOGLE_CLIENT_EMAIL"
            ) from None
        project = config.bigquery_project or config.google_key_info.get("project_id")
        return creds, _require_project(project, "SMOLQWERY_GOOGLE_PROJECT_ID")
    if config.google_credentials_file:
        path = config.google_credentials_file
        if not os.path.isfile(path):
            raise CredentialsError(
                f"SMOLQWERY_GOOGLE_CREDENTIALS_FILE points to {path!r}, which is not a file"
            )
        try:
            creds = service_account.Credentials.from_service_account_file(path)  # type: ignore[no-untyped-call]
        except (ValueError, TypeError, OSError) as exc:
            raise CredentialsError(
                f"SMOLQWERY_GOOGLE_CREDENTIALS_FILE {path!r} is not a valid service-account key "
                f"({type(exc).__name__})"
            ) from None
        return creds, _require_project(
            config.bigquery_project or creds.project_id, "the key file's project_id"
        )
    try:
        creds, project = google_default(scopes=["https://www.googleapis.com/auth/bigquery"])  # type: ignore[no-untyped-call]
    except DefaultCredentialsError:
        raise CredentialsError(
            "SMOLQWERY_WAREHOUSE is 'bigquery' but no credentials were found: set "
            "SMOLQWERY_GOOGLE_CREDENTIALS_FILE to a service-account key file, or the "
            "SMOLQWERY_GOOGLE_* settings, or configure Application Default Credentials "
            "(gcloud auth application-default login / GOOGLE_APPLICATION_CREDENTIALS)"
        ) from None
    return creds, _require_project(config.bigquery_project or project, "GOOGLE_CLOUD_PROJECT")


def credentials_messages(config: SmolqwerySettings) -> list[CheckMessage]:
    """E009: the credentials cannot be built (the message never quotes key material)."""
    from django.core.checks import Error

    hint = (
        "Set SMOLQWERY_GOOGLE_CREDENTIALS_FILE to a service-account key file, or the 0.1.3 "
        "SMOLQWERY_GOOGLE_* settings, or configure Application Default Credentials "
        "(GOOGLE_APPLICATION_CREDENTIALS or `gcloud auth application-default login`). "
        "smolqwery never falls back to another warehouse."
    )
    try:
        bigquery_credentials(config)
    except ConfigurationError as exc:
        # CredentialsError messages are written never to contain key material.
        return [Error(str(exc), hint=hint, id="smolqwery.E009")]
    except Exception as exc:
        # A foreign message might quote a key: only its type is shown.
        return [
            Error(
                f"BigQuery credentials could not be loaded ({type(exc).__name__}).",
                hint=hint,
                id="smolqwery.E009",
            )
        ]
    return []
