#!/usr/bin/env python3
"""`make bench-worker`: the Rust worker against the SDK's Python stack, side by side in
one run. (a) validating an xlsx; (b) turning xlsx and CSV files into documents.

Each contestant runs as a child process, BENCH_REPEAT times, and is measured by wall
time and peak RSS (os.wait4). Prints a table, the "flat in file size" lines and the
issue's targets, and writes everything as JSON. See README.md next to this file.
"""

import argparse
import datetime
import hashlib
import os
import platform
import subprocess
import sys
import venv

import contestants as c
import datagen
import measure
import report

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REQUIREMENTS = os.path.join(BENCH_DIR, "requirements.txt")
LARGE_XLSX_ROWS = 1_000_000
LARGE_CSV_MB = 500


def sizes(text):
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args(argv):
    env = os.environ.get
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--worker-bin", default="target/release/licenseware-worker", help="the Rust contestant"
    )
    p.add_argument(
        "--only", choices=["a", "b"], help="run only part a (validation) or b (processing)"
    )
    p.add_argument(
        "--xlsx-rows", type=sizes, default=sizes(env("BENCH_XLSX_ROWS", "100000,1000000"))
    )
    p.add_argument("--csv-mb", type=sizes, default=sizes(env("BENCH_CSV_MB", "100,1000")))
    p.add_argument(
        "--xlsx-strings", choices=["shared", "inline"], default=env("BENCH_XLSX_STRINGS", "shared")
    )
    p.add_argument("--repeat", type=int, default=int(env("BENCH_REPEAT", "3")))
    p.add_argument(
        "--python-repeat-large",
        type=int,
        default=int(env("BENCH_PY_REPEAT_LARGE", "1")),
        help=f"Python runs on xlsx >= {LARGE_XLSX_ROWS} rows or CSV >= {LARGE_CSV_MB} MB",
    )
    p.add_argument(
        "--python-csv-max-mb",
        type=int,
        default=int(env("BENCH_PY_CSV_MAX_MB", "200")),
        help="skip pandas on bigger CSVs: to_dict of 10M rows needs well over 10 GB",
    )
    p.add_argument("--python-mem-limit-gb", type=float, default=float(env("BENCH_PY_MEM_GB", "10")))
    p.add_argument(
        "--contestants", default="rust,openpyxl,pandas", help="comma list of rust, openpyxl, pandas"
    )
    p.add_argument(
        "--cache-dir", default=env("BENCH_CACHE", os.path.expanduser("~/.cache/licenseware-bench"))
    )
    p.add_argument("--out", default="target/bench-worker/results.json")
    p.add_argument("--check-targets", action="store_true", help="exit 1 when a target is missed")
    p.add_argument(
        "--print-python",
        action="store_true",
        help="set up the baselines' venv, print its python, exit",
    )
    return p.parse_args(argv)


def log(message):
    print(message, file=sys.stderr, flush=True)


def ensure_venv(cache_dir):
    """The baselines' venv, created on first use and reinstalled when requirements.txt
    changes (its hash is kept next to the venv)."""
    root = os.path.join(cache_dir, "venv")
    python = os.path.join(root, "bin", "python")
    with open(REQUIREMENTS, "rb") as f:
        wanted = hashlib.sha256(f.read()).hexdigest()
    marker = os.path.join(root, ".requirements.sha256")
    if os.path.exists(marker) and open(marker, encoding="utf-8").read() == wanted:
        return python
    if not os.path.exists(python):
        log(f"creating the baselines' venv in {root}")
        venv.create(root, with_pip=True)
    log("installing the baselines' requirements (pip)")
    # pip talks on stderr: stdout of --print-python is the path alone.
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "-r", REQUIREMENTS], check=True, stdout=sys.stderr
    )
    with open(marker, "w", encoding="utf-8") as f:
        f.write(wanted)
    return python


def environment(args, python):
    versions = subprocess.run(
        [
            python,
            "-c",
            "import sys, pandas, openpyxl; "
            "print(sys.version.split()[0], pandas.__version__, openpyxl.__version__)",
        ],
        capture_output=True,
        text=True,
    ).stdout.split()
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "worker_bin": args.worker_bin,
        "python": versions[0] if versions else None,
        "pandas": versions[1] if len(versions) > 1 else None,
        "openpyxl": versions[2] if len(versions) > 2 else None,
        "repeat": args.repeat,
        "python_repeat_large": args.python_repeat_large,
        "xlsx_strings": args.xlsx_strings,
        "rss_by_gnu_time": args.gnu_time,
    }


