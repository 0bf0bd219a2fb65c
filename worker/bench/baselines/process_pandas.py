"""Baseline (b), the SDK's way of turning a file into documents: pandas read_excel or
read_csv of the whole table, keep and rename the mapped columns, astype each to its
type, to_dict("records"), and add the fields every stored document carries.

It stops at the list of dicts (the SDK would hand them to pymongo); the Rust worker
also serialises each document to a JSON line, so this baseline does less work.

usage: process_pandas.py --uploader MANIFEST --tenant ID FILE...
"""

import datetime
import os

import pandas as pd
from rules import load_spec, parse_args, report_work_time

EXCEL_SUFFIXES = (".xlsx", ".xls", ".xlsm", ".xlsb", ".ods")


def read_table(path, table):
    skip = table.get("headerStartsAt", 0)
    if not path.lower().endswith(EXCEL_SUFFIXES):
        return pd.read_csv(path, skiprows=skip)
    present = pd.ExcelFile(path).sheet_names
    sheet = next((s for s in table.get("sheets") or present[:1] if s in present), None)
    if sheet is None:
        return None
    return pd.read_excel(path, sheet_name=sheet, skiprows=skip)


def convert(series, value_type):
    if value_type == "integer":
        return series.astype("int64")
    if value_type == "number":
        return series.astype("float64")
    if value_type == "bool":
        return series.astype("bool")
    if value_type == "date":
        return pd.to_datetime(series)
    return series.astype("str")


def documents(path, table, meta):
    df = read_table(path, table)
    if df is None:
        return []
    columns = table["columns"]
    df = df[[c["from"] for c in columns]].rename(columns={c["from"]: c["to"] for c in columns})
    for c in columns:
        df[c["to"]] = convert(df[c["to"]], c.get("type", "string"))
    records = df.to_dict("records")
    fields = dict(meta, source_file=os.path.basename(path))
    if table.get("documentType"):
        fields["document_type"] = table["documentType"]
    for record in records:
        record.update(fields)
    return records


def main():
    args = parse_args(with_tenant=True)
    spec = load_spec(args.uploader)
    meta = {
        "tenant_id": args.tenant,
        "app_id": spec.get("appId"),
        "uploader_id": spec.get("uploaderId"),
        "event_id": "bench",
        "updated_at": datetime.datetime.now(datetime.UTC).isoformat(),
    }
    count = 0
    for path in args.files:
        for table in spec.get("processing", {}).get("tables", []):
            count += len(documents(path, table, meta))
    print(f'{{"documents": {count}}}')
    report_work_time()


if __name__ == "__main__":
    main()
