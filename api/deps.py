"""The one place where a request is authenticated, authorised, scoped and audited.

Every route depends on :func:`require` with the permission it needs (see ``sohoa.auth.PERMISSIONS``);
nothing else in the handlers decides who may do what. Credentials: ``Authorization: Bearer <token>``
(API tokens) or the signed session cookie of a signed-in user. A cookie-authenticated request that changes
state (POST/PUT/PATCH/DELETE) must carry the session's CSRF token (header ``X-CSRF-Token`` or form field
``csrf_token``); bearer requests carry no ambient credentials and need none.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request

from sohoa.audit import AuditEvent, AuditLog
from sohoa.auth import AuthStore, LoginThrottle, Principal, Session, read_session, sign_session
from sohoa.context import Context
from sohoa.models import Manifest
from sohoa.settings import Settings
from sohoa.text import nfc
from storage import NotFound

SESSION_COOKIE = "sohoa_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class AppState:
    settings: Settings
    ctx: Context
    auth: AuthStore
    audit: AuditLog
    throttle: LoginThrottle


class LoginRequired(Exception):
    """An HTML page asked for without a session: the browser is sent to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.sohoa
    return state


def C(request: Request) -> Context:  # noqa: N802 - short, used everywhere
    return app_state(request).ctx


def client_ip(request: Request) -> str:
    st = app_state(request)
    if st.settings.trusted_proxy and (fwd := request.headers.get("x-forwarded-for")):
        return fwd.split(",")[0].strip()
    return request.client.host if request.client else ""


def is_https(request: Request) -> bool:
    if app_state(request).settings.trusted_proxy and request.headers.get("x-forwarded-proto") == "https":
        return True
    return request.url.scheme == "https"


def audit(
    request: Request,
    principal: Principal | None,
    action: str,
    *,
    target: str = "",
    dossier: str = "",
    details: dict[str, Any] | None = None,
    outcome: str = "ok",
    status: int = 200,
    actor: str | None = None,
) -> None:
    app_state(request).audit.record(
        AuditEvent(
            actor=actor or (principal.name if principal else "anonymous"),
            actor_kind=principal.kind if principal else "anonymous",
            roles=sorted(principal.roles) if principal else [],
            ip=client_ip(request),
            action=action,
            target=nfc(target),
            dossier=nfc(dossier),
            details=details or {},
            outcome=outcome,
            status=status,
        )
    )


# -- sessions ----------------------------------------------------------------------------------------
def new_session_cookie(request: Request, username: str, gen: int) -> tuple[str, Session]:
    t = time.time()
    s = Session(user=username, gen=gen, issued=t, seen=t)
    return sign_session(app_state(request).auth.signing_key(), s), s


def set_session_cookie(request: Request, response: Any, value: str) -> None:
    st = app_state(request)
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=st.settings.session_max_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=is_https(request),
        path="/",
    )


def _session_principal(request: Request) -> tuple[Principal, Session] | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    st = app_state(request)
    s = read_session(st.auth.signing_key(), raw)
    if s is None:
        return None
    t = time.time()
    if t - s.seen > st.settings.session_idle_minutes * 60 or t - s.issued > st.settings.session_max_hours * 3600:
        return None
    user = st.auth.get_user(s.user)
    if user is None or user.disabled or user.session_gen != s.gen:
        return None
    if t - s.seen > 60:  # sliding idle timeout: re-issued at most once a minute
        s.seen = t
        request.state.refresh_session = sign_session(st.auth.signing_key(), s)
    return st.auth.principal_of_user(user), s


async def authenticate(request: Request) -> Principal | None:
    """The caller, or None. Raises 401 for a bad bearer token, 403 for a missing CSRF token."""
    if hasattr(request.state, "principal"):
        cached: Principal | None = request.state.principal
        return cached
    st = app_state(request)
    principal: Principal | None = None
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        principal = st.auth.verify_token(header[7:])
        if principal is None:
            audit(request, None, "auth.token", outcome="denied", status=401)
            raise HTTPException(401, {"message": "mã truy cập không hợp lệ hoặc đã thu hồi (invalid or revoked token)"},
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    else:
        found = _session_principal(request)
        if found:
            principal, session = found
            request.state.session = session
            if request.method in UNSAFE_METHODS and not await _csrf_ok(request, session):
                audit(request, principal, "auth.csrf", target=request.url.path, outcome="denied", status=403)
                raise HTTPException(403, {"message": "thiếu mã chống giả mạo CSRF (missing or wrong CSRF token)"})
    request.state.principal = principal
    return principal


async def _csrf_ok(request: Request, session: Session) -> bool:
    import hmac

    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        sent = str(form.get(CSRF_FIELD) or "")
    return bool(sent) and hmac.compare_digest(sent, session.csrf)


def require(permission: str, html: bool = False) -> Callable[[Request], Awaitable[Principal]]:
    """Dependency: the caller, who must hold *permission* (401 without credentials, 403 without the role).
    HTML pages (``html=True``) send a browser without a session to the sign-in page instead of a 401."""

    async def dependency(request: Request) -> Principal:
        principal = await authenticate(request)
        if principal is None:
            if html and request.method == "GET":
                raise LoginRequired(str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""))
            raise HTTPException(
                401, {"message": "cần đăng nhập (authentication required)"}, headers={"WWW-Authenticate": "Bearer"}
            )
        if not principal.can(permission):
            audit(request, principal, "auth.forbidden", target=f"{request.method} {request.url.path}",
                  details={"permission": permission}, outcome="denied", status=403)  # fmt: skip
            raise HTTPException(403, {"message": f"không có quyền {permission} (forbidden)"})
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]  # read by the route-walk test
    dependency.html = html  # type: ignore[attr-defined]
    return dependency


def login_url(next_url: str) -> str:
    return "/login?next=" + quote(next_url, safe="/")


# -- scoped loading ----------------------------------------------------------------------------------
def load_document(request: Request, principal: Principal, doc_id: str) -> Manifest:
    """The document if it exists and lies in the caller's units; 404 otherwise (no hint that it exists)."""
    try:
        m = C(request).load_manifest(doc_id)
    except NotFound:
        m = None
    if m is None or not principal.sees_unit(m.unit):
        if m is not None:
            audit(request, principal, "document.read", target=doc_id, dossier=m.dossier_code,
                  outcome="denied", status=404)  # fmt: skip
        raise HTTPException(404, {"message": f"không có tài liệu {doc_id} (no such document)"})
    return m


def load_page(request: Request, principal: Principal, doc_id: str, number: int) -> Manifest:
    """The document, if it has page *number* (404 with the page count otherwise)."""
    m = load_document(request, principal, doc_id)
    last = m.page_count or m.declared_pages
    if not 1 <= number <= max(last, 1):
        raise HTTPException(404, {"message": f"tài liệu chỉ có {last} trang, không có trang {number} (no such page)"})
    return m
