use super::*;
use crate::model::SpanKind;

const MIN: u64 = 60 * 1_000_000_000;

fn span(trace: u8, id: u8, parent: Option<u8>, service: &str, start_ns: u64, error: bool) -> Span {
    Span {
        trace_id: TraceId([trace; 16]),
        span_id: SpanId([id; 8]),
        parent_span_id: parent.map(|p| SpanId([p; 8])),
        trace_state: String::new(),
        flags: 0,
        service: service.into(),
        name: "op".into(),
        kind: SpanKind::Internal,
        start_ns,
        duration_ns: 1,
        status_code: if error {
            StatusCode::Error
        } else {
            StatusCode::Unset
        },
        status_message: String::new(),
        attributes: Vec::new(),
        resource: Vec::new(),
        scope_name: String::new(),
        scope_version: String::new(),
        events: Vec::new(),
        links: Vec::new(),
        keys: Vec::new(),
    }
}

fn edge(minute: u64, parent: &str, child: &str, calls: u64, errors: u64) -> EdgeCount {
    EdgeCount {
        minute_ns: minute * MIN,
        parent: parent.into(),
        child: child.into(),
        calls,
        errors,
    }
}

#[test]
fn a_child_of_another_service_is_a_call_in_its_start_minute() {
    let mut g = ServiceGraph::default();
    let spans = [
        span(1, 1, None, "crm", 10 * MIN + 5, false),
        span(1, 2, Some(1), "erp", 11 * MIN + 1, true),
        // Same service: not an edge.
        span(1, 3, Some(2), "erp", 11 * MIN + 2, false),
        span(1, 4, Some(2), "mes", 12 * MIN, false),
    ];
    assert_eq!(
        g.observe(&spans, 0),
        [edge(11, "crm", "erp", 1, 1), edge(12, "erp", "mes", 1, 0)]
    );
}

#[test]
fn children_arriving_before_their_parent_wait_for_it() {
    let mut g = ServiceGraph::default();
    let children = [
        span(2, 2, Some(1), "erp", MIN, false),
        span(2, 3, Some(1), "mes", MIN, true),
        span(3, 2, Some(1), "erp", MIN, false),
    ];
    assert_eq!(g.observe(&children, 0), []);
    assert_eq!(g.len().1, 3);
    // Trace 2's parent, in a later batch; trace 3's never comes.
    let parent = [span(2, 1, None, "crm", 0, false)];
    assert_eq!(
        g.observe(&parent, 1),
        [edge(1, "crm", "erp", 1, 0), edge(1, "crm", "mes", 1, 1)]
    );
    assert_eq!(g.len().1, 1);
}

#[test]
fn pairs_older_than_the_time_to_live_are_forgotten() {
    let mut g = ServiceGraph::new(100, 10 * MIN);
    assert_eq!(g.observe(&[span(4, 2, Some(1), "erp", 0, false)], 0), []);
    // The parent comes 11 minutes later: the child was dropped.
    assert_eq!(
        g.observe(&[span(4, 1, None, "crm", 0, false)], 11 * MIN),
        []
    );
    assert_eq!(g.expired_children, 1);
    // A remembered parent is forgotten too.
    assert_eq!(
        g.observe(&[span(4, 3, Some(1), "mes", 0, false)], 22 * MIN),
        []
    );
}

#[test]
fn memory_stays_within_the_size_limit() {
    let mut g = ServiceGraph::new(10, u64::MAX);
    let spans: Vec<Span> = (0..50u8)
        .map(|i| span(i, 2, Some(1), "erp", 0, false))
        .collect();
    g.observe(&spans, 0);
    let (remembered, waiting) = g.len();
    assert!(remembered <= 10 && waiting <= 10, "{remembered} {waiting}");
    assert_eq!(g.expired_children, 40);
    // The newest are kept: the last trace's parent still pairs.
    assert_eq!(
        g.observe(&[span(49, 1, None, "crm", 0, false)], 0),
        [edge(0, "crm", "erp", 1, 0)]
    );
}
