//! PostgreSQL types to [`Value`]s: which types we know (by OID, after
//! resolving domains, enums and arrays), their [`ValueKind`], and the text
//! and binary decoders.

pub mod binary;
pub mod catalog;
pub mod text;

use headwater_core::ValueKind;

pub use catalog::TypeCache;

/// A type as the decoders see it. Domains are already replaced by their
/// base type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PgType {
    Bool,
    Int2,
    Int4,
    Int8,
    Oid,
    Float4,
    Float8,
    Numeric,
    Money,
    /// text, varchar, bpchar, name, "char", xml, citext…: text in, text out.
    Text,
    Bytea,
    Json,
    Jsonb,
    Uuid,
    Date,
    Time,
    TimeTz,
    Timestamp,
    TimestampTz,
    Interval,
    Inet,
    Cidr,
    MacAddr,
    MacAddr8,
    Enum,
    Array(Box<PgType>),
    /// Anything else: kept as text (only representable in text mode).
    Other,
}

impl PgType {
    /// The types with a built-in OID; `None` for the rest (resolved from
    /// the catalog).
    pub fn builtin(oid: u32) -> Option<PgType> {
        use PgType::*;
        Some(match oid {
            16 => Bool,
            17 => Bytea,
            18 | 19 | 25 | 142 | 1042 | 1043 => Text,
            20 => Int8,
            21 => Int2,
            23 => Int4,
            26 => Oid,
            114 => Json,
            3802 => Jsonb,
            700 => Float4,
            701 => Float8,
            790 => Money,
            829 => MacAddr,
            774 => MacAddr8,
            869 => Inet,
            650 => Cidr,
            1082 => Date,
            1083 => Time,
            1266 => TimeTz,
            1114 => Timestamp,
            1184 => TimestampTz,
            1186 => Interval,
            1700 => Numeric,
            2950 => Uuid,
            _ => return builtin_array(oid).map(|e| Array(Box::new(e))),
        })
    }

    /// Whether binary pgoutput output of this type can be decoded into the
    /// same values text mode gives.
    pub fn binary_ok(&self) -> bool {
        match self {
            PgType::Other => false,
            PgType::Array(elem) => elem.binary_ok(),
            _ => true,
        }
    }

    pub fn kind(&self, type_modifier: i32) -> ValueKind {
        use PgType::*;
        match self {
            Bool => ValueKind::Bool,
            Int2 => ValueKind::Int16,
            Int4 => ValueKind::Int32,
            Int8 | Oid => ValueKind::Int64,
            Float4 => ValueKind::Float32,
            Float8 => ValueKind::Float64,
            Numeric => {
                let (precision, scale) = numeric_modifier(type_modifier);
                ValueKind::Decimal { precision, scale }
            }
            Money => ValueKind::Decimal {
                precision: None,
                scale: Some(2),
            },
            Text | Inet | Cidr | MacAddr | MacAddr8 | Other => ValueKind::Text,
            Bytea => ValueKind::Bytes,
            Json | Jsonb => ValueKind::Json,
            Uuid => ValueKind::Uuid,
            Date => ValueKind::Date,
            Time => ValueKind::Time,
            TimeTz => ValueKind::TimeTz,
            Timestamp => ValueKind::Timestamp,
            TimestampTz => ValueKind::TimestampTz,
            Interval => ValueKind::Interval,
            Enum => ValueKind::Enum,
            Array(elem) => ValueKind::Array(Box::new(elem.kind(-1))),
        }
    }
}

fn builtin_array(oid: u32) -> Option<PgType> {
    use PgType::*;
    Some(match oid {
        1000 => Bool,
        1001 => Bytea,
        1002 | 1003 | 1009 | 1014 | 1015 | 143 => Text,
        1005 => Int2,
        1007 => Int4,
        1016 => Int8,
        1028 => Oid,
        1021 => Float4,
        1022 => Float8,
        791 => Money,
        199 => Json,
        3807 => Jsonb,
        2951 => Uuid,
        1182 => Date,
        1183 => Time,
        1270 => TimeTz,
        1115 => Timestamp,
        1185 => TimestampTz,
        1187 => Interval,
        1231 => Numeric,
        1041 => Inet,
        651 => Cidr,
        1040 => MacAddr,
        775 => MacAddr8,
        _ => return None,
    })
}

/// `numeric(p,s)`'s type modifier to (precision, scale); unconstrained
/// `numeric` has none.
pub fn numeric_modifier(type_modifier: i32) -> (Option<u32>, Option<u32>) {
    if type_modifier < 4 {
        return (None, None);
    }
    let m = type_modifier - 4;
    let precision = ((m >> 16) & 0xffff) as u32;
    // PostgreSQL 15 allows a negative scale (11-bit signed).
    let raw_scale = m & 0x7ff;
    let scale = if raw_scale & 0x400 != 0 {
        None
    } else {
        Some(raw_scale as u32)
    };
    (Some(precision), scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_modifiers() {
        // numeric(10,2) has typmod ((10 << 16) | 2) + 4
        assert_eq!(numeric_modifier((10 << 16 | 2) + 4), (Some(10), Some(2)));
        assert_eq!(numeric_modifier(-1), (None, None));
    }

    #[test]
    fn arrays_and_unknowns() {
        assert_eq!(
            PgType::builtin(1231),
            Some(PgType::Array(Box::new(PgType::Numeric)))
        );
        assert_eq!(PgType::builtin(600), None);
        assert!(!PgType::Array(Box::new(PgType::Other)).binary_ok());
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn any_type() -> impl Strategy<Value = PgType> {
        let leaf = prop::sample::select(vec![
            PgType::Bool,
            PgType::Int2,
            PgType::Int4,
            PgType::Int8,
            PgType::Oid,
            PgType::Float4,
            PgType::Float8,
            PgType::Numeric,
            PgType::Money,
            PgType::Text,
            PgType::Bytea,
            PgType::Json,
            PgType::Jsonb,
            PgType::Uuid,
            PgType::Date,
            PgType::Time,
            PgType::TimeTz,
            PgType::Timestamp,
            PgType::TimestampTz,
            PgType::Interval,
            PgType::Inet,
            PgType::Cidr,
            PgType::MacAddr,
            PgType::MacAddr8,
            PgType::Enum,
            PgType::Other,
        ]);
        leaf.prop_recursive(2, 4, 1, |inner| {
            inner.prop_map(|t| PgType::Array(Box::new(t)))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        #[test]
        fn decoders_never_panic(ty in any_type(), data in proptest::collection::vec(any::<u8>(), 0..96)) {
            let _ = binary::decode(&ty, &data);
            let _ = text::decode(&ty, &String::from_utf8_lossy(&data));
        }

        #[test]
        fn text_arrays_never_panic(ty in any_type(), text in "[{}\",\\\\a-c0-9 NUL-]{0,40}") {
            let _ = text::decode(&PgType::Array(Box::new(ty)), &text);
        }
    }
}
