"""The viewer in a real headless Chromium (Debian's package, driven by Playwright; nothing is downloaded).

On a seeded SQLite store and on PostgreSQL: the list loads and filters, an event opens, a score added through the
form is there after a reload, hostile markup stored in content, labels and the model name is shown as text and
never runs, the live mode shows an event written after the page loaded, and every page works without JavaScript.
With ``LEANLLM_UI_SCREENSHOTS=docs`` the README's screenshots are written there.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leanllm_otel.ui import UIServer
from loopback.events import make_llm_span
from loopback.viewer_data import SEARCH_WORD, XSS, seed, write_spans

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium stalls on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} missing: apt-get install -y chromium (.ci/run installs it)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright gives every launch a fresh temporary --user-data-dir.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> tuple[str, dict[str, str]]:
    url = str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url"))
    return url, seed(url, count=70)


@pytest.fixture
def viewer(store: tuple[str, dict[str, str]]) -> Iterator[UIServer]:
    with UIServer(store[0], port=0, emitter=None) as server:
        yield server


def _page(browser: Any, **options: Any) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": 1360, "height": 860}, **options)
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.set_default_timeout(15_000)
    return context, page, dialogs


def _screenshot(page: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=False)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    target = os.environ.get("LEANLLM_UI_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)


def test_list_filter_open_and_score(browser: Any, viewer: UIServer, store: tuple[str, dict[str, str]],
                                    tmp_path: Path) -> None:
    ids = store[1]
    context, page, dialogs = _page(browser)
    try:
        page.goto(viewer.url + "/")
        assert page.locator("#total").inner_text() == "75"
        assert page.locator("#events-body tr").count() == 50
        _screenshot(page, tmp_path, "ui-events.png")

        page.select_option("select[name=model]", "claude-3-haiku")
        page.click("button[type=submit]")
        page.wait_for_url("**/?*model=claude-3-haiku*")
        models = page.locator("#events-body td.model").all_inner_texts()
        assert len(models) == 24 and set(models) == {"claude-3-haiku"}

        page.fill("input[name=q]", SEARCH_WORD)
        page.select_option("select[name=model]", "")
        page.click("button[type=submit]")
        page.wait_for_url(f"**q={SEARCH_WORD}*")
        assert page.locator("#events-body tr").count() == 1
        page.click(f'tr[data-id="{ids["searchable"]}"] td.time a')
        page.wait_for_url(f"**/events/{ids['searchable']}")
        assert f"tell me about the {SEARCH_WORD} please" in page.locator(".conversation").inner_text()
        _screenshot(page, tmp_path, "ui-event.png")

        page.fill("textarea[name=comment]", "spot on")
        page.click("button.thumb.up")
        page.wait_for_url(f"**/events/{ids['searchable']}#scores")
        page.reload()
        scores = page.locator("#scores").inner_text()
        assert "user_feedback: true" in scores and "spot on" in scores
        page.goto(viewer.url + "/?score=user_feedback%3Dtrue")
        assert page.locator("#events-body tr").count() == 1
        assert dialogs == []
    finally:
        context.close()


def test_stored_markup_is_shown_as_text_and_never_runs(browser: Any, viewer: UIServer,
                                                       store: tuple[str, dict[str, str]]) -> None:
    hostile = store[1]["hostile"]
    context, page, dialogs = _page(browser)
    try:
        for path in ("/", f"/events/{hostile}", "/stats", "/?label=note%3D" + XSS):
            page.goto(viewer.url + path)
            page.wait_for_load_state("load")
            assert page.evaluate("window.__pwned === undefined"), path
        page.goto(viewer.url + f"/events/{hostile}")
        assert "<script>window.__pwned = 1" in page.locator(".conversation").inner_text()
        assert "<script>window.__pwned" in page.locator("h1 .model").inner_text()
        assert f"note={XSS}" in page.locator(".head").inner_text()
        assert page.locator("img[src=x]").count() == 0
        page.goto(viewer.url + "/")
        assert f"note={XSS}" in page.locator(f'tr[data-id="{hostile}"] td.labels').inner_text()
        assert dialogs == []
    finally:
        context.close()


def test_live_mode_shows_an_event_written_after_the_page_loaded(browser: Any, viewer: UIServer,
                                                                 store: tuple[str, dict[str, str]]) -> None:
    context, page, _ = _page(browser)
    try:
        page.goto(viewer.url + "/?live=1")
        assert page.locator("a.live.on").count() == 1
        assert page.locator('tr[data-id="arrived-live"]').count() == 0
        write_spans(store[0], [make_llm_span(event_id="arrived-live", model="live-model")])
        row = page.wait_for_selector('tr[data-id="arrived-live"]', timeout=20_000)
        assert row is not None and "live-model" in row.inner_text()
        assert page.locator("#events-body tr").first.get_attribute("data-id") == "arrived-live"
        assert page.locator("#total").inner_text() == "76"
    finally:
        context.close()


def test_every_page_works_without_javascript(browser: Any, viewer: UIServer,
                                             store: tuple[str, dict[str, str]]) -> None:
    ids = store[1]
    context, page, _ = _page(browser, java_script_enabled=False)
    try:
        page.goto(viewer.url + "/")
        page.select_option("select[name=status]", "error")
        page.click("button[type=submit]")
        assert page.locator("#events-body tr").count() == 1
        page.goto(viewer.url + "/")
        page.click('a[rel="next"]')
        assert page.locator("#events-body tr").count() == 25
        page.goto(viewer.url + f"/events/{ids['error']}")
        page.click("button.thumb.down")
        assert "user_feedback: false" in page.locator("#scores").inner_text()
        page.goto(viewer.url + "/stats")
        assert page.locator("svg.chart").count() >= 5
    finally:
        context.close()
