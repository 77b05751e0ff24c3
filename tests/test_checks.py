"""System checks: one test per id, plus "never crash" and "nothing required when unused".

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import datetime
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import time_machine
from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from smolqwery.checks import TAG, check_extractors, check_settings
from tests.checkapp import keys

EX = "tests.checkapp.extractors"
GOOD = [f"{EX}.UserExtractor", f"{EX}.EmailExtractor"]


def run_all() -> list[CheckMessage]:
    return [*check_settings(), *check_extractors()]


def only(messages: list[CheckMessage], check_id: str) -> CheckMessage:
    """The single message, asserting it has ``check_id`` and a hint."""
    assert [m.id for m in messages] == [check_id], [str(m) for m in messages]
    assert messages[0].hint
    return messages[0]


@pytest.fixture
def no_smolqwery_settings() -> Iterator[None]:
    """A project with smolqwery installed and not one SMOLQWERY_* setting (0.1.3 D17)."""
    with override_settings():
        for name in [n for n in dir(settings) if n.startswith("SMOLQWERY_")]:
            delattr(settings, name)
        yield


@pytest.fixture
def no_adc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    keys.isolate_google_environment(monkeypatch, tmp_path)


def test_valid_configuration_has_no_message() -> None:
    with override_settings(SMOLQWERY_EXTRACTORS=GOOD, SMOLQWERY_FIRST_DATE="2024-01-01"):
        assert run_all() == []


def test_d17_no_setting_at_all_is_valid(no_smolqwery_settings: None) -> None:
    assert not hasattr(settings, "SMOLQWERY_WAREHOUSE")
    assert run_all() == []


def test_registered_under_the_smolqwery_tag() -> None:
    with override_settings(SMOLQWERY_EXTRACTORS=[f"{EX}.Missing"]):
        ids = {m.id for m in run_checks(tags=[TAG])}
        assert "smolqwery.E001" in ids
        with pytest.raises(SystemCheckError, match=r"smolqwery\.E001"):
            call_command("check", "--tag", TAG)
    call_command("check", "--tag", TAG)  # the test settings themselves are clean


def test_other_apps_checks_stay_quiet() -> None:
    with override_settings(SMOLQWERY_EXTRACTORS=[f"{EX}.Missing"]):
        assert run_checks(app_configs=[apps.get_app_config("auth")], tags=[TAG]) == []


@pytest.mark.parametrize(
    "path",
    [f"{EX}.Missing", "tests.checkapp.nowhere.Extractor", "NoDots", "tests.checkapp.broken.X"],
)
def test_e001_not_importable(path: str) -> None:
    with override_settings(SMOLQWERY_EXTRACTORS=[path]):
        message = only(check_extractors(), "smolqwery.E001")
    assert path in message.msg
    assert "dotted path" in message.hint


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        ("NotAnExtractor", "not a subclass"),
        ("extractor_function", "not a subclass"),
        ("HalfExtractor", "does not implement extract"),
        ("MisreadExtractor", "has read_as = 'dbapy'"),
    ],
)
def test_e002_not_an_extractor(name: str, detail: str) -> None:
    with override_settings(SMOLQWERY_EXTRACTORS=[f"{EX}.{name}"]):
        message = only(check_extractors(), "smolqwery.E002")
    assert detail in message.msg
    assert any(word in message.hint for word in ("BaseExtractor", "extract()", "'dbapi'"))


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        ("ListFieldExtractor", "Tagged.tags has unsupported type list[str]"),
        ("NoTimestampExtractor", "needs a 'timestamp' field"),
        ("RaisingExtractor", "raised RuntimeError"),
    ],
)
def test_e003_invalid_dataclass(name: str, detail: str) -> None:
    with override_settings(SMOLQWERY_EXTRACTORS=[f"{EX}.{name}"]):
        message = only(check_extractors(), "smolqwery.E003")
    assert detail in message.msg
    assert f"{EX}.{name}" in message.msg  # names the extractor
    assert "Optional" in message.hint


@pytest.mark.parametrize("name", ["SameTableExtractor", "DeltaClashExtractor"])
def test_e004_two_extractors_one_name(name: str) -> None:
    with override_settings(SMOLQWERY_EXTRACTORS=[*GOOD, f"{EX}.{name}"]):
        message = only(check_extractors(), "smolqwery.E004")
    assert f"{EX}.UserExtractor" in message.msg  # names the other owner
    assert "get_table_name()" in message.hint


def test_e004_table_named_like_a_rollup_view() -> None:
    paths = [f"{EX}.UserWeekExtractor", f"{EX}.RollupUserExtractor"]
    with override_settings(SMOLQWERY_EXTRACTORS=paths):
        message = only(check_extractors(), "smolqwery.E004")
    assert "view 'user_week'" in message.msg and "UserWeekExtractor" in message.msg


def test_e004_same_extractor_listed_twice() -> None:
    with override_settings(SMOLQWERY_EXTRACTORS=[*GOOD, GOOD[1]]):
        only(check_extractors(), "smolqwery.E004")


@pytest.mark.parametrize("dataset", ["my-data", "dots.in.name", "", 42])
def test_e005_dataset_invalid(dataset: object) -> None:
    with override_settings(SMOLQWERY_DATASET=dataset):
        messages = check_settings()
    if dataset == "":
        assert messages == []  # unset: the default dataset
        return
    message = only(messages, "smolqwery.E005")  # and not a second E011 for the same setting
    assert "SMOLQWERY_DATASET" in message.msg


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        ("BadTableNameExtractor", "'email-log' is invalid"),
        ("ReservedTableExtractor", "starts with 'smolqwery_'"),
    ],
)
def test_e006_table_name_invalid_or_reserved(name: str, detail: str) -> None:
    with override_settings(SMOLQWERY_EXTRACTORS=[f"{EX}.{name}"]):
        message = only(check_extractors(), "smolqwery.E006")
    assert detail in message.msg
    assert "get_table_name()" in message.hint


@pytest.mark.parametrize(
    "value", ["yesterday", "2024-02-30", "01/02/2024", 20240101, datetime.datetime(2024, 1, 1)]
)
def test_e007_first_date_unparsable(value: object) -> None:
    with override_settings(SMOLQWERY_FIRST_DATE=value):
        message = only(check_settings(), "smolqwery.E007")  # no duplicate E011
    assert "SMOLQWERY_FIRST_DATE" in message.msg


@pytest.mark.parametrize("value", [datetime.date(2024, 1, 1), "2024-01-01", " 2024-01-01 "])
def test_first_date_accepted_spellings(value: object) -> None:
    with override_settings(SMOLQWERY_FIRST_DATE=value):
        assert check_settings() == []


def test_w008_first_date_in_the_future_of_time_zone() -> None:
    # 22:30 UTC on 31 May is already 1 June in Paris (the test TIME_ZONE).
    assert settings.TIME_ZONE == "Europe/Paris"
    now = datetime.datetime(2024, 5, 31, 22, 30, tzinfo=datetime.timezone.utc)
    with time_machine.travel(now, tick=False):
        with override_settings(SMOLQWERY_FIRST_DATE=datetime.date(2024, 6, 1)):
            assert check_settings() == []
        with override_settings(SMOLQWERY_FIRST_DATE=datetime.date(2024, 6, 2)):
            message = only(check_settings(), "smolqwery.W008")
    assert not message.is_serious()  # a warning: the project may simply start tomorrow
    assert "2024-06-01" in message.msg and "Europe/Paris" in message.msg


def test_e009_bigquery_without_credentials(no_adc: None) -> None:
    with override_settings(SMOLQWERY_WAREHOUSE="bigquery"):
        message = only(check_settings(), "smolqwery.E009")
    assert "no credentials" in message.msg
    assert "never falls back" in message.hint


def test_e009_broken_key_never_shows_the_key(no_adc: None) -> None:
    secret = "-----BEGIN PRIVATE KEY-----\\nTOPSECRETKEYMATERIAL\\n-----END PRIVATE KEY-----\\n"
    split = keys.split_settings()
    split["SMOLQWERY_GOOGLE_PRIVATE_KEY"] = secret
    with override_settings(**split):  # no SMOLQWERY_WAREHOUSE: 0.1.3 settings mean BigQuery
        del settings.SMOLQWERY_WAREHOUSE
        message = only(check_settings(), "smolqwery.E009")
    assert "TOPSECRET" not in f"{message.msg} {message.hint}"


def test_e009_absent_with_valid_key_file(no_adc: None, tmp_path: Path) -> None:
    path = keys.write_key_file(tmp_path / "key.json")
    with override_settings(SMOLQWERY_WAREHOUSE="bigquery", SMOLQWERY_GOOGLE_CREDENTIALS_FILE=path):
        assert check_settings() == []


def test_e010_django_app_not_installed() -> None:
    with override_settings(SMOLQWERY_DJANGO_APP="analytics"):
        message = only(check_settings(), "smolqwery.E010")
    assert "'analytics'" in message.msg


def test_e010_module_path_instead_of_label() -> None:
    with override_settings(SMOLQWERY_DJANGO_APP="tests.testapp"):
        message = only(check_settings(), "smolqwery.E010")
    assert "SMOLQWERY_DJANGO_APP = 'testapp'" in message.hint


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"SMOLQWERY_WAREHOUSE": "snowflake"}, "SMOLQWERY_WAREHOUSE"),
        ({"SMOLQWERY_BATCH_DAYS": 0}, "SMOLQWERY_BATCH_DAYS"),
        ({"SMOLQWERY_EXTRACTORS": "myapp.UserExtractor"}, "SMOLQWERY_EXTRACTORS"),
        ({"SMOLQWERY_DATASET_LABELS": ["env"]}, "SMOLQWERY_DATASET_LABELS"),
        ({"SMOLQWERY_ACL_GROUPS": "team@example.com"}, "SMOLQWERY_ACL_GROUPS"),
        ({"SMOLQWERY_STATUS_DEADLINE": "10s"}, "SMOLQWERY_STATUS_DEADLINE"),
    ],
)
def test_e011_other_invalid_setting(overrides: dict[str, object], setting: str) -> None:
    with override_settings(**overrides):
        message = only(check_settings(), "smolqwery.E011")
        assert check_extractors() == []  # an unusable list is E011's business, not a crash
    assert setting in message.msg


def test_e011_database_alias_not_in_databases() -> None:
    with override_settings(SMOLQWERY_DATABASE_ALIAS="analytics"):
        message = only(check_settings(), "smolqwery.E011")
    assert "'analytics' is not in DATABASES" in message.msg


def test_w013_extractors_without_first_date_or_app() -> None:
    with override_settings(SMOLQWERY_EXTRACTORS=GOOD):
        message = only(check_settings(), "smolqwery.W013")
        assert "SMOLQWERY_FIRST_DATE" in message.msg and not message.is_serious()
        del settings.SMOLQWERY_DJANGO_APP
        assert [m.id for m in check_settings()] == ["smolqwery.W013"] * 2
    with override_settings(SMOLQWERY_EXTRACTORS=[]):
        assert check_settings() == []  # nothing to export yet: nothing needed


def test_e012_duckdb_chosen_but_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "duckdb", None)  # how Python spells "not installed"
    with override_settings(SMOLQWERY_EXTRACTORS=GOOD, SMOLQWERY_FIRST_DATE="2024-01-01"):
        message = only(check_settings(), "smolqwery.E012")
    assert "smolqwery[duckdb]" in message.hint
    with override_settings(SMOLQWERY_EXTRACTORS=[]):
        assert check_settings() == []  # nothing to export: duckdb not needed yet


def test_several_problems_reported_together() -> None:
    with override_settings(
        SMOLQWERY_DATASET="bad-name",
        SMOLQWERY_DJANGO_APP="nope",
        SMOLQWERY_EXTRACTORS=[f"{EX}.Missing", f"{EX}.NotAnExtractor", *GOOD],
    ):
        ids = sorted(m.id or "" for m in run_all())
    assert ids == ["smolqwery.E001", "smolqwery.E002", "smolqwery.E005", "smolqwery.E010"]


LIMITS = "tests.checkapp.limits"


def test_e030_bigquery_limits_before_any_call(no_adc: None, tmp_path: Path) -> None:
    """Clustering and description limits BigQuery enforces (the emulator does not)."""
    key = keys.write_key_file(tmp_path / "key.json")
    extractors = [f"{LIMITS}.FiveClusteringColumns", f"{LIMITS}.LongDescriptions"]
    with override_settings(
        SMOLQWERY_WAREHOUSE="bigquery",
        SMOLQWERY_GOOGLE_CREDENTIALS_FILE=str(key),
        SMOLQWERY_EXTRACTORS=extractors,
    ):
        messages = check_extractors()
    assert [m.id for m in messages] == ["smolqwery.E030"] * 3, [str(m) for m in messages]
    texts = [m.msg for m in messages]
    assert "clusters on 5 columns (a, b, c, d, e); BigQuery allows at most 4" in texts[0]
    assert "description of 16,385 characters; BigQuery allows at most 16,384" in texts[1]
    assert "column 'users' of table 'verbose' has a description of 1,025" in texts[2]
    assert all("\n" not in m.msg and m.hint for m in messages)


def test_e030_only_for_bigquery_and_not_at_the_limits(no_adc: None, tmp_path: Path) -> None:
    with override_settings(SMOLQWERY_EXTRACTORS=[f"{LIMITS}.FiveClusteringColumns"]):
        assert check_extractors() == []  # DuckDB has no such limits
    key = keys.write_key_file(tmp_path / "key.json")
    with override_settings(
        SMOLQWERY_WAREHOUSE="bigquery",
        SMOLQWERY_GOOGLE_CREDENTIALS_FILE=str(key),
        SMOLQWERY_EXTRACTORS=[f"{LIMITS}.AtTheLimits"],
    ):
        assert check_extractors() == []
