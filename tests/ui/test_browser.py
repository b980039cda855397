"""The chat page in a real browser: the server runs on a loopback port, headless Chromium opens
``/ui``, asks a demo question, and the answer and its citations must be visible.

A screenshot of the answered chat is saved as ``test-artifacts/ui-chat.png``. The page must
work offline: any request that leaves the loopback address fails the test.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import uvicorn

from policyqa.api.app import create_app
from policyqa.service import QAService
from policyqa.settings import Settings
from policyqa.ui.app import DEMO_QUESTIONS
from tests.helpers import HashingEncoder

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium; .ci/run installs it)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, QAService]]:
    """The whole app (API and chat page) over the demo corpus, served by uvicorn in a thread."""
    root = tmp_path_factory.mktemp("ui-server")
    settings = Settings(
        cache_dir=root / "cache", index_dir=root / "index", progress=False, build_demo_if_missing=True
    )
    service = QAService(settings, encoder=HashingEncoder())
    app = create_app(settings, service)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:  # /health is 503 while the demo index is built, 200 once it is loaded
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not become ready")
        time.sleep(0.2)
    yield base, service
    srv.should_exit = True
    thread.join(30)


def test_chat_page_answers_a_demo_question_with_citations(server: tuple[str, QAService]) -> None:
    from playwright.sync_api import Route, expect, sync_playwright

    base, service = server
    question = DEMO_QUESTIONS[0]
    expected = service.ask(question, top_k=5).answer
    assert not expected.no_answer and expected.citation is not None
    outside: list[str] = []

    def only_loopback(route: Route) -> None:
        if urlparse(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.route("**/*", only_loopback)
            page.goto(f"{base}/ui/", wait_until="load")
            chat = page.locator("#pq-chat")
            # an empty chat offers the demo questions
            for q in DEMO_QUESTIONS:
                expect(page.get_by_text(q, exact=True)).to_be_visible(timeout=30_000)
            page.get_by_text(question, exact=True).click()

            # the answer, its confidence and numbered citations appear
            expect(chat.locator(".pq-answer strong").first).to_have_text(expected.text, timeout=30_000)
            expect(chat.get_by_text("置信度").first).to_be_visible()
            summaries = chat.locator("details.pq-cite summary")
            expect(summaries.first).to_be_visible()
            assert summaries.count() == len(expected.citations)
            holder = chat.locator("details.pq-cite").nth(expected.citation - 1)
            expect(holder.locator("summary")).to_contain_text(f"[{expected.citation}]")
            expect(holder.locator("mark")).not_to_be_visible()

            # clicking the citation shows the passage, the answer highlighted, and the source
            holder.locator("summary").click()
            expect(holder.locator("mark")).to_have_text(expected.text)
            expect(holder.locator("mark")).to_be_visible()
            cited = expected.citations[expected.citation - 1]
            expect(holder).to_contain_text(f"标题：《{cited.title}》")
            expect(holder).to_contain_text(f"发文机关：{cited.issuer}")
            expect(holder).to_contain_text("文号：")
            expect(holder).to_contain_text("日期：")
            page.screenshot(path=str(ARTIFACTS / "ui-chat.png"), full_page=True)

            # a follow-up in the same chat is answered in the context of the first question
            box = page.locator("#pq-question textarea")
            box.fill("那市商务局呢？")
            box.press("Enter")
            expect(chat.locator(".pq-answer")).to_have_count(2, timeout=30_000)
            expect(chat.get_by_text(f"按上文理解为：{question} 那市商务局呢？")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "ui-chat-follow-up.png"), full_page=True)
        finally:
            browser.close()
    assert outside == [], f"the page tried to reach the internet: {outside}"


def test_api_docs_page_renders_offline(server: tuple[str, QAService]) -> None:
    """The OpenAPI docs page (Swagger UI) loads its scripts from the server, not a CDN."""
    from playwright.sync_api import Route, expect, sync_playwright

    base, _ = server
    outside: list[str] = []

    def only_loopback(route: Route) -> None:
        if urlparse(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        try:
            page = browser.new_page()
            page.route("**/*", only_loopback)
            page.goto(f"{base}/docs", wait_until="load")
            for path in ("/search", "/ask", "/documents/{doc_id}", "/health"):
                expect(page.locator(".opblock-summary-path", has_text=path).first).to_be_visible(
                    timeout=30_000
                )
        finally:
            browser.close()
    assert outside == [], f"the docs page tried to reach the internet: {outside}"
