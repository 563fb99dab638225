//! Shared pieces of the Parquet sink tests: a table with every value kind,
//! events, and the two backends (local directory, S3 server) the
//! conformance tests run against.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use headwater_core::codec::encode_event;
use headwater_core::{
    ChangeEvent, Date, Decimal, Interval, MySqlPosition, Op, Position, SinkRecord, TableId,
    TableSchema, Time, TimeTz, Timestamp, Value, ValueKind,
};
use headwater_sink::parquet::config::S3Options;
use headwater_sink::parquet::{read_archive, Archive, ArchiveFilter, ParquetConfig, StoreOptions};
use object_store::ObjectStoreExt;
use testkit::event::column;
use testkit::EventBuilder;

pub const TOPIC: &str = "shop.public.things";

/// A table with one column of every value kind.
pub fn all_kinds_schema(version: u32) -> Arc<TableSchema> {
    let mut columns = vec![
        column("id", ValueKind::Int64, Some(0)),
        column("b", ValueKind::Bool, None),
        column("i16", ValueKind::Int16, None),
        column("i32", ValueKind::Int32, None),
        column("u64", ValueKind::UInt64, None),
        column("f32", ValueKind::Float32, None),
        column("f64", ValueKind::Float64, None),
        column(
            "dec",
            ValueKind::Decimal {
                precision: Some(10),
                scale: Some(2),
            },
            None,
        ),
        column(
            "dec_wide",
            ValueKind::Decimal {
                precision: Some(50),
                scale: Some(5),
            },
            None,
        ),
        column(
            "num",
            ValueKind::Decimal {
                precision: None,
                scale: None,
            },
            None,
        ),
        column("txt", ValueKind::Text, None),
        column("bin", ValueKind::Bytes, None),
        column("doc", ValueKind::Json, None),
        column("uid", ValueKind::Uuid, None),
        column("day", ValueKind::Date, None),
        column("tod", ValueKind::Time, None),
        column("todtz", ValueKind::TimeTz, None),
        column("ts", ValueKind::Timestamp, None),
        column("tstz", ValueKind::TimestampTz, None),
        column("iv", ValueKind::Interval, None),
        column("ints", ValueKind::Array(Box::new(ValueKind::Int32)), None),
        column(
            "grid",
            ValueKind::Array(Box::new(ValueKind::Array(Box::new(ValueKind::Text)))),
            None,
        ),
        column("mood", ValueKind::Enum, None),
        column("toast", ValueKind::Text, None),
    ];
    if version > 1 {
        columns.push(column("added", ValueKind::Text, None));
    }
    Arc::new(TableSchema {
        table: TableId::new("public", "things"),
        version,
        columns,
    })
}

/// A one-dimensional array indexed from 1.
pub fn list(elements: Vec<Value>) -> Value {
    Value::Array(headwater_core::value::Array::list(elements))
}

/// An array of `(length, lower bound)` dimensions.
pub fn shaped(dims: &[(u32, i32)], elements: Vec<Value>) -> Value {
    let dims = dims
        .iter()
        .map(|&(len, lower)| headwater_core::value::Dim { len, lower })
        .collect();
    Value::Array(headwater_core::value::Array::new(dims, elements).expect("test array"))
}

pub fn dec(text: &str) -> Value {
    Value::Decimal(text.parse::<Decimal>().expect("test decimal"))
}

