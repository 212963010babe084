"""Who may see what: local accounts, API tokens, the unit tree, roles and permissions.

Everything lives in object storage (the system of record, so it survives ``sohoa reindex``):

* ``auth/units.json``          the unit tree: code → name, parent code (tỉnh → huyện/sở → xã/phường)
* ``auth/users/{name}.json``   one account: Argon2id password hash, roles, units, lock-out state
* ``auth/tokens/{id}.json``    one API token: sha256 of its secret (shown once), role, unit, revoked, last used
* ``auth/session.key``         the key that signs session cookies (unless ``SOHOA_SECRET_KEY`` is set)

Authentication seam: :class:`PasswordBackend` is the one place that checks a name and a password and
returns the account's :class:`Principal`. The local backend (:class:`LocalPasswords`) checks the Argon2id
hash; an LDAP/AD backend would bind as the user and map groups to roles and units, an OIDC module would
add a callback route that builds the same :class:`Principal` from the ID token's claims — nothing past the
seam (sessions, CSRF, permissions, scoping, audit) changes.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from sohoa.text import nfc
from storage import NotFound, ObjectStore

log = logging.getLogger("sohoa.auth")

ROLES = ("clerk", "staff", "manager", "auditor", "admin")
ROLE_NAMES_VI = {
    "clerk": "văn thư / cán bộ một cửa",
    "staff": "cán bộ tra cứu",
    "manager": "lãnh đạo",
    "auditor": "kiểm tra nhật ký",
    "admin": "quản trị",
}

# permission → roles that hold it. Admins manage users, units and tokens; they read no dossier content
# unless they also hold a role that does.
PERMISSIONS: dict[str, frozenset[str]] = {
    "documents.upload": frozenset({"clerk"}),
    "documents.edit": frozenset({"clerk"}),  # retry, metadata, replace a page, delete
    "documents.read": frozenset({"clerk", "staff"}),  # document metadata, status lists
    "content.read": frozenset({"clerk", "staff"}),  # page images, text, hOCR, original, PDF
    "search": frozenset({"clerk", "staff"}),
    "dossiers.read": frozenset({"clerk", "staff", "manager"}),
    "reports.read": frozenset({"manager"}),  # rates, drill-down, unregistered, portal export
    "registry.write": frozenset({"manager"}),
    "audit.read": frozenset({"auditor"}),
    "admin": frozenset({"admin"}),
    "docs.read": frozenset(ROLES),  # the OpenAPI pages: any signed-in user
}

ALL_UNITS = "*"  # a user or token of every unit (province-wide deployments, the demo's admin)
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
UNIT_CODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$")
COMMON_PASSWORDS = frozenset(
    [
        "123456", "12345678", "123456789", "1234567890", "password", "matkhau", "matkhau123", "admin",
        "admin123", "qwerty", "abc123", "111111", "iloveyou", "123123", "000000", "password1", "vietnam",
        "vietnam123", "12345678910", "qwerty123", "1q2w3e4r",
    ]
)

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)


class AuthError(ValueError):
    """A request about accounts that cannot be done (message for the person; Vietnamese first)."""


def now() -> datetime:
    return datetime.now(UTC)


def _iso(t: datetime | None) -> str:
    return t.isoformat(timespec="seconds") if t else ""


def _parse(s: str) -> datetime | None:
    return datetime.fromisoformat(s) if s else None


# -- units -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    parent: str = ""


class UnitTree:
    def __init__(self, units: Iterable[Unit] = ()) -> None:
        self.units = {u.code: u for u in units}
        self.children: dict[str, list[str]] = {}
        for u in self.units.values():
            self.children.setdefault(u.parent, []).append(u.code)

    def subtree(self, codes: Iterable[str]) -> set[str]:
        out: set[str] = set()
        todo = [c for c in codes if c in self.units]
        while todo:
            c = todo.pop()
            if c not in out:
                out.add(c)
                todo.extend(self.children.get(c, []))
        return out

    def scope(self, codes: Iterable[str]) -> tuple[str, ...] | None:
        """The values a document's ``unit`` may hold to be visible: codes and names of the subtree.
        None = every unit (the caller holds ``*``)."""
        codes = list(codes)
        if ALL_UNITS in codes:
            return None
        values: set[str] = set()
        for c in self.subtree(codes):
            values.add(c)
            values.add(self.units[c].name)
        values.update(c for c in codes if c not in self.units)  # a unit not (yet) in the tree: itself
        return tuple(sorted(values))

    def resolve(self, value: str) -> Unit | None:
        """The unit whose code or name is *value*."""
        value = nfc(value).strip()
        if value in self.units:
            return self.units[value]
        return next((u for u in self.units.values() if u.name == value), None)

    def to_json(self) -> bytes:
        return json.dumps([asdict(u) for u in self.units.values()], ensure_ascii=False, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> UnitTree:
        return cls(Unit(**u) for u in json.loads(data))


def parse_units_csv(text: str) -> list[Unit]:
    """CSV with columns code,name,parent (also MaDonVi,TenDonVi,MaDonViCha); the parent may be empty."""
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    units: list[Unit] = []
    errors = []
    for i, row in enumerate(rows, 2):
        r = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        code = nfc(r.get("code") or r.get("madonvi") or "")
        name = nfc(r.get("name") or r.get("tendonvi") or "")
        parent = nfc(r.get("parent") or r.get("madonvicha") or "")
        if not UNIT_CODE.match(code) or not name:
            errors.append(f"dòng {i}: cần mã đơn vị (chữ, số, . _ -) và tên (line {i}: code and name required)")
            continue
        units.append(Unit(code, " ".join(name.split()), parent))
    codes = {u.code for u in units}
    for u in units:
        if u.parent and u.parent not in codes:
            errors.append(f"đơn vị {u.code}: không có đơn vị cha {u.parent} (unknown parent)")
    if len(codes) != len(units):
        errors.append("mã đơn vị bị trùng (duplicate unit codes)")
    if errors:
        raise AuthError("; ".join(errors))
    tree = UnitTree(units)
    roots = [u.code for u in units if not u.parent]
    if len(tree.subtree(roots)) != len(units):
        raise AuthError("cây đơn vị có vòng lặp (the unit tree has a cycle)")
    return units


# -- principals --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Principal:
    name: str  # user name, or "token:<id>"
    kind: str  # "user" | "token"
    roles: frozenset[str]
    units: tuple[str, ...]  # unit codes as assigned ("*" = all)
    scope: tuple[str, ...] | None  # unit values visible (codes + names of the subtree); None = all
    display: str = ""
    session_gen: int = 0

    def can(self, permission: str) -> bool:
        return bool(self.roles & PERMISSIONS[permission])

    def sees_unit(self, unit: str) -> bool:
        """The same comparison as the index's scope filter: NFC, spaces collapsed, case folded."""
        if self.scope is None:
            return True
        from index.rates import unit_key

        key = unit_key(unit)
        return key != "" and key in {unit_key(s) for s in self.scope}


