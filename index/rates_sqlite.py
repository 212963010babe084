"""Registry and rate report on SQLite (mixed into :class:`index.sqlite.SqliteIndex`)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import date, timedelta
from typing import Any

from index.rates import (
    DIMENSIONS,
    DossierRecord,
    Flags,
    ImportResult,
    Line,
    Period,
    Report,
    compute_flags,
    period_bounds,
    scope_keys,
    unit_key,
)
from sohoa.models import DocRecord
from sohoa.text import nfc

# -- unit scope: ``unit_values`` (created with the documents table) holds every unit value ever stored in
# ``documents`` or ``dossiers`` (kept by triggers, a handful of rows); a scoped query keeps the rows whose
# unit is one of the values whose :func:`index.rates.unit_key` is in the caller's keys, all in ONE statement.
UNIT_KEY_FUNCTION = "sohoa_unit_key"  # registered on every connection (index.sqlite.SqliteIndex._conn)


def register_functions(conn: sqlite3.Connection) -> None:
    conn.create_function(UNIT_KEY_FUNCTION, 1, unit_key, deterministic=True)


def unit_scope(col: str, units: tuple[str, ...], param: str = "?") -> tuple[str, str]:
    """SQL condition restricting *col* to the caller's units (bound to *param*) and its argument."""
    sql = (f"{col} IN (SELECT unit FROM unit_values WHERE {UNIT_KEY_FUNCTION}(unit) IN "
           f"(SELECT value FROM json_each({param})))")  # fmt: skip
    return sql, json.dumps(scope_keys(units), ensure_ascii=False)


def unit_values_sql(table: str) -> str:
    """Triggers recording every unit value written to *table* in ``unit_values``."""
    add = (
        "INSERT INTO unit_values (unit) SELECT NEW.unit "
        "WHERE NOT EXISTS (SELECT 1 FROM unit_values WHERE unit = NEW.unit);"
    )
    return (
        f"CREATE TRIGGER IF NOT EXISTS {table}_unit_ins AFTER INSERT ON {table} BEGIN {add} END;\n"
        f"CREATE TRIGGER IF NOT EXISTS {table}_unit_upd AFTER UPDATE OF unit ON {table} BEGIN {add} END;\n"
    )


REGISTRY_SCHEMA = """
CREATE TABLE IF NOT EXISTS dossiers (
    code TEXT PRIMARY KEY,
    procedure TEXT NOT NULL DEFAULT '',
    procedure_name TEXT NOT NULL DEFAULT '',
    field_code TEXT NOT NULL DEFAULT '',
    field_name TEXT NOT NULL DEFAULT '',
    channel TEXT NOT NULL DEFAULT '',
    received TEXT NOT NULL,
    due TEXT NOT NULL DEFAULT '',
    resolved TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT '',
    unit TEXT NOT NULL DEFAULT '',
    level TEXT NOT NULL DEFAULT '',
    no_result INTEGER NOT NULL DEFAULT 0,
    required TEXT NOT NULL DEFAULT '[]',
    signed INTEGER NOT NULL DEFAULT 0,
    has_input INTEGER NOT NULL DEFAULT 0,
    required_ok INTEGER NOT NULL DEFAULT 0,
    has_output INTEGER NOT NULL DEFAULT 0,
    components TEXT NOT NULL DEFAULT '[]'
);
-- covering indexes: a period report reads only these, never the wide rows
CREATE INDEX IF NOT EXISTS dossiers_received_cover ON dossiers(
    received, unit, level, field_name, field_code, procedure, channel, has_input, required_ok);
CREATE INDEX IF NOT EXISTS dossiers_resolved_cover ON dossiers(
    resolved, unit, level, field_name, field_code, procedure, channel, has_output, no_result);
""" + unit_values_sql("dossiers")

_STATS_DIMS = {
    "unit": "{r}.unit",
    "level": "{r}.level",
    "field": "CASE WHEN {r}.field_name != '' THEN {r}.field_name ELSE {r}.field_code END",
    "procedure": "{r}.procedure",
    "channel": "{r}.channel",
}


