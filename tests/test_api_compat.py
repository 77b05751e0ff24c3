"""The public API of smolqwery 0.1.3 keeps working: names, ``sq_field``, the README's extractors.

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing
import zoneinfo

import pytest
from django.test import override_settings

from smolqwery.checks import check_extractors
from tests.checkapp import readme

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
README_PATHS = ["tests.checkapp.readme.UserExtractor", "tests.checkapp.readme.EmailExtractor"]


def test_top_level_names() -> None:
    from smolqwery import BaseExtractor, D, ExtractorType, sq_field

    assert isinstance(D, typing.TypeVar)
    assert {m.name for m in ExtractorType} == {"individual_rows", "date_aggregated"}
    assert callable(sq_field)
    assert BaseExtractor[readme.Email] is not None  # generic, as 0.1.3 users annotate it


def test_extractor_module_names() -> None:
    from smolqwery import extractor
    from smolqwery.extractor import D, ExtractionManager, dataclass_to_schema

    assert D is extractor.D
    assert callable(dataclass_to_schema)
    assert hasattr(ExtractionManager, "get_extractors")


def test_013_only_spellings_warn_with_the_release_that_removes_them() -> None:
    """``ExtractionManager``, ``dataclass_to_schema`` and the module ``smolqwery.swallow`` are
    0.1.3 spellings: they keep working, and say they go away in 2.0 and what replaces them."""
    import importlib
    import sys
    import warnings

    from smolqwery import compat
    from smolqwery.extractor import ExtractionManager, dataclass_to_schema

    with pytest.warns(DeprecationWarning, match=r"removed in smolqwery 2\.0: call extractor"):
        assert dataclass_to_schema(readme.UserExtractor()).name == "user"
    with pytest.warns(DeprecationWarning, match=r"ExtractionManager .*removed in smolqwery 2\.0"):
        ExtractionManager()
    sys.modules.pop("smolqwery.swallow", None)
    with pytest.warns(DeprecationWarning, match=r"smolqwery\.swallow .*2\.0.*smolqwery\.compat"):
        swallow = importlib.import_module("smolqwery.swallow")
    assert swallow.Coconut is compat.Coconut
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the names that stay do not warn
        assert compat.Coconut([]).tables == []
        assert compat.legacy_table_schema is swallow.legacy_table_schema


def test_sq_field_metadata() -> None:
    fields = {f.name: f for f in dataclasses.fields(readme.User)}
    assert fields["users"].metadata["sq"]["differentiate"] is True


def test_readme_user_extractor() -> None:
    from smolqwery.extractor import dataclass_to_schema

    extractor = readme.UserExtractor()
    with pytest.warns(DeprecationWarning):
        schema = dataclass_to_schema(extractor)
    assert schema == extractor.get_schema()
    assert schema.name == "user"
    assert extractor.get_date_field() == "date"
    assert [(c.name, c.type, c.mode, c.differentiate) for c in schema.columns] == [
        ("date", "DATE", "REQUIRED", False),
        ("users", "INT64", "REQUIRED", True),
        ("prospects", "INT64", "REQUIRED", True),
        ("clients", "INT64", "REQUIRED", True),
    ]
    assert schema.delta_view_name == "user_delta"


def test_readme_email_extractor_schema_and_window() -> None:
    extractor = readme.EmailExtractor()
    schema = extractor.get_schema()
    assert schema.name == "email"
    assert extractor.get_date_field() == "timestamp"
    assert [(c.name, c.type, c.mode) for c in schema.columns] == [
        ("timestamp", "TIMESTAMP", "REQUIRED"),
        ("type", "STRING", "REQUIRED"),
    ]
    start = datetime.datetime(2022, 1, 1, tzinfo=PARIS)
    end = datetime.datetime(2022, 1, 2, tzinfo=PARIS)
    readme.EmailMessage.objects.rows = [
        readme._Sent(start - datetime.timedelta(microseconds=1), "before"),
        readme._Sent(start, "first"),
        readme._Sent(end - datetime.timedelta(seconds=1), "last"),
        readme._Sent(end, "after"),
    ]
    try:
        rows = list(extractor.extract(start, end))  # start inclusive, end exclusive
    finally:
        readme.EmailMessage.objects.rows = []
    assert [r.type for r in rows] == ["first", "last"]
    assert all(isinstance(r, readme.Email) for r in rows)


def test_optional_annotation_013_spelling() -> None:
    class SignupExtractor(readme.EmailExtractor):
        def get_dataclass(self) -> type[readme.Signup]:  # type: ignore[override]
            return readme.Signup

    referrer = SignupExtractor().get_schema().column("referrer")
    assert (referrer.type, referrer.mode) == ("STRING", "NULLABLE")


def test_013_constructor_arguments_accepted() -> None:
    """0.1.3 instantiated extractors with two positional arguments."""
    assert readme.UserExtractor(None, None).get_table_name() == "user"


def test_extraction_manager_and_checks_with_readme_settings() -> None:
    from smolqwery.extractor import ExtractionManager

    with override_settings(SMOLQWERY_EXTRACTORS=README_PATHS):
        with pytest.warns(DeprecationWarning):
            extractors = list(ExtractionManager().get_extractors())
        assert check_extractors() == []
    assert [type(e) for e in extractors] == [readme.UserExtractor, readme.EmailExtractor]


def test_production_code_never_imports_a_mock_library() -> None:
    """D14: 0.1.3 imported ``unittest.mock`` at run time for a mock mode that did not work."""
    import ast
    from pathlib import Path

    import smolqwery

    offenders = []
    for path in Path(smolqwery.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("unittest")]
    assert offenders == []
