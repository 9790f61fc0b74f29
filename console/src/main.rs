use std::process::ExitCode;

use clap::Parser;
use console::cli::{Cli, Command};
use console::config::Settings;
use console::run;

fn not_built(what: &str) -> ExitCode {
    eprintln!("throughline {what}: not built yet; it comes with its own issue. Nothing was done.");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let overrides = match &cli.command {
        Command::Up { overrides }
        | Command::Collector { overrides }
        | Command::Console { overrides }
        | Command::Migrate { overrides }
        | Command::Correlator { overrides } => overrides.clone(),
        Command::Demo { .. } => return not_built("demo"),
    };
    let settings = match Settings::load(cli.config.as_deref(), &overrides) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Up { .. } => run::up(settings).await,
            Command::Collector { .. } => run::collector(settings).await,
            Command::Console { .. } => run::console(settings).await,
            Command::Migrate { .. } => run::migrate(settings).await,
            Command::Correlator { .. } => run::correlator(settings).await,
            Command::Demo { .. } => unreachable!("handled above"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
