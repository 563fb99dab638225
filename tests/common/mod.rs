//! Helpers for the binary's end-to-end tests: a throwaway PostgreSQL
//! database, the daemon as a child process, its metrics, and DuckDB.

#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use std::sync::Arc;

use headwater::metrics::Metrics;
use headwater::runtime::LogAppender;
use headwater_core::{CheckpointStore, SchemaRegistry};
use headwater_log::{Log, LogConfig};
use headwater_transforms::TransformChain;
use tokio_postgres::{Client, NoTls};

/// A daemon's data directory in a temporary directory: the log, the schema
/// registry and the checkpoints, opened as the daemon opens them.
pub struct DataDir {
    _dir: tempfile::TempDir,
    pub log: Arc<Log>,
    pub schemas: Arc<SchemaRegistry>,
    pub checkpoints: CheckpointStore,
}

impl DataDir {
    pub fn new() -> DataDir {
        let dir = tempfile::tempdir().unwrap();
        DataDir {
            log: Log::open(&dir.path().join("log"), LogConfig::default()).unwrap(),
            schemas: Arc::new(SchemaRegistry::open(dir.path().join("schemas")).unwrap()),
            checkpoints: CheckpointStore::open(dir.path().join("checkpoints")).unwrap(),
            _dir: dir,
        }
    }

    /// The daemon's appender for `source`, as a fresh start opens it (with
    /// its stored checkpoint).
    pub async fn appender(&self, source: &str) -> Arc<LogAppender> {
        LogAppender::open(
            source.into(),
            self.log.clone(),
            self.schemas.clone(),
            Arc::new(TransformChain::default()),
            self.checkpoints.clone(),
            Arc::new(Metrics::default()),
        )
        .await
        .unwrap()
    }
}

pub async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect(url);
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A database with a unique name, dropped (with its slot) by `cleanup`.
pub struct TestDb {
    pub name: String,
    pub admin: Client,
}

impl TestDb {
    pub async fn new(prefix: &str) -> TestDb {
        let name = testkit::unique_name(prefix);
        let admin = connect(&testkit::postgres_admin_url()).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        TestDb { name, admin }
    }

    pub fn url(&self) -> String {
        testkit::postgres_url(&self.name)
    }

    pub async fn client(&self) -> Client {
        connect(&self.url()).await
    }

    /// Drops the slots on this database, then the database.
    pub async fn cleanup(self) {
        let _ = self
            .admin
            .execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL",
                &[&self.name],
            )
            .await;
        let _ = self
            .admin
            .execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1", &[&self.name])
            .await;
        let _ = self
            .admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
    }
}

/// A port nobody listens on now (the API of a daemon under test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `headwater run` as a child process.
pub struct Daemon {
    child: Child,
    pub port: u16,
}

impl Daemon {
    pub fn start(config: &Path, port: u16, log_file: &Path) -> Daemon {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_file)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_headwater"))
            .args(["--log-format", "json", "run", "-c"])
            .arg(config)
            .env("HEADWATER_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Daemon { child, port }
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit status (must come within `deadline`).
    pub fn terminate(mut self, deadline: Duration) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let mut status = None;
        testkit::wait_until("the daemon to stop after SIGTERM", deadline, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        status.unwrap()
    }

    /// The `/metrics` values, summed per metric name and per full series.
    pub async fn metrics(&self) -> Option<BTreeMap<String, f64>> {
        let text = http_get(self.port, "/metrics").await?;
        let mut out = BTreeMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let name = series.split('{').next().unwrap_or(series).to_owned();
            *out.entry(name).or_insert(0.0) += value;
            out.insert(series.to_owned(), value);
        }
        Some(out)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn http_get(port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await.ok()?;
    body.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}

/// Runs `script` with the Python that has duckdb (and boto3, from moto);
/// returns its standard output.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new(testkit::duckdb_python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run the duckdb python from dev/services.sh");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Creates an S3 bucket on the test server.
pub fn create_bucket(bucket: &str) {
    let script = S3_CLIENT_PRELUDE.replace("#ACTION", "s3.create_bucket(Bucket=sys.argv[2])");
    python(&script, &[&testkit::s3_endpoint(), bucket]);
}

/// Copies every object of an S3 bucket under `dir`, keeping their keys.
pub fn download_bucket(bucket: &str, dir: &Path) {
    let action = "
import os
for page in s3.get_paginator('list_objects_v2').paginate(Bucket=sys.argv[2]):
    for obj in page.get('Contents', []):
        path = os.path.join(sys.argv[3], obj['Key'])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        s3.download_file(sys.argv[2], obj['Key'], path)
";
    python(
        &S3_CLIENT_PRELUDE.replace("#ACTION", action),
        &[&testkit::s3_endpoint(), bucket, dir.to_str().unwrap()],
    );
}

const S3_CLIENT_PRELUDE: &str = "
import sys, boto3
s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1')
#ACTION
";

pub fn temp_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    (dir, path)
}

/// Every record of `topic` in the log of the daemon configured by
/// `config`, as `headwater log tail --format json` prints them.
pub fn log_records(config: &Path, topic: &str) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_headwater"))
        .args(["log", "tail", topic, "--from-beginning", "-n", "10000000"])
        .args(["--format", "json", "-c"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Polls until the condition holds; panics after the deadline.
pub use testkit::wait_until_async as wait_for;
