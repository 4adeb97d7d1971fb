"""Issue 19, items 2 and 6: what an exported error message (and any capped content attribute) may hold.

Item 2: a message was redacted over a window and cut to the cap afterwards; redaction shrinks text (a PEM block
becomes a 20-character marker), which pulled the raw cut point, and the secret on it, inside the cap. Item 6: with
a gateway that echoes the request, the ``api_base`` query secret survived percent-encoded, the ``api_base``
user-info as ``Authorization: Basic <base64>``, and the value of an ``extra_headers`` entry with a neutral name.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import quote, quote_plus

import litellm
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from leanllm_otel import semconv as sc
from leanllm_otel.instrumentation.credentials import credential_values
from leanllm_otel.processing.content import ContentRenderer
from leanllm_otel.processing.detectors import default_detector
from leanllm_otel.processing.record import CallRecord
from leanllm_otel.processing.redaction import render_error_message
from leanllm_otel.redaction_mode import RedactionMode
from leanllm_otel.sensitive import scrub
from leanllm_otel.settings import TelemetrySettings

from .echo_gateway import EchoGateway
from .shapes import NEEDLES, REDACTABLE, SAMPLES, leaked

DETECTOR = default_detector()
PASSWORD = "Wq8zR2vN5x"
CONNECTION = f"postgresql://app:{PASSWORD}@db.internal:5432/prod"


def _pem(body_chars: int) -> str:
    lines = [("MIIEpAIBAAKCAQEA" * (body_chars // 16 + 1))[i : i + 64] for i in range(0, body_chars, 64)]
    return "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END RSA PRIVATE KEY-----"


def _fragments(needle: str, size: int = 8) -> list[str]:
    return [needle[i : i + size] for i in range(max(1, len(needle) - size + 1))]


def _has_fragment(text: str, needle: str, size: int = 8) -> bool:
    return any(fragment in text for fragment in _fragments(needle, size))


# --- item 2: a cut never exports half a secret -------------------------------------------------------------


def test_the_issue_shape_a_shrinking_pem_block_pulls_a_cut_connection_string_inside_the_cap() -> None:
    cap = 300
    window = 2 * cap + 4096  # what the old code redacted before cutting
    pem = _pem(4300)
    # The connection string straddles the end of the old window: its user and password inside, "@host" outside.
    filler = "x " * ((window - len(pem) - 20) // 2)
    message = f"{pem} {filler}{CONNECTION} trailing text"
    assert message.index(CONNECTION) < window < message.index(CONNECTION) + len(CONNECTION)
    rendered = render_error_message(message, RedactionMode.REDACTED, capture=True, cap=cap, detector=DETECTOR,
                                    key=None)
    assert rendered is not None and len(rendered) <= cap
    assert "app:" not in rendered and not _has_fragment(rendered, PASSWORD, 4)
    assert rendered.startswith("[SECRET:PRIVATE_KEY]") and rendered.endswith("...[truncated]")


def test_a_message_under_the_bound_is_redacted_whole_then_cut() -> None:
    message = f"{_pem(600)} then {CONNECTION} and more " + "words " * 100
    rendered = render_error_message(message, RedactionMode.REDACTED, capture=True, cap=256, detector=DETECTOR,
                                    key=None)
    assert rendered is not None and len(rendered) <= 256
    assert "[SECRET:CONNECTION_STRING]" in rendered and PASSWORD not in rendered


def test_a_cut_never_splits_a_marker() -> None:
    message = "a" * 230 + " " + SAMPLES["AWS_KEY"] + " " + "b" * 500
    rendered = render_error_message(message, RedactionMode.REDACTED, capture=True, cap=256, detector=DETECTOR,
                                    key=None)
    assert rendered is not None and len(rendered) <= 256
    assert "[SECRET:AWS" not in rendered or "[SECRET:AWS_KEY]" in rendered


_FILLER = st.sampled_from(["lorem", "ipsum", "dolor", "sit", "amet", "x" * 40, "retry later", "\n", "#" * 30])


@st.composite
def error_pieces(draw: Any) -> tuple[list[str], list[str]]:
    pieces: list[str] = []
    planted: list[str] = []
    for _ in range(draw(st.integers(1, 14))):
        choice = draw(st.integers(0, 9))
        if choice < 2:
            pieces.append(_pem(draw(st.integers(64, 6000))))
        elif choice < 5:
            kind = draw(st.sampled_from(REDACTABLE))
            pieces.append(SAMPLES[kind])
            planted.append(NEEDLES[kind])
        else:
            pieces.append(" ".join(draw(st.lists(_FILLER, min_size=1, max_size=200))))
    return pieces, planted


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(drawn=error_pieces(), cap=st.integers(256, 3000), capture=st.booleans())
def test_no_cut_exports_a_fragment_of_a_secret(drawn: tuple[list[str], list[str]], cap: int, capture: bool) -> None:
    pieces, planted = drawn
    message = " ; ".join(pieces)
    whole, _ = DETECTOR.redact(message)
    assume(not any(needle in whole for needle in planted))  # the detectors catch each one in the whole text
    mode = RedactionMode.REDACTED if capture else RedactionMode.FULL  # full without capture is redacted too
    rendered = render_error_message(message, mode, capture=capture, cap=cap, detector=DETECTOR, key=None)
    assert rendered is not None and len(rendered) <= cap
    for needle in planted:
        assert not _has_fragment(rendered, needle), (needle, rendered[-120:])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(drawn=error_pieces(), cap=st.integers(256, 3000), slot=st.sampled_from(["text", "arguments", "result"]))
def test_no_capped_content_attribute_exports_a_fragment(drawn: tuple[list[str], list[str]], cap: int,
                                                        slot: str) -> None:
    pieces, planted = drawn
    text = " ; ".join(pieces)
    assume(not any(needle in DETECTOR.redact(text)[0] for needle in planted))
    messages: list[dict[str, Any]] = [{"role": "user", "content": text if slot == "text" else "go"}]
    if slot == "arguments":
        call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": json.dumps({"q": text})}}
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif slot == "result":
        messages.append({"role": "tool", "tool_call_id": "c", "content": json.dumps({"out": text})})
    renderer = ContentRenderer(TelemetrySettings(capture_content=True, max_content_chars=cap), hash_key=b"k")
    record = CallRecord(span_id=1, operation=sc.OP_CHAT, mode=RedactionMode.REDACTED, capture=True, scan=True,
                        messages=messages)
    attributes = renderer.render(record)
    for value in attributes.values():
        if isinstance(value, str) and value[:1] == "[":
            assert len(value) <= cap
    blob = " ".join(str(v) for v in attributes.values())
    for needle in planted:
        assert not _has_fragment(blob, needle), needle


# --- item 6: credentials in encoded forms ------------------------------------------------------------------

API_KEY = "sk-echo-KEY-0123456789"
GW_USER, GW_PASSWORD = "gwuser", "gw-pass-789"
SIG = "ab+cd/ef="  # a SAS-style signature: percent-encoded in the URL
TENANT = "tenant-ref-4242"


def _echo_call(gateway: EchoGateway) -> None:
    api_base = f"http://{GW_USER}:{GW_PASSWORD}@127.0.0.1:{gateway.port}/v1?sig={quote(SIG, safe='')}&v=1"
    with pytest.raises(litellm.BadRequestError) as info:
        litellm.completion(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                           api_key=API_KEY, api_base=api_base, extra_headers={"X-Tenant-Ref": TENANT},
                           max_retries=0)
    # the shape of the issue: the gateway really echoed every encoded form
    raw = str(info.value)
    basic = base64.b64encode(f"{GW_USER}:{GW_PASSWORD}".encode()).decode()
    assert quote(SIG, safe="") in raw and basic in raw and TENANT in raw


ENCODED = (quote(SIG, safe=""), quote_plus(SIG), SIG, GW_PASSWORD, TENANT, API_KEY,
           base64.b64encode(f"{GW_USER}:{GW_PASSWORD}".encode()).decode())


@pytest.mark.parametrize("mode", [RedactionMode.FULL, RedactionMode.REDACTED])
def test_echoed_credentials_never_reach_the_error_message(make_instrumented: Any, mode: RedactionMode) -> None:
    inst = make_instrumented(capture_content=True, explicit_redaction_mode=mode)
    with EchoGateway() as gateway:
        _echo_call(gateway)
    (span,) = inst.llm_spans()
    attributes = dict(span.attributes or {})
    message = attributes[sc.LEANLLM_ERROR_MESSAGE]
    assert "gateway refused" in message
    exported = [message, *(str(dict(e.attributes or {})) for e in span.events)]
    for value in ENCODED:
        assert not any(value in text for text in exported), (value, message)


alphabet = st.characters(codec="ascii", categories=("L", "N", "P", "S"))


@settings(max_examples=200, deadline=None)
@given(secret=st.text(alphabet, min_size=6, max_size=40), encoding=st.sampled_from(
    ["raw", "quote", "quote_plus", "lower_hex", "json", "base64", "base64_nopad", "urlsafe"]),
    where=st.sampled_from(["header", "api_key", "query", "password"]), before=st.text(alphabet, max_size=10))
def test_every_spelling_of_every_credential_is_scrubbed(secret: str, encoding: str, where: str, before: str) -> None:
    if where == "header":
        kwargs: dict[str, Any] = {"extra_headers": {"X-Neutral-Name": secret}}
    elif where == "api_key":
        kwargs = {"api_key": secret}
    elif where == "query":
        kwargs = {"api_base": f"https://gw.example/v1?ref={quote(secret, safe='')}"}
    else:
        kwargs = {"api_base": f"https://u:{quote(secret, safe='')}@gw.example/v1"}
    quoted = quote(secret, safe="")
    spelled = {
        "raw": secret, "quote": quoted, "quote_plus": quote_plus(secret),
        "lower_hex": re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quoted),
        "json": json.dumps(secret)[1:-1], "base64": base64.b64encode(secret.encode()).decode(),
        "base64_nopad": base64.b64encode(secret.encode()).decode().rstrip("="),
        "urlsafe": base64.urlsafe_b64encode(secret.encode()).decode(),
    }[encoding]
    text = f"gateway said {before} {spelled} end"
    cleaned = scrub(text, credential_values(kwargs))
    assert spelled not in cleaned, (spelled, cleaned)


def test_url_query_strings_and_user_info_inside_error_text_are_cut() -> None:
    text = ("upstream https://svc:hunter2pass@api.example.com/v1/chat?api-version=2024&sig=Zm9vYmFy#frag failed; "
            "retry at /v1/x?access_token=tok-987654 or https://docs.example.com/errors")
    cleaned = scrub(text)
    for secret in ("hunter2pass", "Zm9vYmFy", "api-version=2024", "frag", "tok-987654"):
        assert secret not in cleaned
    assert "https://docs.example.com/errors" in cleaned and "api.example.com/v1/chat" in cleaned


def test_every_mode_scrubs_the_message(make_instrumented: Any) -> None:
    record = CallRecord(span_id=1, operation=sc.OP_CHAT, mode=RedactionMode.FULL, capture=True, scan=False,
                        error_message=f"echo X-Tenant-Ref: {TENANT}", credentials=credential_values(
                            {"extra_headers": {"X-Tenant-Ref": TENANT}}))
    renderer = ContentRenderer(TelemetrySettings(capture_content=True), hash_key=b"k")
    full = renderer.render(record)[sc.LEANLLM_ERROR_MESSAGE]
    assert TENANT not in full and "X-Tenant-Ref: [REDACTED]" in full
    record.mode = RedactionMode.HASHED
    hashed = renderer.render(record)[sc.LEANLLM_ERROR_MESSAGE]
    record.credentials = ()
    record.error_message = "echo X-Tenant-Ref: [REDACTED]"
    assert renderer.render(record)[sc.LEANLLM_ERROR_MESSAGE] == hashed  # the digest is of the scrubbed text
    assert not leaked({"m": hashed}, TENANT)
