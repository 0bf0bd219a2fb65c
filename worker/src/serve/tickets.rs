//! Upload tickets: the `event_id` that `/validation` returns is bound to the tenant,
//! the uploader, the names it accepted and an expiry, and kept in Redis. `/files` with
//! that event id takes the ticket (GETDEL: one upload per ticket) and refuses it for
//! another tenant, app or uploader, or for names the validation did not accept.

use std::time::Duration;

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

fn key(event_id: &str) -> String {
    format!("upload_ticket:{event_id}")
}

/// What a ticket allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub event_id: String,
    pub tenant_id: String,
    pub app_id: String,
    pub uploader_id: String,
    /// The names `/validation` accepted (status `success`).
    pub filenames: Vec<String>,
    /// UTC ISO: when it stops being usable (Redis expires it then too).
    pub expires_at: String,
    /// The `_id` (hex) of the event's history document, which `/validation` writes in
    /// a batch and `/files` may reach first; absent in tickets of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_id: Option<String>,
}

impl Ticket {
    /// Whether the ticket was issued for this request's tenant, app and uploader.
    pub fn allows(&self, tenant_id: &str, app_id: &str, uploader_id: &str) -> bool {
        self.tenant_id == tenant_id && self.app_id == app_id && self.uploader_id == uploader_id
    }

    pub fn accepted(&self, filename: &str) -> bool {
        self.filenames.iter().any(|name| name == filename)
    }
}

/// Whether `event_id` has the form of the ids we issue (a UUID): checked before it
/// reaches a Redis key or a path.
pub fn well_formed(event_id: &str) -> bool {
    uuid::Uuid::try_parse(event_id).is_ok_and(|id| id.hyphenated().to_string() == event_id)
}

pub async fn store(
    redis: &mut ConnectionManager,
    ticket: &Ticket,
    ttl: Duration,
) -> redis::RedisResult<()> {
    let value = serde_json::to_string(ticket).unwrap_or_default();
    redis::cmd("SET")
        .arg(key(&ticket.event_id))
        .arg(value)
        .arg("EX")
        .arg(ttl.as_secs().max(1))
        .query_async(redis)
        .await
}

/// Takes the ticket: no other request can use it after this.
pub async fn take(
    redis: &mut ConnectionManager,
    event_id: &str,
) -> redis::RedisResult<Option<Ticket>> {
    let value: Option<String> = redis::cmd("GETDEL").arg(key(event_id)).query_async(redis).await?;
    Ok(value.and_then(|value| serde_json::from_str(&value).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_uuids_are_event_ids() {
        assert!(well_formed("0b0c2f7e-4a8d-4c8e-9d9e-1f0a2b3c4d5e"));
        assert!(!well_formed("0B0C2F7E-4A8D-4C8E-9D9E-1F0A2B3C4D5E"), "one spelling only");
        assert!(!well_formed("../../etc"));
        assert!(!well_formed("0b0c2f7e4a8d4c8e9d9e1f0a2b3c4d5e"));
    }

    #[test]
    fn a_ticket_binds_tenant_app_uploader_and_names() {
        let ticket = Ticket {
            event_id: "e".into(),
            tenant_id: "t1".into(),
            app_id: "a".into(),
            uploader_id: "u".into(),
            filenames: vec!["RVTools.xlsx".into()],
            expires_at: String::new(),
            history_id: None,
        };
        assert!(ticket.allows("t1", "a", "u"));
        assert!(!ticket.allows("t2", "a", "u"));
        assert!(!ticket.allows("t1", "b", "u"));
        assert!(!ticket.allows("t1", "a", "v"));
        assert!(ticket.accepted("RVTools.xlsx"));
        assert!(!ticket.accepted("rvtools.xlsx"));
        // A ticket written by an earlier version (no history id) still reads.
        let earlier = r#"{"event_id":"e","tenant_id":"t1","app_id":"a","uploader_id":"u",
            "filenames":["RVTools.xlsx"],"expires_at":""}"#;
        assert_eq!(serde_json::from_str::<Ticket>(earlier).unwrap(), ticket);
    }
}
