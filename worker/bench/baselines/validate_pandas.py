"""Baseline (a), the SDK's way: the steps of the SDK v3 default filecontents handler for
an Excel file, with pandas (openpyxl engine). Like the SDK, each check opens the
workbook again: required columns (sheet names, then read_excel with nrows=minRowsNumber),
required sheets (sheet names), minimum rows (sheet names, then read_excel again).

usage: validate_pandas.py --uploader MANIFEST FILE...
"""

import os

import pandas as pd
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


def excel_frames(path, validation):
    """The SDK's _get_excel_dfs: the only sheet, else each required sheet."""
    read = {
        "nrows": validation.get("minRowsNumber", 0),
        "skiprows": validation.get("headerStartsAt", 0),
    }
    sheets = pd.ExcelFile(path).sheet_names
    if len(sheets) == 1:
        return {sheets[0]: pd.read_excel(path, **read)}
    wanted = flat(validation.get("requiredSheets"))
    return {s: pd.read_excel(path, sheet_name=s, **read) for s in sheets if s in wanted}


def validate(path, validation):
    failures = []
    if validation.get("requiredColumns"):
        columns = [str(c) for df in excel_frames(path, validation).values() for c in df.columns]
        failures.append(required_items_message(columns, "columns", validation["requiredColumns"]))
    if validation.get("requiredSheets"):
        sheets = pd.ExcelFile(path).sheet_names
        failures.append(required_items_message(sheets, "sheets", validation["requiredSheets"]))
    min_rows = validation.get("minRowsNumber", 0)
    for name, df in excel_frames(path, validation).items():
        message = min_rows_message(name, df.shape[0], min_rows)
        if message:
            failures.append(message)
            break
    return file_response(os.path.basename(path), failures, validation)


def main():
    args = parse_args()
    validation = load_spec(args.uploader).get("validation", {})
    print_validation([validate(path, validation) for path in args.files])
    report_work_time()


if __name__ == "__main__":
    main()
