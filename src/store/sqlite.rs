//! The SQLite store: `alerts`, the `objects` ledger and `failures`.
//!
//! Design notes:
//! * WAL mode with `synchronous=FULL`: a commit that returned is on disk, so
//!   callers may acknowledge upstream work (delete an SQS message) after it.
//! * One transaction per batch of objects. An object's alerts, its ledger
//!   row and (from schema v2 on) its aggregate contribution go in the same
//!   transaction, so an object is either wholly committed or not at all.
//! * `UNIQUE(event_time, event_id, rule_name)` with `INSERT OR IGNORE` makes
//!   re-processing harmless: an alert is stored once however often its event
//!   is seen. The time leads so that inserts, which come close to time
//!   order, touch the index's last pages rather than a random one each
//!   (schema v7).
//! * An object is counted in the activity aggregates once: when its ledger row
//!   first becomes `ok`. A later failure to read it again is recorded in
//!   `failures` but leaves an `ok` row as it is, so the ledger always says
//!   what the store holds.
//! * Schema changes are numbered migrations tracked in `PRAGMA user_version`.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::staging::ActivityTable;
use super::{StoreError, create_private_dir};
use crate::pipeline::{ObjectOutcome, Outcome};
use crate::rules::StateRow;

/// File name of the store inside the data directory.
pub const DB_FILE: &str = "alerts.db";

