"""The SDK's way of a component's xlsx download, for `make bench-api` (issue 12 §6).

What the SDK's `RegisteredComponents.download_component` does with a component whose
data handler runs an aggregation: `MongoRepository.execute_query` (pymongo's
`aggregate`, every row in a list) with the tenant's `$match` first, then
`create_file(..., "xlsx", rows)`: `utils/create_xlsx_file.py`, a pandas DataFrame of
the rows written by `pd.ExcelWriter` (XlsxWriter, the engine pandas picks first). The
SDK's own code, imported from its source (PYTHONPATH); nothing is re-implemented here.

Environment: BENCH_SDK_MONGO_URL, BENCH_SDK_DB, BENCH_COLLECTION, BENCH_TENANT,
BENCH_COMPONENT_ID, BENCH_PIPELINE (the component's stages, JSON), BENCH_OUT_DIR.
Prints one JSON line: the seconds of the read and of the write (imports apart), the
rows, the file, pandas' engine and the process's peak RSS.
"""

import json
import os
import resource
import time
import warnings
from types import SimpleNamespace

import pandas as pd
from pandas.io.excel._util import get_default_engine
from pymongo import MongoClient

from licenseware.repository.mongo_repository.mongo_repository import MongoRepository
from licenseware.utils.create_file import create_file


def main() -> None:
    env = os.environ
    tenant = env["BENCH_TENANT"]
    pipeline = [{"$match": {"tenant_id": tenant}}] + json.loads(env["BENCH_PIPELINE"])
    client = MongoClient(env["BENCH_SDK_MONGO_URL"])
    repo = MongoRepository(
        client[env["BENCH_SDK_DB"]], collection=env["BENCH_COLLECTION"], data_validator="ignore"
    )
    config = SimpleNamespace(FILE_UPLOAD_PATH=env["BENCH_OUT_DIR"])
    # pandas 1.5 warns that ExcelWriter.save() (the SDK's call) is deprecated.
    warnings.simplefilter("ignore", FutureWarning)

    started = time.perf_counter()
    rows = repo.execute_query(pipeline)
    read = time.perf_counter()
    filepath, _ = create_file(
        tenant, filename=env["BENCH_COMPONENT_ID"], filetype="xlsx", data=rows, config=config
    )
    written = time.perf_counter()

    print(
        json.dumps(
            {
                "read_s": read - started,
                "write_s": written - read,
                "rows": len(rows),
                "path": filepath,
                "engine": get_default_engine("xlsx", mode="writer"),
                "pandas": pd.__version__,
                "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
