"""The checks: each reads one statement's parse tree and what the file did before it.

"Existing table" means a table the same file did not create earlier: a
CREATE INDEX on a table created three lines up locks nobody out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from persistor.lint.tree import Node, Statement, relname, type_name, unwrap, walk

Hit = tuple[str, str]  # (rule id, what was found)

# Volatile functions a DEFAULT evaluates once per existing row (a rewrite).
# now(), CURRENT_TIMESTAMP and statement_timestamp() are stable: since
# PostgreSQL 11 their value is computed once and kept in the catalog.
VOLATILE_FUNCTIONS = frozenset(
    {
        "random",
        "random_normal",
        "gen_random_uuid",
        "gen_random_bytes",
        "uuid_generate_v1",
        "uuid_generate_v1mc",
        "uuid_generate_v4",
        "uuidv4",
        "uuidv7",
        "clock_timestamp",
        "timeofday",
        "nextval",
        "txid_current",
    }
)
SERIAL_TYPES = frozenset({"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"})
SMALL_KEY_TYPES = frozenset({"int2", "int4", "serial", "serial2", "serial4", "smallserial"})
WIDENING_TYPES = frozenset({"varchar", "text"})


@dataclass
class FileContext:
    """What the statements so far in one file did that later rules depend on."""

    created: set[str] = field(default_factory=set)
    # (table, column) with a validated CHECK (column IS NOT NULL): SET NOT NULL skips its scan.
    not_null_checked: set[tuple[str, str]] = field(default_factory=set)
    unvalidated_checks: dict[tuple[str, str], str] = field(default_factory=dict)

    def existing(self, table: str) -> bool:
        """Return whether table was not created earlier in this file."""
        return table not in self.created


def check(statement: Statement, ctx: FileContext) -> Iterator[Hit]:
    """Yield the hazards of one statement, then record what it created."""
    handler = _HANDLERS.get(statement.kind)
    if handler is not None:
        yield from handler(statement.node, ctx)


def _create_table(node: Node, ctx: FileContext) -> Iterator[Hit]:
    table = relname(node.get("relation"))
    columns = [unwrap(e)[1] for e in node.get("tableElts", ()) if "ColumnDef" in e]
    keys = _table_primary_keys(node)
    for col in columns:
        yield from _new_column(table, col, single_key=keys == [col.get("colname")])
    ctx.created.add(table)


def _table_primary_keys(node: Node) -> list[str]:
    """Return the columns of a table-level PRIMARY KEY, or of a one-column inline one."""
    for element in node.get("tableElts", ()):
        kind, fields = unwrap(element)
        if kind == "Constraint" and fields.get("contype") == "CONSTR_PRIMARY":
            return [k["String"]["sval"] for k in fields.get("keys", ())]
        if kind == "ColumnDef" and "CONSTR_PRIMARY" in _contypes(fields):
            return [fields.get("colname", "")]
    return []


def _contypes(column: Node) -> list[str]:
    return [c["Constraint"].get("contype", "") for c in column.get("constraints", ())]


def _new_column(table: str, column: Node, single_key: bool) -> Iterator[Hit]:
    name = column.get("colname", "")
    kind = type_name(column.get("typeName"))
    if kind == "timestamp":
        yield "prefer-timestamptz", f"column {table}.{name} is timestamp without time zone"
    if single_key and kind in SMALL_KEY_TYPES:
        yield "prefer-bigint-identity", f"primary key {table}.{name} is {kind}"


def _create_as(node: Node, ctx: FileContext) -> Iterator[Hit]:
    ctx.created.add(relname(node.get("into", {}).get("rel")))
    yield from ()


def _index(node: Node, ctx: FileContext) -> Iterator[Hit]:
    relation = node.get("relation") or {}
    table = relname(relation)
    # ON ONLY a partitioned table is instant (an invalid parent index, whose
    # partitions are then indexed CONCURRENTLY and attached); CONCURRENTLY
    # is refused there.
    if not relation.get("inh", False):
        return
    if not node.get("concurrent") and ctx.existing(table):
        name = node.get("idxname", "(unnamed)")
        yield "index-not-concurrent", f"index {name} on existing table {table} is not CONCURRENTLY"


def _drop(node: Node, ctx: FileContext) -> Iterator[Hit]:
    kind = node.get("removeType")
    if kind == "OBJECT_INDEX" and not node.get("concurrent"):
        yield "drop-index-not-concurrent", f"DROP INDEX {', '.join(_names(node))}"
    elif kind == "OBJECT_TABLE":
        for name in _names(node):
            if ctx.existing(name.rsplit(".", 1)[-1]):
                yield "drop-table", f"DROP TABLE {name}"


def _names(node: Node) -> list[str]:
    out = []
    for obj in node.get("objects", ()):
        items = obj.get("List", {}).get("items", ())
        out.append(".".join(str(i["String"]["sval"]) for i in items if "String" in i))
    return out


def _reindex(node: Node, ctx: FileContext) -> Iterator[Hit]:
    if not _option(node.get("params", ()), "concurrently") and not node.get("concurrent"):
        what = relname(node.get("relation")) or node.get("name", "")
        yield "reindex-not-concurrent", f"REINDEX {what} is not CONCURRENTLY".replace("  ", " ")


def _option(options: list[Node] | tuple[Node, ...], name: str) -> bool:
    """Return whether a DefElem list turns name on (`FULL`, `FULL true`; not `FULL false`)."""
    for opt in options:
        elem = opt.get("DefElem", {})
        if elem.get("defname") == name:
            arg = elem.get("arg")
            if arg is None:
                return True
            kind, value = unwrap(arg)
            if kind == "Boolean":
                return bool(value.get("boolval"))
            return str(value.get("sval", value.get("ival", "true"))).lower() in ("true", "on", "1")
    return False


def _vacuum(node: Node, ctx: FileContext) -> Iterator[Hit]:
    if node.get("is_vacuumcmd") and _option(node.get("options", ()), "full"):
        yield "table-rewrite", "VACUUM FULL"


def _cluster(node: Node, ctx: FileContext) -> Iterator[Hit]:
    yield "table-rewrite", f"CLUSTER {relname(node.get('relation'))}".strip()


def _refresh(node: Node, ctx: FileContext) -> Iterator[Hit]:
    view = relname(node.get("relation"))
    # A view created in this file is empty, and CONCURRENTLY refuses an unpopulated one.
    if not node.get("concurrent") and ctx.existing(view):
        yield "table-rewrite", f"REFRESH MATERIALIZED VIEW {view} without CONCURRENTLY"


def _move_all(node: Node, ctx: FileContext) -> Iterator[Hit]:
    yield "table-rewrite", "ALTER … ALL IN TABLESPACE … SET TABLESPACE"


def _truncate(node: Node, ctx: FileContext) -> Iterator[Hit]:
    for rel in node.get("relations", ()):
        table = relname(rel.get("RangeVar"))
        if ctx.existing(table):
            yield "drop-table", f"TRUNCATE {table}"


def _rename(node: Node, ctx: FileContext) -> Iterator[Hit]:
    table = relname(node.get("relation"))
    if not ctx.existing(table):
        return
    kind = node.get("renameType")
    if kind == "OBJECT_TABLE":
        yield "rename", f"table {table} renamed to {node.get('newname')}"
    elif kind == "OBJECT_COLUMN" and node.get("relationType") == "OBJECT_TABLE":
        old, new = node.get("subname"), node.get("newname")
        yield "rename", f"column {table}.{old} renamed to {new}"


def _alter_table(node: Node, ctx: FileContext) -> Iterator[Hit]:
    table = relname(node.get("relation"))
    is_table = node.get("objtype") == "OBJECT_TABLE"
    for cmd in node.get("cmds", ()):
        fields = cmd["AlterTableCmd"]
        subtype = fields.get("subtype", "")
        if subtype == "AT_SetTableSpace":
            yield "table-rewrite", f"{table} SET TABLESPACE {fields.get('name', '')}"
        elif is_table and ctx.existing(table):
            handler = _ALTER_HANDLERS.get(subtype)
            if handler is not None:
                yield from handler(table, fields, ctx)
        elif is_table and subtype == "AT_AddColumn":  # locks nobody out; still a new column
            column = fields.get("def", {}).get("ColumnDef", {})
            yield from _new_column(table, column, "CONSTR_PRIMARY" in _contypes(column))


def _add_column(table: str, cmd: Node, ctx: FileContext) -> Iterator[Hit]:
    column = cmd.get("def", {}).get("ColumnDef", {})
    name = f"{table}.{column.get('colname', '')}"
    kinds = _contypes(column)
    yield from _new_column(table, column, single_key="CONSTR_PRIMARY" in kinds)
    if type_name(column.get("typeName")) in SERIAL_TYPES:
        yield "volatile-default", f"new column {name} is serial: nextval() for every row"
    for constraint in column.get("constraints", ()):
        c = constraint["Constraint"]
        kind = c.get("contype", "")
        if kind == "CONSTR_DEFAULT":
            volatile = _volatile_call(c.get("raw_expr"))
            if volatile:
                yield "volatile-default", f"new column {name} defaults to {volatile}()"
        elif kind == "CONSTR_IDENTITY":
            yield "volatile-default", f"new column {name} is an identity: a value for every row"
        elif kind == "CONSTR_GENERATED":
            yield "volatile-default", f"new column {name} is generated and stored for every row"
        elif kind in ("CONSTR_PRIMARY", "CONSTR_UNIQUE"):
            yield "unique-without-index", f"new column {name} is {_constraint_word(kind)}"
        elif kind in ("CONSTR_FOREIGN", "CONSTR_CHECK"):
            yield "constraint-not-valid", f"new column {name} has a {_constraint_word(kind)}"


def _constraint_word(contype: str) -> str:
    return {
        "CONSTR_PRIMARY": "PRIMARY KEY",
        "CONSTR_UNIQUE": "UNIQUE",
        "CONSTR_FOREIGN": "FOREIGN KEY",
        "CONSTR_CHECK": "CHECK",
    }.get(contype, contype)


def _volatile_call(expr: Node | None) -> str | None:
    """Return the name of the first volatile function called in expr, if any."""
    for kind, fields in walk(expr):
        if kind == "FuncCall":
            name = str(fields["funcname"][-1]["String"]["sval"]).lower()
            if name in VOLATILE_FUNCTIONS:
                return name
    return None


def _add_constraint(table: str, cmd: Node, ctx: FileContext) -> Iterator[Hit]:
    c = cmd.get("def", {}).get("Constraint", {})
    kind = c.get("contype", "")
    label = f"{_constraint_word(kind)} {c.get('conname', '')}".strip()
    if kind in ("CONSTR_FOREIGN", "CONSTR_CHECK") and not c.get("skip_validation"):
        yield "constraint-not-valid", f"{label} on existing table {table} without NOT VALID"
    if kind in ("CONSTR_PRIMARY", "CONSTR_UNIQUE") and not c.get("indexname"):
        yield "unique-without-index", f"{label} on existing table {table} not USING INDEX"
    if kind == "CONSTR_CHECK":
        column = _not_null_column(c.get("raw_expr"))
        if column and c.get("skip_validation"):
            ctx.unvalidated_checks[(table, c.get("conname", ""))] = column
        elif column:
            ctx.not_null_checked.add((table, column))


def _not_null_column(expr: Node | None) -> str | None:
    """Return col when expr is exactly `col IS NOT NULL`."""
    test = (expr or {}).get("NullTest")
    if not test or test.get("nulltesttype") != "IS_NOT_NULL":
        return None
    fields = test.get("arg", {}).get("ColumnRef", {}).get("fields", ())
    return str(fields[-1]["String"]["sval"]) if fields and "String" in fields[-1] else None


def _validate_constraint(table: str, cmd: Node, ctx: FileContext) -> Iterator[Hit]:
    column = ctx.unvalidated_checks.pop((table, cmd.get("name", "")), None)
    if column:
        ctx.not_null_checked.add((table, column))
    yield from ()


def _set_not_null(table: str, cmd: Node, ctx: FileContext) -> Iterator[Hit]:
    column = cmd.get("name", "")
    if (table, column) not in ctx.not_null_checked:
        yield "set-not-null", f"{table}.{column} SET NOT NULL without a validated CHECK before it"


def _column_type(table: str, cmd: Node, ctx: FileContext) -> Iterator[Hit]:
    column = cmd.get("def", {}).get("ColumnDef", {})
    new = type_name(column.get("typeName"))
    # The old type is in the database, not the file: TYPE varchar/text without
    # USING is taken for the widening it almost always is.
    if new not in WIDENING_TYPES or column.get("raw_default"):
        yield "column-type-change", f"{table}.{cmd.get('name', '')} TYPE {new}"


def _drop_column(table: str, cmd: Node, ctx: FileContext) -> Iterator[Hit]:
    yield "drop-column", f"{table}.{cmd.get('name', '')} dropped"


_ALTER_HANDLERS: dict[str, Callable[[str, Node, FileContext], Iterator[Hit]]] = {
    "AT_AddColumn": _add_column,
    "AT_AddConstraint": _add_constraint,
    "AT_ValidateConstraint": _validate_constraint,
    "AT_SetNotNull": _set_not_null,
    "AT_AlterColumnType": _column_type,
    "AT_DropColumn": _drop_column,
}

_HANDLERS: dict[str, Callable[[Node, FileContext], Iterator[Hit]]] = {
    "CreateStmt": _create_table,
    "CreateTableAsStmt": _create_as,
    "IndexStmt": _index,
    "DropStmt": _drop,
    "ReindexStmt": _reindex,
    "VacuumStmt": _vacuum,
    "ClusterStmt": _cluster,
    "RefreshMatViewStmt": _refresh,
    "AlterTableMoveAllStmt": _move_all,
    "TruncateStmt": _truncate,
    "RenameStmt": _rename,
    "AlterTableStmt": _alter_table,
}
