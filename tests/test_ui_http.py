"""The viewer over HTTP (real uvicorn on loopback, real SQLite / PostgreSQL): paging, filters, 404, the token
rule, the host check, CSRF on the one write, the export, the live endpoint, and that it never writes otherwise."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from leanllm_otel.cli import main as cli
from leanllm_otel.store import StoreError
from leanllm_otel.ui import UIServer
from leanllm_otel.ui.queries import ViewerQueries
from loopback.events import make_llm_span
from loopback.viewer_data import SEARCH_WORD, seed, write_spans

ROW_ID = re.compile(r'<tr data-id="([^"]+)"')
TOKEN = "ui-test-token"


@pytest.fixture
def seeded(sqlite_url: str) -> tuple[str, dict[str, str]]:
    return sqlite_url, seed(sqlite_url, count=120)


@pytest.fixture
def viewer(seeded: tuple[str, dict[str, str]]) -> Iterator[UIServer]:
    with UIServer(seeded[0], port=0, emitter=None) as server:
        yield server


@pytest.fixture
def client(viewer: UIServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=viewer.url, timeout=10.0) as http:
        yield http


def _rows(html: str) -> list[str]:
    return ROW_ID.findall(html)


def _link(html: str, rel: str) -> str | None:
    match = re.search(rf'<a rel="{rel}" href="([^"]+)"', html)
    return unescape(match.group(1)) if match else None


def test_pages_walk_every_event_once_newest_first(client: httpx.Client) -> None:
    first = client.get("/")
    assert first.status_code == 200
    assert first.headers["content-security-policy"].startswith("default-src 'none'")
    assert "<strong id=\"total\">125</strong>" in first.text
    seen = _rows(first.text)
    assert len(seen) == 50 and seen[:2] == ["ev-child", "ev-parent"]
    assert _link(first.text, "prev") is None
    page, pages = first.text, [seen]
    while (older := _link(page, "next")) is not None:
        page = client.get(older).text
        pages.append(_rows(page))
    flat = [event_id for rows in pages for event_id in rows]
    assert [len(rows) for rows in pages] == [50, 50, 25]
    assert len(flat) == len(set(flat)) == 125
    assert flat[5:] == [f"ev-{i:05d}" for i in range(120)]
    newer = _link(page, "prev")
    assert newer is not None and _rows(client.get(newer).text) == pages[1]


def test_filters_narrow_the_list(client: httpx.Client, seeded: tuple[str, dict[str, str]]) -> None:
    ids = seeded[1]

    def rows(**params: str | list[str]) -> list[str]:
        response = client.get("/", params=params)
        assert response.status_code == 200, response.text
        return _rows(response.text)

    assert rows(status="error") == [ids["error"]]
    assert rows(q=SEARCH_WORD) == [ids["searchable"]]
    assert rows(correlation_id="corr-1") == [ids["child"], ids["parent"]]
    assert set(rows(model="claude-3-haiku", limit="200")) == {f"ev-{i:05d}" for i in range(0, 120, 3)}
    assert set(rows(label=["feature=search"], user_id="user-1", limit="200")) == {
        f"ev-{i:05d}" for i in range(1, 120, 4)
    }
    assert rows(session_id="session-5", min_latency_ms="212") == ["ev-00117"]
    assert rows(since="2000-01-01", until="2000-01-02") == []
    assert len(rows(limit="10")) == 10


@pytest.mark.parametrize("params", [{"limit": "0"}, {"since": "yesterday"}, {"min_cost": "-1"},
                                    {"score": "a<cheap"}, {"before": "garbage"}, {"label": "novalue"}])
def test_bad_filters_are_a_400_naming_the_field(client: httpx.Client, params: dict[str, str]) -> None:
    response = client.get("/", params=params)
    assert response.status_code == 400
    name = next(iter(params))
    assert f"{name}:" in unescape(response.text) or "score filter" in response.text or "cursor" in response.text


def test_unknown_event_is_404(client: httpx.Client) -> None:
    response = client.get("/events/does-not-exist")
    assert response.status_code == 404 and "No event with id" in response.text


def test_event_page_shows_the_call_and_escapes_stored_text(client: httpx.Client,
                                                           seeded: tuple[str, dict[str, str]]) -> None:
    ids = seeded[1]
    page = client.get(f"/events/{ids['searchable']}").text
    for expected in (f"tell me about the {SEARCH_WORD} please", "be brief", "tool call lookup", "[image · image/png",
                     "content: full", "leanllm-otel replay ev-search --database-url sqlite:///"):
        assert expected in unescape(page), expected
    hostile = client.get(f"/events/{ids['hostile']}").text
    assert "<script>window.__pwned" not in hostile and "<img src=x" not in hostile
    assert "&lt;script&gt;window.__pwned" in hostile  # shown as text: model name, label, content
    listing = client.get("/").text
    assert "<script>window.__pwned" not in listing and "&lt;script&gt;" in listing
    child = client.get(f"/events/{ids['child']}").text
    assert f'href="/events/{ids["parent"]}"' in child  # lineage: the parent
    parent = client.get(f"/events/{ids['parent']}").text
    assert f'href="/events/{ids["child"]}"' in parent and "<svg class=\"timeline\"" in parent


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert match is not None
    return match.group(1)


def test_score_form_needs_its_csrf_token_and_same_origin(client: httpx.Client,
                                                         seeded: tuple[str, dict[str, str]]) -> None:
    event_id = seeded[1]["searchable"]
    token = _csrf(client.get(f"/events/{event_id}").text)
    url = f"/events/{event_id}/scores"
    assert client.post(url, data={"value": "up"}).status_code == 403
    for foreign in ({"origin": "http://evil.example"}, {"origin": "null"}, {"sec-fetch-site": "cross-site"}):
        assert client.post(url, data={"value": "up", "csrf": token}, headers=foreign).status_code == 403
    assert client.post("/events/ev-search-other/scores", data={"value": "up", "csrf": token}).status_code == 403
    done = client.post(url, data={"value": "down", "csrf": token, "comment": "missed the point"})
    assert done.status_code == 303 and done.headers["location"] == f"/events/{event_id}#scores"
    page = client.get(f"/events/{event_id}").text
    assert "user_feedback: false" in page and "missed the point" in page
    assert _rows(client.get("/", params={"score": "user_feedback=false"}).text) == [event_id]
    export = client.get("/export.jsonl", params={"score": "user_feedback"}).text
    exported = [json.loads(line) for line in export.splitlines()]
    assert [(e["event_id"], [(s["name"], s["label"], s["comment"]) for s in e["scores"]]) for e in exported] == [
        (event_id, [("user_feedback", "false", "missed the point")])
    ]


def test_export_is_the_filtered_list_as_json_lines(client: httpx.Client) -> None:
    response = client.get("/export.jsonl", params={"model": "claude-3-haiku"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert len(lines) == 40 and {line["model"] for line in lines} == {"claude-3-haiku"}
    assert [line["event_id"] for line in lines] == [f"ev-{i:05d}" for i in range(0, 120, 3)]
    assert len(client.get("/export.jsonl").text.splitlines()) == 125


def test_export_walks_keyset_batches(seeded: tuple[str, dict[str, str]]) -> None:
    from leanllm_otel.event_filter import EventFilter

    async def collect() -> list[str]:
        queries = ViewerQueries(seeded[0])
        try:
            return [event.event_id async for event, _ in queries.export(EventFilter(), batch=7)]
        finally:
            await queries.close()

    found = asyncio.run(collect())
    assert len(found) == len(set(found)) == 125


def test_live_endpoint_returns_events_stored_after_the_watermark(client: httpx.Client, sqlite_url: str) -> None:
    page = client.get("/", params={"live": "1"}).text
    assert 'data-live="1"' in page and '<script src="/static/live.js"' in page
    assert '<noscript><meta http-equiv="refresh"' in page  # the fallback without JavaScript
    watermark = unescape(re.search(r'data-watermark="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    write_spans(sqlite_url, [make_llm_span(event_id="arrived-later", model="late-model")])
    answer = client.get("/live", params={"recorded_after": watermark}).json()
    assert "arrived-later" in answer["ids"] and "late-model" in answer["rows"]
    assert answer["watermark"] >= watermark
    filtered = client.get("/live", params={"recorded_after": watermark, "model": "other"}).json()
    assert filtered["ids"] == []
    assert client.get("/static/live.js").status_code == 200


def test_stats_page_draws_svg_charts(client: httpx.Client) -> None:
    page = client.get("/stats", params={"label": "feature=chat"}).text
    assert page.count('<svg class="chart') >= 5 and "Requests and errors" in page
    assert "claude-3-haiku" in page and "<script" not in page.replace('<script src="/static/live.js"', "")


KPI_REQUESTS = re.compile(r'<span class="k">Requests</span><span class="v">([\d,]+)</span>')


def _overview(client: httpx.Client, **params: str) -> tuple[int, str]:
    """The overview's request count (or the status when the page has none) and its text."""
    response = client.get("/stats", params=params)
    match = KPI_REQUESTS.search(response.text)
    return (int(match.group(1).replace(",", "")) if match else response.status_code), unescape(response.text)


