//! OTLP/JSON trace export -> protobuf messages -> canonical spans, as the
//! HTTP receiver does it for `application/json`.
#![no_main]

use domain::keys::KeyTypes;
use domain::limits::Limits;
use collector::receivers::otlp::{convert, json};
use libfuzzer_sys::fuzz_target;
use throughline_fuzz::{check_spans, tight_limits};

fuzz_target!(|data: &[u8]| {
    let Ok((request, _rejected)) = json::decode_traces(data) else {
        return;
    };
    let keys = KeyTypes::default();
    for limits in [Limits::default(), tight_limits()] {
        let out = convert::traces(&request, &keys, &limits);
        check_spans(&out.batch.spans, &limits);
    }
});
