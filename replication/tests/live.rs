//! Live test of the walsender client against a real PostgreSQL (15 on our
//! machines): a throwaway cluster is initialised in a temporary directory on
//! a free port (as the `postgres` user via `runuser` when running as root),
//! and stopped and removed by a Drop guard even when the test fails.
//!
//! Checks: trust over the Unix socket, SCRAM-SHA-256 / MD5 / cleartext over
//! TCP, wrong-password SQLSTATE, IDENTIFY_SYSTEM, CREATE_REPLICATION_SLOT,
//! START_REPLICATION, a committed transaction and a non-transactional message
//! arriving with resolved names, the status update advancing
//! `confirmed_flush_lsn` only to what was reported durable, a second
//! START_REPLICATION on a busy slot failing with 55006, and a reconnect
//! resuming from the slot (the unacknowledged transaction comes again, the
//! acknowledged one does not).
//!
//! Skipped, with the reason printed, when no PostgreSQL binaries are found
//! (set `PGBIN` to point at them).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fluxbase_replication::ack::FeedbackPolicy;
use fluxbase_replication::client::{
    ClientError, ConnectParams, Host, PgOutputOptions, ReplicationClient, SlotOptions,
};
use fluxbase_replication::{
    Change, Lsn, ReplicationStream, StreamConfig, StreamEvent, Transaction,
};

const PASSWORD: &str = "s3cret pw";

struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_root: bool,
}

fn find_bin() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("PGBIN") {
        return Ok(PathBuf::from(p));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("/usr/lib/postgresql: {e}"))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, b)| b)
        .ok_or_else(|| "no /usr/lib/postgresql/*/bin/initdb".to_owned())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

