//! Following a running job to its end: progress while it runs, the report after, and what a
//! stop signal (Ctrl-C, SIGTERM) does to it.

use super::exit::{exit_code, Failure, EXIT_INTERRUPTED};
use super::print_report;
use super::render::Follower;
use crate::domain::Level;
use crate::engine::{Engine, EngineError};
use crate::entrypoints::local::LocalRunner;

/// Says which of a job's tasks (or steps) another worker still holds: a worker that was killed
/// (SIGKILL, a crash) could not give its leases back, so this run waits until they expire.
pub(super) async fn say_held_leases(
    engine: &Engine,
    job: &crate::domain::Job,
) -> Result<(), Failure> {
    let now = chrono::Utc::now();
    let tasks = engine
        .store()
        .list_tasks(&job.id)
        .await
        .map_err(EngineError::from)?;
    let held = tasks
        .iter()
        .filter(|t| t.status == crate::domain::TaskStatus::Pending)
        .filter_map(|t| t.lease.as_ref())
        .chain(job.step_lease.as_ref())
        .filter(|l| l.expires_at > now)
        .map(|l| l.expires_at)
        .collect::<Vec<_>>();
    if let Some(last) = held.iter().max() {
        let wait = (*last - now).num_seconds().max(1);
        eprintln!(
            "{} task(s) of job {} are still held by an earlier worker; if it is gone (killed), this run takes them over when their leases expire, within {wait}s (by {})",
            held.len(),
            job.id,
            last.format("%H:%M:%S UTC")
        );
    }
    Ok(())
}

/// Completes on the first Ctrl-C or SIGTERM (as systemd, `docker stop` or `kill` send it);
/// names the one that came.
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return "Ctrl-C";
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "Ctrl-C",
            _ = term.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// Drives a job to its end, showing progress; Ctrl-C or SIGTERM leaves it resumable.
pub(super) async fn follow(
    engine: &Engine,
    runner: &LocalRunner,
    job_id: &str,
    json: bool,
) -> Result<i32, Failure> {
    eprintln!("job {job_id}");
    let mut follower = Follower::new(json);
    let mut signal = None;
    let interrupt = async {
        let which = stop_signal().await;
        signal = Some(which);
        eprintln!("interrupted ({which}): the workers stop at their next page and release their tasks ({which} again to quit at once)…");
        tokio::spawn(async {
            stop_signal().await;
            std::process::exit(EXIT_INTERRUPTED);
        });
    };
    let (report, interrupted) = runner
        .drive_until(job_id, |r| follower.update(r), interrupt)
        .await?;
    if interrupted {
        follower.abandon();
        let which = signal.unwrap_or("a signal");
        engine
            .log(
                job_id,
                Level::Warn,
                None,
                format!("the run was interrupted ({which}); the job keeps its checkpoints: `vecmigrate resume {job_id}` continues it"),
            )
            .await;
        eprintln!("interrupted; the job keeps its checkpoints: vecmigrate resume {job_id}");
        return Ok(EXIT_INTERRUPTED);
    }
    follower.finish();
    print_report(&report, json);
    Ok(exit_code(report.job.status))
}
