"""The detection engine: compiles the catalog's patterns with google-re2 and resolves overlapping candidates.

Every pattern is compiled once with RE2, whose matching time is linear in the input: no input, however hostile,
can make a scan backtrack. Python's ``re`` never touches scanned text; the checksum validators (Luhn, IBAN
mod-97, ...) run in plain Python on the matched substring only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import re2

from leanllm_otel.processing.detection.catalog import (
    CATEGORIES,
    CUSTOM,
    INJECTION,
    PII,
    PII_SPECS,
    SECRET,
    SECRET_SPECS,
    Severity,
    Spec,
)
from leanllm_otel.processing.detection.findings import Finding, marker_for, sanitize, summarize
from leanllm_otel.processing.detection.injection import INJECTION_SPECS
from leanllm_otel.processing.detection.memo import ScanMemo
from leanllm_otel.processing.detection.scorer import SCORER_SPEC, SCORER_TYPE, InjectionScorer, default_scorer

# Overlap resolution: lower rank wins a contested span ("secret beats pii beats injection").
_CATEGORY_RANK: Final = {SECRET: 0, CUSTOM: 1, PII: 2, INJECTION: 3}
_M = Severity.MEDIUM
_Spec = Spec


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """What a :class:`Detector` looks for.

    ``extra_patterns`` maps a type name to an RE2 pattern; its findings have category ``"custom"``, are
    redacted as ``[CUSTOM:<NAME>]`` and run whatever ``enabled_categories`` says. ``allowlist`` holds exact
    strings that are never reported or redacted (a company support address, a documented test key).
    """

    extra_patterns: Mapping[str, str] = field(default_factory=dict)
    allowlist: Sequence[str] = ()
    enabled_categories: frozenset[str] = CATEGORIES


_ALL_SPECS: Final = SECRET_SPECS + PII_SPECS + INJECTION_SPECS

PII_TYPES: Final = frozenset(s.type for s in PII_SPECS)
SECRET_TYPES: Final = frozenset(s.type for s in SECRET_SPECS)
INJECTION_TYPES: Final = frozenset(s.type for s in INJECTION_SPECS) | {SCORER_TYPE}


def _options(max_mem: int) -> Any:
    opts = re2.Options()
    opts.max_mem = max_mem
    opts.log_errors = False
    return opts


# A single RE2::Set pass (one DFA over the text for every pattern at once) says which patterns match at all;
# only those run finditer. The Set's DFA does not bail out on slow inputs (many-match mode), it only fails when
# one state cannot fit the budget, so the budget is generous.
_PATTERN_MAX_MEM: Final = 32 << 20
_SET_MAX_MEM: Final = 256 << 20


@dataclass(frozen=True, slots=True)
class _Compiled:
    spec: _Spec
    regex: Any
    order: int


# JSON / C-style escape sequences. In JSON text (tool arguments, a pasted payload) the characters before a value are
# often an escape ("\\n4111 ...", "\\uff1aAKIA..."), which defeats every word-boundary anchor. The escape view
# blanks each escape to whitespace of the same length (a line break stays a line break, for ``^`` anchors), and
# the scan keeps the candidates of both the text and its view: never fewer findings than the text alone gives.
_ESCAPE: Final = re2.compile(r"\\(?:u[0-9A-Fa-f]{4}|[nrtbf\"\\/])", _options(1 << 20))
_ESCAPE_BLANKS: Final = {"n": " \n", "r": " \r", "t": "  "}


def escape_view(text: str) -> str | None:
    """``text`` with every escape sequence (``\\n``, ``\\"``, ``\\u00e9``) replaced by whitespace of the same length;
    None when it holds none. Offsets into the view are offsets into ``text``."""
    pieces: list[str] = []
    pos = 0
    for m in _ESCAPE.finditer(text):
        s, e = m.span()
        pieces.append(text[pos:s])
        pieces.append(_ESCAPE_BLANKS.get(text[s + 1], " " * (e - s)))
        pos = e
    if not pieces:
        return None
    pieces.append(text[pos:])
    return "".join(pieces)


class Detector:
    """Scans text for PII, secrets and prompt-injection indicators; redacts PII and secrets.

    Thread-safe and reusable: all state is the compiled patterns. Build one per configuration (or use
    :func:`default_detector`) and share it.
    """

    __slots__ = ("_allow", "_config", "_gate", "_memo", "_patterns", "_scorer", "_scorer_entry")

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self._config = config or DetectorConfig()
        unknown = set(self._config.enabled_categories) - CATEGORIES
        if unknown:
            raise ValueError(f"unknown detector categories: {sorted(unknown)}")
        specs = [s for s in _ALL_SPECS if s.category in self._config.enabled_categories]
        opts = _options(_PATTERN_MAX_MEM)
        compiled: list[_Compiled] = []
        for name, pattern in self._config.extra_patterns.items():
            if not name or not isinstance(pattern, str):
                raise ValueError(f"extra pattern {name!r}: name must be non-empty and pattern a string")
            try:
                regex = re2.compile(pattern, opts)
            except re2.error as exc:
                raise ValueError(f"extra pattern {name!r} is not a valid RE2 pattern: {exc}") from None
            compiled.append(_Compiled(_Spec(name, CUSTOM, _M, pattern), regex, len(compiled)))
        for spec in specs:
            compiled.append(_Compiled(spec, re2.compile(spec.pattern, opts), len(compiled)))
        gate = re2.Set.SearchSet(_options(_SET_MAX_MEM))
        for comp in compiled:
            if gate.Add(comp.spec.pattern) != comp.order:
                raise RuntimeError("re2.Set index out of step with pattern order")  # pragma: no cover
        if compiled:
            gate.Compile()
        self._gate: Any = gate if compiled else None
        self._patterns: tuple[_Compiled, ...] = tuple(compiled)
        self._allow: frozenset[str] = frozenset(self._config.allowlist)
        # The learned injection scorer speaks only where no injection pattern did (see detection/injection.py).
        self._scorer: InjectionScorer | None = None
        if INJECTION in self._config.enabled_categories:
            self._scorer = default_scorer()
        self._scorer_entry = _Compiled(SCORER_SPEC, None, len(compiled))
        self._memo = ScanMemo()

    @property
    def config(self) -> DetectorConfig:
        """The configuration this detector was built from."""
        return self._config

    def scan(self, text: str, *, remember: bool = True) -> list[Finding]:
        """Findings in ``text``, sorted by start, non-overlapping.

        Where candidates overlap, the winner is the higher category (secret > custom > pii > injection), then
        the longer match; a redactable winner's span is widened to the union of the redactable candidates it
        beat, so redaction never leaves a fragment of either. Offsets index :func:`sanitize` (text), which is
        ``text`` itself unless it holds lone surrogates. ``remember=False`` for text seen once (a sliding window
        over a stream): it is scanned without entering the detector's memory of recent texts.
        """
        sanitized = sanitize(text)
        return self._scan(sanitized) if remember else self._find(sanitized)

    def redact(self, text: str) -> tuple[str, list[Finding]]:
        """Replace PII and secrets with markers; injection findings are reported but left in place.

        Returns the redacted text and the findings (offsets into the sanitized input, not the output).
        """
        text = sanitize(text)
        findings = self._scan(text)
        pieces: list[str] = []
        pos = 0
        for f in findings:
            if f.category == INJECTION:
                continue
            pieces.append(text[pos : f.start])
            pieces.append(marker_for(f))
            pos = f.end
        if not pieces:
            return text, findings
        pieces.append(text[pos:])
        return "".join(pieces), findings

    @staticmethod
    def summarize(findings: Iterable[Finding]) -> dict[str, int]:
        """Count findings by type (same as the module function :func:`summarize`)."""
        return summarize(findings)

    def _scan(self, text: str) -> list[Finding]:
        """Findings in sanitized ``text``; a text scanned recently (a resent system prompt or earlier turn) is
        answered from the detector's :class:`~leanllm_otel.processing.detection.memo.ScanMemo`."""
        key = self._memo.key(text)
        if key is None:
            return self._find(text)
        remembered = self._memo.get(key)
        if remembered is not None:
            return list(remembered)
        findings = self._find(text)
        self._memo.put(key, tuple(findings))
        return findings

    def _find(self, text: str) -> list[Finding]:
        """Findings in sanitized ``text``, always scanned (the stream scanner's windows: each is seen once)."""
        if not text:
            return []
        redactable: list[tuple[int, int, int, _Compiled]] = []
        injections: list[tuple[int, int, int, _Compiled]] = []
        view = escape_view(text) if "\\" in text else None
        self._candidates(text, text, view, redactable, injections)
        if view is not None:
            self._candidates(view, text, None, redactable, injections)
        if self._scorer is not None and not injections:
            span = self._scorer.find(text)
            if span is not None:
                injections.append((span[0], span[1], self._scorer_entry.order, self._scorer_entry))
        if not redactable and not injections:
            return []
        return _resolve(redactable, injections)

    def _candidates(
        self,
        text: str,
        original: str,
        view: str | None,
        redactable: list[tuple[int, int, int, _Compiled]],
        injections: list[tuple[int, int, int, _Compiled]],
    ) -> None:
        """Append the candidates found in ``text`` (``original`` or its escape view: same length, same offsets).

        With ``view`` (scanning the original text of a view), a candidate never starts inside an escape sequence:
        ``\\nbob@example.com`` yields ``bob@example.com``, so its redaction keeps the escape intact.
        """
        if self._gate is None:
            return
        # google-re2's str API encodes the text and maps byte offsets back to characters on every finditer; ASCII
        # text (most prompts) is matched as bytes, whose offsets are the character offsets: the same RE2 program.
        subject: str | bytes = text.encode("ascii") if text.isascii() else text
        hits = self._gate.Match(subject)
        if not hits:
            return
        allow = self._allow
        for index in sorted(hits):
            comp = self._patterns[index]
            spec = comp.spec
            sink = injections if spec.category == INJECTION else redactable
            group, validator, trim = spec.group, spec.validator, spec.trim
            for m in comp.regex.finditer(subject):
                s, e = m.span(group) if group else m.span()
                if s < 0:
                    s, e = m.span()
                if view is not None:
                    while s < e and view[s] != text[s]:
                        s += 1
                if s >= e:
                    continue
                if validator is not None and not validator(text, s, e):
                    continue
                if trim is not None:
                    e = trim(text, s, e)
                if allow and original[s:e] in allow:
                    continue
                sink.append((s, e, comp.order, comp))


def _cluster(cands: list[tuple[int, int, int, _Compiled]], widen: bool) -> list[Finding]:
    """Group overlapping candidates; one finding per group (best category, then longest, then pattern order)."""
    out: list[Finding] = []
    if not cands:
        return out
    cands.sort(key=lambda c: (c[0], -c[1]))
    i, n = 0, len(cands)
    while i < n:
        cs, ce = cands[i][0], cands[i][1]
        best = cands[i]
        j = i + 1
        while j < n and cands[j][0] < ce:
            c = cands[j]
            ce = max(ce, c[1])
            if _better(c, best):
                best = c
            j += 1
        spec = best[3].spec
        s, e = (cs, ce) if widen else (best[0], best[1])
        out.append(Finding(spec.type, spec.category, spec.severity, s, e))
        i = j
    return out


def _better(a: tuple[int, int, int, _Compiled], b: tuple[int, int, int, _Compiled]) -> bool:
    ka = (_CATEGORY_RANK[a[3].spec.category], a[0] - a[1], a[2])
    kb = (_CATEGORY_RANK[b[3].spec.category], b[0] - b[1], b[2])
    return ka < kb


def _resolve(
    redactable: list[tuple[int, int, int, _Compiled]], injections: list[tuple[int, int, int, _Compiled]]
) -> list[Finding]:
    kept = _cluster(redactable, widen=True)
    inj = _cluster(injections, widen=False)
    if not inj:
        return kept
    if not kept:
        return inj
    # Drop injection findings that collide with a redacted span (the redacted content wins), then merge.
    survivors: list[Finding] = []
    k = 0
    for f in inj:
        while k < len(kept) and kept[k].end <= f.start:
            k += 1
        if k < len(kept) and kept[k].start < f.end:
            continue
        survivors.append(f)
    merged = kept + survivors
    merged.sort(key=lambda f: f.start)
    return merged


_default: Detector | None = None
_default_lock = threading.Lock()


def default_detector() -> Detector:
    """A process-wide :class:`Detector` with the default configuration, compiled on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Detector()
    return _default
