"""The learned injection scorer: a logistic regression over the presence of word n-grams, in one RE2 Set pass.

The model is ``injection_model.json`` beside this module, built by ``tests/data/injection_scorer_train.py`` from the
tuning split of ``tests/data/injection_set.jsonl`` (no download at run time). Every n-gram is one pattern of a single
``re2.Set``, so a score is one linear pass over the text plus a sum of weights; a few shape features (a run of Morse
code, several chat turns) are looked at only when they could move the score across the threshold.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any, Final

import re2

from leanllm_otel.processing.detection.catalog import INJECTION, Severity, Spec

__all__ = [
    "SCORER_SPEC",
    "SCORER_TYPE",
    "InjectionScorer",
    "default_scorer",
    "shape_feature",
    "shape_feature_names",
]

SCORER_TYPE: Final = "LIKELY_INJECTION"
SCORER_SPEC: Final = Spec(SCORER_TYPE, INJECTION, Severity.MEDIUM, "")

# -------------------------------------------------------------------------------------------- shape features

_SHAPE_PATTERNS: Final = {
    "__morse": r"(?:[.\-]{1,6}[ /]+){12,}",
    "__turn": r"(?i)\b(?:user|human)\s*:",
}
_TURNS_FOR_MANY_SHOT: Final = 4
_SHAPE_REGEX: dict[str, Any] = {}


def _shape_regex(name: str) -> Any:
    regex = _SHAPE_REGEX.get(name)
    if regex is None:
        regex = _SHAPE_REGEX[name] = re2.compile(_SHAPE_PATTERNS[name])
    return regex


def shape_feature_names() -> list[str]:
    """Names of the non-n-gram features (their names start with ``__``)."""
    return sorted(_SHAPE_PATTERNS)


def shape_feature(name: str, text: str) -> bool:
    """Whether ``text`` has the shape feature ``name`` (an encoded blob, several chat turns)."""
    regex = _shape_regex(name)
    if name == "__turn":
        return any(count >= _TURNS_FOR_MANY_SHOT for count, _ in enumerate(regex.finditer(text), 1))
    return regex.search(text) is not None


# -------------------------------------------------------------------------------------------- the scorer


def _ngram_pattern(gram: str) -> str:
    words = gram.split(" ")
    return r"(?i)(?:^|[^a-z0-9])" + r"[^a-z0-9]+".join(words) + r"(?:[^a-z0-9]|$)"


class InjectionScorer:
    """Logistic-regression score of a text from the presence of the model's n-grams (one RE2 Set pass)."""

    __slots__ = ("_bias", "_gate", "_grams", "_regex", "_shapes", "_threshold", "_weights")

    def __init__(self, model: dict[str, Any], max_mem: int = 64 << 20) -> None:
        weights: dict[str, float] = model["weights"]
        self._bias = float(model["bias"])
        self._threshold = float(model["threshold"])
        opts = re2.Options()
        opts.max_mem = max_mem
        opts.log_errors = False
        gate = re2.Set.SearchSet(opts)
        grams: list[str] = []
        w: list[float] = []
        shapes: list[tuple[str, float]] = []
        for feature, weight in sorted(weights.items()):
            if feature.startswith("__"):
                shapes.append((feature, float(weight)))
                continue
            if gate.Add(_ngram_pattern(feature)) != len(grams):
                raise RuntimeError("re2.Set index out of step")  # pragma: no cover
            grams.append(feature)
            w.append(float(weight))
        gate.Compile()
        self._gate: Any = gate
        self._grams = tuple(grams)
        self._weights = tuple(w)
        self._shapes = tuple(shapes)
        self._regex: dict[int, Any] = {}

    @property
    def threshold(self) -> float:
        """Scores at or above this are reported."""
        return self._threshold

    def score(self, text: str) -> tuple[float, int]:
        """The logit for ``text`` and the index of its strongest positive n-gram (-1 if none)."""
        hits = self._gate.Match(text) or ()
        weights = self._weights
        total = self._bias
        best, best_w = -1, 0.0
        for i in hits:
            wi = weights[i]
            total += wi
            if wi > best_w:
                best, best_w = i, wi
        # A shape feature costs a pass over the text: look only when it could move the score across the threshold.
        reach = sum(w for _, w in self._shapes if w > 0)
        if total + reach >= self._threshold:
            for name, weight in self._shapes:
                if (weight > 0 or total >= self._threshold) and shape_feature(name, text):
                    total += weight
        return total, best

    def probability(self, text: str) -> float:
        """The score as a probability (for reports; the decision uses the logit and the threshold)."""
        return 1 / (1 + math.exp(-self.score(text)[0]))

    def find(self, text: str) -> tuple[int, int] | None:
        """Span of the strongest indicator when the score reaches the threshold, else ``None``."""
        total, best = self.score(text)
        if total < self._threshold:
            return None
        if best < 0:
            return (0, min(len(text), 1))
        regex = self._regex.get(best)
        if regex is None:
            regex = self._regex[best] = re2.compile(_ngram_pattern(self._grams[best]))
        m = regex.search(text)
        if m is None:  # pragma: no cover - the Set said it matches
            return (0, min(len(text), 1))
        s, e = m.span()
        while s < e and not text[s].isalnum():
            s += 1
        while e > s and not text[e - 1].isalnum():
            e -= 1
        return (s, e) if s < e else m.span()


_scorer: InjectionScorer | None = None


def default_scorer() -> InjectionScorer | None:
    """The scorer built from the packaged model, or ``None`` when the package ships none."""
    global _scorer
    if _scorer is None:
        try:
            raw = (
                resources.files("leanllm_otel.processing.detection")
                .joinpath("injection_model.json")
                .read_text(encoding="utf-8")
            )
        except FileNotFoundError:
            return None
        _scorer = InjectionScorer(json.loads(raw))
    return _scorer
