"""Security headers on every response, and CORS only when configured.

The Content-Security-Policy allows no inline script: the staff pages have none, and the OpenAPI pages
(:mod:`api.docs`) load their start-up script from ``/static/docs/``. Inline styles stay allowed
(the staff pages and ReDoc use them); ``data:``/``blob:`` images for Swagger UI and ReDoc.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000"
HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)


def request_is_https(scope: Scope, trusted_proxy: bool = False) -> bool:
    """Whether the client reached us over TLS: the ASGI scheme, or (behind a trusted proxy) the first
    ``X-Forwarded-Proto`` value."""
    if scope.get("scheme") in ("https", "wss"):
        return True
    if trusted_proxy:
        for name, value in scope.get("headers", []):
            if name.lower() == b"x-forwarded-proto":
                return value.decode("latin-1").split(",")[0].strip().lower() == "https"
    return False


class SecurityHeaders:
    """Add :data:`HEADERS` to every HTTP response (a header the app set itself is kept), and
    ``Strict-Transport-Security`` when the request came over https."""

    def __init__(self, app: ASGIApp, trusted_proxy: bool = False) -> None:
        self.app = app
        self.trusted_proxy = trusted_proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in HEADERS]
        if request_is_https(scope, self.trusted_proxy):
            extra.append((b"strict-transport-security", HSTS.encode("latin-1")))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {bytes(k).lower() for k, _ in headers}
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def cors_middleware_kwargs(origins: str) -> dict[str, Any] | None:
    """Keyword arguments for Starlette's ``CORSMiddleware`` from ``SOHOA_CORS_ORIGINS``, or ``None``
    (CORS off: browsers then refuse cross-origin calls) when it is empty.

    ``origins`` is comma-separated: ``https://portal.example.gov.vn, http://localhost:5173``, or ``*``.
    No credentials are allowed cross-origin.
    """
    allowed = [o.strip().rstrip("/") for o in origins.split(",") if o.strip()]
    if not allowed:
        return None
    for o in allowed:
        if o == "*":
            continue
        u = urlsplit(o)
        if u.scheme not in ("http", "https") or not u.netloc or u.path or u.query or u.fragment:
            raise ValueError(
                f"SOHOA_CORS_ORIGINS: {o!r} is not an origin like https://portal.example.gov.vn "
                "(scheme and host, optional port, no path)"
            )
    return {
        "allow_origins": ["*"] if "*" in allowed else allowed,
        "allow_methods": ["GET", "HEAD", "POST"],
        "allow_headers": ["Accept", "Accept-Language", "Content-Language", "Content-Type", "Authorization"],
        "expose_headers": ["Content-Disposition"],
        "allow_credentials": False,
        "max_age": 600,
    }
