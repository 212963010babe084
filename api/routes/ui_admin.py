"""The administrator's pages (users, API tokens, the unit tree) and the auditor's audit-log viewer.

Every change goes through the JSON routes' own functions in ``api.routes.auth`` (which call ``AuthStore`` and
write the same audit entries), so a change made here is checked and recorded exactly as through the API.
Forms post with the session's CSRF token. A change comes back to its page (303) with a message; a failure
re-renders the form with the reason; a new password or token secret is shown once on the answer to the POST
itself (``Cache-Control: no-store``), never put in a URL or a cookie."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.deps import app_state, audit, require
from api.routes import auth as auth_api
from api.ui import VN, page
from sohoa.auth import ALL_UNITS, ROLE_NAMES_VI, ROLES, Principal, UnitTree

router = APIRouter(include_in_schema=False)

MESSAGES = {
    "disabled": "Đã vô hiệu hóa tài khoản {who}; mọi phiên đăng nhập của tài khoản này đã kết thúc.",
    "enabled": "Đã kích hoạt lại tài khoản {who}.",
    "created": "Đã tạo tài khoản {who} với mật khẩu đã nhập.",
    "revoked": "Đã thu hồi mã truy cập {who}; mã này không dùng được nữa.",
    "units": "Đã nhập cây đơn vị: {who} đơn vị.",
}
AUDIT_LIMIT = 500
ACTIONS_VI = {
    "auth.login": "đăng nhập",
    "auth.logout": "đăng xuất",
    "auth.forbidden": "truy cập không được phép",
    "auth.csrf": "thiếu mã chống giả mạo",
    "auth.token": "mã truy cập sai",
    "search": "tìm kiếm",
    "document.upload": "tải lên tài liệu",
    "document.list": "xem danh sách tài liệu",
    "document.read": "xem tài liệu",
    "document.update": "sửa thông tin tài liệu",
    "document.replace_page": "thay trang tài liệu",
    "document.delete": "xóa tài liệu",
    "document.retry": "xử lý lại tài liệu",
    "page.read": "xem trang",
    "text.read": "đọc chữ tài liệu",
    "pdf.read": "tải PDF",
    "original.read": "tải bản gốc",
    "dossier.read": "xem hồ sơ",
    "report.read": "xem báo cáo",
    "report.undigitized": "xem hồ sơ chưa số hóa",
    "report.unregistered": "xem hồ sơ chưa đăng ký",
    "export.portal": "xuất dữ liệu cổng",
    "registry.import": "nhập sổ đăng ký",
    "user.list": "xem danh sách tài khoản",
    "user.create": "tạo tài khoản",
    "user.update": "sửa tài khoản",
    "user.password": "đặt lại mật khẩu",
    "token.list": "xem danh sách mã truy cập",
    "token.create": "tạo mã truy cập",
    "token.revoke": "thu hồi mã truy cập",
    "unit.import": "nhập cây đơn vị",
    "audit.read": "xem nhật ký",
}
OUTCOMES_VI = {"ok": "thành công", "denied": "bị từ chối", "failed": "không thành công"}


# -- shared pieces ------------------------------------------------------------------------------------------
def _message(e: Exception) -> str:
    if isinstance(e, HTTPException):
        return e.detail["message"] if isinstance(e.detail, dict) else str(e.detail)
    if isinstance(e, ValidationError):
        return "dữ liệu không hợp lệ: " + "; ".join(str(x["msg"]) for x in e.errors())
    return str(e)


def _redirect(path: str, ok: str, who: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode({'ok': ok, 'who': who})}", status_code=303)


def _flash(ok: str, who: str) -> dict[str, Any]:
    text = MESSAGES.get(ok, "")
    return {"flash": text.format(who=who[:80]), "flash_kind": "ok"} if text else {}


def _secret_page(resp: Response) -> Response:
    """A page that shows a password or a token secret: never kept by the browser or a proxy."""
    resp.headers["Cache-Control"] = "no-store"
    return resp


def unit_options(tree: UnitTree) -> list[dict[str, Any]]:
    """The unit tree in display order (parents first, children indented), for checkboxes and the tree page."""
    out: list[dict[str, Any]] = []

    def walk(code: str, depth: int) -> None:
        u = tree.units[code]
        out.append({"code": u.code, "name": u.name, "parent": u.parent, "depth": depth})
        for child in sorted(tree.children.get(code, [])):
            walk(child, depth + 1)

    roots = sorted(c for c, u in tree.units.items() if not u.parent or u.parent not in tree.units)
    for r in roots:
        walk(r, 0)
    return out


def unit_names(tree: UnitTree, codes: list[str]) -> list[str]:
    return ["tất cả đơn vị" if c == ALL_UNITS else (f"{tree.units[c].name} ({c})" if c in tree.units else c)
            for c in codes]  # fmt: skip


def _locked(locked_until: str) -> bool:
    try:
        return bool(locked_until) and datetime.fromisoformat(locked_until) > datetime.now(UTC)
    except ValueError:
        return False


# -- users --------------------------------------------------------------------------------------------------
def _users_page(request: Request, p: Principal, status_code: int = 200, **context: Any) -> HTMLResponse:
    st = app_state(request)
    tree = st.auth.units()
    users = [{"u": u, "units_vi": unit_names(tree, u.units), "locked": _locked(u.locked_until)}
             for u in st.auth.users()]  # fmt: skip
    form = context.pop("form", None) or {"username": "", "display_name": "", "roles": [], "units": [],
                                         "password_mode": "generate"}  # fmt: skip
    return page(request, p, "admin_users.html", status_code=status_code, users=users, roles=ROLES,
                roles_vi=ROLE_NAMES_VI, units=unit_options(tree), form=form, **context)  # fmt: skip


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(
    request: Request, ok: str = "", who: str = "", p: Principal = Depends(require("admin", html=True))
) -> HTMLResponse:
    audit(request, p, "user.list")
    return _users_page(request, p, **_flash(ok, who))


@router.post("/admin/users", response_class=HTMLResponse)
def create_user(
    request: Request,
    username: Annotated[str, Form(max_length=64)] = "",
    display_name: Annotated[str, Form(max_length=120)] = "",
    roles: Annotated[list[str] | None, Form()] = None,
    units: Annotated[list[str] | None, Form()] = None,
    password_mode: Annotated[str, Form(max_length=20)] = "generate",
    password: Annotated[str, Form(max_length=256)] = "",
    p: Principal = Depends(require("admin")),
) -> Response:
    """A new account: a generated password (shown once, on this answer) or the one typed (checked by the
    strength rules)."""
    from sohoa.cli.admin import generate_password

    roles, units = roles or [], units or []
    generated = password_mode != "typed"
    form = {"username": username, "display_name": display_name, "roles": roles, "units": units,
            "password_mode": "generate" if generated else "typed"}  # fmt: skip
    error = ""
    if not roles:
        error = "Chọn ít nhất một vai trò."
    elif not units:
        error = "Chọn ít nhất một đơn vị."
    if error:
        return _users_page(request, p, 422, form=form, flash=error, flash_kind="bad")
    secret = generate_password() if generated else password
    try:
        body = auth_api.NewUser(username=username, password=secret, roles=roles, units=units,
                                display_name=display_name)  # fmt: skip
        user = auth_api.add_user(request, body, p)
    except (HTTPException, ValidationError) as e:
        return _users_page(request, p, 422, form=form, flash=f"Không tạo được tài khoản: {_message(e)}",
                           flash_kind="bad")  # fmt: skip
    if not generated:
        return _redirect("/admin/users", "created", str(user["username"]))
    return _secret_page(_users_page(request, p, 201, shown={"username": user["username"], "password": secret,
                                                             "what": "created"},
                                    flash=f"Đã tạo tài khoản {user['username']}.", flash_kind="ok"))  # fmt: skip


def _set_disabled(request: Request, p: Principal, username: str, disabled: bool) -> Response:
    if disabled and username == p.name:
        return _users_page(request, p, 422, flash="Không thể tự vô hiệu hóa tài khoản đang dùng.", flash_kind="bad")
    try:
        user = auth_api.change_user(request, username, auth_api.UserChange.model_validate({"disabled": disabled}), p)
    except HTTPException as e:
        return _users_page(request, p, 422, flash=f"Không đổi được tài khoản {username}: {_message(e)}",
                           flash_kind="bad")  # fmt: skip
    return _redirect("/admin/users", "disabled" if disabled else "enabled", str(user["username"]))


@router.post("/admin/users/{username}/disable", response_class=HTMLResponse)
def disable_user(request: Request, username: str, p: Principal = Depends(require("admin"))) -> Response:
    return _set_disabled(request, p, username, True)


@router.post("/admin/users/{username}/enable", response_class=HTMLResponse)
def enable_user(request: Request, username: str, p: Principal = Depends(require("admin"))) -> Response:
    return _set_disabled(request, p, username, False)


@router.post("/admin/users/{username}/password", response_class=HTMLResponse)
def reset_password(request: Request, username: str, p: Principal = Depends(require("admin"))) -> Response:
    """A new generated password, shown once; every session of the user ends."""
    from sohoa.cli.admin import generate_password

    secret = generate_password()
    try:
        user = auth_api.set_password(request, username, auth_api.NewPassword(password=secret), p)
    except HTTPException as e:
        return _users_page(request, p, 422, flash=f"Không đặt lại được mật khẩu của {username}: {_message(e)}",
                           flash_kind="bad")  # fmt: skip
    return _secret_page(_users_page(request, p, shown={"username": user["username"], "password": secret,
                                                        "what": "reset"},
                                    flash=f"Đã đặt lại mật khẩu của {user['username']}.", flash_kind="ok"))  # fmt: skip


# -- tokens -------------------------------------------------------------------------------------------------
def _tokens_page(request: Request, p: Principal, status_code: int = 200, **context: Any) -> HTMLResponse:
    st = app_state(request)
    tree = st.auth.units()
    tokens = [{"t": t, "units_vi": unit_names(tree, t.units)} for t in reversed(st.auth.tokens())]
    form = context.pop("form", None) or {"name": "", "roles": [], "units": []}
    return page(request, p, "admin_tokens.html", status_code=status_code, tokens=tokens, roles=ROLES,
                roles_vi=ROLE_NAMES_VI, units=unit_options(tree), form=form, **context)  # fmt: skip


@router.get("/admin/tokens", response_class=HTMLResponse)
def tokens_page(
    request: Request, ok: str = "", who: str = "", p: Principal = Depends(require("admin", html=True))
) -> HTMLResponse:
    audit(request, p, "token.list")
    return _tokens_page(request, p, **_flash(ok, who))


@router.post("/admin/tokens", response_class=HTMLResponse)
def create_token(
    request: Request,
    name: Annotated[str, Form(max_length=120)] = "",
    roles: Annotated[list[str] | None, Form()] = None,
    units: Annotated[list[str] | None, Form()] = None,
    p: Principal = Depends(require("admin")),
) -> Response:
    """A new API token; its secret is shown once, on this answer."""
    roles, units = roles or [], units or []
    form = {"name": name, "roles": roles, "units": units}
    error = "Nhập tên mã truy cập." if not name.strip() else "Chọn ít nhất một vai trò." if not roles else (
        "Chọn ít nhất một đơn vị." if not units else "")  # fmt: skip
    if error:
        return _tokens_page(request, p, 422, form=form, flash=error, flash_kind="bad")
    try:
        made = auth_api.create_token(request, auth_api.NewToken(name=name, roles=roles, units=units), p)
    except (HTTPException, ValidationError) as e:
        return _tokens_page(request, p, 422, form=form, flash=f"Không tạo được mã truy cập: {_message(e)}",
                            flash_kind="bad")  # fmt: skip
    return _secret_page(_tokens_page(request, p, 201, shown={"id": made["id"], "token": made["token"], "name": name},
                                     flash=f"Đã tạo mã truy cập {made['id']}.", flash_kind="ok"))  # fmt: skip


@router.post("/admin/tokens/{token_id}/revoke", response_class=HTMLResponse)
def revoke_token(request: Request, token_id: str, p: Principal = Depends(require("admin"))) -> Response:
    try:
        auth_api.revoke_token(request, token_id, p)
    except HTTPException as e:
        return _tokens_page(request, p, e.status_code, flash=f"Không thu hồi được: {_message(e)}", flash_kind="bad")
    return _redirect("/admin/tokens", "revoked", token_id)


# -- units --------------------------------------------------------------------------------------------------
def _units_page(request: Request, p: Principal, status_code: int = 200, **context: Any) -> HTMLResponse:
    tree = app_state(request).auth.units()
    nodes: dict[str, dict[str, Any]] = {
        c: {"code": u.code, "name": u.name, "children": []} for c, u in tree.units.items()
    }
    roots: list[dict[str, Any]] = []
    for c in sorted(tree.units):
        parent = tree.units[c].parent
        (nodes[parent]["children"] if parent in nodes else roots).append(nodes[c])
    return page(request, p, "admin_units.html", status_code=status_code, roots=roots, count=len(tree.units),
                **context)  # fmt: skip


@router.get("/admin/units", response_class=HTMLResponse)
def units_page(
    request: Request, ok: str = "", who: str = "", p: Principal = Depends(require("admin", html=True))
) -> HTMLResponse:
    return _units_page(request, p, **_flash(ok, who))


@router.post("/admin/units", response_class=HTMLResponse)
async def import_units(request: Request, file: UploadFile | None = None,
                       p: Principal = Depends(require("admin"))) -> Response:  # fmt: skip
    """Replace the unit tree from a CSV file (code,name,parent), as ``PUT /units``."""
    if file is None or not file.filename:
        return _units_page(request, p, 422, flash="Chưa chọn tệp CSV đơn vị.", flash_kind="bad")
    try:
        done = await auth_api.import_units(request, file, p)
    except HTTPException as e:
        return _units_page(request, p, 422, flash=f"Không nhập được tệp {file.filename}: {_message(e)}",
                           flash_kind="bad")  # fmt: skip
    return _redirect("/admin/units", "units", str(done["units"]))


# -- audit log (auditors) -----------------------------------------------------------------------------------
def _vn_day(name: str, value: str, end: bool) -> datetime | None:
    """A day of the form (yyyy-mm-dd or dd/mm/yyyy) → its first or last instant in Vietnam time."""
    value = value.strip()
    if not value:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            d = datetime.strptime(value, fmt).date()
            break
        except ValueError:
            continue
    else:
        raise ValueError(f"{name}: ngày không hợp lệ «{value}», cần dạng dd/mm/yyyy")
    return datetime.combine(d, time.max if end else time.min, VN)


@router.get("/audit-log", response_class=HTMLResponse)
def audit_log_page(
    request: Request,
    user: str = "",
    dossier: str = "",
    action: str = "",
    date_from: str = "",
    date_to: str = "",
    outcome: str = "",
    p: Principal = Depends(require("audit.read", html=True)),
) -> HTMLResponse:
    f = {"user": user.strip()[:80], "dossier": dossier.strip()[:64], "action": action.strip()[:64],
         "date_from": date_from.strip()[:10], "date_to": date_to.strip()[:10],
         "outcome": outcome if outcome in OUTCOMES_VI else ""}  # fmt: skip
    ctx: dict[str, Any] = {"f": f, "actions": ACTIONS_VI, "outcomes": OUTCOMES_VI, "limit": AUDIT_LIMIT}
    try:
        since = _vn_day("Từ ngày", f["date_from"], False)
        until = _vn_day("Đến ngày", f["date_to"], True)
    except ValueError as e:
        return page(request, p, "audit_log.html", status_code=422, events=[], flash=str(e), flash_kind="bad", **ctx)
    if since and until and since > until:
        return page(request, p, "audit_log.html", status_code=422, events=[], flash_kind="bad",
                    flash="Ngày kết thúc trước ngày bắt đầu.", **ctx)  # fmt: skip
    events = app_state(request).audit.query(user=f["user"] or None, dossier=f["dossier"] or None,
                                            action=f["action"] or None, since=since, until=until,
                                            limit=AUDIT_LIMIT, outcome=f["outcome"] or None)  # fmt: skip
    audit(request, p, "audit.read", details={"user": f["user"] or None, "dossier": f["dossier"] or None,
                                             "action": f["action"] or None, "from": f["date_from"] or None,
                                             "to": f["date_to"] or None, "outcome": f["outcome"] or None,
                                             "count": len(events)})  # fmt: skip
    rows = []
    for ev in events:
        details = "; ".join(f"{k}: {v}" for k, v in ev.details.items() if v not in (None, "", [], {}))
        rows.append({"e": ev, "details": details if len(details) <= 200 else details[:199] + "…"})
    default_span = "" if since else "31 ngày gần nhất"
    return page(request, p, "audit_log.html", events=rows, capped=len(events) >= AUDIT_LIMIT,
                default_span=default_span, **ctx)  # fmt: skip
