//! The daemon's configuration: one TOML file, `${VAR}` references replaced
//! from the environment, then `HEADWATER_…` environment overrides on top.
//! Each component's section is that component's own config type; this file
//! only assembles them and reports every problem at once.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Serialized};
use figment::Figment;
use serde::Deserialize;

use headwater_core::config::{glob_match, Problems};
use headwater_log::LogConfig;
use headwater_sink::SinkConfig;
use headwater_source::SourceConfig;
use headwater_transforms::TransformConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The embedded log, checkpoints and schemas live here.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub api: ApiConfig,
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    #[serde(default)]
    pub transforms: Vec<TransformConfig>,
    #[serde(default)]
    pub sinks: BTreeMap<String, SinkConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Where `/health`, `/metrics` and `/status` are served.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: default_listen(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9187))
}

/// Why a configuration was refused: every problem found, each naming its
/// key and the file.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "configuration {} has {n} problem{}:",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Top-level keys an environment variable may override. `HEADWATER_LOG`
/// alone is the log level, not the `[log]` table.
const TOP_LEVEL_KEYS: [&str; 6] = ["data_dir", "log", "api", "sources", "transforms", "sinks"];

impl Config {
    /// `headwater run --resnapshot SOURCE…`: marks each named PostgreSQL
    /// source; an unknown name or another kind of source is an error.
    pub fn request_resnapshots(&mut self, names: &[String]) -> Result<(), String> {
        for name in names {
            match self.sources.get(name) {
                Some(source) => source.kind().request_resnapshot().map_err(|why| {
                    format!(
                        "--resnapshot {name}: source `{name}` is a {} source; {why}",
                        source.type_name()
                    )
                })?,
                None => {
                    return Err(format!(
                        "--resnapshot {name}: there is no source `{name}` in the configuration (sources: {})",
                        self.sources.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                }
            }
        }
        Ok(())
    }

    /// Paths in sinks (an archive's `file://./dir`) are relative to the
    /// working directory, as `data_dir` is.
    fn resolve_relative_paths(&mut self) {
        let Ok(cwd) = std::env::current_dir() else {
            return;
        };
        for sink in self.sinks.values_mut() {
            sink.resolve_relative_paths(&cwd);
        }
    }

    /// Reads, substitutes, merges and validates `file`.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let refuse = |problems: Vec<String>| ConfigError {
            file: file.to_owned(),
            problems,
        };
        let text = std::fs::read_to_string(file).map_err(|e| {
            refuse(vec![format!(
                "cannot read it: {e}; pass the file with -c FILE (default ./headwater.toml)"
            )])
        })?;
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| {
            refuse(vec![format!(
                "not valid TOML: {}",
                e.to_string().trim_end()
            )])
        })?;
        let mut problems = Vec::new();
        substitute_table(&mut table, "", &mut problems);
        if !problems.is_empty() {
            return Err(refuse(problems));
        }
        let figment = Figment::from(Serialized::defaults(table)).merge(
            Env::prefixed("HEADWATER_").split("__").filter(|key| {
                let key = key.as_str().to_ascii_lowercase();
                let top = key.split('.').next().unwrap_or("");
                key != "log" && TOP_LEVEL_KEYS.contains(&top)
            }),
        );
        let (mut config, mut problems) = extract_each(&figment);
        config.resolve_relative_paths();
        let cross_check = problems.is_empty();
        problems.extend(config.validate(cross_check).iter().map(str::to_owned));
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(refuse(problems))
        }
    }

    /// Every problem a look at the config alone can find. `cross_check`
    /// also checks how sections refer to each other, which misleads when
    /// some section failed to load.
    pub fn validate(&self, cross_check: bool) -> Problems {
        let mut problems = Problems::new();
        self.log.validate(&mut problems);
        for (name, source) in &self.sources {
            check_name("sources", name, &mut problems);
            source.validate(name, &mut problems);
        }
        for (i, transform) in self.transforms.iter().enumerate() {
            transform.validate(i, &mut problems);
        }
        for (name, sink) in &self.sinks {
            check_name("sinks", name, &mut problems);
            if self.sources.contains_key(name) {
                problems.add(
                    format!("sinks.{name}"),
                    format!("has the name of a source; each has its own dead-letter topic (`_dlq.{name}`), so rename one"),
                );
            }
            sink.validate(name, &mut problems);
            for (i, pattern) in sink.topics().iter().enumerate() {
                let source_part = pattern.split('.').next().unwrap_or("");
                let feeds = self.sources.keys().any(|s| glob_match(source_part, s));
                if cross_check && !feeds && !self.has_route() {
                    problems.add(
                        format!("sinks.{name}.topics[{i}]"),
                        format!(
                            "`{pattern}` matches no source's topics (`{{source}}.{{namespace}}.{{table}}`; sources: {})",
                            self.source_names()
                        ),
                    );
                }
            }
        }
        for name in self.sinks.keys() {
            if self.sources.contains_key(name) {
                problems.add(
                    format!("sinks.{name}"),
                    "has the name of a source; give sources and sinks different names",
                );
            }
        }
        problems
    }

    fn has_route(&self) -> bool {
        self.transforms.iter().any(TransformConfig::names_topics)
    }

    fn source_names(&self) -> String {
        if self.sources.is_empty() {
            return "none".into();
        }
        self.sources.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// Names become topic prefixes, directory and metric labels.
fn check_name(section: &str, name: &str, problems: &mut Problems) {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        problems.add(
            format!("{section}.{name}"),
            "names may use only letters, digits, `_` and `-` (at most 64)",
        );
    }
}