/// Row `i` of the all-kinds table: ordinary values, with a few rows of
/// extremes (every NULL, infinities, the largest numbers).
pub fn all_kinds_row(schema: &TableSchema, i: i64) -> Vec<Value> {
    let mut row = match i % 4 {
        1 => vec![
            Value::Int64(i),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Unchanged,
        ],
        2 => vec![
            Value::Int64(i64::MIN + i),
            Value::Bool(false),
            Value::Int16(i16::MIN),
            Value::Int32(i32::MAX),
            Value::UInt64(u64::MAX),
            Value::Float32(f32::NAN),
            Value::Float64(f64::NEG_INFINITY),
            dec("-99999999.99"),
            dec("123456789012345678901234567890123456789012345.12345"),
            dec("NaN"),
            Value::Text(String::new()),
            Value::Bytes(Vec::new()),
            Value::Json("[]".into()),
            Value::Uuid([0xff; 16]),
            Value::Date(Date::PosInfinity),
            Value::Time(Time(86_400_000_000)),
            Value::TimeTz(TimeTz {
                micros: 0,
                offset_seconds: -19_800,
            }),
            Value::Timestamp(Timestamp::NegInfinity),
            Value::TimestampTz(Timestamp::PosInfinity),
            Value::Interval(Interval {
                months: -14,
                days: 3,
                micros: -1,
            }),
            list(Vec::new()),
            list(vec![list(Vec::new()), Value::Null]),
            Value::Enum("sad".into()),
            Value::Text("x".repeat(3000)),
        ],
        3 => vec![
            Value::Int64(i),
            Value::Bool(true),
            Value::Int16(-1),
            Value::Int32(0),
            Value::UInt64(0),
            Value::Float32(-0.0),
            Value::Float64(f64::NAN),
            dec("0.50"),
            dec("-0.00001"),
            dec("-Infinity"),
            Value::Text("naïve ☃ \"quoted\"".into()),
            Value::Bytes(vec![0, 255, 10]),
            Value::Json("{\"b\": 1,  \"a\": [true, null]}".into()),
            Value::Uuid([0; 16]),
            Value::Date(Date::NegInfinity),
            Value::Time(Time(0)),
            Value::TimeTz(TimeTz {
                micros: 86_399_999_999,
                offset_seconds: 50_400,
            }),
            Value::Timestamp(Timestamp::Micros(-62_135_596_800_000_000)),
            Value::TimestampTz(Timestamp::NegInfinity),
            Value::Interval(Interval {
                months: 0,
                days: 0,
                micros: 0,
            }),
            list(vec![Value::Null, Value::Int32(-7)]),
            Value::Null,
            Value::Enum("".into()),
            Value::Null,
        ],
        _ => vec![
            Value::Int64(i),
            Value::Bool(true),
            Value::Int16(i as i16),
            Value::Int32(i as i32 * 1000),
            Value::UInt64(18_446_744_073_709_551_615 - i as u64),
            Value::Float32(1.5),
            Value::Float64(std::f64::consts::PI),
            dec(&format!("{}.25", i)),
            dec("1.5"),
            dec("3.14159265358979323846264338327950288419716939937510"),
            Value::Text(format!("row {i}")),
            Value::Bytes(vec![1, 2, 3]),
            Value::Json("{\"a\": 1}".into()),
            Value::Uuid([
                0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
                0x0a, 0x11,
            ]),
            Value::Date(Date::Days(19_782)),
            Value::Time(Time(45_296_000_001)),
            Value::TimeTz(TimeTz {
                micros: 3_600_000_000,
                offset_seconds: 3600,
            }),
            Value::Timestamp(Timestamp::Micros(1_709_300_700_123_456)),
            Value::TimestampTz(Timestamp::Micros(1_709_300_700_000_001)),
            Value::Interval(Interval {
                months: 14,
                days: 3,
                micros: 3_723_000_001,
            }),
            list(vec![Value::Int32(1), Value::Int32(2), Value::Int32(3)]),
            list(vec![
                list(vec![Value::Text("a".into()), Value::Null]),
                list(vec![Value::Text("b".into())]),
            ]),
            Value::Enum("happy".into()),
            Value::Text("toasted".into()),
        ],
    };
    if schema.columns.len() > row.len() {
        row.push(Value::Text(format!("added {i}")));
    }
    if i % 4 == 0 {
        // A declared-scale column reads back at its scale; write it so.
        row[8] = dec("1.50000");
    }
    row
}

/// 2024-03-01T13:00:00Z plus `minutes`.
pub fn commit_time(minutes: i64) -> Timestamp {
    Timestamp::Micros(1_709_298_000_000_000 + minutes * 60_000_000)
}

