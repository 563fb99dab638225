//! `[[transforms]]`: the ordered chain, one entry per step, chosen by `type`.

use std::collections::BTreeMap;

use serde::Deserialize;

use headwater_core::config::Problems;
use headwater_core::{Op, Secret};

use crate::outbox::{Outbox, OutboxConfig};

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum TransformConfig {
    /// Keep only the events that match every condition given.
    Filter {
        #[serde(default)]
        tables: Vec<String>,
        /// `insert`, `update`, `delete`, `read`, `truncate`, `message`.
        #[serde(default)]
        ops: Vec<Op>,
        /// Column conditions on the row after the change (before, for deletes).
        #[serde(default, rename = "where")]
        conditions: Vec<Condition>,
    },
    /// Keep only these columns (key columns stay in the event's key).
    Select {
        #[serde(default)]
        tables: Vec<String>,
        columns: Vec<String>,
    },
    /// Remove these columns.
    Drop {
        #[serde(default)]
        tables: Vec<String>,
        columns: Vec<String>,
    },
    /// Rename columns: `columns = { old = "new" }`.
    Rename {
        #[serde(default)]
        tables: Vec<String>,
        columns: BTreeMap<String, String>,
    },
    /// Hide column values.
    Mask {
        #[serde(default)]
        tables: Vec<String>,
        columns: Vec<String>,
        #[serde(default)]
        method: MaskMethod,
        /// Required for `method = "hash"`: the same salt gives the same
        /// hash, so masked values still join.
        salt: Option<Secret>,
    },
    /// Send events to the topic the template names; `{source}`,
    /// `{namespace}` and `{table}` are replaced.
    Route {
        #[serde(default)]
        tables: Vec<String>,
        topic: String,
    },
    /// Rows of outbox tables (and outbox messages) into domain events.
    Outbox(OutboxConfig),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskMethod {
    /// A salted hash of the value, as hex text.
    #[default]
    Hash,
    /// The text `***`.
    Redact,
    /// SQL NULL.
    Null,
}

/// `{ column = "status", op = "==", value = "paid" }`; `value` is compared
/// as a number when both sides are numbers, else as text.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub column: String,
    pub op: CompareOp,
    #[serde(default)]
    pub value: Option<toml_value::Scalar>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum CompareOp {
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "is_null")]
    IsNull,
    #[serde(rename = "is_not_null")]
    IsNotNull,
}

pub mod toml_value {
    use serde::Deserialize;

    /// A literal in a condition.
    #[derive(Clone, Debug, PartialEq, Deserialize)]
    #[serde(untagged)]
    pub enum Scalar {
        Bool(bool),
        Int(i64),
        Float(f64),
        Text(String),
    }
}

impl TransformConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            TransformConfig::Filter { .. } => "filter",
            TransformConfig::Select { .. } => "select",
            TransformConfig::Drop { .. } => "drop",
            TransformConfig::Rename { .. } => "rename",
            TransformConfig::Mask { .. } => "mask",
            TransformConfig::Route { .. } => "route",
            TransformConfig::Outbox(_) => "outbox",
        }
    }

    /// Whether this step sends events to topics of its own choosing
    /// (rather than `{source}.{namespace}.{table}`).
    pub fn names_topics(&self) -> bool {
        matches!(
            self,
            TransformConfig::Route { .. } | TransformConfig::Outbox(_)
        )
    }

    /// The tables this step applies to and the columns each must have
    /// (held against the sources' tables by `headwater check`).
    pub fn required_columns(&self) -> Option<(&[String], Vec<String>)> {
        match self {
            TransformConfig::Outbox(outbox) => {
                let shape =
                    headwater_core::outbox::OutboxShape::new(outbox.columns.clone()).ok()?;
                let columns = shape
                    .required_columns()
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                Some((&outbox.tables, columns))
            }
            _ => None,
        }
    }

    /// Checks entry `transforms[index]` without any I/O.
    pub fn validate(&self, index: usize, problems: &mut Problems) {
        let key = format!("transforms[{index}]");
        match self {
            TransformConfig::Filter { conditions, .. } => {
                for (i, c) in conditions.iter().enumerate() {
                    let needs_value = !matches!(c.op, CompareOp::IsNull | CompareOp::IsNotNull);
                    if needs_value != c.value.is_some() {
                        let what = if needs_value {
                            "needs a `value`"
                        } else {
                            "takes no `value`"
                        };
                        problems.add(format!("{key}.where[{i}]"), format!("`{:?}` {what}", c.op));
                    }
                }
            }
            TransformConfig::Select { columns, .. } | TransformConfig::Drop { columns, .. } => {
                if columns.is_empty() {
                    problems.add(format!("{key}.columns"), "lists no column");
                }
            }
            TransformConfig::Rename { columns, .. } => {
                if columns.is_empty() {
                    problems.add(format!("{key}.columns"), "renames no column");
                }
            }
            TransformConfig::Mask {
                columns,
                method,
                salt,
                ..
            } => {
                if columns.is_empty() {
                    problems.add(format!("{key}.columns"), "lists no column");
                }
                if *method == MaskMethod::Hash
                    && salt.as_ref().is_none_or(|s| s.expose().is_empty())
                {
                    problems.add(
                        format!("{key}.salt"),
                        "is required for method = \"hash\" (an unsalted hash of an email or a phone number is easy to reverse); use salt = \"${MASK_SALT}\"",
                    );
                }
            }
            TransformConfig::Route { topic, .. } => {
                if let Err(message) = crate::route::route_template(topic) {
                    problems.add(format!("{key}.topic"), message);
                }
            }
            TransformConfig::Outbox(outbox) => {
                if outbox.tables.is_empty() && outbox.messages.is_none() {
                    problems.add(
                        format!("{key}.tables"),
                        "lists no outbox table (and there is no `messages` section); name the outbox table, tables = [\"public.outbox\"]",
                    );
                }
                if let Err(message) = Outbox::new(outbox) {
                    problems.add(key, message);
                }
            }
        }
    }
}
