"""Who may see what, through the HTTP API: every route needs credentials and its permission, unit scoping on
both index backends, CSRF on cookie sessions, sign-in lock-out, token revocation, and the audit of reads."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api import create_app
from sohoa.auth import PERMISSIONS, ROLES, AuthStore, Unit
from sohoa.settings import Settings
from storage import open_store

import fixtures
from deploy import wait_for

UNITS = [
    Unit("T", "UBND tỉnh Thử"),
    Unit("A", "UBND xã A", "T"),
    Unit("B", "UBND xã B", "T"),
    Unit("B1", "Bộ phận một cửa xã B", "B"),
]
CODE_A = "000.00.06.H56-260715-0001"
CODE_B = "000.00.06.H56-260716-0002"
PASSWORD = "Mat-khau-an-toan-2026"
PUBLIC = {("GET", "/health"), ("GET", "/health/live"), ("GET", "/health/ready"), ("GET", "/login"), ("POST", "/login"),
          ("POST", "/logout")}  # fmt: skip


@dataclass
class World:
    client: TestClient
    settings: Settings
    tokens: dict[str, str]  # "role@unit" → bearer token
    docs: dict[str, str]  # unit code → document id

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    @property
    def auth(self) -> AuthStore:
        return self.client.app.state.sohoa.auth  # type: ignore[attr-defined,no-any-return]


def _world(settings: Settings) -> Iterator[World]:
    store = open_store(settings.storage_url)
    auth = AuthStore(store)
    auth.import_units(UNITS)
    tokens = {f"{r}@*": auth.create_token(f"{r}@*", [r], ["*"]) for r in ROLES}
    for unit in ("A", "B", "T"):
        for r in ("clerk", "staff", "manager"):
            tokens[f"{r}@{unit}"] = auth.create_token(f"{r}@{unit}", [r], [unit])
    tokens["all@*"] = auth.create_token("all", list(ROLES), ["*"])
    store.close()
    with TestClient(create_app(settings)) as c:
        docs = {}
        for unit, code, unit_value in (("A", CODE_A, "UBND xã A"), ("B", CODE_B, "B1")):
            scan = fixtures.png_scan(fixtures.PAGE2)
            r = c.post("/documents", headers={"Authorization": f"Bearer {tokens['clerk@' + unit]}"},
                       data={"dossier_code": code, "kind": "input", "component": "Đơn đề nghị", "unit": unit_value},
                       files=[("files", (f"don-{unit}.png", scan, "image/png"))])  # fmt: skip
            assert r.status_code == 202, r.text
            docs[unit] = r.json()["documents"][0]["id"]
        admin = {"Authorization": f"Bearer {tokens['all@*']}"}
        for doc in docs.values():
            wait_for(lambda d=doc: c.get(f"/documents/{d}", headers=admin).json()["status"] == "done", 180)
        csv = ("MaHoSo,MaTTHC,TenLinhVuc,NgayTiepNhan,DonViXuLy\n"
               f"{CODE_A},1.1,Đất đai,15/07/2026,UBND xã A\n{CODE_B},1.1,Đất đai,16/07/2026,B1\n"
               "000.00.06.H56-260717-0003,1.1,Đất đai,17/07/2026,B\n")  # fmt: skip
        r = c.post("/registry/import", headers=admin, files={"file": ("r.csv", csv.encode(), "text/csv")})
        assert r.json()["inserted"] == 3, r.text
        yield World(c, settings, tokens, docs)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from _world(Settings(data_dir=tmp_path_factory.mktemp("sec") / "data"))


@pytest.fixture(scope="module", params=["sqlite", "elasticsearch"])
def any_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp(f"scope-{request.param}") / "data"
    if request.param == "sqlite":
        yield from _world(Settings(data_dir=data))
        return
    import uuid

    prefix = f"scope-{uuid.uuid4().hex[:8]}"
    settings = Settings(data_dir=data, index_url=request.getfixturevalue("es_url"), es_index_prefix=prefix)
    yield from _world(settings)
    from index import open_index

    open_index(settings.index_url, prefix).drop()  # type: ignore[attr-defined]


# -- every route -------------------------------------------------------------------------------------
def _permission(route: APIRoute) -> tuple[str | None, bool]:
    """(the permission the route requires, whether it is an HTML page) from its dependency tree."""
    todo = list(route.dependant.dependencies)
    while todo:
        d = todo.pop()
        if hasattr(d.call, "permission"):
            return d.call.permission, d.call.html  # type: ignore[union-attr]
        todo.extend(d.dependencies)
    return None, False


def _url(world: World, path: str) -> str:
    values = {"doc_id": world.docs["A"], "number": "1", "code": CODE_A, "username": "nobody",
              "token_id": "0123456789ab"}  # fmt: skip
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values[m[1]], path)


def _routes(world: World) -> list[tuple[str, str, APIRoute]]:
    """Every (method, path, route) of the app, including those of included routers (FastAPI ≥ 0.16x keeps
    them nested; no prefixes are used)."""
    out = []
    todo = list(world.client.app.routes)  # type: ignore[attr-defined]
    while todo:
        r = todo.pop(0)
        if hasattr(r, "original_router"):
            todo.extend(r.original_router.routes)
        elif isinstance(r, APIRoute):
            out.extend((m, r.path, r) for m in sorted(r.methods - {"HEAD", "OPTIONS"}))
    return out


def test_every_route_needs_credentials_and_its_permission(world: World) -> None:
    c = world.client
    routes = _routes(world)
    assert len(routes) >= 30
    checked = 0
    for method, path, route in routes:
        perm, html = _permission(route)
        if (method, path) in PUBLIC:
            assert perm is None
            continue
        assert perm in PERMISSIONS, f"{method} {path} has no permission dependency"
        url = _url(world, path)
        r = c.request(method, url, follow_redirects=False)
        if html and method == "GET":
            assert r.status_code == 303 and r.headers["location"].startswith("/login"), (method, path, r.status_code)
        else:
            assert r.status_code == 401, (method, path, r.status_code, r.text)
        r = c.request(method, url, headers={"Authorization": "Bearer sohoa_0123456789ab_" + "x" * 43})
        assert r.status_code == 401, (method, path, "forged token", r.status_code)
        lacking = [x for x in ROLES if x not in PERMISSIONS[perm]]
        if lacking:
            r = c.request(method, url, headers=world.as_(f"{lacking[0]}@*"))
            assert r.status_code == 403, (method, path, lacking[0], r.status_code, r.text)
        holder = sorted(PERMISSIONS[perm])[0]
        if method == "DELETE" or path in ("/users/{username}/password",):
            continue  # allowed-role calls with side effects are tested on their own below
        r = c.request(method, url, headers=world.as_(f"{holder}@*"))
        assert r.status_code not in (401, 403), (method, path, holder, r.status_code, r.text)
        checked += 1
    assert checked >= 25
    print(f"{len(routes)} routes walked, {checked} called with a role that holds their permission")


def test_health_and_login_page_are_the_only_open_doors(world: World) -> None:
    c = world.client
    assert c.get("/health").json() == {"status": "ok"}
    assert c.get("/login").status_code == 200
    assert c.get("/openapi.json").status_code == 401
    assert c.get("/docs", follow_redirects=False).status_code == 303
    assert c.get("/health/details").status_code == 401


# -- unit scoping (both index backends) ----------------------------------------------------------------
def test_unit_scoping_matrix(any_world: World) -> None:
    w, c = any_world, any_world.client
    a, b = w.docs["A"], w.docs["B"]
    for who, mine, other in (("staff@A", a, b), ("staff@B", b, a)):
        h = w.as_(who)
        res = c.get("/search", params={"q": "ho so dat dai"}, headers=h).json()
        assert res["total"] == 1 and [x["document_id"] for x in res["hits"]] == [mine], (who, res)
        assert [d["id"] for d in c.get("/documents", headers=h).json()["documents"]] == [mine]
        for url in (f"/documents/{other}", f"/documents/{other}/pages/1", f"/documents/{other}/original",
                    f"/documents/{other}/pdf", f"/documents/{other}/text", f"/documents/{other}/pages/1/text",
                    f"/documents/{other}/pages/1/hocr"):  # fmt: skip
            assert c.get(url, headers=h).status_code == 404, (who, url)
        assert c.get(f"/documents/{mine}/pages/1", headers=h).status_code == 200
        other_code = CODE_B if mine == a else CODE_A
        assert c.get(f"/dossiers/{other_code}", headers=h).status_code == 404
    # the province sees both; a clerk of A cannot upload into B
    assert c.get("/search", params={"q": "ho so dat dai"}, headers=w.as_("staff@T")).json()["total"] == 2
    r = c.post("/documents", headers=w.as_("clerk@A"), data={"dossier_code": CODE_B, "kind": "input", "unit": "B"},
               files=[("files", ("x.png", fixtures.png_scan(), "image/png"))])  # fmt: skip
    assert r.status_code == 403
    # reports and exports count only the caller's subtree
    for who, received, exported in (("manager@A", 1, {CODE_A}), ("manager@B", 2, {CODE_B, "000.00.06.H56-260717-0003"}),
                                     ("manager@T", 3, None)):  # fmt: skip
        h = w.as_(who)
        rep = c.get("/reports/digitization", params={"period": "quarter:2026-Q3"}, headers=h).json()
        assert rep["total"]["received"] == received, (who, rep["total"])
        portal = {d["MaHoSo"] for d in c.get("/exports/portal", headers=h).json()["dossiers"]}
        assert exported is None or portal == exported, (who, portal)
        und = c.get("/reports/digitization/undigitized", params={"period": "quarter:2026-Q3"}, headers=h).json()
        assert all(d["unit"] in ("UBND xã A",) for d in und["dossiers"]) if who == "manager@A" else True
    # a manager of A cannot push registry rows of B
    row = {"MaHoSo": "000.00.06.H56-260718-0004", "NgayTiepNhan": "18/07/2026", "DonViXuLy": "B"}
    r = c.post("/dossiers", headers=w.as_("manager@A"), json=[row])
    assert r.json()["inserted"] == 0 and "ngoài phạm vi" in r.json()["errors"][0]["message"], r.text


# -- sessions: sign-in, CSRF, lock-out -----------------------------------------------------------------
def _sign_in(c: TestClient, user: str, password: str) -> Any:
    page = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    return c.post("/login", data={"username": user, "password": password, "csrf_token": token[1], "next": "/"},
                  follow_redirects=False)  # fmt: skip


def test_cookie_session_needs_csrf_token_on_changes(world: World, tmp_path: Path) -> None:
    world.auth.add_user("clerk.a", PASSWORD, ["clerk"], ["A"])
    with TestClient(world.client.app) as c:
        r = _sign_in(c, "clerk.a", PASSWORD)
        assert r.status_code == 303, r.text
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
        me = c.get("/auth/me").json()
        assert me["name"] == "clerk.a" and me["csrf_token"]
        doc = world.docs["A"]
        r = c.post(f"/documents/{doc}/retry")
        assert r.status_code == 403 and "CSRF" in r.text
        r = c.post(f"/documents/{doc}/retry", headers={"X-CSRF-Token": "wrong"})
        assert r.status_code == 403
        r = c.post(f"/documents/{doc}/retry", headers={"X-CSRF-Token": me["csrf_token"]})
        assert r.status_code == 202, r.text
        r = c.post("/logout", data={"csrf_token": me["csrf_token"]}, follow_redirects=False)
        assert r.status_code == 303
        assert c.get("/auth/me").status_code == 401  # the session ended on the server too


def test_login_locks_out_after_repeated_failures(world: World) -> None:
    world.auth.add_user("staff.lock", PASSWORD, ["staff"], ["A"])
    with TestClient(world.client.app) as c:
        for _ in range(5):
            r = _sign_in(c, "staff.lock", "sai-mat-khau-123")
            assert r.status_code in (401,), r.status_code
        r = _sign_in(c, "staff.lock", PASSWORD)  # the right password, too late
        assert r.status_code == 401 and "tạm khóa" in r.text
        for _ in range(10):
            r = _sign_in(c, "nobody", "x")
        assert r.status_code == 429  # sign-in attempts per address are limited too


def test_revoked_token_is_refused_at_once(world: World) -> None:
    c = world.client
    admin = world.as_("admin@*")
    made = c.post("/tokens", headers=admin, json={"name": "máy quét 1", "roles": ["clerk"], "units": ["A"]}).json()
    h = {"Authorization": f"Bearer {made['token']}"}
    assert c.get("/documents", headers=h).status_code == 200
    assert c.delete(f"/tokens/{made['id']}", headers=admin).status_code == 200
    assert c.get("/documents", headers=h).status_code == 401
    listed = {t["id"]: t for t in c.get("/tokens", headers=admin).json()["tokens"]}
    assert (
        listed[made["id"]]["revoked"] and listed[made["id"]]["last_used"] and "secret_sha256" not in listed[made["id"]]
    )


# -- audit ---------------------------------------------------------------------------------------------
def test_each_audited_action_writes_one_entry(world: World) -> None:
    c = world.client
    h = world.as_("staff@A")
    doc = world.docs["A"]
    c.get("/search", params={"q": "Thửa đất", "kind": "input"}, headers=h)
    c.get(f"/documents/{doc}/pages/1", headers=h)
    c.get(f"/documents/{doc}/original", headers=h)
    c.get(f"/documents/{world.docs['B']}", headers=h)  # outside the unit: denied, audited
    c.get("/reports/digitization", params={"period": "year:2026"}, headers=world.as_("manager@A"))
    log = c.app.state.sohoa.audit  # type: ignore[attr-defined]
    log.flush()
    token_a = world.tokens["staff@A"].split("_")[1]
    events = log.query(user=f"token:{token_a}", limit=100)
    by_action: dict[str, list[Any]] = {}
    for e in events:
        by_action.setdefault(e.action, []).append(e)
    searches = [e for e in by_action["search"] if e.details.get("q") == "Thửa đất"]
    assert len(searches) == 1 and searches[0].details["kind"] == "input" and searches[0].ip
    pages = [e for e in by_action["page.read"] if e.target == f"{doc}/1"]
    assert len(pages) == 1 and pages[0].dossier == CODE_A and pages[0].outcome == "ok"
    assert len([e for e in by_action["original.read"] if e.target == doc]) == 1
    denied = [e for e in by_action["document.read"] if e.target == world.docs["B"]]
    assert len(denied) == 1 and denied[0].outcome == "denied"
    reports = log.query(action="report.read", limit=100)
    assert any(e.actor.startswith("token:") and e.target == "year:2026" for e in reports)


def test_audit_survives_reindex_and_restart(world: World) -> None:
    c = world.client
    c.get("/search", params={"q": "khai sinh"}, headers=world.as_("staff@B"))
    c.app.state.sohoa.audit.flush()  # type: ignore[attr-defined]
    c.app.state.sohoa.ctx.reindex()  # type: ignore[attr-defined]
    from sohoa.audit import AuditLog

    store = open_store(world.settings.storage_url)
    fresh = AuditLog(store)  # another process's view, after a restart
    try:
        found = [e for e in fresh.query(action="search", limit=1000) if e.details.get("q") == "khai sinh"]
        assert len(found) == 1 and found[0].actor == f"token:{world.tokens['staff@B'].split('_')[1]}"
    finally:
        fresh.close()
        store.close()
    r = c.get("/audit", params={"action": "search"}, headers=world.as_("auditor@*"))
    assert r.status_code == 200 and r.json()["count"] >= 2
    assert c.get("/audit", headers=world.as_("admin@*")).status_code == 403
