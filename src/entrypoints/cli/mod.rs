//! The `vecmigrate` command line: `run`, `plan`, `status`, `list`, `resume`, `cancel` and
//! `serve` (the jobs page), on the embedded job store with in-process workers.
//!
//! [`args`] holds the words; [`request`] builds a `run`'s request; [`setup`] opens the store
//! and the engine a command works with; [`jobs`] runs the commands on jobs, [`follow`] follows
//! a running one, [`plan`] is the dry run; [`render`] prints progress, reports and plans;
//! [`exit`] says how a command ends (exit codes 0 to 5). This module only dispatches.

mod args;
mod exit;
mod follow;
mod jobs;
mod plan;
mod render;
mod request;
mod setup;

pub use args::{default_store, Cli, Command, RunArgs, RunSettings};
pub use exit::{
    Failure, EXIT_CANCELLED, EXIT_ERROR, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK,
};
pub use plan::render_plan;
pub use render::{print_report, render_table};
pub use request::request_from_args;

/// Runs the command line; returns the exit code.
pub async fn main_with(cli: Cli) -> i32 {
    let result = match &cli.command {
        Command::Run(args) => jobs::run(&cli, args).await,
        Command::Plan(args) => plan::plan(cli.json, args).await,
        Command::Resume { job, run } => jobs::resume(&cli, job, run).await,
        Command::Status { job } => jobs::status(&cli, job).await,
        Command::Cancel { job } => jobs::cancel(&cli, job).await,
        Command::List { status, limit } => jobs::list(&cli, status.as_deref(), *limit).await,
        Command::Serve { listen } => jobs::serve(&cli, *listen).await,
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            // Messages may quote what the user typed: control characters are written out.
            eprintln!(
                "error: {}",
                crate::domain::request::escape_controls(&f.message)
            );
            f.code
        }
    }
}
