//! Where the test services are. `dev/services.sh` starts them on these
//! loopback defaults; the environment variables override them.

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// A superuser-ish role for setup (creating databases, slots).
pub fn postgres_admin_url() -> String {
    env_or(
        "HEADWATER_TEST_PG_ADMIN_URL",
        "postgres://headwater:headwater@127.0.0.1:5432/postgres",
    )
}

/// The URL a test's source connects with, for database `db`.
pub fn postgres_url(db: &str) -> String {
    let base = env_or(
        "HEADWATER_TEST_PG_URL",
        "postgres://headwater:headwater@127.0.0.1:5432",
    );
    format!("{}/{db}", base.trim_end_matches('/'))
}

pub fn mysql_url() -> String {
    env_or(
        "HEADWATER_TEST_MYSQL_URL",
        "mysql://headwater:headwater@127.0.0.1:3306",
    )
}

pub fn s3_endpoint() -> String {
    env_or("HEADWATER_TEST_S3_ENDPOINT", "http://127.0.0.1:9000")
}

/// The Azure Blob stand-in (Azurite, its well-known development account).
pub fn azure_endpoint() -> String {
    env_or("HEADWATER_TEST_AZURE_ENDPOINT", "http://127.0.0.1:10000")
}

/// The CA that signed the test PostgreSQL server's certificate (for
/// `sslmode=verify-full`); `dev/services.sh` makes it.
pub fn postgres_ca_path() -> String {
    env_or(
        "HEADWATER_TEST_PG_CA",
        "/var/lib/headwater-dev/pg-tls/ca.crt",
    )
}

/// The Python that has duckdb installed (`dev/services.sh` makes it).
pub fn duckdb_python() -> String {
    env_or(
        "HEADWATER_DUCKDB_PYTHON",
        "/var/lib/headwater-dev/venv/bin/python",
    )
}
