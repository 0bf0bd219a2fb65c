//! The aggregation a component's data request runs. Pure.
//!
//! `[{$match: {tenant_id}}, {$match: <user filters>}?, <component pipeline>..., {$skip},
//! {$limit}]`: the tenant's match is the first stage and a stage of its own, so nothing
//! after it (a user filter naming `tenant_id`, an `$or`, a component stage) can see a
//! document of another tenant: later stages only get what it let through.

use licenseware_crds::{
    pipeline::{PipelineError, check_pipeline},
    report_component::{ComponentData, check_app_collection},
};
use mongodb::bson::{Bson, Document, doc};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Rows returned when the request names no `limit` (Cube's default cap).
pub const DEFAULT_LIMIT: u64 = 10_000;
/// Largest `limit` accepted (Cube's maximum); `skip` pages past it.
pub const MAX_LIMIT: u64 = 50_000;
/// Largest `skip` accepted.
pub const MAX_SKIP: u64 = 1_000_000_000;

/// `limit` and `skip` as the query string gives them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PagingQuery {
    pub limit: Option<u64>,
    pub skip: Option<u64>,
    /// GET's filters: the SDK's JSON list, URL-encoded.
    pub filters: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Paging {
    pub skip: u64,
    pub limit: u64,
}

/// Why a query cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("limit is from 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}); page with skip")]
    BadLimit,
    #[error("skip is at most {MAX_SKIP}")]
    BadSkip,
    /// The component's pipeline fails the operator's allowlist (a registry written by
    /// an older operator, or by hand): never run.
    #[error("the component's pipeline is refused: {0}")]
    PipelineRefused(String),
    #[error("the component's collection is refused: {0}")]
    CollectionRefused(String),
}

impl QueryError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::BadLimit => "BadLimit",
            Self::BadSkip => "BadSkip",
            Self::PipelineRefused(_) => "PipelineRefused",
            Self::CollectionRefused(_) => "CollectionRefused",
        }
    }
}

impl From<PipelineError> for QueryError {
    fn from(error: PipelineError) -> Self {
        Self::PipelineRefused(error.to_string())
    }
}

impl Paging {
    pub fn new(query: &PagingQuery) -> Result<Self, QueryError> {
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(QueryError::BadLimit);
        }
        let skip = query.skip.unwrap_or(0);
        if skip > MAX_SKIP {
            return Err(QueryError::BadSkip);
        }
        Ok(Self { skip, limit })
    }
}

/// The pipeline for `tenant`: see the module's doc. One row more than `limit` is asked
/// for, so that the caller knows whether there is a next page without a count.
pub fn pipeline(
    tenant: &str,
    user_match: Option<Document>,
    data: &ComponentData,
    paging: Paging,
) -> Result<Vec<Document>, QueryError> {
    // The operator refused these already; checked again because the registry is only
    // as trustworthy as whatever wrote to its topic.
    check_pipeline(&data.pipeline, "data.pipeline")?;
    check_app_collection(&data.collection, [data.collection.as_str()])
        .map_err(QueryError::CollectionRefused)?;
    let mut stages = Vec::with_capacity(data.pipeline.len() + 4);
    stages.push(doc! {"$match": {"tenant_id": tenant}});
    if let Some(user_match) = user_match {
        stages.push(doc! {"$match": user_match});
    }
    for (index, stage) in data.pipeline.iter().enumerate() {
        stages.push(stage_document(stage).map_err(|error| {
            QueryError::PipelineRefused(format!("data.pipeline[{index}]: {error}"))
        })?);
    }
    if paging.skip > 0 {
        stages.push(doc! {"$skip": to_i64(paging.skip)});
    }
    stages.push(doc! {"$limit": to_i64(paging.limit.saturating_add(1))});
    Ok(stages)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stage as BSON. The allowlist has already refused every `$` key that is not a
/// stage or an operator, so no extended-JSON wrapper (`$oid`, `$date`...) is read here.
fn stage_document(stage: &Map<String, Value>) -> Result<Document, String> {
    match Bson::try_from(Value::Object(stage.clone())) {
        Ok(Bson::Document(document)) => Ok(document),
        Ok(_) => Err("a stage is an object".to_owned()),
        Err(error) => Err(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(pipeline: Value) -> ComponentData {
        ComponentData {
            collection: "Data".to_owned(),
            pipeline: serde_json::from_value(pipeline).unwrap(),
            cache_ttl_seconds: 60,
        }
    }

    fn paging(limit: Option<u64>, skip: Option<u64>) -> Result<Paging, QueryError> {
        Paging::new(&PagingQuery { limit, skip, filters: None })
    }

    #[test]
    fn the_tenant_match_comes_first_and_alone() {
        let user = doc! {"$or": [{"tenant_id": "other"}, {"os": {"$eq": "x"}}]};
        let stages = pipeline(
            "t1",
            Some(user.clone()),
            &data(json!([{"$group": {"_id": "$os", "n": {"$sum": 1}}}])),
            paging(None, Some(20)).unwrap(),
        )
        .unwrap();
        assert_eq!(stages[0], doc! {"$match": {"tenant_id": "t1"}});
        assert_eq!(stages[1], doc! {"$match": user});
        assert_eq!(stages[2], doc! {"$group": {"_id": "$os", "n": {"$sum": 1}}});
        assert_eq!(stages[3], doc! {"$skip": 20_i64});
        assert_eq!(stages[4], doc! {"$limit": 10_001_i64});
        assert_eq!(stages.len(), 5);
    }

    #[test]
    fn without_filters_or_skip_there_are_no_empty_stages() {
        let stages =
            pipeline("t1", None, &data(json!([])), paging(Some(5), None).unwrap()).unwrap();
        assert_eq!(stages, vec![doc! {"$match": {"tenant_id": "t1"}}, doc! {"$limit": 6_i64}]);
    }

    #[test]
    fn paging_is_bounded_with_a_default_cap() {
        assert_eq!(paging(None, None).unwrap(), Paging { skip: 0, limit: DEFAULT_LIMIT });
        assert_eq!(paging(Some(MAX_LIMIT), Some(MAX_SKIP)).unwrap().limit, MAX_LIMIT);
        assert_eq!(paging(Some(0), None).unwrap_err(), QueryError::BadLimit);
        assert_eq!(paging(Some(MAX_LIMIT + 1), None).unwrap_err(), QueryError::BadLimit);
        assert_eq!(paging(None, Some(MAX_SKIP + 1)).unwrap_err(), QueryError::BadSkip);
    }

    #[test]
    fn refused_pipelines_and_collections_are_never_run() {
        let error = pipeline(
            "t1",
            None,
            &data(json!([{"$lookup": {"from": "Registry"}}])),
            paging(None, None).unwrap(),
        )
        .unwrap_err();
        assert_eq!(error.reason(), "PipelineRefused");
        let mut registry = data(json!([]));
        registry.collection = "Registry".to_owned();
        let error = pipeline("t1", None, &registry, paging(None, None).unwrap()).unwrap_err();
        assert_eq!(error.reason(), "CollectionRefused");
        registry.collection = "system.users".to_owned();
        assert!(pipeline("t1", None, &registry, paging(None, None).unwrap()).is_err());
    }
}
