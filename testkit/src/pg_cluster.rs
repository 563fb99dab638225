//! A throwaway PostgreSQL cluster for tests that need server settings the
//! shared one must not have (`wal_level = replica`, a tiny
//! `max_slot_wal_keep_size`): `initdb` into a temporary directory, started
//! on a free loopback port with its socket in that directory, stopped and
//! removed when the value is dropped (also when the test panics).
//!
//! Runs the server binaries of PostgreSQL 15 (`/usr/lib/postgresql/15/bin`,
//! or `HEADWATER_TEST_PG_BIN`), as user `postgres` through `runuser` when
//! the tests run as root (PostgreSQL refuses to run as root). The cluster
//! trusts every local connection; its superuser is `postgres`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::unique_name;

/// The server binaries' directory.
pub fn pg_bin_dir() -> PathBuf {
    std::env::var_os("HEADWATER_TEST_PG_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next().map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A server-side command, as `postgres` when we are root.
fn server_command(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

pub struct PgCluster {
    /// Everything of the cluster: `data/`, the socket, the server log.
    pub dir: PathBuf,
    pub port: u16,
    running: bool,
}

impl PgCluster {
    /// initdb (1 MiB WAL segments, so WAL piles up fast) and start with
    /// `settings` added to postgresql.conf (`("wal_level", "replica")`).
    pub fn start(settings: &[(&str, &str)]) -> PgCluster {
        let bin = pg_bin_dir();
        assert!(
            bin.join("initdb").exists(),
            "{} has no initdb: install postgresql-15 (dev/services.sh does)",
            bin.display()
        );
        let dir = std::env::temp_dir().join(unique_name("hw_pgcluster"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let mut cluster = PgCluster {
            dir,
            port: 0,
            running: false,
        };
        if running_as_root() {
            let mut chown = Command::new("chown");
            chown.arg("postgres:postgres").arg(&cluster.dir);
            run(chown, "giving the cluster directory to postgres");
        }
        let data = cluster.data_dir();
        let mut initdb = server_command(&bin.join("initdb"));
        initdb.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--wal-segsize=1",
        ]);
        run(initdb, "initdb");
        // A port taken between choosing and binding it: try another.
        for attempt in 0..3 {
            cluster.port = free_port();
            let mut conf = format!(
                "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
                 fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
                 shared_buffers = '16MB'\nmax_wal_senders = 4\nmax_replication_slots = 4\n\
                 min_wal_size = '2MB'\nmax_wal_size = '32MB'\n",
                cluster.port,
                cluster.dir.display()
            );
            for (name, value) in settings {
                conf.push_str(&format!("{name} = '{value}'\n"));
            }
            let conf_path = data.join("postgresql.auto.conf");
            std::fs::write(&conf_path, conf)
                .unwrap_or_else(|e| panic!("writing {}: {e}", conf_path.display()));
            let mut start = server_command(&bin.join("pg_ctl"));
            start
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(cluster.dir.join("server.log"))
                .args(["-w", "-t", "30", "start"]);
            let output = start
                .output()
                .unwrap_or_else(|e| panic!("cannot run pg_ctl: {e}"));
            if output.status.success() {
                cluster.running = true;
                return cluster;
            }
            let log = std::fs::read_to_string(cluster.dir.join("server.log")).unwrap_or_default();
            if attempt == 2 || !log.contains("could not bind") {
                panic!(
                    "starting the test cluster failed: {}{}\nserver log:\n{log}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
        unreachable!("the loop returns or panics")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `postgres://postgres@127.0.0.1:{port}/{db}` (trust, no TLS).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// The server's log so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn stop(&mut self) {
        if self.running {
            let mut stop = server_command(&pg_bin_dir().join("pg_ctl"));
            stop.arg("-D")
                .arg(self.data_dir())
                .args(["-m", "immediate", "-w", "-t", "30", "stop"]);
            let _ = stop.output();
            self.running = false;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
    }
}