@dataclass
class User:
    username: str
    password_hash: str
    roles: list[str]
    units: list[str]
    display_name: str = ""
    disabled: bool = False
    created: str = ""
    password_changed: str = ""
    failed_logins: int = 0
    locked_until: str = ""
    session_gen: int = 0
    last_login: str = ""

    def public(self) -> dict[str, object]:
        d = asdict(self)
        d.pop("password_hash")
        return d


@dataclass
class Token:
    id: str
    name: str
    roles: list[str]
    units: list[str]
    secret_sha256: str
    created: str = ""
    created_by: str = ""
    revoked: str = ""
    last_used: str = ""

    def public(self) -> dict[str, object]:
        d = asdict(self)
        d.pop("secret_sha256")
        return d


def check_password_strength(password: str, username: str = "") -> None:
    """At least 10 characters with 3 kinds of characters (or 16+ characters), not a common password
    and not the user name."""
    kinds = sum(bool(re.search(p, password)) for p in (r"[a-zà-ỹđ]", r"[A-ZÀ-ỸĐ]", r"\d", r"[^\w\s]|_| "))
    if len(password) < 10:
        raise AuthError("mật khẩu cần ít nhất 10 ký tự (password must have at least 10 characters)")
    if len(password) < 16 and kinds < 3:
        raise AuthError(
            "mật khẩu cần 3 loại ký tự (chữ thường, chữ hoa, số, ký hiệu) hoặc dài từ 16 ký tự "
            "(use 3 kinds of characters or 16+ characters)"
        )
    low = password.lower()
    if low in COMMON_PASSWORDS or (username and username.lower() in low) or len(set(password)) < 5:
        raise AuthError("mật khẩu quá dễ đoán (password too easy to guess)")


