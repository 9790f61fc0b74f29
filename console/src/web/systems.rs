//! `/systems`: per system, what it sent; per service, rate, errors and
//! latency by operation; and the service map.

use askama::Template;
use axum::extract::State;

use super::overview::SystemLine;
use super::{fmt, render, svg, Chrome, ErrorPage, PageResult};
use crate::read::plants::{plants, PlantView};
use crate::read::systems::{operations, service_map, systems};
use crate::state::AppState;

pub struct OperationLine {
    pub name: String,
    pub count: String,
    pub rate: String,
    pub errors: String,
    pub error: bool,
    pub p50: String,
    pub p95: String,
}

pub struct ServiceBlock {
    pub line: SystemLine,
    pub operations: Vec<OperationLine>,
}

#[derive(Template)]
#[template(path = "systems.html")]
pub struct SystemsPage {
    pub chrome: Chrome,
    pub services: Vec<ServiceBlock>,
    pub map: String,
    pub map_computed_at: String,
    pub edges: usize,
    pub silent_after: String,
    /// Each plant's link state (all plants, whatever the filter).
    pub plants: Vec<PlantView>,
    pub link_timeout: String,
}

/// Bytes as KiB, MiB, GiB.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

pub async fn page(State(state): State<AppState>, mut chrome: Chrome) -> PageResult {
    chrome.title = "Systems".into();
    let loaded = tokio::try_join!(
        systems(&state, &chrome.window),
        operations(&state, &chrome.window),
        service_map(&state, &chrome.window),
        plants(&state),
    );
    let (systems, ops, map, plants) = match loaded {
        Ok(x) => x,
        Err(e) => return Err(ErrorPage::new(chrome, e)),
    };
    let services: Vec<ServiceBlock> = systems
        .systems
        .iter()
        .map(|s| ServiceBlock {
            line: SystemLine::from(s),
            operations: ops
                .operations
                .iter()
                .filter(|o| o.service == s.system)
                .map(|o| OperationLine {
                    name: o.operation.clone(),
                    count: fmt::count(o.count),
                    rate: fmt::rate(o.per_minute),
                    errors: fmt::percent(o.error_percent),
                    error: o.errors > 0,
                    p50: fmt::duration(o.p50_ns.parse().unwrap_or(0)),
                    p95: fmt::duration(o.p95_ns.parse().unwrap_or(0)),
                })
                .collect(),
        })
        .collect();
    let mut nodes: Vec<String> = Vec::new();
    for e in &map.edges {
        for n in [&e.parent, &e.child] {
            if !nodes.contains(n) {
                nodes.push(n.clone());
            }
        }
    }
    nodes.sort();
    let edges: Vec<(String, String, u64, u64)> = map
        .edges
        .iter()
        .map(|e| (e.parent.clone(), e.child.clone(), e.calls, e.errors))
        .collect();
    chrome.plants = plants.plants.iter().map(|p| p.plant.clone()).collect();
    Ok(render(&SystemsPage {
        plants: plants.plants,
        link_timeout: plants.link_timeout,
        map: if edges.is_empty() {
            String::new()
        } else {
            svg::service_map(&nodes, &edges)
        },
        map_computed_at: map.computed_at,
        edges: edges.len(),
        services,
        silent_after: systems.silent_after,
        chrome,
    }))
}
