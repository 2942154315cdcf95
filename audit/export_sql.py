"""Exports on PostgreSQL: the database writes each line, and COPY streams them.

Formatting 1 million events in Python cost more CPU than the 50,000 events/s an export
must reach on two cores. Here PostgreSQL builds every line of every format in SQL (the
same bytes audit.exporting writes in Python: tests compare the two), COPY ... TO STDOUT
sends them in the server's own blocks, and Python only undoes COPY's backslash escapes
when a block has any and re-encodes non-empty details (which SQL cannot write in the
canonical form: jsonb orders keys by length, and numbers in its own way). Those details
arrive between \\x01 and \\x02, bytes a JSON text never holds raw.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence

from django.db import connections
from django.db.models import CharField, QuerySet
from django.db.models.expressions import RawSQL

from audit.canonical import canonical_details, parsed_details
from audit.models import Event

_E, _S = '"audit_event"', '"audit_seal"'
_STRINGS = {
    "chain", "actor_kind", "actor_id", "actor_name", "auth_method", "client_address",
    "user_agent", "request_id", "action", "outcome", "organisation", "repository", "tag",
    "digest",
}  # fmt: skip
_WHEN = f'to_char({_E}."occurred_at" AT TIME ZONE \'UTC\', \'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\')'
_MARKED = (
    f"CASE WHEN {_E}.\"details\" IS NULL OR {_E}.\"details\" = '{{}}'::jsonb THEN '{{}}' "
    f'ELSE chr(1) || {_E}."details"::text || chr(2) END'
)


def _column(name: str) -> str:
    table = _S if name in ("seq", "prev_hash", "hash") else _E
    return f'{table}."{name}"'


def _json(name: str) -> str:
    """SQL for the column's value as JSON text (what the canonical encoder writes)."""
    if name == "details":
        return _MARKED
    if name == "occurred_at":
        return f"'\"' || {_WHEN} || '\"'"
    if name == "token_id":
        return f"coalesce({_column(name)}::text, 'null')"
    if name in ("id", "seq"):
        return f"{_column(name)}::text"
    if name in ("prev_hash", "hash"):  # hexadecimal: nothing to escape
        return f"'\"' || {_column(name)} || '\"'"
    # to_json escapes what Python's encoder does: " \ \b \f \n \r \t and \u00xx below 0x20.
    return f"to_json({_column(name)})::text"


