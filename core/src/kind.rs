//! Kinds of components chosen by `type` in their config entry
//! (`[sources.NAME]`, `[sinks.NAME]`): a registry names each kind and how
//! its config is read; everything else about a kind is behind the trait
//! object its config becomes.

use std::borrow::Cow;
use std::sync::Arc;

use figment::value::Value;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// One kind: its `type` name and how its entry is read.
pub struct Kind<T: ?Sized + 'static> {
    pub name: &'static str,
    parse: fn(&Value) -> Result<Arc<T>, Box<figment::Error>>,
}

impl<T: ?Sized + 'static> Kind<T> {
    /// Use [`kind!`](crate::kind!), which writes `parse` for a config type.
    pub const fn new(
        name: &'static str,
        parse: fn(&Value) -> Result<Arc<T>, Box<figment::Error>>,
    ) -> Self {
        Kind { name, parse }
    }
}

#[doc(hidden)]
pub fn parse_as<C: DeserializeOwned>(value: &Value) -> Result<C, Box<figment::Error>> {
    C::deserialize(value).map_err(Box::new)
}

/// A registry entry: kind `$name`, whose entry (without `type`) is a
/// `$config`, used as a `$dyn` (`kind!("postgres", PostgresConfig as dyn SourceKind)`).
#[macro_export]
macro_rules! kind {
    ($name:literal, $config:ty as $dyn:ty) => {
        $crate::kind::Kind::<$dyn>::new($name, |value| {
            $crate::kind::parse_as::<$config>(value)
                .map(|c| std::sync::Arc::new(c) as std::sync::Arc<$dyn>)
        })
    };
}

/// Reads an entry: its `type` picks the kind in `kinds`, the rest of the
/// table is that kind's config. `what` names the entries in errors
/// (`source`, `sink`).
pub fn deserialize<'de, D, T>(
    d: D,
    what: &str,
    kinds: &'static [Kind<T>],
) -> Result<(&'static str, Arc<T>), D::Error>
where
    D: Deserializer<'de>,
    T: ?Sized + 'static,
{
    use serde::de::Error;
    let mut value = <Value as Deserialize>::deserialize(d)?;
    let known = || kinds.iter().map(|k| k.name).collect::<Vec<_>>().join(", ");
    let Value::Dict(_, table) = &mut value else {
        return Err(D::Error::custom(format!(
            "expected a table with `type` naming the kind of {what} ({})",
            known()
        )));
    };
    let type_name = match table.remove("type") {
        Some(Value::String(_, name)) => name,
        Some(other) => {
            return Err(D::Error::custom(format!(
                "`type` must be a string naming the kind of {what} ({}), not {}",
                known(),
                other.to_actual()
            )))
        }
        None => {
            return Err(D::Error::custom(format!(
                "missing `type`: the kind of {what} ({})",
                known()
            )))
        }
    };
    let kind = kinds.iter().find(|k| k.name == type_name).ok_or_else(|| {
        D::Error::custom(format!(
            "unknown {what} type `{type_name}`: expected one of {}",
            known()
        ))
    })?;
    let config = (kind.parse)(&value).map_err(relay)?;
    Ok((kind.name, config))
}

/// Reads one config entry whose keys belong to two types: the keys in
/// `first_keys` to an `A`, the others to a `B` (used where several kinds of
/// entry share a group of keys, such as the outbox columns). Both should
/// deny unknown keys: a misspelt key is then `B`'s error, naming it.
pub fn deserialize_split<'de, D, A, B>(d: D, first_keys: &[&str]) -> Result<(A, B), D::Error>
where
    D: Deserializer<'de>,
    A: DeserializeOwned,
    B: DeserializeOwned,
{
    use serde::de::Error;
    let value = <Value as Deserialize>::deserialize(d)?;
    let Value::Dict(tag, mut second) = value else {
        return Err(D::Error::custom(format!(
            "expected a table, not {}",
            value.to_actual()
        )));
    };
    let first: figment::value::Dict = first_keys
        .iter()
        .filter_map(|k| second.remove_entry(*k))
        .collect();
    let a = parse_as::<A>(&Value::Dict(tag, first)).map_err(relay)?;
    let b = parse_as::<B>(&Value::Dict(tag, second)).map_err(relay)?;
    Ok((a, b))
}

/// A problem in the kind's own config as the outer deserializer's, so it
/// keeps its kind (unknown or missing key) and where it is.
fn relay<E: serde::de::Error>(e: Box<figment::Error>) -> E {
    use figment::error::Kind as Problem;
    // The path inside the entry, ending at the field's parent.
    let figment::Error { path, kind, .. } = *e;
    let mut path = path;
    let field = match &kind {
        Problem::UnknownField(f, _) => Some(f.as_str()),
        Problem::MissingField(f) => Some(f.as_ref()),
        _ => None,
    };
    if field.is_some() && path.last().map(String::as_str) == field {
        path.pop();
    }
    let inner = path.join(".");
    let at = |field: &str| match inner.as_str() {
        "" => field.to_owned(),
        inner => format!("{inner}.{field}"),
    };
    match kind {
        Problem::UnknownField(field, expected) => E::unknown_field(&at(&field), expected),
        Problem::MissingField(Cow::Borrowed(field)) if inner.is_empty() => E::missing_field(field),
        Problem::MissingField(field) => E::custom(format!("missing field `{}`", at(&field))),
        other if inner.is_empty() => E::custom(other),
        other => E::custom(format!("{inner}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    trait Named: std::fmt::Debug {
        fn name(&self) -> String;
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct A {
        name: String,
    }

    impl Named for A {
        fn name(&self) -> String {
            self.name.clone()
        }
    }

    static KINDS: &[Kind<dyn Named>] = &[crate::kind!("a", A as dyn Named)];

    #[derive(Debug)]
    struct Entry(&'static str, Arc<dyn Named>);

    impl<'de> Deserialize<'de> for Entry {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            deserialize(d, "widget", KINDS).map(|(kind, config)| Entry(kind, config))
        }
    }

    #[test]
    fn the_type_picks_the_kind_and_the_rest_is_its_config() {
        use figment::providers::{Format, Toml};
        let parse = |text: &str| {
            figment::Figment::from(Toml::string(text))
                .extract::<Entry>()
                .map_err(Box::new)
        };
        let entry = parse("type = \"a\"\nname = \"x\"").unwrap();
        assert_eq!((entry.0, entry.1.name()), ("a", "x".to_owned()));

        let error = |text: &str| parse(text).unwrap_err().to_string();
        assert!(error("type = \"b\"").contains("unknown widget type `b`: expected one of a"));
        assert!(error("name = \"x\"").contains("missing `type`"));
        assert!(error("type = 1").contains("must be a string"));
        let unknown = parse("type = \"a\"\nname = \"x\"\nnmae = 1").unwrap_err();
        assert!(
            matches!(&unknown.kind, figment::error::Kind::UnknownField(f, _) if f == "nmae"),
            "{unknown}"
        );
        let missing = parse("type = \"a\"").unwrap_err();
        assert!(
            matches!(&missing.kind, figment::error::Kind::MissingField(f) if f == "name"),
            "{missing}"
        );
    }
}
