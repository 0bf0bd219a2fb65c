"""The contestants of each part, how each is started, and how its answer is checked (a
fast wrong answer must not win)."""

import json
import os
import re
from dataclasses import dataclass

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
BASELINES = os.path.join(BENCH_DIR, "baselines")
XLSX_MANIFEST = os.path.join(BENCH_DIR, "manifests", "xlsx.uploader.yaml")
CSV_MANIFEST = os.path.join(BENCH_DIR, "manifests", "csv.uploader.yaml")
TENANT = "bench-tenant"

RUST = "rust"
OPENPYXL = "openpyxl read-only"
PANDAS = "pandas (SDK)"


@dataclass(frozen=True)
class Contestant:
    name: str
    is_python: bool
    command: tuple  # argv before the file path
    check: object  # (Run, expected_rows) -> None, or an error message


def _json_head(run):
    line = run.stdout_head.split(b"\n", 1)[0]
    try:
        return json.loads(line)
    except ValueError:
        return None


def check_validation(run, _rows):
    answer = _json_head(run)
    if not isinstance(answer, dict) or not isinstance(answer.get("validation"), list):
        return f"stdout is not a FileValidationResponse: {run.stdout_head[:200]!r}"
    failed = [v for v in answer["validation"] if v.get("status") != "success"]
    if failed or not answer["validation"]:
        return f"the valid file was not accepted: {answer['validation']!r}"
    return None


def check_document_lines(run, rows):
    if run.stdout_lines != rows:
        return f"{run.stdout_lines} document lines for {rows} rows"
    return None


def check_document_count(run, rows):
    answer = _json_head(run) or {}
    if answer.get("documents") != rows:
        return f"{answer.get('documents')} documents for {rows} rows"
    return None


def validation_contestants(worker_bin, python):
    script = lambda name: (python, os.path.join(BASELINES, name))  # noqa: E731
    return [
        Contestant(
            RUST, False, (worker_bin, "validate", "--uploader", XLSX_MANIFEST), check_validation
        ),
        Contestant(
            OPENPYXL,
            True,
            script("validate_openpyxl.py") + ("--uploader", XLSX_MANIFEST),
            check_validation,
        ),
        Contestant(
            PANDAS,
            True,
            script("validate_pandas.py") + ("--uploader", XLSX_MANIFEST),
            check_validation,
        ),
    ]


def processing_contestants(worker_bin, python, manifest):
    baseline = (python, os.path.join(BASELINES, "process_pandas.py"))
    args = ("--uploader", manifest, "--tenant", TENANT)
    return [
        Contestant(RUST, False, (worker_bin, "process") + args, check_document_lines),
        Contestant(PANDAS, True, baseline + args, check_document_count),
    ]


WORK_LINE = re.compile(r"BENCH work_s=([0-9.]+)")


def work_seconds(run):
    """The in-process time a Python baseline reports (after its imports), or None."""
    found = WORK_LINE.findall(run.stderr_tail)
    return float(found[-1]) if found else None
