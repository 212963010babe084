"""Registry and rate report on SQLite (mixed into :class:`index.sqlite.SqliteIndex`).

Per dossier the table keeps what its documents are, never a rule: ``has_input`` / ``required_ok`` /
``has_output`` / ``components`` (something done, at any confidence) and the best confidences ``in_conf`` /
``req_conf`` / ``out_conf`` / ``comp_conf`` (see :mod:`sohoa.domain`). Reports apply the rules they are
given: without a confidence threshold, whole months come from ``rate_stats`` (per-month counts by
dimension kept exact by triggers, with and without the signature condition); the edges of the period, a
unit scope or a threshold are counted with ``GROUP BY`` over covering indexes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from sohoa.domain import (
    DIMENSIONS,
    NONE,
    Confidence,
    DigitizedRules,
    DossierRecord,
    Flags,
    ImportResult,
    Line,
    Period,
    Report,
    dossier_confidence,
    missing_view,
    period_bounds,
    scope_keys,
    unit_key,
)
from sohoa.models import DocRecord
from sohoa.text import nfc

# -- unit scope: ``unit_values`` (created with the documents table) holds every unit value ever stored in
# ``documents`` or ``dossiers`` (kept by triggers, a handful of rows); a scoped query keeps the rows whose
# unit is one of the values whose :func:`sohoa.domain.unit_key` is in the caller's keys, all in ONE statement.
UNIT_KEY_FUNCTION = "sohoa_unit_key"  # registered on every connection (index.sqlite.SqliteIndex._conn)
SCHEMA_VERSION = 2  # PRAGMA user_version: 2 = digitization stored as confidences, rules applied per report


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


REGISTRY_TABLE = """
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
    components TEXT NOT NULL DEFAULT '[]',
    in_conf REAL NOT NULL DEFAULT -1,
    req_conf REAL NOT NULL DEFAULT -1,
    out_conf REAL NOT NULL DEFAULT -1,
    comp_conf TEXT NOT NULL DEFAULT '{}'
);
"""
NEW_COLUMNS = {"signed": "INTEGER NOT NULL DEFAULT 0", "in_conf": "REAL NOT NULL DEFAULT -1",
               "req_conf": "REAL NOT NULL DEFAULT -1", "out_conf": "REAL NOT NULL DEFAULT -1",
               "comp_conf": "TEXT NOT NULL DEFAULT '{}'"}  # fmt: skip
OLD_OBJECTS = (  # schema version 1: flags with the rules baked in
    "DROP TRIGGER IF EXISTS dossiers_stats_ins", "DROP TRIGGER IF EXISTS dossiers_stats_del",
    "DROP TRIGGER IF EXISTS dossiers_stats_upd", "DROP INDEX IF EXISTS dossiers_received_cover",
    "DROP INDEX IF EXISTS dossiers_resolved_cover", "DROP TABLE IF EXISTS rate_stats",
)  # fmt: skip

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
    out_ok = f"({r}.has_output | {r}.no_result)"
    for side, col, digs in (
        ("received", "received", (f"{r}.has_input", f"{r}.required_ok", f"({r}.has_input & {r}.signed)",
                                  f"({r}.required_ok & {r}.signed)")),
        ("resolved", "resolved", (out_ok, out_ok, out_ok, out_ok)),
    ):  # fmt: skip
        dims = {**{k: v.format(r=r) for k, v in _STATS_DIMS.items()}, "month": f"substr({r}.{col}, 1, 7)",
                "total": "'total'"}  # fmt: skip
        values = ", ".join(f"{sign} * {d}" for d in digs)
        select = " UNION ALL ".join(
            f"SELECT '{side}', substr({r}.{col}, 1, 7), '{d}', {e}, {sign}, {values}" for d, e in dims.items()
        )
        out.append(
            "INSERT INTO rate_stats (side, month, dim, key, n, dig_any, dig_req, dig_any_s, dig_req_s) "
            f"SELECT * FROM ({select}) WHERE {r}.{col} != '' "
            "ON CONFLICT(side, month, dim, key) DO UPDATE SET n = n + excluded.n, "
            "dig_any = dig_any + excluded.dig_any, dig_req = dig_req + excluded.dig_req, "
            "dig_any_s = dig_any_s + excluded.dig_any_s, dig_req_s = dig_req_s + excluded.dig_req_s;"
        )
    return "\n".join(out)


# covering indexes: a period report reads only these, never the wide rows; per-month counts by dimension kept
# exact by triggers: whole-month periods read only the small rate_stats table
REGISTRY_SCHEMA = (
    REGISTRY_TABLE
    + f"""
