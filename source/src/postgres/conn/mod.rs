//! Connections to PostgreSQL: our own for the walsender (CopyBoth), and
//! tokio-postgres over the same socket/TLS setup for SQL.

pub mod framing;
pub mod params;
pub mod startup;
pub mod stream;
pub mod tls;

pub use framing::{Connection, Frame};
pub use params::{ConnParams, Host, SslMode};

use crate::postgres::error::{PgError, PgResult};

/// An ordinary SQL session (catalog queries, snapshot reads), connected
/// through our own socket and TLS code so every `sslmode` and the unix
/// socket behave alike on both connections.
pub async fn sql_connect(params: &ConnParams) -> PgResult<tokio_postgres::Client> {
    let stream = stream::connect(params).await?;
    let mut config = tokio_postgres::Config::new();
    config
        .user(&params.user)
        .dbname(&params.dbname)
        .application_name(&params.application_name)
        .ssl_mode(tokio_postgres::config::SslMode::Disable)
        .options("-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=iso_8601 -c extra_float_digits=3");
    if let Some(password) = &params.password {
        config.password(password.expose());
    }
    let (client, connection) = config
        .connect_raw(stream, tokio_postgres::NoTls)
        .await
        .map_err(|e| match e.code() {
            Some(code) if code.code().starts_with("28") => PgError::Auth {
                user: params.user.clone(),
                reason: e.to_string(),
            },
            _ => PgError::sql(format!("connecting to {}", params.target()), e),
        })?;
    let target = params.target();
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(%target, error = %e, "SQL connection ended");
        }
    });
    Ok(client)
}
