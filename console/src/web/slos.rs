//! `/processes/{id}/slos`: each objective of a process with its SLI, the
//! error budget left and its burn-down, the burn rates and the burn-rate
//! alerts, and a link to what spent the budget (breaches, failed events,
//! or the process page's stage durations for a stage latency). The figures
//! are `GET /api/v1/processes/{id}/slos?burn_down=true`'s.

use askama::Template;
use axum::extract::{Path, State};
use domain::process::duration;

use super::{fmt, render, svg, Chrome, ErrorPage, PageResult};
use crate::links;
use crate::read::slos::{slos, SloView};
use crate::state::AppState;

pub struct SloBlock {
    pub slo: SloView,
    pub sli: String,
    pub budget: String,
    /// Overspent (below 0 %).
    pub overspent: bool,
    pub allowed_bad: String,
    pub chart: String,
    /// What spent its budget: the breaches of its SLA in its window, the
    /// failed events, or the process page (stage durations) over it.
    pub breaches_href: String,
    /// `(window, burn rate)` as shown.
    pub rates: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "slos.html")]
pub struct SlosPage {
    pub chrome: Chrome,
    pub id: String,
    pub name: String,
    pub process_href: String,
    pub slos: Vec<SloBlock>,
}

pub async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    mut chrome: Chrome,
) -> PageResult {
    chrome.title = format!("SLOs of {id}");
    let answer = match slos(&state, &id, domain::now_ns(), true).await {
        Ok(a) => a,
        Err(e) => return Err(ErrorPage::new(chrome, e)),
    };
    let name = state.processes.name_of(&id).to_string();
    let blocks = answer
        .slos
        .into_iter()
        .map(|s| {
            let points: Vec<f64> = s.burn_down.iter().map(|p| p.remaining_percent).collect();
            let (window_ns, lag_ns) = state
                .processes
                .get(&id)
                .and_then(|p| p.slos.iter().find(|x| x.id == s.id))
                .map_or((0, 0), |x| (x.window_ns, x.lag_ns));
            SloBlock {
                sli: fmt::percent(s.sli_percent),
                budget: format!("{:.1}%", s.budget_remaining_percent),
                overspent: s.budget_remaining_percent < 0.0,
                allowed_bad: format!("{:.1}", s.allowed_bad),
                chart: svg::burn_down(
                    &points,
                    &format!("error budget left of {} over {}", s.name, s.window),
                ),
                breaches_href: match (&s.sla, &s.system) {
                    // The process page over the starts the window counts
                    // (shifted back by the SLO's lag): its duration
                    // histogram between the stages shows the slow ones.
                    (None, None) if s.from_stage.is_some() => chrome.href(
                        &links::process(&id),
                        &[
                            // In seconds: `now-` takes one unit.
                            (
                                "from",
                                &format!("now-{}s", (window_ns + lag_ns) / 1_000_000_000),
                            ),
                            ("to", &format!("now-{}s", lag_ns / 1_000_000_000)),
                        ],
                    ),
                    (Some(sla), _) => chrome.href(
                        "/breaches",
                        &[
                            ("process", &id),
                            ("sla", sla),
                            ("from", &format!("now-{}", duration::format_ns(window_ns))),
                            ("to", "now"),
                        ],
                    ),
                    // The failed and dead-lettered events of the window.
                    (None, Some(system)) => {
                        let from = format!("now-{}", duration::format_ns(window_ns));
                        let mut q = vec![
                            ("system", system.as_str()),
                            ("outcome", "failed"),
                            ("from", from.as_str()),
                        ];
                        if let Some(t) = &s.event_type {
                            q.push(("type", t.as_str()));
                        }
                        let query: Vec<String> = q
                            .iter()
                            .map(|(k, v)| format!("{k}={}", links::urlencode(v)))
                            .collect();
                        format!("/api/v1/events?{}", query.join("&"))
                    }
                    (None, None) => String::new(),
                },
                rates: s
                    .burn_rates
                    .iter()
                    .map(|r| (r.window.clone(), format!("{:.2}", r.burn_rate)))
                    .collect(),
                slo: s,
            }
        })
        .collect();
    Ok(render(&SlosPage {
        process_href: chrome.keep_range(&links::process(&id)),
        chrome,
        id,
        name,
        slos: blocks,
    }))
}
