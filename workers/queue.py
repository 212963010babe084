"""Dramatiq broker chosen by URL: ``memory://`` (in-process workers), ``redis://``, ``amqp://``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import dramatiq
from dramatiq.brokers.stub import StubBroker

if TYPE_CHECKING:
    from sohoa.context import Context

log = logging.getLogger("sohoa.queue")

QUEUE_NAME = "sohoa"
ACTOR_NAME = "process_document"


class QueueError(RuntimeError):
    pass


def make_broker(url: str, heartbeat_ms: int = 60_000, maintenance_chance: int = 1000) -> dramatiq.Broker:
    if url.startswith("memory:"):
        broker: dramatiq.Broker = StubBroker()
        broker.emit_after("process_boot")
        return broker
    if url.startswith(("redis:", "rediss:")):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url, heartbeat_timeout=heartbeat_ms, maintenance_chance=maintenance_chance)
    if url.startswith(("amqp:", "amqps:")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url)
    raise QueueError(f"unsupported broker URL {url!r} (use memory://, redis:// or amqp://)")


class JobQueue:
    """Enqueue document jobs; optionally run workers in this process."""

    def __init__(self, ctx: Context) -> None:
        from workers.process import process_document

        s = ctx.settings
        self.url = s.broker_url
        self.in_process = s.embedded_broker
        self.broker = make_broker(s.broker_url, s.redis_heartbeat_ms, s.redis_maintenance_chance)

        def run(doc_id: str) -> None:
            process_document(ctx, doc_id)

        self.actor: dramatiq.Actor = dramatiq.Actor(
            run,
            broker=self.broker,
            actor_name=ACTOR_NAME,
            queue_name=QUEUE_NAME,
            priority=0,
            options={
                "max_retries": 3,
                "min_backoff": 2000,
                "max_backoff": 60000,
                "time_limit": s.job_time_limit_s * 1000,
            },
        )
        self.worker: dramatiq.Worker | None = None

    def enqueue(self, doc_id: str) -> None:
        try:
            self.actor.send(doc_id)
        except Exception as e:
            raise QueueError(f"cannot queue document {doc_id} on {self.url}: {e}") from e

    def start_worker(self, threads: int) -> dramatiq.Worker:
        if self.worker is None:
            from sohoa.tempfiles import remove_stale

            remove_stale()  # job folders left by a worker that was killed (kill -9, OOM) before cleaning up
            self.worker = dramatiq.Worker(self.broker, worker_threads=max(1, threads), worker_timeout=200)
            self.worker.start()
            log.info("started %d worker thread(s) on %s", threads, self.url)
        return self.worker

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
        self.broker.close()
