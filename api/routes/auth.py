"""Sign-in and sign-out, the caller's identity, and administration of users, tokens and the unit tree."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from api.deps import (
    SESSION_COOKIE,
    app_state,
    audit,
    authenticate,
    client_ip,
    is_https,
    new_session_cookie,
    require,
    set_session_cookie,
)
from api.templating import TEMPLATES
from sohoa.auth import ROLE_NAMES_VI, ROLES, AuthError, Principal, parse_units_csv

router = APIRouter(tags=["auth"])
LOGIN_CSRF_COOKIE = "sohoa_login"


def _safe_next(next_url: str) -> str:
    return next_url if next_url.startswith("/") and not next_url.startswith("//") and "\\" not in next_url else "/"


def _login_page(request: Request, next_url: str, message: str = "", status: int = 200) -> Response:
    st = app_state(request)
    token = secrets.token_urlsafe(24)
    resp = TEMPLATES.TemplateResponse(
        request,
        "login.html",
        {"next": _safe_next(next_url), "message": message, "csrf": token, "no_users": not st.auth.has_users()},
        status_code=status,
    )
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                    secure=is_https(request), path="/login")  # fmt: skip
    return resp


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_form(request: Request, next: str = "/") -> Response:  # noqa: A002 - the query parameter's name
    return _login_page(request, next)


@router.post("/login", include_in_schema=False)
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",  # noqa: A002
) -> Response:
    st = app_state(request)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not secrets.compare_digest(cookie, csrf_token):
        audit(request, None, "auth.login", actor=username[:64], outcome="denied", status=403,
              details={"reason": "csrf"})  # fmt: skip
        return _login_page(request, next, "Phiên đăng nhập đã hết hạn, vui lòng thử lại.", 403)
    if not st.throttle.allow(client_ip(request)):
        audit(request, None, "auth.login", actor=username[:64], outcome="denied", status=429,
              details={"reason": "rate limit"})  # fmt: skip
        return _login_page(request, next, "Quá nhiều lần đăng nhập, vui lòng đợi một phút.", 429)
    user, reason = st.auth.authenticate(username, password)
    if user is None:
        audit(request, None, "auth.login", actor=username[:64], outcome="denied", status=401,
              details={"reason": reason})  # fmt: skip
        msg = {
            "locked": "Tài khoản tạm khóa 15 phút do nhập sai mật khẩu nhiều lần.",
            "disabled": "Tài khoản đã bị vô hiệu hóa.",
        }.get(reason, "Sai tên đăng nhập hoặc mật khẩu.")
        return _login_page(request, next, msg, 401)
    value, _ = new_session_cookie(request, user.username, user.session_gen)
    resp = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(request, resp, value)
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    audit(request, st.auth.principal_of_user(user), "auth.login", status=303)
    return resp


@router.post("/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    p = await authenticate(request)  # a cookie-authenticated POST: the CSRF token is checked there
    st = app_state(request)
    if p is not None and p.kind == "user":
        st.auth.end_sessions(p.name)
        audit(request, p, "auth.logout", status=303)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.get("/auth/me")
def me(request: Request, p: Principal = Depends(require("docs.read"))) -> dict[str, Any]:
    session = getattr(request.state, "session", None)
    return {
        "name": p.name,
        "kind": p.kind,
        "display": p.display,
        "roles": sorted(p.roles),
        "units": list(p.units),
        "csrf_token": session.csrf if session else None,
    }


# -- administration: users, tokens, units --------------------------------------------------------------
class NewUser(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=256)
    roles: list[str] = Field(min_length=1, max_length=len(ROLES))
    units: list[str] = Field(min_length=1, max_length=100)
    display_name: str = Field("", max_length=120)


class UserChange(BaseModel):
    roles: list[str] | None = Field(None, max_length=len(ROLES))
    units: list[str] | None = Field(None, max_length=100)
    disabled: bool | None = None
    display_name: str | None = Field(None, max_length=120)


class NewPassword(BaseModel):
    password: str = Field(max_length=256)


class NewToken(BaseModel):
    name: str = Field(max_length=120)
    roles: list[str] = Field(min_length=1, max_length=len(ROLES))
    units: list[str] = Field(min_length=1, max_length=100)


def _bad(e: AuthError) -> HTTPException:
    return HTTPException(422, {"message": str(e)})


@router.get("/users")
def list_users(request: Request, p: Principal = Depends(require("admin"))) -> dict[str, Any]:
    audit(request, p, "user.list")
    return {"users": [u.public() for u in app_state(request).auth.users()], "roles": ROLE_NAMES_VI}


@router.post("/users", status_code=201)
def add_user(request: Request, body: NewUser, p: Principal = Depends(require("admin"))) -> dict[str, Any]:
    try:
        user = app_state(request).auth.add_user(body.username, body.password, body.roles, body.units,
                                                body.display_name)  # fmt: skip
    except AuthError as e:
        audit(request, p, "user.create", target=body.username, outcome="failed", status=422)
        raise _bad(e) from None
    audit(request, p, "user.create", target=user.username, details={"roles": user.roles, "units": user.units},
          status=201)  # fmt: skip
    return user.public()


@router.patch("/users/{username}")
def change_user(
    request: Request, username: str, body: UserChange, p: Principal = Depends(require("admin"))
) -> dict[str, Any]:
    try:
        user = app_state(request).auth.update_user(username, roles=body.roles, units=body.units,
                                                   disabled=body.disabled, display_name=body.display_name)  # fmt: skip
    except AuthError as e:
        raise _bad(e) from None
    audit(request, p, "user.update", target=user.username, details=body.model_dump(exclude_none=True))
    return user.public()


@router.post("/users/{username}/password")
def set_password(
    request: Request, username: str, body: NewPassword, p: Principal = Depends(require("admin"))
) -> dict[str, Any]:
    try:
        user = app_state(request).auth.set_password(username, body.password)
    except AuthError as e:
        raise _bad(e) from None
    audit(request, p, "user.password", target=user.username)
    return user.public()


@router.get("/tokens")
def list_tokens(request: Request, p: Principal = Depends(require("admin"))) -> dict[str, Any]:
    audit(request, p, "token.list")
    return {"tokens": [t.public() for t in app_state(request).auth.tokens()]}


@router.post("/tokens", status_code=201)
def create_token(request: Request, body: NewToken, p: Principal = Depends(require("admin"))) -> dict[str, Any]:
    try:
        secret = app_state(request).auth.create_token(body.name, body.roles, body.units, created_by=p.name)
    except AuthError as e:
        raise _bad(e) from None
    tid = secret.split("_")[1]
    audit(request, p, "token.create", target=tid, details={"name": body.name, "roles": body.roles,
                                                           "units": body.units}, status=201)  # fmt: skip
    return {"id": tid, "token": secret, "note": "shown once: store it now (chỉ hiện một lần)"}


@router.delete("/tokens/{token_id}")
def revoke_token(request: Request, token_id: str, p: Principal = Depends(require("admin"))) -> dict[str, Any]:
    try:
        tok = app_state(request).auth.revoke_token(token_id)
    except AuthError as e:
        raise HTTPException(404, {"message": str(e)}) from None
    audit(request, p, "token.revoke", target=token_id)
    return tok.public()


@router.get("/units")
def list_units(request: Request, p: Principal = Depends(require("admin"))) -> dict[str, Any]:
    tree = app_state(request).auth.units()
    return {"units": [u.__dict__ for u in tree.units.values()]}


@router.put("/units")
async def import_units(request: Request, file: UploadFile, p: Principal = Depends(require("admin"))) -> dict[str, Any]:
    data = await file.read(2 * 1024 * 1024 + 1)
    if len(data) > 2 * 1024 * 1024:
        raise HTTPException(413, {"message": "tệp đơn vị quá lớn (unit file above 2 MB)"})
    try:
        units = parse_units_csv(data.decode("utf-8-sig"))
    except (AuthError, UnicodeDecodeError) as e:
        raise HTTPException(422, {"message": str(e)}) from None
    app_state(request).auth.import_units(units)
    audit(request, p, "unit.import", details={"units": len(units)})
    return {"units": len(units)}
