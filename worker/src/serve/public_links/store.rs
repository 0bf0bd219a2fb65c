//! What public links keep in MongoDB: one record per link (`PublicReportLinks`, keyed
//! by the token's `jti`), which is what makes a link revocable and lets the server
//! refuse a token whose record is gone; and, when no secret file is configured, the
//! signing secret (`ApiSecrets`).
//!
//! Why a secret in MongoDB: every replica must verify the links any other replica
//! signed, and links must survive a restart. A secret made per process would break
//! both; one made once and inserted only if absent (`$setOnInsert` on a fixed `_id`)
//! is the same for every replica, whichever makes it first. Whoever can read that
//! collection can mint links: production should give `--public-link-secret-file`.

use base64::Engine as _;
use mongodb::{
    Collection, Database, IndexModel,
    bson::{DateTime, Document, doc},
    error::Error as MongoError,
};
use tokio::sync::OnceCell;

use super::token::{LinkClaims, LinkRefusal};

pub const LINKS: &str = "PublicReportLinks";
pub const SECRETS: &str = "ApiSecrets";
const SECRET_ID: &str = "public_link_hs256";
/// Bytes of a generated secret (RFC 7518 §3.2: at least the hash's 256 bits).
const SECRET_BYTES: usize = 48;

/// A secret's bytes, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(pub Vec<u8>);

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes({} bytes)", self.0.len())
    }
}

/// The signing secret: the configured one, or the shared one from MongoDB, read once.
#[derive(Default)]
pub struct LinkSecret {
    configured: Option<Vec<u8>>,
    shared: OnceCell<Vec<u8>>,
}

impl std::fmt::Debug for LinkSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSecret")
            .field("configured", &self.configured.is_some())
            .finish_non_exhaustive()
    }
}

impl LinkSecret {
    pub fn new(configured: Option<SecretBytes>) -> Self {
        Self { configured: configured.map(|s| s.0), shared: OnceCell::new() }
    }

    pub async fn get(&self, database: &Database) -> Result<&[u8], MongoError> {
        if let Some(secret) = &self.configured {
            return Ok(secret);
        }
        self.shared.get_or_try_init(|| shared_secret(database)).await.map(Vec::as_slice)
    }
}

fn random_secret() -> Vec<u8> {
    // UUID v4s come from the OS's generator: 122 random bits each.
    (0..SECRET_BYTES.div_ceil(16))
        .flat_map(|_| uuid::Uuid::new_v4().into_bytes())
        .take(SECRET_BYTES)
        .collect()
}

/// Inserts a fresh secret unless one exists, then reads the one that does.
async fn shared_secret(database: &Database) -> Result<Vec<u8>, MongoError> {
    let secrets = database.collection::<Document>(SECRETS);
    let fresh = base64::engine::general_purpose::STANDARD.encode(random_secret());
    let upsert = secrets
        .update_one(
            doc! {"_id": SECRET_ID},
            doc! {"$setOnInsert": {"secret": fresh, "created_at": DateTime::now()}},
        )
        .upsert(true)
        .await;
    // Two replicas upserting at once: the loser gets a duplicate key and reads the
    // winner's secret below.
    if let Err(error) = upsert {
        tracing::info!(%error, "public link secret upsert lost a race; reading it");
    }
    let stored = secrets
        .find_one(doc! {"_id": SECRET_ID})
        .await?
        .and_then(|d| d.get_str("secret").ok().map(str::to_owned))
        .ok_or_else(|| MongoError::custom("the public link secret is missing after its upsert"))?;
    base64::engine::general_purpose::STANDARD
        .decode(stored)
        .map_err(|error| MongoError::custom(format!("the stored public link secret: {error}")))
}

#[derive(Debug, Clone)]
pub struct Links {
    collection: Collection<Document>,
}

impl Links {
    pub fn new(database: &Database) -> Self {
        Self { collection: database.collection(LINKS) }
    }

    pub async fn ensure_indexes(&self) -> Result<(), MongoError> {
        let index =
            IndexModel::builder().keys(doc! {"tenant_id": 1, "app_id": 1, "report_id": 1}).build();
        self.collection.create_index(index).await.map(|_| ())
    }

    pub async fn insert(&self, claims: &LinkClaims, created_by: &str) -> Result<(), MongoError> {
        let expiration = i64::try_from(claims.exp.saturating_mul(1000)).unwrap_or(i64::MAX);
        self.collection
            .insert_one(doc! {
                "_id": &claims.jti,
                "tenant_id": &claims.tenant_id,
                "app_id": &claims.app_id,
                "report_id": &claims.report_id,
                "expiration_date": DateTime::from_millis(expiration),
                "revoked": false,
                "created_at": DateTime::now(),
                "created_by": created_by,
            })
            .await
            .map(|_| ())
    }

    /// The record of verified `claims` must exist, match them and not be revoked.
    pub async fn check(&self, claims: &LinkClaims) -> Result<Result<(), LinkRefusal>, MongoError> {
        let record = self
            .collection
            .find_one(doc! {
                "_id": &claims.jti,
                "tenant_id": &claims.tenant_id,
                "app_id": &claims.app_id,
                "report_id": &claims.report_id,
            })
            .await?;
        Ok(match record {
            None => Err(LinkRefusal::Revoked),
            Some(record) if record.get_bool("revoked").unwrap_or(true) => Err(LinkRefusal::Revoked),
            Some(record) => match record.get_datetime("expiration_date") {
                Ok(expiration) if *expiration > DateTime::now() => Ok(()),
                _ => Err(LinkRefusal::Expired),
            },
        })
    }

    /// Revokes the tenant's links of a report: one (`jti`) or all. Returns how many.
    pub async fn revoke(
        &self,
        tenant: &str,
        app: &str,
        report: &str,
        jti: Option<&str>,
    ) -> Result<u64, MongoError> {
        let mut filter =
            doc! {"tenant_id": tenant, "app_id": app, "report_id": report, "revoked": false};
        if let Some(jti) = jti {
            filter.insert("_id", jti);
        }
        let update = doc! {"$set": {"revoked": true, "revoked_at": DateTime::now()}};
        Ok(self.collection.update_many(filter, update).await?.modified_count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_long_and_differ() {
        let (a, b) = (random_secret(), random_secret());
        assert_eq!(a.len(), SECRET_BYTES);
        assert_ne!(a, b);
    }
}