def _stats_sql(r: str, sign: int) -> str:
    """Statements adding (*sign* = 1) or removing (-1) dossier row *r* (NEW/OLD) to/from ``rate_stats``."""
    out = []
    for side, col, dig_any, dig_req in (
        ("received", "received", f"{r}.has_input", f"{r}.required_ok"),
        ("resolved", "resolved", f"({r}.has_output | {r}.no_result)", f"({r}.has_output | {r}.no_result)"),
    ):
        dims = {**{k: v.format(r=r) for k, v in _STATS_DIMS.items()}, "month": f"substr({r}.{col}, 1, 7)",
                "total": "'total'"}  # fmt: skip
        select = " UNION ALL ".join(
            f"SELECT '{side}', substr({r}.{col}, 1, 7), '{d}', {e}, {sign}, {sign} * {dig_any}, {sign} * {dig_req}"
            for d, e in dims.items()
        )
        out.append(
            "INSERT INTO rate_stats (side, month, dim, key, n, dig_any, dig_req) "
            f"SELECT * FROM ({select}) WHERE {r}.{col} != '' "
            "ON CONFLICT(side, month, dim, key) DO UPDATE SET n = n + excluded.n, "
            "dig_any = dig_any + excluded.dig_any, dig_req = dig_req + excluded.dig_req;"
        )
    return "\n".join(out)


# per-month counts by dimension, kept exact by triggers: whole-month periods read only this small table
REGISTRY_SCHEMA += f"""
CREATE TABLE IF NOT EXISTS rate_stats (
    side TEXT NOT NULL, month TEXT NOT NULL, dim TEXT NOT NULL, key TEXT NOT NULL,
    n INTEGER NOT NULL DEFAULT 0, dig_any INTEGER NOT NULL DEFAULT 0, dig_req INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (side, month, dim, key)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS dossiers_stats_ins AFTER INSERT ON dossiers BEGIN {_stats_sql("NEW", 1)} END;
CREATE TRIGGER IF NOT EXISTS dossiers_stats_del AFTER DELETE ON dossiers BEGIN {_stats_sql("OLD", -1)} END;
CREATE TRIGGER IF NOT EXISTS dossiers_stats_upd AFTER UPDATE ON dossiers BEGIN
    {_stats_sql("OLD", -1)} {_stats_sql("NEW", 1)}
END;
"""

_REC_COLS = (
    "code", "procedure", "procedure_name", "field_code", "field_name", "channel", "received", "due", "resolved",
    "status", "unit", "level", "no_result", "required", "signed",
)  # fmt: skip
_DIMS = {
    "unit": "unit",
    "level": "level",
    "field": "CASE WHEN field_name != '' THEN field_name ELSE field_code END",
    "procedure": "procedure",
    "channel": "channel",
}


