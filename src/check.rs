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
    for (name, source) in &config.sources {
        findings.push(Finding::ok(format!(
            "source `{name}` ({})",
            source.type_name()
        )));
    }
    for (i, transform) in config.transforms.iter().enumerate() {
        findings.push(Finding::ok(format!(
            "transform {i} ({})",
            transform.type_name()
        )));
    }
    for (name, sink) in &config.sinks {
        findings.push(Finding::ok(format!(
            "sink `{name}` ({}) reads {}",
            sink.type_name(),
            sink.topics().join(", ")
        )));
    }
    report(&findings)
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