/// Event `i` of the all-kinds table: its position, commit time and
/// transaction follow from `i`; the caller gives the row.
pub fn event(schema: &Arc<TableSchema>, op: Op, i: i64) -> EventBuilder {
    let lsn = 0x1000 + i as u64 * 16;
    EventBuilder::with_schema(op, schema)
        .pg(lsn + 8, lsn)
        .commit_ts(commit_time(i % 30))
        .tx_id(700 + i as u64)
}

pub fn record(partition: u32, offset: u64, event: ChangeEvent) -> SinkRecord {
    SinkRecord {
        topic: TOPIC.into(),
        partition,
        offset,
        event,
    }
}

/// Inserts of the all-kinds table at offsets `from..to`.
pub fn inserts(schema: &Arc<TableSchema>, partition: u32, from: u64, to: u64) -> Vec<SinkRecord> {
    (from..to)
        .map(|o| {
            let row = all_kinds_row(schema, o as i64);
            record(
                partition,
                o,
                event(schema, Op::Insert, o as i64).row(row).build(),
            )
        })
        .collect()
}

/// Every shape of event: each op, before-images, key-only deletes, a
/// primary-key change, a routed topic, headers, another table name.
pub fn every_shape(schema: &Arc<TableSchema>, partition: u32, from: u64) -> Vec<SinkRecord> {
    let row = |i: i64| all_kinds_row(schema, i);
    let event = |op, i| event(schema, op, i);
    // A before-image that is all unchanged except the key (REPLICA
    // IDENTITY DEFAULT style).
    let mut sparse = vec![Value::Unchanged; schema.columns.len()];
    sparse[0] = Value::Int64(7);
    let events = [
        event(Op::Read, 0).row(row(0)),
        event(Op::Insert, 1).row(row(1)),
        event(Op::Update, 2).before(row(2)).after(row(3)),
        event(Op::Update, 3).row(row(1)),
        event(Op::Delete, 4).row(row(4)),
        // A key-only delete.
        event(Op::Delete, 5).key(vec![Value::Int64(5)]),
        event(Op::Truncate, 6),
        event(Op::Update, 7).before(sparse).after(row(7)),
        // A primary-key update that reports the old key.
        event(Op::Update, 8).row(row(8)).key(vec![Value::Int64(-8)]),
        // Routed, with headers, from another source, table and database.
        event(Op::Insert, 9)
            .row(row(9))
            .topic("custom.topic")
            .header("trace", b"abc")
            .header("empty", b"")
            .table("public.things_renamed")
            .commit_ts(None)
            .tx_id(None)
            .source("other")
            .position(Position::MySql(MySqlPosition {
                file: "mysql-bin.000003".into(),
                offset: 4711,
                gtid_set: Some("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5".into()),
                tx_index: 0,
            })),
        event(Op::Message, 10).row(row(10)),
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| record(partition, from + i as u64, e.build()))
        .collect()
}

/// Exact comparison (bit-for-bit floats) through the log's encoding.
pub fn encoded(events: impl IntoIterator<Item = ChangeEvent>) -> Vec<Vec<u8>> {
    events
        .into_iter()
        .map(|e| {
            let mut out = Vec::new();
            encode_event(&e, &mut out);
            out
        })
        .collect()
}

pub fn assert_same_events(got: &[SinkRecord], want: &[SinkRecord]) {
    assert_eq!(got.len(), want.len(), "number of records");
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.partition, g.offset), (w.partition, w.offset));
        assert_eq!(&*g.topic, &*w.topic);
        if encoded([g.event.clone()]) != encoded([w.event.clone()])
            || g.event.schema != w.event.schema
        {
            panic!(
                "offset {} differs:\n got {:?}\nwant {:?}",
                w.offset, g.event, w.event
            );
        }
    }
}

