//! The `vecmigrate` command line.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    vecmigrate::memory::return_freed_pages();
    vecmigrate::tls::install_crypto_provider();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("VECMIGRATE_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a file or a pipe gets plain lines.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = vecmigrate::entrypoints::cli::Cli::parse();
    std::process::exit(vecmigrate::entrypoints::cli::main_with(cli).await);
}
