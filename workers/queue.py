"""Dramatiq broker chosen by URL: ``memory://`` (in-process workers), ``redis://``, ``amqp://``.

Retries are sohoa's, not Dramatiq's (the actor has ``max_retries=0`` and never raises): the job itself
(:func:`workers.process.run_job`) decides, by the kind of error, whether and when to send the document again
(see :mod:`sohoa.errors`). :meth:`JobQueue.pending` tells the reconciler which documents have a message
waiting, delayed or in flight (Redis: the broker's message hashes; in-process: a count kept here; AMQP:
unknown).

Fairness: a worker process holds at most as many messages as it has threads (Dramatiq's default is twice
that), so an idle process takes the next document; the pages of the documents one process runs at once share
its page pool (:mod:`workers.pagepool`), each holding at most 2 × page workers pages in it, so a small document
is not held back behind a huge one processed by another thread.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

import dramatiq
from dramatiq.brokers.stub import StubBroker

from sohoa.errors import ConfigError, TransientError

if TYPE_CHECKING:
    from sohoa.context import Context

log = logging.getLogger("sohoa.queue")

QUEUE_NAME = "sohoa"
ACTOR_NAME = "process_document"
REDIS_NAMESPACE = "dramatiq"


class QueueError(ConfigError):
    """The broker URL or setup is wrong."""


class QueueUnavailable(TransientError):
    """The broker cannot be reached: retry later."""

    backend = "broker"


def make_broker(url: str, heartbeat_ms: int = 60_000, maintenance_chance: int = 1000) -> dramatiq.Broker:
    if url.startswith("memory:"):
        broker: dramatiq.Broker = StubBroker()
        broker.emit_after("process_boot")
        return broker
    if url.startswith(("redis:", "rediss:")):
        import redis
        from dramatiq.brokers.redis import RedisBroker

        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10, health_check_interval=15)
        return RedisBroker(client=client, heartbeat_timeout=heartbeat_ms, maintenance_chance=maintenance_chance)
    if url.startswith(("amqp:", "amqps:")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url)
    raise QueueError(f"unsupported broker URL {url!r} (use memory://, redis:// or amqp://)")


class JobQueue:
    """Enqueue document jobs; optionally run workers in this process."""

    def __init__(self, ctx: Context) -> None:
        from workers.process import run_job

        s = ctx.settings
        self.url = s.broker_url
        self.in_process = s.embedded_broker
        self.tessdata_dir = s.tessdata_dir
        self.ctx = ctx
        self._presence: Any = None  # LeaseKeeper of "broker:{id}": says which process owns this broker id
        self.broker = make_broker(s.broker_url, s.redis_heartbeat_ms, s.redis_maintenance_chance)
        self._outstanding: Counter[str] = Counter()  # in-process broker: messages not yet finished, per document
        self._lock = threading.Lock()

        def run(doc_id: str, **job: Any) -> None:
            try:
                run_job(ctx, doc_id, **job)
            finally:
                if self.in_process:
                    with self._lock:
                        self._outstanding[doc_id] -= 1
                        if self._outstanding[doc_id] <= 0:
                            del self._outstanding[doc_id]

        self.actor: dramatiq.Actor = dramatiq.Actor(
            run,
            broker=self.broker,
            actor_name=ACTOR_NAME,
            queue_name=QUEUE_NAME,
            priority=0,
            options={"max_retries": 0, "time_limit": s.job_time_limit_s * 1000},
        )
        self.worker: dramatiq.Worker | None = None

    def enqueue(self, doc_id: str, delay_ms: int | None = None, **job: Any) -> None:
        """Send the job for *doc_id* (after *delay_ms*); *job*: the retry state carried by the message."""
        if self.in_process:
            with self._lock:
                self._outstanding[doc_id] += 1
        try:
            self.actor.send_with_options(args=(doc_id,), kwargs=job or None, delay=delay_ms)
        except Exception as e:
            if self.in_process:
                with self._lock:
                    self._outstanding[doc_id] -= 1
            raise QueueUnavailable(f"cannot queue document {doc_id} on {self._masked()}: {e}") from e

    def _masked(self) -> str:
        from sohoa.settings import mask_url

        return mask_url(self.url)

    def check(self) -> None:
        """Raise :class:`QueueUnavailable` if the broker cannot be reached (quick)."""
        if self.in_process:
            return
        client = getattr(self.broker, "client", None)
        try:
            if client is not None:
                client.ping()
            else:
                self.broker.get_declared_queues()
        except Exception as e:
            raise QueueUnavailable(f"broker {self._masked()} unreachable: {e}") from e

    def pending(self, doc_ids: list[str] | None = None) -> set[str] | None:
        """Documents with a message waiting, delayed or being processed; None when the broker cannot tell.
        Raises :class:`QueueUnavailable` when it cannot be reached."""
        if self.in_process:
            with self._lock:
                found = {d for d, n in self._outstanding.items() if n > 0}
        else:
            client = getattr(self.broker, "client", None)
            if client is None:
                return None
            found = set()
            try:
                orphans = self._held_by_dead_workers(client)
                for name in (QUEUE_NAME, f"{QUEUE_NAME}.DQ"):
                    for mid, data in client.hscan_iter(f"{REDIS_NAMESPACE}:{name}.msgs", count=1000):
                        if mid in orphans:
                            continue  # fetched by a worker that died: redelivered only by maintenance, maybe never
                        try:
                            args = json.loads(data).get("args") or []
                        except (ValueError, AttributeError):
                            continue
                        if args:
                            found.add(str(args[0]))
            except Exception as e:
                raise QueueUnavailable(f"broker {self._masked()} unreachable: {e}") from e
        return found if doc_ids is None else found & set(doc_ids)

    def _held_by_dead_workers(self, client: Any) -> set[bytes]:
        """Redis message ids fetched by Dramatiq workers that are gone: their heartbeat stopped, or the process
        that announced the worker id (lease ``broker:{id}``) is dead or stopped renewing it."""
        import time

        from sohoa.leases import holder_dead

        timeout_ms = int(getattr(self.broker, "heartbeat_timeout", 60_000))
        now_ms = int(time.time() * 1000)
        prefix = f"{REDIS_NAMESPACE}:__acks__."
        out: set[bytes] = set()
        for raw in client.scan_iter(match=prefix + "*", count=1000):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            wid = key[len(prefix) :].split(".", 1)[0]
            seen = client.zscore(f"{REDIS_NAMESPACE}:__heartbeats__", wid)
            dead = seen is None or now_ms - int(seen) > timeout_ms
            if not dead:
                try:
                    owner = self.ctx.leases.get(f"broker:{wid}")
                except TransientError:
                    owner = None
                dead = owner is not None and (not owner.alive() or holder_dead(owner))
            if dead:
                out |= set(client.smembers(key))
        return out

    def start_worker(self, threads: int) -> dramatiq.Worker:
        if self.worker is None:
            from sohoa.tempfiles import remove_stale
            from workers.process import check_ocr_installed

            check_ocr_installed(self.tessdata_dir)  # a missing tesseract is a configuration error, reported now
            remove_stale()  # job folders left by a worker that was killed (kill -9, OOM) before cleaning up
            if not self.in_process:
                self._warm_up()
            self.worker = dramatiq.Worker(self.broker, worker_threads=max(1, threads), worker_timeout=200)
            if not os.environ.get("dramatiq_queue_prefetch"):  # noqa: SIM112 - Dramatiq's own name
                # Dramatiq fetches 2 × threads messages ahead: one process took every document of a small batch
                # while another idled. Hold no more than can run now; idle processes take the rest.
                self.worker.queue_prefetch = max(1, threads)
            self.worker.start()
            self._announce()
            log.info("started %d worker thread(s) on %s", threads, self._masked())
        return self.worker

    def _warm_up(self) -> None:
        """A worker process (Redis, AMQP) gets its OCR ready before it takes a message: the page processes
        started, or the OCR warmed up in this process when pages run inline (``SOHOA_PAGE_WORKERS=1``). Two
        fresh workers otherwise spent 2–5 s each on their first page (imports, lexicon, Tesseract's model)."""
        from workers import pagepool
        from workers.process import _ocr_settings

        n = pagepool.page_workers(self.ctx.settings.page_workers)
        secs = pagepool.warm_up(_ocr_settings(self.ctx)) if n == 1 else pagepool.start_pool(n)
        log.info("OCR warmed up in %.1f s (%d page process(es))", secs, 0 if n == 1 else n)

    def _announce(self) -> None:
        """Tell the reconciler which process owns this Redis worker id, so that the messages it fetched are known
        orphaned as soon as the process dies (not only when Dramatiq's heartbeat times out)."""
        broker_id = getattr(self.broker, "broker_id", None)
        if broker_id is None:
            return
        from sohoa.leases import LeaseKeeper, process_owner

        ttl = self.ctx.settings.lease_ttl_s
        try:
            lease = self.ctx.leases.acquire(f"broker:{broker_id}", process_owner(), ttl)
        except TransientError as e:
            log.warning("cannot announce the worker id %s (%s)", broker_id, e)
            return
        if lease is not None:
            self._presence = LeaseKeeper(self.ctx.leases, lease, ttl)

    def join(self, timeout_s: float = 600) -> None:
        """Wait until the queue is empty and every job finished (in-process broker, tests, CLI)."""
        if isinstance(self.broker, StubBroker):
            self.broker.join(QUEUE_NAME, timeout=int(timeout_s * 1000), fail_fast=False)
            if self.worker is not None:
                self.worker.join()
        else:
            self.broker.join(QUEUE_NAME, timeout=int(timeout_s * 1000))

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop(timeout=10_000)
            self.worker = None
        if self._presence is not None:
            self._presence.release()
            self._presence = None
        self.broker.close()