/// Where an archive goes; implemented per object store.
pub trait Backend: Sized {
    async fn create() -> Self;
    fn config(&self) -> ParquetConfig;
    /// A config whose store cannot be reached until [`Backend::repair`].
    async fn broken_config(&mut self) -> ParquetConfig;
    async fn repair(&mut self);
    async fn cleanup(self);
}

pub struct FileBackend {
    dir: tempfile::TempDir,
}

impl FileBackend {
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Backend for FileBackend {
    async fn create() -> Self {
        FileBackend {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn config(&self) -> ParquetConfig {
        ParquetConfig::new(
            format!("file://{}", self.dir.path().display()),
            vec!["shop.*".into()],
        )
    }

    /// A regular file where the topic's directory must go: every upload
    /// fails until it is removed.
    async fn broken_config(&mut self) -> ParquetConfig {
        std::fs::write(self.dir.path().join(TOPIC), b"in the way").expect("blocker");
        self.config()
    }

    async fn repair(&mut self) {
        std::fs::remove_file(self.dir.path().join(TOPIC)).expect("remove blocker");
    }

    async fn cleanup(self) {}
}

/// A loopback port with nothing listening, until [`BrokenPort::repair`]
/// makes it a proxy to the real server: a store that is down, then back.
#[derive(Default)]
pub struct BrokenPort {
    port: Option<u16>,
    proxy: Option<tokio::task::JoinHandle<()>>,
}

impl BrokenPort {
    /// `http://127.0.0.1:{port}`, with nothing listening there yet.
    fn endpoint(&mut self) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        self.port = Some(port);
        format!("http://127.0.0.1:{port}")
    }

    /// Opens the port as a proxy to `target` (`host:port`).
    async fn repair(&mut self, target: String) {
        let port = self.port.expect("a broken endpoint first");
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("rebind the closed port");
        self.proxy = Some(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }
}

impl Drop for BrokenPort {
    fn drop(&mut self) {
        if let Some(proxy) = &self.proxy {
            proxy.abort();
        }
    }
}

fn host_of(endpoint: &str) -> String {
    endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// An HTTP/1.1 request without authentication; the response as text.
async fn raw_http(endpoint: &str, method: &str, path: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = host_of(endpoint);
    let mut stream = tokio::net::TcpStream::connect(&host)
        .await
        .unwrap_or_else(|e| panic!("{endpoint} is not running (bash dev/services.sh): {e}"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
}

/// Deletes every object of the archive's bucket.
async fn empty_bucket(config: &ParquetConfig) {
    let archive = open(config).await;
    let all: Vec<_> = archive
        .store
        .list(None)
        .try_collect()
        .await
        .unwrap_or_default();
    for meta in all {
        let _ = archive.store.delete(&meta.location).await;
    }
}

fn unique_bucket() -> String {
    testkit::unique_name("hw").replace('_', "-")
}

pub struct S3Backend {
    pub bucket: String,
    broken: BrokenPort,
}

impl S3Backend {
    fn config_for(&self, endpoint: String) -> ParquetConfig {
        let mut config = ParquetConfig::new(
            format!("s3://{}/archive", self.bucket),
            vec!["shop.*".into()],
        );
        config.s3 = S3Options {
            endpoint: Some(endpoint),
            region: Some("us-east-1".into()),
            access_key_id: Some("test".into()),
            secret_access_key: Some(headwater_core::Secret::new("test")),
            allow_http: true,
        };
        config.request_timeout = headwater_core::config::HumanDuration(Duration::from_secs(5));
        config
    }
}

impl Backend for S3Backend {
    async fn create() -> Self {
        let bucket = unique_bucket();
        let response = raw_http(&testkit::s3_endpoint(), "PUT", &format!("/{bucket}"), "").await;
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "create bucket: {response}"
        );
        S3Backend {
            bucket,
            broken: BrokenPort::default(),
        }
    }

    fn config(&self) -> ParquetConfig {
        self.config_for(testkit::s3_endpoint())
    }

    async fn broken_config(&mut self) -> ParquetConfig {
        let endpoint = self.broken.endpoint();
        self.config_for(endpoint)
    }

    async fn repair(&mut self) {
        self.broken.repair(host_of(&testkit::s3_endpoint())).await;
    }

    async fn cleanup(self) {
        empty_bucket(&self.config()).await;
        raw_http(
            &testkit::s3_endpoint(),
            "DELETE",
            &format!("/{}", self.bucket),
            "",
        )
        .await;
    }
}

/// Azure Blob Storage through Azurite and its well-known development
/// account. The store reads its settings from the environment, as a
/// user's daemon does (`AZURE_STORAGE_USE_EMULATOR`,
/// `AZURITE_BLOB_STORAGE_URL`); each test runs in its own process
/// (nextest), so setting them here touches no other test. Containers are
/// made and removed with the Azure SDK for Python (the object store cannot).
/// Not covered: Entra ID tokens and SAS, which need Azure itself.
pub struct AzureBackend {
    container: String,
    broken: BrokenPort,
}

fn use_azure_at(endpoint: &str) {
    std::env::set_var("AZURE_STORAGE_USE_EMULATOR", "true");
    std::env::set_var("AZURITE_BLOB_STORAGE_URL", endpoint);
}

/// Runs `action` on the container with the Azure SDK for Python.
fn azure_container(action: &str, container: &str) {
    let script = r#"
import sys
from azure.storage.blob import BlobServiceClient
key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
conn = f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};BlobEndpoint={sys.argv[1]}/devstoreaccount1;"
client = BlobServiceClient.from_connection_string(conn)
getattr(client, sys.argv[2])(sys.argv[3])
"#;
    let output = std::process::Command::new(testkit::duckdb_python())
        .args(["-c", script, &testkit::azure_endpoint(), action, container])
        .output()
        .expect("run python (bash dev/services.sh installs azure-storage-blob)");
    assert!(
        output.status.success(),
        "{action} {container}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Backend for AzureBackend {
    async fn create() -> Self {
        let container = unique_bucket();
        azure_container("create_container", &container);
        use_azure_at(&testkit::azure_endpoint());
        AzureBackend {
            container,
            broken: BrokenPort::default(),
        }
    }

    fn config(&self) -> ParquetConfig {
        let mut config = ParquetConfig::new(
            format!("az://{}/archive", self.container),
            vec!["shop.*".into()],
        );
        config.request_timeout = headwater_core::config::HumanDuration(Duration::from_secs(5));
        config
    }

    async fn broken_config(&mut self) -> ParquetConfig {
        use_azure_at(&self.broken.endpoint());
        self.config()
    }

    async fn repair(&mut self) {
        self.broken
            .repair(host_of(&testkit::azure_endpoint()))
            .await;
    }

    async fn cleanup(self) {
        azure_container("delete_container", &self.container);
    }
}

pub async fn open(config: &ParquetConfig) -> Archive {
    Archive::open(&config.url, &StoreOptions::from_config(config))
        .await
        .expect("open archive")
}

/// Every `.parquet` object under the archive, relative to its prefix.
pub async fn list_files(config: &ParquetConfig) -> Vec<String> {
    let archive = open(config).await;
    let mut names: Vec<String> = archive
        .store
        .list(Some(&archive.prefix))
        .try_collect::<Vec<_>>()
        .await
        .expect("list archive")
        .into_iter()
        .map(|m| m.location.to_string())
        .filter(|p| p.ends_with(".parquet"))
        .map(|p| {
            p.strip_prefix(archive.prefix.as_ref())
                .unwrap_or(&p)
                .trim_start_matches('/')
                .to_owned()
        })
        .collect();
    names.sort();
    names
}

pub async fn read_all(config: &ParquetConfig, filter: ArchiveFilter) -> Vec<SinkRecord> {
    read_archive(&config.url, &StoreOptions::from_config(config), filter)
        .await
        .expect("open archive for reading")
        .try_collect()
        .await
        .expect("read archive")
}
