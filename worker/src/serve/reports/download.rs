//! Downloads, under `/{app_id}/`:
//! - `GET|POST /report-components/{component}/download?filetype=json|csv|xlsx`: the
//!   component's rows for the caller's tenant, with the same filters, tenant match and
//!   time limit as its data;
//! - `GET|POST /reports/{report}/download[?filetype=xlsx]`: the whole report as one
//!   workbook, a sheet per component in the report's order.
//!
//! Streamed as attachments in constant memory, where the SDK wrote each download to a
//! fixed path of the tenant's (two downloads overwrote each other) and answered with
//! that path: rows come from the MongoDB cursor a batch at a time; JSON and CSV are
//! written row by row into the response; xlsx sheets use rust_xlsxwriter's
//! constant-memory mode, whose rows wait in a private temporary file per sheet (made
//! unnamed by `tempfile`, so no other request can open it and it is gone when the
//! request ends, even if the process dies), then the workbook is zipped straight into
//! the response. A download has its own row cap, [`DOWNLOAD_MAX_ROWS`] per component.

use std::{io, time::Duration};

use axum::{
    body::{Body, Bytes},
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures::TryStreamExt;
use mongodb::{Cursor, bson::Document};
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::{
    AGGREGATE_MAX_TIME, CLIENT_MAX_TIME,
    export::{self, Cell, Filetype},
    filters, metadata,
    metadata::Target,
    mongo_error,
    query::{self, MAX_SKIP, Paging},
    refused, too_slow,
};
use crate::processing::PlainJsonDocument;
use crate::serve::{
    auth::Caller,
    error::ApiError,
    openapi::{FailBody, FilterBody},
    state::AppState,
};

/// Rows of one component in a download (and Excel's sheet holds 1,048,576 rows).
pub const DOWNLOAD_MAX_ROWS: u64 = 1_000_000;
/// Rows MongoDB returns per batch: what a download holds at once.
const BATCH: u32 = 1_000;
/// Bytes gathered before they are sent as one chunk of the response.
const CHUNK: usize = 64 << 10;
/// Chunks waiting for a slow client before the writer waits (bounded memory).
const CHUNKS_IN_FLIGHT: usize = 4;

/// A download's query. `filetype` is the SDK's name (v3 `download_component`);
/// `format` and v2's `download_as` are taken too.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DownloadQuery {
    #[serde(alias = "format", alias = "download_as")]
    pub filetype: Option<String>,
    pub limit: Option<u64>,
    pub skip: Option<u64>,
    pub filters: Option<String>,
}

impl DownloadQuery {
    fn filetype(&self, default: Option<Filetype>) -> Result<Filetype, ApiError> {
        let bad = || {
            refused(
                "BadFiletype",
                "filetype must be one of json, csv, xlsx (a report: xlsx)".to_owned(),
            )
        };
        match self.filetype.as_deref() {
            Some(text) => serde_json::from_value(serde_json::Value::String(text.to_lowercase()))
                .map_err(|_| bad()),
            None => default.ok_or_else(bad),
        }
    }

    fn paging(&self) -> Result<Paging, ApiError> {
        let limit = self.limit.unwrap_or(DOWNLOAD_MAX_ROWS);
        if !(1..=DOWNLOAD_MAX_ROWS).contains(&limit) {
            return Err(refused(
                "BadLimit",
                format!("limit is from 1 to {DOWNLOAD_MAX_ROWS} (the default); page with skip"),
            ));
        }
        let skip = self.skip.unwrap_or(0);
        if skip > MAX_SKIP {
            return Err(refused("BadSkip", format!("skip is at most {MAX_SKIP}")));
        }
        Ok(Paging { skip, limit })
    }
}

/// One component's rows, opened: its cursor has run the aggregation's first batch, so
/// a refused or too slow aggregation is an error status, not a broken download.
struct Opened {
    name: String,
    cursor: Cursor<Document>,
    limit: u64,
}