impl Cluster {
    fn cmd(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run(&self, mut c: Command, what: &str) -> Result<(), String> {
        let out = c
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{what}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{what} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Starts a cluster, or returns why it cannot.
    fn start() -> Result<Cluster, String> {
        let bin = find_bin()?;
        let as_root = is_root();
        if as_root
            && Command::new("id")
                .arg("postgres")
                .output()
                .map(|o| !o.status.success())
                .unwrap_or(true)
        {
            return Err(
                "running as root but there is no `postgres` user to run the cluster as".into(),
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("picking a port: {e}"))?
            .port();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("fluxbase-repl-live-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // From here on the guard cleans up.
        let cluster = Cluster {
            dir,
            bin,
            port,
            as_root,
        };
        let pwfile = cluster.dir.join("pwfile");
        std::fs::write(&pwfile, format!("{PASSWORD}\n")).map_err(|e| e.to_string())?;
        if as_root {
            let mut c = Command::new("chown");
            c.args(["-R", "postgres"]).arg(&cluster.dir);
            cluster.run(c, "chown")?;
        }
        let data = cluster.dir.join("data");
        let mut c = cluster.cmd("initdb");
        c.arg("-D")
            .arg(&data)
            .args(["-A", "scram-sha-256", "-U", "postgres", "-N", "--pwfile"])
            .arg(&pwfile);
        cluster.run(c, "initdb")?;
        // Trust over the Unix socket, passwords over TCP.
        let hba = "local all all trust\n\
                   host all md5_user 127.0.0.1/32 md5\n\
                   host all clear_user 127.0.0.1/32 password\n\
                   host all all 127.0.0.1/32 scram-sha-256\n";
        std::fs::write(data.join("pg_hba.conf"), hba).map_err(|e| e.to_string())?;
        let opts = format!(
            "-c port={} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c wal_level=logical \
             -c fsync=off -c max_wal_senders=10 -c max_replication_slots=10",
            port,
            cluster.dir.display()
        );
        let mut c = cluster.cmd("pg_ctl");
        c.arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(cluster.dir.join("log"))
            .args(["-w", "-o", &opts, "start"]);
        cluster.run(c, "pg_ctl start")?;
        Ok(cluster)
    }

    fn unix(&self) -> ConnectParams {
        ConnectParams {
            host: Host::Unix(self.dir.clone()),
            port: self.port,
            user: "postgres".into(),
            password: None,
            dbname: "postgres".into(),
            application_name: "live-admin".into(),
            connect_timeout: Some(Duration::from_secs(5)),
        }
    }

    fn tcp_url(&self, user: &str, password: &str) -> String {
        format!(
            "postgres://{user}:{}@127.0.0.1:{}/postgres?application_name=live-test",
            percent(password),
            self.port
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        if data.join("postmaster.pid").exists() {
            let mut c = self.cmd("pg_ctl");
            c.arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "stop"]);
            let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn sql(c: &mut ReplicationClient, q: &str) -> Vec<Vec<Option<String>>> {
    let r = c
        .simple_query(q)
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    r.into_iter().flat_map(|r| r.rows).collect()
}

async fn confirmed_flush(admin: &mut ReplicationClient, slot: &str) -> Lsn {
    let rows = sql(
        admin,
        &format!("select confirmed_flush_lsn from pg_replication_slots where slot_name = '{slot}'"),
    )
    .await;
    rows.first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|s| s.parse().ok())
        .unwrap_or(Lsn::ZERO)
}

async fn next_txn(stream: &mut ReplicationStream) -> Transaction {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = tokio::time::timeout(left, stream.recv())
            .await
            .expect("a transaction within 10 s");
        match ev.expect("stream ok").expect("stream open") {
            StreamEvent::Transaction(t) => return t,
            StreamEvent::Message(_) | StreamEvent::Idle { .. } | StreamEvent::Part(_) => {}
        }
    }
}

fn inserted_names(t: &Transaction) -> Vec<String> {
    t.changes
        .iter()
        .filter_map(|c| match c {
            Change::Insert { relation, new } => {
                assert_eq!(
                    (relation.schema.as_str(), relation.table.as_str()),
                    ("public", "items")
                );
                new.columns[1].as_text().map(str::to_owned)
            }
            _ => None,
        })
        .collect()
}

fn stream_config(start: Lsn) -> StreamConfig {
    StreamConfig {
        start_lsn: start,
        feedback: FeedbackPolicy {
            status_interval: Duration::from_millis(500),
            min_interval: Duration::from_millis(10),
        },
        channel_capacity: 16,
        idle_ack: true,
        receive_timeout: Some(Duration::from_secs(10)),
        parts: None,
    }
}

async fn wait_flush_at_least(admin: &mut ReplicationClient, slot: &str, target: Lsn) -> Lsn {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let f = confirmed_flush(admin, slot).await;
        if f >= target || Instant::now() > deadline {
            return f;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn live_walsender_client() {
    let cluster = match Cluster::start() {
        Ok(c) => c,
        Err(reason) => {
            println!("SKIPPED live_walsender_client: {reason}");
            return;
        }
    };
    let result = tokio::time::timeout(Duration::from_secs(60), scenario(&cluster)).await;
    if result.is_err() {
        panic!("live scenario timed out; server log:\n{}", cluster.log());
    }
}

async fn scenario(cluster: &Cluster) {
    // Trust over the Unix socket.
    let mut admin = ReplicationClient::connect(&cluster.unix())
        .await
        .expect("trust over the Unix socket");
    assert!(admin.server_version_num().expect("server_version") >= 100_000);
    sql(
        &mut admin,
        "create table items (id int primary key, name text);
         create publication pub for table items;
         set password_encryption = 'md5';
         create role md5_user login replication password 'md5 pw';
         reset password_encryption;
         create role clear_user login replication password 'clear pw';",
    )
    .await;

    // Password methods over TCP.
    let scram: ConnectParams = cluster.tcp_url("postgres", PASSWORD).parse().expect("url");
    ReplicationClient::connect(&scram)
        .await
        .expect("SCRAM")
        .close()
        .await
        .expect("close");
    let md5: ConnectParams = cluster.tcp_url("md5_user", "md5 pw").parse().expect("url");
    ReplicationClient::connect(&md5)
        .await
        .expect("MD5")
        .close()
        .await
        .expect("close");
    let clear: ConnectParams = cluster
        .tcp_url("clear_user", "clear pw")
        .parse()
        .expect("url");
    ReplicationClient::connect(&clear)
        .await
        .expect("cleartext")
        .close()
        .await
        .expect("close");
    let wrong: ConnectParams = cluster.tcp_url("postgres", "nope").parse().expect("url");
    let err = ReplicationClient::connect(&wrong)
        .await
        .expect_err("wrong password");
    assert_eq!(err.sqlstate(), Some("28P01"), "{err}");
    assert!(!err.is_retryable());
    let no_pw = ConnectParams {
        password: None,
        ..scram.clone()
    };
    assert!(matches!(
        ReplicationClient::connect(&no_pw).await,
        Err(ClientError::Auth(_))
    ));

    // Replication commands.
    let mut client = ReplicationClient::connect(&scram).await.expect("SCRAM");
    let id = client.identify_system().await.expect("IDENTIFY_SYSTEM");
    assert_eq!(id.timeline, 1);
    assert!(id.xlogpos > Lsn::ZERO);
    assert_eq!(id.dbname.as_deref(), Some("postgres"));
    assert!(!id.system_id.is_empty());
    assert_eq!(
        client.wal_sender_timeout().await.expect("SHOW"),
        Duration::from_secs(60)
    );
    let slot = client
        .create_slot("live_slot", &SlotOptions::default())
        .await
        .expect("create slot");
    assert_eq!(slot.slot_name, "live_slot");
    assert!(slot.consistent_point >= id.xlogpos);
    let info = client
        .slot_info("live_slot")
        .await
        .expect("slot info")
        .expect("slot exists");
    assert_eq!(
        (info.plugin.as_deref(), info.slot_type.as_str(), info.active),
        (Some("pgoutput"), "logical", false)
    );
    assert_eq!(info.confirmed_flush_lsn, Some(slot.consistent_point));
    assert!(!info.is_lost());
    assert_eq!(client.slot_info("other").await.expect("query"), None);
    let dup = client
        .create_slot("live_slot", &SlotOptions::default())
        .await
        .expect_err("duplicate");
    assert_eq!(dup.sqlstate(), Some("42710"), "{dup}");
    let missing = ReplicationClient::connect(&scram)
        .await
        .expect("connect")
        .start_replication("no_such_slot", Lsn::ZERO, &PgOutputOptions::new(["pub"]))
        .await
        .expect_err("missing slot");
    assert_eq!(missing.sqlstate(), Some("42704"), "{missing}");

    // Stream: a committed transaction arrives with resolved names.
    let opts = PgOutputOptions::new(["pub"]);
    let mut stream = ReplicationStream::start(client, "live_slot", &opts, stream_config(Lsn::ZERO))
        .await
        .expect("start");
    sql(
        &mut admin,
        "insert into items values (1, 'one'), (2, 'two')",
    )
    .await;
    sql(
        &mut admin,
        "select pg_logical_emit_message(false, 'hb', 'ping')",
    )
    .await;
    let t1 = next_txn(&mut stream).await;
    assert_eq!(inserted_names(&t1), ["one", "two"]);
    let rel = t1.changes[0].relation().expect("insert");
    assert_eq!(
        rel.columns
            .iter()
            .map(|c| (c.name.as_str(), c.type_oid, c.is_key))
            .collect::<Vec<_>>(),
        [("id", 23, true), ("name", 25, false)]
    );
    let msg = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(Some(StreamEvent::Message(m))) = stream.recv().await {
                return m;
            }
        }
    })
    .await
    .expect("the non-transactional message");
    assert_eq!(
        (msg.prefix.as_str(), &msg.content[..]),
        ("hb", &b"ping"[..])
    );

    // Nothing acknowledged before it is durable.
    let before = confirmed_flush(&mut admin, "live_slot").await;
    assert!(before < t1.end_lsn, "{before} < {}", t1.end_lsn);
    stream.report_durable(msg.lsn.max(t1.end_lsn));
    let after = wait_flush_at_least(&mut admin, "live_slot", t1.end_lsn).await;
    assert!(
        after >= t1.end_lsn,
        "confirmed_flush_lsn {after} reached {}",
        t1.end_lsn
    );
    let durable = stream.ack_handle().durable();

    // A second transaction, delivered but never reported durable.
    sql(&mut admin, "insert into items values (3, 'three')").await;
    let t2 = next_txn(&mut stream).await;
    assert_eq!(inserted_names(&t2), ["three"]);
    tokio::time::sleep(Duration::from_millis(1_200)).await; // two heartbeats
    let held = confirmed_flush(&mut admin, "live_slot").await;
    assert!(
        held < t2.end_lsn,
        "confirmed_flush_lsn {held} must stay below the undurable {}",
        t2.end_lsn
    );

    // The slot is busy while the stream runs.
    let busy = ReplicationClient::connect(&scram)
        .await
        .expect("connect")
        .start_replication("live_slot", Lsn::ZERO, &opts)
        .await
        .expect_err("slot in use");
    assert_eq!(busy.sqlstate(), Some("55006"), "{busy}");
    assert!(busy.is_retryable());
    let info = admin
        .slot_info("live_slot")
        .await
        .expect("slot info")
        .expect("slot");
    assert!(info.active && info.active_pid.is_some());
    stream.shutdown().await.expect("shutdown");

    // Reconnect from the durable position: t2 comes again, t1 does not.
    let client = ReplicationClient::connect(&scram).await.expect("reconnect");
    let mut stream = ReplicationStream::start(client, "live_slot", &opts, stream_config(durable))
        .await
        .expect("restart");
    let again = next_txn(&mut stream).await;
    assert_eq!(again.end_lsn, t2.end_lsn);
    assert_eq!(inserted_names(&again), ["three"]);
    sql(&mut admin, "insert into items values (4, 'four')").await;
    let t3 = next_txn(&mut stream).await;
    assert_eq!(inserted_names(&t3), ["four"]);
    stream.report_durable(t3.end_lsn);
    assert!(wait_flush_at_least(&mut admin, "live_slot", t3.end_lsn).await >= t3.end_lsn);
    stream.shutdown().await.expect("shutdown");

    // Drop the slot (WAIT: the previous walsender may still be exiting).
    let mut client = ReplicationClient::connect(&scram).await.expect("connect");
    client
        .drop_slot("live_slot", true)
        .await
        .expect("drop slot");
    client.close().await.expect("close");
    assert!(sql(&mut admin, "select 1 from pg_replication_slots")
        .await
        .is_empty());
    admin.close().await.expect("close");
}
