//! What the fuzz targets share: tight limits that make every cut happen on
//! small inputs, and checks that what came out keeps to the limits.

use collector::limits::{Limits, TRUNCATED_ATTRIBUTE};
use collector::model::{Attributes, Span};

pub fn tight_limits() -> Limits {
    Limits {
        max_attributes: 2,
        max_value_bytes: 1024,
        max_span_events: 1,
        max_span_links: 1,
        max_depth: 2,
    }
}

/// At most `max_attributes` (plus the marker), each value within
/// `max_value_bytes`.
pub fn check_attributes(attributes: &Attributes, limits: &Limits) {
    let own = attributes
        .iter()
        .filter(|(k, _)| k != TRUNCATED_ATTRIBUTE)
        .count();
    assert!(own <= limits.max_attributes, "{own} attributes kept");
    for (key, value) in attributes {
        assert!(
            value.len() <= limits.max_value_bytes,
            "value of {key} is {} bytes",
            value.len()
        );
    }
}

pub fn check_spans(spans: &[Span], limits: &Limits) {
    for span in spans {
        check_attributes(&span.attributes, limits);
        check_attributes(&span.resource, limits);
        assert!(span.events.len() <= limits.max_span_events);
        assert!(span.links.len() <= limits.max_span_links);
        for event in &span.events {
            check_attributes(&event.attributes, limits);
        }
    }
}
