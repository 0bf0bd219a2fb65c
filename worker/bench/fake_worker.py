#!/usr/bin/env python3
"""A stand-in for target/release/licenseware-worker, to test the driver end to end
before the real `validate` and `process` exist: same arguments, same output shapes.

validate: reads the sheet names from xl/workbook.xml and answers success for each file.
process:  prints one `{"collection":..,"document":..}` line per data row (csv: lines
          after the header; xlsx: <row> elements of the first sheet after the header).
FAKE_WORKER_FAIL=1 makes it exit 1, like the placeholders, to test failure reporting.
"""

import json
import os
import re
import sys
import zipfile


def usage():
    sys.exit("usage: fake_worker.py validate|process --uploader M [--tenant T] FILE...")


def parse(argv):
    if not argv or argv[0] not in ("validate", "process"):
        usage()
    command, options, files = argv[0], {}, []
    rest = iter(argv[1:])
    for arg in rest:
        if arg.startswith("--"):
            options[arg[2:]] = next(rest, None)
        else:
            files.append(arg)
    if "uploader" not in options or not files:
        usage()
    return command, options, files


def sheet_names(path):
    with zipfile.ZipFile(path) as zf:
        return re.findall(r'<sheet [^>]*name="([^"]+)"', zf.read("xl/workbook.xml").decode())


def data_rows(path):
    """Number of data rows, read in chunks like a streaming reader would."""
    count, tail = 0, b""
    if path.endswith(".csv"):
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                count += chunk.count(b"\n")
        return max(count - 1, 0)
    with zipfile.ZipFile(path) as zf, zf.open("xl/worksheets/sheet1.xml") as f:
        while chunk := f.read(1 << 20):
            data = tail + chunk
            count += data.count(b"<row ")
            tail = data[-4:]  # a tag split across two chunks is counted once
    return max(count - 1, 0)


def main():
    command, options, files = parse(sys.argv[1:])
    if os.environ.get("FAKE_WORKER_FAIL") == "1":
        sys.exit(f"{command} is not built yet")
    if command == "validate":
        entries = []
        for path in files:
            ok = not path.endswith(".xlsx") or "Data" in sheet_names(path)
            entries.append(
                {
                    "status": "success" if ok else "failed",
                    "filename": os.path.basename(path),
                    "message": "File is valid" if ok else "no sheet Data",
                }
            )
        answer = {"status": "success", "message": "File names and contents were analysed"}
        print(json.dumps(dict(answer, validation=entries, event_id="fake")))
        return
    out = sys.stdout
    for path in files:
        for n in range(data_rows(path)):
            document = {"tenant_id": options.get("tenant"), "row": n}
            out.write(json.dumps({"collection": "Data", "document": document}) + "\n")


if __name__ == "__main__":
    main()
