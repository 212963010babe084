"""What every subcommand shares: the console, the lazily opened backends, progress and tables."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sohoa.context import Context
from sohoa.models import Manifest, Status
from sohoa.settings import Settings

console = Console()

# argparse's exit code for a usage error; the CLI uses it for every bad argument value too.
USAGE_ERROR = 2


@contextmanager
def logs_on_console() -> Iterator[None]:
    """While a progress bar is live, log lines go through the bar's console (rich's RichHandler) so they
    print above the bar instead of breaking it; the usual handlers come back afterwards. JSON logs
    (``SOHOA_LOG_JSON=1``, for machines) are left as they are."""
    from rich.logging import RichHandler

    from sohoa.logs import KeyValueFormatter

    root = logging.getLogger()
    before = list(root.handlers)
    if any(isinstance(h.formatter, KeyValueFormatter) and h.formatter.as_json for h in before):
        yield
        return
    handler = RichHandler(console=console, show_path=False, markup=False, rich_tracebacks=False)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root.handlers[:] = [handler]
    try:
        yield
    finally:
        root.handlers[:] = before


class CliError(Exception):
    """A message for the person at the terminal; the command exits with ``code``."""

    def __init__(self, message: str, code: int = USAGE_ERROR) -> None:
        super().__init__(message)
        self.code = code


class Runtime:
    """Settings, and the backends opened only when a command needs them (``config`` and ``serve`` do not).
    What the local operator reads or changes is audited as ``cli:<os user>``, like any API caller."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._ctx: Context | None = None
        self._audit: object | None = None

    @property
    def cli_user(self) -> str:
        import getpass

        return f"cli:{getpass.getuser()}"

    def audit(self, action: str, target: str = "", dossier: str = "", **details: object) -> None:
        from sohoa.audit import AuditEvent, AuditLog

        if self._audit is None:
            self._audit = AuditLog(self.ctx.store)
        assert isinstance(self._audit, AuditLog)
        self._audit.record(AuditEvent(actor=self.cli_user, actor_kind="cli", action=action,
                                      target=target, dossier=dossier, details=dict(details)))  # fmt: skip

    @property
    def ctx(self) -> Context:
        if self._ctx is None:
            self._ctx = Context(self.settings)
        return self._ctx

    def close(self) -> None:
        if self._audit is not None:
            self._audit.close()  # type: ignore[attr-defined]
            self._audit = None
        if self._ctx is not None:
            self._ctx.close()
            self._ctx = None


Handler = Callable[[Runtime, argparse.Namespace], int]


def command(sub: argparse._SubParsersAction, name: str, handler: Handler, help: str) -> argparse.ArgumentParser:  # noqa: A002
    """Add subcommand *name* with its handler: a command cannot exist without the code that runs it."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help)
    p.set_defaults(func=handler)
    return p


def iso_date(value: str) -> str:
    """argparse type for ``YYYY-MM-DD`` (a real calendar date); the message is for the person typing it."""
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"ngày không hợp lệ {value!r}: cần dạng YYYY-MM-DD, ví dụ 2026-03-31 (invalid date)"
        ) from None


def wait_for(ctx: Context, ids: list[str], timeout_s: float = 24 * 3600) -> list[Manifest]:
    """Show a progress bar (pages) until every document is done or failed."""
    manifests = {i: ctx.load_manifest(i) for i in ids}
    total = sum(max(1, m.declared_pages) for m in manifests.values())
    deadline = time.monotonic() + timeout_s
    with Progress(
        TextColumn("[bold]OCR"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("pages"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("", total=total)
        while True:
            manifests = {i: ctx.load_manifest(i) for i in ids}
            done_pages = sum(
                max(1, m.declared_pages) if Status(m.status).terminal else len(m.pages) for m in manifests.values()
            )
            finished = sum(Status(m.status).terminal for m in manifests.values())
            bar.update(task, completed=done_pages, description=f"{finished}/{len(ids)} documents")
            if finished == len(ids) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    return list(manifests.values())


def docs_table(manifests: list[Manifest]) -> Table:
    t = Table(title="documents")
    for col in ("id", "dossier", "kind", "file", "status", "pages", "conf", "seconds"):
        t.add_column(col)
    for m in manifests:
        status = m.status + (f" ({m.error})" if m.error else "")
        if m.status == Status.PROCESSING.value:
            status += f" {len(m.pages)}/{m.declared_pages}"
        conf = f"{m.mean_confidence:.1f}" if m.mean_confidence is not None else ""
        if any(p.low_confidence for p in m.pages):
            conf += " ⚠"
        t.add_row(
            m.id,
            m.dossier_code,
            m.kind,
            m.filename,
            status,
            str(m.page_count),
            conf,
            f"{m.timings.get('total', 0):.1f}",
        )
    return t
