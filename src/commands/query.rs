//! `trailwatch query "<SQL>"`: read-only polars SQL over two tables:
//!
//! * `alerts`: every stored alert, read from SQLite (the source of truth);
//! * `activity`: the hourly aggregates, i.e. the Parquet parts plus the rows
//!   still staged in SQLite, re-aggregated by key, so totals are exact at any
//!   moment, between flushes and after a crash included (see
//!   `store::aggregates`).
//!
//! Only a single SELECT (or WITH … SELECT) statement is accepted: the SQL is
//! parsed first and anything else is refused with the statement's kind.
//! The SQLite store is opened read-only as well.

use std::fs::File;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::ValueEnum;
use comfy_table::{ContentArrangement, Table, presets};
use polars::prelude::*;
use polars::sql::SQLContext;
use trailwatch::store::Store;
use trailwatch::store::aggregates::{self, Aggregates};

use super::DataDirArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueryFormat {
    Table,
    Jsonl,
    Csv,
    Parquet,
}

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// A SELECT statement over `alerts` and `activity`.
    #[arg(required_unless_present = "schema")]
    sql: Option<String>,
    /// List the tables and their columns.
    #[arg(long)]
    schema: bool,
    #[arg(long, value_enum, default_value_t = QueryFormat::Table)]
    format: QueryFormat,
    /// Write the result here instead of stdout (required for parquet).
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    data: DataDirArgs,
}

/// Refuses anything but one read-only query statement.
pub fn check_read_only(sql: &str) -> anyhow::Result<()> {
    use sqlparser::ast::Statement;
    let stmts = sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::GenericDialect {}, sql)
        .map_err(|e| anyhow::anyhow!("cannot parse the SQL: {e}"))?;
    match stmts.as_slice() {
        [Statement::Query(_)] => refuse_table_functions(sql),
        [] => bail!("no SQL statement given"),
        [other] => {
            let text = other.to_string();
            let kind = text.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            bail!("queries are read-only: only SELECT statements are allowed, not `{kind} …`")
        }
        _ => bail!("queries are read-only and single: give exactly one SELECT statement"),
    }
}

/// polars SQL can read any file through `read_csv(…)`, `read_parquet(…)`,
/// `read_ipc(…)` and `read_json(…)` in FROM. `query` is about the store:
/// whoever can type a query (a wrapper, a shared terminal) must not get a
/// file reader with it. Checked on tokens, so text inside string literals
/// is not mistaken for a call.
fn refuse_table_functions(sql: &str) -> anyhow::Result<()> {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let dialect = sqlparser::dialect::GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize()
        .map_err(|e| anyhow::anyhow!("cannot parse the SQL: {e}"))?;
    let mut words = tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_))).peekable();
    while let Some(t) = words.next() {
        if let Token::Word(w) = t {
            let name = w.value.to_ascii_lowercase();
            if name.starts_with("read_") && matches!(words.peek(), Some(Token::LParen)) {
                bail!(
                    "queries read only the `alerts` and `activity` tables: the table function `{}(…)` is not allowed",
                    w.value
                );
            }
        }
    }
    Ok(())
}

/// Registers `alerts` and `activity` for SQL.
pub fn context(data_dir: &std::path::Path) -> anyhow::Result<SQLContext> {
    let store = Store::open_read_only(data_dir)?;
    let alerts = aggregates::alerts_frame(&store).context("reading alerts")?;
    let (staged, parts) = Aggregates::new(data_dir)
        .activity_view(&store)
        .context("reading the activity aggregates")?;
    let activity = if parts.is_empty() {
        staged.lazy()
    } else {
        let scanned = aggregates::scan_parts(&parts)?;
        concat([scanned, staged.lazy()], UnionArgs::default())?
    };
    let ctx = SQLContext::new();
    ctx.register("alerts", alerts.lazy());
    ctx.register("activity", aggregates::aggregate(activity));
    Ok(ctx)
}

