//! Plants: what an edge collector reports of itself to central, and the
//! link state central derives from it. An edge collector (one per plant)
//! reports its backlog every few seconds, also while its spool is empty,
//! so that silence itself says the link is down.

/// The resource attribute naming a span's or log record's plant (an edge
/// collector adds it to what it forwards).
pub const RESOURCE_ATTRIBUTE: &str = "plant.id";
/// The CloudEvents extension (kept among an event's attributes) naming an
/// event's plant.
pub const EVENT_ATTRIBUTE: &str = "plant";

/// The value of `name` among `attributes`, or "" when absent.
pub fn named_in<'a>(attributes: &'a [(String, String)], name: &str) -> &'a str {
    attributes
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// How long central waits for an edge collector's report before it shows
/// the plant's link down (`plant_link_timeout`, default 1 minute: six
/// missed reports at the edge's default `forward_heartbeat` of 10 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkTimeout(pub u64);

impl Default for LinkTimeout {
    fn default() -> Self {
        Self(60 * 1_000_000_000)
    }
}

/// One report of an edge collector, as central received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlantReport {
    pub plant: String,
    /// When central received it (central's clock).
    pub received_ns: u64,
    /// The edge's spool: bytes and records not yet acknowledged by central.
    pub backlog_bytes: u64,
    pub backlog_records: u64,
    /// Age of the oldest unsent record when the edge reported; 0 when none.
    pub oldest_age_ns: u64,
}

/// What central knows of one plant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlantState {
    pub plant: String,
    /// The newest record time (a span's start, an event's time) stored
    /// from this plant; 0 when none in the lookback.
    pub newest_record_ns: u64,
    /// Its edge collector's last report, if it ever reported.
    pub last_report: Option<PlantReport>,
}

impl PlantState {
    /// Nothing heard from its edge collector for longer than `timeout` at
    /// `now_ns` (or never, while records of it are stored).
    pub fn link_down(&self, now_ns: u64, timeout_ns: u64) -> bool {
        match &self.last_report {
            Some(r) => now_ns.saturating_sub(r.received_ns) > timeout_ns,
            None => true,
        }
    }

    /// How far its data is behind at `now_ns`: the age of the edge's
    /// oldest unsent record as reported, plus the time since that report.
    /// `None` when it never reported.
    pub fn backlog_age_ns(&self, now_ns: u64) -> Option<u64> {
        self.last_report.as_ref().map(|r| {
            if r.backlog_records == 0 {
                0
            } else {
                r.oldest_age_ns + now_ns.saturating_sub(r.received_ns)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn state(received: u64, records: u64, age: u64) -> PlantState {
        PlantState {
            plant: "hamburg".into(),
            newest_record_ns: 0,
            last_report: Some(PlantReport {
                plant: "hamburg".into(),
                received_ns: received,
                backlog_bytes: records * 100,
                backlog_records: records,
                oldest_age_ns: age,
            }),
        }
    }

    #[test]
    fn a_link_is_down_after_silence_longer_than_the_timeout() {
        let s = state(100 * S, 0, 0);
        assert!(!s.link_down(160 * S, 60 * S));
        assert!(s.link_down(161 * S, 60 * S));
        assert!(PlantState::default().link_down(0, 60 * S), "never heard");
    }

    #[test]
    fn backlog_age_grows_from_the_last_report_while_records_wait() {
        assert_eq!(
            state(100 * S, 5, 30 * S).backlog_age_ns(110 * S),
            Some(40 * S)
        );
        assert_eq!(state(100 * S, 0, 0).backlog_age_ns(110 * S), Some(0));
        assert_eq!(PlantState::default().backlog_age_ns(1), None);
    }
}