const MIGRATIONS: &[&str] = &[
    // v1: alerts, ledger, failures.
    r#"
    CREATE TABLE alerts (
        id             INTEGER PRIMARY KEY,
        rule_name      TEXT NOT NULL,
        rule_id        TEXT NOT NULL,
        title          TEXT NOT NULL,
        severity       TEXT NOT NULL,
        severity_rank  INTEGER NOT NULL,
        event_id       TEXT NOT NULL,
        event_time     TEXT NOT NULL,
        event_name     TEXT NOT NULL,
        event_source   TEXT NOT NULL,
        aws_region     TEXT NOT NULL,
        account_id     TEXT NOT NULL,
        principal_arn  TEXT NOT NULL,
        principal_type TEXT NOT NULL,
        source_ip      TEXT NOT NULL,
        user_agent     TEXT NOT NULL,
        object         TEXT NOT NULL,
        detected_at    TEXT NOT NULL,
        raw_event      TEXT NOT NULL,
        UNIQUE (rule_name, event_id)
    );
    CREATE INDEX alerts_event_time ON alerts (event_time);
    CREATE INDEX alerts_event_id ON alerts (event_id);
    CREATE TABLE objects (
        name         TEXT PRIMARY KEY,
        size         INTEGER NOT NULL,
        mtime_ns     INTEGER,
        fingerprint  TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('ok', 'digest', 'failed')),
        records      INTEGER NOT NULL,
        skipped      INTEGER NOT NULL,
        alerts       INTEGER NOT NULL,
        error        TEXT,
        processed_at TEXT NOT NULL
    );
    CREATE TABLE failures (
        id          INTEGER PRIMARY KEY,
        object      TEXT NOT NULL,
        error_class TEXT NOT NULL,
        error       TEXT NOT NULL,
        message_id  TEXT,
        occurred_at TEXT NOT NULL
    );
    CREATE INDEX failures_object ON failures (object);
    "#,
    // v2: activity aggregates staged per object until flushed to Parquet,
    // and the bookkeeping that makes flushes and compactions crash-safe.
    r#"
    CREATE TABLE activity_staging (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        object            TEXT NOT NULL,
        hour              TEXT NOT NULL,
        account_id        TEXT NOT NULL,
        aws_region        TEXT NOT NULL,
        event_source      TEXT NOT NULL,
        event_name        TEXT NOT NULL,
        principal_type    TEXT NOT NULL,
        principal_arn     TEXT NOT NULL,
        source_ip         TEXT NOT NULL,
        user_agent_family TEXT NOT NULL,
        error_code        TEXT NOT NULL,
        read_only         INTEGER,
        events            INTEGER NOT NULL,
        first_seen        TEXT NOT NULL,
        last_seen         TEXT NOT NULL
    );
    CREATE TABLE flushes (
        id             INTEGER PRIMARY KEY,
        staging_max_id INTEGER NOT NULL,
        alerts_from_id INTEGER NOT NULL,
        alerts_to_id   INTEGER NOT NULL,
        state          TEXT NOT NULL CHECK (state IN ('pending', 'done')),
        started_at     TEXT NOT NULL,
        finished_at    TEXT
    );
    CREATE TABLE compactions (
        id          INTEGER PRIMARY KEY,
        dir         TEXT NOT NULL,
        new_file    TEXT NOT NULL,
        old_files   TEXT NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('pending', 'done', 'aborted')),
        started_at  TEXT NOT NULL,
        finished_at TEXT
    );
    "#,
    // v3: failures of S3 objects name their bucket and key separately.
    r#"
    ALTER TABLE failures ADD COLUMN bucket TEXT;
    ALTER TABLE failures ADD COLUMN key TEXT;
    "#,
    // v4: correlation alerts link their group, window and events; the
    // correlation windows persist across restarts.
    r#"
    ALTER TABLE alerts ADD COLUMN group_key TEXT;
    ALTER TABLE alerts ADD COLUMN window_start TEXT;
    ALTER TABLE alerts ADD COLUMN window_end TEXT;
    ALTER TABLE alerts ADD COLUMN contributing_events TEXT;
    CREATE TABLE correlation_state (
        correlation TEXT NOT NULL,
        group_key   TEXT NOT NULL,
        state       TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        PRIMARY KEY (correlation, group_key)
    ) WITHOUT ROWID;
    "#,
    // v5: a commit batch stages its activity as one merged, encoded row
    // (`store::staging`); rows staged one by one by older versions keep
    // `batch` NULL and are still read.
    r#"
    ALTER TABLE activity_staging ADD COLUMN batch BLOB;
    ALTER TABLE activity_staging ADD COLUMN batch_rows INTEGER;
    "#,
    // v6: the de-duplication key is (event_id, rule_name), which also serves
    // lookups by eventID, so the separate event_id index goes. Both were
    // keyed by random eventIDs: every commit of a busy rule pack rewrote
    // most pages of both (the full pack scanned 12% faster with one).
    // SQLite cannot change a table's UNIQUE constraint, so the table is
    // rebuilt, rows and ids unchanged.
    r#"
    CREATE TABLE alerts_v6 (
        id                  INTEGER PRIMARY KEY,
        rule_name           TEXT NOT NULL,
        rule_id             TEXT NOT NULL,
        title               TEXT NOT NULL,
        severity            TEXT NOT NULL,
        severity_rank       INTEGER NOT NULL,
        event_id            TEXT NOT NULL,
        event_time          TEXT NOT NULL,
        event_name          TEXT NOT NULL,
        event_source        TEXT NOT NULL,
        aws_region          TEXT NOT NULL,
        account_id          TEXT NOT NULL,
        principal_arn       TEXT NOT NULL,
        principal_type      TEXT NOT NULL,
        source_ip           TEXT NOT NULL,
        user_agent          TEXT NOT NULL,
        object              TEXT NOT NULL,
        detected_at         TEXT NOT NULL,
        raw_event           TEXT NOT NULL,
        group_key           TEXT,
        window_start        TEXT,
        window_end          TEXT,
        contributing_events TEXT,
        UNIQUE (event_id, rule_name)
    );
    INSERT INTO alerts_v6 (id, rule_name, rule_id, title, severity, severity_rank, event_id, event_time, event_name, event_source, aws_region, account_id, principal_arn, principal_type, source_ip, user_agent, object, detected_at, raw_event, group_key, window_start, window_end, contributing_events)
        SELECT id, rule_name, rule_id, title, severity, severity_rank, event_id, event_time, event_name, event_source, aws_region, account_id, principal_arn, principal_type, source_ip, user_agent, object, detected_at, raw_event, group_key, window_start, window_end, contributing_events FROM alerts;
    DROP TABLE alerts;
    ALTER TABLE alerts_v6 RENAME TO alerts;
    CREATE INDEX alerts_event_time ON alerts (event_time);
    "#,
    // v7: the de-duplication key leads with the event's time:
    // (event_time, event_id, rule_name). Keyed by random eventIDs, its
    // index took a random page for every alert, and once it outgrew
    // SQLite's page cache every commit read back and rewrote most of it
    // (benches/compare run 4 on the 1 GiB corpus: 47.6 s, 39.7 s with this
    // key; without any unique key, 35.1 s). Events arrive close to time
    // order, so inserts now land at the index's right edge. The key still
    // de-duplicates: a duplicate delivery or a re-read object carries the
    // same eventTime text. It serves time filters, so alerts_event_time
    // goes; lookups by eventID get an index of the eventID's first eight
    // characters, a fifth of the old key's size. The table is spelled out
    // again rather than shared with v6: a migration is history, and must
    // not change when a later one does.
    r#"
    CREATE TABLE alerts_v7 (
        id                  INTEGER PRIMARY KEY,
        rule_name           TEXT NOT NULL,
        rule_id             TEXT NOT NULL,
        title               TEXT NOT NULL,
        severity            TEXT NOT NULL,
        severity_rank       INTEGER NOT NULL,
        event_id            TEXT NOT NULL,
        event_time          TEXT NOT NULL,
        event_name          TEXT NOT NULL,
        event_source        TEXT NOT NULL,
        aws_region          TEXT NOT NULL,
        account_id          TEXT NOT NULL,
        principal_arn       TEXT NOT NULL,
        principal_type      TEXT NOT NULL,
        source_ip           TEXT NOT NULL,
        user_agent          TEXT NOT NULL,
        object              TEXT NOT NULL,
        detected_at         TEXT NOT NULL,
        raw_event           TEXT NOT NULL,
        group_key           TEXT,
        window_start        TEXT,
        window_end          TEXT,
        contributing_events TEXT,
        UNIQUE (event_time, event_id, rule_name)
    );
    INSERT INTO alerts_v7 (id, rule_name, rule_id, title, severity, severity_rank, event_id, event_time, event_name, event_source, aws_region, account_id, principal_arn, principal_type, source_ip, user_agent, object, detected_at, raw_event, group_key, window_start, window_end, contributing_events)
        SELECT id, rule_name, rule_id, title, severity, severity_rank, event_id, event_time, event_name, event_source, aws_region, account_id, principal_arn, principal_type, source_ip, user_agent, object, detected_at, raw_event, group_key, window_start, window_end, contributing_events FROM alerts;
    DROP TABLE alerts;
    ALTER TABLE alerts_v7 RENAME TO alerts;
    CREATE INDEX alerts_event_id_prefix ON alerts (substr(event_id, 1, 8));
    "#,
    // v8: the eventID lookup index is bucketed by the event's hour. v7's
    // index of eventID prefixes still put each alert on a random page: at
    // about 18 bytes an entry it outgrows the 32 MiB page cache near two
    // million alerts, which a year's backfill with a broad rule pack
    // passes, and then every commit would rewrite a page per alert. Within
    // an hour's bucket the inserts stay on a few pages. A lookup by eventID
    // seeks each stored hour (`Store::find_alerts`).
    r#"
    DROP INDEX alerts_event_id_prefix;
    CREATE INDEX alerts_event_id_by_hour ON alerts (substr(event_time, 1, 13), substr(event_id, 1, 8));
    "#,
];

