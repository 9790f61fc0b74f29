//! OTLP/JSON logs export -> protobuf messages -> canonical log records.
#![no_main]

use domain::keys::KeyTypes;
use domain::limits::Limits;
use collector::receivers::otlp::{convert, json};
use libfuzzer_sys::fuzz_target;
use throughline_fuzz::{check_attributes, check_body, check_text, tight_limits};

fuzz_target!(|data: &[u8]| {
    let Ok((request, _rejected)) = json::decode_logs(data) else {
        return;
    };
    let keys = KeyTypes::default();
    for limits in [Limits::default(), tight_limits()] {
        let out = convert::logs(&request, &keys, &limits, 1);
        for log in &out.batch.logs {
            check_attributes(&log.attributes, &limits);
            check_body(&log.body, &limits);
            check_text("event name", &log.event_name, &limits);
        }
    }
});
