//! `mask`: hide column values — a salted HMAC-SHA256 (so equal values
//! still join), a fixed `***`, or NULL.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use headwater_core::{ChangeEvent, Result, Transform, Value, ValueKind};

use crate::config::MaskMethod;
use crate::error::TransformError;
use crate::reshape::{ReshapeCache, Reshaped};
use crate::tables::TableMatcher;

pub struct Mask {
    tables: TableMatcher,
    columns: Vec<String>,
    method: MaskMethod,
    salt: Vec<u8>,
    cache: ReshapeCache,
}

impl Mask {
    pub fn new(
        tables: TableMatcher,
        columns: Vec<String>,
        method: MaskMethod,
        salt: Vec<u8>,
    ) -> Self {
        Mask {
            tables,
            columns,
            method,
            salt,
            cache: ReshapeCache::default(),
        }
    }

    fn mask(&self, value: &mut Value) {
        if matches!(value, Value::Null | Value::Unchanged) {
            return;
        }
        *value = match self.method {
            MaskMethod::Null => Value::Null,
            MaskMethod::Redact => Value::Text("***".into()),
            MaskMethod::Hash => {
                // The salt is any length; HMAC accepts every key length.
                let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.salt) else {
                    return;
                };
                mac.update(value.to_string().as_bytes());
                let digest = mac.finalize().into_bytes();
                Value::Text(digest.iter().map(|b| format!("{b:02x}")).collect())
            }
        };
    }
}

impl Transform for Mask {
    fn name(&self) -> &str {
        "mask"
    }

    fn apply(&self, mut event: ChangeEvent, out: &mut Vec<ChangeEvent>) -> Result<()> {
        if !self.tables.matches(&event.table) {
            out.push(event);
            return Ok(());
        }
        let reshaped = self.cache.get_or_derive(&event.schema, |input| {
            let mut schema = input.clone();
            for column in schema
                .columns
                .iter_mut()
                .filter(|c| self.columns.contains(&c.name))
            {
                match self.method {
                    MaskMethod::Null if !column.nullable => {
                        return Err(headwater_core::Error::component(
                            "building the mask transform",
                            TransformError::NotNullable {
                                transform: "mask",
                                table: input.table.to_string(),
                                column: column.name.clone(),
                            },
                        ))
                    }
                    MaskMethod::Null => {}
                    MaskMethod::Hash | MaskMethod::Redact => {
                        column.kind = ValueKind::Text;
                        column.type_name = format!("masked {}", column.type_name);
                    }
                }
            }
            let sources = (0..schema.columns.len()).collect();
            Ok(Reshaped {
                schema: std::sync::Arc::new(schema),
                sources,
            })
        })?;
        let masked: Vec<usize> = event
            .schema
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| self.columns.contains(&c.name))
            .map(|(i, _)| i)
            .collect();
        let key_columns = event.schema.key_indexes();
        for row in [event.before.as_mut(), event.after.as_mut()]
            .into_iter()
            .flatten()
        {
            for &i in &masked {
                if let Some(v) = row.get_mut(i) {
                    self.mask(v);
                }
            }
        }
        for (k, column) in key_columns.iter().enumerate() {
            if masked.contains(column) {
                if let Some(v) = event.key.get_mut(k) {
                    self.mask(v);
                }
            }
        }
        event.schema = reshaped.schema.clone();
        out.push(event);
        Ok(())
    }
}
