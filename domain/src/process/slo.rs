//! Service level objectives on a process: `[[slos]]` in its definition, an
//! objective (a percentage of good ones) over a window, on one of its SLAs
//! ("99 % of orders entered in ERP within 15 min, over 28 days"), on the
//! latency between two of its stages ("99 % of orders go from `entered` to
//! `released` within 15 min, over 28 days") or on the events of a system
//! ("99.5 % of the ERP's `erp.sales_order.created` events not failed or
//! dead-lettered"). The SLI, the error budget and the
//! burn rates are computed here from [`Judged`] counts that the callers
//! read from rollups (a [`ProcessRollup`] of the instances started in a
//! window, or the event rollups), so every figure costs the rollups'
//! minutes and hours, never the instances or events.
//!
//! An instance counts once its SLA is judged: met is good, breached (open
//! or closed) is bad; one still running counts for neither. An event is
//! bad when its outcome is failed or dead-lettered.
//!
//! A stage latency counts each instance that reached both stages (`to` no
//! earlier than `from`): good when the duration is within the threshold.
//! The rollups keep durations as cells of a log bucket (`crate::histogram`,
//! at most 1/8 of its lower bound wide) crossed with a bin of
//! [`HISTOGRAM_BOUNDS_NS`]; a cell is good only when its largest possible
//! duration is within the threshold, so a cell the threshold cuts counts
//! as bad (conservative: the SLI is never overstated). A threshold on a
//! bin bound (1s, 5s, 15s, 30s, 1m, 2m, 5m, 15m, 30m, 1h, 2h, 4h, 8h, 1d,
//! 2d, 4d, 7d) is therefore exact; any other is rounded down to the log
//! bucket boundary below it, so durations up to 12.5 % under it may count
//! as bad. An instance still on its way to `to` counts for neither.

use serde::Deserialize;
use toml::Spanned;

use crate::histogram;
use crate::process::duration;
use crate::process_rollup::{ProcessRollup, HISTOGRAM_BOUNDS_NS};

/// `[[slos]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSlo {
    pub id: Spanned<String>,
    pub name: Option<String>,
    pub sla: Option<Spanned<String>>,
    pub system: Option<Spanned<String>>,
    pub event_type: Option<String>,
    pub from: Option<Spanned<String>>,
    pub to: Option<Spanned<String>>,
    pub within: Option<Spanned<String>>,
    pub objective: Spanned<f64>,
    pub window: Option<Spanned<String>>,
}

/// What an SLO counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SloTarget {
    /// Instances of the process judged against this SLA.
    Sla(String),
    /// Events of a system (of one type, or all), by outcome.
    Events {
        system: String,
        event_type: Option<String>,
    },
    /// Instances by their duration from stage `from` to stage `to` (ids):
    /// good within `within_ns`.
    Latency {
        from: String,
        to: String,
        within_ns: u64,
    },
}

/// One objective of a process.
#[derive(Debug, Clone, PartialEq)]
pub struct SloDef {
    pub id: String,
    pub name: String,
    pub target: SloTarget,
    /// Percent of judged instances that must be good, above 0 and below 100.
    pub objective: f64,
    /// The window the objective is judged over (default 28 days).
    pub window_ns: u64,
    /// How long after its start an instance is surely judged: the SLA's
    /// `within` (met or breached by its deadline), the stage latency's
    /// `within` (good by then, or bad); 0 for events, judged at once.
    /// Every window is read this far back ([`SloDef::starts`]).
    pub lag_ns: u64,
}

/// The window an objective is judged over when its definition gives none.
pub const DEFAULT_WINDOW: &str = "28d";

