"""The README's "Add smolqwery to your project", followed by a newcomer, in real subprocesses.

A wheel is built from the sources and installed with the README's own command into a fresh
virtualenv (its dependencies come from this interpreter through a ``.pth`` line: no index).
``django-admin startproject`` and ``startapp analytics`` make the project; the settings and the
extractors are the README's code blocks marked ``<!-- newcomer-test: ... -->``, copied as they
are, so the README and this test cannot drift. Nothing else is set — on default names, the
DuckDB file ``smolqwery.duckdb`` and the schema ``smolqwery`` (issue 14) — except, in the
PostgreSQL pass, ``DATABASES`` pointing at a fresh PostgreSQL database.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
ON_POSTGRES = os.environ.get("SMOLQWERY_TEST_DB") == "postgres"
PG = {
    "HOST": os.environ.get("SMOLQWERY_TEST_PG_HOST", "127.0.0.1"),
    "PORT": os.environ.get("SMOLQWERY_TEST_PG_PORT", "5432"),
    "USER": os.environ.get("SMOLQWERY_TEST_PG_USER", "postgres"),
}

pytestmark = [pytest.mark.slow, pytest.mark.source_db]


def readme_block(name: str) -> str:
    """The code block under ``<!-- newcomer-test: name -->`` in README.md."""
    match = re.search(rf"<!-- newcomer-test: {name} -->\n```\w*\n(.*?)```", README, flags=re.DOTALL)
    assert match, f"README.md has no block marked newcomer-test: {name}"
    return match.group(1)


#: Nothing of this test run's Django or smolqwery settings leaks into the newcomer's commands.
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SMOLQWERY_"))}


def run(*args: str | Path, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=CLEAN_ENV,
    )
    if ok:
        assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


class Project:
    """The newcomer's project: ``manage(...)`` runs ``python manage.py ...`` in a subprocess."""

    def __init__(self, root: Path, python: Path) -> None:
        self.root = root
        self.python = python
        self.settings = root / "mysite" / "settings.py"

    def manage(self, *args: str, ok: bool = True, cwd: Path | None = None) -> Any:
        return run(self.python, self.root / "manage.py", *args, cwd=cwd or self.root, ok=ok)

    def python_in_project(self, code: str) -> str:
        return self.manage("shell", "-c", code).stdout


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str | None]:
    if not ON_POSTGRES:
        yield None
        return
    import psycopg

    name = f"smolqwery_newcomer_{uuid.uuid4().hex[:10]}"
    kwargs = {"host": PG["HOST"], "port": PG["PORT"], "user": PG["USER"]}
    with psycopg.connect(dbname="postgres", autocommit=True, **kwargs) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **kwargs) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def project(
    wheel: Path, pg_database: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Project:
    home = tmp_path_factory.mktemp("newcomer")
    venv = home / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=home)
    python = venv / "bin" / "python"
    purelib = run(
        python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=home
    ).stdout.strip()
    # Django, duckdb, … from this interpreter (the install below needs no package index), but
    # not this interpreter's smolqwery: pip would take it for the wheel, already installed.
    deps = home / "deps"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().startswith(("smolqwery", "__editable__", "_deps.pth")):
            (deps / entry.name).symlink_to(entry)
    (Path(purelib) / "_deps.pth").write_text(f"{deps}\n")

    # The README's install command for a built wheel, with this wheel's path.
    (install_line,) = [
        line for line in readme_block("install").splitlines() if ".whl[duckdb]" in line
    ]
    documented = re.search(r'"dist/(smolqwery-[^"\[]+\.whl)\[duckdb\]"', install_line)
    assert documented, install_line
    assert documented.group(1) == wheel.name, "README's wheel name is not the version built"
    (home / "dist").mkdir()
    shutil.copy2(wheel, home / "dist" / wheel.name)
    command = shlex.split(install_line.split("#")[0])
    assert command[:2] == ["pip", "install"], install_line
    run(python, "-m", *command, "--no-index", "-q", cwd=home)
    installed = run(python, "-c", "import smolqwery; print(smolqwery.__file__)", cwd=home)
    assert installed.stdout.startswith(str(venv)), installed.stdout  # the wheel, not a checkout

    (home / "project").mkdir()
    run(python, "-m", "django", "startproject", "mysite", home / "project", cwd=home)
    project = Project(home / "project", python)
    project.manage("startapp", "analytics")
    settings = project.settings.read_text() + "\n" + readme_block("settings")
    if pg_database:
        settings += (
            "\n# The PostgreSQL pass of the test suite (not from the README):\n"
            f"DATABASES = {{'default': {{'ENGINE': 'django.db.backends.postgresql', "
            f"'NAME': {pg_database!r}, 'USER': {PG['USER']!r}, 'HOST': {PG['HOST']!r}, "
            f"'PORT': {PG['PORT']!r}}}}}\n"
        )
    project.settings.write_text(settings)
    (project.root / "analytics" / "extractors.py").write_text(readme_block("extractors"))
    return project


