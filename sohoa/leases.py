"""Leases: who is working on what, until when.

A document being processed holds the lease ``doc:{id}``: an owner (host, process, thread), an expiry, renewed
by a heartbeat while the work goes on. Only one owner can hold a lease at a time (the backends write it with
a compare-and-set: a SQLite transaction, Elasticsearch ``if_seq_no``/``op_type=create``), so a document is
never processed by two workers at once, whatever the queue delivers twice. The reconciler re-queues a
document only when its lease is gone or expired, never while it is alive; one reconciler is active at a
time because it too holds a lease (``reconciler``).

Expiry is wall-clock time: processes on several machines need synchronised clocks (NTP); the TTL
(``SOHOA_LEASE_TTL_S``) is far larger than any drift NTP allows.

Renewing works while the record still names the owner, even after it expired (nobody else took it); the
work stops as soon as the heartbeat learns another owner holds it, or when it could not renew before its
known expiry (an outage of the lease store: nobody can take it then either, but this process can no longer
prove it holds it).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from sohoa.errors import LeaseLost, TransientError

log = logging.getLogger("sohoa.leases")

_BOOT = uuid.uuid4().hex[:6]  # tells apart two processes that got the same pid


def process_owner() -> str:
    """``host:pid:boot`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}:{_BOOT}"


def thread_owner() -> str:
    return f"{process_owner()}:{threading.get_ident() % 100000}"


@dataclass
class Lease:
    name: str
    owner: str
    expires_at: float  # unix time
    acquired_at: float = 0.0
    renewed_at: float = 0.0

    def alive(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) < self.expires_at

    @property
    def pid(self) -> int | None:
        parts = self.owner.split(":")
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None

    @property
    def host(self) -> str:
        return self.owner.split(":", 1)[0]


def holder_dead(lease: Lease) -> bool:
    """The lease's owner is a process of this host that no longer exists (killed): its lease is worthless
    before it expires. Owners on other hosts are judged by the expiry alone."""
    from sohoa.tempfiles import pid_alive

    pid = lease.pid
    return lease.host == socket.gethostname() and pid is not None and not pid_alive(pid)


DeadFn = Callable[[Lease], bool]


class LeaseStore(ABC):
    """Leases by name, written with a compare-and-set. Outages raise :class:`sohoa.errors.TransientError`."""

    @abstractmethod
    def acquire(self, name: str, owner: str, ttl_s: float, dead: DeadFn | None = None) -> Lease | None:
        """The lease for *owner* if it is free, expired, already *owner*'s or held by an owner *dead* says is
        gone; None if another owner holds it."""

    @abstractmethod
    def renew(self, name: str, owner: str, ttl_s: float) -> Lease | None:
        """Extend *owner*'s lease (also after it expired, if nobody else took it); None if it was taken."""

    @abstractmethod
    def release(self, name: str, owner: str) -> None:
        """Give up *owner*'s lease (no-op if another owner holds it)."""

    @abstractmethod
    def get(self, name: str) -> Lease | None: ...

    def get_many(self, names: list[str]) -> dict[str, Lease]:
        out = {}
        for n in names:
            lease = self.get(n)
            if lease is not None:
                out[n] = lease
        return out

    def close(self) -> None:  # noqa: B027 - optional
        pass


class LeaseKeeper:
    """Holds one lease for a piece of work: renews it every ``ttl/3`` in a thread; :meth:`check` raises
    :class:`LeaseLost` once the work must stop."""

    def __init__(self, store: LeaseStore, lease: Lease, ttl_s: float) -> None:
        self.store, self.name, self.owner, self.ttl = store, lease.name, lease.owner, ttl_s
        self.expires_at = lease.expires_at
        self.lost_to: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        interval = max(0.2, self.ttl / 3)
        while not self._stop.wait(interval):
            try:
                lease = self.store.renew(self.name, self.owner, self.ttl)
            except TransientError as e:
                log.warning("cannot renew lease %s (%s); work goes on until %.0f", self.name, e, self.expires_at)
                continue
            except Exception:  # noqa: BLE001 - keep the heartbeat alive
                log.exception("renewing lease %s", self.name)
                continue
            if lease is None:
                holder = self.store.get(self.name)
                self.lost_to = holder.owner if holder else "(nobody)"
                log.error("lease %s lost to %s: stopping this run", self.name, self.lost_to)
                return
            self.expires_at = lease.expires_at

    def valid(self) -> bool:
        return self.lost_to is None and time.time() < self.expires_at

    def check(self) -> None:
        if self.lost_to is not None:
            raise LeaseLost(f"{self.name} is now held by {self.lost_to}")
        if time.time() >= self.expires_at:
            raise LeaseLost(f"{self.name} could not be renewed before it expired")

    def release(self) -> None:
        self._stop.set()
        self._thread.join(5)
        if self.lost_to is None:
            try:
                self.store.release(self.name, self.owner)
            except Exception as e:  # noqa: BLE001 - it expires by itself
                log.warning("cannot release lease %s (%s); it expires by itself", self.name, e)
