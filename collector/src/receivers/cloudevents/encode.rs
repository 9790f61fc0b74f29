//! Canonical events -> CloudEvents 1.0 in the JSON format (a batch is a
//! JSON array, `application/cloudevents-batch+json`): the inverse of this
//! receiver's `parse`, for the edge collector's forwarder
//! (`crate::forward`).
//!
//! Every field `parse` maps comes back as its attribute (`system` too, so
//! central keeps the system the edge resolved), every other attribute as an
//! extension with its text value, `data` as JSON when it is a JSON object
//! or array (so central finds the same keys in it), else as a string. An
//! event without a time of its own is sent with its arrival time at the
//! edge, which is nearer the truth than its arrival at central after an
//! outage.
//!
//! A `plant` adds the extension [`PLANT_EXTENSION`] when the event carries
//! none.

use serde_json::{Map, Value};

use domain::model::Event;

/// The CloudEvents extension naming the plant an edge collector serves
/// (central's plant tokens check it).
pub use crate::auth::PLANT_EXTENSION;

/// The content type of a batch.
pub const BATCH_CONTENT_TYPE: &str = super::BATCH;

/// One event as a CloudEvents JSON object.
pub fn event(e: &Event, plant: Option<&str>) -> Value {
    let mut o = Map::new();
    let mut put = |k: &str, v: &str| {
        o.insert(k.into(), Value::String(v.into()));
    };
    put("specversion", "1.0");
    put("id", &e.id);
    put("source", &e.source);
    put("type", &e.event_type);
    put("time", &domain::time::rfc3339(e.time_ns));
    put("system", &e.system);
    put("outcome", e.outcome.as_str());
    for (name, value) in [
        ("subject", &e.subject),
        ("datacontenttype", &e.data_content_type),
        ("correlationid", &e.correlation_id),
        ("causationid", &e.causation_id),
    ] {
        if !value.is_empty() {
            put(name, value);
        }
    }
    if let (Some(t), Some(s)) = (e.trace_id, e.span_id) {
        put("traceparent", &format!("00-{t}-{s}-01"));
    }
    if e.attempt != 0 {
        o.insert("attempt".into(), Value::from(e.attempt));
    }
    for (name, value) in &e.attributes {
        o.entry(name.clone())
            .or_insert_with(|| Value::String(value.clone()));
    }
    if let Some(plant) = plant {
        o.entry(PLANT_EXTENSION)
            .or_insert_with(|| Value::String(plant.into()));
    }
    if !e.data.is_empty() {
        let data = match serde_json::from_str::<Value>(&e.data) {
            Ok(json @ (Value::Object(_) | Value::Array(_))) => json,
            _ => Value::String(e.data.clone()),
        };
        o.insert("data".into(), data);
    }
    Value::Object(o)
}

/// `events` as the body of one batched request.
pub fn batch<'a>(events: impl IntoIterator<Item = &'a Event>, plant: Option<&str>) -> Vec<u8> {
    let list: Vec<Value> = events.into_iter().map(|e| event(e, plant)).collect();
    serde_json::to_vec(&list).expect("JSON values serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{header, HeaderMap, HeaderValue};
    use domain::events::{EventConfig, EventRules};
    use domain::keys::{KeyConfig, KeyTypes};
    use domain::limits::Limits;
    use domain::model::{SpanId, TraceId};

    #[test]
    fn events_come_back_through_parse_with_the_plant() {
        let keys = KeyTypes::new(&KeyConfig::default()).unwrap();
        let rules = EventRules::new(&EventConfig::default(), &keys).unwrap();
        let mut e = crate::spool::tests::sample_batch().events.remove(0);
        e.time_missing = false;
        e.trace_id = Some(TraceId([5; 16]));
        e.span_id = Some(SpanId([6; 8]));
        e.data = r#"{"work_order":"WO-1"}"#.into();
        e.data_content_type = "application/json".into();
        e.attributes = vec![("work_order.id".into(), "WO-1".into())];
        let body = batch([&e], Some("p9"));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(BATCH_CONTENT_TYPE),
        );
        let parsed =
            super::super::parse(&headers, &body, &rules, &Limits::default(), e.received_ns)
                .unwrap();
        let back = parsed.into_iter().next().unwrap().unwrap();
        assert_eq!(
            (&back.id, &back.source, &back.system, &back.event_type),
            (&e.id, &e.source, &e.system, &e.event_type)
        );
        assert_eq!(
            (back.time_ns, back.outcome, back.attempt),
            (e.time_ns, e.outcome, e.attempt)
        );
        assert_eq!((back.trace_id, back.span_id), (e.trace_id, e.span_id));
        assert_eq!(back.data, e.data);
        assert!(back.attributes.contains(&("plant".into(), "p9".into())));
        assert!(back
            .attributes
            .contains(&("work_order.id".into(), "WO-1".into())));
    }
}