def _duckdb_rows(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def test_the_readme_integration_guide_works_as_written(project: Project) -> None:
    out = project.manage("check").stdout
    assert "System check identified no issues" in out

    made = project.manage("smolqwery_make_migrations").stdout
    assert "analytics" in made
    assert project.manage("smolqwery_make_migrations", "--check").returncode == 0
    for early in ("smolqwery_extract", "smolqwery_status"):  # before migrate: what to do
        refused = project.manage(early, ok=False)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr, refused.stderr
        assert "run manage.py migrate first" in refused.stderr
    project.manage("migrate")
    # An upgrade not migrated yet: smolqwery's newest table is missing, and said so.
    project.manage("migrate", "smolqwery", "0003")
    refused = project.manage("smolqwery_status", ok=False)
    assert "(smolqwery_exportunit): run manage.py migrate first" in refused.stderr, refused.stderr
    project.manage("migrate")
    warehouse = project.root / "smolqwery.duckdb"  # BASE_DIR / "smolqwery.duckdb"
    assert warehouse.is_file()

    # Accounts created over the last days, in the project's TIME_ZONE (UTC in startproject).
    today = datetime.datetime.now(datetime.timezone.utc).date()
    joined = {
        today - datetime.timedelta(days=3): 2,
        today - datetime.timedelta(days=2): 0,
        today - datetime.timedelta(days=1): 3,
    }
    project.python_in_project(
        "import datetime as dt\n"
        "from django.contrib.auth.models import User\n"
        + "".join(
            f"User.objects.create(username='u{day:%j}{i}', is_staff={i == 0}, "
            f"date_joined=dt.datetime({day.year}, {day.month}, {day.day}, 12, {i}, "
            "tzinfo=dt.timezone.utc))\n"
            for day, count in joined.items()
            for i in range(count)
        )
    )
    yesterday = today - datetime.timedelta(days=1)
    first = today - datetime.timedelta(days=3)

    printed = project.manage(
        "smolqwery_print_extract", "-f", first.isoformat(), "-l", yesterday.isoformat()
    ).stdout
    assert f"== user {yesterday.isoformat()} (1 row(s))" in printed
    assert f"== signup {yesterday.isoformat()} (3 row(s))" in printed

    extracted = project.manage("smolqwery_extract", "--no-progress")
    assert "all succeeded" in extracted.stdout, extracted.stdout + extracted.stderr
    again = project.manage("smolqwery_extract", "--no-progress")
    assert "all succeeded" in again.stdout, again.stdout + again.stderr
    assert ", 0 row(s)" in again.stdout  # nothing left to export: nothing written twice

    status = project.manage("smolqwery_status", "--max-lag", "0", "--format", "json").stdout
    tables = {t["table"]: t for t in json.loads(status)["tables"]}
    assert set(tables) == {"user", "signup"}
    assert all(t["missing_days"] == [] and t["last_day"] == str(yesterday) for t in tables.values())
    assert tables["signup"]["rows"] == 5

    rows = _duckdb_rows(
        warehouse,
        'SELECT date, users, staff FROM "smolqwery"."smolqwery"."user" WHERE date >= ? '
        "ORDER BY date",
        first,
    )
    assert rows == [(first, 2, 1), (first + datetime.timedelta(days=1), 2, 1), (yesterday, 5, 2)]
    signups = _duckdb_rows(
        warehouse, 'SELECT count(*), count(*) FILTER (is_staff) FROM "smolqwery"."smolqwery".signup'
    )
    assert signups == [(5, 2)]
    delta = _duckdb_rows(
        warehouse, 'SELECT users FROM "smolqwery"."smolqwery".user_delta WHERE date = ?', yesterday
    )
    assert delta == [(3,)]


def test_the_readme_queryset_extractor_replaces_the_loop(project: Project) -> None:
    """The README's ``QuerySetExtractor`` block, appended to the extractors as the README says
    (it replaces ``SignupExtractor``): same rows, and re-exporting days replaces them."""
    extractors = project.root / "analytics" / "extractors.py"
    original = extractors.read_text()
    today = datetime.datetime.now(datetime.timezone.utc).date()
    first, yesterday = today - datetime.timedelta(days=3), today - datetime.timedelta(days=1)
    try:
        extractors.write_text(original + "\n\n" + readme_block("queryset-extractor"))
        assert "No smolqwery changes detected" in project.manage("smolqwery_make_migrations").stdout
        printed = project.manage(
            "smolqwery_print_extract", "-f", first.isoformat(), "-l", yesterday.isoformat()
        ).stdout
        assert f"== signup {yesterday.isoformat()} (3 row(s))" in printed
        again = project.manage(
            "smolqwery_extract", "--no-progress", "--from", first.isoformat(), "--to",
            yesterday.isoformat(), "--extractor", "signup",
        )  # fmt: skip
        assert "all succeeded" in again.stdout, again.stdout + again.stderr
    finally:
        extractors.write_text(original)
    signups = _duckdb_rows(
        project.root / "smolqwery.duckdb",
        'SELECT count(*), count(*) FILTER (is_staff) FROM "smolqwery"."smolqwery".signup',
    )
    assert signups == [(5, 2)]  # replaced, not doubled


def test_the_warehouse_file_does_not_follow_the_working_directory(
    project: Project, tmp_path: Path
) -> None:
    """A project without BASE_DIR (written from the 0.1.3 README) finds its DuckDB file next
    to manage.py from any directory; a command that only reads never creates one."""
    original = project.settings.read_text()
    base_dir = re.search(r"^BASE_DIR = .*$", original, flags=re.MULTILINE)
    assert base_dir
    without = original.replace(base_dir.group(0), "").replace(
        "BASE_DIR / ", f"{str(project.root)!r} + '/' + "
    )
    try:
        project.settings.write_text(without)
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        status = project.manage("smolqwery_status", cwd=elsewhere)
        assert "signup" in status.stdout
        assert list(elsewhere.iterdir()) == []
        project.settings.write_text(without + '\nSMOLQWERY_DUCKDB_PATH = "gone.duckdb"\n')
        missing = project.manage("smolqwery_status", cwd=elsewhere, ok=False)
        assert missing.returncode != 0
        assert f"{project.root / 'gone.duckdb'} does not exist" in missing.stderr
        project.manage("smolqwery_print_extract", cwd=elsewhere)  # a dry run: no warehouse
        assert not (project.root / "gone.duckdb").exists()
        assert list(elsewhere.iterdir()) == []
    finally:
        project.settings.write_text(original)


def test_changed_dataset_and_time_zone_are_reported_refused_and_accepted(
    project: Project,
) -> None:
    original = project.settings.read_text()
    try:
        project.settings.write_text(original + '\nSMOLQWERY_DATASET = "analytics"\n')
        check = project.manage("check", ok=False)
        assert "smolqwery.W014" in check.stderr + check.stdout
        assert "SMOLQWERY_DATASET = 'smolqwery'" in check.stderr + check.stdout
        migrate = project.manage("migrate", ok=False)
        assert "smolqwery.W014" in migrate.stderr + migrate.stdout
        refused = project.manage("smolqwery_extract", "--no-progress", ok=False)
        assert refused.returncode != 0 and "smolqwery_accept_settings" in refused.stderr

        accepted = project.manage("smolqwery_accept_settings").stdout
        assert "accepted: SMOLQWERY_DATASET is now 'analytics'" in accepted
        assert "System check identified no issues" in project.manage("check").stdout
        # The tables of the applied migrations now exist in the new schema: exports work.
        moved = project.manage("smolqwery_extract", "--no-progress")
        assert "all succeeded" in moved.stdout, moved.stdout + moved.stderr

        project.settings.write_text(
            original + '\nSMOLQWERY_DATASET = "analytics"\nTIME_ZONE = "Europe/Paris"\n'
        )
        tz = project.manage("check", ok=False)
        assert "smolqwery.W015" in tz.stderr + tz.stdout
        assert "TIME_ZONE = 'UTC'" in tz.stderr + tz.stdout
    finally:
        project.settings.write_text(original)