/// Extracts section by section, so one wrong section does not hide the
/// problems of the others (serde stops at the first error it meets).
fn extract_each(figment: &Figment) -> (Config, Vec<String>) {
    let mut problems = Vec::new();
    if let Ok(figment::value::Value::Dict(_, top)) = figment.find_value("") {
        for key in top.keys().filter(|k| !TOP_LEVEL_KEYS.contains(&k.as_str())) {
            problems.push(format!(
                "`{key}`: unknown key; expected one of: {}",
                TOP_LEVEL_KEYS.join(", ")
            ));
        }
    }
    let sources = dict_keys(figment, "sources")
        .into_iter()
        .filter_map(|name| {
            extract_at(figment, &format!("sources.{name}"), &mut problems).map(|c| (name, c))
        })
        .collect();
    let sinks = dict_keys(figment, "sinks")
        .into_iter()
        .filter_map(|name| {
            extract_at(figment, &format!("sinks.{name}"), &mut problems).map(|c| (name, c))
        })
        .collect();
    let mut transforms = Vec::new();
    if let Ok(figment::value::Value::Array(_, items)) = figment.find_value("transforms") {
        for (i, item) in items.iter().enumerate() {
            match item.deserialize::<TransformConfig>() {
                Ok(t) => transforms.push(t),
                Err(e) => problems.extend(e.into_iter().map(|mut e| {
                    e.path
                        .splice(0..0, ["transforms".to_owned(), i.to_string()]);
                    describe_figment_error(e)
                })),
            }
        }
    }
    let data_dir = optional(figment, "data_dir", &mut problems).unwrap_or_else(default_data_dir);
    let log = optional(figment, "log", &mut problems).unwrap_or_default();
    let api = optional(figment, "api", &mut problems).unwrap_or_default();
    let config = Config {
        data_dir,
        log,
        api,
        sources,
        transforms,
        sinks,
    };
    (config, problems)
}