CREATE INDEX IF NOT EXISTS dossiers_received_cover2 ON dossiers(
    received, unit, level, field_name, field_code, procedure, channel, signed, has_input, required_ok, in_conf,
    req_conf);
CREATE INDEX IF NOT EXISTS dossiers_resolved_cover2 ON dossiers(
    resolved, unit, level, field_name, field_code, procedure, channel, has_output, no_result, out_conf);
CREATE TABLE IF NOT EXISTS rate_stats (
    side TEXT NOT NULL, month TEXT NOT NULL, dim TEXT NOT NULL, key TEXT NOT NULL,
    n INTEGER NOT NULL DEFAULT 0, dig_any INTEGER NOT NULL DEFAULT 0, dig_req INTEGER NOT NULL DEFAULT 0,
    dig_any_s INTEGER NOT NULL DEFAULT 0, dig_req_s INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (side, month, dim, key)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS dossiers_stats2_ins AFTER INSERT ON dossiers BEGIN {_stats_sql("NEW", 1)} END;
CREATE TRIGGER IF NOT EXISTS dossiers_stats2_del AFTER DELETE ON dossiers BEGIN {_stats_sql("OLD", -1)} END;
CREATE TRIGGER IF NOT EXISTS dossiers_stats2_upd AFTER UPDATE ON dossiers BEGIN
    {_stats_sql("OLD", -1)} {_stats_sql("NEW", 1)}
END;
"""
    + unit_values_sql("dossiers")
)
DELETE_TRIGGER = (
    f"CREATE TRIGGER IF NOT EXISTS dossiers_stats2_del AFTER DELETE ON dossiers BEGIN {_stats_sql('OLD', -1)} END;"
)

_REC_COLS = (
    "code", "procedure", "procedure_name", "field_code", "field_name", "channel", "received", "due", "resolved",
    "status", "unit", "level", "no_result", "required", "signed",
)  # fmt: skip
_STATE_COLS = ("has_input", "required_ok", "has_output", "components", "in_conf", "req_conf", "out_conf", "comp_conf")
_SELECT = ", ".join(_REC_COLS + _STATE_COLS)
_DIMS = {
    "unit": "unit",
    "level": "level",
    "field": "CASE WHEN field_name != '' THEN field_name ELSE field_code END",
    "procedure": "procedure",
    "channel": "channel",
}
_STATS_COLUMN = {("any", False): "dig_any", ("required", False): "dig_req", ("any", True): "dig_any_s",
                 ("required", True): "dig_req_s"}  # fmt: skip


def _digitized_sql(side: str, rule: str, rules: DigitizedRules) -> str:
    """0/1 expression: is a dossier row digitized on *side* under *rule* and *rules* (threshold bound to :t)."""
    if side == "resolved":
        return "(has_output | no_result)" if rules.min_confidence <= 0 else "((out_conf >= :t) | no_result)"
    if rules.min_confidence <= 0:
        expr = "required_ok" if rule == "required" else "has_input"
    else:
        expr = "(req_conf >= :t)" if rule == "required" else "(in_conf >= :t)"
    return f"({expr} & signed)" if rules.require_signature else expr


def migrate_registry(conn: sqlite3.Connection) -> bool:
    """Bring a registry from before schema version 2 up to date; True when its state must be recomputed."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    cols = {r[1] for r in conn.execute("PRAGMA table_info(dossiers)")}
    if version >= SCHEMA_VERSION:
        return False
    stale = bool(cols)
    if cols:
        for name, decl in NEW_COLUMNS.items():
            if name not in cols:
                conn.execute(f"ALTER TABLE dossiers ADD COLUMN {name} {decl}")
        for stmt in OLD_OBJECTS:
            conn.execute(stmt)
    conn.executescript(REGISTRY_SCHEMA)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return stale


class SqliteRegistry:
    """Needs ``_conn()``, ``_tx()`` and ``report_rules()`` from the host class."""

    def _conn(self) -> sqlite3.Connection:  # pragma: no cover - provided by SqliteIndex
        raise NotImplementedError

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:  # pragma: no cover
        raise NotImplementedError

    if TYPE_CHECKING:  # provided by sohoa.registry.Registry

        def report_rules(
            self, min_confidence: float | None = None, require_signature: bool | None = None
        ) -> DigitizedRules: ...

    @staticmethod
    def _rec_values(r: DossierRecord) -> list[Any]:
        return [
            nfc(r.code), nfc(r.procedure), nfc(r.procedure_name), nfc(r.field_code), nfc(r.field_name),
            nfc(r.channel), r.received, r.due, r.resolved, nfc(r.status), nfc(r.unit), nfc(r.level),
            int(r.no_result), json.dumps([nfc(x) for x in r.required], ensure_ascii=False), int(r.signed),
        ]  # fmt: skip

    def _refresh_flags(self, db: sqlite3.Connection, code: str) -> None:
        row = db.execute("SELECT required FROM dossiers WHERE code=?", (code,)).fetchone()
        if row is None:
            return
        docs = [
            DocRecord(*tuple(r))
            for r in db.execute(
                "SELECT id, dossier_code, kind, component, unit, filename, status, received_at, sha256, page_count, "
                "mean_confidence, processed_at, error FROM documents WHERE dossier_code=?",
                (code,),
            )
        ]
        c = dossier_confidence(docs, json.loads(row[0]))
        f = c.flags(None, DigitizedRules())
        db.execute(
            "UPDATE dossiers SET has_input=?, required_ok=?, has_output=?, components=?, in_conf=?, req_conf=?, "
            "out_conf=?, comp_conf=? WHERE code=?",
            (int(f.has_input), int(f.required_ok), int(f.has_output), json.dumps(list(f.components)), c.input,
             c.required, c.output, json.dumps(c.components, ensure_ascii=False), code),
        )  # fmt: skip

    def apply_dossiers(self, records: list[DossierRecord]) -> ImportResult:
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
        """Recompute ``rate_stats`` from the dossiers."""
        with self._tx() as db:
            db.execute("DELETE FROM rate_stats")
            out_ok = "has_output | no_result"
            for side, col, digs in (
                ("received", "received", ("has_input", "required_ok", "has_input & signed", "required_ok & signed")),
                ("resolved", "resolved", (out_ok, out_ok, out_ok, out_ok)),
            ):
                dims = {**_DIMS, "month": f"substr({col}, 1, 7)", "total": "'total'"}
                sums = ", ".join(f"sum({d})" for d in digs)
                for name, expr in dims.items():
                    db.execute(
                        f"INSERT INTO rate_stats (side, month, dim, key, n, dig_any, dig_req, dig_any_s, dig_req_s) "
                        f"SELECT '{side}', substr({col}, 1, 7), '{name}', {expr}, count(*), {sums} "
                        f"FROM dossiers WHERE {col} != '' GROUP BY 2, 4"
                    )

    def rebuild_flags(self) -> int:
        with self._tx() as db:
            codes = [r[0] for r in db.execute("SELECT code FROM dossiers")]
            for c in codes:
                self._refresh_flags(db, c)
        self.rebuild_stats()
        return len(codes)

    def clear_registry(self) -> None:
        with self._tx() as db:
            db.execute("DROP TRIGGER IF EXISTS dossiers_stats2_del")  # one statement instead of a trigger per row
            db.execute("DELETE FROM dossiers")
            db.execute("DELETE FROM rate_stats")
            db.execute(DELETE_TRIGGER)

    def _flags(self, rec: DossierRecord, state: list[Any], rules: DigitizedRules) -> Flags:
        if rules.min_confidence > 0:
            conf = Confidence(float(state[4]), float(state[5]), float(state[6]), json.loads(state[7] or "{}"))
            return conf.flags(rec, rules)
        signed_ok = not rules.require_signature or rec.signed
        return Flags(signed_ok and bool(state[0]), signed_ok and bool(state[1]), bool(state[2]),
                     tuple(json.loads(state[3] or "[]")))  # fmt: skip

    def _to_rec(self, r: Any, rules: DigitizedRules) -> tuple[DossierRecord, Flags]:
        vals = list(r)
        rec = DossierRecord(**dict(zip(_REC_COLS[:12], vals[:12], strict=True)))
        rec.no_result, rec.required, rec.signed = bool(vals[12]), tuple(json.loads(vals[13])), bool(vals[14])
        return rec, self._flags(rec, vals[15:], rules)

    def dossier_record(
        self, code: str, *, min_confidence: float | None = None, require_signature: bool | None = None
    ) -> tuple[DossierRecord, Flags] | None:
        r = self._conn().execute(f"SELECT {_SELECT} FROM dossiers WHERE code=?", (nfc(code),)).fetchone()
        return self._to_rec(r, self.report_rules(min_confidence, require_signature)) if r else None

    def registry(
        self,
        *,
        units: tuple[str, ...] | None = None,
        min_confidence: float | None = None,
        require_signature: bool | None = None,
    ) -> Iterator[tuple[DossierRecord, Flags]]:
        rules = self.report_rules(min_confidence, require_signature)
        where, args = "", []
        if units is not None:
            cond, arg = unit_scope("unit", units)
            where, args = f" WHERE {cond}", [arg]
        cur = self._conn().execute(f"SELECT {_SELECT} FROM dossiers{where} ORDER BY code", args)
        for r in cur:
            yield self._to_rec(r, rules)

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

    def rate_report(
        self,
        period: Period,
        rule: str = "any",
        *,
        units: tuple[str, ...] | None = None,
        min_confidence: float | None = None,
        require_signature: bool | None = None,
    ) -> Report:
        """Whole months from ``rate_stats``; partial months at the edges by ``GROUP BY`` over the covering indexes.

        Scoped to *units*: ``rate_stats`` is keyed by unit only for its ``unit`` dimension, which gives the
        total, unit and month lines of whole months; the other dimensions (and the edges) are counted over the
        covering indexes, restricted to the caller's units. With a confidence threshold every count comes from
        the covering indexes (the counters hold no threshold)."""
        rules = self.report_rules(min_confidence, require_signature)
        rows: list[tuple[str, str, str, int, int]] = []  # side, dim, key, n, digitized
        full = _full_months(period) if rules.min_confidence <= 0 else None
        dig = _STATS_COLUMN[(rule if rule == "required" else "any", rules.require_signature)]
        if units is not None:
            if full:
                rows += self._unit_stats(full, dig, units)
                rows += self._scan(*_month_range(full), rule, rules, units, ("level", "field", "procedure", "channel"))
            for a, b in _edge_ranges(period, full):
                rows += self._scan(a, b, rule, rules, units)
        else:
            if full:
                sql = (
                    f"SELECT side, dim, key, sum(n), sum(CASE WHEN side = 'resolved' THEN dig_any ELSE {dig} END) "
                    "FROM rate_stats WHERE month >= ? AND month <= ? GROUP BY side, dim, key HAVING sum(n) != 0"
                )
                rows += self._conn().execute(sql, (full[0], full[1])).fetchall()
            for a, b in _edge_ranges(period, full):
                rows += self._scan(a, b, rule, rules)
        total = Line("total")
        by: dict[str, dict[str, Line]] = {d: {} for d in DIMENSIONS}
        for side, dim, key, count, digitized in rows:
            line = total if dim == "total" else by[dim].setdefault(key, Line(key))
            setattr(line, side, getattr(line, side) + count)
            setattr(line, f"{side}_digitized", getattr(line, f"{side}_digitized") + int(digitized or 0))
        breakdowns = {d: sorted(v.values(), key=lambda ln: ln.key) for d, v in by.items()}
        return Report(period, rule, rules.min_confidence, total, breakdowns, rules.require_signature)

    def _unit_stats(
        self, full: tuple[str, str], dig: str, units: tuple[str, ...]
    ) -> list[tuple[str, str, str, int, int]]:
        """Total, unit and month lines of the whole months *full* for *units*, from ``rate_stats``' unit rows."""
        cond, arg = unit_scope("key", units, "?3")
        sums = f"sum(n), sum(CASE WHEN side = 'resolved' THEN dig_any ELSE {dig} END)"
        base = f"FROM rate_stats WHERE dim = 'unit' AND month >= ?1 AND month <= ?2 AND {cond}"
        sql = " UNION ALL ".join(
            f"SELECT side, '{name}', {key}, {sums} {base} GROUP BY side, 3 HAVING sum(n) != 0"
            for name, key in (("total", "'total'"), ("unit", "key"), ("month", "month"))
        )
        return self._conn().execute(sql, (full[0], full[1], arg)).fetchall()

    def _scan(
        self,
        a: str,
        b: str,
        rule: str,
        rules: DigitizedRules,
        units: tuple[str, ...] | None = None,
        only: tuple[str, ...] | None = None,
    ) -> list[tuple[str, str, str, int, int]]:
        """Counts by dimension (*only* these) for dates in [a, b) (of *units*), straight from the covering
        indexes."""
        scope = ""
        args: dict[str, Any] = {"a": a, "b": b, "t": rules.min_confidence}
        if units is not None:
            cond, arg = unit_scope("unit", units, ":scope")
            scope = f" AND {cond}"
            args["scope"] = arg
        out: list[tuple[str, str, str, int, int]] = []
        for side in ("received", "resolved"):
            dig = _digitized_sql(side, rule, rules)
            dims = {**_DIMS, "month": f"substr({side}, 1, 7)", "total": "'total'"}
            sql = " UNION ALL ".join(
                f"SELECT '{side}', '{name}', {expr}, count(*), sum({dig}) FROM dossiers "
                f"WHERE {side} >= :a AND {side} < :b{scope} GROUP BY 3"
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
        min_confidence: float | None = None,
        require_signature: bool | None = None,
    ) -> list[dict[str, Any]]:
        rules = self.report_rules(min_confidence, require_signature)
        a, b = period_bounds(period)
        col = "resolved" if side == "output" else "received"
        where = f"{col} >= :a AND {col} < :b AND NOT {_digitized_sql(col, rule, rules)}"
        args: dict[str, Any] = {"a": a, "b": b, "t": rules.min_confidence, "limit": limit}
        if units is not None:
            cond, arg = unit_scope("unit", units, ":scope")
            where += f" AND {cond}"
            args["scope"] = arg
        cur = self._conn().execute(
            f"SELECT {_SELECT} FROM dossiers WHERE {where} ORDER BY received, code LIMIT :limit", args
        )
        return [missing_view(*self._to_rec(r, rules)) for r in cur]


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


__all__ = ["NONE", "SqliteRegistry", "migrate_registry", "missing_view", "register_functions", "unit_scope"]
