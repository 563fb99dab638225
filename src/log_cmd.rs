//! `headwater log …`: inspect the embedded log under `{data_dir}/log`.
//!
//! Every command opens the log read-only, so it is safe while the daemon
//! runs: nothing is created, cut or deleted. `topics` and `tail` read it
//! through [`EventLog`]; `verify` checks the embedded log's files.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Subcommand, ValueEnum};
use headwater_core::codec::decode_event;
use headwater_core::value::uuid_to_string;
use headwater_core::{ChangeEvent, SchemaRegistry, TableSchema, Timestamp, Value};
use headwater_log::{EventLog, Log, LogConfig, LogRecord};
use serde_json::{json, Map, Value as Json};

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// List topics with their partitions and offsets.
    Topics,
    /// Print the change events of a topic (by default the last 10 of each
    /// partition).
    Tail {
        topic: String,
        /// Only this partition.
        #[arg(long)]
        partition: Option<u32>,
        /// From the oldest stored record.
        #[arg(long, conflicts_with_all = ["offset", "since"])]
        from_beginning: bool,
        /// From this offset in each partition.
        #[arg(long, conflicts_with = "since")]
        offset: Option<u64>,
        /// From this time: RFC 3339 (`2026-11-23T10:00:00Z`) or a duration
        /// ago (`15m`, `2h`).
        #[arg(long)]
        since: Option<String>,
        /// How many records per partition without --from-beginning,
        /// --offset or --since; the most to print otherwise.
        #[arg(short = 'n', long, default_value_t = 10)]
        lines: u64,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// CRC-check every batch of every segment; exits non-zero on damage.
    Verify,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub fn run(command: LogCommand, data_dir: &Path) -> anyhow::Result<()> {
    let dir = data_dir.join("log");
    if let LogCommand::Verify = command {
        return verify(&dir);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(inspect(command, data_dir, &dir))
}

async fn inspect(command: LogCommand, data_dir: &Path, dir: &Path) -> anyhow::Result<()> {
    match command {
        LogCommand::Topics => topics(&*open(dir)?).await,
        LogCommand::Tail {
            topic,
            partition,
            from_beginning,
            offset,
            since,
            lines,
            format,
        } => {
            let start = match (from_beginning, offset, since) {
                (true, _, _) => Start::Beginning,
                (_, Some(offset), _) => Start::Offset(offset),
                (_, _, Some(since)) => Start::Time(parse_since(&since)?),
                _ => Start::Last(lines),
            };
            let limit = if matches!(start, Start::Last(_)) {
                u64::MAX
            } else {
                lines.max(1)
            };
            let schemas = SchemaRegistry::open(data_dir.join("schemas"))
                .context("opening the schema registry")?;
            tail(
                &*open(dir)?,
                &schemas,
                &topic,
                partition,
                start,
                limit,
                format,
            )
            .await
        }
        LogCommand::Verify => verify(dir),
    }
}

fn open(dir: &Path) -> anyhow::Result<Arc<dyn EventLog>> {
    let log = Log::open_read_only(dir, LogConfig::default())
        .with_context(|| format!("opening the log at {}", dir.display()))?;
    Ok(log)
}

async fn topics(log: &dyn EventLog) -> anyhow::Result<()> {
    let topics = log.topics().await?;
    if topics.is_empty() {
        println!("no topics");
        return Ok(());
    }
    println!(
        "{:<40} {:>9} {:>12} {:>12} {:>8} {:>12}",
        "TOPIC", "PARTITION", "START", "END", "SEGMENTS", "BYTES"
    );
    for t in topics {
        for p in &t.partition_info {
            println!(
                "{:<40} {:>9} {:>12} {:>12} {:>8} {:>12}",
                t.name, p.partition, p.log_start, p.high_watermark, p.segments, p.bytes
            );
        }
    }
    Ok(())
}

#[derive(Clone, Copy, Debug)]
enum Start {
    Beginning,
    Offset(u64),
    Time(i64),
    Last(u64),
}

fn parse_since(text: &str) -> anyhow::Result<i64> {
    let when = match humantime::parse_rfc3339_weak(text) {
        Ok(time) => time,
        Err(_) => {
            let ago = humantime::parse_duration(text).with_context(|| {
                format!(
                    "`{text}` is neither a time like 2026-11-23T10:00:00Z nor a duration like 15m"
                )
            })?;
            SystemTime::now().checked_sub(ago).unwrap_or(UNIX_EPOCH)
        }
    };
    let ms = when
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis();
    Ok(i64::try_from(ms).unwrap_or(i64::MAX))
}

async fn tail(
    log: &dyn EventLog,
    schemas: &SchemaRegistry,
    topic: &str,
    only: Option<u32>,
    start: Start,
    limit: u64,
    format: Format,
) -> anyhow::Result<()> {
    let Some(info) = log.topics().await?.into_iter().find(|t| t.name == topic) else {
        bail!("topic `{topic}` is not in the log (see `headwater log topics`)");
    };
    if let Some(p) = only.filter(|&p| p >= info.partitions) {
        bail!(
            "topic `{topic}` has {} partitions; there is no partition {p}",
            info.partitions
        );
    }
    let mut printed = 0u64;
    for p in (0..info.partitions).filter(|p| only.is_none_or(|o| o == *p)) {
        let from = match start {
            Start::Beginning => 0,
            Start::Offset(offset) => offset,
            Start::Time(ts) => log.offset_for_timestamp(topic, p, ts).await?,
            Start::Last(n) => log
                .offsets(topic, p)
                .await?
                .high_watermark
                .saturating_sub(n),
        };
        let mut reader = log.reader(topic, p, from).await?;
        while printed < limit {
            let batch = reader.read_available(1000).await?;
            if batch.is_empty() {
                break;
            }
            let mut out = std::io::stdout().lock();
            for record in batch.into_iter().take((limit - printed) as usize) {
                let line = render(topic, p, &record, schemas, format);
                match writeln!(out, "{line}") {
                    Ok(()) => printed += 1,
                    // The reader went away (`| head`): that is the end.
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(())
}

fn render(
    topic: &str,
    partition: u32,
    record: &LogRecord,
    schemas: &SchemaRegistry,
    format: Format,
) -> String {
    let event = decode_event(&record.value, |id| schemas.get(id));
    let mut out = Map::new();
    out.insert("topic".into(), json!(topic));
    out.insert("partition".into(), json!(partition));
    out.insert("offset".into(), json!(record.offset));
    out.insert("timestamp_ms".into(), json!(record.timestamp_ms));
    match event {
        Ok(event) => event_json(&event, &mut out),
        Err(e) => {
            out.insert(
                "error".into(),
                json!(format!("cannot decode this record: {e}")),
            );
            out.insert("bytes".into(), json!(record.value.len()));
        }
    }
    match format {
        Format::Json => Json::Object(out).to_string(),
        Format::Text => {
            let get = |k: &str| out.get(k).map(|v| v.to_string()).unwrap_or_default();
            let mut line = format!(
                "{partition}@{} {} {} {} key={}",
                record.offset,
                get("op").trim_matches('"'),
                get("table").trim_matches('"'),
                get("position").trim_matches('"'),
                get("key")
            );
            for field in ["before", "after", "headers", "error"] {
                if let Some(v) = out.get(field) {
                    line.push_str(&format!(" {field}={v}"));
                }
            }
            line
        }
    }
}

/// An instant as ISO-8601 with its zone (`…Z`); the infinities as they are.
fn utc(ts: &Timestamp) -> String {
    match ts {
        Timestamp::Micros(_) => format!("{ts}Z"),
        infinite => infinite.to_string(),
    }
}

fn event_json(event: &ChangeEvent, out: &mut Map<String, Json>) {
    let schema = &event.schema;
    out.insert("op".into(), json!(event.op.code()));
    out.insert("source".into(), json!(&*event.source));
    out.insert("table".into(), json!(event.table.to_string()));
    out.insert("position".into(), json!(event.position.to_string()));
    if let Some(ts) = &event.commit_ts {
        out.insert("commit_ts".into(), json!(utc(ts)));
    }
    if let Some(tx) = event.tx_id {
        out.insert("tx_id".into(), json!(tx));
    }
    let key_names: Vec<String> = schema
        .key_indexes()
        .into_iter()
        .map(|i| column_name(schema, i))
        .collect();
    let key: Map<String, Json> = event
        .key
        .iter()
        .enumerate()
        .map(|(i, v)| {
            (
                key_names
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("key{i}")),
                value_json(v),
            )
        })
        .collect();
    out.insert("key".into(), Json::Object(key));
    for (name, row) in [("before", &event.before), ("after", &event.after)] {
        if let Some(row) = row {
            let row: Map<String, Json> = row
                .iter()
                .enumerate()
                .map(|(i, v)| (column_name(schema, i), value_json(v)))
                .collect();
            out.insert(name.into(), Json::Object(row));
        }
    }
    // Outbox events' id and type, dead-letter reasons, message prefixes.
    if !event.headers.is_empty() {
        let headers: Map<String, Json> = event
            .headers
            .iter()
            .map(|h| (h.name.clone(), json!(String::from_utf8_lossy(&h.value))))
            .collect();
        out.insert("headers".into(), Json::Object(headers));
    }
}

fn column_name(schema: &TableSchema, i: usize) -> String {
    schema
        .columns
        .get(i)
        .map_or_else(|| format!("column{i}"), |c| c.name.clone())
}

/// A value as plain JSON: numbers stay exact (decimals as strings), times
/// in their text form, bytes as `\x` hex like PostgreSQL prints them.
fn value_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Unchanged => json!({ "unchanged": true }),
        Value::Bool(b) => json!(b),
        Value::Int16(i) => json!(i),
        Value::Int32(i) => json!(i),
        Value::Int64(i) => json!(i),
        Value::UInt64(i) => json!(i),
        Value::Float32(f) if f.is_finite() => json!(f),
        Value::Float64(f) if f.is_finite() => json!(f),
        Value::Float32(f) => json!(f.to_string()),
        Value::Float64(f) => json!(f.to_string()),
        Value::Decimal(d) => json!(d.to_string()),
        Value::Text(s) | Value::Enum(s) => json!(s),
        Value::Json(s) => serde_json::from_str(s).unwrap_or_else(|_| json!(s)),
        Value::Bytes(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            json!(format!("\\x{hex}"))
        }
        Value::Uuid(u) => json!(uuid_to_string(u)),
        Value::Date(d) => json!(d.to_string()),
        Value::Time(t) => json!(t.to_string()),
        Value::TimeTz(t) => json!(t.to_string()),
        Value::Timestamp(t) => json!(t.to_string()),
        Value::TimestampTz(t) => json!(utc(t)),
        Value::Interval(i) => json!(i.to_string()),
        Value::Array(a) if a.is_list() => {
            Json::Array(a.elements().iter().map(value_json).collect())
        }
        Value::Array(a) => json!(a.to_string()),
    }
}

fn verify(dir: &Path) -> anyhow::Result<()> {
    let report = headwater_log::verify::verify(dir)
        .with_context(|| format!("verifying the log at {}", dir.display()))?;
    for d in &report.damage {
        println!(
            "DAMAGED {} at byte {} (batch for offset {}): {}; {} bytes from there on are unreadable",
            d.path.display(),
            d.position,
            d.offset,
            d.problem,
            d.bytes_after
        );
    }
    println!(
        "checked {} partitions, {} segments, {} batches, {} records, {} bytes: {}",
        report.partitions,
        report.segments,
        report.batches,
        report.records,
        report.bytes,
        if report.damage.is_empty() {
            "no damage".to_string()
        } else {
            format!("{} damaged", report.damage.len())
        }
    );
    if !report.damage.is_empty() {
        bail!(
            "the log at {} has {} damaged segment(s); a damaged tail of the last segment of a partition is cut at the next start (or is a batch being written, if the daemon is running), anything else needs a backup or `log.skip_damaged_segments = true`",
            dir.display(),
            report.damage.len()
        );
    }
    Ok(())
}