/// A ledger row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub size: u64,
    pub mtime_ns: Option<i64>,
    pub fingerprint: String,
    pub status: String,
}

/// What one commit stored.
#[derive(Debug, Default, Clone)]
pub struct CommitSummary {
    /// For each outcome in the batch, which of its alerts were new (indices).
    pub new_alerts: Vec<Vec<usize>>,
    pub new_alert_count: usize,
    /// Activity rows staged by this commit (after merging the batch).
    pub staged_rows: u64,
}

/// A failure row that belongs to no processed object (see
/// [`Store::record_failures`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRecord {
    /// What failed: an `s3://` URI, or `sqs-message:<id>` for a body that
    /// names no usable object.
    pub object: String,
    pub class: String,
    pub error: String,
    pub message_id: Option<String>,
}

/// The alert store of one data directory.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Reused by every commit to merge the batch's activity rows, and the
    /// buffer it is encoded into.
    staging: ActivityTable,
    staging_blob: Vec<u8>,
}

/// `s3://bucket/key` → (bucket, key).
fn s3_parts(name: &str) -> Option<(&str, &str)> {
    name.strip_prefix("s3://")?.split_once('/')
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The parameters of the ledger upsert (`objects`): the object, its status,
/// its (records, skipped, alerts) counts and error.
fn ledger_row<'a>(
    m: &'a crate::pipeline::ObjectMeta,
    status: &'a str,
    [records, skipped, alerts]: [i64; 3],
    error: Option<&'a str>,
    now: &'a str,
) -> impl rusqlite::Params + 'a {
    (
        m.name.as_str(),
        m.size as i64,
        m.mtime_ns,
        m.fingerprint.as_str(),
        status,
        records,
        skipped,
        alerts,
        error,
        now,
    )
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir`, migrating it.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        create_private_dir(data_dir)?;
        let path = data_dir.join(DB_FILE);
        if !path.exists() {
            // Create the file 0600 before SQLite does (SQLite copies the
            // database file's mode to its -wal and -shm files).
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(|source| StoreError::Io {
                    path: path.clone(),
                    source,
                })?;
        }
        let conn = Connection::open(&path).map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        let mut store = Store {
            conn,
            path,
            staging: ActivityTable::default(),
            staging_blob: Vec::new(),
        };
        store.configure()?;
        store.migrate()?;
        super::warn_if_loose(data_dir);
        Ok(store)
    }

    /// [`open`](Self::open) for commands that maintain a store rather than
    /// fill one (`compact`): a missing store is an error, not a new empty
    /// one, so a mistyped `--data-dir` is reported instead of answered with
    /// "compacted 0 partitions" and a fresh, empty data directory.
    pub fn open_existing(data_dir: &Path) -> Result<Store, StoreError> {
        let path = data_dir.join(DB_FILE);
        if !path.exists() {
            return Err(StoreError::Missing { path });
        }
        Store::open(data_dir)
    }

    /// Opens an existing store read-only (for `alerts` and `query`).
    pub fn open_read_only(data_dir: &Path) -> Result<Store, StoreError> {
        let path = data_dir.join(DB_FILE);
        if !path.exists() {
            return Err(StoreError::Missing { path });
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        super::warn_if_loose(data_dir);
        let store = Store {
            conn,
            path,
            staging: ActivityTable::default(),
            staging_blob: Vec::new(),
        };
        store
            .conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| store.err(e))?;
        store
            .conn
            .pragma_update(None, "query_only", true)
            .map_err(|e| store.err(e))?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying connection (read-only callers run their own queries).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn configure(&mut self) -> Result<(), StoreError> {
        self.conn
            .busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|e| self.err(e))?;
        // 16 KiB pages for a new store: an alert row with its raw event is
        // 1.5-3 KiB, so 4 KiB pages held one or two rows each, and a broad
        // rule pack's scan spent its store time splitting pages and writing
        // WAL frames (benches/compare, run 4: 16.1 s -> 13.3 s on a 2.5 GB
        // corpus with 225,000 alerts; the file is 18% smaller). SQLite applies
        // this only to an empty database, before WAL is on; an existing store
        // keeps its page size.
        self.conn
            .execute_batch(&format!("PRAGMA page_size={PAGE_SIZE};"))
            .map_err(|e| self.err(e))?;
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        debug_assert_eq!(mode.to_ascii_lowercase(), "wal");
        // Throughput (measured with benches/compare, where a broad rule pack
        // stores an alert for several percent of the records): the default
        // 2 MiB page cache made B-tree inserts re-read index pages, and
        // checkpointing every 1,000 WAL pages copied hot pages over and over.
        // 32 MiB of cache and a WAL of 4,096 pages (64 MiB with 16 KiB
        // pages) keep both bounded; durability is
        // unchanged (synchronous=FULL: every commit is fsynced).
        self.conn
            .execute_batch(
                "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; \
                 PRAGMA cache_size=-32768; PRAGMA wal_autocheckpoint=4096;",
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let supported = MIGRATIONS.len() as i64;
        if version > supported {
            return Err(StoreError::SchemaTooNew {
                path: self.path.clone(),
                found: version,
                supported,
            });
        }
        // A fresh store runs every step on empty tables; an existing one may
        // rebuild a large `alerts` table (v6, v7), which takes a while.
        if version > 0 && version < supported {
            tracing::info!(
                store = %self.path.display(),
                from = version,
                to = supported,
                "upgrading the store's schema"
            );
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction().map_err(|e| StoreError::Sqlite {
                path: self.path.clone(),
                source: e,
            })?;
            tx.execute_batch(sql)
                .and_then(|()| tx.pragma_update(None, "user_version", (i + 1) as i64))
                .and_then(|()| tx.commit())
                .map_err(|source| StoreError::Sqlite {
                    path: self.path.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// The ledger row of an object, if it was processed before.
    pub fn ledger_entry(&self, name: &str) -> Result<Option<LedgerEntry>, StoreError> {
        self.conn
            .prepare_cached("SELECT size, mtime_ns, fingerprint, status FROM objects WHERE name = ?1")
            .and_then(|mut st| {
                st.query_row([name], |r| {
                    Ok(LedgerEntry {
                        size: r.get::<_, i64>(0)? as u64,
                        mtime_ns: r.get(1)?,
                        fingerprint: r.get(2)?,
                        status: r.get(3)?,
                    })
                })
                .optional()
            })
            .map_err(|e| self.err(e))
    }

    /// Commits a batch of object outcomes in one transaction.
    /// `correlation_state` holds the correlation groups the batch changed
    /// (see [`crate::pipeline::correlate`]); they commit atomically with it.
    pub fn commit(
        &mut self,
        batch: &[ObjectOutcome],
        correlation_state: &[StateRow],
    ) -> Result<CommitSummary, StoreError> {
        crate::testhook::injected_write_error().map_err(|source| StoreError::Io {
            path: self.path.clone(),
            source,
        })?;
        let path = self.path.clone();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let staging = &mut self.staging;
        let blob = &mut self.staging_blob;
        staging.clear();
        let tx = self.conn.transaction().map_err(e)?;
        let mut summary = CommitSummary::default();
        let now = now_rfc3339();
        {
            let mut ins_alert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO alerts (rule_name, rule_id, title, severity, severity_rank, event_id, \
                     event_time, event_name, event_source, aws_region, account_id, principal_arn, principal_type, \
                     source_ip, user_agent, object, detected_at, raw_event, group_key, window_start, window_end, \
                     contributing_events) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, \
                     ?21, ?22)",
                )
                .map_err(e)?;
            let mut upsert_obj = tx
                .prepare_cached(
                    "INSERT INTO objects (name, size, mtime_ns, fingerprint, status, records, skipped, alerts, error, processed_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                     ON CONFLICT(name) DO UPDATE SET size=excluded.size, mtime_ns=excluded.mtime_ns, \
                     fingerprint=excluded.fingerprint, status=excluded.status, records=excluded.records, \
                     skipped=excluded.skipped, alerts=excluded.alerts, error=excluded.error, processed_at=excluded.processed_at",
                )
                .map_err(e)?;
            let mut prior_status = tx
                .prepare_cached("SELECT status FROM objects WHERE name = ?1")
                .map_err(e)?;
            let mut ins_activity = tx
                .prepare_cached(
                    "INSERT INTO activity_staging (object, hour, account_id, aws_region, event_source, event_name, \
                     principal_type, principal_arn, source_ip, user_agent_family, error_code, read_only, events, \
                     first_seen, last_seen, batch, batch_rows) \
                     VALUES (?1, '', '', '', '', '', '', '', '', '', '', NULL, 0, '', '', ?2, ?3)",
                )
                .map_err(e)?;
            let mut ins_failure = tx
                .prepare_cached("INSERT INTO failures (object, error_class, error, message_id, occurred_at, bucket, key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
                .map_err(e)?;
            for oc in batch {
                let m = &oc.meta;
                let mut fresh = Vec::new();
                match &oc.outcome {
                    Outcome::Processed {
                        stats,
                        alerts,
                        activity,
                        ..
                    } => {
                        // An object counts towards the aggregates once: if the
                        // ledger already has it as processed, its records
                        // were counted then (CloudTrail objects are
                        // immutable), so re-processing adds nothing.
                        let prior: Option<String> =
                            prior_status.query_row([&m.name], |r| r.get(0)).optional().map_err(e)?;
                        if prior.as_deref() != Some("ok") {
                            staging.add(activity);
                        }
                        for (i, a) in alerts.iter().enumerate() {
                            let n = ins_alert
                                .execute(params![
                                    a.rule_name,
                                    a.rule_id,
                                    a.title,
                                    a.severity.as_str(),
                                    a.severity as i64,
                                    a.event_id,
                                    a.event_time.as_str(),
                                    a.event_name.as_str(),
                                    a.event_source.as_str(),
                                    a.aws_region.as_str(),
                                    a.account_id.as_str(),
                                    a.principal_arn,
                                    a.principal_type.as_str(),
                                    a.source_ip.as_str(),
                                    a.user_agent,
                                    a.object,
                                    now,
                                    a.raw_event,
                                    a.correlation.as_ref().map(|c| &c.group_key),
                                    a.correlation.as_ref().map(|c| &c.window_start),
                                    a.correlation.as_ref().map(|c| &c.window_end),
                                    a.correlation
                                        .as_ref()
                                        .map(|c| serde_json::to_string(&c.event_ids).expect("strings serialize")),
                                ])
                                .map_err(e)?;
                            if n == 1 {
                                fresh.push(i);
                            }
                        }
                        let status = if stats.digest { "digest" } else { "ok" };
                        // Correlation alerts depend on arrival order; the ledger
                        // counts what this object's own records raised.
                        let own_alerts = alerts.iter().filter(|a| a.correlation.is_none()).count();
                        let counts = [stats.records as i64, stats.skipped() as i64, own_alerts as i64];
                        upsert_obj
                            .execute(ledger_row(m, status, counts, None, &now))
                            .map_err(e)?;
                    }
                    Outcome::Failed(err) => {
                        let msg = err.to_string();
                        // An object the ledger has as processed stays so: its
                        // alerts and activity are in the store, and must not
                        // be counted again should it read fine later. The
                        // failure is recorded all the same.
                        let prior: Option<String> =
                            prior_status.query_row([&m.name], |r| r.get(0)).optional().map_err(e)?;
                        ins_failure
                            .execute(params![
                                m.name,
                                err.class(),
                                msg,
                                m.message_id,
                                now,
                                s3_parts(&m.name).map(|(b, _)| b),
                                s3_parts(&m.name).map(|(_, k)| k),
                            ])
                            .map_err(e)?;
                        if prior.as_deref() != Some("ok") {
                            upsert_obj
                                .execute(ledger_row(m, "failed", [0, 0, 0], Some(&msg), &now))
                                .map_err(e)?;
                        }
                    }
                }
                summary.new_alert_count += fresh.len();
                summary.new_alerts.push(fresh);
            }
            if !staging.is_empty() {
                let batch_name = format!("batch of {} objects", batch.len());
                staging.encode_into(blob);
                ins_activity
                    .execute(params![batch_name, &blob[..], staging.len() as i64])
                    .map_err(e)?;
                summary.staged_rows = staging.len() as u64;
            }
        }
        write_correlation_state(&tx, correlation_state, &now).map_err(e)?;
        crate::testhook::hit("before_commit");
        tx.commit().map_err(e)?;
        crate::testhook::hit("after_commit");
        Ok(summary)
    }

    /// Records failures that concern no single processed object, such as an
    /// SQS message whose body cannot be used, in the `failures` table only
    /// (the `objects` ledger is for objects that were fetched). One
    /// transaction for the batch.
    pub fn record_failures(&mut self, rows: &[FailureRecord]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut ins = tx
                .prepare_cached("INSERT INTO failures (object, error_class, error, message_id, occurred_at, bucket, key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
                .map_err(e)?;
            let now = now_rfc3339();
            for r in rows {
                ins.execute(params![
                    r.object,
                    r.class,
                    r.error,
                    r.message_id,
                    now,
                    s3_parts(&r.object).map(|(b, _)| b),
                    s3_parts(&r.object).map(|(_, k)| k),
                ])
                .map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// Rows waiting in the staging table for the next Parquet flush.
    pub fn staged_rows(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row(
                "SELECT COALESCE(SUM(COALESCE(batch_rows, 1)), 0) FROM activity_staging",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// The connection for the aggregate flusher (same process, same lock).
    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Total number of stored alerts.
    pub fn alert_count(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM alerts", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }
}

fn write_correlation_state(tx: &rusqlite::Transaction<'_>, rows: &[StateRow], now: &str) -> rusqlite::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut upsert = tx.prepare_cached(
        "INSERT INTO correlation_state (correlation, group_key, state, updated_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT(correlation, group_key) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
    )?;
    let mut delete = tx.prepare_cached("DELETE FROM correlation_state WHERE correlation = ?1 AND group_key = ?2")?;
    for r in rows {
        match &r.state {
            Some(state) => upsert.execute(params![r.correlation, r.group, state, now])?,
            None => delete.execute(params![r.correlation, r.group])?,
        };
    }
    Ok(())
}

impl Store {
    /// Every persisted correlation group: (correlation, group key, state).
    pub fn correlation_state(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT correlation, group_key, state FROM correlation_state ORDER BY correlation, group_key")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Writes correlation state outside an object commit (dropping the
    /// groups of correlations that were removed from the rule set).
    pub fn write_correlation_state(&mut self, rows: &[StateRow]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        write_correlation_state(&tx, rows, &now_rfc3339()).map_err(e)?;
        tx.commit().map_err(e)
    }

    /// A correlator for `rules` with the persisted windows restored.
    pub fn correlator(
        &mut self,
        rules: &crate::rules::RuleSet,
        limits: crate::rules::CorrelationLimits,
    ) -> Result<crate::rules::Correlator, StoreError> {
        let mut c = crate::rules::Correlator::new(rules.correlations(), limits);
        let stale = c.restore(self.correlation_state()?);
        if !stale.is_empty() {
            tracing::info!(
                groups = stale.len(),
                "dropping the state of correlation rules no longer loaded"
            );
            self.write_correlation_state(&stale)?;
        }
        Ok(c)
    }
}

/// A stored alert with its store id and detection time.
#[derive(Debug, Clone)]
pub struct StoredAlert {
    pub id: i64,
    pub detected_at: String,
    pub alert: crate::pipeline::Alert,
}

/// Filters for [`Store::list_alerts`]; every value is a bound parameter.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// Rule names (any of).
    pub rules: Vec<String>,
    /// Severity: at least (`min_severity`) or exactly (`severity`).
    pub min_severity: Option<crate::rules::Level>,
    pub severity: Option<crate::rules::Level>,
    pub account: Option<String>,
    /// Case-insensitive substring of the principal ARN.
    pub principal: Option<String>,
    /// ISO 8601 bounds on `event_time` (inclusive since, exclusive until).
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<usize>,
}

const STORED_ALERT_COLUMNS: &str = "id, detected_at, rule_name, rule_id, title, severity, event_id, event_time, \
    event_name, event_source, aws_region, account_id, principal_arn, principal_type, source_ip, user_agent, object, raw_event, \
    group_key, window_start, window_end, contributing_events";

fn stored_alert(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredAlert> {
    let sev: String = r.get(5)?;
    Ok(StoredAlert {
        id: r.get(0)?,
        detected_at: r.get(1)?,
        alert: crate::pipeline::Alert {
            rule_name: r.get(2)?,
            rule_id: r.get(3)?,
            title: r.get(4)?,
            severity: sev.parse().unwrap_or(crate::rules::Level::Medium),
            event_id: r.get(6)?,
            event_time: r.get_ref(7)?.as_str()?.into(),
            event_name: r.get_ref(8)?.as_str()?.into(),
            event_source: r.get_ref(9)?.as_str()?.into(),
            aws_region: r.get_ref(10)?.as_str()?.into(),
            account_id: r.get_ref(11)?.as_str()?.into(),
            principal_arn: r.get(12)?,
            principal_type: r.get_ref(13)?.as_str()?.into(),
            source_ip: r.get_ref(14)?.as_str()?.into(),
            user_agent: r.get(15)?,
            object: r.get(16)?,
            raw_event: r.get(17)?,
            correlation: match r.get::<_, Option<String>>(18)? {
                None => None,
                Some(group_key) => Some(crate::pipeline::CorrelationRef {
                    group_key,
                    window_start: r.get::<_, Option<String>>(19)?.unwrap_or_default(),
                    window_end: r.get::<_, Option<String>>(20)?.unwrap_or_default(),
                    event_ids: r
                        .get::<_, Option<String>>(21)?
                        .and_then(|j| serde_json::from_str(&j).ok())
                        .unwrap_or_default(),
                }),
            },
        },
    })
}

impl Store {
    /// Stored alerts matching `f`, newest event first.
    pub fn list_alerts(&self, f: &AlertFilter) -> Result<Vec<StoredAlert>, StoreError> {
        let mut sql = format!("SELECT {STORED_ALERT_COLUMNS} FROM alerts WHERE 1 = 1");
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        if !f.rules.is_empty() {
            sql.push_str(&format!(" AND rule_name IN ({})", vec!["?"; f.rules.len()].join(", ")));
            args.extend(f.rules.iter().map(|r| Box::new(r.clone()) as Box<dyn rusqlite::ToSql>));
        }
        // Every filter value is a bound parameter.
        let mut bind = |clause: &str, v: Box<dyn rusqlite::ToSql>| {
            sql.push_str(clause);
            args.push(v);
        };
        if let Some(l) = f.min_severity {
            bind(" AND severity_rank >= ?", Box::new(l as i64));
        }
        if let Some(l) = f.severity {
            bind(" AND severity_rank = ?", Box::new(l as i64));
        }
        if let Some(a) = &f.account {
            bind(" AND account_id = ?", Box::new(a.clone()));
        }
        if let Some(p) = &f.principal {
            bind(" AND instr(lower(principal_arn), lower(?)) > 0", Box::new(p.clone()));
        }
        if let Some(t) = &f.since {
            bind(" AND event_time >= ?", Box::new(t.clone()));
        }
        if let Some(t) = &f.until {
            bind(" AND event_time < ?", Box::new(t.clone()));
        }
        sql.push_str(" ORDER BY event_time DESC, id DESC");
        if let Some(n) = f.limit {
            sql.push_str(" LIMIT ?");
            args.push(Box::new(n as i64));
        }
        let mut st = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map(
                rusqlite::params_from_iter(args.iter().map(|b| b.as_ref())),
                stored_alert,
            )
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Alerts by store id (all digits) or by eventID (one per rule).
    pub fn find_alerts(&self, key: &str) -> Result<Vec<StoredAlert>, StoreError> {
        let by_id = !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit());
        let sql = if by_id {
            format!("SELECT {STORED_ALERT_COLUMNS} FROM alerts WHERE id = ?1 ORDER BY id")
        } else {
            format!("{EVENT_HOURS} SELECT {STORED_ALERT_COLUMNS} FROM alerts WHERE {BY_EVENT_ID} ORDER BY id")
        };
        let mut st = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = st.query_map([key], stored_alert).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

/// The distinct hours of stored events (`substr(event_time, 1, 13)`), one
/// index seek each: a loose index scan over `alerts_event_id_by_hour`
/// (schema v8), so a store of a year of alerts costs a lookup some 9,000
/// seeks rather than a read of every row.
const EVENT_HOURS: &str = "WITH RECURSIVE hours(h) AS ( \
    SELECT (SELECT substr(event_time, 1, 13) FROM alerts ORDER BY substr(event_time, 1, 13) LIMIT 1) \
    UNION ALL \
    SELECT (SELECT substr(event_time, 1, 13) FROM alerts WHERE substr(event_time, 1, 13) > h \
            ORDER BY substr(event_time, 1, 13) LIMIT 1) \
    FROM hours WHERE h IS NOT NULL)";

/// Alerts of eventID `?1`: in each stored hour, those whose eventID starts
/// the same (a seek in `alerts_event_id_by_hour`), then the whole eventID.
const BY_EVENT_ID: &str = "substr(event_time, 1, 13) IN (SELECT h FROM hours WHERE h IS NOT NULL) \
    AND substr(event_id, 1, 8) = substr(?1, 1, 8) AND event_id = ?1";

/// Page size of a new store (see `Store::configure`).
const PAGE_SIZE: i64 = 16384;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_store_has_16k_pages_and_an_old_one_keeps_its_own() {
        let page_size = |s: &Store| -> i64 { s.conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap() };
        let fresh = tempfile::tempdir().unwrap();
        assert_eq!(page_size(&Store::open(fresh.path()).unwrap()), PAGE_SIZE);
        // A store made with 4 KiB pages (every store before this change).
        let old = tempfile::tempdir().unwrap();
        drop(store_at_version(old.path(), MIGRATIONS.len()));
        let store = Store::open(old.path()).unwrap();
        assert_eq!(page_size(&store), 4096);
        let mode: String = store.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
    }

    /// A store made by an older trailwatch: the first `version` migrations.
    fn store_at_version(data_dir: &Path, version: usize) -> Connection {
        std::fs::create_dir_all(data_dir).unwrap();
        let conn = Connection::open(data_dir.join(DB_FILE)).unwrap();
        for sql in &MIGRATIONS[..version] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", version as i64).unwrap();
        conn
    }

    const INSERT: &str = "INSERT OR IGNORE INTO alerts (id, rule_name, rule_id, title, severity, severity_rank, \
        event_id, event_time, event_name, event_source, aws_region, account_id, principal_arn, principal_type, \
        source_ip, user_agent, object, detected_at, raw_event, group_key) \
        VALUES (?1, ?2, 'id', 'title', 'high', 3, ?3, '2026-10-05T14:03:00Z', 'ConsoleLogin', \
        'signin.amazonaws.com', 'us-east-1', '111122223333', 'arn', 'Root', '198.51.100.7', 'ua', 'obj', \
        '2026-11-27T12:00:00Z', '{}', ?4)";

    #[test]
    fn alerts_upgraded_from_v5_v6_v7_keep_rows_and_ids_are_keyed_by_time_and_found_by_event_id() {
        for from in [5, 6, 7] {
            let dir = tempfile::tempdir().unwrap();
            {
                let conn = store_at_version(dir.path(), from);
                conn.execute(
                    INSERT,
                    rusqlite::params![7, "root_account_usage", "e-1", None::<String>],
                )
                .unwrap();
                conn.execute(INSERT, rusqlite::params![9, "burst", "e-2", Some("198.51.100.7")])
                    .unwrap();
            }
            let store = Store::open(dir.path()).unwrap();
            let conn = store.connection();
            let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
            assert_eq!(version, MIGRATIONS.len() as i64);
            let rows: Vec<(i64, String, String, Option<String>)> = conn
                .prepare("SELECT id, rule_name, event_id, group_key FROM alerts ORDER BY id")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(
                rows,
                vec![
                    (7, "root_account_usage".into(), "e-1".into(), None),
                    (9, "burst".into(), "e-2".into(), Some("198.51.100.7".into())),
                ],
                "from v{from}"
            );
            // The unique key, time first, and the eventID prefix index.
            let indexes: Vec<(String, bool)> = conn
                .prepare("SELECT name, \"unique\" FROM pragma_index_list('alerts') ORDER BY name")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(
                indexes,
                vec![
                    ("alerts_event_id_by_hour".into(), false),
                    ("sqlite_autoindex_alerts_1".into(), true)
                ]
            );
            let columns: Vec<String> = conn
                .prepare("SELECT name FROM pragma_index_info('sqlite_autoindex_alerts_1') ORDER BY seqno")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(columns, ["event_time", "event_id", "rule_name"]);
            let plan = |sql: &str| -> String {
                conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .unwrap()
                    .query_map([], |r| r.get::<_, String>(3))
                    .unwrap()
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap()
                    .join("; ")
            };
            // `alerts show <eventID>` (find_alerts) and `alerts --since`
            // (list_alerts) each use an index rather than scan the table.
            let by_event = plan(&format!(
                "{EVENT_HOURS} SELECT * FROM alerts WHERE {} ORDER BY id",
                BY_EVENT_ID.replace("?1", "'e-1'")
            ));
            // A seek per stored hour (the first hour is the index's first
            // entry), then a seek for the eventID's prefix in each.
            assert!(
                by_event.contains("SEARCH alerts USING INDEX alerts_event_id_by_hour (<expr>=? AND <expr>=?)"),
                "{by_event}"
            );
            assert!(
                by_event
                    .split("; ")
                    .filter(|step| step.contains(" alerts"))
                    .all(|step| step.contains("INDEX alerts_event_id_by_hour")),
                "{by_event}"
            );
            let by_time = plan(
                "SELECT * FROM alerts WHERE 1 = 1 AND event_time >= '2026-10-01' ORDER BY event_time DESC, id DESC",
            );
            assert!(by_time.contains("USING INDEX sqlite_autoindex_alerts_1"), "{by_time}");
            let found: Vec<i64> = store.find_alerts("e-1").unwrap().iter().map(|a| a.id).collect();
            assert_eq!(found, [7]);
            // The same (event, rule) is still stored once; another rule is new.
            assert_eq!(
                conn.execute(
                    INSERT,
                    rusqlite::params![None::<i64>, "root_account_usage", "e-1", None::<String>]
                )
                .unwrap(),
                0
            );
            assert_eq!(
                conn.execute(
                    INSERT,
                    rusqlite::params![None::<i64>, "other_rule", "e-1", None::<String>]
                )
                .unwrap(),
                1
            );
            let found: Vec<String> = store
                .find_alerts("e-1")
                .unwrap()
                .into_iter()
                .map(|a| a.alert.rule_name)
                .collect();
            assert_eq!(found, ["root_account_usage", "other_rule"]);
            // The same eventID in other hours (a correlation keyed by it, a
            // re-timed copy) is found too; another eventID that starts with
            // the same eight characters is not.
            let at = |id: i64, rule: &str, event: &str, time: &str| {
                conn.execute(
                    &INSERT.replace("'2026-10-05T14:03:00Z'", &format!("'{time}'")),
                    rusqlite::params![id, rule, event, None::<String>],
                )
                .unwrap();
            };
            at(20, "late_rule", "e-1", "2026-10-07T02:00:00Z");
            at(21, "early_rule", "e-1", "2026-09-30T23:59:59Z");
            at(22, "root_account_usage", "abcdefgh-1", "2026-10-05T14:03:00Z");
            at(23, "root_account_usage", "abcdefgh-2", "2026-10-05T14:03:00Z");
            let ids = |key: &str| -> Vec<i64> { store.find_alerts(key).unwrap().iter().map(|a| a.id).collect() };
            assert_eq!(ids("e-1"), [7, 10, 20, 21]);
            assert_eq!(ids("abcdefgh-2"), [23]);
            assert_eq!(ids("abcdefgh"), Vec::<i64>::new());
            assert_eq!(ids("no-such-event"), Vec::<i64>::new());
        }
    }
}
