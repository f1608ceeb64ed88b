"""How rows of the Ecliptix functions become frozen dataclasses, cheaply.

A row class lists the function's result columns as its fields, in order; the
``row`` decorator works out once per class which columns become enums (or
bytes), and ``row_maker`` builds instances from a result row without the
per-field ``setattr`` of a frozen dataclass's ``__init__``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from enum import Enum
from typing import Any, ClassVar, TypeVar

from ecliptix.outcomes import CreationStatus, FlowPurpose, FlowStatus, OtpStatus

# Which enum each text column holds, by column name; other columns pass through.
_ENUM_COLUMNS: dict[str, type[Enum]] = {
    "status": FlowStatus,
    "purpose": FlowPurpose,
    "otp_status": OtpStatus,
    "creation_status": CreationStatus,
}

Convert = Callable[[Any], Any]
R = TypeVar("R", bound="Row")


def _to_enum(enum: type[Enum]) -> Convert:
    """Return value -> member of enum, as enum(value) but without Enum.__call__'s overhead."""
    members: dict[Any, Enum] = dict(enum._value2member_map_)

    def convert(value: Any) -> Enum:
        try:
            return members[value]
        except (KeyError, TypeError):
            return enum(value)  # unknown value: Enum's own ValueError

    return convert


def to_bytes(value: Any) -> Any:
    """Return a bytea value as bytes (psycopg may hand over a memoryview)."""
    return bytes(value) if isinstance(value, memoryview) else value


class Row:
    """Base of the row classes: conversions worked out once per class, not per row."""

    _COLUMNS: ClassVar[tuple[str, ...]] = ()
    # (column, conversion) applied to non-NULL values.
    _CONVERSIONS: ClassVar[tuple[tuple[str, Convert], ...]] = ()

    def __post_init__(self) -> None:
        for name, convert in self._CONVERSIONS:
            value = getattr(self, name)
            if value is not None:
                # Frozen dataclass: this is construction time, the only moment we may set.
                object.__setattr__(self, name, convert(value))


def row_class(
    enums: dict[str, type[Enum]] | None = None, extra: dict[str, Convert] | None = None
) -> Callable[[type[R]], type[R]]:
    """Record the class's columns and conversions (enums by column name, plus extra)."""

    def decorate(cls: type[R]) -> type[R]:
        columns = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
        mapping = {**_ENUM_COLUMNS, **(enums or {})}
        conversions = [(c, _to_enum(mapping[c])) for c in columns if c in mapping]
        conversions += [(c, fn) for c, fn in (extra or {}).items()]
        cls._COLUMNS = columns
        cls._CONVERSIONS = tuple(conversions)
        return cls

    return decorate


def row_maker(cls: type[R]) -> Callable[[Sequence[Any]], R]:
    """Return row -> cls(*row), equal to it, but without the per-field setattr of __init__.

    The row must hold the columns in field order (the client checks the names
    once); a row of the wrong length raises TypeError, as cls(*row) would.
    """
    columns, conversions, n = cls._COLUMNS, cls._CONVERSIONS, len(cls._COLUMNS)
    new = object.__new__

    def make(row: Sequence[Any]) -> R:
        if len(row) != n:
            raise TypeError(f"{cls.__name__} takes {n} columns, got {len(row)}")
        obj = new(cls)
        values = obj.__dict__
        values.update(zip(columns, row, strict=True))
        for name, convert in conversions:
            value = values[name]
            if value is not None:
                values[name] = convert(value)
        return obj

    return make


def minutes(outcome: str) -> int | None:
    """Return the outcome as a number of minutes when it is one."""
    return int(outcome) if outcome.isdecimal() else None
