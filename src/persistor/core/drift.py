"""Compare what the migrations produce with what a database holds, object by object.

Driver-free: both sides are lists of SchemaObject read by an engine. An
object is `missing` when the migrations make it and the database lacks it,
`extra` when the database has it and the migrations do not make it, and
`changed` when both have it with different definitions. The parts of a
missing or extra object (a table's columns, a function's grants) are not
listed again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal, NamedTuple

from persistor.engines.snapshot import SchemaObject

Change = Literal["missing", "extra", "changed"]


class Difference(NamedTuple):
    """One object on which the database and the migrations disagree."""

    change: Change
    kind: str
    name: str
    expected: str | None  # the definition the migrations give; None when extra
    actual: str | None  # the definition in the database; None when missing

    def to_json(self) -> dict[str, Any]:
        """Return the difference as a JSON object."""
        return self._asdict()


def _by_key(objects: Iterable[SchemaObject]) -> dict[tuple[str, str], SchemaObject]:
    return {(o.kind, o.name): o for o in objects}


def compare(
    expected: Sequence[SchemaObject], actual: Sequence[SchemaObject], kinds: Sequence[str]
) -> list[Difference]:
    """Return the differences, in the order of kinds, then by name."""
    want, have = _by_key(expected), _by_key(actual)
    found: list[Difference] = []
    for key in want.keys() - have.keys():
        found.append(Difference("missing", *key, want[key].definition, None))
    for key in have.keys() - want.keys():
        found.append(Difference("extra", *key, None, have[key].definition))
    for key in want.keys() & have.keys():
        if want[key].definition != have[key].definition:
            found.append(Difference("changed", *key, want[key].definition, have[key].definition))
    whole = {(d.kind, d.name) for d in found if d.change != "changed"}
    parent = {**{k: o.parent for k, o in want.items()}, **{k: o.parent for k, o in have.items()}}
    kept = [d for d in found if parent.get((d.kind, d.name)) not in whole]
    rank = {k: n for n, k in enumerate(kinds)}
    return sorted(kept, key=lambda d: (rank.get(d.kind, len(rank)), d.kind, d.name, d.change))
