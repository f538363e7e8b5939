//! The `vecmigrate` command line.

use clap::Parser;
use vecmigrate::logging::{self, LogFormat};

#[tokio::main]
async fn main() {
    vecmigrate::memory::return_freed_pages();
    vecmigrate::tls::install_crypto_provider();
    let cli = vecmigrate::entrypoints::cli::Cli::parse();
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    match cli.log_format {
        // People read the CLI's own output; its log adds warnings (the job's log is printed by
        // `status` and the progress line already).
        LogFormat::Text => logging::init(
            LogFormat::Text,
            logging::filter_from_env("warn,vecmigrate::job=off"),
            terminal,
            true,
            None,
        ),
        LogFormat::Json => logging::init(
            LogFormat::Json,
            logging::filter_from_env("info"),
            false,
            true,
            None,
        ),
    }
    std::process::exit(vecmigrate::entrypoints::cli::main_with(cli).await);
}
