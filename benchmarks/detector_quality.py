"""Precision and recall of the detectors per type, and the benign false-positive rate, on the labelled corpus.

    python benchmarks/detector_quality.py [--corpus PATH] [--min-recall 0.95] [--max-fp-rate 0.01] [--verbose]

Each corpus line is ``{"text": ..., "expected": [TYPE, ...]}``; a line counts as a true positive for every
expected type the detector reports, a false negative for every expected type it misses, and a false positive
for every reported type not expected. Benign lines (``expected == []``) with any finding make up the benign
false-positive rate. Exits 1 when any type's recall is below ``--min-recall`` or the benign false-positive rate
is above ``--max-fp-rate``; also prints scan timings for a 2 KB and a 50 KB prompt.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

from leanllm_otel.processing.detectors import Detector

DEFAULT_CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "detector_corpus.jsonl"


def evaluate(corpus: Path, detector: Detector, verbose: bool = False) -> tuple[dict[str, dict[str, int]], int, int]:
    """Per-type tp/fp/fn counts, number of benign lines, and benign lines with any finding."""
    stats: dict[str, dict[str, int]] = defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0})
    benign = benign_hits = 0
    with corpus.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            expected = set(row["expected"])
            found = {f.type for f in detector.scan(row["text"])}
            for t in expected & found:
                stats[t]["tp"] += 1
            for t in expected - found:
                stats[t]["fn"] += 1
            for t in found - expected:
                stats[t]["fp"] += 1
            if not expected:
                benign += 1
                benign_hits += bool(found)
            if verbose and found != expected:
                print(f"  line {lineno}: expected {sorted(expected)} found {sorted(found)}: {row['text'][:90]!r}")
    return stats, benign, benign_hits


def _timing(detector: Detector) -> list[tuple[str, float]]:
    """Mean scan time (microseconds) for plain prose and for prose dense with findings, at 2 KB and 50 KB."""
    prose = "The committee reviewed the quarterly numbers and agreed to revisit the plan next week. "
    dense = (
        "Hello team, the deployment of version 2.3.1 finished at 2024-01-15T10:20:30Z. Order #A-2024-000123 "
        "costs $1,234.56; contact jane.doe@example.com or +44 20 7946 0958. Please review the logs below.\n"
    )
    out = []
    for name, para in (("prose", prose), ("dense", dense)):
        for label, size in (("2 KB", 2_000), ("50 KB", 50_000)):
            text = (para * (size // len(para) + 1))[:size]
            detector.scan(text)
            runs = 20 if size < 10_000 else 5
            start = time.perf_counter()
            for _ in range(runs):
                detector.scan(text)
            out.append((f"{name} {label}", (time.perf_counter() - start) / runs * 1e6))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--min-recall", type=float, default=0.95)
    parser.add_argument("--max-fp-rate", type=float, default=0.01)
    parser.add_argument("--verbose", action="store_true", help="print every line the detector got wrong")
    parser.add_argument("--no-timing", action="store_true")
    args = parser.parse_args(argv)

    detector = Detector()
    stats, benign, benign_hits = evaluate(args.corpus, detector, args.verbose)
    failed = False
    print(f"{'type':<22}{'tp':>5}{'fp':>5}{'fn':>5}{'precision':>11}{'recall':>9}")
    for t in sorted(stats):
        s = stats[t]
        precision = s["tp"] / (s["tp"] + s["fp"]) if s["tp"] + s["fp"] else 1.0
        support = s["tp"] + s["fn"]
        recall = s["tp"] / support if support else float("nan")
        flag = ""
        if support and recall < args.min_recall:
            flag, failed = "  <-- recall below target", True
        print(f"{t:<22}{s['tp']:>5}{s['fp']:>5}{s['fn']:>5}{precision:>11.3f}{recall:>9.3f}{flag}")
    fp_rate = benign_hits / benign if benign else 0.0
    print(f"benign lines: {benign}, with any finding: {benign_hits}, false-positive rate: {fp_rate:.2%}")
    if fp_rate > args.max_fp_rate:
        print(f"FAIL: benign false-positive rate above {args.max_fp_rate:.2%}")
        failed = True
    if not args.no_timing:
        for label, us in _timing(detector):
            print(f"scan time {label}: {us:,.0f} us")
    if failed:
        print("FAIL")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
