"""Baseline (a), the careful Python developer: openpyxl in read-only mode, reading the
sheet names, the header row and at most minRowsNumber rows, then stopping.

usage: validate_openpyxl.py --uploader MANIFEST FILE...
"""

import os

import openpyxl
from rules import (
    file_response,
    flat,
    load_spec,
    min_rows_message,
    parse_args,
    print_validation,
    report_work_time,
    required_items_message,
)


def validate(path, validation):
    header_at = validation.get("headerStartsAt", 0)
    min_rows = validation.get("minRowsNumber", 0)
    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        names = workbook.sheetnames
        failures = []
        wanted_sheets = validation.get("requiredSheets")
        # The SDK's sheet selection: the only sheet, else the required ones.
        selected = names if len(names) == 1 else [n for n in names if n in flat(wanted_sheets)]
        columns, row_failure = [], None
        for name in selected:
            rows = workbook[name].iter_rows(min_row=header_at + 1, values_only=True)
            header = next(rows, ())
            columns.extend(str(c) for c in header if c is not None)
            found = 0
            for _ in rows:
                if found >= min_rows:
                    break  # enough rows seen: the rest of the sheet is never parsed
                found += 1
            row_failure = row_failure or min_rows_message(name, found, min_rows)
        if validation.get("requiredColumns"):
            failures.append(
                required_items_message(columns, "columns", validation["requiredColumns"])
            )
        if wanted_sheets:
            failures.append(required_items_message(names, "sheets", wanted_sheets))
        failures.append(row_failure)
        return file_response(os.path.basename(path), failures, validation)
    finally:
        workbook.close()


def main():
    args = parse_args()
    validation = load_spec(args.uploader).get("validation", {})
    print_validation([validate(path, validation) for path in args.files])
    report_work_time()


if __name__ == "__main__":
    main()