def test_overview_window_is_bounded_by_default(sqlite_url: str) -> None:
    now = datetime.now(timezone.utc)
    seed(sqlite_url, count=5, now=now)  # 10 events in the last minute
    write_spans(sqlite_url, [make_llm_span(event_id="old", model="old-model", start=now - timedelta(days=3))])
    with UIServer(sqlite_url, port=0, emitter=None) as server, httpx.Client(base_url=server.url) as client:
        calls, page = _overview(client)
        assert calls == 10 and "old-model<title>" not in page  # not among the bars by model
        assert '<strong id="window">last 24 h</strong>' in page and 'aria-current="true">last 24 h</a>' in page
        listed = re.search(r'<a href="(/\?[^"]*)">List these events</a>', page)
        assert listed is not None and "since=" in listed.group(1)  # the list shows the same events
        assert "old" not in _rows(client.get(listed.group(1)).text) and _rows(client.get(listed.group(1)).text)
        calls, page = _overview(client, window="all")
        assert calls == 11 and "old-model<title>" in page and '<strong id="window">all time</strong>' in page
        assert _overview(client, window="7d")[0] == 11 and _overview(client, window="1h")[0] == 10
        calls, page = _overview(client, since="4d", window="1h")  # an explicit From wins over the window
        assert calls == 11 and "your From / Until" in page
        status, page = _overview(client, window="1y")
        assert status == 400 and "window: expected one of 1h, 24h, 7d, 30d, all" in page
        events_page = unescape(client.get("/").text)
        assert 'href="/stats?window=all">Overview of these' in events_page  # the list covers all time


