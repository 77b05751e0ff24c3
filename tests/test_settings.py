"""Settings: defaults, the 0.1.3 names, the warehouse choice and the credentials order."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings
from google.oauth2 import service_account

from smolqwery.errors import ConfigurationError
from smolqwery.registry import load_extractor_class, load_extractors
from smolqwery.settings import (
    GOOGLE_SETTING_NAMES,
    get_settings,
    parse_date,
)
from smolqwery.warehouses.bigquery_auth import CredentialsError, bigquery_credentials
from tests.checkapp import keys

REPO = Path(__file__).resolve().parent.parent
SECRET = "TOPSECRETKEYMATERIAL"


@pytest.fixture
def bare() -> Iterator[None]:
    """No SMOLQWERY_* setting at all (what a fresh project has)."""
    with override_settings():
        for name in [n for n in dir(settings) if n.startswith("SMOLQWERY_")]:
            delattr(settings, name)
        yield


@pytest.fixture
def no_adc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    keys.isolate_google_environment(monkeypatch, tmp_path)


# --- defaults and 0.1.3 names ---------------------------------------------------------------


def test_defaults(bare: None) -> None:
    config = get_settings()
    assert config.warehouse == "duckdb"
    assert config.extractors == ()
    assert config.django_app is None
    assert config.first_date is None
    assert config.dataset == "smolqwery"
    assert config.dataset_location is None
    assert dict(config.dataset_labels) == {}
    assert config.acl_groups == ()
    assert config.google_key_info is None
    assert config.google_credentials_file is None
    assert config.bigquery_project is None
    assert config.bigquery_anonymous is False
    assert config.duckdb_path == Path(settings.BASE_DIR) / "smolqwery.duckdb"
    assert (config.batch_days, config.retry_deadline, config.lock_timeout) == (366, 600.0, 3600.0)
    assert (config.allow_drop, config.migrate_in_tests) == (False, False)


def test_duckdb_path_never_depends_on_the_working_directory(
    bare: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without BASE_DIR (a 0.1.3 project), the file is next to the settings module's package
    (``tests.settings`` → the repository), wherever the command runs from (issue 14)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "tests.settings")
    with override_settings(BASE_DIR=None):
        assert get_settings().duckdb_path == REPO / "smolqwery.duckdb"
        with override_settings(SMOLQWERY_DUCKDB_PATH="var/w.duckdb"):
            assert get_settings().duckdb_path == REPO / "var" / "w.duckdb"
    with override_settings(SMOLQWERY_DUCKDB_PATH="w.duckdb"):
        assert get_settings().duckdb_path == Path(settings.BASE_DIR) / "w.duckdb"
    with override_settings(SMOLQWERY_DUCKDB_PATH=tmp_path / "abs.duckdb"):
        assert get_settings().duckdb_path == tmp_path / "abs.duckdb"


def test_duckdb_path_unknown_without_settings_module_is_an_error(
    bare: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    with override_settings(BASE_DIR=None):
        config = get_settings()  # reading settings never fails for this
        assert config.duckdb_path is None
        with pytest.raises(ConfigurationError, match="SMOLQWERY_DUCKDB_PATH to an absolute"):
            config.require_duckdb_path()


@pytest.mark.parametrize(
    ("module", "file"),
    [
        ("mysite.settings", "mysite/settings.py"),
        ("mysite.settings", "mysite/settings/__init__.py"),
        ("mysite.settings.prod", "mysite/settings/prod.py"),
    ],
)
def test_project_root_is_where_the_settings_package_is_imported_from(
    bare: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, module: str, file: str
) -> None:
    import types

    from smolqwery.settings import project_root

    fake = types.ModuleType(module)
    fake.__file__ = str(tmp_path / file)
    monkeypatch.setitem(sys.modules, module, fake)
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", module)
    with override_settings(BASE_DIR=None):
        assert project_root() == tmp_path.resolve()


def test_013_setting_names_keep_their_meaning(bare: None) -> None:
    with override_settings(
        SMOLQWERY_DJANGO_APP="testapp",
        SMOLQWERY_EXTRACTORS=["core.smolqwery.UserExtractor", "core.smolqwery.EmailExtractor"],
        SMOLQWERY_FIRST_DATE=datetime.date(2022, 1, 1),
        SMOLQWERY_DATASET="analytics",
        SMOLQWERY_DATASET_LOCATION="EU",
        SMOLQWERY_ACL_GROUPS=["data@example.com"],
        **keys.split_settings(),
    ):
        config = get_settings()
    assert config.django_app == "testapp"
    assert config.extractors == ("core.smolqwery.UserExtractor", "core.smolqwery.EmailExtractor")
    assert config.first_date == datetime.date(2022, 1, 1)
    assert config.dataset == "analytics"
    assert config.dataset_location == "EU"
    assert config.acl_groups == ("data@example.com",)
    assert dict(config.google_key_info or {}) == keys.key_info()
    assert len(GOOGLE_SETTING_NAMES) == 10


def test_d17_setup_without_any_smolqwery_setting() -> None:
    """A project that installs smolqwery and sets nothing starts, checks and reads defaults."""
    script = textwrap.dedent(
        """
        import django
        from django.conf import settings
        settings.configure(
            INSTALLED_APPS=["smolqwery"],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            USE_TZ=True,
        )
        django.setup()
        from django.core.management import call_command
        call_command("check", fail_level="WARNING")
        from smolqwery.settings import get_settings
        print("warehouse", get_settings().warehouse)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_SETTINGS")}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert "warehouse duckdb" in result.stdout


