//! Columnar aggregates: hive-partitioned Parquet under
//! `<data-dir>/aggregates/{activity,alerts}/date=YYYY-MM-DD/part-*.parquet`.
//!
//! # Why it is exact (design note)
//!
//! Each object's activity rows are *staged* in SQLite (`activity_staging`)
//! in the same transaction as its ledger row and alerts; an object already
//! `ok` in the ledger stages nothing. (Since schema v5 the rows of a commit
//! batch's objects are merged and staged as one blob row, see
//! `store::staging`; it is still one transaction, so nothing below
//! changes.) A *flush* moves staged rows to Parquet
//! in three steps, each recorded in the `flushes` table:
//!
//! 1. a transaction records `pending` flush N with the highest staged row id
//!    and the alert id range it will export;
//! 2. `part-N.parquet` files are written (temp file, fsync, rename, fsync of
//!    the directory);
//! 3. a transaction deletes the staged rows up to that id and marks N `done`.
//!
//! A crash before 1 leaves rows staged; between 1 and 3 recovery deletes
//! every `part-N` file and redoes 2 and 3 from the still-staged rows (ids
//! never get reused: `AUTOINCREMENT`); after 3 nothing is left to do. So
//! every staged row reaches Parquet exactly once, and readers that add the
//! still-staged rows to the Parquet rows see exact totals at any moment.
//!
//! Compaction merges a partition's parts into `part-cM.parquet` the same
//! way: `pending` row listing the old parts → new file written → old parts
//! deleted → `done`. Recovery finishes the deletion when the new file exists
//! and abandons the compaction (deleting the temp file) when it does not.
//!
//! # The alerts' raw events
//!
//! The Parquet alert parts carry every column of the `alerts` table, but
//! their `raw_event` is null unless [`Aggregates::with_alert_raw_events`]
//! asks for it (`--parquet-raw-events`, daemon `parquet_raw_events`). The
//! raw event is the bulk of an alert (1-3 KiB of JSON against a few hundred
//! bytes for the rest), it is already in `alerts.db` (the source of truth,
//! which `query` and `alerts show` read), and the lake that reads these
//! parts usually has the CloudTrail objects themselves, joined on
//! `event_id`. Reading it back from SQLite, copying and compressing it again
//! cost 5-8% of a full-pack scan (benches/compare run 4, 256 MiB corpus).
//! The column is kept, null, so that old and new parts of a partition have
//! one schema (compaction and readers that do not unify schemas rely on
//! that). A flush redone by recovery follows the setting of the process
//! that redoes it (`trailwatch compact` uses the default).
//!
//! Readers ([`Aggregates::activity_view`]) do not wait for recovery, which
//! only a writer runs: they read the staged rows and the `flushes` and
//! `compactions` tables in one SQLite snapshot and take only the files that
//! snapshot vouches for: `part-N` of a flush that was `done` (a pending or
//! later flush's rows are still in the staged snapshot), and of a pending
//! compaction either its new file (when written) or its old parts, never
//! both. So totals are exact after a crash at any step, and while a flush
//! runs. A compaction that starts between the snapshot and the listing is
//! detected and the view is taken again.

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rusqlite::{OptionalExtension, params};

use super::staging;
use super::{Store, StoreError};
use crate::pipeline::activity::{KEY_COLUMNS, RowRef};
use crate::testhook;
use crate::time::{hour_start_ms, parse_ms};

/// The aggregate tables.
pub const TABLES: [&str; 2] = ["activity", "alerts"];

/// The grouping columns of `activity`, in order: an activity row's key
/// columns, then `read_only`.
pub const ACTIVITY_KEYS: [&str; 11] = {
    let mut keys = [""; 11];
    let mut i = 0;
    while i < KEY_COLUMNS.len() {
        keys[i] = KEY_COLUMNS[i];
        i += 1;
    }
    keys[10] = "read_only";
    keys
};

/// What a flush wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlushSummary {
    pub activity_rows: u64,
    pub alert_rows: u64,
    pub files: u64,
}

/// What a compaction did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CompactSummary {
    pub partitions: u64,
    pub files_before: u64,
    pub files_after: u64,
}