/// The multi-window, multi-burn-rate alerts of the Google SRE workbook
/// (Sloth's defaults): `(severity, budget percent, long window, short
/// window)`. Each fires when both windows burn faster than the rate that
/// spends `budget percent` of the error budget within the long window;
/// that rate depends on the SLO's window ([`burn_threshold`], see
/// [`SloDef::burn_alerts`]): over 30 days 14.4, 6, 3 and 1, over 28 days
/// 13.44, 5.6, 2.8 and 0.93.
pub const BURN_ALERTS: [(&str, f64, u64, u64); 4] = {
    const M: u64 = 60_000_000_000;
    [
        ("page", 2.0, 60 * M, 5 * M),
        ("page", 5.0, 6 * 60 * M, 30 * M),
        ("ticket", 10.0, 24 * 60 * M, 2 * 60 * M),
        ("ticket", 10.0, 3 * 24 * 60 * M, 6 * 60 * M),
    ]
};

/// The burn rate that spends `budget_percent` of an SLO's error budget
/// (over `window_ns`) within `long_ns`: `budget_percent / 100 * window /
/// long` (2 % in 1h of 30 days: 14.4).
pub fn burn_threshold(budget_percent: f64, window_ns: u64, long_ns: u64) -> f64 {
    // One division of exact products, so round figures stay round.
    budget_percent * window_ns as f64 / (100.0 * long_ns as f64)
}

impl SloDef {
    /// The starts (or event times) a window of `window_ns` judged at
    /// `now_ns` counts: `[now - lag - window, now - lag]`, shifted back by
    /// [`SloDef::lag_ns`] so that every instance in it is judged by now
    /// (the rollups count instances by minute of start; a window ending
    /// now would hold only the early finishers, none of the breaches).
    pub fn starts(&self, window_ns: u64, now_ns: u64) -> (u64, u64) {
        let to = now_ns.saturating_sub(self.lag_ns);
        (to.saturating_sub(window_ns), to)
    }

    /// [`BURN_ALERTS`] for this SLO's window: `(severity, budget percent,
    /// burn rate, long window, short window)`.
    pub fn burn_alerts(&self) -> [(&'static str, f64, f64, u64, u64); 4] {
        BURN_ALERTS.map(|(severity, percent, long, short)| {
            (
                severity,
                percent,
                burn_threshold(percent, self.window_ns, long),
                long,
                short,
            )
        })
    }
}

/// Good and judged instances of an SLO's SLA in a rollup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Judged {
    pub good: u64,
    pub bad: u64,
}

impl Judged {
    /// The instances of `rollup` judged against `slo`'s SLA or stage
    /// latency (see the module doc for how a cut cell rounds); nothing for
    /// an SLO on events.
    pub fn of(slo: &SloDef, rollup: &ProcessRollup) -> Judged {
        match &slo.target {
            SloTarget::Sla(sla) => {
                let c = rollup.slas.get(sla).copied().unwrap_or_default();
                Judged {
                    good: c.met,
                    bad: c.breached,
                }
            }
            SloTarget::Latency {
                from,
                to,
                within_ns,
            } => {
                let mut judged = Judged::default();
                let cells = rollup.durations.get(&(from.clone(), to.clone()));
                for ((bucket, bin), n) in cells.into_iter().flatten() {
                    let bin_upper = HISTOGRAM_BOUNDS_NS
                        .get(usize::from(*bin))
                        .copied()
                        .unwrap_or(u64::MAX);
                    if histogram::upper(*bucket).min(bin_upper) <= *within_ns {
                        judged.good += n;
                    } else {
                        judged.bad += n;
                    }
                }
                judged
            }
            SloTarget::Events { .. } => Judged::default(),
        }
    }

    /// `events` events of which `bad` failed or were dead-lettered.
    pub fn events(events: u64, bad: u64) -> Judged {
        Judged {
            good: events.saturating_sub(bad),
            bad,
        }
    }

    pub fn total(self) -> u64 {
        self.good + self.bad
    }

    /// Good of judged, in percent; `None` before any was judged.
    pub fn sli_percent(self) -> Option<f64> {
        (self.total() > 0).then(|| self.good as f64 * 100.0 / self.total() as f64)
    }

