//! Before a source touches its slot or publication: which ones are its own.
//! A slot in another database is never used or dropped; a slot in this
//! database is dropped (to snapshot again) only when this data directory
//! can prove it created it, or the operator asked with `--resnapshot`.

use tokio_postgres::Client;

use crate::postgres::config::{PostgresConfig, SnapshotMode};
use crate::postgres::error::{PgError, PgResult};
use crate::postgres::identity::{
    current_database, publication_owner, Identity, IdentityFile, PublicationOwner,
};
use crate::postgres::slot::{self, SlotInfo};

/// What the source may do with its slot and publication.
pub struct Claim {
    pub identity: Identity,
    /// The slot to resume from; `None`: create it (and snapshot).
    pub existing: Option<SlotInfo>,
    /// What the publication's comment says now (`None`: it does not exist).
    pub publication: Option<PublicationOwner>,
    /// Whether the source may change the publication's tables. Not for a
    /// publication someone else made (`publication = "…"` naming a DBA's).
    pub manage_publication: bool,
}

/// `durable`: the log holds a checkpoint of this source (the proof a data
/// directory from before identities has).
pub async fn claim(
    source: &str,
    config: &PostgresConfig,
    client: &Client,
    dbname: &str,
    durable: bool,
) -> PgResult<Claim> {
    let database = current_database(client).await?;
    let file = config.state_dir.as_deref().map(IdentityFile::new);
    let recorded = match &file {
        Some(file) => file.load().await?,
        None => None,
    };
    if let Some(recorded) = &recorded {
        if recorded.database != database {
            return Err(PgError::OtherDatabaseDataDir {
                path: state_path(config),
                recorded: recorded.database.clone(),
                database,
            });
        }
    }
    let legacy = recorded.is_none() && durable;
    let resnapshot = config.resnapshot.is_set();
    let publication = config
        .publication
        .clone()
        .or_else(|| recorded.as_ref().map(|r| r.publication.clone()))
        .unwrap_or_else(|| config.publication_name(source));
    let slot_name = match (&config.slot, &recorded) {
        (Some(slot), _) => slot.clone(),
        (None, Some(recorded)) => recorded.slot.clone(),
        (None, None) => {
            let old = config.legacy_slot_name(source);
            let adopt = legacy
                && slot::slot_info(client, &old)
                    .await?
                    .is_some_and(|i| i.database.as_deref() == Some(database.as_str()));
            if adopt {
                tracing::info!(slot = %old, "adopting the slot this source used before slot names included the database");
                old
            } else {
                config.slot_name(source, dbname)
            }
        }
    };
    let proven = recorded.as_ref().is_some_and(|r| r.slot == slot_name) || legacy;

    let mut existing = slot::slot_info(client, &slot_name).await?;
    if let Some(info) = &existing {
        let slot_database = info.database.clone().unwrap_or_default();
        if slot_database != database {
            return Err(PgError::SlotInOtherDatabase {
                slot: slot_name,
                slot_database,
                database,
            });
        }
        slot::usable(&slot_name, info)?;
        if !proven && !resnapshot {
            return Err(PgError::SlotNotOurs {
                slot: slot_name,
                database,
                source_name: source.to_owned(),
                state: state_path(config),
            });
        }
        if resnapshot {
            tracing::warn!(slot = %slot_name, "--resnapshot: dropping the slot and taking a new snapshot");
            slot::drop_slot(client, &slot_name).await?;
            existing = None;
        } else if config.snapshot == SnapshotMode::Initial && !durable {
            tracing::warn!(slot = %slot_name, "the slot exists but no snapshot of this source is durable in the log: dropping the slot and starting the snapshot again");
            slot::drop_slot(client, &slot_name).await?;
            existing = None;
        }
    }

    let identity = match recorded {
        Some(recorded) => Identity {
            slot: slot_name,
            publication: publication.clone(),
            ..recorded
        },
        None => Identity::new(&database, &slot_name, &publication),
    };
    let owner = publication_owner(client, &publication).await?;
    let manage_publication = match &owner {
        None => true,
        Some(PublicationOwner::Headwater(id)) if *id == identity.source_id => true,
        // Without a recorded identity (a data directory from before them,
        // or a source run without `state_dir`) the log's checkpoint is the
        // proof, as for the slot.
        Some(PublicationOwner::Headwater(other)) if !resnapshot && !legacy => {
            return Err(PgError::PublicationNotOurs {
                publication,
                database,
                owner: other.clone(),
                source_name: source.to_owned(),
            })
        }
        Some(PublicationOwner::Headwater(_)) => true,
        Some(PublicationOwner::Unmarked) => legacy || resnapshot,
    };
    // Durable before the slot it names is created: a crash between the two
    // leaves a record of a slot that does not exist yet, never a slot that
    // no record proves.
    if let Some(file) = &file {
        file.save(&identity).await?;
    }
    Ok(Claim {
        identity,
        existing,
        publication: owner,
        manage_publication,
    })
}

fn state_path(config: &PostgresConfig) -> String {
    config.state_dir.as_deref().map_or_else(
        || "no state_dir is set".to_owned(),
        |d| d.join("identity.checkpoint").display().to_string(),
    )
}

/// The slot a source uses, for probes that do not claim it (lag, check):
/// configured, recorded in the state directory, or the default.
pub async fn slot_name(source: &str, config: &PostgresConfig, dbname: &str) -> String {
    if let Some(slot) = &config.slot {
        return slot.clone();
    }
    if let Some(dir) = &config.state_dir {
        if let Ok(Some(recorded)) = IdentityFile::new(dir).load().await {
            return recorded.slot;
        }
    }
    config.slot_name(source, dbname)
}
