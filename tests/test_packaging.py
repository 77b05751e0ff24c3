"""A wheel built from the repository installs into a fresh virtualenv and works there.

The wheel (tests/fixtures/packaging.py: built from a copy of the sources) is installed
with ``--no-deps`` into a new virtualenv whose dependencies come from this interpreter's
site-packages through a ``.pth`` line, so no package index is needed for them. The check runs
from a directory outside the repository, so only the installed copy can be imported.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def run(*args: str | Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


def test_wheel_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "smolqwery/__init__.py",
        "smolqwery/py.typed",
        "smolqwery/checks.py",
        "smolqwery/migrations/__init__.py",
        "smolqwery/migrations/0001_initial.py",
        "smolqwery/management/commands/__init__.py",
        "smolqwery/warehouses/__init__.py",
        # The Metrics page's chart library, served as the app's own static files, and its licence.
        "smolqwery/static/smolqwery/uplot/uPlot.iife.min.js",
        "smolqwery/static/smolqwery/uplot/uPlot.min.css",
        "smolqwery/static/smolqwery/uplot/LICENSE",
        "smolqwery/static/smolqwery/metrics.js",
        "smolqwery/static/smolqwery/metrics.css",
        "smolqwery/templates/admin/smolqwery/metrics.html",
    ):
        assert required in names, required
    assert not any(n.startswith("tests/") for n in names)
    assert not any("__pycache__" in n for n in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Requires-Dist: django>=4.2" in text
    assert "Provides-Extra: duckdb" in text
    assert "Provides-Extra: bigquery" in text
    google = [line for line in text.splitlines() if line.startswith("Requires-Dist: google")]
    assert google and all('extra == "bigquery"' in line for line in google), google
    assert "Requires-Python: >=3.10" in text


def test_wheel_installs_and_imports_in_a_fresh_virtualenv(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    venv_purelib = Path(
        run(
            python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path
        ).stdout.strip()
    )
    # Dependencies (Django, google-cloud-bigquery, duckdb, …) from this interpreter.
    (venv_purelib / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel, cwd=tmp_path)

    script = textwrap.dedent(
        """
        import importlib.resources, pathlib, sys
        import smolqwery
        assert "venv" in pathlib.Path(smolqwery.__file__).parts, smolqwery.__file__
        assert importlib.resources.files("smolqwery").joinpath("py.typed").is_file()
        from smolqwery import BaseExtractor, D, ExtractorType, sq_field
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
        call_command("migrate", "smolqwery", verbosity=0)
        from smolqwery.models import ExportRun
        print("runs", ExportRun.objects.count(), "version", smolqwery.__version__)
        """
    )
    result = run(python, "-c", script, cwd=tmp_path)
    assert "System check identified no issues" in result.stdout
    assert "runs 0 version" in result.stdout