    /// How fast the budget burns: the bad share over the share the
    /// objective allows (1 spends it exactly over the window); 0 before any
    /// was judged.
    pub fn burn_rate(self, objective: f64) -> f64 {
        if self.total() == 0 {
            return 0.0;
        }
        // In whole percents where it can be, so 90 % gives round figures.
        self.bad as f64 * 100.0 / (self.total() as f64 * (100.0 - objective))
    }
}

/// An SLO over its window: the SLI and what is left of the error budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub judged: Judged,
    /// Bad instances the objective allows among those judged.
    pub allowed_bad: f64,
    /// Of the budget, the fraction left: 1 untouched, 0 spent, below 0
    /// overspent.
    pub remaining: f64,
}

impl Budget {
    pub fn of(slo: &SloDef, judged: Judged) -> Budget {
        let allowed_bad = judged.total() as f64 * (100.0 - slo.objective) / 100.0;
        let remaining = if judged.total() == 0 {
            1.0
        } else {
            1.0 - judged.bad as f64 * 100.0 / (judged.total() as f64 * (100.0 - slo.objective))
        };
        Budget {
            judged,
            allowed_bad,
            remaining,
        }
    }
}

/// Parses and checks one `[[slos]]` entry of a process with `slas` (its SLA
/// ids and `within`s) and `stages` (its stage ids); `Err((offset, message))` for the
/// definition's error.
pub(super) fn parse(
    raw: RawSlo,
    slas: &[(&str, u64)],
    stages: &[&str],
) -> Result<SloDef, (usize, String)> {
    let id = raw.id.get_ref().clone();
    if !super::definition::valid_id(&id) {
        return Err((
            raw.id.span().start,
            format!("SLO id `{id}` must be lowercase letters, digits, `-` and `_`"),
        ));
    }
    let latency = raw.from.is_some() || raw.to.is_some() || raw.within.is_some();
    let target = match (raw.sla, raw.system) {
        (None, None) if latency && raw.event_type.is_none() => {
            latency_target(&id, raw.id.span().start, raw.from, raw.to, raw.within, stages)?
        }
        (Some(sla), None) if raw.event_type.is_none() && !latency => {
            if !slas.iter().any(|(s, _)| *s == sla.get_ref().as_str()) {
                return Err((
                    sla.span().start,
                    format!(
                        "SLO `{id}` names SLA `{}`, which is not defined; defined SLAs: {}",
                        sla.get_ref(),
                        if slas.is_empty() { "none".to_string() } else { slas.iter().map(|(s, _)| *s).collect::<Vec<_>>().join(", ") }
                    ),
                ));
            }
            SloTarget::Sla(sla.into_inner())
        }
        (None, Some(system)) if !latency => SloTarget::Events {
            system: system.into_inner(),
            event_type: raw.event_type,
        },
        _ => {
            return Err((
                raw.id.span().start,
                format!("SLO `{id}` needs one target: `sla` (an SLA of the process), `from`, `to` and `within` (a stage latency), or `system` (and optionally `event_type`)"),
            ))
        }
    };
    let objective = *raw.objective.get_ref();
    if !(objective > 0.0 && objective < 100.0) {
        return Err((
            raw.objective.span().start,
            format!("SLO `{id}`: objective is a percentage above 0 and below 100, like 99 or 99.5"),
        ));
    }
    let window_ns = match &raw.window {
        Some(w) => duration::parse_ns(w.get_ref())
            .filter(|ns| *ns > 0)
            .ok_or_else(|| {
                (
                    w.span().start,
                    format!(
                        "SLO `{id}`: window `{}` is not a duration; write it like 7d or 28d",
                        w.get_ref()
                    ),
                )
            })?,
        None => duration::parse_ns(DEFAULT_WINDOW).expect("valid default"),
    };
    let lag_ns = match &target {
        SloTarget::Sla(sla) => slas
            .iter()
            .find(|(s, _)| s == sla)
            .map_or(0, |(_, within)| *within),
        SloTarget::Latency { within_ns, .. } => *within_ns,
        SloTarget::Events { .. } => 0,
    };
    Ok(SloDef {
        name: raw.name.unwrap_or_else(|| id.clone()),
        id,
        target,
        objective,
        window_ns,
        lag_ns,
    })
}

