use std::future::Future;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use console::auth::Role;
use domain::process::duration;
use sample_data::{DemoOptions, Incidents};
use throughline::cli::{ApiKeyCommand, Cli, Command, DemoArgs, TokenCommand, UserCommand};
use throughline::config::{ConfigError, ConfigFile, LogArgs, LogFormat};
use throughline::credentials;
use throughline::run;

/// A mistake in what the user asked for: said, exit code 2.
fn usage_error(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

/// The allocator. glibc malloc took about 40 % of `up`'s CPU while it
/// ingested and correlated a plant's day (`perf`: `_int_malloc`, `_int_free`,
/// `malloc_consolidate`, `unlink_chunk`), and kept freed pages resident
/// unless trimmed every few seconds, which cost the correlator a tenth of its
/// rate. mimalloc serves the many short-lived strings and buffers of a batch
/// from thread-local pages and returns freed pages to the system itself.
///
/// Freed pages go back at once (purge delay 0; mimalloc waits 1 s by
/// default): with the default a plant's day peaked at 512 MiB RSS, with
/// 0 at 429 MiB, at the same rates.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (v3; the sys
/// crate names the options around it, 14 and 16, not this one).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn return_freed_memory_at_once() {
    // SAFETY: sets one allocator option, once, before any other thread
    // exists: first thing in `main` (mi_option_set is not thread safe).
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
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
            token: args.token.clone(),
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

/// Prints what a credential command made, or says what was wrong.
fn credential(made: Result<String, String>) -> ExitCode {
    match made {
        Ok(text) => {
            use std::io::Write;
            // A closed pipe (`| head`) is not worth a panic.
            let _ = writeln!(std::io::stdout(), "{text}");
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(e),
    }
}

/// One line of standard input, without its line end; with a terminal, asks
/// for it on standard error first, without echo.
fn read_password(name: &str) -> Result<String, String> {
    use std::io::{BufRead, IsTerminal, Write};
    let terminal = std::io::stdin().is_terminal();
    if terminal {
        eprint!(
            "Password for {name} (at least {} characters): ",
            credentials::MIN_PASSWORD_CHARS
        );
        let _ = std::io::stderr().flush();
    }
    let echo = terminal.then(throughline::terminal::EchoOff::new);
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    drop(echo);
    if terminal {
        eprintln!();
    }
    read.map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// A serving subcommand: reads the config file, starts logging as it and
/// the flags say, loads what the subcommand
/// uses (a mistake there is a usage error, exit code 2), then runs it.
fn serve<C, F>(
    path: Option<&Path>,
    log: LogArgs,
    load: impl FnOnce(&ConfigFile) -> Result<C, ConfigError>,
    run: impl FnOnce(C) -> F,
) -> ExitCode
where
    F: Future<Output = anyhow::Result<()>>,
{
    let file = match ConfigFile::read(path) {
        Ok(file) => file,
        Err(e) => return usage_error(e),
    };
    match file.merged(log) {
        Ok(log) => start_logging(log.settings()),
        Err(e) => return usage_error(e),
    }
    let config = match load(&file) {
        Ok(config) => config,
        Err(e) => return usage_error(e),
    };
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn role(text: &str) -> Role {
    Role::parse(text).unwrap_or(Role::Viewer)
}

/// Logs to standard error, filtered by `RUST_LOG` (default `info`): text
/// with colours only on a terminal (a file or a pipe gets none), or one
/// JSON object per line.
fn start_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

fn main() -> ExitCode {
    return_freed_memory_at_once();
    collector::tls::install_default_provider();
    let cli = Cli::parse();
    let config = cli.config.as_deref();
    let serving = matches!(
        cli.command,
        Command::Up { .. }
            | Command::Collector { .. }
            | Command::Console { .. }
            | Command::Migrate { .. }
            | Command::Correlator { .. }
    );
    if !serving {
        // The others read no config file: they log as text.
        start_logging(LogFormat::Text);
    }
    // Each serving subcommand loads only what it uses: the components it
    // has flags for.
    match cli.command {
        Command::Up { args } => serve(config, args.log.clone(), |f| args.load(f), run::up),
        Command::Collector { args } => {
            serve(config, args.log.clone(), |f| args.load(f), run::collector)
        }
        Command::Console { args } => {
            serve(config, args.log.clone(), |f| args.load(f), run::console)
        }
        Command::Migrate { args } => {
            serve(config, args.log.clone(), |f| args.load(f), run::migrate)
        }
        Command::Correlator { args } => {
            serve(config, args.log.clone(), |f| args.load(f), run::correlator)
        }
        Command::Demo(args) => demo(&args),
        Command::Token {
            action:
                TokenCommand::Create {
                    systems,
                    name,
                    plant,
                },
        } => credential(
            credentials::token_create(&systems, name.as_deref(), plant.as_deref()).map(|m| m.0),
        ),
        Command::ApiKey {
            action: ApiKeyCommand::Create { name, role: r },
        } => credential(credentials::api_key_create(&name, role(&r)).map(|m| m.0)),
        Command::User {
            action: UserCommand::Add { name, role: r },
        } => credential(
            read_password(&name).and_then(|p| credentials::user_add(&name, role(&r), &p)),
        ),
    }
}
