//! MySQL/MariaDB test helpers: a fresh database per test, statements that
//! panic with the statement on failure, a replica id no parallel test uses.

use std::sync::atomic::{AtomicU32, Ordering};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Row};

/// The client the helpers here speak, for tests that write more than SQL
/// text (transactions, parameters).
pub use mysql_async;

use headwater_core::{Appender, MySqlPosition, Position};

use crate::{mysql_url, unique_name, wait_until_async};

/// Waits until `appender`'s durable checkpoint is at or past `target`
/// (the source has caught up with the server), or panics after `deadline`.
pub async fn wait_for_checkpoint(
    appender: &dyn Appender,
    target: &MySqlPosition,
    deadline: std::time::Duration,
) {
    wait_until_async("the source to catch up", deadline, || async {
        matches!(appender.durable_checkpoint(), Some(Position::MySql(p)) if &p >= target)
    })
    .await;
}

/// A replica `server_id` unique to this test (process id and a counter),
/// never the server's own id 1.
pub fn unique_server_id() -> u32 {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    1000 + (std::process::id() % 100_000) * 1000 + n % 1000
}

/// A database created for one test; `drop_db` removes it.
pub struct MySqlDb {
    pub name: String,
    pub conn: Conn,
}

pub async fn connect() -> Conn {
    let opts = Opts::from_url(&mysql_url()).expect("HEADWATER_TEST_MYSQL_URL is a mysql:// URL");
    // TCP as the URL says: through the socket the server sees another
    // account (`user@localhost`), with other privileges
    let opts = OptsBuilder::from_opts(opts).prefer_socket(false);
    Conn::new(opts).await.unwrap_or_else(|e| {
        panic!(
            "cannot connect to MariaDB at {} (run dev/services.sh): {e}",
            mysql_url()
        )
    })
}

impl MySqlDb {
    pub async fn create(prefix: &str) -> MySqlDb {
        let name = unique_name(prefix);
        let mut conn = connect().await;
        conn.query_drop(format!("CREATE DATABASE `{name}`"))
            .await
            .expect("CREATE DATABASE");
        conn.query_drop(format!("USE `{name}`")).await.expect("USE");
        MySqlDb { name, conn }
    }

    /// Another connection to the same database (for concurrent writers).
    pub async fn another(&self) -> Conn {
        let mut conn = connect().await;
        conn.query_drop(format!("USE `{}`", self.name))
            .await
            .expect("USE");
        conn
    }

    pub async fn exec(&mut self, sql: &str) {
        exec(&mut self.conn, sql).await;
    }

    /// The server's current binlog position (`SHOW MASTER STATUS`).
    pub async fn binlog_position(&mut self) -> MySqlPosition {
        let row: Row = self
            .conn
            .query_first("SHOW MASTER STATUS")
            .await
            .unwrap_or_else(|e| panic!("SHOW MASTER STATUS failed: {e}"))
            .unwrap_or_else(|| panic!("SHOW MASTER STATUS is empty: binary logging is off"));
        MySqlPosition {
            file: row.get(0).unwrap_or_default(),
            offset: row.get(1).unwrap_or_default(),
            gtid_set: None,
            tx_index: 0,
        }
    }

    pub async fn rows(&mut self, sql: &str) -> Vec<Row> {
        self.conn
            .query(sql)
            .await
            .unwrap_or_else(|e| panic!("`{sql}` failed: {e}"))
    }

    pub async fn drop_db(mut self) {
        let _ = self
            .conn
            .query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.name))
            .await;
        let _ = self.conn.disconnect().await;
    }
}

pub async fn exec(conn: &mut Conn, sql: &str) {
    conn.query_drop(sql)
        .await
        .unwrap_or_else(|e| panic!("`{sql}` failed: {e}"));
}

/// A MySQL account created for one test with only the grants it lists
/// (e.g. a replication user without RELOAD); `drop_user` removes it.
pub struct MySqlUser {
    pub name: String,
    pub password: String,
}

impl MySqlUser {
    /// `grants`: what follows `GRANT` up to `TO`, one per statement
    /// (`"SELECT, REPLICATION SLAVE ON *.*"`).
    pub async fn create(db: &mut MySqlDb, grants: &[&str]) -> MySqlUser {
        let name: String = unique_name("hwu").chars().take(30).collect();
        let user = MySqlUser {
            name,
            password: "pw".into(),
        };
        db.exec(&format!(
            "CREATE USER {} IDENTIFIED BY '{}'",
            user.account(),
            user.password
        ))
        .await;
        for grant in grants {
            db.exec(&format!("GRANT {grant} TO {}", user.account()))
                .await;
        }
        user
    }

    /// `'name'@'%'`, for GRANT statements.
    pub fn account(&self) -> String {
        format!("'{}'@'%'", self.name)
    }

    pub async fn drop_user(self, db: &mut MySqlDb) {
        let _ = db
            .conn
            .query_drop(format!("DROP USER IF EXISTS {}", self.account()))
            .await;
    }
}

/// The test server's URL with `user`'s name and password.
pub fn url_for(user: &MySqlUser) -> String {
    let url = mysql_url();
    let rest = url.strip_prefix("mysql://").unwrap_or(&url);
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("mysql://{}:{}@{host}", user.name, user.password)
}
