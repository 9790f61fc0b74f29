//! OTLP protobuf logs export -> canonical log records and events.
#![no_main]

use domain::keys::KeyTypes;
use domain::limits::Limits;
use collector::receivers::otlp::convert;
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;
use throughline_fuzz::{check_attributes, check_body, check_text, tight_limits};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = ExportLogsServiceRequest::decode(data) else {
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
        let _ = out.message();
    }
});