# --- the warehouse choice -------------------------------------------------------------------


@pytest.mark.parametrize("value", ["bigquery", "duckdb"])
def test_warehouse_explicit(bare: None, value: str) -> None:
    with override_settings(SMOLQWERY_WAREHOUSE=value):
        assert get_settings().warehouse == value


def test_warehouse_explicit_beats_google_settings(bare: None) -> None:
    with override_settings(SMOLQWERY_WAREHOUSE="duckdb", **keys.split_settings()):
        assert get_settings().warehouse == "duckdb"


def test_warehouse_implicit_bigquery_for_013_projects(bare: None, tmp_path: Path) -> None:
    with override_settings(**keys.split_settings()):
        assert get_settings().warehouse == "bigquery"
    with override_settings(SMOLQWERY_GOOGLE_PROJECT_ID="only-one-of-them"):
        assert get_settings().warehouse == "bigquery"
    with override_settings(SMOLQWERY_GOOGLE_CREDENTIALS_FILE=str(tmp_path / "key.json")):
        assert get_settings().warehouse == "bigquery"


def test_warehouse_duckdb_otherwise(bare: None) -> None:
    with override_settings(SMOLQWERY_GOOGLE_PRIVATE_KEY="", SMOLQWERY_DATASET="x"):
        assert get_settings().warehouse == "duckdb"


@pytest.mark.parametrize("value", ["BigQuery", "postgres", "", 1])
def test_warehouse_invalid(bare: None, value: object) -> None:
    expected = pytest.raises(ConfigurationError, match="SMOLQWERY_WAREHOUSE must be one of")
    with override_settings(SMOLQWERY_WAREHOUSE=value), expected:
        get_settings()


# --- other validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime.date(2024, 2, 29), datetime.date(2024, 2, 29)),
        ("2024-02-29", datetime.date(2024, 2, 29)),
    ],
)
def test_parse_date(value: object, expected: datetime.date) -> None:
    assert parse_date(value, "X") == expected


@pytest.mark.parametrize("value", [datetime.datetime(2024, 1, 1), "2023-02-29", "2024/01/01", 1])
def test_parse_date_refuses(value: object) -> None:
    with pytest.raises(ConfigurationError, match=r"^X must be"):
        parse_date(value, "X")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SMOLQWERY_BATCH_DAYS", 0),
        ("SMOLQWERY_BATCH_DAYS", True),
        ("SMOLQWERY_BATCH_DAYS", 1.5),
        ("SMOLQWERY_RETRY_DEADLINE", -1),
        ("SMOLQWERY_LOCK_TIMEOUT", "1h"),
        ("SMOLQWERY_STATUS_DEADLINE", 0),
        ("SMOLQWERY_EXTRACTORS", "a.B"),
        ("SMOLQWERY_EXTRACTORS", [1]),
        ("SMOLQWERY_ACL_GROUPS", "group@example.com"),
        ("SMOLQWERY_DATASET_LABELS", [("env", "prod")]),
        ("SMOLQWERY_DATASET", "my-dataset"),
        ("SMOLQWERY_FIRST_DATE", "last monday"),
        ("SMOLQWERY_DUCKDB_MEMORY_LIMIT", "lots"),
        ("SMOLQWERY_DUCKDB_MEMORY_LIMIT", 512),
        ("SMOLQWERY_HISTORY_DAYS", 0),
        ("SMOLQWERY_HISTORY_DAYS", "30"),
        ("SMOLQWERY_HISTORY_DAYS", True),
    ],
)
def test_invalid_values_name_the_setting(bare: None, name: str, value: object) -> None:
    with override_settings(**{name: value}), pytest.raises(ConfigurationError, match=name):
        get_settings()


