//! `headwater check`: what the configuration says, then a probe of every
//! endpoint and prerequisite, each on one line with what to fix.

use std::path::Path;
use std::process::ExitCode;

use headwater_core::{Finding, Severity};

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
