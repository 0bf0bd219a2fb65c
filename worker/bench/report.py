"""Summaries of the measured runs: the table, the "flat in file size" lines, the targets
of the issue, and the JSON file."""

import json
import os
import statistics

from contestants import PANDAS, RUST

# "Flat": for a file 10 times bigger, the metric may grow by at most half, plus a small
# absolute slack so that millisecond noise or a few allocator pages do not count.
FLAT_FACTOR = 1.5
FLAT_SLACK = {"median_s": 0.005, "peak_rss_mb": 5.0}
VALIDATION_SPEEDUP_TARGET = 50
PROCESSING_SPEEDUP_TARGET = 10
CSV_RSS_TARGET_MB = 100


def summarise(result):
    """Fills the medians, peak and rows/s of one contestant-on-file result."""
    runs = result["runs"]
    if not runs or result["status"] != "ok":
        return result
    result["median_s"] = statistics.median(r["wall_s"] for r in runs)
    result["peak_rss_mb"] = max(r["max_rss_mb"] for r in runs)
    works = [r["work_s"] for r in runs if r.get("work_s") is not None]
    result["median_work_s"] = statistics.median(works) if works else None
    if result["part"] == "b":
        result["rows_per_s"] = result["rows"] / result["median_s"]
    return result


def add_ratios(results):
    """Each contestant's median time divided by Rust's on the same file and task."""
    rust = {
        (r["part"], r["file"]): r["median_s"]
        for r in results
        if r["contestant"] == RUST and r.get("median_s")
    }
    for r in results:
        base = rust.get((r["part"], r["file"]))
        r["ratio_vs_rust"] = r["median_s"] / base if base and r.get("median_s") else None


def _fmt(value, pattern, missing="-"):
    return missing if value is None else pattern.format(value)


def table(results):
    head = (
        "part",
        "contestant",
        "file",
        "runs",
        "median s",
        "rows/s",
        "peak RSS MB",
        "vs rust",
        "py work s",
    )
    rows = [head]
    for r in results:
        if r["status"] != "ok":
            rows.append(
                (
                    r["part"],
                    r["contestant"],
                    r["file"],
                    str(len(r["runs"])),
                    r["status"],
                    "",
                    "",
                    "",
                    "",
                )
            )
            continue
        rows.append(
            (
                r["part"],
                r["contestant"],
                r["file"],
                str(len(r["runs"])),
                _fmt(r.get("median_s"), "{:.3f}"),
                _fmt(r.get("rows_per_s"), "{:,.0f}"),
                _fmt(r.get("peak_rss_mb"), "{:.1f}"),
                _fmt(r.get("ratio_vs_rust"), "{:.1f}x"),
                _fmt(r.get("median_work_s"), "{:.3f}"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  {r['contestant']} on {r['file']}: {r['error']}" for r in results if r.get("error")]
    return "\n".join(lines + (["", "Not run or failed:"] + notes if notes else []))


def _ok(results, part, contestant, kind):
    found = [
        r
        for r in results
        if r["part"] == part
        and r["contestant"] == contestant
        and r["kind"] == kind
        and r["status"] == "ok"
    ]
    return sorted(found, key=lambda r: r["bytes"])


def _flat_line(label, small, big, metric, unit):
    a, b = small[metric], big[metric]
    flat = b <= a * FLAT_FACTOR + FLAT_SLACK[metric]
    verdict = "flat" if flat else "NOT flat"
    growth = b / max(a, 1e-9)
    line = f"{label}: {a:.3f} {unit} on {small['file']} -> {b:.3f} {unit} on {big['file']}"
    return f"{line} (x{growth:.2f}): {verdict}", flat


def flatness(results):
    """(label, passed) pairs: Rust validation time and RSS across xlsx sizes, and Rust
    processing RSS across CSV sizes (and time per row, for information)."""
    checks = []
    rust_a = _ok(results, "a", RUST, "xlsx")
    if len(rust_a) >= 2:
        checks.append(
            _flat_line("(a) Rust validation time", rust_a[0], rust_a[-1], "median_s", "s")
        )
        checks.append(
            _flat_line("(a) Rust validation peak RSS", rust_a[0], rust_a[-1], "peak_rss_mb", "MB")
        )
    rust_csv = _ok(results, "b", RUST, "csv")
    if len(rust_csv) >= 2:
        checks.append(
            _flat_line(
                "(b) Rust CSV processing peak RSS", rust_csv[0], rust_csv[-1], "peak_rss_mb", "MB"
            )
        )
    rust_xlsx = _ok(results, "b", RUST, "xlsx")
    if len(rust_xlsx) >= 2:
        checks.append(
            _flat_line(
                "(b) Rust xlsx processing peak RSS",
                rust_xlsx[0],
                rust_xlsx[-1],
                "peak_rss_mb",
                "MB",
            )
        )
    return checks


def _speedups(results, part, target):
    checks = []
    for r in results:
        if r["part"] == part and r["contestant"] == PANDAS and r.get("ratio_vs_rust"):
            ok = r["ratio_vs_rust"] >= target
            label = (
                f"({part}) Rust vs pandas (SDK) on {r['file']}: "
                f"{r['ratio_vs_rust']:.1f}x faster (target {target}x)"
            )
            checks.append((label, ok))
    return checks


def targets(results):
    """The issue's targets as (label, passed) pairs; only those measured in this run."""
    checks = _speedups(results, "a", VALIDATION_SPEEDUP_TARGET)
    checks += [c for c in flatness(results) if c[0].startswith("(a)")]
    checks += _speedups(results, "b", PROCESSING_SPEEDUP_TARGET)
    rust_csv = _ok(results, "b", RUST, "csv")
    if rust_csv:
        big = rust_csv[-1]
        ok = big["peak_rss_mb"] < CSV_RSS_TARGET_MB
        label = (
            f"(b) Rust CSV peak RSS on {big['file']}: {big['peak_rss_mb']:.1f} MB "
            f"(target under {CSV_RSS_TARGET_MB} MB for 1 GB)"
        )
        checks.append((label, ok))
    checks += [c for c in flatness(results) if c[0].startswith("(b) Rust CSV")]
    return checks


def checklist(checks):
    return "\n".join(f"  [{'PASS' if ok else 'FAIL'}] {label}" for label, ok in checks)


def write_json(path, environment, results, checks):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    document = {
        "environment": environment,
        "results": results,
        "checks": [{"check": label, "passed": ok} for label, ok in checks],
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=2)
        f.write("\n")