def test_required_only_when_used(bare: None) -> None:
    config = get_settings()  # fine without them ...
    with pytest.raises(ConfigurationError, match="SMOLQWERY_FIRST_DATE is not set"):
        config.require_first_date()  # ... until a command needs them
    with pytest.raises(ConfigurationError, match="SMOLQWERY_DJANGO_APP is not set"):
        config.require_django_app()


def test_load_extractors() -> None:
    paths = ["tests.checkapp.extractors.UserExtractor", "tests.checkapp.extractors.EmailExtractor"]
    with override_settings(SMOLQWERY_EXTRACTORS=paths):
        assert [e.get_table_name() for e in load_extractors()] == ["user", "email"]
    with pytest.raises(ConfigurationError, match="cannot be imported"):
        load_extractor_class("tests.checkapp.extractors.Nope")
    with pytest.raises(ConfigurationError, match="not a subclass of BaseExtractor"):
        load_extractor_class("tests.checkapp.extractors.NotAnExtractor")


# --- credentials ------------------------------------------------------------------------------


def _bigquery(**overrides: object) -> tuple[service_account.Credentials, str | None]:
    with override_settings(SMOLQWERY_WAREHOUSE="bigquery", **overrides):
        config = get_settings()
    assert config.warehouse == "bigquery"
    creds, project = bigquery_credentials(config)
    return creds, project  # type: ignore[return-value]


def test_credentials_from_split_settings(bare: None, no_adc: None) -> None:
    creds, project = _bigquery(**keys.split_settings())
    assert isinstance(creds, service_account.Credentials)
    assert creds.service_account_email == keys.CLIENT_EMAIL
    assert project == keys.PROJECT_ID
    assert creds.sign_bytes(b"payload")  # the private key really was parsed


def test_private_key_with_literal_backslash_n_is_normalised(bare: None, no_adc: None) -> None:
    split = keys.split_settings(escaped_newlines=True)
    assert "\\n" in split["SMOLQWERY_GOOGLE_PRIVATE_KEY"]
    assert "\n" not in split["SMOLQWERY_GOOGLE_PRIVATE_KEY"]
    with override_settings(**split):
        info = get_settings().google_key_info
    assert info is not None and info["private_key"] == keys.private_key_pem()
    creds, _ = _bigquery(**split)
    assert creds.sign_bytes(b"payload")


def test_credentials_order_split_then_file_then_adc(
    bare: None, no_adc: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = keys.write_key_file(tmp_path / "file.json", project_id="file-project")
    adc_file = keys.write_key_file(tmp_path / "adc.json", project_id="adc-project")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc_file))

    both = {**keys.split_settings("split-project"), "SMOLQWERY_GOOGLE_CREDENTIALS_FILE": key_file}
    assert _bigquery(**both)[1] == "split-project"
    assert _bigquery(SMOLQWERY_GOOGLE_CREDENTIALS_FILE=str(key_file))[1] == "file-project"
    assert _bigquery()[1] == "adc-project"
    # An explicit project beats every source.
    assert _bigquery(SMOLQWERY_BIGQUERY_PROJECT="chosen", **both)[1] == "chosen"
    assert _bigquery(SMOLQWERY_BIGQUERY_PROJECT="chosen")[1] == "chosen"