class SqliteRegistry:
    """Needs ``_conn()``, ``_tx()`` and ``digitized_min_confidence`` from the host class."""

    digitized_min_confidence: float = 0.0
    digitized_require_signature: bool = False

    def _conn(self) -> sqlite3.Connection:  # pragma: no cover - provided by SqliteIndex
        raise NotImplementedError

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def _rec_values(r: DossierRecord) -> list[Any]:
        return [
            nfc(r.code), nfc(r.procedure), nfc(r.procedure_name), nfc(r.field_code), nfc(r.field_name),
            nfc(r.channel), r.received, r.due, r.resolved, nfc(r.status), nfc(r.unit), nfc(r.level),
            int(r.no_result), json.dumps([nfc(x) for x in r.required], ensure_ascii=False), int(r.signed),
        ]  # fmt: skip

    def _flags_for(self, db: sqlite3.Connection, code: str, required: list[str], signed: bool) -> Flags:
        rows = db.execute(
            "SELECT id, dossier_code, kind, component, unit, filename, status, received_at, sha256, page_count, "
            "mean_confidence, processed_at, error FROM documents WHERE dossier_code=?",
            (code,),
        ).fetchall()
        docs = [DocRecord(*tuple(r)) for r in rows]
        unsigned = self.digitized_require_signature and not signed
        return compute_flags(docs, required, self.digitized_min_confidence, unsigned)

    def _refresh_flags(self, db: sqlite3.Connection, code: str) -> None:
        row = db.execute("SELECT required, signed FROM dossiers WHERE code=?", (code,)).fetchone()
        if row is None:
            return
        f = self._flags_for(db, code, json.loads(row[0]), bool(row[1]))
        db.execute(
            "UPDATE dossiers SET has_input=?, required_ok=?, has_output=?, components=? WHERE code=?",
            (int(f.has_input), int(f.required_ok), int(f.has_output), json.dumps(list(f.components)), code),
        )

    def upsert_dossiers(self, records: list[DossierRecord]) -> ImportResult:
        res = ImportResult()
        placeholders = ", ".join("?" for _ in _REC_COLS)
        with self._tx() as db:
            for r in records:
                vals = self._rec_values(r)
                old = db.execute(f"SELECT {', '.join(_REC_COLS)} FROM dossiers WHERE code=?", (vals[0],)).fetchone()
                if old is not None and list(old) == vals:
                    res.unchanged += 1
                    continue
                db.execute(
                    f"INSERT INTO dossiers ({', '.join(_REC_COLS)}) VALUES ({placeholders}) "
                    f"ON CONFLICT(code) DO UPDATE SET "
                    + ", ".join(f"{c}=excluded.{c}" for c in _REC_COLS if c != "code"),
                    vals,
                )
                self._refresh_flags(db, vals[0])
                if old is None:
                    res.inserted += 1
                else:
                    res.updated += 1
        return res

    def rebuild_stats(self) -> None:
        """Recompute ``rate_stats`` from the dossiers (a database created before the table existed)."""
        with self._tx() as db:
            db.execute("DELETE FROM rate_stats")
            for side, col, dig_any, dig_req in (
                ("received", "received", "has_input", "required_ok"),
                ("resolved", "resolved", "has_output | no_result", "has_output | no_result"),
            ):
                dims = {**_DIMS, "month": f"substr({col}, 1, 7)", "total": "'total'"}
                for name, expr in dims.items():
                    db.execute(
                        f"INSERT INTO rate_stats (side, month, dim, key, n, dig_any, dig_req) "
                        f"SELECT '{side}', substr({col}, 1, 7), '{name}', {expr}, count(*), sum({dig_any}), "
                        f"sum({dig_req}) FROM dossiers WHERE {col} != '' GROUP BY 2, 4"
                    )

    def rebuild_flags(self) -> int:
        with self._tx() as db:
            codes = [r[0] for r in db.execute("SELECT code FROM dossiers")]
            for c in codes:
                self._refresh_flags(db, c)
        return len(codes)

    def dossier_record(self, code: str) -> tuple[DossierRecord, Flags] | None:
        r = (
            self._conn()
            .execute(
                f"SELECT {', '.join(_REC_COLS)}, has_input, required_ok, has_output, components FROM dossiers "
                "WHERE code=?",
                (nfc(code),),
            )
            .fetchone()
        )
        return _to_rec(r) if r else None

    def registry(self, *, units: tuple[str, ...] | None = None) -> Iterator[tuple[DossierRecord, Flags]]:
        where, args = "", []
        if units is not None:
            cond, arg = unit_scope("unit", units)
            where, args = f" WHERE {cond}", [arg]
        cur = self._conn().execute(
            f"SELECT {', '.join(_REC_COLS)}, has_input, required_ok, has_output, components FROM dossiers"
            f"{where} ORDER BY code",
            args,
        )
        for r in cur:
            yield _to_rec(r)

    def unregistered(self, *, units: tuple[str, ...] | None = None) -> list[str]:
        where, args = "", []
        if units is not None:  # scans of the caller's units (an unregistered code has no registry unit)
            cond, arg = unit_scope("unit", units)
            where, args = f" AND {cond}", [arg]
        return [
            r[0]
            for r in self._conn().execute(
                "SELECT DISTINCT dossier_code FROM documents WHERE dossier_code NOT IN (SELECT code FROM dossiers)"
                f"{where} ORDER BY dossier_code",
                args,
            )
        ]

    def rate_report(self, period: Period, rule: str = "any", *, units: tuple[str, ...] | None = None) -> Report:
        """Whole months from ``rate_stats``; partial months at the edges by ``GROUP BY`` over the covering indexes.

        Scoped to *units*: ``rate_stats`` is keyed by unit only for its ``unit`` dimension, which gives the
        total, unit and month lines of whole months; the other dimensions (and the edges) are counted over the
        covering indexes, restricted to the caller's units."""
        rows: list[tuple[str, str, str, int, int]] = []  # side, dim, key, n, digitized
        full = _full_months(period)
        if units is not None:
            if full:
                rows += self._unit_stats(full, rule, units)
                rows += self._scan(*_month_range(full), rule, units, ("level", "field", "procedure", "channel"))
            for a, b in _edge_ranges(period, full):
                rows += self._scan(a, b, rule, units)
        else:
            if full:
                dig = "dig_req" if rule == "required" else "dig_any"
                sql = (
                    f"SELECT side, dim, key, sum(n), sum(CASE WHEN side = 'resolved' THEN dig_any ELSE {dig} END) "
                    "FROM rate_stats WHERE month >= ? AND month <= ? GROUP BY side, dim, key HAVING sum(n) != 0"
                )
                rows += self._conn().execute(sql, (full[0], full[1])).fetchall()
            for a, b in _edge_ranges(period, full):
                rows += self._scan(a, b, rule)
        total = Line("total")
        by: dict[str, dict[str, Line]] = {d: {} for d in DIMENSIONS}
        for side, dim, key, count, digitized in rows:
            line = total if dim == "total" else by[dim].setdefault(key, Line(key))
            setattr(line, side, getattr(line, side) + count)
            setattr(line, f"{side}_digitized", getattr(line, f"{side}_digitized") + int(digitized or 0))
        breakdowns = {d: sorted(v.values(), key=lambda ln: ln.key) for d, v in by.items()}
        return Report(period, rule, self.digitized_min_confidence, total, breakdowns)

    def _unit_stats(
        self, full: tuple[str, str], rule: str, units: tuple[str, ...]
    ) -> list[tuple[str, str, str, int, int]]:
        """Total, unit and month lines of the whole months *full* for *units*, from ``rate_stats``' unit rows."""
        dig = "dig_req" if rule == "required" else "dig_any"
        cond, arg = unit_scope("key", units, "?3")
        sums = f"sum(n), sum(CASE WHEN side = 'resolved' THEN dig_any ELSE {dig} END)"
        base = f"FROM rate_stats WHERE dim = 'unit' AND month >= ?1 AND month <= ?2 AND {cond}"
        sql = " UNION ALL ".join(
            f"SELECT side, '{name}', {key}, {sums} {base} GROUP BY side, 3 HAVING sum(n) != 0"
            for name, key in (("total", "'total'"), ("unit", "key"), ("month", "month"))
        )
        return self._conn().execute(sql, (full[0], full[1], arg)).fetchall()

    def _scan(
        self, a: str, b: str, rule: str, units: tuple[str, ...] | None = None, only: tuple[str, ...] | None = None
    ) -> list[tuple[str, str, str, int, int]]:
        """Counts by dimension (*only* these) for dates in [a, b) (of *units*), straight from the covering
        indexes."""
        flag = "required_ok" if rule == "required" else "has_input"
        scope, args = "", [a, b]
        if units is not None:
            cond, arg = unit_scope("unit", units, "?3")
            scope = f" AND {cond}"
            args.append(arg)
        out: list[tuple[str, str, str, int, int]] = []
        for side, col, dig in (("received", "received", flag), ("resolved", "resolved", "has_output | no_result")):
            dims = {**_DIMS, "month": f"substr({col}, 1, 7)", "total": "'total'"}
            sql = " UNION ALL ".join(
                f"SELECT '{side}', '{name}', {expr}, count(*), sum({dig}) FROM dossiers "
                f"WHERE {col} >= ?1 AND {col} < ?2{scope} GROUP BY 3"
                for name, expr in dims.items()
                if only is None or name in only
            )
            out += self._conn().execute(sql, args).fetchall()
        return out

    def undigitized(
        self,
        period: Period,
        rule: str = "any",
        side: str = "input",
        limit: int = 1000,
        *,
        units: tuple[str, ...] | None = None,
    ) -> list[dict[str, Any]]:
        a, b = period_bounds(period)
        if side == "output":
            where = "resolved >= ? AND resolved < ? AND has_output = 0 AND no_result = 0"
        else:
            flag = "required_ok" if rule == "required" else "has_input"
            where = f"received >= ? AND received < ? AND {flag} = 0"
        args: list[Any] = [a, b]
        if units is not None:
            cond, arg = unit_scope("unit", units)
            where += f" AND {cond}"
            args.append(arg)
        cur = self._conn().execute(
            f"SELECT {', '.join(_REC_COLS)}, has_input, required_ok, has_output, components FROM dossiers "
            f"WHERE {where} ORDER BY received, code LIMIT ?",
            (*args, limit),
        )
        return [missing_view(*_to_rec(r)) for r in cur]