def _check_roles(roles: Iterable[str]) -> list[str]:
    roles = sorted({r.strip() for r in roles if r.strip()})
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise AuthError(f"vai trò không hợp lệ {bad or roles} (roles: {', '.join(ROLES)})")
    return roles


class PasswordBackend(Protocol):
    """The authentication seam: name + password → the account, or None."""

    def authenticate(self, username: str, password: str) -> User | None: ...


class AuthStore:
    """Accounts, tokens and the unit tree in object storage."""

    def __init__(self, store: ObjectStore, secret_key: str = "") -> None:
        self.store = store
        self._hasher = PasswordHasher()  # Argon2id, argon2-cffi's RFC 9106 low-memory profile
        self._secret_key = secret_key.encode() if secret_key else b""
        self._lock = threading.Lock()
        self._units: tuple[float, UnitTree] | None = None

    # -- units -----------------------------------------------------------------------------------
    def units(self) -> UnitTree:
        cached = self._units
        if cached and time.monotonic() - cached[0] < 5:
            return cached[1]
        try:
            tree = UnitTree.from_json(self.store.get_bytes("auth/units.json"))
        except NotFound:
            tree = UnitTree()
        self._units = (time.monotonic(), tree)
        return tree

    def import_units(self, units: list[Unit]) -> UnitTree:
        """Replace the unit tree (units missing from the new file disappear; users keep their codes)."""
        tree = UnitTree(units)
        self.store.put_bytes("auth/units.json", tree.to_json(), "application/json")
        self._units = (time.monotonic(), tree)
        return tree

    def scope_of(self, units: Iterable[str]) -> tuple[str, ...] | None:
        return self.units().scope(units)

    def _check_units(self, units: Iterable[str]) -> list[str]:
        units = sorted({nfc(u).strip() for u in units if u.strip()})
        if not units:
            raise AuthError("cần ít nhất một đơn vị (at least one unit)")
        tree = self.units()
        bad = [u for u in units if u != ALL_UNITS and u not in tree.units]
        if bad:
            raise AuthError(f"đơn vị không có trong cây đơn vị: {', '.join(bad)} (unknown units: sohoa unit import)")
        return units

    # -- users -----------------------------------------------------------------------------------
    @staticmethod
    def _user_key(username: str) -> str:
        return f"auth/users/{username}.json"

    def get_user(self, username: str) -> User | None:
        username = nfc(username).strip().lower()
        if not USERNAME.match(username):
            return None
        try:
            return User(**json.loads(self.store.get_bytes(self._user_key(username))))
        except NotFound:
            return None

    def save_user(self, user: User) -> None:
        self.store.put_bytes(self._user_key(user.username), json.dumps(asdict(user), ensure_ascii=False).encode())

    def users(self) -> list[User]:
        out = []
        for key in self.store.list("auth/users/"):
            if key.endswith(".json"):
                out.append(User(**json.loads(self.store.get_bytes(key))))
        return sorted(out, key=lambda u: u.username)

    def has_users(self) -> bool:
        return any(k.endswith(".json") for k in self.store.list("auth/users/"))

    def add_user(
        self, username: str, password: str, roles: Iterable[str], units: Iterable[str], display_name: str = ""
    ) -> User:
        username = nfc(username).strip().lower()
        if not USERNAME.match(username):
            raise AuthError("tên đăng nhập: 2–64 chữ thường, số, . _ - (user name: a-z 0-9 . _ -)")
        if self.get_user(username):
            raise AuthError(f"tài khoản {username} đã có (user exists)")
        check_password_strength(password, username)
        user = User(
            username=username,
            password_hash=self._hasher.hash(password),
            roles=_check_roles(roles),
            units=self._check_units(units),
            display_name=nfc(display_name).strip(),
            created=_iso(now()),
            password_changed=_iso(now()),
        )
        self.save_user(user)
        return user

    def update_user(
        self,
        username: str,
        *,
        roles: Iterable[str] | None = None,
        units: Iterable[str] | None = None,
        disabled: bool | None = None,
        display_name: str | None = None,
    ) -> User:
        user = self._require_user(username)
        if roles is not None:
            user.roles = _check_roles(roles)
        if units is not None:
            user.units = self._check_units(units)
        if display_name is not None:
            user.display_name = nfc(display_name).strip()
        if disabled is not None:
            user.disabled = disabled
            if disabled:
                user.session_gen += 1  # signs the user out everywhere
            else:
                user.failed_logins, user.locked_until = 0, ""
        self.save_user(user)
        return user

    def set_password(self, username: str, password: str) -> User:
        user = self._require_user(username)
        check_password_strength(password, user.username)
        user.password_hash = self._hasher.hash(password)
        user.password_changed = _iso(now())
        user.failed_logins, user.locked_until = 0, ""
        user.session_gen += 1
        self.save_user(user)
        return user

    def end_sessions(self, username: str) -> None:
        user = self._require_user(username)
        user.session_gen += 1
        self.save_user(user)

    def _require_user(self, username: str) -> User:
        user = self.get_user(username)
        if user is None:
            raise AuthError(f"không có tài khoản {username} (no such user)")
        return user

    def authenticate(self, username: str, password: str) -> tuple[User | None, str]:
        """(user, "") on success, else (None, reason): bad, locked, disabled. Counts failures; locks the
        account for LOCKOUT after MAX_FAILED_LOGINS in a row. Same work whether the user exists or not."""
        user = self.get_user(username)
        if user is None:
            self._hasher.hash(password)  # spend the same time as a real check
            return None, "bad"
        if user.disabled:
            return None, "disabled"
        locked = _parse(user.locked_until)
        if locked and locked > now():
            return None, "locked"
        try:
            self._hasher.verify(user.password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            user.failed_logins += 1
            lock = user.failed_logins >= MAX_FAILED_LOGINS
            if lock:
                user.locked_until, user.failed_logins = _iso(now() + LOCKOUT), 0
                log.warning("account locked after repeated failures", extra={"user": user.username})
            self.save_user(user)
            return None, "locked" if lock else "bad"
        if self._hasher.check_needs_rehash(user.password_hash):
            user.password_hash = self._hasher.hash(password)
        user.failed_logins, user.locked_until, user.last_login = 0, "", _iso(now())
        self.save_user(user)
        return user, ""

    def principal_of_user(self, user: User) -> Principal:
        return Principal(
            name=user.username,
            kind="user",
            roles=frozenset(user.roles),
            units=tuple(user.units),
            scope=self.scope_of(user.units),
            display=user.display_name or user.username,
            session_gen=user.session_gen,
        )

    # -- tokens ----------------------------------------------------------------------------------
    def create_token(self, name: str, roles: Iterable[str], units: Iterable[str], created_by: str = "") -> str:
        """A new token; returns the whole secret string (shown once, only its sha256 is kept)."""
        tid = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        tok = Token(
            id=tid,
            name=nfc(name).strip() or tid,
            roles=_check_roles(roles),
            units=self._check_units(units),
            secret_sha256=hashlib.sha256(secret.encode()).hexdigest(),
            created=_iso(now()),
            created_by=created_by,
        )
        self.store.put_bytes(f"auth/tokens/{tid}.json", json.dumps(asdict(tok), ensure_ascii=False).encode())
        return f"sohoa_{tid}_{secret}"

    def get_token(self, tid: str) -> Token | None:
        if not re.fullmatch(r"[0-9a-f]{12}", tid):
            return None
        try:
            return Token(**json.loads(self.store.get_bytes(f"auth/tokens/{tid}.json")))
        except NotFound:
            return None

    def tokens(self) -> list[Token]:
        out = [Token(**json.loads(self.store.get_bytes(k))) for k in self.store.list("auth/tokens/")]
        return sorted(out, key=lambda t: t.created)

    def revoke_token(self, tid: str) -> Token:
        tok = self.get_token(tid)
        if tok is None:
            raise AuthError(f"không có mã truy cập {tid} (no such token)")
        if not tok.revoked:
            tok.revoked = _iso(now())
            self.store.put_bytes(f"auth/tokens/{tid}.json", json.dumps(asdict(tok), ensure_ascii=False).encode())
        return tok

    def verify_token(self, raw: str) -> Principal | None:
        """The token's principal, or None (unknown, wrong secret, revoked). Read from storage on every
        call, so a revocation takes effect at once on every API process."""
        m = re.fullmatch(r"sohoa_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})", raw.strip())
        if not m:
            return None
        tok = self.get_token(m[1])
        if tok is None or tok.revoked:
            return None
        if not hmac.compare_digest(tok.secret_sha256, hashlib.sha256(m[2].encode()).hexdigest()):
            return None
        last = _parse(tok.last_used)
        if last is None or now() - last > timedelta(minutes=1):  # at most one write a minute
            tok.last_used = _iso(now())
            self.store.put_bytes(f"auth/tokens/{tok.id}.json", json.dumps(asdict(tok), ensure_ascii=False).encode())
        return Principal(
            name=f"token:{tok.id}",
            kind="token",
            roles=frozenset(tok.roles),
            units=tuple(tok.units),
            scope=self.scope_of(tok.units),
            display=tok.name,
        )

    # -- session signing ---------------------------------------------------------------------------
    def signing_key(self) -> bytes:
        if self._secret_key:
            return self._secret_key
        with self._lock:
            if not self._secret_key:
                try:
                    self._secret_key = self.store.get_bytes("auth/session.key")
                except NotFound:
                    key = secrets.token_bytes(32)
                    self.store.put_bytes("auth/session.key", key)
                    self._secret_key = key
        return self._secret_key


@dataclass
class Session:
    user: str
    gen: int
    issued: float
    seen: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))


def sign_session(key: bytes, s: Session) -> str:
    import base64

    body = base64.urlsafe_b64encode(json.dumps(asdict(s), separators=(",", ":")).encode()).decode().rstrip("=")
    mac = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def read_session(key: bytes, cookie: str) -> Session | None:
    import base64

    body, _, mac = cookie.rpartition(".")
    if not body or not hmac.compare_digest(mac, hmac.new(key, body.encode(), hashlib.sha256).hexdigest()):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        return Session(**data)
    except (ValueError, TypeError):
        return None


class LoginThrottle:
    """Sign-in attempts per client address: at most *limit* in *window_s* (in this process)."""

    def __init__(self, limit: int = 10, window_s: float = 60.0) -> None:
        self.limit, self.window = limit, window_s
        self._hits: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        t = time.monotonic()
        with self._lock:
            hits = [h for h in self._hits.get(client, []) if t - h < self.window]
            if len(hits) >= self.limit:
                self._hits[client] = hits
                return False
            hits.append(t)
            self._hits[client] = hits
            if len(self._hits) > 10_000:  # forget idle clients
                self._hits = {k: v for k, v in self._hits.items() if v and t - v[-1] < self.window}
            return True