/// The stage latency of SLO `id` (at offset `at`): both stages defined and
/// different, a positive threshold.
fn latency_target(
    id: &str,
    at: usize,
    from: Option<Spanned<String>>,
    to: Option<Spanned<String>>,
    within: Option<Spanned<String>>,
    stages: &[&str],
) -> Result<SloTarget, (usize, String)> {
    let (Some(from), Some(to), Some(within)) = (from, to, within) else {
        return Err((
            at,
            format!("SLO `{id}` on a stage latency needs `from`, `to` and `within`, like from = \"captured\", to = \"sales_order\", within = \"15m\""),
        ));
    };
    for stage in [&from, &to] {
        if !stages.contains(&stage.get_ref().as_str()) {
            return Err((
                stage.span().start,
                format!(
                    "SLO `{id}` names stage `{}`, which is not defined; defined stages: {}",
                    stage.get_ref(),
                    stages.join(", ")
                ),
            ));
        }
    }
    if from.get_ref() == to.get_ref() {
        return Err((
            to.span().start,
            format!(
                "SLO `{id}` goes from stage `{}` to itself; name two different stages",
                to.get_ref()
            ),
        ));
    }
    let within_ns = duration::parse_ns(within.get_ref())
        .filter(|ns| *ns > 0)
        .ok_or_else(|| {
            (
                within.span().start,
                format!(
                    "SLO `{id}`: within `{}` is not a positive duration; write it like 90s, 15m, 4h or 1h30m",
                    within.get_ref()
                ),
            )
        })?;
    Ok(SloTarget::Latency {
        from: from.into_inner(),
        to: to.into_inner(),
        within_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process_rollup::SlaCounts;

    fn slo(objective: f64) -> SloDef {
        SloDef {
            id: "entry".into(),
            name: "entry".into(),
            target: SloTarget::Sla("order-entry".into()),
            objective,
            window_ns: 28 * 86_400_000_000_000,
            lag_ns: 15 * 60_000_000_000,
        }
    }

    /// A window is read back by the lag (an SLA's or a stage latency's
    /// `within`): what started in it is judged by now.
    #[test]
    fn windows_are_shifted_back_by_the_lag() {
        const M: u64 = 60_000_000_000;
        let now = 1_000 * M;
        assert_eq!(slo(99.0).starts(30 * M, now), (955 * M, 985 * M));
        let events = SloDef {
            lag_ns: 0,
            ..slo(99.0)
        };
        assert_eq!(events.starts(30 * M, now), (970 * M, now));
    }

    /// The thresholds spend the same share of the budget whatever the
    /// window: over 30 days exactly the SRE workbook's 14.4, 6, 3 and 1;
    /// over 28 days (the default) 13.44, 5.6, 2.8 and 0.93; over 7 days a
    /// quarter of those.
    #[test]
    fn burn_thresholds_follow_the_window() {
        const DAY: u64 = 86_400_000_000_000;
        let rates = |days: u64| {
            let mut s = slo(99.0);
            s.window_ns = days * DAY;
            s.burn_alerts().map(|(_, _, rate, _, _)| rate)
        };
        assert_eq!(rates(30), [14.4, 6.0, 3.0, 1.0]);
        let close = |got: [f64; 4], want: [f64; 4]| {
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-9, "{got:?} against {want:?}");
            }
        };
        close(rates(28), [13.44, 5.6, 2.8, 28.0 / 30.0]);
        close(rates(7), [3.36, 1.4, 0.7, 7.0 / 30.0]);
        let alerts = slo(99.0).burn_alerts();
        assert_eq!(
            alerts.map(|(severity, percent, _, long, short)| (
                severity,
                percent,
                long / 60_000_000_000,
                short / 60_000_000_000
            )),
            [
                ("page", 2.0, 60, 5),
                ("page", 5.0, 360, 30),
                ("ticket", 10.0, 1440, 120),
                ("ticket", 10.0, 4320, 360),
            ]
        );
        // Spending a long window's share in it: 2 % of a 28 day budget in
        // one hour is 13.44 times the even pace.
        assert!((burn_threshold(2.0, 28 * DAY, DAY / 24) - 13.44).abs() < 1e-9);
    }

    /// By hand: 200 judged, 197 met, 3 breached, objective 99 %. The SLI
    /// is 98.5 %; the budget allows 2 bad of 200, 3 spent it 1.5 times
    /// (-50 % left); the bad share 1.5 % is 1.5x the allowed 1 %.
    #[test]
    fn sli_budget_and_burn_rate_by_hand() {
        let mut rollup = ProcessRollup::default();
        rollup.slas.insert(
            "order-entry".into(),
            SlaCounts {
                met: 197,
                breached: 3,
            },
        );
        let judged = Judged::of(&slo(99.0), &rollup);
        assert_eq!(judged, Judged { good: 197, bad: 3 });
        assert_eq!(judged.sli_percent(), Some(98.5));
        let budget = Budget::of(&slo(99.0), judged);
        assert!((budget.allowed_bad - 2.0).abs() < 1e-9, "{budget:?}");
        assert!((budget.remaining - -0.5).abs() < 1e-9, "{budget:?}");
        assert!((judged.burn_rate(99.0) - 1.5).abs() < 1e-9);
        // One bad of 200 at 99 %: half the budget left, burning at 0.5.
        let half = Judged { good: 199, bad: 1 };
        assert!((Budget::of(&slo(99.0), half).remaining - 0.5).abs() < 1e-9);
        assert!((half.burn_rate(99.0) - 0.5).abs() < 1e-9);
        // Nothing judged: the whole budget, nothing burning.
        let none = Judged::default();
        assert_eq!(none.sli_percent(), None);
        assert_eq!(Budget::of(&slo(99.0), none).remaining, 1.0);
        assert_eq!(none.burn_rate(99.0), 0.0);
    }

    /// By hand: durations 5m, 9m, 9m40s, 14m, 15m, 16m and 40m between
    /// two stages. Within 15m (a bin bound, so exact): 5 good (15m itself
    /// is within), 2 bad. Within 10m (no bin bound): 5m and 9m are good;
    /// 9m40s falls in the log bucket [2^35 x 16, 2^36 x 9) ns, about
    /// 549.8 s to 618.5 s, which 600 s cuts, so it counts as bad with the
    /// 4 longer ones: 2 good, 5 bad.
    #[test]
    fn a_stage_latency_counts_cells_within_the_threshold_rounding_cut_ones_to_bad() {
        const S: u64 = 1_000_000_000;
        let mut rollup = ProcessRollup::default();
        let cells = rollup
            .durations
            .entry(("entered".into(), "released".into()))
            .or_default();
        for d in [300, 540, 580, 840, 900, 960, 2400] {
            let ns = d * S;
            *cells
                .entry((histogram::bucket(ns), crate::process_rollup::bin(ns)))
                .or_default() += 1;
        }
        let latency = |within_ns| SloDef {
            target: SloTarget::Latency {
                from: "entered".into(),
                to: "released".into(),
                within_ns,
            },
            ..slo(99.0)
        };
        assert_eq!(
            Judged::of(&latency(900 * S), &rollup),
            Judged { good: 5, bad: 2 }
        );
        assert_eq!(
            Judged::of(&latency(600 * S), &rollup),
            Judged { good: 2, bad: 5 }
        );
        // The other direction, or a pair never counted: nothing judged.
        let other = SloDef {
            target: SloTarget::Latency {
                from: "released".into(),
                to: "entered".into(),
                within_ns: 900 * S,
            },
            ..slo(99.0)
        };
        assert_eq!(Judged::of(&other, &rollup), Judged::default());
    }
}
