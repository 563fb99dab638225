//! `headwater check -c config/quickstart.toml` passes against the live
//! services and says what it checked (the demo's database is replaced by
//! a throwaway one through the environment overrides users have too).

#![allow(clippy::unwrap_used)]

mod common;

#[tokio::test]
async fn quickstart_check_passes_and_says_what_it_checked() {
    let db = common::TestDb::new("quickstart").await;
    db.client()
        .await
        .batch_execute("CREATE TABLE orders (id int PRIMARY KEY); CREATE TABLE customers (id int PRIMARY KEY, email text)")
        .await
        .unwrap();
    let archive = tempfile::tempdir().unwrap();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config/quickstart.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_headwater"))
        .args(["check", "-c", config])
        .env("PGPASSWORD", "headwater")
        .env("MASK_SALT", "salt")
        .env("HEADWATER_SOURCES__SHOP__URL", db.url())
        .env(
            "HEADWATER_SINKS__ARCHIVE__URL",
            format!("file://{}", archive.path().display()),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "configuration",
        "wal_level is logical",
        "may replicate",
        "table public.orders",
        "table public.customers",
        "is reachable",
    ] {
        assert!(
            stdout.contains(expected),
            "`{expected}` missing from:\n{stdout}"
        );
    }
    db.cleanup().await;
}
