//! The jobs page's HTML: the list of jobs, one job, an error; every value escaped by [`esc`],
//! every page from records made public (no token, key or webhook secret is in them).

use std::fmt::Write;

use chrono::{DateTime, Utc};

use crate::domain::{DeliveryState, Job, JobStatus, Level, Progress, Report, Task, TaskStatus};

/// The stylesheet, served at `/style.css`.
pub(super) const STYLE: &str = include_str!("style.css");

/// How often the page of a job that has not ended reloads itself, in seconds.
const REFRESH_SECONDS: u32 = 2;

/// What the list shows.
pub(super) struct ListView<'a> {
    /// The jobs of this page, newest first, with their progress.
    pub reports: &'a [Report],
    /// The status filter, if any.
    pub status: Option<JobStatus>,
    /// The token of the next (older) page.
    pub next: Option<&'a str>,
    /// True when this is not the first page.
    pub later_page: bool,
}

/// The list of jobs.
pub(super) fn list(view: &ListView) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        r#"<h1>Jobs</h1>
<form class="filter" method="get" action="/">
<label for="status">Status</label>
<select id="status" name="status">"#
    );
    let chosen = view.status.map(JobStatus::as_str).unwrap_or_default();
    let _ = write!(
        b,
        r#"<option value=""{}>all</option>"#,
        if chosen.is_empty() { " selected" } else { "" }
    );
    for s in JobStatus::ALL {
        let _ = write!(
            b,
            r#"<option value="{0}"{1}>{0}</option>"#,
            s.as_str(),
            if s.as_str() == chosen {
                " selected"
            } else {
                ""
            }
        );
    }
    b.push_str("</select> <button type=\"submit\">Show</button></form>\n");
    if view.reports.is_empty() {
        b.push_str("<p class=\"empty\">No jobs");
        if let Some(s) = view.status {
            let _ = write!(b, " with status {}", s.as_str());
        }
        b.push_str(".</p>\n");
    } else {
        b.push_str(
            "<table class=\"jobs\"><thead><tr><th>Job</th><th>Source → target</th><th>Status</th>\
             <th>Progress</th><th>Rate · ETA</th><th>Started · finished</th><th>Webhook</th></tr></thead><tbody>\n",
        );
        for r in view.reports {
            let job = &r.job;
            let _ = writeln!(
                b,
                r#"<tr class="job" id="{id}"><td data-label="Job"><a href="/jobs/{id}">{id}</a></td><td data-label="Source → target">{route}</td><td data-label="Status">{status}</td><td data-label="Progress">{progress}</td><td data-label="Rate · ETA">{rate}</td><td data-label="Started · finished">{started}<br>{finished}</td><td data-label="Webhook">{webhook}</td></tr>"#,
                id = esc(&job.id),
                route = route(job),
                status = status_badge(job),
                progress = progress_bar(&r.progress),
                rate = rate_eta(&r.progress, job),
                started = when(job.started_at),
                finished = when(job.finished_at),
                webhook = esc(&webhook_state(job)),
            );
        }
        b.push_str("</tbody></table>\n");
    }
    b.push_str("<nav class=\"pages\">");
    if view.later_page {
        let _ = write!(
            b,
            r#"<a href="/{}">Newest</a> "#,
            status_query(view.status, None)
        );
    }
    if let Some(next) = view.next {
        let _ = write!(
            b,
            r#"<a rel="next" href="/{}">Older jobs →</a>"#,
            status_query(view.status, Some(next))
        );
    }
    b.push_str("</nav>\n");
    let running = view.reports.iter().any(|r| !r.job.status.is_terminal());
    layout("Jobs", running.then_some(REFRESH_SECONDS * 2), &b)
}

