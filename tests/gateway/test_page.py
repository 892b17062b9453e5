"""The results page in a real browser: Debian's chromium driven by Playwright, on a real stack.

The browser reaches the stack's gateway under an origin the object store's CORS rules allow
(``s3_allowed_origins``; a deployment serves the page from its public URL the same way): a
host-resolver rule maps that origin's host and port to the stack's gateway.  So uploads go
from the page straight to the object store, as they would for a user.

Screenshots of every page go to ``$PAGE_SCREENSHOTS`` (or a pytest temporary directory), with
``timings.json`` (upload and scan times).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from gateway.page import page_config
from ops.settings import Settings
from ops.stack import Stack
from tests.gateway.conftest import EICAR, make_pdf
from tests.plugins.pipeline import Pipeline

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Three engines that flag EICAR, a quick one and one slow enough to reload in the middle of.
SCANNERS = [
    "clamav",
    "yara",
    "hash-reputation",
    "sim-fast:simulated?latency_ms=100&vendor=Simulated Fast",
    "sim-slow:simulated?latency_ms=8000&vendor=Simulated Slow",
]
ENGINES = len(SCANNERS)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def page_stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    # Multipart from 6 MiB in 5 MiB parts: a 200 MiB file goes up in 40 parts.
    base = settings.with_overrides(multipart_threshold=6 << 20, multipart_part_size=5 << 20)
    logs = tmp_path_factory.mktemp("page-stack-logs")
    stack = Stack.create(base, logs, prefix=f"page{uuid.uuid4().hex[:8]}.")
    pipe = Pipeline(stack.settings, stack.env, stack.logs)
    try:
        pipe.start_all(SCANNERS)
        yield pipe
    finally:
        pipe.close()


@pytest.fixture(scope="module")
def origin(page_stack: Pipeline) -> str:
    """The first origin the object store allows uploads from (CORS)."""
    return page_stack.settings.s3.allowed_origins.split(",")[0].strip().rstrip("/")


@pytest.fixture(scope="module")
def browser(page_stack: Pipeline, origin: str) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run ops/setup.sh", pytrace=False)
    where = urlsplit(origin)
    gateway = f"{page_stack.settings.bind.host}:{page_stack.settings.bind.gateway_port}"
    rule = f"--host-resolver-rules=MAP {where.hostname}:{where.port} {gateway}"
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, rule])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    wanted = os.environ.get("PAGE_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("page-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
    (folder / "timings.json").write_text(json.dumps(TIMINGS, indent=2) + "\n")
    print(f"\nscreenshots and timings in {folder}: {TIMINGS}")


@dataclass
class Tab:
    """A page and what went wrong in it: console errors and HTTP errors (a missing favicon too)."""

    page: Page
    origin: str
    errors: list[str] = field(default_factory=list)

    def open(self, path: str) -> None:
        self.page.goto(self.origin + path)

    def card(self, name: str) -> Any:
        title = self.page.locator(".doc-name .name", has_text=name)
        return self.page.locator("article.doc", has=title)

    def clean(self, allowed: tuple[str, ...] = ()) -> None:
        unexpected = [e for e in self.errors if not any(a in e for a in allowed)]
        assert not unexpected, unexpected


@pytest.fixture
def tab(browser: Browser, origin: str) -> Iterator[Tab]:
    context = browser.new_context(viewport=DESKTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
    page = context.new_page()
    opened = Tab(page, origin)
    page.on("console", lambda m: m.type == "error" and opened.errors.append(f"console: {m.text}"))
    page.on("pageerror", lambda exc: opened.errors.append(f"page: {exc}"))
    page.on(
        "response",
        lambda r: (
            r.status >= 400 and opened.errors.append(f"{r.status} {r.request.method} {r.url}")
        ),
    )
    yield opened
    context.close()


def test_the_dev_key_is_handed_to_the_page_only_in_dev_mode() -> None:
    dev = page_config(Settings(dev_mode=True, dev_api_key="idx-dev-key"))
    assert dev["dev_api_key"] == "idx-dev-key" and dev["max_file_size"] == 1 << 30
    production = page_config(Settings(dev_mode=False, dev_api_key="idx-dev-key"))
    assert production["dev_api_key"] is None and not production["dev_mode"]


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _upload(tab: Tab, *paths: Path) -> None:
    tab.page.set_input_files("#file", [str(p) for p in paths])
    tab.page.get_by_role("button", name="Upload", exact=True).click()


def _ratio(flagged: int) -> str:
    return f"{flagged} / {ENGINES} engines flagged this file"


def test_a_pdf_and_eicar_show_their_verdicts_and_ratio(
    tab: Tab, tmp_path: Path, shots: Path
) -> None:
    tab.open("/")
    expect(tab.page.locator(".key-shown")).to_contain_text("(dev key)")  # dev mode pre-fills
    pdf = _write(tmp_path, f"report-{uuid.uuid4().hex[:6]}.pdf", make_pdf() + uuid.uuid4().bytes)
    eicar = _write(tmp_path, f"eicar-{uuid.uuid4().hex[:6]}.com", EICAR)
    started = time.monotonic()
    _upload(tab, pdf, eicar)

    bad, good = tab.card(eicar.name), tab.card(pdf.name)
    expect(bad.locator(".ratio")).to_have_text(_ratio(3), timeout=60_000)
    expect(good.locator(".ratio")).to_have_text(_ratio(0), timeout=60_000)
    TIMINGS["pdf_and_eicar_upload_to_done_s"] = round(time.monotonic() - started, 2)
    expect(bad.locator(".verdict-header .badge")).to_have_text("✖Malicious")
    expect(good.locator(".verdict-header .badge")).to_have_text("✔Clean")
    # Flagged engines first, each verdict with its word as well as its colour.
    verdicts = bad.locator(".engines tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.verdict)"
    )
    assert verdicts == ["malicious"] * 3 + ["clean"] * 2
    expect(bad.locator('tr[data-scanner="clamav"] .badge')).to_have_text("✖Malicious")
    # The metadata, and the SHA-256 copied as it is.
    digest = hashlib.sha256(EICAR).hexdigest()
    expect(bad.locator(".meta code.sha")).to_have_text(digest)
    expect(good.locator(".meta")).to_contain_text("pdf pages")
    bad.get_by_role("button", name="Copy SHA-256").click()
    assert tab.page.evaluate("navigator.clipboard.readText()") == digest
    # The history has both, newest first, with their ratios.
    history = tab.page.locator(".history-item")
    expect(history.filter(has_text=eicar.name).locator(".ratio")).to_have_text(f"3 / {ENGINES}")
    expect(history.filter(has_text=pdf.name).locator(".ratio")).to_have_text(f"0 / {ENGINES}")
    tab.page.screenshot(path=shots / "home-desktop.png", full_page=True)

    bad.get_by_role("link", name="Open page").click()
    expect(tab.page).to_have_url(re.compile(r"/d/[0-9a-f-]{36}$"))
    expect(tab.page.locator(".ratio")).to_have_text(_ratio(3))
    tab.page.screenshot(path=shots / "document-desktop.png", full_page=True)
    tab.page.set_viewport_size(PHONE)
    expect(tab.page.locator(".engines tbody tr")).to_have_count(ENGINES)
    assert tab.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    tab.page.screenshot(path=shots / "document-phone.png", full_page=True)
    tab.clean()


def test_a_deep_link_reloaded_mid_scan_keeps_streaming(
    tab: Tab, tmp_path: Path, shots: Path
) -> None:
    tab.open("/")
    doc = _write(tmp_path, f"slow-{uuid.uuid4().hex[:6]}.txt", uuid.uuid4().bytes * 100)
    _upload(tab, doc)
    card = tab.card(doc.name)
    expect(card.locator(".permalink")).to_be_visible(timeout=30_000)
    link = card.locator(".permalink").get_attribute("href")
    assert link and re.fullmatch(r"/d/[0-9a-f-]{36}", link)
    expect(card.locator(".verdict-header")).to_have_attribute("data-status", "in_progress")

    tab.open(link)
    tab.page.reload()  # mid-scan: the slow engine takes 8 s
    header = tab.page.locator(".verdict-header")
    expect(header).to_have_attribute("data-status", "in_progress")
    expect(header).to_contain_text("● live")
    expect(header).to_contain_text("engines answered")
    assert tab.page.locator('tr[data-scanner="sim-slow"]').count() == 0
    tab.page.screenshot(path=shots / "document-scanning.png", full_page=True)
    # No reload from here: the stream brings the slow verdict and the end.
    expect(tab.page.locator('tr[data-scanner="sim-slow"]')).to_have_count(1, timeout=30_000)
    expect(header).to_have_attribute("data-status", "done")
    expect(tab.page.locator(".ratio")).to_have_text(_ratio(0))
    assert tab.page.evaluate("sessionStorage.getItem('intellidox.apiKey')")
    tab.clean()


def test_the_history_pages_by_cursor_and_filters(
    tab: Tab, page_stack: Pipeline, shots: Path
) -> None:
    key = page_stack.add_tenant(f"history-{uuid.uuid4().hex[:6]}")
    api = tab.page.context.request
    sha = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    names = [f"batch-{i:02d}.txt" for i in range(12)]
    names[4] = "special-report.pdf"
    for name in names:
        body: dict[str, Any] = {"file_name": name, "file_size": 10}
        if name.startswith("special"):
            body["sha256"] = sha
        reply = api.post(
            f"{page_stack.url}/docs/request-upload",
            data=body,
            headers={"Authorization": f"Bearer {key}"},
        )
        assert reply.status == 201, reply.text()

    tab.open("/")
    tab.page.get_by_role("button", name="Change").click()
    tab.page.get_by_label("API key").fill(key)
    tab.page.get_by_role("button", name="Use key").click()
    tab.page.reload()  # typed once: the tab keeps it
    expect(tab.page.locator(".key-shown")).to_have_text(f"Key ····{key[-4:]}")

    items = tab.page.locator(".history-item .name")
    tab.page.get_by_label("Documents per page").select_option("10")
    expect(items).to_have_text(names[::-1][:10])
    tab.page.screenshot(path=shots / "history-page-1.png", full_page=True)
    tab.page.get_by_role("button", name="Older →").click()
    expect(items).to_have_text(names[::-1][10:])
    expect(tab.page.get_by_role("button", name="Older →")).to_be_disabled()
    tab.page.get_by_role("button", name="← Newer").click()
    expect(items).to_have_text(names[::-1][:10])

    search = tab.page.get_by_label("Filter by file name or SHA-256")
    search.fill("SPECIAL")
    search.press("Enter")
    expect(items).to_have_text(["special-report.pdf"])
    search.fill(sha.upper())
    search.press("Enter")
    expect(items).to_have_text(["special-report.pdf"])
    search.fill("batch-0")
    search.press("Enter")
    expect(items).to_have_count(9)  # batch-00..09 but batch-04

    # Another tenant's deep link shows nothing of it.
    theirs = api.post(
        f"{page_stack.url}/docs/request-upload",
        data={"file_name": "not-yours.txt", "file_size": 10},
        headers={"Authorization": f"Bearer {page_stack.settings.dev_api_key}"},
    ).json()["id"]
    tab.open(f"/d/{theirs}")
    expect(tab.page.locator(".doc .error")).to_have_text("No such document for this API key.")
    expect(tab.page.locator("body")).not_to_contain_text("not-yours.txt")
    tab.clean(allowed=(f"404 GET {tab.origin}/docs/{theirs}/meta", "status of 404"))


def _fail_part_twice(part: int, attempts: list[float], origin: str) -> Any:
    def handle(route: Route) -> None:
        attempts.append(time.monotonic())
        if len(attempts) <= 2:  # as the store would answer when overloaded
            route.fulfill(
                status=503, body="slow down", headers={"Access-Control-Allow-Origin": origin}
            )
        else:
            route.continue_()

    return re.compile(rf"[?&]partNumber={part}(&|$)"), handle


def test_a_failed_part_is_retried_with_backoff(tab: Tab, tmp_path: Path) -> None:
    tab.open("/")
    attempts: list[float] = []
    tab.page.route(*_fail_part_twice(2, attempts, tab.origin))
    data = os.urandom(12 << 20)  # 3 parts
    doc = _write(tmp_path, f"retry-{uuid.uuid4().hex[:6]}.bin", data)
    _upload(tab, doc)
    card = tab.card(doc.name)
    expect(card.locator(".upload-text")).to_contain_text("Uploaded 12 MiB", timeout=60_000)
    expect(card.locator(".upload-text")).to_contain_text("2 retries")
    assert len(attempts) == 3
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.25 and gaps[1] >= 0.5, gaps  # 500 ms then 1 s, each with jitter
    expect(card.locator(".meta code.sha")).to_have_text(
        hashlib.sha256(data).hexdigest(), timeout=30_000
    )
    tab.clean(allowed=("503 PUT", "status of 503"))


def test_a_200_mib_file_goes_up_in_parts(tab: Tab, tmp_path: Path, shots: Path) -> None:
    size = 200 << 20
    doc = tmp_path / f"big-{uuid.uuid4().hex[:6]}.bin"
    digest = hashlib.sha256()
    with doc.open("wb") as out:
        for _ in range(size >> 20):
            chunk = os.urandom(1 << 20)
            digest.update(chunk)
            out.write(chunk)
    tab.open("/")
    started = time.monotonic()
    _upload(tab, doc)
    card = tab.card(doc.name)
    parts = card.locator(".parts .part")
    expect(parts).to_have_count(40)
    expect(card.locator(".parts .part-done")).not_to_have_count(0, timeout=60_000)
    tab.page.screenshot(path=shots / "upload-multipart.png", full_page=True)
    expect(card.locator(".upload-text")).to_contain_text("Uploaded 200 MiB", timeout=240_000)
    TIMINGS["upload_200_mib_s"] = round(time.monotonic() - started, 2)
    expect(card.locator(".parts .part-done")).to_have_count(40)
    assert card.locator("progress.total").evaluate("bar => bar.value === bar.max")
    expect(card.locator(".verdict-header")).to_have_attribute(
        "data-status", "done", timeout=240_000
    )
    TIMINGS["upload_and_scan_200_mib_s"] = round(time.monotonic() - started, 2)
    expect(card.locator(".meta code.sha")).to_have_text(digest.hexdigest())
    tab.clean()


def test_a_file_over_1_gib_is_refused_before_any_upload(tab: Tab, tmp_path: Path) -> None:
    huge = tmp_path / "huge.iso"
    with huge.open("wb") as out:  # sparse: no gigabyte is written
        out.truncate((1 << 30) + 1)
    requests: list[str] = []
    tab.open("/")
    tab.page.on("request", lambda r: requests.append(f"{r.method} {r.url}"))
    _upload(tab, huge)
    expect(tab.page.locator(".notices .error")).to_have_text(
        "huge.iso is too large: 1,073,741,825 bytes, over the limit of 1 GiB"
        " (1,073,741,824 bytes). Nothing was uploaded."
    )
    assert not [r for r in requests if r.startswith(("POST", "PUT"))], requests
    expect(tab.page.locator("article.doc")).to_have_count(0)
    tab.clean()


def test_the_favicon_and_the_page_assets_are_served(tab: Tab) -> None:
    for path, kind in [
        ("/favicon.ico", "image/svg+xml"),
        ("/static/app.js", "text/javascript"),
        ("/static/style.css", "text/css"),
    ]:
        reply = tab.page.goto(tab.origin + path)
        assert reply is not None and reply.status == 200, path
        assert reply.headers["content-type"].startswith(kind), path
    for path in ("/d/not-an-id", "/static/..%2Fapp.py", "/static/nothing.js"):
        reply = tab.page.goto(tab.origin + path)
        assert reply is not None and reply.status == 404, path
