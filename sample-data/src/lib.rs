//! The demo plant: a manufacturer whose connectors speak OpenTelemetry and
//! CloudEvents, for `throughline demo` and `make demo`.
//!
//! `plan` decides, from a seed alone, what happens to every order (times as
//! offsets from the start of the run): a discrete-event simulation of CRM ->
//! ERP -> MES -> ERP -> CRM with the incidents our users fear. `emit` sends
//! what was planned the way real connectors would: spans through the
//! `opentelemetry` SDK and its OTLP exporter, W3C context carried from one
//! system to the next, business facts as CloudEvents in all three HTTP modes.
//! `run` drives the two: history up to now as fast as it goes (backfill),
//! then live, each record sent when its time comes.

pub mod emit;
pub mod plan;
pub mod rng;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use emit::{EmitError, Transport};
pub use plan::{Incidents, Plan, Record, Summary};

/// What `throughline demo` was asked for.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The collector's OTLP/HTTP base URL: events go to `{target}/v1/events`,
    /// spans to `{target}/v1/traces` unless `grpc` is set.
    pub target: String,
    /// Send spans over OTLP/gRPC to this endpoint instead.
    pub grpc: Option<String>,
    pub seed: u64,
    /// Orders per minute.
    pub rate: f64,
    /// History generated fast, ending now.
    pub backfill: Duration,
    /// Live traffic after the backfill; `None` runs until stopped.
    pub duration: Option<Duration>,
    pub incidents: Incidents,
    /// Draw a progress bar on stderr while backfilling.
    pub progress: bool,
    /// A connector token sent with every request (`Authorization: Bearer`),
    /// for a collector with tokens; it must be bound to every system of the
    /// plant (`systems = ["*"]`).
    pub token: Option<String>,
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Runs the demo until its duration is over or `stop` is set. Call it from a
/// plain thread: the SDK's exporters run their own threads and, for gRPC, use
/// `runtime` for their I/O.
pub fn run(
    options: &DemoOptions,
    runtime: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
) -> Result<Summary, EmitError> {
    let start_ns = now_ns().saturating_sub(options.backfill.as_nanos() as u64);
    let live_end_ns = options
        .duration
        .map(|d| now_ns() + d.as_nanos() as u64)
        .unwrap_or(u64::MAX);
    let mut plan = Plan::new(options.seed, options.rate, options.incidents, start_ns);
    let mut emitter = emit::Emitter::new(options, runtime)?;
    let backfill_end = now_ns();
    let mut last_drawn = 0;
    while !stop.load(Ordering::Relaxed) {
        let Some(due) = plan.next_due() else { break };
        if due >= live_end_ns {
            break;
        }
        let now = now_ns();
        if due > now {
            // Live: wait for the record's time, a little at a time so that
            // Ctrl-C is noticed.
            emitter.flush()?;
            std::thread::sleep(Duration::from_nanos(due - now).min(Duration::from_millis(200)));
            continue;
        }
        for record in plan.step() {
            emitter.send(&record)?;
        }
        if options.progress && due < backfill_end {
            let done = ((due - start_ns) * 40 / (backfill_end - start_ns).max(1)) as usize;
            if done != last_drawn {
                last_drawn = done;
                eprint!(
                    "\rbackfill [{}{}] {:>3}% {} orders",
                    "#".repeat(done),
                    ".".repeat(40 - done),
                    done * 100 / 40,
                    plan.summary().orders
                );
            }
        }
    }
    if options.progress && last_drawn > 0 {
        eprintln!();
    }
    emitter.finish()?;
    Ok(plan.summary().clone())
}
