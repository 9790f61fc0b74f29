//! The ERP connector's OTLP requests the ingest benchmarks send
//! (`ingest`, `cluster_ingest`).

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};

use super::{int, text};

pub const SPANS_PER_REQUEST: usize = 512;

/// Request `n`: 512 spans shaped like an ERP connector's: 52 traces of
/// about ten spans (a server span and its children), three business keys
/// and seven more attributes per span, a resource of five attributes, an
/// error status and a span event on some.
pub fn request(n: usize) -> ExportTraceServiceRequest {
    let start = 1_764_161_400_000_000_000u64 + n as u64 * 1_000_000;
    let spans = (0..SPANS_PER_REQUEST)
        .map(|i| {
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&(n as u64 + 1).to_be_bytes());
            trace_id[8..].copy_from_slice(&((i / 10) as u64 + 1).to_be_bytes());
            let mut span_id = [0u8; 8];
            span_id[..4].copy_from_slice(&(n as u32 + 1).to_be_bytes());
            span_id[4..].copy_from_slice(&(i as u32 + 1).to_be_bytes());
            let root = i % 10 == 0;
            let mut parent = span_id;
            parent[4..].copy_from_slice(&((i - i % 10) as u32 + 1).to_be_bytes());
            let failed = i % 97 == 0;
            Span {
                trace_id: trace_id.to_vec(),
                span_id: span_id.to_vec(),
                parent_span_id: if root { Vec::new() } else { parent.to_vec() },
                name: if root {
                    "erp.goods_receipt.post".into()
                } else {
                    format!("erp.goods_receipt.step{}", i % 10)
                },
                kind: if root { 2 } else { 1 },
                start_time_unix_nano: start + i as u64 * 1000,
                end_time_unix_nano: start + i as u64 * 1000 + 2_500_000,
                attributes: vec![
                    text("order.id", format!("SO-{n}-{}", i / 10)),
                    text("work_order.id", format!("WO-{n}-{i}")),
                    text("customer.id", format!("C-{}", n % 50)),
                    text("erp.plant", "P1"),
                    text("erp.document", format!("5000{n:06}{i:03}")),
                    text("erp.movement_type", "101"),
                    int("erp.quantity", (i as i64 % 40) + 1),
                    text("db.system", "hana"),
                    text("http.request.method", "POST"),
                    int("http.response.status_code", if failed { 500 } else { 200 }),
                ],
                events: if failed {
                    vec![span::Event {
                        time_unix_nano: start + i as u64 * 1000 + 1_000_000,
                        name: "exception".into(),
                        attributes: vec![text("exception.message", "posting period closed")],
                        dropped_attributes_count: 0,
                    }]
                } else {
                    Vec::new()
                },
                status: Some(Status {
                    code: if failed {
                        status::StatusCode::Error as i32
                    } else {
                        status::StatusCode::Ok as i32
                    },
                    message: if failed {
                        "posting period closed".into()
                    } else {
                        String::new()
                    },
                }),
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    text("service.name", "erp"),
                    text("service.version", "2026.11.3"),
                    text("host.name", "erp-app-02"),
                    text("deployment.environment", "production"),
                    text("sap.system_id", "PRD"),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "erp-connector".into(),
                    version: "1.4.0".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}
