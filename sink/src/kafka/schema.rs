//! The Kafka Connect schemas Debezium's JSON converter puts beside each
//! payload (`schemas.enable=true`), rendered once per table version.

use headwater_core::position::DebeziumField;
use headwater_core::{Column, Position, ValueKind};

use super::config::DecimalHandling;
use super::json::{write_str, Render};

/// Which Debezium connector's `source` block an event carries, by its
/// position's kind. Debezium's two get their own table fields and type
/// rules; any other kind of source a plain block of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connector {
    Postgres,
    MySql,
    Other(&'static str),
}

impl Connector {
    pub fn of(position: &Position) -> Connector {
        match position.debezium_connector() {
            "postgresql" => Connector::Postgres,
            "mysql" => Connector::MySql,
            other => Connector::Other(other),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Connector::Postgres => "postgresql",
            Connector::MySql => "mysql",
            Connector::Other(name) => name,
        }
    }

    /// The fields naming the table, between `db` and `ts_us`.
    fn table_fields(self) -> &'static [(&'static str, &'static str, bool)] {
        match self {
            Connector::Postgres => &[("schema", "string", false), ("table", "string", false)],
            Connector::MySql => &[("table", "string", true), ("server_id", "int64", false)],
            Connector::Other(_) => &[("table", "string", false)],
        }
    }
}

/// The declared fractional-second precision in a type name (`timestamp(3)`,
/// `datetime(6)`), if any.
fn declared_precision(type_name: &str) -> Option<u32> {
    let open = type_name.find('(')?;
    let close = type_name[open..].find(')')? + open;
    type_name[open + 1..close].trim().parse().ok()
}

/// How a column renders, from its kind and declared type.
pub fn render_for(column: &Column, connector: Connector, decimal: DecimalHandling) -> Render {
    let mut kind = &column.kind;
    while let ValueKind::Array(inner) = kind {
        kind = inner;
    }
    let precision = declared_precision(&column.type_name);
    let millis = match kind {
        // Debezium adaptive: precision 0–3 → milliseconds. PostgreSQL's
        // default precision is 6, MySQL's is 0.
        ValueKind::Time | ValueKind::Timestamp => match (precision, connector) {
            (Some(p), _) => p <= 3,
            (None, Connector::Postgres | Connector::Other(_)) => false,
            // MySQL TIME is always MicroTime (adaptive_time_microseconds).
            (None, Connector::MySql) => matches!(kind, ValueKind::Timestamp),
        },
        _ => false,
    };
    Render {
        decimal,
        variable_scale: matches!(kind, ValueKind::Decimal { scale: None, .. }),
        millis,
    }
}

/// Writes the schema of one field (without `"field"` when `field` is None).
pub fn write_field_schema(
    out: &mut Vec<u8>,
    kind: &ValueKind,
    render: Render,
    optional: bool,
    field: Option<&str>,
) {
    let (ty, name, params): (&str, Option<&str>, Option<String>) = match kind {
        ValueKind::Bool => ("boolean", None, None),
        ValueKind::Int16 => ("int16", None, None),
        ValueKind::Int32 => ("int32", None, None),
        ValueKind::Int64 | ValueKind::UInt64 => ("int64", None, None),
        ValueKind::Float32 => ("float", None, None),
        ValueKind::Float64 => ("double", None, None),
        ValueKind::Decimal { precision, scale } => match (render.decimal, scale) {
            (DecimalHandling::String, _) => ("string", None, None),
            (DecimalHandling::Double, _) => ("double", None, None),
            (DecimalHandling::Precise, None) => {
                out.extend_from_slice(
                    b"{\"type\":\"struct\",\"fields\":[{\"type\":\"int32\",\"optional\":false,\"field\":\"scale\"},{\"type\":\"bytes\",\"optional\":false,\"field\":\"value\"}],\"name\":\"io.debezium.data.VariableScaleDecimal\",\"version\":1,\"doc\":\"Variable scaled decimal\"",
                );
                return finish(out, optional, field);
            }
            (DecimalHandling::Precise, Some(scale)) => {
                let mut p = format!("{{\"scale\":\"{scale}\"");
                if let Some(precision) = precision {
                    p.push_str(&format!(",\"connect.decimal.precision\":\"{precision}\""));
                }
                p.push('}');
                (
                    "bytes",
                    Some("org.apache.kafka.connect.data.Decimal"),
                    Some(p),
                )
            }
        },
        ValueKind::Text => ("string", None, None),
        ValueKind::Bytes => ("bytes", None, None),
        ValueKind::Json => ("string", Some("io.debezium.data.Json"), None),
        ValueKind::Uuid => ("string", Some("io.debezium.data.Uuid"), None),
        ValueKind::Enum => ("string", Some("io.debezium.data.Enum"), None),
        ValueKind::Date => ("int32", Some("io.debezium.time.Date"), None),
        ValueKind::Time if render.millis => ("int32", Some("io.debezium.time.Time"), None),
        ValueKind::Time => ("int64", Some("io.debezium.time.MicroTime"), None),
        ValueKind::TimeTz => ("string", Some("io.debezium.time.ZonedTime"), None),
        ValueKind::Timestamp if render.millis => {
            ("int64", Some("io.debezium.time.Timestamp"), None)
        }
        ValueKind::Timestamp => ("int64", Some("io.debezium.time.MicroTimestamp"), None),
        ValueKind::TimestampTz => ("string", Some("io.debezium.time.ZonedTimestamp"), None),
        ValueKind::Interval => ("int64", Some("io.debezium.time.MicroDuration"), None),
        ValueKind::Array(inner) => {
            out.extend_from_slice(b"{\"type\":\"array\",\"items\":");
            write_field_schema(out, inner, render, true, None);
            return finish(out, optional, field);
        }
    };
    out.extend_from_slice(b"{\"type\":");
    write_str(out, ty);
    if let Some(name) = name {
        out.extend_from_slice(b",\"name\":");
        write_str(out, name);
        out.extend_from_slice(b",\"version\":1");
    }
    if let Some(params) = params {
        out.extend_from_slice(b",\"parameters\":");
        out.extend_from_slice(params.as_bytes());
    }
    finish(out, optional, field)
}

