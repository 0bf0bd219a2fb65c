"""The SDK baseline of `make bench-api`: the smallest FastAPI app that mounts the SDK's
own filename validation flow, `RegisteredUploaders.validate_filenames_flow`
(licenseware-sdk-v3, imported from its repository by e2e/bench/sdk-env), for one
uploader, at the path our API serves it: POST /{app_id}/uploads/{uploader}/validation
with a JSON list of names and the TenantId + Authorization headers.

The SDK's app template (app/api/defaults/uploader_router.py) is not in its repository;
this route follows what the README says it did: the uploader id as the path's enum
(`uploader_enum`), the flow called with the tenant, the authorization header and the
database, its WebResponse answered with its status code.

What the flow does per request, all SDK code: the filename rules, the quota
(`Quota.init` then `Quota.check`: two find_one, an insert_one the first time) and the
history record (an insert_one), on MongoDB through pymongo.

One stub, in process: the SDK's quota asks the auth service for the user
(`get_user_info`, an HTTP GET to AUTH_USER_INFO_URL per request). Here that function
verifies the request's JWT (HS256, PyJWT, the secret our API verifies with) and answers
from its claims, so the SDK does the token work our API does, without a network hop
to a service that does not exist here.

Started by bench_api as
  uvicorn sdk_api:app --workers 2 --loop uvloop --http httptools --no-access-log
with PYTHONPATH holding the SDK's source and this directory, and:
  BENCH_SDK_MONGO_URL, BENCH_SDK_DB   where the SDK's Quota and ProcessingHistory go
  BENCH_JWT_SECRET_FILE               the HS256 secret (trailing newlines stripped)
  BENCH_APP_ID, BENCH_UPLOADER_ID     the uploader's ids (uploader id with underscores)
  BENCH_SDK_VALIDATION                its UploaderValidationParameters, JSON, snake_case
  BENCH_FREE_QUOTA_UNITS              its free_quota_units
"""

import dataclasses
import importlib
import json
import os
from typing import List

import jwt
from fastapi import FastAPI, Header
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pymongo import MongoClient

from licenseware.config.config import Config
from licenseware.uploader.registered_uploaders import RegisteredUploaders
from licenseware.uploader.uploader import NewUploader
from licenseware.uploader.validation_parameters import UploaderValidationParameters

APP_ID = os.environ["BENCH_APP_ID"]
UPLOADER_ID = os.environ["BENCH_UPLOADER_ID"]
with open(os.environ["BENCH_JWT_SECRET_FILE"], "rb") as f:
    SECRET = f.read().rstrip(b"\r\n")


def get_user_info(tenant_id: str, authorization: str, config: Config) -> dict:
    """The auth service's answer (auth/users/tables), in process: the token verified,
    the user taken from its claims."""
    token = authorization.split(" ", 1)[1] if " " in authorization else authorization
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], leeway=30)
    if tenant_id not in claims.get("tenants", []):
        raise Exception("the token does not grant this tenant")
    return {
        "user": {"id": claims["sub"], "plan_type": claims.get("plan_type") or "Free"},
        "tenants": [{"id": tenant_id}],
        "shared_tenants": [],
    }


# `licenseware.quota.quota` is shadowed by a name in the package: take the module itself.
importlib.import_module("licenseware.quota.quota").get_user_info = get_user_info

config = Config(APP_ID=APP_ID, MONGO_DBNAME=os.environ["BENCH_SDK_DB"])
database = MongoClient(os.environ["BENCH_SDK_MONGO_URL"])[os.environ["BENCH_SDK_DB"]]

known = {field.name for field in dataclasses.fields(UploaderValidationParameters)}
validation = {
    key: value
    for key, value in json.loads(os.environ["BENCH_SDK_VALIDATION"]).items()
    if key in known
}
uploader = NewUploader(
    name="RVTools",
    description="The uploader of the benchmark",
    uploader_id=UPLOADER_ID,
    accepted_file_types=(".xls", ".xlsx"),
    config=config,
    redis_cache=None,
    worker=lambda event: None,
    free_quota_units=int(os.environ.get("BENCH_FREE_QUOTA_UNITS", "1")),
    validation_parameters=UploaderValidationParameters(**validation),
)
registered_uploaders = RegisteredUploaders(
    [uploader],
    registry_updater=lambda: None,
    producer=None,
    config=config,
    redis_cache=None,
    mongodb_connection=database,
)
UploaderEnum = registered_uploaders.uploader_enum

app = FastAPI()


@app.post(f"/{APP_ID}/uploads/{{uploader_id}}/validation")
def validate_filenames(
    uploader_id: UploaderEnum,
    filenames: List[str],
    tenantid: str = Header(),
    authorization: str = Header(),
):
    response = registered_uploaders.validate_filenames_flow(
        tenantid, authorization, database, uploader_id, filenames
    )
    return JSONResponse(
        status_code=response.status_code, content=jsonable_encoder(response.content)
    )


@app.get("/hello")
async def hello():
    """FastAPI's hello world on the same server, for scale."""
    return {"status": "ok"}
