"""Shared pieces of the HTML pages: the template environment with Vietnamese formats, the navigation
each role sees, and the page context every template gets (who is signed in, the CSRF token)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse

from api.templating import TEMPLATES
from sohoa.auth import Principal

VN = ZoneInfo("Asia/Ho_Chi_Minh")

# (path, label, permission): the menu; an entry shows only to those holding its permission
NAV = [
    ("/", "Tra cứu", "search"),
    ("/upload", "Tải lên", "documents.upload"),
    ("/queue", "Hàng đợi", "documents.read"),
    ("/reports", "Báo cáo số hóa", "reports.read"),
    ("/registry", "Sổ đăng ký", "registry.write"),
    ("/admin/users", "Người dùng", "admin"),
    ("/admin/tokens", "Mã truy cập", "admin"),
    ("/admin/units", "Đơn vị", "admin"),
    ("/audit-log", "Nhật ký truy cập", "audit.read"),
]
KIND_VI = {"input": "thành phần hồ sơ", "output": "kết quả"}
STATUS_VI = {
    "received": "đã nhận",
    "queued": "chờ xử lý",
    "processing": "đang xử lý",
    "done": "xong",
    "failed": "lỗi",
    "deleted": "đã xóa",
}


def vn_number(value: Any, digits: int = 0) -> str:
    """1234567.5 → "1.234.567,5" (Vietnamese separators)."""
    if value is None or value == "":
        return ""
    text = f"{float(value):,.{digits}f}" if digits else f"{round(float(value)):,}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def vn_date(value: Any, with_time: bool = False) -> str:
    """ISO date or datetime → dd/mm/yyyy (hh:mm in Vietnam time)."""
    if not value:
        return ""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    else:
        text = str(value)
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
        if len(text) <= 10:
            return dt.strftime("%d/%m/%Y")
    if dt.tzinfo is not None:
        dt = dt.astimezone(VN)
    return dt.strftime("%d/%m/%Y %H:%M" if with_time else "%d/%m/%Y")


TEMPLATES.env.filters["vn_number"] = vn_number
TEMPLATES.env.filters["vn_date"] = vn_date
TEMPLATES.env.globals["KIND_VI"] = KIND_VI
TEMPLATES.env.globals["STATUS_VI"] = STATUS_VI


def page(request: Request, p: Principal, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render *template* inside the layout: menu for the caller's roles, their name, the CSRF token."""
    session = getattr(request.state, "session", None)
    nav = [(path, label) for path, label, perm in NAV if p.can(perm)]
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {"me": p, "nav": nav, "csrf": session.csrf if session else "", "path": request.url.path, **context},
        status_code=status_code,
    )
