//! What the command line prints: progress while a job runs (bars on a terminal, a line every
//! two seconds otherwise), and the report (JSON, or the verification table).

use std::fmt::Write;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::domain::{DeliveryState, Job, Report};

/// Where a job is, as the progress line shows it: its phase, an outage it is waiting out, or
/// its outcome webhook still being delivered.
fn status_text(job: &Job) -> &'static str {
    if job.outage.is_some() {
        return "outage";
    }
    if job.status.is_terminal() && job.webhook_due().is_some() {
        return "webhook";
    }
    job.phase.map(|p| p.as_str()).unwrap_or("pending")
}

/// Shows a running job's progress; `update` is called with each report.
pub(super) struct Follower {
    bar: ProgressBar,
    terminal: bool,
    last_line: std::time::Instant,
    last_phase: Option<&'static str>,
    last_detail: Option<String>,
    last_detail_at: std::time::Instant,
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
            last_detail: None,
            last_detail_at: std::time::Instant::now(),
        }
    }

    /// Shows one report.
    pub(super) fn update(&mut self, r: &Report) {
        let phase = status_text(&r.job);
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
        // What the job waits for, when it is not the copy: said when it changes.
        let detail = match phase {
            "outage" => outage_line(&r.job),
            "webhook" => webhook_line(&r.job).map(|w| {
                format!(
                    "{w}; Ctrl-C stops waiting (`vecmigrate resume {}` sends it later)",
                    r.job.id
                )
            }),
            _ => None,
        };
        // Said when what the job waits for changes, and every ten seconds while it lasts.
        let key = match phase {
            "outage" => r
                .job
                .outage
                .as_ref()
                .map(|o| format!("{}{}", o.role, o.since)),
            "webhook" => r.job.webhook.as_ref().map(|d| d.attempts.len().to_string()),
            _ => None,
        };
        let stale = self.last_detail_at.elapsed() >= Duration::from_secs(10);
        if let Some(text) = detail.filter(|_| key != self.last_detail || stale) {
            if self.terminal {
                self.bar.println(text);
            } else {
                eprintln!("{text}");
            }
            self.last_detail = key;
            self.last_detail_at = std::time::Instant::now();
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
    if let Some(import) = &p.import {
        let _ = writeln!(out, "{}", import.summary());
    }
    render_collections(&mut out, report);
    if let Some(line) = outage_line(job) {
        let _ = writeln!(out, "{line}");
    }
    if let Some(p) = &job.provision {
        let _ = writeln!(out, "{}", p.summary());
        if !p.password_note.is_empty() {
            let _ = writeln!(out, "password: {}", p.password_note);
        }
    }
    if let Some(w) = &job.write_rate {
        let _ = writeln!(
            out,
            "target write rate: {:.2} MB/s, learnt from {} throttled write(s)",
            w.bytes_per_s / 1e6,
            w.throttles
        );
    }
    if let Some(e) = &job.error {
        let _ = writeln!(out, "error: {}", e.message);
    }
    if let Some(line) = webhook_line(job) {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// The verification table, a row per collection with its content check and, for a collection
/// copied as several key ranges, what each range copied, under it.
fn render_collections(out: &mut String, report: &Report) {
    let job = &report.job;
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
        if c.repaired_ranges > 0 {
            let _ = writeln!(out, "  {} key range(s) copied again:", c.repaired_ranges);
            for r in &c.repairs {
                let _ = writeln!(out, "    {}", r.summary());
            }
        }
        let copied: Vec<String> = report
            .tasks
            .iter()
            .filter(|t| t.database == c.database && t.collection == c.source)
            .map(|t| t.copied.to_string())
            .collect();
        if copied.len() > 1 {
            let _ = writeln!(
                out,
                "  {} tasks (key ranges) copied {} entities",
                copied.len(),
                copied.join(" + ")
            );
        }
    }
}

/// The outage the job is waiting out, if any.
fn outage_line(job: &Job) -> Option<String> {
    let o = job.outage.as_ref()?;
    let for_ = (chrono::Utc::now() - o.since).to_std().unwrap_or_default();
    Some(format!(
        "waiting out an outage of the {} cluster for {} (since {}); {} call(s) retried; last error: {}",
        o.role,
        humantime::format_duration(Duration::from_secs(for_.as_secs())),
        o.since.format("%H:%M:%S UTC"),
        o.retried,
        o.last_error
    ))
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
