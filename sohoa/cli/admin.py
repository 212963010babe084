"""Subcommands for the local operator: user accounts, the unit tree, API tokens.

The CLI acts as the operator of this machine (it talks to the backends directly, without signing in);
each change is written to the audit log as ``cli:<os user>``.
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from pathlib import Path

from rich.table import Table

from sohoa.auth import ROLES, AuthError, AuthStore, check_password_strength, parse_units_csv
from sohoa.cli.common import CliError, Runtime, command, console


def _store(rt: Runtime) -> AuthStore:
    return AuthStore(rt.ctx.store, rt.settings.secret_key)


def generate_password() -> str:
    """A random password that passes the strength check (shown once)."""
    while True:
        pw = secrets.token_urlsafe(12) + "-" + str(secrets.randbelow(90) + 10)
        try:
            check_password_strength(pw)
            return pw
        except AuthError:
            continue


def _read_password(args: argparse.Namespace, username: str) -> tuple[str, bool]:
    """(password, generated?) from --generate, --password-stdin or a prompt."""
    if args.generate:
        return generate_password(), True
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    if not sys.stdin.isatty():
        raise CliError("give --password-stdin or --generate (no terminal to ask the password on)")
    first = getpass.getpass(f"mật khẩu cho {username}: ")
    if first != getpass.getpass("nhập lại: "):
        raise CliError("hai lần nhập không khớp (passwords differ)")
    return first, False


def cmd_user_add(rt: Runtime, args: argparse.Namespace) -> int:
    password, generated = _read_password(args, args.username)
    try:
        user = _store(rt).add_user(args.username, password, args.role, args.unit, args.display or "")
    except AuthError as e:
        raise CliError(str(e)) from None
    rt.audit("user.create", user.username, roles=user.roles, units=user.units)
    console.print(f"created user {user.username}: roles {', '.join(user.roles)}; units {', '.join(user.units)}")
    if generated:
        console.print(f"password (shown once): {password}", highlight=False)
    return 0


def cmd_user_list(rt: Runtime, args: argparse.Namespace) -> int:
    t = Table(title="users")
    for col in ("user", "name", "roles", "units", "state", "last sign-in"):
        t.add_column(col)
    users = _store(rt).users()
    for u in users:
        state = "disabled" if u.disabled else ("locked" if u.locked_until else "active")
        t.add_row(u.username, u.display_name, ", ".join(u.roles), ", ".join(u.units), state, u.last_login)
    console.print(t)
    console.print(f"{len(users)} user(s)")
    return 0


def cmd_user_disable(rt: Runtime, args: argparse.Namespace) -> int:
    try:
        user = _store(rt).update_user(args.username, disabled=not args.enable)
    except AuthError as e:
        raise CliError(str(e), 1) from None
    rt.audit("user.update", user.username, disabled=user.disabled)
    console.print(f"{user.username} {'disabled (signed out everywhere)' if user.disabled else 'enabled'}")
    return 0


def cmd_user_passwd(rt: Runtime, args: argparse.Namespace) -> int:
    store = _store(rt)
    if store.get_user(args.username) is None:
        raise CliError(f"không có tài khoản {args.username} (no such user)", 1)
    password, generated = _read_password(args, args.username)
    try:
        user = store.set_password(args.username, password)
    except AuthError as e:
        raise CliError(str(e)) from None
    rt.audit("user.password", user.username)
    console.print(f"password of {user.username} changed; their sessions are ended")
    if generated:
        console.print(f"password (shown once): {password}", highlight=False)
    return 0


def cmd_unit_import(rt: Runtime, args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"không tìm thấy tệp {path} (no such file)")
    try:
        units = parse_units_csv(path.read_bytes().decode("utf-8-sig"))
    except (AuthError, UnicodeDecodeError) as e:
        raise CliError(f"{path}: {e}") from None
    _store(rt).import_units(units)
    rt.audit("unit.import", str(path), units=len(units))
    roots = [u for u in units if not u.parent]
    console.print(f"imported {len(units)} unit(s), {len(roots)} at the top: {', '.join(u.name for u in roots)}")
    return 0


def cmd_unit_list(rt: Runtime, args: argparse.Namespace) -> int:
    tree = _store(rt).units()

    def show(code: str, depth: int) -> None:
        u = tree.units[code]
        console.print(f"{'  ' * depth}{u.code}  {u.name}", highlight=False)
        for child in sorted(tree.children.get(code, [])):
            show(child, depth + 1)

    for root in sorted(tree.children.get("", [])):
        show(root, 0)
    console.print(f"{len(tree.units)} unit(s)")
    return 0


def cmd_token_create(rt: Runtime, args: argparse.Namespace) -> int:
    try:
        secret = _store(rt).create_token(args.name, args.role, args.unit, created_by=f"cli:{getpass.getuser()}")
    except AuthError as e:
        raise CliError(str(e)) from None
    tid = secret.split("_")[1]
    rt.audit("token.create", tid, name=args.name, roles=args.role, units=args.unit)
    if args.quiet:
        print(secret)
    else:
        console.print(f"token {tid} ({args.name}); the secret is shown once, store it now:")
        print(secret)
    return 0


def cmd_token_list(rt: Runtime, args: argparse.Namespace) -> int:
    t = Table(title="API tokens")
    for col in ("id", "name", "roles", "units", "created", "last used", "revoked"):
        t.add_column(col)
    tokens = _store(rt).tokens()
    for tok in tokens:
        t.add_row(tok.id, tok.name, ", ".join(tok.roles), ", ".join(tok.units), tok.created, tok.last_used, tok.revoked)
    console.print(t)
    console.print(f"{len(tokens)} token(s)")
    return 0


def cmd_token_revoke(rt: Runtime, args: argparse.Namespace) -> int:
    try:
        tok = _store(rt).revoke_token(args.id)
    except AuthError as e:
        raise CliError(str(e), 1) from None
    rt.audit("token.revoke", tok.id)
    console.print(f"token {tok.id} ({tok.name}) revoked at {tok.revoked}")
    return 0


def _who(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--role", action="append", choices=ROLES, required=required, help="repeat for several roles")
    p.add_argument("--unit", action="append", required=required,
                   help="unit code from the unit tree, or '*' for every unit; repeat for several")  # fmt: skip


def _password_options(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    g.add_argument("--generate", action="store_true", help="generate a strong password and print it once")


def register(sub: argparse._SubParsersAction) -> None:
    user = sub.add_parser("user", help="user accounts: add, list, disable, passwd")
    user.set_defaults(func=lambda rt, a: (user.print_help(), 2)[1])
    us = user.add_subparsers(dest="user_cmd", metavar="ACTION")
    s = command(us, "add", cmd_user_add, "create an account (roles: " + ", ".join(ROLES) + ")")
    s.add_argument("username")
    _who(s)
    s.add_argument("--display", help="full name shown in the pages")
    _password_options(s)
    command(us, "list", cmd_user_list, "list the accounts")
    s = command(us, "disable", cmd_user_disable, "disable an account and end its sessions (--enable to undo)")
    s.add_argument("username")
    s.add_argument("--enable", action="store_true")
    s = command(us, "passwd", cmd_user_passwd, "set a new password (ends the user's sessions)")
    s.add_argument("username")
    _password_options(s)

    unit = sub.add_parser("unit", help="the unit tree: import, list")
    unit.set_defaults(func=lambda rt, a: (unit.print_help(), 2)[1])
    un = unit.add_subparsers(dest="unit_cmd", metavar="ACTION")
    s = command(un, "import", cmd_unit_import, "replace the unit tree from a CSV: code,name,parent")
    s.add_argument("file")
    command(un, "list", cmd_unit_list, "show the unit tree")

    token = sub.add_parser("token", help="API tokens for scanner stations and the one-stop system")
    token.set_defaults(func=lambda rt, a: (token.print_help(), 2)[1])
    tk = token.add_subparsers(dest="token_cmd", metavar="ACTION")
    s = command(tk, "create", cmd_token_create, "create a token bound to roles and units (secret shown once)")
    s.add_argument("name")
    _who(s)
    s.add_argument("--quiet", action="store_true", help="print only the secret (for scripts)")
    command(tk, "list", cmd_token_list, "list the tokens (never their secrets)")
    s = command(tk, "revoke", cmd_token_revoke, "revoke a token at once")
    s.add_argument("id")
