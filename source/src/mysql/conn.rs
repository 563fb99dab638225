//! SQL connections: opening one from the configured URL, and small query
//! helpers that read raw values (so no conversion error can carry row data
//! into a log line) and map failures to [`MySqlError`] naming the server.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Params, Value as MyValue};

use super::error::{MySqlError, Result};
use headwater_core::SecretUrl;

/// An open SQL connection and the redacted URL for messages.
pub struct Sql {
    pub conn: Conn,
    pub url: String,
    /// `SELECT VERSION()` says MariaDB.
    pub mariadb: bool,
}

pub fn opts(url: &SecretUrl) -> Result<Opts> {
    let opts = Opts::from_url(url.expose()).map_err(|e| {
        MySqlError::Config(format!(
            "url `{}` is not a valid MySQL URL: {e}",
            url.redacted()
        ))
    })?;
    Ok(OptsBuilder::from_opts(opts)
        .prefer_socket(false)
        .stmt_cache_size(32)
        .into())
}

impl Sql {
    pub async fn connect(url: &SecretUrl) -> Result<Sql> {
        let redacted = url.redacted();
        let conn = Conn::new(opts(url)?)
            .await
            .map_err(|source| MySqlError::Connect {
                url: redacted.clone(),
                source,
            })?;
        let mut sql = Sql {
            conn,
            url: redacted,
            mariadb: false,
        };
        let version = sql.variable("version").await?.unwrap_or_default();
        sql.mariadb = version.contains("MariaDB");
        Ok(sql)
    }

    pub async fn execute(&mut self, sql: &str) -> Result<()> {
        self.conn
            .query_drop(sql)
            .await
            .map_err(|e| MySqlError::query(format!("`{sql}`"), &self.url, e))
    }

    /// Runs a prepared statement and returns its rows as raw values.
    pub async fn rows(
        &mut self,
        sql: &str,
        params: impl Into<Params> + Send,
    ) -> Result<Vec<Vec<MyValue>>> {
        let rows: Vec<mysql_async::Row> = self
            .conn
            .exec(sql, params)
            .await
            .map_err(|e| MySqlError::query(format!("`{sql}`"), &self.url, e))?;
        Ok(rows.into_iter().map(mysql_async::Row::unwrap).collect())
    }

    /// Runs a text-protocol query (for SHOW statements) and returns raw values.
    pub async fn text_rows(&mut self, sql: &str) -> Result<Vec<Vec<MyValue>>> {
        let rows: Vec<mysql_async::Row> = self
            .conn
            .query(sql)
            .await
            .map_err(|e| MySqlError::query(format!("`{sql}`"), &self.url, e))?;
        Ok(rows.into_iter().map(mysql_async::Row::unwrap).collect())
    }

    /// The first column of the first row as text (`SELECT @@var`).
    pub async fn variable(&mut self, name: &str) -> Result<Option<String>> {
        let rows = self.text_rows(&format!("SELECT @@{name}")).await?;
        Ok(rows.first().and_then(|r| r.first()).and_then(text))
    }
}

/// A value as text (NULL → None).
pub fn text(value: &MyValue) -> Option<String> {
    match value {
        MyValue::NULL => None,
        MyValue::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        MyValue::Int(i) => Some(i.to_string()),
        MyValue::UInt(u) => Some(u.to_string()),
        other => Some(other.as_sql(true)),
    }
}

pub fn number(value: &MyValue) -> Option<u64> {
    match value {
        MyValue::Int(i) => u64::try_from(*i).ok(),
        MyValue::UInt(u) => Some(*u),
        MyValue::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// Quotes an identifier with backticks.
pub fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}
