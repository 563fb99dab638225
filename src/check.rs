//! `headwater check`: what the configuration says, then a probe of every
//! endpoint and prerequisite, each on one line with what to fix.

use std::path::Path;
use std::process::ExitCode;

use headwater_core::config::glob_match;
use headwater_core::{Finding, Severity, TableId};

use crate::config::Config;

pub async fn run(file: &Path, config: &Config) -> ExitCode {
    let mut findings = vec![Finding::ok(format!(
        "configuration {} is valid: {} source(s), {} transform(s), {} sink(s); data in {}",
        file.display(),
        config.sources.len(),
        config.transforms.len(),
        config.sinks.len(),
        config.data_dir.display()
    ))];
    for (i, transform) in config.transforms.iter().enumerate() {
        findings.push(Finding::ok(format!(
            "transform {i} ({})",
            transform.type_name()
        )));
    }
    // HEADWATER_CHECK_OFFLINE=1 validates the file without probing (for
    // checking example configurations where their services are absent).
    let offline = std::env::var_os("HEADWATER_CHECK_OFFLINE").is_some_and(|v| v == "1");
    for (name, source) in &config.sources {
        let header = format!("source `{name}` ({})", source.type_name());
        if offline {
            findings.push(Finding::ok(format!("{header}: not probed (offline)")));
            continue;
        }
        let source = source.build(name, &config.data_dir);
        findings.extend(prefixed(&header, source.check().await));
        if let Some(tables) = source.captured_columns().await {
            findings.extend(transform_columns(config, name, &tables));
        }
    }
    for (name, sink) in &config.sinks {
        let header = format!(
            "sink `{name}` ({}) reading {}",
            sink.type_name(),
            sink.topics().join(", ")
        );
        if offline {
            findings.push(Finding::ok(format!("{header}: not probed (offline)")));
            continue;
        }
        match sink.build(name).await {
            Ok(s) => findings.extend(prefixed(&header, s.check().await)),
            Err(e) => findings.push(Finding::fail(format!("{header}: {e}"))),
        }
    }
    report(&findings)
}

/// Each transform that needs columns, held against the tables `source`
/// captures: a missing column fails, naming the table and the column.
fn transform_columns(
    config: &Config,
    source: &str,
    tables: &[(TableId, Vec<String>)],
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (i, transform) in config.transforms.iter().enumerate() {
        let Some((globs, required)) = transform.required_columns() else {
            continue;
        };
        let kind = transform.type_name();
        for (table, columns) in tables {
            let name = table.to_string();
            if !globs.iter().any(|g| glob_match(g, &name)) {
                continue;
            }
            let missing: Vec<&String> = required.iter().filter(|c| !columns.contains(c)).collect();
            findings.push(if missing.is_empty() {
                Finding::ok(format!(
                    "transform {i} ({kind}): table {table} of source `{source}` has its columns"
                ))
            } else {
                let missing = missing
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                Finding::fail(format!(
                    "transform {i} ({kind}): table {table} of source `{source}` has no column {missing}; add it to the table or name the table's own column in transforms[{i}]"
                ))
            });
        }
    }
    findings
}

fn prefixed(header: &str, findings: Vec<Finding>) -> impl Iterator<Item = Finding> + '_ {
    findings.into_iter().map(move |f| Finding {
        severity: f.severity,
        message: format!("{header}: {}", f.message),
    })
}

/// Prints the findings; fails when any failed.
pub fn report(findings: &[Finding]) -> ExitCode {
    for f in findings {
        let tag = match f.severity {
            Severity::Ok => "ok  ",
            Severity::Warn => "WARN",
            Severity::Fail => "FAIL",
        };
        println!("{tag} {}", f.message);
    }
    if findings.iter().any(|f| f.severity == Severity::Fail) {
        ExitCode::from(crate::EXIT_RUNTIME)
    } else {
        ExitCode::SUCCESS
    }
}