pub fn run(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let mut ctx = context(&args.data.data_dir)?;
    if args.schema {
        for table in ["activity", "alerts"] {
            let mut lf = ctx.execute(&format!("SELECT * FROM {table} LIMIT 0"))?;
            let schema = lf.collect_schema()?;
            println!("{table}");
            for (name, dtype) in schema.iter() {
                println!("  {name:<20} {dtype}");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let sql = args.sql.as_deref().unwrap_or_default();
    check_read_only(sql)?;
    let mut df = anyhow::Context::context(ctx.execute(sql).and_then(|lf| lf.collect()), "query failed")?;
    match (args.format, &args.output) {
        (QueryFormat::Parquet, None) => bail!("--format parquet needs --output FILE"),
        (QueryFormat::Parquet, Some(path)) => {
            let f = File::create(path).with_context(|| format!("{}", path.display()))?;
            ParquetWriter::new(f).finish(&mut df)?;
        }
        (format, Some(path)) => {
            let f = File::create(path).with_context(|| format!("{}", path.display()))?;
            write(format, std::io::BufWriter::new(f), &mut df)?;
        }
        (format, None) => write(format, std::io::stdout().lock(), &mut df)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn write(format: QueryFormat, mut out: impl std::io::Write, df: &mut DataFrame) -> anyhow::Result<()> {
    match format {
        QueryFormat::Jsonl => JsonWriter::new(&mut out)
            .with_json_format(JsonFormat::JsonLines)
            .finish(df)?,
        QueryFormat::Csv => CsvWriter::new(&mut out).include_header(true).finish(df)?,
        QueryFormat::Table => writeln!(out, "{}", table(df))?,
        QueryFormat::Parquet => unreachable!("handled by the caller"),
    }
    out.flush()?;
    Ok(())
}

/// An aligned table fitted to the terminal.
fn table(df: &DataFrame) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(df.get_column_names().iter().map(|n| n.to_uppercase()));
    let cols = df.columns();
    for i in 0..df.height() {
        t.add_row(cols.iter().map(|c| match c.get(i) {
            Ok(AnyValue::Null) | Err(_) => String::new(),
            Ok(v) => crate::output::terminal_safe(&v.str_value()).into_owned(),
        }));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::check_read_only;

    #[test]
    fn table_functions_that_read_files_are_refused() {
        for bad in [
            "SELECT * FROM read_csv('/etc/passwd')",
            "SELECT * FROM alerts WHERE rule_name IN (SELECT a FROM READ_PARQUET ('x.parquet'))",
            "WITH f AS (SELECT * FROM read_json('x')) SELECT * FROM f",
            "SELECT * FROM \"read_ipc\"('x')",
        ] {
            let e = check_read_only(bad).unwrap_err().to_string();
            assert!(e.contains("is not allowed"), "{bad}: {e}");
        }
        // A string that merely mentions one is data.
        assert!(check_read_only("SELECT * FROM alerts WHERE user_agent = 'read_csv(x)'").is_ok());
    }

    #[test]
    fn only_select_passes() {
        assert!(check_read_only("SELECT * FROM alerts").is_ok());
        assert!(check_read_only("WITH x AS (SELECT 1) SELECT * FROM x").is_ok());
        for bad in [
            "INSERT INTO alerts VALUES (1)",
            "UPDATE alerts SET severity = 'low'",
            "DELETE FROM alerts",
            "DROP TABLE alerts",
            "ATTACH DATABASE 'x.db' AS x",
            "PRAGMA user_version = 5",
            "COPY alerts TO 'out.csv'",
            "SELECT 1; DELETE FROM alerts",
            "CREATE TABLE t AS SELECT * FROM alerts",
        ] {
            let e = check_read_only(bad).unwrap_err().to_string();
            assert!(e.contains("read-only") || e.contains("cannot parse"), "{bad}: {e}");
        }
    }
}
