//! What the command line prints: progress while a job runs (bars on a terminal, a line every
//! two seconds otherwise), and the report (JSON, or the verification table).

use std::fmt::Write;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::domain::{DeliveryState, Job, Report};

/// The phase a job is in, as the progress line shows it.
pub(super) fn phase_text(job: &Job) -> &'static str {
    job.phase.map(|p| p.as_str()).unwrap_or("pending")
}

/// Shows a running job's progress; `update` is called with each report.
pub(super) struct Follower {
    bar: ProgressBar,
    terminal: bool,
    last_line: std::time::Instant,
    last_phase: Option<&'static str>,
}

impl Follower {
    /// Bars on a terminal (unless `json`), plain lines otherwise.
    pub(super) fn new(json: bool) -> Self {
        let terminal = std::io::stderr().is_terminal() && !json;
        let bar = ProgressBar::new(0);
        if terminal {
            bar.set_style(
                // Rate and ETA come from the job's own progress: the bar only sees page-sized
                // jumps.
                ProgressStyle::with_template(
                    "{spinner} {msg:<12} [{bar:40}] {pos}/{len} entities {prefix}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
        } else {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        Self {
            bar,
            terminal,
            last_line: std::time::Instant::now() - Duration::from_secs(10),
            last_phase: None,
        }
    }

    /// Shows one report.
    pub(super) fn update(&mut self, r: &Report) {
        let phase = phase_text(&r.job);
        let p = &r.progress;
        self.bar.set_length(p.total);
        self.bar.set_position(p.copied);
        self.bar.set_message(phase);
        let eta = p
            .eta_seconds
            .map(|s| format!(", eta {s}s"))
            .unwrap_or_default();
        self.bar.set_prefix(format!("({:.0}/s{eta})", p.rate));
        let due = self.last_line.elapsed() >= Duration::from_secs(2);
        if !self.terminal && (due || self.last_phase != Some(phase)) {
            eprintln!(
                "{phase}: {}/{} entities ({:.1}%), {:.0}/s",
                p.copied, p.total, p.percent, p.rate
            );
            self.last_line = std::time::Instant::now();
            self.last_phase = Some(phase);
        }
    }

    /// The job was interrupted: the bar stays as it was.
    pub(super) fn abandon(&self) {
        self.bar.abandon();
    }

    /// The job ended: the bar goes.
    pub(super) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Prints the report: JSON, or the verification table.
pub fn print_report(report: &Report, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
        return;
    }
    print!("{}", render_table(report));
}

/// The human-readable report: outcome line, verification table, error, webhook.
pub fn render_table(report: &Report) -> String {
    let job = &report.job;
    let p = &report.progress;
    let mut out = String::new();
    let phase = match job.phase {
        Some(phase) if !job.status.is_terminal() => format!(" ({phase})"),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "job {} {}{phase} — {} of {} entities copied in {:.1}s ({:.0}/s), {} of {} tasks done",
        job.id,
        job.status.as_str(),
        p.copied,
        p.total,
        report.duration_seconds.unwrap_or(0.0),
        p.rate,
        p.tasks_done,
        p.tasks
    );
    render_collections(&mut out, job);
    if let Some(e) = &job.error {
        let _ = writeln!(out, "error: {}", e.message);
    }
    if let Some(line) = webhook_line(job) {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// The verification table, a row per collection with its content check under it.
fn render_collections(out: &mut String, job: &Job) {
    if job.collections.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "{:<32} {:<32} {:>12} {:>12}  MATCH",
        "SOURCE", "TARGET", "SOURCE_COUNT", "TARGET_COUNT"
    );
    let count = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
    for c in &job.collections {
        let verdict = match c.matches {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        let _ = writeln!(
            out,
            "{:<32} {:<32} {:>12} {:>12}  {verdict}",
            format!("{}.{}", c.database, c.source),
            format!("{}.{}", c.target_database, c.target),
            count(c.source_count),
            count(c.target_count),
        );
        if let Some(check) = &c.content {
            let keys = if check.keys.is_empty() {
                String::new()
            } else {
                format!(" (keys {})", check.keys.join(", "))
            };
            let _ = writeln!(
                out,
                "  {} comparison{}: {} entities compared field by field, {} differ{keys}",
                check.mode.as_str(),
                if check.done { "" } else { " (in progress)" },
                check.compared,
                check.differing,
            );
        }
    }
}

/// The outcome webhook's state, with its last attempt.
fn webhook_line(job: &Job) -> Option<String> {
    let d = job.webhook.as_ref()?;
    let last = d.attempts.last();
    let detail = match (d.state, last) {
        (DeliveryState::Delivered, Some(a)) => {
            format!("delivered (status {})", a.status.unwrap_or_default())
        }
        (DeliveryState::Pending, Some(a)) => format!(
            "pending: attempt {} failed ({}), next at {}",
            d.attempts.len(),
            a.error.clone().unwrap_or_default(),
            d.next_attempt_at
                .map(|t| t.to_rfc3339())
                .unwrap_or_default()
        ),
        (DeliveryState::Pending, None) => "pending".into(),
        (state, a) => format!(
            "{} ({})",
            state.as_str().to_uppercase(),
            a.and_then(|a| a.error.clone()).unwrap_or_default()
        ),
    };
    Some(format!(
        "webhook {} {}: {detail}, {} attempt(s)",
        d.event,
        d.id,
        d.attempts.len()
    ))
}
