"""Trains the injection scorer shipped as ``processing/detection/injection_model.json``.

    python tests/data/injection_scorer_train.py [--features 700] [--check]

A logistic regression over the *presence* of word n-grams (lower-cased ASCII letter/digit runs, 1-3 words) and a
few shape features (an encoded blob, many chat turns), fitted on the ``tune`` split of ``injection_set.jsonl``
only; the ``held`` split is never read here. Features are first ranked by an L1-regularised fit, the strongest
``--features`` are refitted with a light L2 penalty, and the weights are rounded to four decimals, so the file is
small and the scorer deterministic. At run time every n-gram becomes one RE2 pattern in a single ``re2.Set``
(one linear pass over the text answers which are present), see ``processing/detection/scorer.py``.

The decision threshold is the lowest score that keeps the tuning split's benign false-positive rate at or
below ``--tune-fp``.

``--check`` rebuilds in memory and exits 1 if the committed file differs (numpy is needed only here).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from leanllm_otel.processing.detection import scorer as inj  # noqa: E402

DATA = Path(__file__).with_name("injection_set.jsonl")
OUT = ROOT / "src" / "leanllm_otel" / "processing" / "detection" / "injection_model.json"

_TOKEN = re.compile(r"[a-z0-9]+")


def ngrams(text: str, max_n: int = 3) -> set[str]:
    """Word n-grams as the run-time patterns see them (tokens joined by one space)."""
    toks = _TOKEN.findall(text.lower())
    out: set[str] = set()
    for n in range(1, max_n + 1):
        for i in range(len(toks) - n + 1):
            gram = toks[i : i + n]
            if n > 1 and all(len(t) <= 2 for t in gram):
                continue
            out.add(" ".join(gram))
    return out


def shape_features(text: str) -> set[str]:
    return {name for name in inj.shape_feature_names() if inj.shape_feature(name, text)}


def fit(x_idx: list[list[int]], y: np.ndarray, n_feat: int, l1: float, l2: float, steps: int) -> np.ndarray:
    """Proximal gradient descent (ISTA) on the mean logistic loss; presence features, so X is 0/1 and sparse."""
    rows = np.repeat(np.arange(len(x_idx)), [len(r) for r in x_idx])
    cols = np.concatenate([np.asarray(r, dtype=np.int64) for r in x_idx])
    w = np.zeros(n_feat + 1)  # last entry: bias
    # class weights: both classes count equally
    pos = y.sum()
    cw = np.where(y == 1, len(y) / (2 * pos), len(y) / (2 * (len(y) - pos)))
    lr = 0.5
    for _ in range(steps):
        z = np.bincount(rows, weights=w[cols], minlength=len(y)) + w[-1]
        p = 1 / (1 + np.exp(-z))
        g_row = (p - y) * cw / len(y)
        grad = np.bincount(cols, weights=g_row[rows], minlength=n_feat + 1)
        grad[-1] = g_row.sum()
        grad[:-1] += l2 * w[:-1]
        w -= lr * grad
        w[:-1] = np.sign(w[:-1]) * np.maximum(np.abs(w[:-1]) - lr * l1, 0)
    return w


def build(max_features: int, tune_fp: float) -> dict[str, object]:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").split("\n") if line.strip()]
    rows = [r for r in rows if r["split"] == "tune"]  # the held split is never read here
    feats = [ngrams(r["text"]) | shape_features(r["text"]) for r in rows]
    y = np.array([r["label"] for r in rows], dtype=float)
    df = Counter(f for fs in feats for f in fs)
    vocab = sorted(f for f, c in df.items() if c >= 4 and (f.startswith("__") or len(f) >= 3))
    index = {f: i for i, f in enumerate(vocab)}
    x_idx = [[index[f] for f in fs if f in index] for fs in feats]
    w = fit(x_idx, y, len(vocab), l1=2e-4, l2=0.0, steps=1500)
    ranked = sorted(range(len(vocab)), key=lambda i: (-abs(w[i]), vocab[i]))
    keep = sorted(vocab[i] for i in ranked[:max_features] if w[i] != 0)
    index = {f: i for i, f in enumerate(keep)}
    x_idx = [[index[f] for f in fs if f in index] for fs in feats]
    w = fit(x_idx, y, len(keep), l1=0.0, l2=1e-3, steps=2500)
    weights = {f: round(float(w[index[f]]), 4) for f in keep}
    bias = round(float(w[-1]), 4)
    # threshold: lowest score keeping the tuning benign FP (texts the patterns miss) at or below tune_fp
    scores = []
    for r, fs in zip(rows, feats, strict=True):
        s = bias + sum(weights.get(f, 0.0) for f in fs)
        scores.append((s, r["label"]))
    benign = sorted((s for s, label in scores if label == 0), reverse=True)
    allowed = math.floor(tune_fp * len(benign))
    threshold = round(max(0.0, benign[allowed] + 1e-4) if allowed < len(benign) else 0.0, 4)
    return {
        "about": "Injection/jailbreak scorer: logistic regression over word n-gram presence; built by "
        "tests/data/injection_scorer_train.py from the tune split of tests/data/injection_set.jsonl.",
        "version": 1,
        "bias": bias,
        "threshold": threshold,
        "weights": dict(sorted(weights.items())),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--features", type=int, default=700)
    parser.add_argument("--tune-fp", type=float, default=0.01)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    model = build(args.features, args.tune_fp)
    text = json.dumps(model, indent=0, ensure_ascii=False) + "\n"
    if args.check:
        same = OUT.exists() and OUT.read_text(encoding="utf-8") == text
        print("up to date" if same else "differs")
        return 0 if same else 1
    OUT.write_text(text, encoding="utf-8")
    print(f"{len(model['weights'])} features, threshold {model['threshold']}, wrote {OUT}")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
