//! What the fuzz targets share: tight limits that make every cut happen on
//! small inputs, and checks that what came out keeps to the limits.

use domain::limits::{Limits, TRUNCATED_ATTRIBUTE};
use domain::model::{Attributes, Span};

pub fn tight_limits() -> Limits {
    Limits {
        max_attributes: 2,
        max_value_bytes: 1024,
        max_body_bytes: 1024,
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

/// A short text (a name, a status message, an event id) within
/// `max_value_bytes`.
pub fn check_text(what: &str, text: &str, limits: &Limits) {
    assert!(
        text.len() <= limits.max_value_bytes,
        "{what} is {} bytes",
        text.len()
    );
}

/// A log body or event `data` within `max_body_bytes`.
pub fn check_body(body: &str, limits: &Limits) {
    assert!(
        body.len() <= limits.max_body_bytes,
        "body is {} bytes",
        body.len()
    );
}

pub fn check_spans(spans: &[Span], limits: &Limits) {
    for span in spans {
        check_text("span name", &span.name, limits);
        check_text("status message", &span.status_message, limits);
        check_attributes(&span.attributes, limits);
        check_attributes(&span.resource, limits);
        assert!(span.events.len() <= limits.max_span_events);
        assert!(span.links.len() <= limits.max_span_links);
        for event in &span.events {
            check_text("span event name", &event.name, limits);
            check_attributes(&event.attributes, limits);
        }
    }
}
