"""The ``sohoa`` command line.

The CLI acts as the local operator: it talks to the configured backends directly (object store, index,
queue). Each subcommand is registered together with its handler (``set_defaults(func=…)``), so a
command cannot exist without the code that runs it.
"""

from __future__ import annotations

import argparse
import sys

from sohoa.cli import admin, audit, documents, manage, server, station
from sohoa.cli.common import CliError, Runtime, console
from sohoa.logs import setup_logging
from sohoa.settings import Settings, SettingsError

MODULES = (server, documents, manage, admin, audit, station)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sohoa", description="Số hóa hồ sơ TTHC: upload, OCR, search, count.")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    for module in MODULES:
        module.register(sub)
    return p


def subcommands() -> list[str]:
    """Every subcommand name (for the tests that run each one)."""
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return sorted(action.choices)
    return []


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as e:
        console.print(f"[red]cấu hình sai (bad setting): {e}", highlight=False)
        return 2
    setup_logging(settings.log_level, settings.log_json)
    rt = Runtime(settings)
    try:
        return int(args.func(rt, args))
    except CliError as e:
        console.print(f"[red]{e}", highlight=False)
        return e.code
    finally:
        rt.close()


if __name__ == "__main__":
    sys.exit(main())
