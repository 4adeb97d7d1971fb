"""Turn raw benchmark samples into paired statistics, target verdicts, a markdown table and a plot."""

from __future__ import annotations

import os
import platform
import statistics
from pathlib import Path
from typing import Any

OVERHEAD_WORKLOADS = ("mock_sync", "mock_async", "http_sync", "http_async", "http_stream")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100.0 * (len(ordered) - 1))))
    return ordered[index]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def machine_info() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_avg_at_end": os.getloadavg(),
    }


def summarise(cases: list[Any], samples: dict[str, dict[str, Any]], configs: dict[str, Any]) -> dict[str, Any]:
    """Per case and configuration: absolute numbers, and for instrumented ones the paired added cost."""
    out: dict[str, Any] = {}
    for case in cases:
        per_config = samples.get(case.key, {})
        bare = per_config.get("bare")
        entry: dict[str, Any] = {
            "section": case.section,
            "workload": case.workload,
            "prompt_bytes": case.prompt_bytes,
            "threads": case.threads,
            "tasks": case.tasks,
            "calls_per_block": case.n,
            "configs": {},
        }
        for name, s in per_config.items():
            all_times = [t / 1e3 for block in s.times_ns for t in block]
            if not all_times:
                continue
            stats: dict[str, Any] = {
                "rounds": len(s.times_ns),
                "calls": s.calls,
                "p50_us": percentile(all_times, 50),
                "p95_us": percentile(all_times, 95),
                "cpu_per_call_us": _median([c * 1e6 for c in s.cpu_per_call_s]),
                "wall_per_call_us": _median([w * 1e6 for w in s.wall_per_call_s]),
                "spans_per_call": s.spans / s.calls if s.calls else None,
                "spans_created_per_call": s.created / s.calls if s.calls else None,
            }
            if bare is not None and name != "bare":
                rounds = min(len(bare.times_ns), len(s.times_ns))
                diffs: list[float] = []
                median_diffs: list[float] = []
                for r in range(rounds):
                    base = statistics.median(bare.times_ns[r])
                    diffs.extend((t - base) / 1e3 for t in s.times_ns[r])
                    median_diffs.append((statistics.median(s.times_ns[r]) - base) / 1e3)
                cpu_diffs = [(s.cpu_per_call_s[r] - bare.cpu_per_call_s[r]) * 1e6 for r in range(rounds)]
                wall_diffs = [(s.wall_per_call_s[r] - bare.wall_per_call_s[r]) * 1e6 for r in range(rounds)]
                if diffs:
                    stats.update(
                        {
                            "added_p50_us": percentile(diffs, 50),
                            "added_p95_us": percentile(diffs, 95),
                            "added_round_median_us": statistics.median(median_diffs),
                            "added_round_iqr_us": [percentile(median_diffs, 25), percentile(median_diffs, 75)],
                            "added_cpu_per_call_us": statistics.median(cpu_diffs),
                            "added_cpu_iqr_us": [percentile(cpu_diffs, 25), percentile(cpu_diffs, 75)],
                            "added_wall_per_call_us": statistics.median(wall_diffs),
                        }
                    )
            entry["configs"][name] = stats
        out[case.key] = entry
    return out


def _case(results: dict[str, Any], section: str, workload: str, prompt_bytes: int = 100, **extra: int) -> Any:
    for entry in results["cases"].values():
        if (
            entry["section"] == section
            and entry["workload"] == workload
            and entry["prompt_bytes"] == prompt_bytes
            and all(entry.get(k) == v for k, v in extra.items())
        ):
            return entry
    return None


