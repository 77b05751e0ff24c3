"""The versions smolqwery claims are the versions CI tests (issue 14, point 9).

``scripts/test-versions`` runs a subset of the suite on the lowest pair (Python 3.10 and the
declared lower bound of every dependency: ``scripts/versions/lowest.txt``) and the highest
(Python 3.13, the newest Django 6.x); the main run is this interpreter. These checks keep the
constraints file equal to ``pyproject.toml``'s lower bounds and the classifiers equal to the
tested versions.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import django
import pytest

tomllib = pytest.importorskip("tomllib")

REPO = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
SCRIPT = (REPO / "scripts" / "test-versions").read_text()


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower()


def _lower_bounds() -> dict[str, str]:
    """``name → version`` of every ``>=`` bound of the runtime dependencies and user extras."""
    extras = PROJECT["optional-dependencies"]
    requirements = [
        *PROJECT["dependencies"],
        *extras["duckdb"],
        *extras["bigquery"],
        *extras["progress"],
        *extras["arrow"],
        *extras["celery"],
        *extras["tasks"],
    ]
    bounds = {}
    for requirement in requirements:
        match = re.search(r">=\s*([\w.]+)", requirement)
        assert match, f"{requirement!r} declares no lower bound"
        bounds[_name(requirement)] = match.group(1)
    return bounds


def _pins(name: str) -> dict[str, str]:
    lines = (REPO / "scripts" / "versions" / name).read_text().splitlines()
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if "==" in line:
            package, version = line.split("==")
            pins[package.strip().lower()] = version.strip()
    return pins


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


#: Pinned in lowest.txt without being smolqwery's bound: the lowest its lowest Celery accepts.
TRANSITIVE = {"kombu"}


def test_lowest_constraints_are_the_declared_lower_bounds() -> None:
    pins = {k: v for k, v in _pins("lowest.txt").items() if k not in TRANSITIVE}
    bounds = _lower_bounds()
    assert pins.keys() == bounds.keys()
    for package, bound in bounds.items():
        assert _release(pins[package]) == _release(bound) + (0,) * (
            len(pins[package].split(".")) - len(bound.split("."))
        ), package


def _pair(name: str) -> str:
    match = re.search(rf"run_pair {name} (3\.\d+)", SCRIPT)
    assert match, name
    return match.group(1)


def test_classifiers_are_the_tested_versions() -> None:
    classifiers = PROJECT["classifiers"]
    pythons = {c.rsplit(" :: ", 1)[1] for c in classifiers if re.search(r"Python :: 3\.\d+$", c)}
    main = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert pythons == {_pair("lowest"), main, _pair("highest")}
    assert PROJECT["requires-python"] == f">={_pair('lowest')}"

    djangos = {c.rsplit(" :: ", 1)[1] for c in classifiers if re.search(r"Django :: \d", c)}
    lowest = ".".join(_pins("lowest.txt")["django"].split(".")[:2])
    main_django = f"{django.VERSION[0]}.{django.VERSION[1]}"
    newest = {v for v in djangos if v.startswith("6.")}
    assert "django>=6,<7" in (REPO / "scripts" / "versions" / "highest.txt").read_text()
    assert len(newest) == 1, "one classifier for the newest Django 6.x"
    assert djangos == {lowest, main_django} | newest
