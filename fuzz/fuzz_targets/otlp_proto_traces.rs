//! OTLP protobuf trace export -> canonical spans, as the gRPC and HTTP
//! receivers do it, under the default and under tight limits.
#![no_main]

use domain::keys::KeyTypes;
use domain::limits::Limits;
use collector::receivers::otlp::convert;
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use throughline_fuzz::{check_spans, tight_limits};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = ExportTraceServiceRequest::decode(data) else {
        return;
    };
    let keys = KeyTypes::default();
    for limits in [Limits::default(), tight_limits()] {
        let out = convert::traces(&request, &keys, &limits);
        check_spans(&out.batch.spans, &limits);
        let _ = out.message();
    }
});