def test_d16_project_from_the_key_not_the_environment(
    bare: None, no_adc: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "someone-elses-project")
    assert _bigquery(**keys.split_settings())[1] == keys.PROJECT_ID
    key_file = keys.write_key_file(tmp_path / "key.json")
    assert _bigquery(SMOLQWERY_GOOGLE_CREDENTIALS_FILE=str(key_file))[1] == keys.PROJECT_ID


def test_d16_no_project_is_an_error_not_a_guess(bare: None, no_adc: None) -> None:
    split = keys.split_settings()
    del split["SMOLQWERY_GOOGLE_PROJECT_ID"]
    with pytest.raises(CredentialsError, match="SMOLQWERY_BIGQUERY_PROJECT"):
        _bigquery(**split)


def test_bigquery_without_credentials_fails_clearly(bare: None, no_adc: None) -> None:
    with pytest.raises(CredentialsError) as info:
        _bigquery()
    message = str(info.value)
    assert "no credentials were found" in message
    assert "SMOLQWERY_GOOGLE_CREDENTIALS_FILE" in message


def test_bigquery_without_credentials_never_falls_back_to_duckdb(
    bare: None, no_adc: None, tmp_path: Path
) -> None:
    bigquery = pytest.importorskip("smolqwery.warehouses.bigquery")
    from smolqwery.warehouses import get_warehouse

    duckdb_file = tmp_path / "fallback.duckdb"
    with override_settings(SMOLQWERY_WAREHOUSE="bigquery", SMOLQWERY_DUCKDB_PATH=duckdb_file):
        config = get_settings()
        with pytest.raises(ConfigurationError):
            get_warehouse(config)
    assert bigquery is not None
    assert not duckdb_file.exists()


@pytest.mark.parametrize(
    "private_key",
    [
        f"-----BEGIN PRIVATE KEY-----\\n{SECRET}\\n-----END PRIVATE KEY-----\\n",
        f"{SECRET} not even PEM",
    ],
)
def test_broken_key_never_in_the_error(bare: None, no_adc: None, private_key: str) -> None:
    split = {**keys.split_settings(), "SMOLQWERY_GOOGLE_PRIVATE_KEY": private_key}
    with pytest.raises(CredentialsError) as info:
        _bigquery(**split)
    assert "SMOLQWERY_GOOGLE_PRIVATE_KEY" in str(info.value)
    assert SECRET not in str(info.value)
    assert info.value.__suppress_context__  # the library's own message is not chained


def test_incomplete_split_settings_name_what_is_missing(bare: None, no_adc: None) -> None:
    with pytest.raises(CredentialsError) as info:
        _bigquery(SMOLQWERY_GOOGLE_PRIVATE_KEY=SECRET)
    assert "SMOLQWERY_GOOGLE_CLIENT_EMAIL" in str(info.value)
    assert SECRET not in str(info.value)


def test_key_never_in_the_settings_repr(bare: None) -> None:
    with override_settings(**keys.split_settings()):
        config = get_settings()
    assert "PRIVATE KEY" not in repr(config)


def test_key_file_problems(bare: None, no_adc: None, tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="which is not a file"):
        _bigquery(SMOLQWERY_GOOGLE_CREDENTIALS_FILE=str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text(f'{{"private_key": "{SECRET}"')
    with pytest.raises(CredentialsError, match="not a valid service-account key") as info:
        _bigquery(SMOLQWERY_GOOGLE_CREDENTIALS_FILE=str(bad))
    assert SECRET not in str(info.value)


def test_anonymous_credentials_for_the_emulator(bare: None, no_adc: None) -> None:
    from google.auth.credentials import AnonymousCredentials

    creds, project = _bigquery(SMOLQWERY_BIGQUERY_ANONYMOUS=True, SMOLQWERY_BIGQUERY_PROJECT="emu")
    assert isinstance(creds, AnonymousCredentials)
    assert project == "emu"


def test_credentials_names_moved_into_the_backend_stay_importable() -> None:
    import smolqwery.settings as settings_module
    from smolqwery.warehouses import bigquery_auth

    assert settings_module.bigquery_credentials is bigquery_auth.bigquery_credentials
    assert settings_module.CredentialsError is bigquery_auth.CredentialsError
    with pytest.raises(AttributeError):
        settings_module.no_such_name  # noqa: B018