/// One job: its progress, verification per collection, tasks, error log and webhook.
pub(super) fn job(report: &Report, tasks: &[Task], store_flags: &str) -> String {
    let job = &report.job;
    let p = &report.progress;
    let mut b = String::new();
    let _ = writeln!(
        b,
        r#"<p class="crumbs"><a href="/">All jobs</a></p>
<h1><span id="job-id">{id}</span> {status}</h1>
<p class="route">{route}</p>"#,
        id = esc(&job.id),
        status = status_badge(job),
        route = route(job),
    );
    // Where it stands, and what can be done about it.
    let _ = writeln!(
        b,
        r#"<section class="progress"><h2>Progress</h2>{bar}
<dl class="facts"><dt>Rate · ETA</dt><dd id="rate">{rate}</dd><dt>Tasks</dt><dd id="tasks-done">{done} of {tasks} done</dd>{import}
<dt>Created</dt><dd>{created}</dd><dt>Started</dt><dd>{started}</dd><dt>Finished</dt><dd>{finished}</dd>
<dt>Duration</dt><dd>{duration}</dd></dl>"#,
        bar = progress_bar(p),
        rate = rate_eta(p, job),
        done = p.tasks_done,
        tasks = p.tasks,
        import = p.import.map_or_else(String::new, |i| format!(
            r#"<dt>Import</dt><dd id="import">{}</dd>"#,
            esc(&i.summary())
        )),
        created = when(Some(job.created_at)),
        started = when(job.started_at),
        finished = when(job.finished_at),
        duration = report
            .duration_seconds
            .map(|s| seconds(s.round() as u64))
            .unwrap_or_else(|| "–".into()),
    );
    if let Some(o) = &job.outage {
        let _ = writeln!(
            b,
            r#"<p class="warn">Waiting out an outage of the {} cluster since {} ({} calls retried): {}</p>"#,
            o.role,
            when(Some(o.since)),
            o.retried,
            esc(&o.last_error)
        );
    }
    if let Some(p) = &job.provision {
        let _ = writeln!(b, r#"<p id="provision">{}</p>"#, esc(&p.summary()));
        if !p.password_note.is_empty() {
            let _ = writeln!(b, "<p>Password: {}</p>", esc(&p.password_note));
        }
    }
    if let Some(w) = &job.write_rate {
        let _ = writeln!(
            b,
            "<p>Target write rate: {:.2} MB/s, learnt from {} throttled writes.</p>",
            w.bytes_per_s / 1e6,
            w.throttles
        );
    }
    if let Some(e) = &job.error {
        let _ = write!(
            b,
            r#"<div class="error" id="error"><p>{}</p>"#,
            esc(&e.message)
        );
        if !e.problems.is_empty() {
            b.push_str("<ul>");
            for problem in &e.problems {
                let _ = write!(b, "<li>{}</li>", esc(&problem.to_string()));
            }
            b.push_str("</ul>");
        }
        b.push_str("</div>\n");
    }
    if !job.status.is_terminal() {
        let id = esc(&job.id);
        if job.cancel_requested {
            b.push_str(
                "<p class=\"warn\" id=\"cancel-requested\">Cancel requested: the workers stop at their next page.</p>\n",
            );
        } else {
            let _ = writeln!(
                b,
                r#"<form class="cancel" method="post" action="/jobs/{id}/cancel"><button type="submit" id="cancel">Cancel</button> stops the workers at their next page; what was copied stays.</form>"#
            );
        }
        let flags = if store_flags.is_empty() {
            String::new()
        } else {
            format!("{} ", esc(store_flags))
        };
        let _ = writeln!(
            b,
            r#"<p class="resume">If no worker runs it any more (the terminal that ran it closed), continue it from its checkpoints with <code id="resume">vecmigrate {flags}resume {id}</code>, passing <code>--source-token</code>, <code>--target-token</code> and <code>--webhook-secret</code> again if it was started with them: they are never stored.</p>"#
        );
    }
    b.push_str("</section>\n");
    collections(&mut b, job);
    task_table(&mut b, tasks, job);
    log_table(&mut b, &report.log);
    webhook(&mut b, job);
    let running = !job.status.is_terminal() || job.webhook_due().is_some();
    layout(&job.id, running.then_some(REFRESH_SECONDS), &b)
}

/// An error page.
pub(super) fn error(status: u16, message: &str) -> String {
    let body = format!(
        r#"<h1>{status}</h1><p class="error" id="message">{}</p><p><a href="/">All jobs</a></p>"#,
        esc(message)
    );
    layout("Error", None, &body)
}

/// The verification table: a row per collection.
fn collections(b: &mut String, job: &Job) {
    b.push_str("<section><h2>Collections</h2>");
    if job.collections.is_empty() {
        b.push_str("<p class=\"empty\">Not planned yet.</p></section>\n");
        return;
    }
    b.push_str(
        "<table class=\"collections\"><thead><tr><th>Source</th><th>Target</th><th>Source count</th>\
         <th>Target count</th><th>Match</th><th>Content check</th><th>Remigrations</th><th>Repaired ranges</th></tr></thead><tbody>\n",
    );
    for c in &job.collections {
        let verdict = match c.matches {
            Some(true) => r#"<span class="ok">yes</span>"#,
            Some(false) => r#"<span class="bad">NO</span>"#,
            None => "–",
        };
        let content = match &c.content {
            None => "–".to_owned(),
            Some(check) => {
                let keys = if check.keys.is_empty() {
                    String::new()
                } else {
                    format!(" (keys {})", esc(&check.keys.join(", ")))
                };
                format!(
                    "{}{}: {} compared, {} differ{keys}",
                    check.mode.as_str(),
                    if check.done { "" } else { " (in progress)" },
                    count(check.compared),
                    count(check.differing),
                )
            }
        };
        let mut remigrations = c.remigrations.to_string();
        for m in &c.mismatches {
            let _ = write!(
                remigrations,
                "<br><small>{} then: {} of {}</small>",
                when(Some(m.checked_at)),
                count(m.target_count),
                count(m.source_count)
            );
        }
        let mut repaired = c.repaired_ranges.to_string();
        for r in &c.repairs {
            let _ = write!(repaired, "<br><small>{}</small>", esc(&r.summary()));
        }
        let _ = writeln!(
            b,
            r#"<tr><td data-label="Source">{}.{}</td><td data-label="Target">{}.{}</td><td data-label="Source count" class="n">{}</td><td data-label="Target count" class="n">{}</td><td data-label="Match">{verdict}</td><td data-label="Content check">{content}</td><td data-label="Remigrations">{remigrations}</td><td data-label="Repaired ranges">{repaired}</td></tr>"#,
            esc(&c.database),
            esc(&c.source),
            esc(&c.target_database),
            esc(&c.target),
            opt_count(c.source_count),
            opt_count(c.target_count),
        );
    }
    b.push_str("</tbody></table></section>\n");
}

/// The tasks of the job's current migration of each collection, with their progress.
fn task_table(b: &mut String, tasks: &[Task], job: &Job) {
    let current: Vec<&Task> = tasks
        .iter()
        .filter(|t| job.collections.iter().any(|c| c.holds(t)))
        .collect();
    let _ = write!(b, "<section><h2>Tasks ({})</h2>", current.len());
    if current.is_empty() {
        b.push_str("<p class=\"empty\">None yet.</p></section>\n");
        return;
    }
    b.push_str(
        "<table class=\"tasks\"><thead><tr><th>Task</th><th>Status</th><th>Entities</th><th>Pages</th>\
         <th>Runs</th></tr></thead><tbody>\n",
    );
    let now = Utc::now();
    for t in current {
        let status = match t.status {
            TaskStatus::Done => "done",
            TaskStatus::Pending if t.leased(now) => "copying",
            TaskStatus::Pending => "waiting",
        };
        let _ = writeln!(
            b,
            r#"<tr><td data-label="Task">{}</td><td data-label="Status">{status}</td><td data-label="Entities" class="n">{}</td><td data-label="Pages" class="n">{}</td><td data-label="Runs" class="n">{}</td></tr>"#,
            esc(&t.id),
            count(t.copied),
            count(t.batches),
            t.runs
        );
    }
    b.push_str("</tbody></table></section>\n");
}

/// The job's error log, oldest first.
fn log_table(b: &mut String, log: &[crate::domain::LogEntry]) {
    b.push_str("<section><h2>Log</h2>");
    if log.is_empty() {
        b.push_str("<p class=\"empty\">Nothing logged yet.</p></section>\n");
        return;
    }
    b.push_str(
        "<table class=\"log\"><thead><tr><th>Time</th><th>Level</th><th>Collection</th><th>Message</th></tr></thead><tbody>\n",
    );
    for e in log {
        let level = match e.level {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        let _ = writeln!(
            b,
            r#"<tr class="{level}"><td data-label="Time">{}</td><td data-label="Level">{level}</td><td data-label="Collection">{}</td><td data-label="Message">{}</td></tr>"#,
            when(Some(e.time)),
            esc(e.collection.as_deref().unwrap_or("–")),
            esc(&e.message)
        );
    }
    b.push_str("</tbody></table></section>\n");
}

/// The outcome webhook and its attempts.
fn webhook(b: &mut String, job: &Job) {
    let _ = write!(
        b,
        r#"<section><h2>Webhook</h2><p id="webhook">{}</p>"#,
        esc(&webhook_state(job))
    );
    if let Some(d) = job.webhook.as_ref().filter(|d| !d.attempts.is_empty()) {
        b.push_str(
            "<table class=\"attempts\"><thead><tr><th>Attempt</th><th>Time</th><th>Answer</th><th>Latency</th><th>Error</th></tr></thead><tbody>\n",
        );
        for (n, a) in d.attempts.iter().enumerate() {
            let _ = writeln!(
                b,
                r#"<tr><td data-label="Attempt" class="n">{}</td><td data-label="Time">{}</td><td data-label="Answer">{}</td><td data-label="Latency" class="n">{} ms</td><td data-label="Error">{}</td></tr>"#,
                n + 1,
                when(Some(a.time)),
                a.status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "no answer".into()),
                a.latency_ms,
                esc(a.error.as_deref().unwrap_or("–"))
            );
        }
        b.push_str("</tbody></table>");
    }
    b.push_str("</section>\n");
}

/// The page around `body`; `refresh` reloads it every so many seconds (no script needed).
fn layout(title: &str, refresh: Option<u32>, body: &str) -> String {
    let refresh = refresh
        .map(|s| format!(r#"<meta http-equiv="refresh" content="{s}">"#))
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">{refresh}
<title>{} · vecmigrate</title><link rel="stylesheet" href="/style.css"></head>
<body><header><a href="/">vecmigrate</a> <span>jobs</span></header><main>
{body}</main></body></html>
"#,
        esc(title)
    )
}

/// The status as a badge, with the phase (or the cancel asked for) while the job runs.
fn status_badge(job: &Job) -> String {
    let status = job.status.as_str();
    let detail = if job.status.is_terminal() {
        String::new()
    } else if job.cancel_requested {
        " · cancelling".into()
    } else {
        job.phase.map(|p| format!(" · {p}")).unwrap_or_default()
    };
    format!(
        r#"<span class="status {}" data-status="{status}">{status}{detail}</span>"#,
        status.to_ascii_lowercase()
    )
}

/// `source → target`, each its cluster id or address, and what the request copies.
fn route(job: &Job) -> String {
    let what: Vec<String> = job
        .request
        .databases
        .iter()
        .map(|d| match d.collections.len() {
            0 => format!("{} (all)", d.name),
            1 => format!("{}.{}", d.name, d.collections[0].name),
            n => format!("{} ({n} collections)", d.name),
        })
        .collect();
    format!(
        "{} → {}<br><small>{}</small>",
        esc(&job.request.source.name()),
        esc(&job.request.target.name()),
        esc(&what.join(", "))
    )
}

/// A progress bar with `copied of total`.
fn progress_bar(p: &Progress) -> String {
    format!(
        r#"<div class="bar"><progress max="{total}" value="{copied}">{percent:.0}%</progress><span class="copied">{c} of {t} entities</span> <span class="percent">({percent:.1}%)</span></div>"#,
        total = p.total.max(1),
        copied = p.copied.min(p.total.max(1)),
        c = count(p.copied),
        t = count(p.total),
        percent = p.percent,
    )
}

/// Entities per second and the time left (while the job runs).
fn rate_eta(p: &Progress, job: &Job) -> String {
    let rate = format!("{}/s", count(p.rate.round() as u64));
    match p.eta_seconds {
        Some(s) if !job.status.is_terminal() => format!("{rate} · {} left", seconds(s)),
        _ => rate,
    }
}

/// The outcome webhook's state in a few words.
fn webhook_state(job: &Job) -> String {
    let Some(d) = &job.webhook else {
        return if job.request.webhook.is_some() {
            "sent when the job ends".into()
        } else {
            "none".into()
        };
    };
    let attempts = match d.attempts.len() {
        0 => String::new(),
        1 => ", 1 attempt".into(),
        n => format!(", {n} attempts"),
    };
    let state = match d.state {
        DeliveryState::Pending => match d.next_attempt_at {
            Some(at) if !d.attempts.is_empty() => format!("pending (next at {})", when(Some(at))),
            _ => "pending".into(),
        },
        s => s.as_str().into(),
    };
    format!("{} {state}{attempts}", d.event)
}

/// A time as the pages show it (UTC), or a dash.
fn when(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "–".into())
}

/// A duration in words, to the second.
fn seconds(s: u64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(s)).to_string()
}