def bench_file(part, task, label, kind, path, meta, field, args):
    """Runs every contestant on one file, interleaving the repetitions so that a slow
    drift of the machine spreads over all of them; returns one result per contestant."""
    large = (
        meta["rows"] >= LARGE_XLSX_ROWS if kind == "xlsx" else meta["bytes"] >= LARGE_CSV_MB * 1e6
    )
    results = []
    for who in field:
        reps = args.python_repeat_large if (who.is_python and large) else args.repeat
        result = {
            "part": part,
            "task": task,
            "file": label,
            "kind": kind,
            "path": path,
            "rows": meta["rows"],
            "bytes": meta["bytes"],
            "contestant": who.name,
            "status": "ok",
            "error": None,
            "runs": [],
            "planned_runs": max(reps, 1),
        }
        if who.is_python and kind == "csv" and meta["bytes"] > args.python_csv_max_mb * 1e6:
            result.update(
                status="skipped", error=f"bigger than --python-csv-max-mb {args.python_csv_max_mb}"
            )
        results.append(result)
    if not results:
        return []
    measure.warm_page_cache(path)
    limit = int(args.python_mem_limit_gb * 2**30)
    for rep in range(max(r["planned_runs"] for r in results)):
        for who, result in zip(field, results, strict=True):
            if result["status"] != "ok" or rep >= result["planned_runs"]:
                continue
            try:
                run = measure.run(
                    list(who.command) + [path],
                    mem_limit_bytes=limit if who.is_python else None,
                    use_gnu_time=args.gnu_time,
                )
            except OSError as error:
                result.update(status="failed", error=f"cannot start: {error}")
                continue
            problem = None if run.ok else f"exit {run.exit_code}: {run.stderr_tail.strip()[-300:]}"
            problem = problem or who.check(run, meta["rows"])
            log(
                f"  [{part}] {who.name:<20} {label:<22} run {rep + 1}: "
                f"{run.wall_s:8.3f} s {run.max_rss_mb:9.1f} MB"
                + (f"  {problem}" if problem else "")
            )
            if problem:
                result.update(status="failed", error=problem)
                continue
            result["runs"].append(
                {
                    "wall_s": run.wall_s,
                    "max_rss_mb": run.max_rss_mb,
                    "rss_exact": run.rss_exact,
                    "work_s": c.work_seconds(run),
                }
            )
    return [report.summarise(r) for r in results]


def pick(field, names):
    wanted = {"rust": c.RUST, "openpyxl": c.OPENPYXL, "pandas": c.PANDAS}
    chosen = {wanted[n.strip()] for n in names.split(",") if n.strip()}
    return [who for who in field if who.name in chosen]


def main(argv=None):
    args = parse_args(argv)
    if args.print_python:
        print(ensure_venv(args.cache_dir))
        return 0
    if "rust" in args.contestants and not os.access(args.worker_bin, os.X_OK):
        log(
            f"{args.worker_bin} is not an executable; build it "
            "(cargo build --release -p licenseware-worker) or pass --worker-bin"
        )
        return 2
    args.gnu_time = measure.gnu_time_available()
    if not args.gnu_time:
        log(
            f"{measure.GNU_TIME} (GNU time, Debian package `time`) is missing: "
            "peak RSS figures will be at least the driver's own RSS"
        )
    python = ensure_venv(args.cache_dir)
    data_dir = os.path.join(args.cache_dir, "data")
    results = []
    if args.only in (None, "a"):
        field = pick(c.validation_contestants(args.worker_bin, python), args.contestants)
        for rows in args.xlsx_rows:
            path, meta = datagen.cached_xlsx(data_dir, rows, args.xlsx_strings)
            log(
                f"(a) validation, {path} "
                f"({meta['bytes'] / 1e6:.1f} MB, generated in {meta['generation_s']} s)"
            )
            results += bench_file(
                "a", "validate", f"xlsx {rows:,} rows", "xlsx", path, meta, field, args
            )
    if args.only in (None, "b"):
        inputs = [("xlsx", rows, c.XLSX_MANIFEST) for rows in args.xlsx_rows]
        inputs += [("csv", mb, c.CSV_MANIFEST) for mb in args.csv_mb]
        for kind, size, manifest in inputs:
            field = pick(
                c.processing_contestants(args.worker_bin, python, manifest), args.contestants
            )
            if kind == "xlsx":
                path, meta = datagen.cached_xlsx(data_dir, size, args.xlsx_strings)
                label = f"xlsx {size:,} rows"
            else:
                path, meta = datagen.cached_csv(data_dir, size)
                label = f"csv {size:,} MB"
            log(
                f"(b) processing, {path} "
                f"({meta['rows']:,} rows, generated in {meta['generation_s']} s)"
            )
            results += bench_file("b", "process", label, kind, path, meta, field, args)
    report.add_ratios(results)
    checks = report.targets(results)
    print(report.table(results))
    print("\nFlat in file size:")
    print(report.checklist(report.flatness(results)) or "  (needs two sizes of a file kind)")
    print("\nTargets:")
    print(report.checklist(checks) or "  (nothing measured)")
    report.write_json(args.out, environment(args, python), results, checks)
    print(f"\nresults: {args.out}")
    if any(r["status"] == "failed" for r in results):
        return 1
    return 1 if args.check_targets and not all(ok for _, ok in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