/// Runs `target`'s pipeline for `tenant` with `filters`.
async fn open(
    state: &AppState,
    tenant: &str,
    target: &Target,
    filters: &[filters::FilterItem],
    paging: Paging,
) -> Result<Opened, ApiError> {
    let user_match = filters::to_match(filters, &target.allowed)?;
    let pipeline = query::pipeline(tenant, user_match, &target.data, paging)?;
    let collection = state.database.collection::<Document>(&target.data.collection);
    let cursor = collection.aggregate(pipeline).max_time(AGGREGATE_MAX_TIME).batch_size(BATCH);
    let cursor = tokio::time::timeout(CLIENT_MAX_TIME, cursor)
        .await
        .map_err(|_| too_slow())?
        .map_err(mongo_error)?;
    Ok(Opened { name: target.component_id.clone(), cursor, limit: paging.limit })
}

#[utoipa::path(
    method(get, post), path = "/{app_id}/report-components/{component}/download", tag = "reports",
    params(
        ("app_id" = String, Path, description = "The app id, e.g. ifmp-service"),
        ("component" = String, Path, description = "The component id in dash form, e.g. devices-by-os (the id is accepted too)"),
        ("filetype" = String, Query, description = "json, csv or xlsx (`format` and `download_as` are taken too)"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1_000_000, description = "Rows to write; default and cap 1,000,000"),
        ("skip" = Option<u64>, Query, maximum = 1_000_000_000, description = "Rows to skip: pages past the cap"),
        ("filters" = Option<String>, Query, description = "GET: the filters list as JSON (POST sends it as the body)"),
    ),
    request_body(content = Option<Vec<FilterBody>>, description = "The SDK's filters, as for the component's data"),
    responses(
        (status = 200, description = "The rows as an attachment (Content-Disposition), streamed. CSV and xlsx columns are the fields of the first 1,000 rows; nested values are JSON text", content(
            (Vec<Object> = "application/json"),
            (String = "text/csv"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        )),
        (status = 400, description = "A bad filetype, filters, limit or skip", body = FailBody),
        (status = 401, description = "Bad or expired token", body = FailBody),
        (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 404, description = "No such component", body = FailBody),
        (status = 503, description = "MongoDB is unavailable, or the aggregation took longer than its time limit", body = FailBody),
    )
)]
pub async fn component(
    State(state): State<AppState>,
    Path((app_id, component)): Path<(String, String)>,
    caller: Caller,
    query: Result<Query<DownloadQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = caller.require_tenant()?;
    let target = metadata::component_target(&state.registry, &app_id, &component)?;
    component_download(&state, tenant.as_str(), &target, query, &body).await
}

#[utoipa::path(
    method(get, post), path = "/{app_id}/reports/{report}/{component}/download", tag = "reports",
    operation_id = "report_component_download",
    params(
        ("app_id" = String, Path, description = "The app id, e.g. ifmp-service"),
        ("report" = String, Path, description = "The report id in dash form (the id is accepted too)"),
        ("component" = String, Path, description = "A component the report shows, in dash form (the id is accepted too)"),
        ("filetype" = String, Query, description = "json, csv or xlsx (`format` and `download_as` are taken too)"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1_000_000, description = "Rows to write; default and cap 1,000,000"),
        ("skip" = Option<u64>, Query, maximum = 1_000_000_000, description = "Rows to skip: pages past the cap"),
        ("filters" = Option<String>, Query, description = "GET: the filters list as JSON (POST sends it as the body), on the report's and the component's filters"),
    ),
    request_body(content = Option<Vec<FilterBody>>, description = "The SDK's filters, as for the report's component data"),
    responses(
        (status = 200, description = "As /report-components/{component}/download, for a component of the report", content(
            (Vec<Object> = "application/json"),
            (String = "text/csv"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        )),
        (status = 400, description = "A bad filetype, filters, limit or skip", body = FailBody),
        (status = 401, description = "Bad or expired token", body = FailBody),
        (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 404, description = "No such report, or a component it does not show", body = FailBody),
        (status = 503, description = "MongoDB is unavailable, or the aggregation took longer than its time limit", body = FailBody),
    )
)]
pub async fn report_component(
    State(state): State<AppState>,
    Path((app_id, report, component)): Path<(String, String, String)>,
    caller: Caller,
    query: Result<Query<DownloadQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = caller.require_tenant()?;
    let target = metadata::report_component_target(&state.registry, &app_id, &report, &component)?;
    component_download(&state, tenant.as_str(), &target, query, &body).await
}