fn dict_keys(figment: &Figment, key: &str) -> Vec<String> {
    match figment.find_value(key) {
        Ok(figment::value::Value::Dict(_, dict)) => dict.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

fn optional<T: serde::de::DeserializeOwned>(
    figment: &Figment,
    key: &str,
    problems: &mut Vec<String>,
) -> Option<T> {
    figment.find_value(key).ok()?;
    extract_at(figment, key, problems)
}

/// `Figment::extract_inner`, describing each error with its full key:
/// figment appends the section's path after the inner path, so it is
/// moved to the front.
fn extract_at<T: serde::de::DeserializeOwned>(
    figment: &Figment,
    key: &str,
    problems: &mut Vec<String>,
) -> Option<T> {
    let errors = match figment.extract_inner(key) {
        Ok(value) => return Some(value),
        Err(errors) => errors,
    };
    let section: Vec<String> = key.split('.').map(str::to_owned).collect();
    problems.extend(errors.into_iter().map(|mut e| {
        if e.path.ends_with(&section) {
            e.path.rotate_right(section.len());
        }
        describe_figment_error(e)
    }));
    None
}

fn describe_figment_error(e: figment::Error) -> String {
    use figment::error::Kind;
    let from_env = e
        .metadata
        .as_ref()
        .filter(|m| m.name.contains("environment"))
        .map(|_| format!("HEADWATER_{}", e.path.join("__").to_ascii_uppercase()));
    let mut key = e.path.join(".");
    let what = match &e.kind {
        Kind::UnknownField(field, expected) => {
            if e.path.last() != Some(field) {
                key = join_key(&key, field);
            }
            if expected.is_empty() {
                "unknown key".to_owned()
            } else {
                format!("unknown key; expected one of: {}", expected.join(", "))
            }
        }
        Kind::MissingField(field) => {
            if e.path.last().map(String::as_str) != Some(field.as_ref()) {
                key = join_key(&key, field);
            }
            "is required but missing".to_owned()
        }
        Kind::UnknownVariant(variant, expected) => {
            format!("`{variant}` is not one of: {}", expected.join(", "))
        }
        other => other.to_string(),
    };
    match from_env {
        Some(var) if !var.is_empty() => {
            format!("`{key}` (from environment variable {var}): {what}")
        }
        _ => format!("`{key}`: {what}"),
    }
}

fn join_key(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_owned()
    } else {
        format!("{parent}.{field}")
    }
}

fn substitute_table(table: &mut toml::Table, prefix: &str, problems: &mut Vec<String>) {
    for (key, value) in table.iter_mut() {
        substitute_value(value, &join_key(prefix, key), problems);
    }
}

fn substitute_value(value: &mut toml::Value, key: &str, problems: &mut Vec<String>) {
    match value {
        toml::Value::String(s) => match substitute_env(s, |name| std::env::var(name).ok()) {
            Ok(replaced) => *s = replaced,
            Err(e) => problems.push(format!("`{key}`: {e}")),
        },
        toml::Value::Table(t) => substitute_table(t, key, problems),
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute_value(item, &format!("{key}[{i}]"), problems);
            }
        }
        _ => {}
    }
}

/// Replaces `${NAME}` with the variable's value; `$${` stands for a literal
/// `${`. An unset variable is an error that names it.
pub fn substitute_env(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    if !text.contains('$') {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| format!("`${{` without a closing `}}` in `{text}`"))?;
            let name = &tail[..end];
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!("`${{{name}}}` is not a variable name"));
            }
            let value = lookup(name).ok_or_else(|| {
                format!("environment variable `{name}` is not set; set it or remove `${{{name}}}`")
            })?;
            out.push_str(&value);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution() {
        let env = |name: &str| (name == "PW").then(|| "s3cret".to_owned());
        assert_eq!(substitute_env("a${PW}b", env).unwrap(), "as3cretb");
        assert_eq!(substitute_env("$${PW} $5", env).unwrap(), "${PW} $5");
        let err = substitute_env("${NOPE}", env).unwrap_err();
        assert!(err.contains("`NOPE` is not set"), "{err}");
        assert!(substitute_env("${PW", env).is_err());
    }
}
