"""Test harness: real servers (SeaweedFS S3, Elasticsearch API, Redis) on free loopback ports.

A test that needs a server that cannot start FAILS; nothing is skipped. Set
``SOHOA_TEST_ES_URL=http://host:9200`` to run the Elasticsearch tests against a real cluster
instead of the noida-db emulator.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sohoa.settings import Settings  # noqa: E402

import servers  # noqa: E402


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.S3Server]:
    srv = servers.start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def es_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("SOHOA_TEST_ES_URL")
    if external:
        yield external
        return
    srv = servers.start_noida_es(tmp_path_factory.mktemp("noida"))
    yield srv.url
    srv.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.RedisServer]:
    srv = servers.start_redis(tmp_path_factory.mktemp("redis"))
    yield srv
    srv.stop()


def s3_url(srv: servers.S3Server, bucket: str | None = None) -> str:
    bucket = bucket or f"t{uuid.uuid4().hex[:12]}"
    return f"s3://{srv.access_key}:{srv.secret_key}@{srv.endpoint}/{bucket}?region={srv.region}"


@pytest.fixture(params=["sqlite", "es"])
def index(request: pytest.FixtureRequest, tmp_path: Path, unique: str) -> Iterator[object]:
    """The search index contract's two backends: SQLite FTS5 and Elasticsearch (a fresh prefix per test)."""
    from index import open_index

    if request.param == "sqlite":
        ix = open_index(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    else:
        ix = open_index(request.getfixturevalue("es_url"), es_prefix=f"test-{unique}")
    yield ix
    if request.param == "es":
        ix.drop()  # type: ignore[attr-defined]
    ix.close()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def embedded_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", broker_url="memory://", worker_threads=2)


# -- real browser (Playwright driving Debian's chromium) and a live server --------------------------------
CHROMIUM = os.environ.get("SOHOA_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("SOHOA_TEST_OUTPUT", Path(__file__).resolve().parent.parent / "test-output"))


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: scripts/setup.sh installs Debian's chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )  # fmt: skip
        yield b
        b.close()


class Shots:
    """Screenshots of each step of a browser test, kept in test-output/screenshots/<test>/NN-step.png."""

    def __init__(self, page: object, name: str) -> None:
        self.page, self.n = page, 0
        self.dir = SCREENSHOTS / "screenshots" / name
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob("*.png"):
            old.unlink()

    def __call__(self, step: str) -> Path:
        self.n += 1
        path = self.dir / f"{self.n:02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        return path


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> object:
    return lambda page: Shots(page, request.node.name.replace("/", "_").replace("[", "-").rstrip("]"))


class LiveServer:
    """The app served by uvicorn in a thread on a free loopback port."""

    def __init__(self, app: object) -> None:
        import threading

        import uvicorn

        self.port = servers.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None))  # type: ignore[arg-type]
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        import time

        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the live server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


VENDOR = Path(os.environ.get("SOHOA_VENDOR_DIR", Path.home() / ".local" / "share" / "sohoa" / "vendor"))
AXE = VENDOR / "axe-4.10.2.min.js"  # the version scripts/setup.sh pins


def assert_accessible(page: object, what: str = "") -> list[dict[str, object]]:
    """Run axe-core (installed by scripts/setup.sh from npm) on the page; fail on serious or critical
    violations. Returns every violation (for the test's log)."""
    assert AXE.exists(), f"{AXE} missing: scripts/setup.sh installs axe-core"
    page.evaluate(AXE.read_text(encoding="utf-8"))  # type: ignore[attr-defined]
    found: list[dict[str, object]] = page.evaluate(  # type: ignore[attr-defined]
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))"""
    )
    bad = [v for v in found if v["impact"] in ("serious", "critical")]
    assert not bad, f"accessibility violations on {what or page.url}: {bad}"  # type: ignore[attr-defined]
    return found


def sign_in(page: object, base_url: str, user: str, password: str) -> None:
    """Sign in through the login page (as a person would)."""
    page.goto(f"{base_url}/login")  # type: ignore[attr-defined]
    page.fill("#username", user)  # type: ignore[attr-defined]
    page.fill("#password", password)  # type: ignore[attr-defined]
    with page.expect_navigation():  # type: ignore[attr-defined]
        page.click("button[type=submit]")  # type: ignore[attr-defined]


# -- one seeded site for the browser journeys (tests/test_ui_*.py) ----------------------------------------
UI_PASSWORD = "Mat-khau-2026-an-toan"


@dataclass
class Site:
    url: str
    settings: Settings
    files: Path


def seed_site(
    root: Path,
    users: Iterable[tuple[str, str, str, str]],
    tokens: Iterable[tuple[str, str, str]] = (),
) -> tuple[Settings, dict[str, str]]:
    """Settings for an embedded site under *root* with the test unit tree (province T, communes A and B),
    *users* as (login, role, unit, full name) with :data:`UI_PASSWORD`, and *tokens* as (label, role, unit);
    returns the settings and the tokens' secrets by label."""
    from sohoa.auth import AuthStore, Unit
    from storage import open_store

    settings = Settings(data_dir=root / "data", worker_threads=2)
    store = open_store(settings.storage_url)
    try:
        auth = AuthStore(store)
        auth.import_units([Unit("T", "UBND tỉnh Thử"), Unit("A", "UBND xã A", "T"), Unit("B", "UBND xã B", "T")])
        for login, role, unit, name in users:
            auth.add_user(login, UI_PASSWORD, [role], [unit], name)
        secrets = {label: auth.create_token(label, [role], [unit]) for label, role, unit in tokens}
    finally:
        store.close()
    return settings, secrets
