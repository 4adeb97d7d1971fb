"""Detection quality per type and per attack family, on the tuning data and on the held-apart data, and scan cost.

    python benchmarks/detector_quality.py [--corpus PATH] [--min-recall 0.95] [--max-fp-rate 0.01] [--verbose]
                                          [--no-timing] [--baseline-ref GIT_REF]

Three labelled sets (see ``tests/data/README.md``):

* ``detector_corpus.jsonl`` (``--corpus``): hand-written positives per detector type and benign look-alikes, written
  beside the patterns. Each line ``{"text", "expected": [TYPE, ...]}`` counts a true positive for every expected type
  reported, a false negative for every one missed, a false positive for every reported type not expected.
* ``injection_set.jsonl``: prompt-injection and jailbreak prompts and benign prompts collected from published
  packages, split into ``tune`` and ``held``: recall per attack family and false-positive rate per benign family,
  for the patterns alone, the learned scorer alone, and both (what the detector reports).
* ``multilocale_set.jsonl``: Faker values inside sentences in ten locales and benign look-alikes, ``tune`` and
  ``held``: the share of values ``redact()`` removes, per type and locale, and of look-alikes it alters.

Exits 1 when a corpus type's recall is below ``--min-recall``, the corpus' benign false-positive rate is above
``--max-fp-rate``, or a held-apart target is missed (injection recall >= 0.80 at <= 5% false positives; >= 98% of
structured values and 100% of phone numbers removed; <= 2% of look-alikes altered). The timing section prints
microseconds per KB of text for prose, text dense with findings and a jailbreak prompt, and, with
``--baseline-ref``, the same for the detector module at that git revision, measured in the same run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from leanllm_otel.processing.detection.scorer import SCORER_TYPE, default_scorer
from leanllm_otel.processing.detectors import Detector

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
DEFAULT_CORPUS = DATA / "detector_corpus.jsonl"
INJECTION_SET = DATA / "injection_set.jsonl"
MULTILOCALE_SET = DATA / "multilocale_set.jsonl"
SPLITS = ("tune", "held")

INJECTION_RECALL_TARGET = 0.80
INJECTION_FP_TARGET = 0.05
REMOVED_TARGET = 0.98
ALTERED_TARGET = 0.02


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file (split on newlines only: texts may hold U+2028)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


# ------------------------------------------------------------------------------------------------ corpus


def evaluate(corpus: Path, detector: Detector, verbose: bool = False) -> tuple[dict[str, dict[str, int]], int, int]:
    """Per-type tp/fp/fn counts, number of benign lines, and benign lines with any finding."""
    stats: dict[str, dict[str, int]] = defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0})
    benign = benign_hits = 0
    for lineno, row in enumerate(read_jsonl(corpus), 1):
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


def corpus_report(corpus: Path, detector: Detector, min_recall: float, max_fp: float, verbose: bool) -> bool:
    stats, benign, benign_hits = evaluate(corpus, detector, verbose)
    failed = False
    print(f"== labelled corpus {corpus.name} (written beside the patterns)")
    print(f"{'type':<22}{'tp':>5}{'fp':>5}{'fn':>5}{'precision':>11}{'recall':>9}")
    for t in sorted(stats):
        s = stats[t]
        precision = s["tp"] / (s["tp"] + s["fp"]) if s["tp"] + s["fp"] else 1.0
        support = s["tp"] + s["fn"]
        recall = s["tp"] / support if support else float("nan")
        flag = ""
        if support and recall < min_recall:
            flag, failed = "  <-- recall below target", True
        print(f"{t:<22}{s['tp']:>5}{s['fp']:>5}{s['fn']:>5}{precision:>11.3f}{recall:>9.3f}{flag}")
    fp_rate = benign_hits / benign if benign else 0.0
    print(f"benign lines: {benign}, with any finding: {benign_hits}, false-positive rate: {fp_rate:.2%}")
    if fp_rate > max_fp:
        print(f"FAIL: benign false-positive rate above {max_fp:.2%}")
        failed = True
    return failed


# ------------------------------------------------------------------------------------------------ injection


def injection_verdicts(detector: Detector, text: str) -> tuple[bool, bool]:
    """(an injection pattern fired, the scorer alone would report) for ``text``."""
    scorer = default_scorer()
    pattern = any(f.category == "injection" and f.type != SCORER_TYPE for f in detector.scan(text))
    scored = scorer is not None and scorer.find(text) is not None
    return pattern, scored


def injection_report(detector: Detector, path: Path, verbose_split: str | None) -> bool:
    rows = read_jsonl(path) if path.exists() else []
    failed = False
    for split in SPLITS:
        counts: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # n, pattern, scorer, either
        for row in rows:
            if row["split"] != split:
                continue
            pattern, scored = injection_verdicts(detector, row["text"])
            c = counts[(row["label"], row["family"])]
            c[0] += 1
            c[1] += pattern
            c[2] += scored
            c[3] += pattern or scored
            if verbose_split == split and (pattern or scored) != bool(row["label"]):
                print(f"  {split} {row['family']} label={row['label']} {row['source']}: {row['text'][:100]!r}")
        if not counts:
            continue
        print(f"== injection set, {split} split ({'held apart: never tuned on' if split == 'held' else 'tuning'})")
        print(f"{'family':<22}{'rows':>6}{'patterns':>10}{'scorer':>8}{'both':>8}")
        totals = {0: [0, 0, 0, 0], 1: [0, 0, 0, 0]}
        for (label, family), c in sorted(counts.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
            kind = "recall" if label else "fp rate"
            print(f"{family:<22}{c[0]:>6}{c[1] / c[0]:>10.3f}{c[2] / c[0]:>8.3f}{c[3] / c[0]:>8.3f}  ({kind})")
            totals[label] = [a + b for a, b in zip(totals[label], c, strict=True)]
        pos, neg = totals[1], totals[0]
        recall = pos[3] / pos[0] if pos[0] else float("nan")
        fp_rate = neg[3] / neg[0] if neg[0] else 0.0
        precision = pos[3] / (pos[3] + neg[3]) if pos[3] + neg[3] else 1.0
        print(
            f"attacks {pos[0]}: recall patterns {pos[1] / pos[0]:.3f}, scorer {pos[2] / pos[0]:.3f}, "
            f"both {recall:.3f}; benign {neg[0]}: false positives {fp_rate:.2%} "
            f"(patterns {neg[1] / neg[0]:.2%}); precision {precision:.3f}"
        )
        if split == "held" and (recall < INJECTION_RECALL_TARGET or fp_rate > INJECTION_FP_TARGET):
            target = f"recall >= {INJECTION_RECALL_TARGET}, fp <= {INJECTION_FP_TARGET:.0%}"
            print(f"FAIL: held-apart injection target ({target})")
            failed = True
    return failed


# ------------------------------------------------------------------------------------------------ multi-locale


def value_tokens(value: str) -> list[str]:
    """Alphanumeric runs of three or more characters: none may survive redaction."""
    out, cur = [], []
    for ch in value:
        if ch.isalnum():
            cur.append(ch)
        else:
            out.append("".join(cur))
            cur = []
    out.append("".join(cur))
    return [t for t in out if len(t) >= 3]


def multilocale_report(detector: Detector, path: Path, verbose_split: str | None) -> bool:
    rows = read_jsonl(path) if path.exists() else []
    failed = False
    for split in SPLITS:
        kept: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])  # removed-or-untouched, rows
        for row in rows:
            if row["split"] != split:
                continue
            redacted, _ = detector.redact(row["text"])
            if row["label"]:
                ok = all(tok not in redacted for tok in value_tokens(row["value"]))
                key = (row["type"], row["locale"] if row["type"] == "PHONE" else "*")
            else:
                ok = redacted == row["text"]
                key = ("look-alike", row["family"])
            kept[key][0] += ok
            kept[key][1] += 1
            if verbose_split == split and not ok:
                print(f"  {split} {key}: {row['text'][:90]!r} -> {redacted[:90]!r}")
        if not kept:
            continue
        print(f"== multi-locale values, {split} split ({'held apart' if split == 'held' else 'tuning'})")
        print(f"{'type':<20}{'locale':<16}{'rows':>6}{'removed':>9}")
        tot = {True: [0, 0], False: [0, 0]}
        phones = [0, 0]
        for (kind, sub), (ok, n) in sorted(kept.items()):
            label = "kept" if kind == "look-alike" else "removed"
            rate = ok / n
            print(f"{kind:<20}{sub:<16}{n:>6}{rate:>9.3f}" + ("" if label == "removed" else "  (left unchanged)"))
            is_pos = kind != "look-alike"
            tot[is_pos][0] += ok
            tot[is_pos][1] += n
            if kind == "PHONE":
                phones[0] += ok
                phones[1] += n
        removed = tot[True][0] / tot[True][1]
        altered = 1 - tot[False][0] / tot[False][1]
        phone_rate = phones[0] / phones[1] if phones[1] else 1.0
        print(
            f"values {tot[True][1]}: removed {removed:.2%} (phones {phone_rate:.2%}); "
            f"look-alikes {tot[False][1]}: altered {altered:.2%}"
        )
        if split == "held" and (removed < REMOVED_TARGET or altered > ALTERED_TARGET or phone_rate < 1.0):
            print("FAIL: held-apart redaction target (>= 98% removed, all phones, <= 2% look-alikes altered)")
            failed = True
    return failed


# ------------------------------------------------------------------------------------------------ timing

PROSE = "The committee reviewed the quarterly numbers and agreed to revisit the plan next week. "
DENSE = (
    "Hello team, the deployment of version 2.3.1 finished at 2024-01-15T10:20:30Z. Order #A-2024-000123 "
    "costs $1,234.56; contact jane.doe@example.com or +44 20 7946 0958. Please review the logs below.\n"
)


def _texts() -> list[tuple[str, str]]:
    jailbreak = next((r["text"] for r in read_jsonl(INJECTION_SET) if r["family"] == "roleplay"), PROSE)
    out = []
    for name, para in (("prose", PROSE), ("dense", DENSE), ("jailbreak", jailbreak + "\n")):
        for size in (2_000, 50_000):
            out.append((f"{name} {size // 1000} KB", (para * (size // len(para) + 1))[:size]))
    return out


def _per_kb(scans: list[Callable[[str], object]], text: str, rounds: int = 7) -> list[float]:
    """Microseconds per KB for each scan function: rounds alternate between them, the best round counts."""
    for scan in scans:
        scan(text)
    runs = max(3, int(100_000 / len(text)))
    best = [float("inf")] * len(scans)
    for _ in range(rounds):  # interleaved, best of several rounds: the machine is shared
        for i, scan in enumerate(scans):
            start = time.perf_counter()
            for _ in range(runs):
                scan(text)
            best[i] = min(best[i], (time.perf_counter() - start) / runs)
    return [b * 1e6 / (len(text) / 1000) for b in best]


def _baseline_detector(ref: str) -> Any:
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{ref}:src/leanllm_otel/processing/detectors.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_detectors.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("baseline_detectors", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["baseline_detectors"] = module
    spec.loader.exec_module(module)
    return module.Detector()


def timing_report(detector: Detector, baseline_ref: str | None) -> None:
    base = _baseline_detector(baseline_ref) if baseline_ref else None
    header = f"{'text':<18}{'us/KB':>9}"
    if base is not None:
        header += f"{'baseline us/KB':>16}{'ratio':>8}"
    against = f" vs {baseline_ref}" if base is not None else ""
    print(f"== scan cost (Detector.scan, best of 7 interleaved rounds){against}")
    print(header)
    for label, text in _texts():
        scans = [detector.scan] + ([base.scan] if base is not None else [])
        times = _per_kb(scans, text)
        line = f"{label:<18}{times[0]:>9.1f}"
        if base is not None:
            line += f"{times[1]:>16.1f}{times[0] / times[1]:>8.2f}"
        print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--min-recall", type=float, default=0.95)
    parser.add_argument("--max-fp-rate", type=float, default=0.01)
    parser.add_argument("--verbose", action="store_true", help="print every corpus line the detector got wrong")
    parser.add_argument("--misses", choices=["tune"], help="print the tuning split's misses (never the held split)")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--baseline-ref", help="also time the detector module at this git revision")
    args = parser.parse_args(argv)

    detector = Detector()
    failed = corpus_report(args.corpus, detector, args.min_recall, args.max_fp_rate, args.verbose)
    if args.corpus == DEFAULT_CORPUS:
        failed |= injection_report(detector, INJECTION_SET, args.misses)
        failed |= multilocale_report(detector, MULTILOCALE_SET, args.misses)
    if not args.no_timing:
        timing_report(detector, args.baseline_ref)
    if failed:
        print("FAIL")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
