//! Every bad configuration gives one clear message naming the key (and the
//! file) and exit code 2; every example in `config/` loads.

#![allow(clippy::unwrap_used)] // a test fails loudly by design

use std::path::{Path, PathBuf};
use std::process::Command;

const EXIT_CONFIG: i32 = 2;

fn headwater() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_headwater"));
    cmd.env_remove("HEADWATER_CONFIG")
        .env_remove("PGPASSWORD")
        .env_remove("MASK_SALT");
    cmd
}

const VALID: &str = r#"
data_dir = "./data"

[sources.shop]
type = "postgres"
url = "postgres://repl:secret@127.0.0.1:5432/shop"
tables = ["public.*"]

[sinks.archive]
type = "parquet"
url = "file:///tmp/archive"
topics = ["shop.*"]
"#;

/// Runs `headwater check` on `text`; returns (exit code, stderr).
fn check(text: &str, env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("headwater.toml");
    std::fs::write(&file, text).unwrap();
    let out = headwater()
        .arg("check")
        .arg("-c")
        .arg(&file)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains(&file.display().to_string()) || out.status.code() != Some(EXIT_CONFIG),
        "the message names the file: {stderr}"
    );
    (out.status.code().unwrap_or(-1), stderr)
}

fn assert_refused(text: &str, env: &[(&str, &str)], expected: &[&str]) {
    let (code, stderr) = check(text, env);
    assert_eq!(code, EXIT_CONFIG, "{stderr}");
    for e in expected {
        assert!(stderr.contains(e), "expected `{e}` in:\n{stderr}");
    }
}

#[test]
fn unknown_key_is_named() {
    let text = VALID.replace(
        "tables = [\"public.*\"]",
        "tables = [\"public.*\"]\ntablez = 1",
    );
    assert_refused(&text, &[], &["`sources.shop.tablez`: unknown key"]);
}

#[test]
fn unknown_kind_lists_the_kinds() {
    let text = VALID.replacen("type = \"postgres\"", "type = \"postgresql\"", 1);
    assert_refused(
        &text,
        &[],
        &[
            "`sources.shop`",
            "unknown source type `postgresql`: expected one of postgres, mysql",
        ],
    );
}

#[test]
fn unset_variable_is_named_with_its_key() {
    let text = VALID.replace("repl:secret@", "repl:${HW_TEST_UNSET_PW}@");
    assert_refused(
        &text,
        &[],
        &["`sources.shop.url`", "`HW_TEST_UNSET_PW` is not set"],
    );
}

#[test]
fn set_variable_is_substituted_and_never_printed() {
    let text = VALID.replace("repl:secret@", "repl:${HW_TEST_PW}@") + "\n[log]\npartitions = 0\n";
    let (code, stderr) = check(&text, &[("HW_TEST_PW", "hunter2")]);
    assert_eq!(code, EXIT_CONFIG, "{stderr}");
    assert!(stderr.contains("`log.partitions`"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn bad_duration_is_named() {
    let text = format!("{VALID}\n[log]\nretention = \"7 parsecs\"\n");
    assert_refused(&text, &[], &["`log.retention`", "not a duration"]);
}

#[test]
fn missing_source_url() {
    let text = VALID.replace("url = \"postgres://repl:secret@127.0.0.1:5432/shop\"\n", "");
    assert_refused(&text, &[], &["`sources.shop.url`: is required but missing"]);
}

#[test]
fn two_sinks_with_one_name() {
    let text = format!("{VALID}\n[sinks.archive]\ntype = \"parquet\"\nurl = \"file:///x\"\ntopics = [\"shop.*\"]\n");
    assert_refused(&text, &[], &["duplicate key `archive`"]);
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = format!(
        "{}\nbogus = 1\n[log]\nsegment_bytes = 10\n[[transforms]]\ntype = \"explode\"\n",
        VALID.replace("url = \"file:///tmp/archive\"", "url = \"ftp://x\"")
    );
    let text = text.replacen(
        "data_dir = \"./data\"\n",
        "data_dir = \"./data\"\nbogus = 1\n",
        1,
    );
    let text = text.replace("\nbogus = 1\n[log]", "\n[log]");
    assert_refused(
        &text,
        &[],
        &[
            "`bogus`: unknown key",
            "`transforms.0.type`",
            "`sinks.archive.url`",
        ],
    );
}

#[test]
fn environment_overrides_the_file_and_names_the_variable() {
    let (code, stderr) = check(VALID, &[("HEADWATER_LOG__PARTITIONS", "many")]);
    assert_eq!(code, EXIT_CONFIG, "{stderr}");
    assert!(stderr.contains("HEADWATER_LOG__PARTITIONS"), "{stderr}");
    let (code, stderr) = check(
        VALID,
        &[
            ("HEADWATER_LOG__PARTITIONS", "8"),
            ("HEADWATER_LOG", "warn"),
            // A configuration test: the endpoints are not there to probe.
            ("HEADWATER_CHECK_OFFLINE", "1"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn missing_file_says_how_to_pass_one() {
    let out = headwater()
        .args(["check", "-c", "/nonexistent/headwater.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(EXIT_CONFIG));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-c FILE"));
}

#[test]
fn version_prints() {
    let out = headwater().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("headwater "));
}

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

/// Loading is all a config test can check without the services; the
/// quick start's probes run in the end-to-end tests.
#[test]
fn every_example_config_is_valid() {
    for file in examples() {
        let text = std::fs::read_to_string(&file).unwrap();
        let out = headwater()
            .arg("check")
            .arg("-c")
            .arg(&file)
            .env("PGPASSWORD", "x")
            .env("MYSQL_PASSWORD", "x")
            .env("MASK_SALT", "x")
            .env("HEADWATER_CHECK_OFFLINE", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr),
            text
        );
    }
}