fn finish(out: &mut Vec<u8>, optional: bool, field: Option<&str>) {
    out.extend_from_slice(if optional {
        b",\"optional\":true"
    } else {
        b",\"optional\":false"
    });
    if let Some(field) = field {
        out.extend_from_slice(b",\"field\":");
        write_str(out, field);
    }
    out.push(b'}');
}

/// A struct of `columns` named `name`.
pub fn write_struct_schema(
    out: &mut Vec<u8>,
    columns: &[(&Column, Render)],
    name: &str,
    optional: bool,
    field: Option<&str>,
) {
    out.extend_from_slice(b"{\"type\":\"struct\",\"fields\":[");
    for (i, (column, render)) in columns.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let optional = column.nullable && column.key_position.is_none();
        write_field_schema(out, &column.kind, *render, optional, Some(&column.name));
    }
    out.extend_from_slice(b"],\"name\":");
    write_str(out, name);
    finish(out, optional, field);
}

/// The schema of the `source` block: the fields every connector has, the
/// connector's table fields, then the position kind's own.
pub fn write_source_schema(
    out: &mut Vec<u8>,
    connector: Connector,
    position_fields: &[DebeziumField],
) {
    const HEAD: &[(&str, &str, bool)] = &[
        ("version", "string", false),
        ("connector", "string", false),
        ("name", "string", false),
        ("ts_ms", "int64", false),
        ("snapshot", "string", true),
        ("db", "string", false),
    ];
    const TIMES: &[(&str, &str, bool)] = &[("ts_us", "int64", true), ("ts_ns", "int64", true)];
    let position = position_fields.iter().map(|f| (f.name, f.ty, f.optional));
    let fields = HEAD
        .iter()
        .chain(connector.table_fields())
        .chain(TIMES)
        .copied()
        .chain(position);
    out.extend_from_slice(b"{\"type\":\"struct\",\"fields\":[");
    for (i, (field, ty, optional)) in fields.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"type\":");
        write_str(out, ty);
        finish(out, optional, Some(field));
    }
    out.extend_from_slice(b"],\"name\":");
    let name = match connector {
        Connector::Postgres => "io.debezium.connector.postgresql.Source",
        Connector::MySql => "io.debezium.connector.mysql.Source",
        Connector::Other(_) => "io.headwater.Source",
    };
    write_str(out, name);
    finish(out, false, Some("source"));
}

/// `transaction` (always null: transaction metadata is not produced).
pub const TRANSACTION_SCHEMA: &str = "{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":false,\"field\":\"id\"},{\"type\":\"int64\",\"optional\":false,\"field\":\"total_order\"},{\"type\":\"int64\",\"optional\":false,\"field\":\"data_collection_order\"}],\"optional\":true,\"name\":\"event.block\",\"version\":1,\"field\":\"transaction\"}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_from_type_names() {
        assert_eq!(
            declared_precision("timestamp(3) without time zone"),
            Some(3)
        );
        assert_eq!(declared_precision("datetime(6)"), Some(6));
        assert_eq!(declared_precision("timestamp"), None);
    }

    #[test]
    fn decimal_schema_carries_scale() {
        let mut out = Vec::new();
        let render = Render {
            decimal: DecimalHandling::Precise,
            variable_scale: false,
            millis: false,
        };
        let kind = ValueKind::Decimal {
            precision: Some(10),
            scale: Some(2),
        };
        write_field_schema(&mut out, &kind, render, true, Some("price"));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["name"], "org.apache.kafka.connect.data.Decimal");
        assert_eq!(v["parameters"]["scale"], "2");
        assert_eq!(v["parameters"]["connect.decimal.precision"], "10");
        assert_eq!(v["field"], "price");
    }
}