def test_unknown_host_is_refused(client: httpx.Client) -> None:
    assert client.get("/", headers={"host": "rebound.example:4320"}).status_code == 421
    assert client.get("/", headers={"host": "localhost:4320"}).status_code == 200


def test_token_rule(seeded: tuple[str, dict[str, str]], capsys: pytest.CaptureFixture[str]) -> None:
    url = seeded[0]
    with pytest.raises(ValueError, match="LEANLLM_UI_TOKEN"):
        UIServer(url, host="0.0.0.0", port=0)
    assert cli(["ui", "--database-url", url, "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "without a token" in capsys.readouterr().err
    with UIServer(url, port=0, token=TOKEN, emitter=None) as server, httpx.Client(base_url=server.url) as http:
        assert http.get("/").status_code == 401
        assert http.get("/export.jsonl").status_code == 401
        assert http.get("/", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert http.get("/", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert http.get("/", headers={"host": "anything.example"}, params={}).status_code == 401  # token decides
        assert http.post("/login", data={"token": "wrong"}).status_code == 401
        login = http.post("/login", data={"token": TOKEN})
        assert login.status_code == 303
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
        assert http.get("/").status_code == 200  # the session cookie


async def _delete_everything_through_the_viewer(url: str) -> None:
    queries = ViewerQueries(url)

    async def write(engine: Any) -> None:
        async with engine.begin() as connection:
            await connection.execute(text("DELETE FROM leanllm_events"))

    try:
        await queries.store.run(write)
    finally:
        await queries.close()


def test_viewer_never_writes_and_needs_an_existing_store(tmp_path: Path, seeded: tuple[str, dict[str, str]]) -> None:
    missing = tmp_path / "typo.db"
    with pytest.raises(StoreError, match="no database file"):
        UIServer(f"sqlite:///{missing}", port=0, emitter=None).start()
    assert not missing.exists()
    with pytest.raises(StoreError, match=r"readonly|read-only"):
        asyncio.run(_delete_everything_through_the_viewer(seeded[0]))


def test_postgres_viewer_is_read_only_too(postgres_url: str) -> None:
    seed(postgres_url, count=3)
    with pytest.raises(StoreError, match="read-only"):
        asyncio.run(_delete_everything_through_the_viewer(postgres_url))
    with UIServer(postgres_url, port=0, emitter=None) as server, httpx.Client(base_url=server.url) as http:
        assert len(_rows(http.get("/").text)) == 8
        assert _rows(http.get("/", params={"q": SEARCH_WORD}).text) == ["ev-search"]
