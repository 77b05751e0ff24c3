"""Real (throw-away) service-account keys, so google-auth parses them as it would in production."""

from __future__ import annotations

import functools
import json
from pathlib import Path

PROJECT_ID = "sq-key-project"
CLIENT_EMAIL = "exporter@sq-key-project.iam.gserviceaccount.com"


@functools.cache
def private_key_pem() -> str:
    """A fresh RSA private key in PEM (generated once per test process)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def key_info(project_id: str = PROJECT_ID) -> dict[str, str]:
    """The fields of a service-account JSON key."""
    return {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": "0123456789abcdef",
        "private_key": private_key_pem(),
        "client_email": CLIENT_EMAIL,
        "client_id": "123456789",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/exporter",
    }


def split_settings(
    project_id: str = PROJECT_ID, *, escaped_newlines: bool = False
) -> dict[str, str]:
    """The 0.1.3 ``SMOLQWERY_GOOGLE_*`` settings; ``escaped_newlines`` as from an env variable."""
    out = {f"SMOLQWERY_GOOGLE_{k.upper()}": v for k, v in key_info(project_id).items()}
    if escaped_newlines:
        out["SMOLQWERY_GOOGLE_PRIVATE_KEY"] = out["SMOLQWERY_GOOGLE_PRIVATE_KEY"].replace(
            "\n", "\\n"
        )
    return out


def write_key_file(path: Path, project_id: str = PROJECT_ID) -> Path:
    path.write_text(json.dumps(key_info(project_id)))
    return path


def isolate_google_environment(monkeypatch: object, tmp_path: Path) -> None:
    """No Application Default Credentials: no env key, no gcloud login, no metadata server.

    The GCE metadata probe is switched off through google-auth's own ``NO_GCE_CHECK`` switch
    (read at import time, hence set on the module) so the result does not depend on the host.
    """
    import pytest
    from google.auth.compute_engine import _metadata

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setattr(_metadata, "_NO_GCE_CHECK", True)