/// The rows of `target` for `tenant` as an attachment of the asked filetype.
async fn component_download(
    state: &AppState,
    tenant: &str,
    target: &Target,
    query: Result<Query<DownloadQuery>, QueryRejection>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|rejection| refused("BadQuery", rejection.body_text()))?;
    let filetype = query.filetype(None)?;
    let paging = query.paging()?;
    let filters = filters::from_request(query.filters.as_deref(), body)?;
    let opened = open(state, tenant, target, &filters, paging).await?;
    state.metrics.download(filetype.extension());
    let name = export::file_name(&target.component_id, filetype);
    let (sender, body) = channel_body();
    match filetype {
        Filetype::Json => {
            tokio::spawn(async move { finish(&sender, write_json(opened, &sender).await).await });
        }
        Filetype::Csv => {
            tokio::spawn(async move { finish(&sender, write_csv(opened, &sender).await).await });
        }
        Filetype::Xlsx => spawn_workbook(vec![opened], sender),
    }
    Ok(attachment(filetype, &name, body))
}

#[utoipa::path(
    method(get, post), path = "/{app_id}/reports/{report}/download", tag = "reports",
    params(
        ("app_id" = String, Path, description = "The app id, e.g. ifmp-service"),
        ("report" = String, Path, description = "The report id in dash form (the id is accepted too)"),
        ("filetype" = Option<String>, Query, description = "xlsx, the only type of a whole report (the default)"),
        ("filters" = Option<String>, Query, description = "GET: the report's filters list as JSON (POST sends it as the body), applied to every component"),
    ),
    request_body(content = Option<Vec<FilterBody>>, description = "The report's filters, applied to every component"),
    responses(
        (status = 200, description = "The report as one xlsx attachment, a sheet per component (names cut to Excel's 31 characters, unique), at most 1,000,000 rows each", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 400, description = "A filetype other than xlsx, or bad filters", body = FailBody),
        (status = 401, description = "Bad or expired token", body = FailBody),
        (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 404, description = "No such report", body = FailBody),
        (status = 503, description = "MongoDB is unavailable, or an aggregation took longer than its time limit", body = FailBody),
    )
)]
pub async fn report(
    State(state): State<AppState>,
    Path((app_id, report)): Path<(String, String)>,
    caller: Caller,
    query: Result<Query<DownloadQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = caller.require_tenant()?;
    let document = metadata::find_report(&state.registry, &app_id, &report)?;
    let report_id = document
        .get("report_id")
        .and_then(serde_json::Value::as_str)
        .unwrap_or(report.as_str())
        .to_owned();
    let Query(query) = query.map_err(|rejection| refused("BadQuery", rejection.body_text()))?;
    if query.filetype(Some(Filetype::Xlsx))? != Filetype::Xlsx {
        return Err(refused("BadFiletype", "a report downloads as xlsx only".to_owned()));
    }
    let filters = filters::from_request(query.filters.as_deref(), &body)?;
    let paging = Paging { skip: 0, limit: DOWNLOAD_MAX_ROWS };
    let mut sheets = Vec::new();
    for component in metadata::report_component_ids(&document) {
        let target =
            metadata::report_component_target(&state.registry, &app_id, &report_id, &component)?;
        sheets.push(open(&state, tenant.as_str(), &target, &filters, paging).await?);
    }
    state.metrics.download(Filetype::Xlsx.extension());
    let (sender, body) = channel_body();
    spawn_workbook(sheets, sender);
    Ok(attachment(Filetype::Xlsx, &export::file_name(&report_id, Filetype::Xlsx), body))
}

type Chunks = mpsc::Sender<Result<Bytes, io::Error>>;

