//! The console's `/metrics`: the process's own counters (`Metrics::render`)
//! and the business gauges, so that teams alerting with their own
//! Prometheus and Alertmanager can: instances by process and status, open
//! breaches by process and SLA, stage-to-stage duration quantiles, and how
//! long ago each system was last seen. The gauges are read through the same
//! functions as the API (over the last 24 hours; systems over 15 minutes),
//! so they are the console's figures; and each SLO's objective, SLI, error
//! budget left and burn rates (`read::slos`, only for processes with SLOs).

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use domain::now_ns;

use crate::read::processes::Health;
use crate::read::slos::Slos;
use crate::read::systems::Systems;
use crate::read::{processes, slos, systems, time_range};
use crate::state::AppState;

/// The range of the process gauges.
const PROCESS_RANGE_NS: u64 = 24 * 3600 * 1_000_000_000;
/// The range of the system activity the last-seen gauge reads.
const SYSTEM_RANGE: &str = "now-15m";

/// A label value escaped for the text format.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The business gauges, appended to `out`. `with_breaches`: the open breach
/// family is not already there (from a correlator in this process).
pub fn render_business(out: &mut String, health: &Health, systems: &Systems, with_breaches: bool) {
    let _ = writeln!(
        out,
        "# HELP throughline_instances Process instances started in the last 24 hours, by status.\n\
         # TYPE throughline_instances gauge"
    );
    for p in &health.processes {
        let i = &p.instances;
        for (status, n) in [
            ("in_flight", i.in_flight),
            ("stalled", i.stalled),
            ("completed", i.completed),
            ("failed", i.failed),
        ] {
            let _ = writeln!(
                out,
                "throughline_instances{{process=\"{}\",status=\"{status}\"}} {n}",
                esc(&p.id)
            );
        }
    }
    if with_breaches {
        let _ = writeln!(
            out,
            "# HELP throughline_breaches_open Open SLA breaches by process and SLA.\n\
             # TYPE throughline_breaches_open gauge"
        );
        for p in &health.processes {
            for s in &p.slas {
                let _ = writeln!(
                    out,
                    "throughline_breaches_open{{process=\"{}\",sla=\"{}\"}} {}",
                    esc(&p.id),
                    esc(&s.id),
                    s.open_breaches
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP throughline_stage_duration_seconds Time from one stage to the next, over instances started in the last 24 hours.\n\
         # TYPE throughline_stage_duration_seconds summary"
    );
    for p in &health.processes {
        for d in &p.stage_durations {
            let labels = format!(
                "process=\"{}\",from=\"{}\",to=\"{}\"",
                esc(&p.id),
                esc(&d.from),
                esc(&d.to)
            );
            for (q, v) in [
                ("0.5", d.duration.p50_ns),
                ("0.95", d.duration.p95_ns),
                ("0.99", d.duration.p99_ns),
            ] {
                if let Some(ns) = v {
                    let _ = writeln!(
                        out,
                        "throughline_stage_duration_seconds{{{labels},quantile=\"{q}\"}} {}",
                        ns as f64 / 1e9
                    );
                }
            }
            let _ = writeln!(
                out,
                "throughline_stage_duration_seconds_count{{{labels}}} {}",
                d.duration.count
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP throughline_system_last_seen_seconds Seconds since the system's last span or event.\n\
         # TYPE throughline_system_last_seen_seconds gauge"
    );
    for s in &systems.systems {
        if let Some(ago) = s.last_seen_seconds_ago {
            let _ = writeln!(
                out,
                "throughline_system_last_seen_seconds{{system=\"{}\"}} {ago}",
                esc(&s.system)
            );
        }
    }
}

/// The `throughline_slo_*` gauges of `all`, appended to `out`.
pub fn render_slos(out: &mut String, all: &[Slos]) {
    let families = [
        ("objective_ratio", "The SLO's objective, as a ratio."),
        (
            "window_seconds",
            "The window the SLO is judged over; a burn-rate alert's rate is its share of the budget times this over its long window.",
        ),
        (
            "sli_ratio",
            "Good of judged instances over the SLO's window (absent before any was judged).",
        ),
        (
            "error_budget_remaining_ratio",
            "The error budget left: 1 untouched, 0 spent, below 0 overspent.",
        ),
    ];
    for (name, help) in families {
        let _ = writeln!(
            out,
            "# HELP throughline_slo_{name} {help}\n# TYPE throughline_slo_{name} gauge"
        );
        for p in all {
            for s in &p.slos {
                let value = match name {
                    "objective_ratio" => Some(s.objective / 100.0),
                    "window_seconds" => Some(s.window_seconds as f64),
                    "sli_ratio" => s.sli_percent.map(|v| v / 100.0),
                    _ => Some(s.budget_remaining),
                };
                if let Some(v) = value {
                    let _ = writeln!(
                        out,
                        "throughline_slo_{name}{{process=\"{}\",slo=\"{}\"}} {v}",
                        esc(&p.process),
                        esc(&s.id)
                    );
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP throughline_slo_burn_rate How fast the SLO's error budget burns over a window (1 spends it exactly over the SLO's window).\n\
         # TYPE throughline_slo_burn_rate gauge"
    );
    for p in all {
        for s in &p.slos {
            for b in &s.burn_rates {
                let _ = writeln!(
                    out,
                    "throughline_slo_burn_rate{{process=\"{}\",slo=\"{}\",window=\"{}\"}} {}",
                    esc(&p.process),
                    esc(&s.id),
                    b.window,
                    b.burn_rate
                );
            }
        }
    }
}

pub async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = state.metrics.render();
    let now = now_ns();
    let answers = tokio::try_join!(
        processes::health(&state, now - PROCESS_RANGE_NS, now, None, false),
        async {
            let w = time_range::window(Some(SYSTEM_RANGE), Some("now"), now)?;
            systems::systems(&state, &w).await
        },
    );
    match answers {
        Ok((health, systems)) => {
            if let Some(correlator) = &state.correlator {
                correlator.render_open_breaches(&mut out, esc);
            }
            render_business(&mut out, &health, &systems, state.correlator.is_none());
            let with_slos = state.processes.list.iter().filter(|p| !p.slos.is_empty());
            let reads = with_slos.map(|p| slos::slos(&state, &p.id, now, false));
            match futures_util::future::try_join_all(reads).await {
                Ok(all) if !all.is_empty() => render_slos(&mut out, &all),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "SLO gauges not available"),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "business gauges not available");
            let _ = writeln!(
                out,
                "# business gauges unavailable: ClickHouse did not answer"
            );
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}
