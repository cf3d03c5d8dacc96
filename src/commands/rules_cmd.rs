//! `trailwatch rules list|test|lint`.

use std::path::PathBuf;
use std::process::ExitCode;

use comfy_table::{ContentArrangement, Table, presets};
use trailwatch::rules::run_rule_tests;

#[derive(Debug, clap::Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    command: RulesCommand,
}

#[derive(Debug, clap::Subcommand)]
enum RulesCommand {
    /// Print name, id, level, status and the fields each rule uses.
    List {
        #[command(flatten)]
        rules: super::RuleArgs,
    },
    /// Run every rule's embedded true-positive and true-negative events.
    Test {
        /// Rule folders (default: the --rules folders, else the built-in rules).
        dirs: Vec<PathBuf>,
        #[command(flatten)]
        rules: super::RuleArgs,
    },
    /// Load every rule in DIR and report all problems in one pass.
    Lint {
        /// Rule folders (default: the --rules folders, else the built-in rules).
        dirs: Vec<PathBuf>,
        #[command(flatten)]
        rules: super::RuleArgs,
    },
}

/// Positional folders and `--rules` folders together.
fn with_dirs(dirs: Vec<PathBuf>, mut rules: super::RuleArgs) -> super::RuleArgs {
    let mut all = dirs;
    all.append(&mut rules.rules);
    rules.rules = all;
    rules
}

/// Writes to stdout; a closed pipe (`| head`) ends the listing quietly.
fn emit(text: impl std::fmt::Display) -> std::io::Result<bool> {
    use std::io::Write as _;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e),
    }
}

pub fn run(args: RulesArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        RulesCommand::List { rules } => {
            let set = rules.load()?;
            let mut t = Table::new();
            t.load_preset(presets::NOTHING)
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_header(["NAME", "ID", "LEVEL", "STATUS", "FIELDS"]);
            for r in set.rules() {
                t.add_row([
                    r.name.clone(),
                    r.id.clone(),
                    r.level.to_string(),
                    r.status.clone(),
                    r.fields().join(", "),
                ]);
            }
            for c in set.correlations() {
                t.add_row([
                    c.name.clone(),
                    c.id.clone(),
                    c.level.to_string(),
                    c.status.clone(),
                    format!(
                        "{} of [{}] by [{}] within {} ({})",
                        c.kind.as_str(),
                        c.rule_refs.join(", "),
                        c.fields().join(", "),
                        c.timespan_text,
                        c.condition
                    ),
                ]);
            }
            if !emit(&t)? {
                return Ok(ExitCode::SUCCESS);
            }
            let stats = set.index_stats();
            let by: Vec<String> = stats
                .by_field
                .iter()
                .map(|(field, n)| format!("{n} by {field}"))
                .chain(
                    stats
                        .by_presence
                        .iter()
                        .map(|(field, n)| format!("{n} when {field} is present")),
                )
                .collect();
            eprintln!(
                "{} rules: dispatched {}, {} on every record; {} correlations",
                set.len(),
                by.join(", "),
                stats.always,
                set.correlations().len()
            );
            Ok(ExitCode::SUCCESS)
        }
        RulesCommand::Lint { dirs, rules } => {
            let (set, errors) = with_dirs(dirs, rules).load_all();
            for e in &errors {
                println!("{}", super::rule_error_line(e));
            }
            println!(
                "{} loaded, {} errors{}",
                set.len() + set.correlations().len(),
                errors.len(),
                if set.correlations().is_empty() {
                    String::new()
                } else {
                    format!(" ({} rules, {} correlations)", set.len(), set.correlations().len())
                }
            );
            Ok(if errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        RulesCommand::Test { dirs, rules } => {
            let (set, errors) = with_dirs(dirs, rules).load_all();
            for e in &errors {
                println!("{}", super::rule_error_line(e));
            }
            let outcomes = run_rule_tests(&set);
            let mut failed = 0;
            let names = set
                .rules()
                .iter()
                .map(|r| &r.name)
                .chain(set.correlations().iter().map(|c| &c.name));
            for name in names {
                let mine: Vec<_> = outcomes.iter().filter(|o| o.rule == *name).collect();
                let bad: Vec<_> = mine.iter().filter(|o| !o.passed).collect();
                failed += bad.len();
                let feeds = set.rules().iter().any(|r| r.name == *name && !r.feeds.is_empty());
                let status = if mine.is_empty() && feeds {
                    "tested through its correlation"
                } else if mine.is_empty() {
                    "no tests"
                } else if bad.is_empty() {
                    "ok"
                } else {
                    "FAILED"
                };
                println!("{:<48} {:>3} cases  {status}", name, mine.len());
                for o in bad {
                    println!("    {} #{}: {}", o.kind, o.index, o.reason);
                }
            }
            println!(
                "{} rules, {} cases, {} failed, {} load errors",
                set.len() + set.correlations().len(),
                outcomes.len(),
                failed,
                errors.len()
            );
            Ok(if failed == 0 && errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