/// A response body fed through a bounded channel: the writer waits while the client
/// is slow, and stops when the client goes (its sends fail).
fn channel_body() -> (Chunks, Body) {
    let (sender, receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    (sender, Body::from_stream(stream))
}

fn attachment(filetype: Filetype, name: &str, body: Body) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(filetype.content_type()));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    // A tenant's rows: never kept by a shared cache.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    response
}

/// Why a download stopped after its response began: the client sees a broken
/// transfer (never a file that looks whole), the log says why.
#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error("the client went away")]
    Gone,
    #[error("MongoDB: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error("MongoDB did not answer within {0:?}")]
    Stalled(Duration),
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing xlsx: {0}")]
    Xlsx(#[from] XlsxError),
    #[error("serializing a row: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the workbook writer stopped: {0}")]
    Task(String),
}

async fn finish(sender: &Chunks, outcome: Result<(), StreamError>) {
    match outcome {
        Ok(()) | Err(StreamError::Gone) => {}
        // A writer that failed on its write into a closed response: the client left.
        Err(_) if sender.is_closed() => {}
        Err(error) => {
            tracing::error!(%error, reason = "DownloadFailed", "download broken off");
            let _ = sender.send(Err(io::Error::other(error.to_string()))).await;
        }
    }
}

async fn send(sender: &Chunks, buffer: &mut Vec<u8>) -> Result<(), StreamError> {
    let chunk = Bytes::from(std::mem::take(buffer));
    sender.send(Ok(chunk)).await.map_err(|_| StreamError::Gone)
}

/// The next row, waiting on MongoDB at most as long as one aggregation may take.
async fn next(cursor: &mut Cursor<Document>) -> Result<Option<Document>, StreamError> {
    tokio::time::timeout(CLIENT_MAX_TIME, cursor.try_next())
        .await
        .map_err(|_| StreamError::Stalled(CLIENT_MAX_TIME))?
        .map_err(StreamError::Mongo)
}

/// Up to `limit` rows: the first [`export::SAMPLE_ROWS`] gathered (they make the
/// columns), then one at a time.
struct Rows {
    opened: Opened,
    read: u64,
}

impl Rows {
    fn new(opened: Opened) -> Self {
        Self { opened, read: 0 }
    }

    async fn next(&mut self) -> Result<Option<Document>, StreamError> {
        if self.read >= self.opened.limit {
            return Ok(None);
        }
        let row = next(&mut self.opened.cursor).await?;
        self.read += u64::from(row.is_some());
        Ok(row)
    }

    async fn sample(&mut self) -> Result<Vec<Document>, StreamError> {
        let mut rows = Vec::new();
        while rows.len() < export::SAMPLE_ROWS {
            match self.next().await? {
                Some(row) => rows.push(row),
                None => break,
            }
        }
        Ok(rows)
    }
}

async fn write_json(opened: Opened, sender: &Chunks) -> Result<(), StreamError> {
    let mut rows = Rows::new(opened);
    let mut buffer = Vec::with_capacity(CHUNK + 4096);
    buffer.push(b'[');
    let mut first = true;
    while let Some(row) = rows.next().await? {
        if !first {
            buffer.push(b',');
        }
        first = false;
        serde_json::to_writer(&mut buffer, &PlainJsonDocument(&row))?;
        if buffer.len() >= CHUNK {
            send(sender, &mut buffer).await?;
        }
    }
    buffer.push(b']');
    send(sender, &mut buffer).await
}

async fn write_csv(opened: Opened, sender: &Chunks) -> Result<(), StreamError> {
    let mut rows = Rows::new(opened);
    let sample = rows.sample().await?;
    let columns = export::columns(&sample);
    let out = SharedBuffer::default();
    let mut writer = csv::Writer::from_writer(out.clone());
    writer.write_record(&columns)?;
    let mut record: Vec<String> = Vec::with_capacity(columns.len());
    let mut write = |writer: &mut csv::Writer<SharedBuffer>, row: &Document| {
        record.clear();
        record.extend(columns.iter().map(|c| export::cell(row.get(c)).csv_text().into_owned()));
        writer.write_record(&record)
    };
    for row in &sample {
        write(&mut writer, row)?;
    }
    drop(sample);
    loop {
        // The csv writer keeps its own buffer (8 KiB) and hands it on when full.
        if out.len() >= CHUNK {
            send(sender, &mut out.take()).await?;
        }
        match rows.next().await? {
            Some(row) => write(&mut writer, &row)?,
            None => break,
        }
    }
    writer.flush().map_err(csv::Error::from)?;
    send(sender, &mut out.take()).await
}