/// The Parquet side of a data directory.
pub struct Aggregates {
    root: PathBuf,
    /// Whether alert parts carry the raw event (see the module note).
    alert_raw_events: bool,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn pq_err(path: &Path, e: PolarsError) -> StoreError {
    StoreError::Parquet {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

fn io_err(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

fn datetime_col(name: &str, ms: Vec<Option<i64>>) -> PolarsResult<Column> {
    Series::new(name.into(), ms)
        .cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)))
        .map(Column::from)
}

/// The `date=` partition of an ISO 8601 time, borrowed: its date, or
/// `unknown`. Validated by `day_of`, never sliced blindly (log content).
fn partition_str(time: &str) -> &str {
    crate::pipeline::activity::day_of(time).unwrap_or("unknown")
}

/// The `date=` partition of a row. `time` comes from log content (an alert's
/// `eventTime`), so it is validated, never sliced blindly: it also names a
/// directory.
fn partition_of(time: &str) -> String {
    crate::pipeline::activity::day_of(time).unwrap_or("unknown").to_owned()
}

impl Aggregates {
    pub fn new(data_dir: &Path) -> Aggregates {
        Aggregates {
            root: data_dir.join("aggregates"),
            alert_raw_events: false,
        }
    }

    /// Writes each alert's raw event into the Parquet alert parts too
    /// (null there by default; see the module note).
    pub fn with_alert_raw_events(mut self, on: bool) -> Aggregates {
        self.alert_raw_events = on;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every committed part file of `table`, sorted.
    pub fn parts(&self, table: &str) -> Result<Vec<PathBuf>, StoreError> {
        let dir = self.root.join(table);
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for part in std::fs::read_dir(&dir).map_err(|e| io_err(&dir, e))? {
            let part = part.map_err(|e| io_err(&dir, e))?.path();
            if !part.is_dir() {
                continue;
            }
            for f in std::fs::read_dir(&part).map_err(|e| io_err(&part, e))? {
                let f = f.map_err(|e| io_err(&part, e))?.path();
                if f.extension().is_some_and(|e| e == "parquet") {
                    out.push(f);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// What a reader sees of `activity`: the staged rows and the part files
    /// of one consistent snapshot (see the design note), so that their sum
    /// is exact whatever state a crash or a running flush left.
    pub fn activity_view(&self, store: &Store) -> Result<(DataFrame, Vec<PathBuf>), StoreError> {
        let path = store.path().to_owned();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = store.connection();
        let last_compaction = || -> Result<i64, StoreError> {
            conn.query_row("SELECT COALESCE(MAX(id), 0) FROM compactions", [], |r| r.get(0))
                .map_err(e)
        };
        for _ in 0..10 {
            conn.execute_batch("BEGIN").map_err(e)?;
            let snap = (|| {
                let done_flushes: std::collections::HashSet<i64> = conn
                    .prepare("SELECT id FROM flushes WHERE state = 'done'")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let compactions: Vec<(i64, String, String, String, String)> = conn
                    .prepare("SELECT id, state, dir, new_file, old_files FROM compactions WHERE state <> 'aborted'")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                    .collect::<Result<_, _>>()?;
                Ok((done_flushes, compactions))
            })()
            .map_err(e);
            let staged = snap.as_ref().ok().map(|_| staged_activity(store));
            let seen_compaction = last_compaction();
            conn.execute_batch("COMMIT").map_err(e)?;
            let (done_flushes, compactions) = snap?;
            let staged = staged.expect("read with the snapshot")?;
            let seen_compaction = seen_compaction?;

            let mut done_compactions = std::collections::HashSet::new();
            let mut hidden: std::collections::HashSet<PathBuf> = Default::default();
            for (id, state, dir, new_file, old) in compactions {
                let dir = PathBuf::from(dir);
                if state == "done" {
                    done_compactions.insert(id);
                } else if !new_file.is_empty() && dir.join(&new_file).is_file() {
                    // Written, old parts not all deleted yet: the new file
                    // stands for them.
                    done_compactions.insert(id);
                    let old: Vec<String> = serde_json::from_str(&old).unwrap_or_default();
                    hidden.extend(old.iter().map(|f| dir.join(f)));
                }
            }
            let parts: Vec<PathBuf> = self
                .parts("activity")?
                .into_iter()
                .filter(|p| !hidden.contains(p))
                .filter(|p| {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                    match name.strip_prefix("part-").and_then(|n| n.strip_suffix(".parquet")) {
                        Some(n) if n.starts_with('c') => {
                            n[1..].parse().is_ok_and(|id: i64| done_compactions.contains(&id))
                        }
                        Some(n) => n.parse().is_ok_and(|id: i64| done_flushes.contains(&id)),
                        None => false,
                    }
                })
                .collect();
            // A compaction that began after the snapshot may have deleted
            // parts the snapshot counts on: look again.
            if last_compaction()? == seen_compaction {
                return Ok((staged, parts));
            }
        }
        Err(StoreError::Parquet {
            path: self.root.clone(),
            reason: "compactions kept changing the part files while reading; try again".into(),
        })
    }

    /// Writes `df` to `dir/name` atomically: temp file, fsync, rename, fsync
    /// of the directory.
    fn write_part(&self, dir: &Path, name: &str, df: &mut DataFrame) -> Result<(), StoreError> {
        super::create_private_dir(dir)?;
        let tmp = dir.join(format!("{name}.tmp"));
        testhook::injected_write_error().map_err(|e| io_err(&tmp, e))?;
        let fin = dir.join(name);
        // 0600 explicitly, whatever the umask of the embedding process.
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| io_err(&tmp, e))?
        };
        ParquetWriter::new(&file)
            .with_compression(ParquetCompression::Zstd(None))
            // Row groups of up to 128 Ki rows. A smaller frame is one group
            // of its own height: polars copies a frame whose single chunk
            // is shorter than the row group size into a new one first (to
            // merge small chunks), a tenth of a flush's cost for nothing.
            .with_row_group_size(Some(df.height().clamp(1, 128 * 1024)))
            .with_statistics(StatisticsOptions::full())
            .finish(df)
            .map_err(|e| pq_err(&tmp, e))?;
        file.sync_all().map_err(|e| io_err(&tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, &fin).map_err(|e| io_err(&fin, e))?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_err(dir, e))?;
        Ok(())
    }

    /// Finishes what a crash interrupted: pending flushes are redone,
    /// pending compactions finished or abandoned.
    pub fn recover(&self, store: &mut Store) -> Result<(), StoreError> {
        let path = store.path().to_owned();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let pending: Vec<(i64, i64, i64, i64)> = {
            let conn = store.conn_mut();
            let mut st = conn
                .prepare("SELECT id, staging_max_id, alerts_from_id, alerts_to_id FROM flushes WHERE state = 'pending' ORDER BY id")
                .map_err(e)?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .map_err(e)?
                .collect::<Result<_, _>>()
                .map_err(e)?
        };
        for (id, staging_max, from, to) in pending {
            tracing::warn!(flush = id, "finishing an interrupted Parquet flush");
            self.remove_flush_files(id)?;
            self.write_flush(store, id, staging_max, from, to)?;
            self.finish_flush(store, id, staging_max)?;
        }
        let compactions: Vec<(i64, String, String, String)> = {
            let conn = store.conn_mut();
            let mut st = conn
                .prepare("SELECT id, dir, new_file, old_files FROM compactions WHERE state = 'pending' ORDER BY id")
                .map_err(e)?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .map_err(e)?
                .collect::<Result<_, _>>()
                .map_err(e)?
        };
        for (id, dir, new_file, old) in compactions {
            let dir = PathBuf::from(dir);
            let old: Vec<String> = serde_json::from_str(&old).unwrap_or_default();
            // A row without a file name (written by versions that recorded
            // it in a second step) never got as far as writing anything.
            let state = if !new_file.is_empty() && dir.join(&new_file).is_file() {
                for f in &old {
                    let p = dir.join(f);
                    if p.exists() {
                        std::fs::remove_file(&p).map_err(|e| io_err(&p, e))?;
                    }
                }
                "done"
            } else {
                let tmp = dir.join(format!("{new_file}.tmp"));
                if tmp.exists() {
                    std::fs::remove_file(&tmp).map_err(|e| io_err(&tmp, e))?;
                }
                "aborted"
            };
            tracing::warn!(compaction = id, state, "finished an interrupted compaction");
            store
                .conn_mut()
                .execute(
                    "UPDATE compactions SET state = ?1, finished_at = ?2 WHERE id = ?3",
                    params![state, now(), id],
                )
                .map_err(e)?;
        }
        Ok(())
    }

    fn remove_flush_files(&self, id: i64) -> Result<(), StoreError> {
        let name = format!("part-{id:010}.parquet");
        for table in TABLES {
            let dir = self.root.join(table);
            let Ok(rd) = std::fs::read_dir(&dir) else { continue };
            for part in rd.flatten() {
                for f in [part.path().join(&name), part.path().join(format!("{name}.tmp"))] {
                    if f.exists() {
                        std::fs::remove_file(&f).map_err(|e| io_err(&f, e))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Moves everything staged (and every alert not yet exported) to
    /// Parquet. Returns what was written.
    pub fn flush(&self, store: &mut Store) -> Result<FlushSummary, StoreError> {
        self.recover(store)?;
        let path = store.path().to_owned();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let (id, staging_max, from, to) = {
            let conn = store.conn_mut();
            let tx = conn.transaction().map_err(e)?;
            let staging_max: i64 = tx
                .query_row("SELECT COALESCE(MAX(id), 0) FROM activity_staging", [], |r| r.get(0))
                .map_err(e)?;
            let staged: i64 = tx
                .query_row("SELECT COUNT(*) FROM activity_staging", [], |r| r.get(0))
                .map_err(e)?;
            let from: i64 = tx
                .query_row("SELECT COALESCE(MAX(alerts_to_id), 0) FROM flushes", [], |r| r.get(0))
                .map_err(e)?;
            let to: i64 = tx
                .query_row("SELECT COALESCE(MAX(id), 0) FROM alerts", [], |r| r.get(0))
                .map_err(e)?;
            if staged == 0 && to <= from {
                return Ok(FlushSummary::default());
            }
            tx.execute(
                "INSERT INTO flushes (staging_max_id, alerts_from_id, alerts_to_id, state, started_at) VALUES (?1, ?2, ?3, 'pending', ?4)",
                params![staging_max, from, to, now()],
            )
            .map_err(e)?;
            let id = tx.last_insert_rowid();
            tx.commit().map_err(e)?;
            (id, staging_max, from, to)
        };
        testhook::hit("flush_begun");
        let summary = self.write_flush(store, id, staging_max, from, to)?;
        testhook::hit("flush_written");
        self.finish_flush(store, id, staging_max)?;
        tracing::debug!(
            flush = id,
            activity_rows = summary.activity_rows,
            alert_rows = summary.alert_rows,
            files = summary.files,
            "aggregates flushed"
        );
        Ok(summary)
    }

    fn finish_flush(&self, store: &mut Store, id: i64, staging_max: i64) -> Result<(), StoreError> {
        let path = store.path().to_owned();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = store.conn_mut();
        let tx = conn.transaction().map_err(e)?;
        tx.execute("DELETE FROM activity_staging WHERE id <= ?1", [staging_max])
            .map_err(e)?;
        tx.execute(
            "UPDATE flushes SET state = 'done', finished_at = ?1 WHERE id = ?2",
            params![now(), id],
        )
        .map_err(e)?;
        tx.commit().map_err(e)
    }

    fn write_flush(
        &self,
        store: &mut Store,
        id: i64,
        staging_max: i64,
        from: i64,
        to: i64,
    ) -> Result<FlushSummary, StoreError> {
        let path = store.path().to_owned();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let name = format!("part-{id:010}.parquet");
        let mut summary = FlushSummary::default();

        // Activity: staged rows re-aggregated per key, split by day.
        let mut by_day: std::collections::BTreeMap<&str, ActivityColumns> = Default::default();
        // Rows are written as staged: each commit batch merged its own rows,
        // and merging across batches again would gain little (batches cover
        // different hours) for a hash probe per row. Readers sum `events`
        // per key anyway.
        let staged = read_staged(store, Some(staging_max))?;
        staged.for_each(|r| {
            by_day.entry(partition_str(r.hour())).or_default().push(&r);
            summary.activity_rows += 1;
        })?;
        for (day, cols) in by_day {
            let mut df = cols.into_frame().map_err(|err| pq_err(&self.root, err))?;
            self.write_part(&self.root.join("activity").join(format!("date={day}")), &name, &mut df)?;
            summary.files += 1;
        }

        // Alerts: the ids exported by this flush, split by event day.
        let mut by_day: std::collections::BTreeMap<String, AlertColumns> = Default::default();
        {
            let conn = store.conn_mut();
            let mut st = conn
                .prepare(&format!(
                    "SELECT {} FROM alerts WHERE id > ?1 AND id <= ?2 ORDER BY id",
                    if self.alert_raw_events {
                        ALERT_COLUMNS.to_owned()
                    } else {
                        // Not even read: a raw event often spills into
                        // SQLite overflow pages.
                        ALERT_COLUMNS.replace("raw_event", "NULL AS raw_event")
                    }
                ))
                .map_err(e)?;
            let mut rows = st.query([from, to]).map_err(e)?;
            while let Some(r) = rows.next().map_err(e)? {
                let t: String = r.get(7).map_err(e)?;
                by_day.entry(partition_of(&t)).or_default().push(r).map_err(e)?;
                summary.alert_rows += 1;
            }
        }
        for (day, cols) in by_day {
            let mut df = cols.into_frame().map_err(|err| pq_err(&self.root, err))?;
            self.write_part(&self.root.join("alerts").join(format!("date={day}")), &name, &mut df)?;
            summary.files += 1;
        }
        Ok(summary)
    }

    /// Merges the parts of every partition that has more than one into a
    /// single file (activity rows re-aggregated by key).
    pub fn compact(&self, store: &mut Store) -> Result<CompactSummary, StoreError> {
        self.recover(store)?;
        let path = store.path().to_owned();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let mut summary = CompactSummary::default();
        for table in TABLES {
            let tdir = self.root.join(table);
            let Ok(rd) = std::fs::read_dir(&tdir) else { continue };
            let mut dirs: Vec<PathBuf> = rd.flatten().map(|d| d.path()).filter(|p| p.is_dir()).collect();
            dirs.sort();
            for dir in dirs {
                let mut old: Vec<String> = std::fs::read_dir(&dir)
                    .map_err(|err| io_err(&dir, err))?
                    .flatten()
                    .filter_map(|f| f.file_name().into_string().ok())
                    .filter(|n| n.ends_with(".parquet"))
                    .collect();
                old.sort();
                if old.len() < 2 {
                    continue;
                }
                // The pending row and its file name are recorded in one
                // transaction: recovery must never see a pending compaction
                // without the name of the file that replaces the old parts.
                let id: i64 = {
                    let conn = store.conn_mut();
                    let tx = conn.transaction().map_err(e)?;
                    tx.execute(
                        "INSERT INTO compactions (dir, new_file, old_files, state, started_at) VALUES (?1, '', ?2, 'pending', ?3)",
                        params![dir.display().to_string(), serde_json::to_string(&old).unwrap_or_default(), now()],
                    )
                    .map_err(e)?;
                    let id = tx.last_insert_rowid();
                    tx.execute(
                        "UPDATE compactions SET new_file = ?1 WHERE id = ?2",
                        params![format!("part-c{id:010}.parquet"), id],
                    )
                    .map_err(e)?;
                    tx.commit().map_err(e)?;
                    id
                };
                testhook::hit("compact_begun");
                let new_file = format!("part-c{id:010}.parquet");
                let paths: Vec<PathBuf> = old.iter().map(|f| dir.join(f)).collect();
                let mut df = read_parts(&paths, table == "activity").map_err(|err| pq_err(&dir, err))?;
                self.write_part(&dir, &new_file, &mut df)?;
                testhook::hit("compact_written");
                for p in &paths {
                    std::fs::remove_file(p).map_err(|err| io_err(p, err))?;
                }
                store
                    .conn_mut()
                    .execute(
                        "UPDATE compactions SET state = 'done', finished_at = ?1 WHERE id = ?2",
                        params![now(), id],
                    )
                    .map_err(e)?;
                summary.partitions += 1;
                summary.files_before += old.len() as u64;
                summary.files_after += 1;
            }
        }
        Ok(summary)
    }
}

/// A lazy scan of part files. Partition columns are not parsed from the
/// paths: every file carries its own `hour`/`event_time`.
pub fn scan_parts(paths: &[PathBuf]) -> PolarsResult<LazyFrame> {
    let sources: Vec<PlRefPath> = paths.iter().map(|p| PlRefPath::new(p.display().to_string())).collect();
    let args = ScanArgsParquet {
        hive_options: HiveOptions {
            enabled: Some(false),
            ..Default::default()
        },
        // Alert parts written before the correlation columns existed lack
        // them: read those as null instead of failing.
        allow_missing_columns: true,
        ..Default::default()
    };
    LazyFrame::scan_parquet_files(sources.into_iter().collect(), args)
}

/// Reads part files into one frame; activity rows are re-aggregated.
pub fn read_parts(paths: &[PathBuf], aggregate_activity: bool) -> PolarsResult<DataFrame> {
    let lf = scan_parts(paths)?;
    let lf = if aggregate_activity {
        aggregate(lf)
    } else {
        lf.sort(["id"], Default::default())
    };
    lf.collect()
}

/// Groups activity rows by key, summing events (the view queries see).
pub fn aggregate(lf: LazyFrame) -> LazyFrame {
    lf.group_by(ACTIVITY_KEYS.map(col))
        .agg([col("events").sum(), col("first_seen").min(), col("last_seen").max()])
        .sort(["hour"], Default::default())
}

#[derive(Default)]
struct ActivityColumns<'a> {
    hour: Vec<Option<i64>>,
    /// Borrowed from the merged staging table: no copy per row.
    strs: [Vec<&'a str>; 9],
    read_only: Vec<Option<bool>>,
    events: Vec<i64>,
    first: Vec<Option<i64>>,
    last: Vec<Option<i64>>,
}

impl<'a> ActivityColumns<'a> {
    fn push(&mut self, r: &RowRef<'a>) {
        let hour = r.hour();
        self.hour.push(if hour.is_empty() {
            None
        } else {
            hour_start_ms(hour.as_bytes())
        });
        for (v, s) in self.strs.iter_mut().zip(&r.key[1..]) {
            v.push(s);
        }
        self.read_only.push(r.read_only);
        self.events.push(r.events as i64);
        self.first.push(parse_ms(r.first_seen));
        self.last.push(parse_ms(r.last_seen));
    }

    fn into_frame(self) -> PolarsResult<DataFrame> {
        let n = self.events.len();
        let mut cols = vec![datetime_col("hour", self.hour)?];
        for (name, v) in ACTIVITY_KEYS[1..10].iter().zip(self.strs) {
            cols.push(Column::new((*name).into(), v));
        }
        cols.push(Column::new("read_only".into(), self.read_only));
        cols.push(Column::new("events".into(), self.events));
        cols.push(datetime_col("first_seen", self.first)?);
        cols.push(datetime_col("last_seen", self.last)?);
        DataFrame::new(n, cols)
    }
}

/// Alert columns exported to Parquet (and registered for `query`).
pub const ALERT_COLUMNS: &str = "id, rule_name, rule_id, title, severity, severity_rank, event_id, event_time, \
    event_name, event_source, aws_region, account_id, principal_arn, principal_type, source_ip, user_agent, \
    object, detected_at, raw_event, group_key, window_start, window_end, contributing_events";

/// One column of an alert frame, in [`ALERT_COLUMNS`] order.
enum AlertColumn {
    /// `id`, `severity_rank`.
    Int(Vec<i64>),
    /// `event_time`, `detected_at`: epoch milliseconds, UTC.
    Time(Vec<Option<i64>>),
    /// Everything else. Text goes from SQLite's row straight into polars'
    /// string builder: an owned `String` per cell, converted to a column
    /// afterwards, was a quarter of a full-pack flush (benches/compare
    /// run 4). `raw_event` is null when the flush leaves raw events out,
    /// the correlation columns for single-event alerts.
    Text(StringChunkedBuilder),
}

/// Builds alert frames from rows selected with [`ALERT_COLUMNS`].
pub struct AlertColumns {
    cols: Vec<(&'static str, AlertColumn)>,
    rows: usize,
}

impl Default for AlertColumns {
    fn default() -> Self {
        let cols = ALERT_COLUMNS
            .split(", ")
            .map(|name| {
                let col = match name {
                    "id" | "severity_rank" => AlertColumn::Int(Vec::new()),
                    "event_time" | "detected_at" => AlertColumn::Time(Vec::new()),
                    _ => AlertColumn::Text(StringChunkedBuilder::new(name.into(), 0)),
                };
                (name, col)
            })
            .collect();
        AlertColumns { cols, rows: 0 }
    }
}

/// Column `i` of `r` as text (`None` for NULL), borrowed from the row.
fn text_or_null<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<&'r str>> {
    let v = r.get_ref(i)?;
    v.as_str_or_null()
        .map_err(|err| rusqlite::Error::FromSqlConversionFailure(i, v.data_type(), Box::new(err)))
}

impl AlertColumns {
    pub fn push(&mut self, r: &rusqlite::Row<'_>) -> rusqlite::Result<()> {
        for (i, (_, col)) in self.cols.iter_mut().enumerate() {
            match col {
                AlertColumn::Int(v) => v.push(r.get(i)?),
                AlertColumn::Time(v) => v.push(text_or_null(r, i)?.and_then(parse_ms)),
                AlertColumn::Text(b) => b.append_option(text_or_null(r, i)?),
            }
        }
        self.rows += 1;
        Ok(())
    }

    pub fn into_frame(self) -> PolarsResult<DataFrame> {
        let cols = self
            .cols
            .into_iter()
            .map(|(name, col)| match col {
                AlertColumn::Int(v) => Ok(Column::new(name.into(), v)),
                AlertColumn::Time(v) => datetime_col(name, v),
                AlertColumn::Text(b) => Ok(b.finish().into_column()),
            })
            .collect::<PolarsResult<Vec<_>>>()?;
        DataFrame::new(self.rows, cols)
    }
}

/// A row staged one by one (before schema v5): key, read-only, events,
/// first and last seen.
type LegacyRow = ([String; 10], Option<bool>, u64, String, String);

/// Staged activity rows with ids up to some maximum, as stored: batch blobs
/// (each merged within its commit batch) and rows staged one by one by
/// versions before schema v5.
struct Staged {
    legacy: Vec<LegacyRow>,
    blobs: Vec<(i64, Vec<u8>)>,
    path: PathBuf,
}

impl Staged {
    /// Calls `f` with every row; rows borrow from `self`.
    fn for_each<'a>(&'a self, mut f: impl FnMut(RowRef<'a>)) -> Result<(), StoreError> {
        for (key, read_only, events, first, last) in &self.legacy {
            f(RowRef {
                key: std::array::from_fn(|i| key[i].as_str()),
                read_only: *read_only,
                events: *events,
                first_seen: first,
                last_seen: last,
            });
        }
        for (id, blob) in &self.blobs {
            staging::decode_blob(blob, &mut f).map_err(|err| StoreError::Staging {
                path: self.path.clone(),
                id: *id,
                reason: err.to_string(),
            })?;
        }
        Ok(())
    }
}

fn read_staged(store: &Store, max_id: Option<i64>) -> Result<Staged, StoreError> {
    let path = store.path().to_owned();
    let e = |source| StoreError::Sqlite {
        path: path.clone(),
        source,
    };
    let max_id = max_id.unwrap_or(i64::MAX);
    let conn = store.connection();
    let mut legacy = Vec::new();
    let mut st = conn
        .prepare(
            "SELECT hour, account_id, aws_region, event_source, event_name, principal_type, principal_arn, \
             source_ip, user_agent_family, error_code, read_only, events, first_seen, last_seen \
             FROM activity_staging WHERE id <= ?1 AND batch IS NULL",
        )
        .map_err(e)?;
    let mut rows = st.query([max_id]).map_err(e)?;
    while let Some(r) = rows.next().map_err(e)? {
        let mut key: [String; 10] = Default::default();
        for (i, k) in key.iter_mut().enumerate() {
            *k = r.get(i).map_err(e)?;
        }
        legacy.push((
            key,
            r.get(10).map_err(e)?,
            r.get::<_, i64>(11).map_err(e)? as u64,
            r.get(12).map_err(e)?,
            r.get(13).map_err(e)?,
        ));
    }
    let mut st = conn
        .prepare("SELECT id, batch FROM activity_staging WHERE id <= ?1 AND batch IS NOT NULL ORDER BY id")
        .map_err(e)?;
    let blobs = st
        .query_map([max_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(e)?
        .collect::<Result<_, _>>()
        .map_err(e)?;
    Ok(Staged { legacy, blobs, path })
}

/// Reads the still-staged activity rows as a frame (for exact queries).
pub fn staged_activity(store: &Store) -> Result<DataFrame, StoreError> {
    let staged = read_staged(store, None)?;
    let mut cols = ActivityColumns::default();
    staged.for_each(|r| cols.push(&r))?;
    cols.into_frame().map_err(|err| pq_err(store.path(), err))
}

/// All alerts from SQLite as a frame (the store is the source of truth).
pub fn alerts_frame(store: &Store) -> Result<DataFrame, StoreError> {
    let path = store.path().to_owned();
    let e = |source| StoreError::Sqlite {
        path: path.clone(),
        source,
    };
    let mut cols = AlertColumns::default();
    let mut st = store
        .connection()
        .prepare(&format!("SELECT {ALERT_COLUMNS} FROM alerts ORDER BY id"))
        .map_err(e)?;
    let mut rows = st.query([]).map_err(e)?;
    while let Some(r) = rows.next().map_err(e)? {
        cols.push(r).map_err(e)?;
    }
    cols.into_frame().map_err(|err| pq_err(&path, err))
}

/// Number of flushes recorded (for tests and status output).
pub fn flush_count(store: &Store) -> Result<i64, StoreError> {
    store
        .connection()
        .query_row("SELECT COUNT(*) FROM flushes WHERE state = 'done'", [], |r| r.get(0))
        .optional()
        .map(|v| v.unwrap_or(0))
        .map_err(|source| StoreError::Sqlite {
            path: store.path().to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row_groups(path: &Path) -> Vec<usize> {
        let mut r = ParquetReader::new(File::open(path).unwrap());
        r.get_metadata()
            .unwrap()
            .row_groups
            .iter()
            .map(|g| g.num_rows())
            .collect()
    }

    /// `write_part` asks for row groups of the frame's height (up to
    /// 128 Ki) rather than a fixed 128 Ki, which made polars copy every
    /// small frame before writing it. The groups must be what the fixed
    /// size gave: a frame below 128 Ki rows is one group, and a larger one
    /// is cut into `rows / 128 Ki` groups (polars rounds down, so a group
    /// can hold up to twice that).
    #[test]
    fn a_part_is_one_row_group_below_128_ki_rows_and_cut_beyond() {
        let dir = tempfile::tempdir().unwrap();
        let agg = Aggregates::new(dir.path());
        let big = 2 * 128 * 1024 + 5;
        for (n, want) in [
            (1usize, vec![1usize]),
            (8_748, vec![8_748]),
            (128 * 1024 + 5, vec![128 * 1024 + 5]),
            (big, vec![big / 2, big - big / 2]),
        ] {
            let mut df =
                DataFrame::new(n, vec![Column::new("events".into(), (0..n as i64).collect::<Vec<_>>())]).unwrap();
            let name = format!("part-{n}.parquet");
            agg.write_part(dir.path(), &name, &mut df).unwrap();
            let path = dir.path().join(&name);
            assert_eq!(row_groups(&path), want, "{n} rows");
            let back = ParquetReader::new(File::open(&path).unwrap()).finish().unwrap();
            assert!(back.equals(&df), "{n} rows read back");
        }
    }
}
