//! Live progress for long runs: an indicatif bar on a terminal, periodic
//! plain log lines otherwise (CI logs, pipes, systemd).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::committer::Totals;

pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
    total: u64,
    listing_done: bool,
}

impl Progress {
    pub fn new() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(8));
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:28} {pos}/{len} objects · {msg} · ETA {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.enable_steady_tick(Duration::from_millis(250));
            b
        });
        Progress {
            bar,
            started: Instant::now(),
            last_line: Instant::now(),
            total: 0,
            listing_done: false,
        }
    }

    /// More objects were listed (the total grows while listing runs).
    pub fn add_total(&mut self, n: u64) {
        self.total += n;
        if let Some(b) = &self.bar {
            b.set_length(self.total);
        }
    }

    pub fn listing_finished(&mut self) {
        self.listing_done = true;
    }

    /// Refreshes the display from the run's totals.
    pub fn update(&mut self, t: &Totals) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let msg = format!(
            "{} · {:.0} records/s · {} alerts{}",
            HumanBytes(t.bytes),
            t.records as f64 / secs,
            t.new_alerts,
            if self.listing_done { "" } else { " · listing…" }
        );
        match &self.bar {
            Some(b) => {
                b.set_position(t.objects);
                b.set_message(msg);
            }
            None => {
                if self.last_line.elapsed() >= Duration::from_secs(5) {
                    self.last_line = Instant::now();
                    tracing::info!(
                        "progress: {}/{}{} objects, {msg}",
                        t.objects,
                        self.total,
                        if self.listing_done { "" } else { "+" }
                    );
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