/// Where the csv writer writes, and the task takes chunks from (`csv::Writer` lends
/// no access to its inner writer).
#[derive(Debug, Clone, Default)]
struct SharedBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedBuffer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.lock())
    }
}

impl io::Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes the workbook on a blocking thread (rust_xlsxwriter is synchronous), reading
/// the cursors through the runtime's handle.
fn spawn_workbook(sheets: Vec<Opened>, sender: Chunks) {
    let runtime = tokio::runtime::Handle::current();
    let task = {
        let sender = sender.clone();
        tokio::task::spawn_blocking(move || write_workbook(&runtime, sheets, &sender))
    };
    tokio::spawn(async move {
        let outcome = match task.await {
            Ok(outcome) => outcome,
            Err(error) => Err(StreamError::Task(error.to_string())),
        };
        finish(&sender, outcome).await;
    });
}

fn write_workbook(
    runtime: &tokio::runtime::Handle,
    sheets: Vec<Opened>,
    sender: &Chunks,
) -> Result<(), StreamError> {
    let names = export::sheet_names(&sheets.iter().map(|s| s.name.clone()).collect::<Vec<_>>());
    let mut workbook = Workbook::new();
    let header = Format::new().set_bold();
    let date = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    for (opened, name) in sheets.into_iter().zip(names) {
        // Constant memory: each row goes to the sheet's private temporary file as the
        // next one starts.
        let sheet = workbook.add_worksheet_with_constant_memory();
        let sheet = sheet?;
        sheet.set_name(name)?;
        let mut rows = Rows::new(opened);
        let sample = runtime.block_on(rows.sample())?;
        let columns = export::columns(&sample);
        for (index, column) in (0_u16..).zip(&columns) {
            sheet.write_string_with_format(0, index, export::cell_text(column), &header)?;
        }
        let mut at: u32 = 1;
        for row in &sample {
            write_row(sheet, at, &columns, row, &date)?;
            at += 1;
        }
        drop(sample);
        while let Some(row) = runtime.block_on(rows.next())? {
            write_row(sheet, at, &columns, &row, &date)?;
            at += 1;
        }
    }
    let mut out = ChunkWriter { sender, buffer: Vec::with_capacity(CHUNK) };
    workbook.save_to_writer(&mut out)?;
    io::Write::flush(&mut out).map_err(|_| StreamError::Gone)
}

fn write_row(
    sheet: &mut Worksheet,
    at: u32,
    columns: &[String],
    row: &Document,
    date: &Format,
) -> Result<(), XlsxError> {
    for (index, column) in (0_u16..).zip(columns) {
        match export::cell(row.get(column)) {
            Cell::Empty => continue,
            Cell::Text(text) => sheet.write_string(at, index, export::cell_text(&text))?,
            // Excel's numbers are doubles: a larger integer loses its last digits, as
            // it would typed into Excel.
            #[allow(clippy::cast_precision_loss)]
            Cell::Integer(n) => sheet.write_number(at, index, n as f64)?,
            Cell::Number(n) => sheet.write_number(at, index, n)?,
            Cell::Bool(b) => sheet.write_boolean(at, index, b)?,
            Cell::Date(millis) => {
                sheet.write_number_with_format(at, index, export::excel_serial(millis), date)?
            }
        };
    }
    Ok(())
}

/// The zip of the workbook, sent in chunks as rust_xlsxwriter writes it.
struct ChunkWriter<'a> {
    sender: &'a Chunks,
    buffer: Vec<u8>,
}

impl io::Write for ChunkWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buffer));
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}
