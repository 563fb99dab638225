//! Which replication slot and publication belong to this source in this
//! data directory, so that a slot Headwater cannot prove it created here is
//! never dropped.
//!
//! Slot names are cluster-wide: two daemons whose sources share a name but
//! capture different databases (or the same database from two data
//! directories) would otherwise find each other's slot and, with no
//! snapshot in their own log, drop it. The proof has two halves:
//! - `{state_dir}/identity.checkpoint` records the database, the slot and
//!   the publication this data directory created, and a random source id;
//!   it is written before the slot is created;
//! - the publication's comment carries the same source id
//!   (`headwater source_id=…`), so another data directory's publication is
//!   recognised too.
//!
//! A data directory from before identities existed proves a slot by the
//! source checkpoint in its log; such a slot is adopted (kept, with its old
//! name) and the identity written.

use std::path::{Path, PathBuf};

use headwater_core::CheckpointStore;
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use crate::postgres::error::{PgError, PgResult};
use crate::postgres::replication::quote_ident;

const FILE: &str = "identity";
const COMMENT_PREFIX: &str = "headwater source_id=";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Random, made once per source per data directory.
    pub source_id: String,
    /// The database the slot was created in.
    pub database: String,
    pub slot: String,
    pub publication: String,
}

impl Identity {
    pub fn new(database: &str, slot: &str, publication: &str) -> Self {
        Identity {
            source_id: random_id(),
            database: database.to_owned(),
            slot: slot.to_owned(),
            publication: publication.to_owned(),
        }
    }

    /// The publication comment that marks it as this source's.
    pub fn comment(&self) -> String {
        format!("{COMMENT_PREFIX}{}", self.source_id)
    }
}

/// 128 random bits in hex, from the standard library's randomly keyed
/// hasher and the clock (enough to tell data directories apart).
fn random_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(32);
    for round in 0..2u8 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(round);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// The identity file of a source's state directory.
#[derive(Clone, Debug)]
pub struct IdentityFile {
    dir: PathBuf,
}

impl IdentityFile {
    pub fn new(state_dir: &Path) -> Self {
        IdentityFile {
            dir: state_dir.to_owned(),
        }
    }

    fn error(&self, e: impl std::fmt::Display) -> PgError {
        PgError::State {
            path: self
                .dir
                .join(format!("{FILE}.checkpoint"))
                .display()
                .to_string(),
            reason: e.to_string(),
        }
    }

    pub async fn load(&self) -> PgResult<Option<Identity>> {
        CheckpointStore::load_in(self.dir.clone(), FILE)
            .await
            .map_err(|e| self.error(e))
    }

    /// Writes it durably (before the slot it names is created).
    pub async fn save(&self, identity: &Identity) -> PgResult<()> {
        CheckpointStore::save_in(self.dir.clone(), FILE, identity.clone())
            .await
            .map_err(|e| self.error(e))
    }
}

/// Who a publication belongs to, by its comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicationOwner {
    /// A Headwater source, by its source id.
    Headwater(String),
    /// Created by someone else (or by a Headwater from before identities).
    Unmarked,
}

impl PublicationOwner {
    pub fn from_comment(comment: Option<&str>) -> Self {
        match comment.and_then(|c| c.strip_prefix(COMMENT_PREFIX)) {
            Some(id) => PublicationOwner::Headwater(id.trim().to_owned()),
            None => PublicationOwner::Unmarked,
        }
    }
}

/// The owner of an existing publication; `None` when it does not exist.
pub async fn publication_owner(
    client: &Client,
    publication: &str,
) -> PgResult<Option<PublicationOwner>> {
    let row = client
        .query_opt(
            "SELECT obj_description(oid, 'pg_publication') FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await
        .map_err(|e| PgError::sql(format!("reading publication `{publication}`"), e))?;
    Ok(row.map(|r| PublicationOwner::from_comment(r.get::<_, Option<String>>(0).as_deref())))
}

pub async fn mark_publication(
    client: &Client,
    publication: &str,
    identity: &Identity,
) -> PgResult<()> {
    let sql = format!(
        "COMMENT ON PUBLICATION {} IS '{}'",
        quote_ident(publication),
        identity.comment().replace('\'', "''")
    );
    client
        .batch_execute(&sql)
        .await
        .map_err(|e| PgError::sql(format!("marking publication `{publication}` as ours"), e))
}

pub async fn current_database(client: &Client) -> PgResult<String> {
    let row = client
        .query_one("SELECT current_database()::text", &[])
        .await
        .map_err(|e| PgError::sql("reading the current database", e))?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publication_comment_names_its_source() {
        let identity = Identity::new("shop", "headwater_shop_orders", "headwater_orders");
        assert_eq!(identity.source_id.len(), 32);
        assert_ne!(
            identity.source_id,
            Identity::new("shop", "s", "p").source_id
        );
        assert_eq!(
            PublicationOwner::from_comment(Some(&identity.comment())),
            PublicationOwner::Headwater(identity.source_id.clone())
        );
        assert_eq!(
            PublicationOwner::from_comment(Some("made by the DBA")),
            PublicationOwner::Unmarked
        );
        assert_eq!(
            PublicationOwner::from_comment(None),
            PublicationOwner::Unmarked
        );
    }

    #[tokio::test]
    async fn the_identity_file_round_trips() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = IdentityFile::new(dir.path());
        assert_eq!(file.load().await.expect("load"), None);
        let identity = Identity::new("shop", "slot", "publication");
        file.save(&identity).await.expect("save");
        assert_eq!(file.load().await.expect("load"), Some(identity));
    }
}
