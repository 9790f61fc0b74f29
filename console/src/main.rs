use std::process::ExitCode;

use clap::Parser;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use collector::process::duration;
use console::cli::{Cli, Command, DemoArgs};
use console::config::Settings;
use console::run;
use sample_data::{DemoOptions, Incidents};

/// A mistake in what the user asked for: said, exit code 2.
fn usage_error(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Runtime::new().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        ExitCode::FAILURE
    })
}

/// `throughline demo`: runs the simulator on a plain thread (the SDK's
/// exporters want one) until its duration ends or Ctrl-C.
fn demo(args: &DemoArgs) -> ExitCode {
    let duration = |name: &str, text: &str| {
        duration::parse_ns(text)
            .map(std::time::Duration::from_nanos)
            .ok_or_else(|| {
                format!("--{name} `{text}` is not a duration; write it like 30s, 10m, 24h")
            })
    };
    let options = match (|| -> Result<DemoOptions, String> {
        Ok(DemoOptions {
            target: args.target.clone(),
            grpc: args.otlp_grpc.clone(),
            seed: args.seed,
            rate: if args.rate > 0.0 {
                args.rate
            } else {
                return Err("--rate must be above 0".into());
            },
            backfill: duration("backfill", &args.backfill)?,
            duration: args
                .duration
                .as_deref()
                .map(|d| duration("duration", d))
                .transpose()?,
            incidents: Incidents {
                downtime: !args.no_downtime,
                quality_hold: !args.no_quality_holds,
                erp_migration: !args.no_erp_migration,
                crm_outage: !args.no_crm_outage,
                delivery_faults: !args.no_delivery_faults,
            },
            progress: true,
        })
    })() {
        Ok(o) => o,
        Err(e) => return usage_error(e),
    };
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    runtime.spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        flag.store(true, Ordering::Relaxed);
    });
    let handle = runtime.handle().clone();
    let result = std::thread::spawn(move || sample_data::run(&options, handle, stop))
        .join()
        .unwrap_or_else(|_| panic!("the demo thread panicked"));
    match result {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
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
        | Command::Correlator { overrides, .. } => overrides.clone(),
        Command::Demo(args) => return demo(args),
    };
    let settings = match Settings::load(cli.config.as_deref(), &overrides) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Up { .. } => run::up(settings).await,
            Command::Collector { .. } => run::collector(settings).await,
            Command::Console { .. } => run::console(settings).await,
            Command::Migrate { .. } => run::migrate(settings).await,
            Command::Correlator { alerts, .. } => run::correlator(settings, alerts).await,
            Command::Demo(_) => unreachable!("handled above"),
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
