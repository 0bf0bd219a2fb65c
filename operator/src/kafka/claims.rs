//! Where the intent to create a Kafka topic is recorded before the create, so that a
//! crash between the create and the status write cannot leave the operator's own
//! topic looking like someone else's (Kafka has no owner field). One record per batch
//! of creates, not one status write per Topic: those were a sixth of the apiserver's
//! writes when thousands of Topics arrive at once.

use std::{
    collections::HashMap,
    future::IntoFuture,
    sync::{Mutex, PoisonError},
};

use futures::future::BoxFuture;
use mongodb::{
    Collection,
    bson::{Document, doc},
    error::ErrorKind,
};

/// The collection of the registry's database that holds the claims.
pub const COLLECTION: &str = "topic_claims";

/// The intent of one resource to create one Kafka topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicClaim {
    pub kafka_name: String,
    /// Who claims it: `namespace/name/uid` of the Topic, so that a resource deleted and
    /// made again under the same name is another claimant.
    pub claimant: String,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot {action} the claims of Kafka topics: {message}")]
pub struct ClaimError {
    pub action: &'static str,
    pub message: String,
}

/// A durable record of claims: written before the topics are created.
pub trait ClaimStore: Send + Sync + std::fmt::Debug {
    /// Records every claim (one replaces an older one of the same name) before the
    /// batch creates the topics; an error leaves the topics uncreated.
    fn record<'a>(&'a self, claims: &'a [TopicClaim]) -> BoxFuture<'a, Result<(), ClaimError>>;

    /// Removes the claims of `names`: their topics were made again by someone else
    /// (another id than the one their resources recorded), and no claim may vouch for
    /// those.
    fn forget<'a>(&'a self, names: &'a [String]) -> BoxFuture<'a, Result<(), ClaimError>>;

    /// The claimant recorded for each of `names` that has one.
    fn claimants<'a>(
        &'a self,
        names: &'a [String],
    ) -> BoxFuture<'a, Result<HashMap<String, String>, ClaimError>>;
}

/// The claims in MongoDB, beside the registry (the operator's own state).
#[derive(Debug, Clone)]
pub struct MongoClaims {
    collection: Collection<Document>,
}

impl MongoClaims {
    pub fn new(database: &mongodb::Database) -> Self {
        Self { collection: database.collection(COLLECTION) }
    }
}

fn failed(action: &'static str) -> impl Fn(mongodb::error::Error) -> ClaimError {
    move |error| ClaimError { action, message: error.to_string() }
}

/// MongoDB's code for a duplicate key.
const DUPLICATE_KEY: i32 = 11000;

/// The indexes of an `insert_many`'s documents refused only because their `_id` exists,
/// or `None` when anything else went wrong.
fn duplicates_only(error: &mongodb::error::Error) -> Option<Vec<usize>> {
    let ErrorKind::InsertMany(failure) = error.kind.as_ref() else { return None };
    if failure.write_concern_error.is_some() {
        return None;
    }
    let errors = failure.write_errors.as_ref()?;
    errors.iter().all(|e| e.code == DUPLICATE_KEY).then(|| errors.iter().map(|e| e.index).collect())
}

// Every request reads or writes by `_id` alone: FerretDB (the stack's MongoDB) runs those
// as one SQLite lookup, and any other filter as a scan of the collection with every
// document decoded (a first version with `$in` and a second field in its filters took
// FerretDB to 104 CPU-seconds in the operator benchmark).
impl ClaimStore for MongoClaims {
    fn record<'a>(&'a self, claims: &'a [TopicClaim]) -> BoxFuture<'a, Result<(), ClaimError>> {
        Box::pin(async move {
            if claims.is_empty() {
                return Ok(());
            }
            let document = |c: &TopicClaim| doc! {"_id": &c.kafka_name, "claimant": &c.claimant};
            // Names never claimed before, the usual case: one insert for the batch. A name
            // claimed before (its Topic made again, or a create tried again) has its
            // claim replaced.
            let inserted =
                self.collection.insert_many(claims.iter().map(document)).ordered(false).await;
            let again = match inserted {
                Ok(_) => return Ok(()),
                Err(error) => duplicates_only(&error).ok_or_else(|| failed("record")(error))?,
            };
            let replaces = again.into_iter().filter_map(|index| claims.get(index)).map(|c| {
                self.collection
                    .replace_one(doc! {"_id": &c.kafka_name}, document(c))
                    .upsert(true)
                    .into_future()
            });
            futures::future::try_join_all(replaces).await.map_err(failed("record"))?;
            Ok(())
        })
    }

    fn forget<'a>(&'a self, names: &'a [String]) -> BoxFuture<'a, Result<(), ClaimError>> {
        Box::pin(async move {
            let deletes = names
                .iter()
                .map(|name| self.collection.delete_one(doc! {"_id": name}).into_future());
            futures::future::try_join_all(deletes).await.map_err(failed("forget"))?;
            Ok(())
        })
    }

    fn claimants<'a>(
        &'a self,
        names: &'a [String],
    ) -> BoxFuture<'a, Result<HashMap<String, String>, ClaimError>> {
        Box::pin(async move {
            let reads =
                names.iter().map(|name| self.collection.find_one(doc! {"_id": name}).into_future());
            let documents = futures::future::try_join_all(reads).await.map_err(failed("read"))?;
            Ok(documents
                .iter()
                .flatten()
                .filter_map(|d| {
                    Some((
                        d.get_str("_id").ok()?.to_owned(),
                        d.get_str("claimant").ok()?.to_owned(),
                    ))
                })
                .collect())
        })
    }
}

/// Claims kept in this process only: for tests, and for tools whose claims need not
/// outlive them.
#[derive(Debug, Default)]
pub struct MemoryClaims {
    claims: Mutex<HashMap<String, String>>,
    /// When set, every call fails with this message.
    failing: Mutex<Option<String>>,
}

impl MemoryClaims {
    /// Makes every later call fail (`Some`) or succeed again (`None`).
    pub fn fail_with(&self, message: Option<&str>) {
        *self.failing.lock().unwrap_or_else(PoisonError::into_inner) = message.map(str::to_owned);
    }

    fn check(&self, action: &'static str) -> Result<(), ClaimError> {
        match &*self.failing.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(message) => Err(ClaimError { action, message: message.clone() }),
            None => Ok(()),
        }
    }

    pub fn claimant(&self, name: &str) -> Option<String> {
        self.claims.lock().unwrap_or_else(PoisonError::into_inner).get(name).cloned()
    }
}

impl ClaimStore for MemoryClaims {
    fn record<'a>(&'a self, claims: &'a [TopicClaim]) -> BoxFuture<'a, Result<(), ClaimError>> {
        Box::pin(async move {
            self.check("record")?;
            let mut kept = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
            for claim in claims {
                kept.insert(claim.kafka_name.clone(), claim.claimant.clone());
            }
            Ok(())
        })
    }

    fn forget<'a>(&'a self, names: &'a [String]) -> BoxFuture<'a, Result<(), ClaimError>> {
        Box::pin(async move {
            self.check("forget")?;
            let mut kept = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
            for name in names {
                kept.remove(name);
            }
            Ok(())
        })
    }

    fn claimants<'a>(
        &'a self,
        names: &'a [String],
    ) -> BoxFuture<'a, Result<HashMap<String, String>, ClaimError>> {
        Box::pin(async move {
            self.check("read")?;
            let kept = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
            Ok(names
                .iter()
                .filter_map(|name| Some((name.clone(), kept.get(name)?.clone())))
                .collect())
        })
    }
}