def _full_months(p: Period) -> tuple[str, str] | None:
    """First and last whole calendar month inside the period, as ``YYYY-MM``."""
    first = p.start if p.start.day == 1 else (p.start.replace(day=28) + timedelta(days=4)).replace(day=1)
    last_end = p.end if (p.end + timedelta(days=1)).day == 1 else p.end.replace(day=1) - timedelta(days=1)
    if last_end < first:
        return None
    return first.strftime("%Y-%m"), last_end.strftime("%Y-%m")


def _month_range(full: tuple[str, str]) -> tuple[str, str]:
    """Half-open ISO date range [first day, day after the last) of the whole months *full*."""
    y, m = map(int, full[1].split("-"))
    return f"{full[0]}-01", date(y + (m == 12), m % 12 + 1, 1).isoformat()


def _edge_ranges(p: Period, full: tuple[str, str] | None) -> list[tuple[str, str]]:
    """Half-open ISO date ranges of the period not covered by whole months."""
    a, b = period_bounds(p)
    if full is None:
        return [(a, b)]
    first, after = _month_range(full)
    return [(x, y_) for x, y_ in ((a, first), (after, b)) if x < y_]


def _to_rec(r: Any) -> tuple[DossierRecord, Flags]:
    vals = list(r)
    rec = DossierRecord(**dict(zip(_REC_COLS[:12], vals[:12], strict=True)))
    rec.no_result, rec.required, rec.signed = bool(vals[12]), tuple(json.loads(vals[13])), bool(vals[14])
    flags = Flags(bool(vals[15]), bool(vals[16]), bool(vals[17]), tuple(json.loads(vals[18])))
    return rec, flags


def missing_view(rec: DossierRecord, flags: Flags) -> dict[str, Any]:
    from index.rates import component_key

    have = {component_key(c) for c in flags.components}
    return {
        "code": rec.code, "procedure": rec.procedure, "unit": rec.unit, "field": rec.field_name or rec.field_code,
        "channel": rec.channel, "received": rec.received, "resolved": rec.resolved,
        "has_input": flags.has_input, "has_output": flags.has_output,
        "missing_components": [c for c in rec.required if component_key(c) not in have],
    }  # fmt: skip
