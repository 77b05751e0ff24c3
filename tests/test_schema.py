"""Schema builder: dataclass → ordered warehouse columns (types, modes, descriptions, checks)."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import keyword
import typing
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Optional, Union

import pytest
from django.contrib.auth.models import User as DjangoUser
from hypothesis import given, settings
from hypothesis import strategies as st

from smolqwery import BaseExtractor, ExtractorType, sq_field
from smolqwery.errors import SchemaError
from smolqwery.extractor import name_words, snake_case
from smolqwery.schema import Column, TableSchema, build_table_schema
from tests.checkapp import future_annotations

AGG = ExtractorType.date_aggregated
IND = ExtractorType.individual_rows


def make_extractor(cls: type, kind: ExtractorType, **methods: Any) -> BaseExtractor[Any]:
    """An extractor of ``cls``; ``methods`` override e.g. ``get_date_field`` with a constant."""

    def extract(self: Any, date_start: Any, date_end: Any) -> Iterator[Any]:
        yield from ()

    body: dict[str, Any] = {
        "get_dataclass": lambda self: cls,
        "get_extractor_type": lambda self: kind,
        "extract": extract,
        "__module__": __name__,
        "__qualname__": f"{cls.__name__}Extractor",
    }
    body.update({name: (lambda self, v=v: v) for name, v in methods.items()})
    return type(f"{cls.__name__}Extractor", (BaseExtractor,), body)()  # type: ignore[no-any-return]


def schema_of(cls: type, kind: ExtractorType = IND, **methods: Any) -> TableSchema:
    return build_table_schema(make_extractor(cls, kind, **methods))


def row(annotation: Any, name: str = "value", **field_kwargs: Any) -> type:
    """An individual-rows dataclass: ``timestamp`` plus one field of ``annotation``."""
    extra: list[Any] = [(name, annotation, dataclasses.field(**field_kwargs))]
    return dataclasses.make_dataclass("Row", [("timestamp", datetime.datetime), *extra])


def agg(annotation: Any, name: str = "value", **field_kwargs: Any) -> type:
    """A date-aggregated dataclass with one field."""
    return dataclasses.make_dataclass("Totals", [(name, annotation, sq_field(**field_kwargs))])


# --- type mapping --------------------------------------------------------------------------

MAPPING = [
    (int, "INT64"),
    (float, "FLOAT64"),
    (bool, "BOOL"),
    (str, "STRING"),
    (bytes, "BYTES"),
    (datetime.date, "DATE"),
    (datetime.datetime, "TIMESTAMP"),
    (decimal.Decimal, "NUMERIC"),
]


@pytest.mark.parametrize(("annotation", "bq_type"), MAPPING)
def test_type_mapping(annotation: type, bq_type: str) -> None:
    column = schema_of(row(annotation)).column("value")
    assert (column.type, column.mode) == (bq_type, "REQUIRED")


class Level(enum.IntEnum):
    LOW = 1


class Colour(str, enum.Enum):
    RED = "red"


class Money(decimal.Decimal):
    pass


class When(datetime.datetime):
    pass


class Flags(enum.IntFlag):
    A = 1


@pytest.mark.parametrize(
    ("annotation", "bq_type"),
    [
        (Level, "INT64"),
        (Flags, "INT64"),
        (Colour, "STRING"),
        (Money, "NUMERIC"),
        (When, "TIMESTAMP"),
    ],
)
def test_subclasses_of_supported_types_map_to_their_base(annotation: type, bq_type: str) -> None:
    """Decision: a subclass (IntEnum, str-Enum, TextChoices, …) is stored as its base type."""
    assert schema_of(row(annotation)).column("value").type == bq_type


UserId = typing.NewType("UserId", int)
Email = typing.NewType("Email", str)


@pytest.mark.parametrize(
    ("annotation", "bq_type", "mode"),
    [(UserId, "INT64", "REQUIRED"), (Optional[Email], "STRING", "NULLABLE")],  # noqa: UP045
)
def test_newtype_maps_to_its_supertype(annotation: Any, bq_type: str, mode: str) -> None:
    column = schema_of(row(annotation)).column("value")
    assert (column.type, column.mode) == (bq_type, mode)


OPTIONAL_SPELLINGS = [
    pytest.param(lambda t: Optional[t], id="Optional[X]"),  # noqa: UP045
    pytest.param(lambda t: Union[t, None], id="Union[X, None]"),  # noqa: UP007
    pytest.param(lambda t: Union[None, t], id="Union[None, X]"),  # noqa: UP007
    pytest.param(lambda t: t | None, id="X | None"),
    pytest.param(lambda t: None | t, id="None | X"),
    pytest.param(lambda t: Optional[Optional[t]], id="Optional[Optional[X]]"),  # noqa: UP045
]


@pytest.mark.parametrize("spell", OPTIONAL_SPELLINGS)
@pytest.mark.parametrize(("annotation", "bq_type"), MAPPING)
def test_optional_spellings(spell: Any, annotation: type, bq_type: str) -> None:
    column = schema_of(row(spell(annotation))).column("value")
    assert (column.type, column.mode) == (bq_type, "NULLABLE")


def test_d15_string_annotations_from_future_import() -> None:
    schema = schema_of(future_annotations.Everything)
    assert [(c.name, c.type, c.mode) for c in schema.columns] == [
        ("timestamp", "TIMESTAMP", "REQUIRED"),
        ("day", "DATE", "REQUIRED"),
        ("count", "INT64", "REQUIRED"),
        ("ratio", "FLOAT64", "REQUIRED"),
        ("flag", "BOOL", "REQUIRED"),
        ("label", "STRING", "REQUIRED"),
        ("blob", "BYTES", "REQUIRED"),
        ("amount", "NUMERIC", "REQUIRED"),
        ("maybe_pipe", "INT64", "NULLABLE"),
        ("maybe_optional", "STRING", "NULLABLE"),
        ("maybe_union", "BOOL", "NULLABLE"),
        ("maybe_reversed", "DATE", "NULLABLE"),
    ]


def test_d15_string_annotations_with_differentiate_and_optional() -> None:
    schema = schema_of(future_annotations.Totals, AGG)
    total = schema.column("total")
    assert (total.type, total.mode, total.differentiate) == ("INT64", "NULLABLE", True)
    assert total.description == "Users ever registered"
    assert schema.column("revenue").differentiate


def test_d15_unresolvable_string_annotation_names_extractor() -> None:
    with pytest.raises(SchemaError, match=r"UnresolvableExtractor.*NotDefinedAnywhere"):
        schema_of(future_annotations.Unresolvable)


# --- the 0.1.3 defects ---------------------------------------------------------------------


@pytest.mark.parametrize("annotation", [bool, Optional[bool], bool | None])  # noqa: UP045
def test_d01_bool_is_never_int64(annotation: Any) -> None:
    assert schema_of(row(annotation)).column("value").type == "BOOL"
    assert schema_of(agg(annotation), AGG).column("value").type == "BOOL"


@pytest.mark.parametrize("annotation", [bool, Optional[bool]])  # noqa: UP045
def test_d01_differentiate_refused_on_bool(annotation: Any) -> None:
    with pytest.raises(SchemaError, match=r"Totals\.value: differentiate=True needs a numeric"):
        schema_of(agg(annotation, differentiate=True), AGG)


@pytest.mark.parametrize("annotation", [datetime.datetime, Optional[datetime.datetime], When])  # noqa: UP045
def test_d02_datetime_is_never_date(annotation: Any) -> None:
    assert schema_of(row(annotation)).column("value").type == "TIMESTAMP"


def test_d02_timestamp_field_is_a_timestamp_column() -> None:
    schema = schema_of(row(int))
    assert schema.date_column == "timestamp"
    assert schema.date_column_type == "TIMESTAMP"


class _Plain(enum.Enum):
    A = "a"


UNSUPPORTED = [
    pytest.param(list, "<class 'list'>", id="list"),
    pytest.param(dict, "<class 'dict'>", id="dict"),
    pytest.param(list[int], "list[int]", id="list[int]"),
    pytest.param(dict[str, int], "dict[str, int]", id="dict[str, int]"),
    pytest.param(tuple[int, ...], "tuple[int, ...]", id="tuple"),
    pytest.param(typing.Any, "typing.Any", id="Any"),
    pytest.param(Union[int, str], "typing.Union[int, str]", id="Union[int, str]"),  # noqa: UP007
    pytest.param(int | str, "int | str", id="int | str"),
    pytest.param(Optional[Union[int, str]], "int, str, NoneType", id="Optional[Union]"),  # noqa: UP007, UP045
    pytest.param(DjangoUser, "django.contrib.auth.models.User", id="a Django model"),
    pytest.param(object, "<class 'object'>", id="object"),
    pytest.param(_Plain, "_Plain", id="a plain Enum"),
    pytest.param(type(None), "NoneType", id="None"),
    pytest.param(typing.Literal["a"], "Literal", id="Literal"),
]


@pytest.mark.parametrize(("annotation", "shown"), UNSUPPORTED)
def test_d15_unsupported_annotation_names_extractor_field_and_type(
    annotation: Any, shown: str
) -> None:
    with pytest.raises(SchemaError) as info:
        schema_of(row(annotation, name="payload"))
    text = str(info.value)
    assert "tests.test_schema.RowExtractor" in text  # the extractor
    assert "Row.payload" in text  # the field
    assert shown in text  # the type
    assert "unsupported type" in text


# --- differentiate, description, date columns ----------------------------------------------


@pytest.mark.parametrize(
    "annotation",
    [int, float, decimal.Decimal, Optional[int], float | None, Level],  # noqa: UP045
)
def test_differentiate_on_numeric_aggregated_fields(annotation: Any) -> None:
    column = schema_of(agg(annotation, differentiate=True), AGG).column("value")
    assert column.differentiate
    assert column.to_dict()["differentiate"] is True


@pytest.mark.parametrize("annotation", [str, bytes, datetime.date, datetime.datetime])
def test_differentiate_refused_on_non_numeric(annotation: Any) -> None:
    with pytest.raises(SchemaError, match="needs a numeric field"):
        schema_of(agg(annotation, differentiate=True), AGG)


def test_differentiate_refused_on_individual_rows() -> None:
    cls = row(int, metadata={"sq": {"differentiate": True}})
    with pytest.raises(SchemaError, match="only allowed on date-aggregated"):
        schema_of(cls)


def test_description_becomes_column_description() -> None:
    column = schema_of(agg(int, description="Users ever registered"), AGG).column("value")
    assert column.description == "Users ever registered"
    assert column.to_dict()["description"] == "Users ever registered"
    assert schema_of(agg(int), AGG).column("value").description == ""


def test_sq_field_keeps_other_metadata_and_dataclass_options() -> None:
    @dataclasses.dataclass
    class Counts:
        users: int = sq_field(default=0, description="d", metadata={"mine": 1})

    field = dataclasses.fields(Counts)[0]
    assert field.metadata["mine"] == 1
    assert field.metadata["sq"] == {"differentiate": False, "description": "d"}
    assert Counts().users == 0


def test_aggregated_tables_lead_with_date_required() -> None:
    @dataclasses.dataclass
    class Signups:
        b_total: int
        a_total: float | None

    schema = schema_of(Signups, AGG)
    assert schema.columns[0] == Column("date", "DATE", "REQUIRED", "Day the row describes")
    assert schema.column_names == ("date", "b_total", "a_total")  # declaration order
    assert schema.date_column == "date"


def test_aggregated_dataclass_may_not_declare_date() -> None:
    with pytest.raises(SchemaError, match="remove this field"):
        schema_of(agg(datetime.date, name="date"), AGG)


def test_individual_rows_need_timestamp() -> None:
    cls = dataclasses.make_dataclass("Sent", [("sent_at", datetime.datetime)])
    with pytest.raises(SchemaError, match=r"needs a 'timestamp' field.*get_date_field"):
        schema_of(cls)


def test_date_field_overridable() -> None:
    cls = dataclasses.make_dataclass("Sent", [("sent_at", datetime.datetime)])
    schema = schema_of(cls, get_date_field="sent_at")
    assert schema.date_column == "sent_at"


def test_timestamp_may_be_a_date() -> None:
    assert schema_of(row(int, name="n")).date_column_type == "TIMESTAMP"
    cls = dataclasses.make_dataclass("Daily", [("timestamp", datetime.date)])
    assert schema_of(cls).date_column_type == "DATE"


@pytest.mark.parametrize("annotation", [str, int, Optional[datetime.datetime]])  # noqa: UP045
def test_timestamp_must_be_a_required_date_or_datetime(annotation: Any) -> None:
    cls = dataclasses.make_dataclass("Row", [("timestamp", annotation)])
    with pytest.raises(SchemaError, match="'timestamp' must be a non-Optional"):
        schema_of(cls)


def test_get_dataclass_must_return_a_dataclass() -> None:
    class NotADataclass:
        timestamp: datetime.datetime

    with pytest.raises(SchemaError, match="must return a dataclass"):
        schema_of(NotADataclass)


def test_column_names_differing_by_case_refused() -> None:
    cls = dataclasses.make_dataclass(
        "Row", [("timestamp", datetime.datetime), ("Count", int), ("count", int)]
    )
    with pytest.raises(SchemaError, match="'Count' and 'count'"):
        schema_of(cls)


@pytest.mark.parametrize("name", ["_partitiontime", "_TABLE_SUFFIX", "_file_name"])
def test_reserved_column_names_refused(name: str) -> None:
    with pytest.raises(SchemaError, match="reserves"):
        schema_of(row(int, name=name))


def test_table_description_from_docstring_only_when_written() -> None:
    @dataclasses.dataclass
    class Documented:
        """Emails sent."""

        timestamp: datetime.datetime

    assert schema_of(Documented).description == "Emails sent."
    assert schema_of(row(int)).description == ""


# --- table names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("class_name", "table"),
    [
        ("EmailMessage", "email_message"),
        ("User2", "user_2"),
        ("User", "user"),
        ("email", "email"),
        ("DailyStats2024", "daily_stats_2024"),
        ("HTTPLog", "http_log"),
        ("setIBAN", "set_iban"),
        ("Daily_Stats", "daily_stats"),
        ("IOError2", "io_error_2"),
    ],
)
def test_table_name_is_snake_case_the_013_way(
    class_name: str, table: str, legacy_utils: ModuleType
) -> None:
    assert snake_case(class_name) == table
    assert legacy_utils.to_snake(legacy_utils.smart_split_name(class_name)) == table
    cls = dataclasses.make_dataclass(class_name, [("timestamp", datetime.datetime)])
    assert schema_of(cls).name == table


#: Letters where 0.1.3's cutting has its corners: acronyms, digits (Unicode ones too),
#: underscores, non-ASCII letters of both cases.
_NAME_CHARS = "ABCHLPTXZabcghlxyz0129_éÉßİ٣"


@settings(max_examples=400, deadline=None)
@given(
    name=st.text(_NAME_CHARS, max_size=24)
    | st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True)
)
def test_table_names_match_013s_own_function(name: str, legacy_utils: ModuleType) -> None:
    """Every existing 0.1.3 table is found under its name: same words, same table name."""
    assert name_words(name) == legacy_utils.smart_split_name(name)
    assert snake_case(name) == legacy_utils.to_snake(legacy_utils.smart_split_name(name))


def test_table_name_overridable() -> None:
    assert schema_of(row(int), get_table_name="emails_v2").name == "emails_v2"


@pytest.mark.parametrize("table", ["emails-v2", "2emails", "", "smolqwery_ledger", "Smolqwery_x"])
def test_invalid_or_reserved_table_name_refused(table: str) -> None:
    with pytest.raises(SchemaError, match="RowExtractor"):
        schema_of(row(int), get_table_name=table)


def test_schema_round_trips_through_its_literal_form() -> None:
    schema = schema_of(future_annotations.Totals, AGG)
    assert TableSchema.from_dict(schema.to_dict()) == schema
    assert schema.fingerprint() == TableSchema.from_dict(schema.to_dict()).fingerprint()


# --- generated dataclasses -----------------------------------------------------------------

_names = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True).filter(
    lambda n: not keyword.iskeyword(n) and n != "timestamp"
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(_names, st.sampled_from(MAPPING), st.booleans()),
        min_size=1,
        max_size=12,
        unique_by=lambda t: t[0],
    )
)
def test_generated_dataclasses(fields: list[tuple[str, tuple[type, str], bool]]) -> None:
    spec: list[Any] = [("timestamp", datetime.datetime)]
    spec += [(name, Optional[t] if opt else t) for name, (t, _), opt in fields]  # noqa: UP045
    schema = schema_of(dataclasses.make_dataclass("Generated", spec))
    expected = [("timestamp", "TIMESTAMP", "REQUIRED")] + [
        (name, bq, "NULLABLE" if opt else "REQUIRED") for name, (_, bq), opt in fields
    ]
    assert [(c.name, c.type, c.mode) for c in schema.columns] == expected
