"""Normalized features of a call's input and output (``auto_normalize``): pure functions for the export thread.

``normalize_input(messages, hash_key=...)`` and ``normalize_output(output, hash_key=...)`` return small JSON-ready
dicts that never contain the content itself, so they are safe to export in every redaction mode:

- ``semantic_hash``: HMAC-SHA256 (keyed with ``LEANLLM_HASH_KEY``) of the canonical form; absent without a key,
  because an unsalted hash of a short prompt is reversible by guessing. Equal canonical forms, equal hashes.
- ``chars`` and ``length_bucket`` (``xs`` < 64 <= ``s`` < 256 <= ``m`` < 1024 <= ``l`` < 4096 <= ``xl`` < 16384
  <= ``xxl``), ``script`` (dominant Unicode script) and ``language`` (only where the script or common words make it
  clear), ``input_type`` / ``output_type``.

The canonical form (:func:`canonical_form`): Unicode NFKC, case-folded, whitespace collapsed, one ``role: text``
line per message; images, audio and files become ``<image>`` / ``<audio>`` / ``<file>`` placeholders (their bytes
are never read or hashed), tool calls become ``<tool_call name>``. Messages may be OpenAI/LiteLLM dicts or OTel
GenAI semconv messages (``{"role", "parts": [...]}``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import re2

from leanllm_otel.access import get_field as _get

__all__ = [
    "canonical_form",
    "length_bucket",
    "normalize_input",
    "normalize_output",
    "semantic_hash",
]

_BUCKETS: tuple[tuple[int, str], ...] = ((64, "xs"), (256, "s"), (1024, "m"), (4096, "l"), (16384, "xl"))
_SCRIPT_SAMPLE = 4000  # letters looked at for script / language
# Untrusted text is only ever matched with RE2 (linear time).
_WORD = re2.compile(r"\pL+")
_CODE_LINE = re2.compile(
    r"(?m)^\s*(def |class |import |from \S+ import |function |const |let |var |public |private |#include|package |"
    r"SELECT |INSERT |UPDATE |CREATE |fn |func |return\b|for\s*\(|if\s*\(|while\s*\(|\}|\{$)"
)
_FENCES = re2.compile(r"^\s*```(?:json)?\s*|\s*```\s*$")

_MEDIA_PART_TYPES: dict[str, str] = {
    "image_url": "image",
    "image": "image",
    "input_image": "image",
    "input_audio": "audio",
    "audio": "audio",
    "file": "file",
    "input_file": "file",
    "document": "file",
    "blob": "file",
    "uri": "file",
    "video": "video",
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Small, distinctive stop-word lists: a language is named only when its words clearly dominate.
_STOPWORDS: dict[str, frozenset[str]] = {
    "en": _words("the and is are you of to in it that what this with for be not how"),
    "es": _words("el la los las que es de en y por para una un con no como está"),
    "fr": _words("le la les est et des une un que pour dans pas avec vous ce qui"),
    "de": _words("der die das und ist nicht ein eine ich mit sie zu den von wie"),
    "pt": _words("o os que é de em um uma para com não você do da como"),
    "it": _words("il lo gli che è di e un una per con non sono come della"),
}
_SCRIPT_LANGUAGE = {
    "hangul": "ko",
    "kana": "ja",
    "thai": "th",
    "greek": "el",
    "hebrew": "he",
    "armenian": "hy",
    "georgian": "ka",
}


# --- canonical form and hashing ------------------------------------------------------------------------------


def _part_texts(part: Any, media: Counter[str], tools: list[str]) -> Iterable[str]:
    if isinstance(part, str):
        yield part
        return
    kind = str(_get(part, "type") or "text")
    if kind in ("text", "input_text", "output_text", "reasoning"):
        text = _get(part, "text")
        if text is None:
            text = _get(part, "content")
        if isinstance(text, str):
            yield text
        return
    if kind in _MEDIA_PART_TYPES:
        label = _MEDIA_PART_TYPES[kind]
        modality = _get(part, "modality")
        if isinstance(modality, str) and modality in ("image", "audio", "video"):
            label = modality
        media[label] += 1
        yield f"<{label}>"
        return
    if kind in ("tool_call", "function_call"):
        name = str(_get(part, "name") or "")
        tools.append(name)
        yield f"<tool_call {name}>"
        return
    if kind in ("tool_call_response", "function_call_output", "tool_result"):
        response = _get(part, "response")
        if response is None:
            response = _get(part, "output")
        yield response if isinstance(response, str) else json.dumps(response, sort_keys=True, default=str)
        return
    media["other"] += 1
    yield f"<{kind}>"


def _message_texts(message: Any, media: Counter[str], tools: list[str]) -> tuple[str, str]:
    """(role, text) of one message in either the OpenAI or the semconv shape."""
    if isinstance(message, str):
        return "user", message
    role = str(_get(message, "role") or "user")
    pieces: list[str] = []
    parts = _get(message, "parts")
    content = _get(message, "content") if parts is None else parts
    if isinstance(content, str):
        pieces.append(content)
    elif isinstance(content, Sequence):
        for part in content:
            pieces.extend(_part_texts(part, media, tools))
    for call in _get(message, "tool_calls") or ():
        function = _get(call, "function")
        name = str(_get(function, "name") or _get(call, "name") or "")
        tools.append(name)
        pieces.append(f"<tool_call {name}>")
    return role, " ".join(pieces)


def _canonical_text(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _as_messages(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, Mapping)):
        return [value]
    if isinstance(value, Sequence):
        return list(value)
    return [value]


def _walk(messages: Any) -> tuple[list[tuple[str, str]], Counter[str], list[str]]:
    media: Counter[str] = Counter()
    tools: list[str] = []
    pairs = [_message_texts(message, media, tools) for message in _as_messages(messages)]
    return pairs, media, tools


def canonical_form(messages: Any) -> str:
    """The canonical text of ``messages`` (a list of messages, one message, or a plain string)."""
    pairs, _, _ = _walk(messages)
    return "\n".join(f"{role}: {_canonical_text(text)}" for role, text in pairs)


def semantic_hash(canonical: str, hash_key: bytes | str | None) -> str | None:
    """``hmac-sha256:<hex>`` of ``canonical`` under ``hash_key``; None without a key (never an unsalted hash)."""
    if not hash_key:
        return None
    key = hash_key.encode() if isinstance(hash_key, str) else hash_key
    return "hmac-sha256:" + hmac.new(key, canonical.encode("utf-8"), hashlib.sha256).hexdigest()


def length_bucket(chars: int) -> str:
    for limit, name in _BUCKETS:
        if chars < limit:
            return name
    return "xxl"


# --- script and language -------------------------------------------------------------------------------------


def _script_of(char: str) -> str | None:
    if not char.isalpha():
        return None
    code = ord(char)
    if code < 0x250 or 0x1E00 <= code <= 0x1EFF:
        return "latin"
    if 0x370 <= code <= 0x3FF:
        return "greek"
    if 0x400 <= code <= 0x52F:
        return "cyrillic"
    if 0x530 <= code <= 0x58F:
        return "armenian"
    if 0x590 <= code <= 0x5FF:
        return "hebrew"
    if 0x600 <= code <= 0x6FF or 0x750 <= code <= 0x77F:
        return "arabic"
    if 0x900 <= code <= 0x97F:
        return "devanagari"
    if 0xE00 <= code <= 0xE7F:
        return "thai"
    if 0x10A0 <= code <= 0x10FF:
        return "georgian"
    if 0x3040 <= code <= 0x30FF:
        return "kana"
    if 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF:
        return "hangul"
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF:
        return "han"
    return "other"


def _script_and_language(text: str) -> tuple[str | None, str | None]:
    counts: Counter[str] = Counter()
    seen = 0
    for char in text:
        script = _script_of(char)
        if script is None:
            continue
        counts[script] += 1
        seen += 1
        if seen >= _SCRIPT_SAMPLE:
            break
    if not counts:
        return None, None
    if counts["kana"]:  # Japanese mixes kana and han; any kana means Japanese
        return "kana" if counts["kana"] >= counts["han"] else "han", "ja"
    script = counts.most_common(1)[0][0]
    if script == "han":
        return script, "zh"
    if script == "latin":
        return script, _latin_language(text)
    return script, _SCRIPT_LANGUAGE.get(script)


def _latin_language(text: str) -> str | None:
    words = [w.casefold() for w in _WORD.findall(text[: _SCRIPT_SAMPLE * 2])]
    if len(words) < 3:
        return None
    scores = {lang: sum(1 for w in words if w in stops) for lang, stops in _STOPWORDS.items()}
    best = max(scores, key=lambda lang: scores[lang])
    ranked = sorted(scores.values(), reverse=True)
    if ranked[0] >= 2 and ranked[0] >= 1.5 * ranked[1] and ranked[0] >= len(words) * 0.08:
        return best
    return None


# --- features ------------------------------------------------------------------------------------------------


def _features(pairs: list[tuple[str, str]], hash_key: bytes | str | None) -> dict[str, Any]:
    raw = "\n".join(text for _, text in pairs)
    canonical = "\n".join(f"{role}: {_canonical_text(text)}" for role, text in pairs)
    script, language = _script_and_language(raw)
    features: dict[str, Any] = {
        "chars": len(raw),
        "length_bucket": length_bucket(len(raw)),
        "script": script,
        "language": language,
    }
    digest = semantic_hash(canonical, hash_key)
    if digest is not None:
        features["semantic_hash"] = digest
    return features


def normalize_input(messages: Any, *, hash_key: bytes | str | None = None) -> dict[str, Any]:
    """Features of a call's input (chat messages, a prompt string, or embeddings input).

    ``input_type``: ``empty``, ``text`` (one user turn), ``conversation`` (several turns), ``multimodal`` (any
    image/audio/file part), ``tool_result`` (the last message answers a tool call). Also ``messages``, ``turns``
    (user messages), ``has_system``, ``media`` (counts per modality).
    """
    pairs, media, _ = _walk(messages)
    features = _features(pairs, hash_key)
    roles = [role for role, _ in pairs]
    if not pairs or (not any(text.strip() for _, text in pairs) and not media):
        input_type = "empty"
    elif media:
        input_type = "multimodal"
    elif roles[-1] in ("tool", "function"):
        input_type = "tool_result"
    elif roles.count("user") > 1 or "assistant" in roles:
        input_type = "conversation"
    else:
        input_type = "text"
    features.update(
        input_type=input_type,
        messages=len(pairs),
        turns=roles.count("user"),
        has_system=any(role in ("system", "developer") for role in roles),
    )
    if media:
        features["media"] = dict(sorted(media.items()))
    return features


def _looks_like_json(text: str) -> bool:
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return False
    try:
        json.loads(stripped)
    except ValueError:
        return False
    return True


def _looks_like_code(text: str) -> bool:
    if "```" in text:
        return True
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return False
    code_lines = len(_CODE_LINE.findall(text))
    return code_lines >= 2 and code_lines >= len(lines) * 0.3


def _output_messages(output: Any) -> list[Any]:
    """Assistant messages from a LiteLLM response, semconv output messages, a message dict or plain text."""
    if output is None:
        return []
    if isinstance(output, str):
        return [{"role": "assistant", "content": output}]
    choices = _get(output, "choices") if not isinstance(output, (str, Sequence)) else None
    if choices:
        messages = []
        for choice in choices:
            message = _get(choice, "message")
            if message is None:
                text = _get(choice, "text")  # text_completion
                message = {"role": "assistant", "content": text if isinstance(text, str) else ""}
            messages.append(message)
        return messages
    return _as_messages(output)


def normalize_output(output: Any, *, hash_key: bytes | str | None = None) -> dict[str, Any]:
    """Features of a call's output (a LiteLLM response, semconv output messages, a message, or text).

    ``output_type``: ``tool_call`` (the model called a tool), ``json`` (the text parses as a JSON object or array,
    fenced or not), ``code`` (fenced code or mostly code lines), ``text``, or ``empty``. ``tool_calls`` counts the
    calls and ``tools`` names them.
    """
    pairs, media, tools = _walk(_output_messages(output))
    features = _features(pairs, hash_key)
    text = "\n".join(t for _, t in pairs if t and not t.startswith("<tool_call "))
    unfenced = _FENCES.sub("", text) if text.lstrip().startswith("```") else text
    if tools:
        output_type = "tool_call"
    elif not text.strip() and not media:
        output_type = "empty"
    elif _looks_like_json(unfenced):
        output_type = "json"
    elif _looks_like_code(text):
        output_type = "code"
    else:
        output_type = "text"
    features["output_type"] = output_type
    if tools:
        features["tool_calls"] = len(tools)
        features["tools"] = sorted(set(tools))
    if media:
        features["media"] = dict(sorted(media.items()))
    return features
