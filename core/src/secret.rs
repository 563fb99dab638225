//! Values that must never reach a log line or a Debug dump.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A secret string (a password, a key). Debug and Display print `***`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A connection URL that may hold a password. Debug and Display show the
/// URL with the password replaced by `***`; [`SecretUrl::expose`] gives the
/// real one to the code that connects.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> Self {
        SecretUrl(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL fit for logs.
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                // Cannot fail: the URL has a password, so it has a host.
                let _ = url.set_password(Some("***"));
                url.to_string()
            }
            Ok(url) => url.to_string(),
            // Not a URL (a libpq key=value string, say): hide any password=…
            Err(_) => redact_key_value_password(&self.0),
        }
    }
}

fn redact_key_value_password(conninfo: &str) -> String {
    conninfo
        .split_whitespace()
        .map(|part| match part.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for SecretUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SecretUrl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_print() {
        let url = SecretUrl::new("postgres://repl:s3cr%40t@localhost:5432/shop");
        for shown in [format!("{url}"), format!("{url:?}")] {
            assert!(!shown.contains("s3cr"), "{shown}");
            assert!(shown.contains("repl:***@localhost"), "{shown}");
        }
        let kv = SecretUrl::new("host=/var/run/postgresql user=a password=hunter2 dbname=x");
        assert!(!kv.to_string().contains("hunter2"));
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "\"***\"");
    }
}
