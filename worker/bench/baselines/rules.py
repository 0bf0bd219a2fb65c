"""What the Python baselines share: reading the Uploader manifest (the very file the Rust
worker gets, so both sides apply the same rule), the SDK's required-items check, the
SDK's response shapes, and the `work_s` line the driver reads from stderr.

The checks follow the SDK v3 default filecontents handler (see
/work/shared/reference/licenseware-sdk-behaviour.md §1.7), written in our own words.
"""

import argparse
import json
import sys
import time

import yaml

STARTED = time.perf_counter()  # after the imports of the script that imported us


def load_spec(path):
    """The spec of the first Uploader document of a manifest file."""
    with open(path, encoding="utf-8") as f:
        for doc in yaml.safe_load_all(f):
            if doc and doc.get("kind") == "Uploader":
                return doc["spec"]
    sys.exit(f"{path} has no Uploader document")


def parse_args(with_tenant=False):
    parser = argparse.ArgumentParser()
    parser.add_argument("--uploader", required=True)
    if with_tenant:
        parser.add_argument("--tenant", required=True)
    parser.add_argument("files", nargs="+")
    return parser.parse_args()


def flat(groups):
    return [item for group in groups or [] for item in group]


def required_items_message(items, item_type, required):
    """None when `items` satisfy `required` (alternatives: any inner list fully
    present), otherwise the SDK's failure message."""
    present = set(items)
    if any(set(group) <= present for group in required):
        return None
    return f"File doesn't contain the following needed {item_type}: {required!r}"


def min_rows_message(sheet, found, wanted):
    if found >= wanted:
        return None
    return f"Sheet {sheet} doesn't have the minimum number of rows: {wanted}"


def file_response(filename, failures, validation):
    failures = [f for f in failures if f]
    if failures:
        return {"status": "failed", "filename": filename, "message": ", ".join(failures)}
    message = validation.get("filenameValidMessage", "File is valid")
    return {"status": "success", "filename": filename, "message": message}


def print_validation(entries):
    print(
        json.dumps(
            {
                "status": "success",
                "message": "File names and contents were analysed",
                "validation": entries,
                "event_id": "00000000-0000-4000-8000-000000000000",
            }
        )
    )


def report_work_time():
    """The time spent after the imports, for the driver: it shows how much of a Python
    run is interpreter and pandas start-up."""
    print(f"BENCH work_s={time.perf_counter() - STARTED:.6f}", file=sys.stderr)
