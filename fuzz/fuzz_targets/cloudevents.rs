//! CloudEvents over HTTP -> canonical events. The first byte picks the mode
//! (structured, batched, binary); in binary mode the input up to the first
//! empty line is `name: value` header lines, the rest the body.
#![no_main]

use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use domain::events::{EventConfig, EventRules};
use domain::keys::KeyTypes;
use domain::limits::Limits;
use collector::receivers::cloudevents;
use libfuzzer_sys::fuzz_target;
use throughline_fuzz::{check_attributes, check_body, check_text, tight_limits};

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let mut headers = HeaderMap::new();
    let body = match mode % 3 {
        0 => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/cloudevents+json"),
            );
            rest
        }
        1 => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/cloudevents-batch+json"),
            );
            rest
        }
        _ => {
            headers.insert("ce-specversion", HeaderValue::from_static("1.0"));
            let split = rest.windows(2).position(|w| w == b"\n\n");
            let (head, body) = match split {
                Some(i) => (&rest[..i], &rest[i + 2..]),
                None => (&rest[..0], rest),
            };
            for line in head.split(|b| *b == b'\n') {
                let Some(colon) = line.iter().position(|b| *b == b':') else {
                    continue;
                };
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(&line[..colon]),
                    HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
                ) {
                    headers.append(name, value);
                }
            }
            body
        }
    };
    let keys = KeyTypes::default();
    let rules = EventRules::new(&EventConfig::default(), &keys).unwrap();
    for limits in [Limits::default(), tight_limits()] {
        if let Ok(events) = cloudevents::parse(&headers, body, &rules, &limits, 1) {
            for event in events.iter().flatten() {
                check_attributes(&event.attributes, &limits);
                check_body(&event.data, &limits);
                for (what, text) in [
                    ("id", &event.id),
                    ("source", &event.source),
                    ("type", &event.event_type),
                    ("subject", &event.subject),
                ] {
                    check_text(what, text, &limits);
                }
            }
        }
    }
});