def _csv(name: str) -> str:
    """SQL for the column as csv.writer writes it (quoted only when it must be)."""
    if name == "details":
        return _MARKED
    if name == "occurred_at":
        return _WHEN
    if name == "token_id":
        return f"coalesce({_column(name)}::text, '')"
    if name in ("id", "seq"):
        return f"{_column(name)}::text"
    if name in ("prev_hash", "hash"):
        return _column(name)
    column = _column(name)
    return (
        f"CASE WHEN {column} ~ '[\",\\r\\n]' "
        f"THEN '\"' || replace({column}, '\"', '\"\"') || '\"' ELSE {column} END"
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def jsonl_sql(columns: Sequence[str]) -> str:
    """The canonical JSON object of a row: keys sorted, no spaces (audit.canonical)."""
    parts = [
        _literal(("{" if i == 0 else ",") + f'"{key}":') + " || " + _json(key)
        for i, key in enumerate(sorted(columns))
    ]
    return " || ".join(parts) + " || '}'"


_EMPTY = f'({_E}."details" IS NULL OR {_E}."details" = \'{{}}\'::jsonb)'


def csv_sql(columns: Sequence[str]) -> str:
    """A CSV line, except where details are not empty: then \\x01, the line with an empty
    details field, \\x01 and the details' JSON text. CSV values may hold any character,
    so only where a row starts and the last \\x01 of it are certain; the fields after
    details hold no commas (see _csv_fix)."""
    fields = [
        f"CASE WHEN {_EMPTY} THEN '{{}}' ELSE '' END" if name == "details" else _csv(name)
        for name in columns
    ]
    line = " || ',' || ".join(fields)
    return (
        f"CASE WHEN {_EMPTY} THEN '' ELSE chr(1) END || {line} || "
        f"CASE WHEN {_EMPTY} THEN '' ELSE chr(1) || {_E}.\"details\"::text END"
    )


def _activity_sql() -> str:
    """audit.ocsf._activity, as a CASE over the action and its last dotted word."""
    from audit.ocsf import _CREATE, _DELETE, _READ

    def among(values: Sequence[str] | set[str]) -> str:
        return "(" + ", ".join(_literal(v) for v in sorted(values)) + ")"

    action = f'{_E}."action"'
    verb = f"substring({action} from '[^.]*$')"

    def fragment(uid: int, name: str) -> str:
        return _literal(f'"activity_id":{uid},"activity_name":"{name}","type_uid":{600300 + uid},')

    return (
        f"CASE WHEN {action} IN {among(_CREATE)} OR {verb} IN ('create', 'add', 'enable') "
        f"THEN {fragment(1, 'Create')} "
        f"WHEN {action} IN {among(_READ)} THEN {fragment(2, 'Read')} "
        f"WHEN {action} IN {among(_DELETE)} OR {verb} IN ('delete', 'remove', 'disable') "
        f"THEN {fragment(4, 'Delete')} "
        f"WHEN {verb} IN ('update', 'set', 'move') THEN {fragment(3, 'Update')} "
        f"ELSE {fragment(99, 'Other')} END"
    )


def ocsf_sql(columns: Sequence[str]) -> str:
    """audit.ocsf.ocsf_lines' template, in SQL."""
    from audit.ocsf import _HEAD, _MAPPED

    j = {name: _json(name) for name in columns}
    ms = f'floor(extract(epoch from {_E}."occurred_at") * 1000)::bigint::text'
    unmapped = " || ',' || ".join(
        _literal(f'"{name}":') + " || " + j[name] for name in columns if name not in _MAPPED
    )
    success = f"{_E}.\"outcome\" = 'success'"
    return " || ".join(
        (
            _literal(_HEAD),
            _activity_sql(),
            f'CASE WHEN {success} THEN \'"severity_id":1,"time":\' ELSE '
            f'\'"severity_id":3,"time":\' END',
            ms,
            f'CASE WHEN {success} THEN \',"status":"Success","status_id":1,\' ELSE '
            f'\',"status":"Failure","status_id":2,\' END',
            _literal('"status_detail":') + f" || {j['outcome']}",
            _literal(',"actor":{"user":{"name":') + f" || {j['actor_name']}",
            _literal(',"uid":') + f" || {j['actor_id']}",
            _literal(',"type":') + f" || {j['actor_kind']}",
            f"CASE WHEN {_E}.\"auth_method\" <> '' THEN "
            + _literal(',"credential_uid":')
            + f" || {j['auth_method']} ELSE '' END",
            _literal('},"authorizations":[{"decision":') + f" || {j['outcome']}",
            _literal('}]},"src_endpoint":{"ip":') + f" || {j['client_address']}",
            _literal('},"http_request":{"user_agent":') + f" || {j['user_agent']}",
            _literal(',"uid":') + f" || {j['request_id']}",
            _literal('},"api":{"operation":') + f" || {j['action']}",
            _literal(',"request":{"uid":') + f" || {j['request_id']}",
            _literal('}},"metadata":{"uid":"') + f" || {j['id']}",
            _literal('","version":"1.1.0","product":{"name":"Hub","vendor_name":"Hub"},')
            + " || "
            + _literal('"log_name":')
            + f" || {j['chain']}",
            _literal('},"unmapped":{') + f" || {unmapped} || '}}'",
            f"CASE WHEN {_E}.\"repository\" <> '' THEN "
            + _literal(',"resources":[{"type":"repository","name":')
            + f" || {j['repository']} || '}}]' ELSE '' END",
            "'}'",
        )
    )


_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_ESCAPE = re.compile(rb"\\(.)", re.DOTALL)
_UNESCAPE = {b"\\": b"\\", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}
_UNESCAPE[b"v"] = b"\v"


def unescape(data: bytes) -> bytes:
    """COPY's text format backslash-escapes backslashes and control characters."""
    if b"\\" not in data:
        return data
    return _ESCAPE.sub(lambda m: _UNESCAPE.get(m.group(1), m.group(1)), data)


def _details(escaped: bytes) -> str:
    return unescape(escaped).decode()


def _copy_escaped(text: str) -> bytes:
    # What COPY would have written: encoded JSON holds no raw control characters.
    return text.encode().replace(b"\\", b"\\\\")


_MARKED_DETAILS = re.compile(b"\x01([^\x02]*)\x02")


def _jsonl_fix(block: bytes) -> bytes:
    return _MARKED_DETAILS.sub(
        lambda m: _copy_escaped(canonical_details(_details(m.group(1)))), block
    )


def _ocsf_fix(block: bytes) -> bytes:
    return _MARKED_DETAILS.sub(
        lambda m: _copy_escaped(_compact(parsed_details(_details(m.group(1))))), block
    )


_MARKED_ROW = re.compile(b"^\x01(.*)\x01([^\x01\n]*)$", re.M)


def _csv_field(text: str) -> str:
    """As csv.writer (QUOTE_MINIMAL, lines ending \\r\\n) writes a value."""
    if any(c in text for c in '",\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_fix(block: bytes, after: int) -> bytes:
    """Puts each marked row's details, canonical and quoted, into its empty details field,
    which `after` comma-free fields (seq, hashes) follow."""

    def fix(match: re.Match[bytes]) -> bytes:
        head, *tail = match.group(1).rsplit(b",", after)
        canonical = canonical_details(_details(match.group(2)))
        return b",".join((head + _copy_escaped(_csv_field(canonical)), *tail))

    return _MARKED_ROW.sub(fix, block)


_LINE_SQL = {"jsonl": jsonl_sql, "csv": csv_sql, "ocsf": ocsf_sql}
BLOCK = 256 * 1024


class CopyExport:
    """The lines of `fmt` for the sealed events in seal order, as str pieces of about BLOCK
    bytes; `count` says how many events have gone by."""

    def __init__(
        self, fmt: str, events: QuerySet[Event], columns: Sequence[str], header: str = ""
    ) -> None:
        # Built from this module's constants and column names only: no input reaches it.
        line = RawSQL(_LINE_SQL[fmt](columns), (), output_field=CharField())  # noqa: S611
        self.query = events.annotate(export_line=line).values_list("export_line")
        self.fmt, self.header, self.count = fmt, header, 0
        self.after = len(columns) - 1 - list(columns).index("details")
        assert set(columns[-self.after :]) <= {"seq", "prev_hash", "hash"}, "commas after"

    def __iter__(self) -> Iterator[str]:
        if self.header:
            yield self.header
        sql, params = self.query.query.sql_with_params()
        with connections[self.query.db].cursor() as cursor:
            raw = cursor.cursor  # psycopg's own: Django's wrapper has no copy()
            with raw.copy(f"COPY ({sql}) TO STDOUT", params) as copy:
                pending: list[bytes] = []
                size = 0
                for data in copy:
                    pending.append(bytes(data))
                    size += len(data)
                    if size >= BLOCK:
                        yield self._text(b"".join(pending))
                        pending, size = [], 0
                if pending:
                    yield self._text(b"".join(pending))

    def _text(self, block: bytes) -> str:
        # PostgreSQL sends one row per CopyData message, so a block ends at a row's end,
        # and COPY writes each row on one line (a newline inside a row as \n): the lines
        # count rows, and marked rows are found by line before anything is unescaped.
        self.count += block.count(b"\n")
        if b"\x01" in block:
            if self.fmt == "csv":
                block = _csv_fix(block, self.after)
            elif self.fmt == "ocsf":
                block = _ocsf_fix(block)
            else:
                block = _jsonl_fix(block)
        if self.fmt == "csv":
            block = block.replace(b"\n", b"\r\n")  # csv.writer's line ends
        return unescape(block).decode()
