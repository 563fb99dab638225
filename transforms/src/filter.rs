//! `filter`: keep the events that match by table, operation and column
//! conditions; drop the rest.

use std::cmp::Ordering;

use headwater_core::{ChangeEvent, Op, Result, Transform, Value};

use crate::config::toml_value::Scalar;
use crate::config::{CompareOp, Condition};
use crate::tables::TableMatcher;

pub struct Filter {
    tables: TableMatcher,
    ops: Vec<Op>,
    conditions: Vec<Condition>,
}

impl Filter {
    pub fn new(tables: TableMatcher, ops: Vec<Op>, conditions: Vec<Condition>) -> Self {
        Filter {
            tables,
            ops,
            conditions,
        }
    }

    fn keeps(&self, event: &ChangeEvent) -> bool {
        if !self.tables.matches(&event.table) {
            return false;
        }
        if !self.ops.is_empty() && !self.ops.contains(&event.op) {
            return false;
        }
        let row = match event.op {
            Op::Delete => event.before.as_ref(),
            _ => event.after.as_ref(),
        };
        self.conditions.iter().all(|c| {
            let value = event
                .schema
                .column_index(&c.column)
                .and_then(|i| row.and_then(|r| r.get(i)));
            holds(c, value)
        })
    }
}

/// Whether `condition` holds for `value` (`None`: no such column or row).
/// A TOAST value the update did not send (`Unchanged`) cannot be judged:
/// the condition counts as holding, so no change is dropped by ignorance.
fn holds(condition: &Condition, value: Option<&Value>) -> bool {
    let value = match value {
        Some(Value::Unchanged) => return true,
        Some(v) => v,
        None => &Value::Null,
    };
    match condition.op {
        CompareOp::IsNull => return value.is_null(),
        CompareOp::IsNotNull => return !value.is_null(),
        _ => {}
    }
    if value.is_null() {
        return false;
    }
    let Some(literal) = &condition.value else {
        return false;
    };
    let Some(ordering) = compare(value, literal) else {
        return false;
    };
    match condition.op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        CompareOp::IsNull | CompareOp::IsNotNull => false,
    }
}

fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Int16(i) => Some(f64::from(*i)),
        Value::Int32(i) => Some(f64::from(*i)),
        Value::Int64(i) => Some(*i as f64),
        Value::UInt64(i) => Some(*i as f64),
        Value::Float32(x) => Some(f64::from(*x)),
        Value::Float64(x) => Some(*x),
        Value::Decimal(d) => d.to_string().parse().ok(),
        _ => None,
    }
}

fn compare(value: &Value, literal: &Scalar) -> Option<Ordering> {
    match literal {
        Scalar::Bool(b) => match value {
            Value::Bool(v) => Some(v.cmp(b)),
            _ => None,
        },
        Scalar::Int(i) => as_number(value)?.partial_cmp(&(*i as f64)),
        Scalar::Float(x) => as_number(value)?.partial_cmp(x),
        Scalar::Text(text) => match (as_number(value), text.parse::<f64>()) {
            (Some(v), Ok(t)) => v.partial_cmp(&t),
            _ => Some(value.to_string().as_str().cmp(text.as_str())),
        },
    }
}

impl Transform for Filter {
    fn name(&self) -> &str {
        "filter"
    }

    fn apply(&self, event: ChangeEvent, out: &mut Vec<ChangeEvent>) -> Result<()> {
        if self.keeps(&event) {
            out.push(event);
        }
        Ok(())
    }
}