/// A count with thousands separators: 1,234,567.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn opt_count(n: Option<u64>) -> String {
    n.map(count).unwrap_or_else(|| "–".into())
}

/// The list's query for a status filter and a page token.
fn status_query(status: Option<JobStatus>, next: Option<&str>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    if let Some(s) = status {
        q.append_pair("status", s.as_str());
    }
    if let Some(n) = next {
        q.append_pair("next", n);
    }
    let q = q.finish();
    if q.is_empty() {
        q
    } else {
        format!("?{}", esc(&q))
    }
}

/// Text made safe inside HTML elements and quoted attributes.
pub(super) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_counts_are_grouped() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn a_new_cluster_shows_its_status_and_never_its_password() {
        let request = crate::domain::MigrationRequest::from_json(
            r#"{"source": {"uri": "http://s:19530"},
                "target": {"api_key": "k", "new_cluster": {"name": "n<1>", "project_id": "p",
                    "region_id": "r", "plan": "Standard", "cu_type": "Performance-optimized",
                    "cu_size": 2}},
                "databases": [{"name": "default"}]}"#,
        )
        .unwrap();
        let mut job = Job::new(Job::new_id(), request, Utc::now());
        job.provision = Some(crate::domain::Provisioning {
            create_calls: 1,
            cluster_id: Some("in01-abc".into()),
            status: "CREATING".into(),
            sealed_password: Some("v1.SEALED".into()),
            password_note: crate::domain::new_cluster::PASSWORD_NOTE.into(),
            ..Default::default()
        });
        let report = Report::new(job, &[], Vec::new(), Utc::now());
        let page = super::job(&report, &[], "");
        assert!(
            page.contains(
                r#"<p id="provision">new target cluster in01-abc: CREATING (1 create call(s))</p>"#
            ),
            "{page}"
        );
        assert!(page.contains("Reset it in the Zilliz Cloud console"));
        // The report (what the page, the status and the webhook are built from) drops the
        // sealed password.
        let shown = serde_json::to_string(&report).unwrap();
        assert!(
            !shown.contains("v1.SEALED") && !page.contains("v1.SEALED"),
            "{shown}"
        );
    }

    #[test]
    fn the_list_query_keeps_the_filter_and_escapes_the_token() {
        assert_eq!(status_query(None, None), "");
        assert_eq!(
            status_query(Some(JobStatus::Failed), Some("a&b")),
            "?status=FAILED&amp;next=a%26b"
        );
    }
}