def _get(entry: Any, config: str, key: str) -> float | None:
    if entry is None:
        return None
    value = entry["configs"].get(config, {}).get(key)
    return float(value) if isinstance(value, (int, float)) else None


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the benchmark issue, per workload where it applies: value, threshold, met."""
    verdicts: list[dict[str, Any]] = []
    floor = _get(_case(results, "floor", "floor"), "floor", "p50_us")
    peers = [name for name, c in results["configs"].items() if c["kind"] == "peer"]

    def add(target: str, scope: str, value: float | None, threshold: float | None, detail: str = "") -> None:
        met = None if value is None or threshold is None else value <= threshold
        verdicts.append(
            {"target": target, "scope": scope, "value": value, "threshold": threshold, "met": met, "detail": detail}
        )

    for workload in OVERHEAD_WORKLOADS:
        entry = _case(results, "overhead", workload)
        ours = _get(entry, "ours_in", "added_p50_us")
        add("caller added p50 <= 2x floor (us)", workload, ours, 2 * floor if floor is not None else None)
        openllmetry = _get(entry, "openllmetry", "added_p50_us")
        if openllmetry is not None:
            add("caller added p50 <= 1/3 OpenLLMetry's (us)", workload, ours, max(openllmetry, 0.0) / 3,
                f"OpenLLMetry: {openllmetry:.1f} us")
        ours_cpu = _get(entry, "ours_in", "added_cpu_per_call_us")
        peer_cpu = {p: _get(entry, p, "added_cpu_per_call_us") for p in peers}
        peer_cpu = {p: v for p, v in peer_cpu.items() if v is not None}
        if peer_cpu:
            fastest = min(peer_cpu, key=lambda p: peer_cpu[p])
            add("added CPU/call (SQLite export incl.) <= 1/2 fastest peer (us)", workload, ours_cpu,
                max(peer_cpu[fastest], 0.0) / 2, f"fastest peer: {fastest} {peer_cpu[fastest]:.1f} us")
        add("sampled-out added p50 <= floor (us)", workload, _get(entry, "ours_out", "added_p50_us"), floor)
    for section, workload in (("content", "http_sync"), ("prompt_size", "mock_sync")):
        small = _get(_case(results, section, workload, 2048), "ours_redacted", "added_p50_us")
        large = _get(_case(results, section, workload, 51200), "ours_redacted", "added_p50_us")
        if small is not None and large is not None:
            add("redacted: 50 KB added p50 within 10% of 2 KB (us)", f"{workload} ({section})", large,
                small + abs(small) * 0.10, f"2 KB: {small:.1f} us, 50 KB: {large:.1f} us")
    sizes = sorted(
        (e["prompt_bytes"], e["configs"]["ours_redacted"]["added_p50_us"])
        for e in results["cases"].values()
        if e["section"] == "prompt_size" and "added_p50_us" in e["configs"].get("ours_redacted", {})
    )
    if len(sizes) >= 2:
        smallest, largest = sizes[0], sizes[-1]
        band = abs(smallest[1]) * 0.10 + (floor or 0.0)  # 10%, plus one floor of noise
        add(f"redacted: {_size(largest[0])} added p50 within 10% + 1 floor of {_size(smallest[0])} (us)",
            "mock_sync (prompt_size)", largest[1], smallest[1] + band,
            ", ".join(f"{_size(b)}: {v:.1f}" for b, v in sizes))
    for row in results.get("throughput", []):
        if row["sink"] in ("sqlite", "postgresql") and row.get("mode") == "export":
            add("export path >= 20,000 events/s (shown as -events/s)", row["sink"], -row["events_per_s"], -20_000.0,
                f"{row['events_per_s']:.0f} events/s, {row['cpu_per_event_us']:.0f} us CPU/event")
        if row["sink"] in ("sqlite", "postgresql") and row["queue_max_size"] == "default":
            add("full pipeline >= 20,000 events/s (shown as -events/s)", row["sink"], -row["events_per_s"], -20_000.0,
                f"{row['events_per_s']:.0f} events/s, dropped {row['dropped']}")
            samples = row["rss_samples_kb"]
            if len(samples) > 3:
                early = samples[2][1]
                late = samples[-1][1]
                add("memory flat: RSS growth 20%..100% of the run (MiB) <= 16", row["sink"],
                    (late - early) / 1024, 16.0, f"peak {row['peak_rss_kb'] / 1024:.0f} MiB")
    return verdicts


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def markdown(results: dict[str, Any]) -> str:
    configs = results["configs"]
    lines: list[str] = []
    lines.append(f"# leanllm-otel benchmarks, {results['date']}")
    lines.append("")
    machine = results["machine"]
    lines.append(
        f"Python {machine['python']}, {machine['cpus']} CPUs, {results['rounds']} interleaved rounds"
        f"{' (QUICK: numbers are not meaningful)' if results['quick'] else ''}. Added cost = instrumented minus "
        "bare LiteLLM, paired per round. Latency is on the caller's thread; CPU is the whole process "
        "(all threads, exporter flush included)."
    )
    floor_entry = _case(results, "floor", "floor")
    if floor_entry is not None:
        f = floor_entry["configs"].get("floor", {})
        lines.append("")
        lines.append(
            f"**Floor** (one SDK span, 12 attributes, SimpleSpanProcessor(InMemorySpanExporter)): "
            f"p50 {_fmt(f.get('p50_us'))} us, p95 {_fmt(f.get('p95_us'))} us, "
            f"CPU {_fmt(f.get('cpu_per_call_us'))} us/span"
        )
    lines.append("")
    lines.append("## Per-call overhead (100 B prompt)")
    lines.append("")
    lines.append(
        "| workload | configuration | added p50 us | added p95 us | paired round medians: median [IQR] us "
        "| added CPU us/call | spans/call | bare p50 us |"
    )
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for workload in OVERHEAD_WORKLOADS:
        entry = _case(results, "overhead", workload)
        if entry is None:
            continue
        bare_p50 = _get(entry, "bare", "p50_us")
        for name, stats in entry["configs"].items():
            if name == "bare":
                continue
            iqr = stats.get("added_round_iqr_us") or [None, None]
            lines.append(
                f"| {workload} | {configs[name]['label']} | {_fmt(stats.get('added_p50_us'))} | "
                f"{_fmt(stats.get('added_p95_us'))} | {_fmt(stats.get('added_round_median_us'))} "
                f"[{_fmt(iqr[0])}, {_fmt(iqr[1])}] | {_fmt(stats.get('added_cpu_per_call_us'))} | "
                f"{_fmt(stats.get('spans_per_call'), 2)} | {_fmt(bare_p50, 0)} |"
            )
    lines.append("")
    lines.append("## Content capture and prompt size (caller added p50 us / added CPU us per call)")
    lines.append("")
    lines.append("| section | workload | prompt | configuration | added p50 us | added p95 us | added CPU us/call |")
    lines.append("|---|---|---:|---|---:|---:|---:|")
    for entry in results["cases"].values():
        if entry["section"] not in ("content", "prompt_size"):
            continue
        for name, stats in entry["configs"].items():
            if name == "bare":
                continue
            lines.append(
                f"| {entry['section']} | {entry['workload']} | {_size(entry['prompt_bytes'])} | "
                f"{configs[name]['label']} | {_fmt(stats.get('added_p50_us'))} | {_fmt(stats.get('added_p95_us'))} | "
                f"{_fmt(stats.get('added_cpu_per_call_us'))} |"
            )
    lines.append("")
    lines.append("## Concurrency (leanllm-otel sampled-in vs bare)")
    lines.append("")
    lines.append(
        "| workload | threads | tasks | added p50 us | added p95 us | added wall/call us | added CPU us/call "
        "| bare wall/call us |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for entry in results["cases"].values():
        if entry["section"] not in ("threads", "tasks"):
            continue
        stats = entry["configs"].get("ours_in", {})
        lines.append(
            f"| {entry['workload']} | {entry['threads']} | {entry['tasks']} | {_fmt(stats.get('added_p50_us'))} | "
            f"{_fmt(stats.get('added_p95_us'))} | {_fmt(stats.get('added_wall_per_call_us'))} | "
            f"{_fmt(stats.get('added_cpu_per_call_us'))} | {_fmt(_get(entry, 'bare', 'wall_per_call_us'), 0)} |"
        )
    if results.get("throughput"):
        lines.append("")
        lines.append("## Export throughput (full pipeline, one producer thread)")
        lines.append("")
        lines.append(
            "`pipeline`: one thread produces spans on the pipeline's provider as fast as it can while the batch "
            "processor exports (both share the GIL); events/s = events stored / time until the final flush ends. "
            "`export`: the export path alone (render, map, write) on pre-made spans, in batches of `batch_size`."
        )
        lines.append("")
        lines.append(
            "| sink | mode | queue | spans | events/s | produced/s | dropped | exported | CPU us/event "
            "| peak RSS MiB | RSS 20% -> end MiB |"
        )
        lines.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for row in results["throughput"]:
            samples = row["rss_samples_kb"]
            early = samples[2][1] / 1024 if len(samples) > 2 else None
            lines.append(
                f"| {row['sink']} | {row.get('mode', 'pipeline')} | {row['queue_max_size']} | {row['n']:,} | "
                f"{row['events_per_s']:,.0f} | {_fmt(row.get('produced_per_s'), 0)} | {row['dropped']:,} | "
                f"{row['exported']:,} | {_fmt(row['cpu_s'] / max(1, row['n']) * 1e6, 0)} | "
                f"{row['peak_rss_kb'] / 1024:,.0f} | {_fmt(early, 0)} -> {samples[-1][1] / 1024:,.0f} |"
            )
    lines.append("")
    lines.append("## Targets")
    lines.append("")
    lines.append("| target | scope | value | threshold | met | detail |")
    lines.append("|---|---|---:|---:|---|---|")
    for t in results.get("targets", []):
        met = "n/a" if t["met"] is None else ("yes" if t["met"] else "**no**")
        lines.append(
            f"| {t['target']} | {t['scope']} | {_fmt(t['value'])} | {_fmt(t['threshold'])} | {met} | {t['detail']} |"
        )
    notes = [f"- {name}: {c['note']}" for name, c in configs.items() if c.get("note")]
    if notes:
        lines.append("")
        lines.append("Exporters:")
        lines.extend(notes)
    if results.get("log"):
        lines.append("")
        lines.append("Log:")
        lines.extend(f"- {line}" for line in results["log"])
    lines.append("")
    return "\n".join(lines)


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n // (1024 * 1024)} MB"
    if n >= 1024:
        return f"{n // 1024} KB"
    return f"{n} B"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = results["configs"]
    fig, axes = plt.subplots(2, 2, figsize=(15, 10))
    names = [n for n, c in configs.items() if c["kind"] in ("ours", "peer") and n != "ours_redacted"]
    workloads = [w for w in OVERHEAD_WORKLOADS if _case(results, "overhead", w) is not None]
    width = 0.8 / max(1, len(names))
    for ax, key, title in (
        (axes[0][0], "added_p50_us", "caller-thread added latency p50 (us, symlog)"),
        (axes[0][1], "added_cpu_per_call_us", "added CPU per call, all threads (us, symlog)"),
    ):
        for i, name in enumerate(names):
            values = [_get(_case(results, "overhead", w), name, key) or 0.0 for w in workloads]
            ax.bar([x + i * width for x in range(len(workloads))], values, width, label=configs[name]["label"])
        floor_key = "p50_us" if key == "added_p50_us" else "cpu_per_call_us"
        floor = _get(_case(results, "floor", "floor"), "floor", floor_key)
        if floor is not None:
            ax.axhline(floor, color="black", linestyle="--", linewidth=1, label="SDK span floor")
        ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(workloads))], workloads)
        ax.set_yscale("symlog", linthresh=10)
        ax.set_title(title)
        ax.legend(fontsize=8)
    ax = axes[1][0]
    for name in ("ours_in", "ours_redacted"):
        points = sorted(
            (e["prompt_bytes"], e["configs"][name]["added_p50_us"])
            for e in results["cases"].values()
            if e["section"] == "prompt_size" and "added_p50_us" in e["configs"].get(name, {})
        )
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=configs[name]["label"])
    ax.set_xscale("log")
    ax.set_xlabel("prompt bytes")
    ax.set_title("caller added p50 vs prompt size (mock_sync, us)")
    ax.legend(fontsize=8)
    ax = axes[1][1]
    rows = results.get("throughput", [])
    if rows:
        labels = [f"{r['sink']}\n{r.get('mode', 'pipeline')}\nq={r['queue_max_size']}" for r in rows]
        ax.bar(range(len(rows)), [r["events_per_s"] for r in rows], color="tab:green")
        ax.axhline(20_000, color="black", linestyle="--", linewidth=1, label="target 20,000/s")
        ax.set_xticks(range(len(rows)), labels, fontsize=8)
        ax.set_title("export throughput (events/s)")
        ax.legend(fontsize=8)
    fig.suptitle(f"leanllm-otel benchmarks {results['date']}{' (quick)' if results['quick'] else ''}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
