//! Bad input gets its status and a message that says what was wrong, and never
//! costs the good data sent around it.

use bytes::BufMut;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use tonic::codec::{Codec, EncodeBuf, Encoder};

use crate::harness::{TestApp, TestConfig};

fn span(trace_id: Vec<u8>, span_id: Vec<u8>, name: &str) -> Span {
    Span {
        trace_id,
        span_id,
        name: name.into(),
        start_time_unix_nano: 1_764_161_400_000_000_000,
        end_time_unix_nano: 1_764_161_400_500_000_000,
        ..Default::default()
    }
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("erp".into())),
                    }),
                    key_strindex: 0,
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// One valid span of its own trace, to send around bad input.
fn good(n: u8) -> (ExportTraceServiceRequest, String) {
    let trace = vec![n; 16];
    (
        request(vec![span(trace.clone(), vec![n; 8], "good")]),
        hex::encode(trace),
    )
}

async fn assert_stored(app: &TestApp, trace_hex: &str) {
    assert_eq!(
        app.trace(trace_hex, 1).await.len(),
        1,
        "trace {trace_hex} was not stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_bad_bodies_get_400_413_415_and_good_ones_around_them_land() {
    let app = TestApp::with(TestConfig {
        max_request_bytes: 4096,
        ..Default::default()
    })
    .await;
    let (before, before_id) = good(1);
    let (after, after_id) = good(2);
    let proto = "application/x-protobuf";
    assert_eq!(
        app.post("/v1/traces", proto, &[], before.encode_to_vec())
            .await
            .status(),
        200
    );

    // Not protobuf at all.
    let r = app
        .post(
            "/v1/traces",
            proto,
            &[],
            b"\xff\xff\xff\xff garbage".to_vec(),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], proto);
    let status = decode_status(&r.bytes().await.unwrap());
    assert_eq!(status.0, 3);
    assert!(
        status
            .1
            .starts_with("request body is not a valid protobuf ExportTraceServiceRequest"),
        "{}",
        status.1
    );

    // Not JSON.
    let r = app
        .post(
            "/v1/traces",
            "application/json",
            &[],
            b"{\"resourceSpans\": [".to_vec(),
        )
        .await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not valid OTLP/JSON"),
        "{body}"
    );

    // Too large, declared and streamed.
    let r = app.post("/v1/traces", proto, &[], vec![0; 5000]).await;
    assert_eq!(r.status(), 413);
    assert!(decode_status(&r.bytes().await.unwrap())
        .1
        .contains("limit of 4096 bytes"));

    // Too large once decompressed: a gzip bomb stops at the limit.
    let bomb = {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0; 1 << 20]).unwrap();
        gz.finish().unwrap()
    };
    let r = app
        .post("/v1/traces", proto, &[("content-encoding", "gzip")], bomb)
        .await;
    assert_eq!(r.status(), 413);

    // Claims gzip, is not.
    let r = app
        .post(
            "/v1/traces",
            proto,
            &[("content-encoding", "gzip")],
            after.encode_to_vec(),
        )
        .await;
    assert_eq!(r.status(), 400);

    // Unsupported content type and encoding.
    let r = app
        .post("/v1/traces", "text/plain", &[], b"hello".to_vec())
        .await;
    assert_eq!(r.status(), 415);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("application/x-protobuf or application/json"),
        "{body}"
    );
    let r = app
        .post(
            "/v1/traces",
            proto,
            &[("content-encoding", "br")],
            after.encode_to_vec(),
        )
        .await;
    assert_eq!(r.status(), 415);

    assert_eq!(
        app.post("/v1/traces", proto, &[], after.encode_to_vec())
            .await
            .status(),
        200
    );
    assert_stored(&app, &before_id).await;
    assert_stored(&app, &after_id).await;

    // Refusals are counted.
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("throughline_requests_refused_total{reason=\"bad_request\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("throughline_requests_refused_total{reason=\"too_large\"} 2"),
        "{metrics}"
    );
}

fn decode_status(bytes: &[u8]) -> (i32, String) {
    #[derive(Clone, PartialEq, prost::Message)]
    struct RpcStatus {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
    }
    let s = RpcStatus::decode(bytes).expect("a google.rpc.Status body");
    (s.code, s.message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_spans_with_bad_ids_are_rejected_alone_with_partial_success() {
    let app = TestApp::start().await;
    let trace = vec![3; 16];
    let req = request(vec![
        span(trace.clone(), vec![1; 8], "kept-1"),
        span(vec![3; 15], vec![2; 8], "short-trace-id"),
        span(trace.clone(), vec![0; 8], "zero-span-id"),
        span(trace.clone(), vec![4; 8], "kept-2"),
    ]);
    let r = app
        .post(
            "/v1/traces",
            "application/x-protobuf",
            &[],
            req.encode_to_vec(),
        )
        .await;
    assert_eq!(r.status(), 200);
    let response = ExportTraceServiceResponse::decode(r.bytes().await.unwrap()).unwrap();
    let partial = response.partial_success.expect("a partial success");
    assert_eq!(partial.rejected_spans, 2);
    assert!(
        partial
            .error_message
            .contains("spans[1]: trace_id must be 16 bytes"),
        "{}",
        partial.error_message
    );
    assert!(
        partial
            .error_message
            .contains("spans[2]: span_id is all zeros"),
        "{}",
        partial.error_message
    );

    let spans = app.trace(&hex::encode(&trace), 2).await;
    let mut names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, vec!["kept-1", "kept-2"]);

    // The same in OTLP/JSON: a non-hex id rejects that span only.
    let json = serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "not-hex", "spanId": "0102030405060708", "name": "bad"},
        {"traceId": "05050505050505050505050505050505", "spanId": "0102030405060708", "name": "fine",
         "startTimeUnixNano": "1764161400000000000", "endTimeUnixNano": "1764161400000000001"}
    ]}]}]});
    let r = app
        .post(
            "/v1/traces",
            "application/json",
            &[],
            json.to_string().into_bytes(),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["partialSuccess"]["rejectedSpans"], "1");
    assert!(body["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("traceId \"not-hex\" is not hex"));
    assert_eq!(
        app.trace("05050505050505050505050505050505", 1).await.len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_bad_ids_get_partial_success_and_malformed_messages_invalid_argument() {
    let app = TestApp::start().await;
    let mut client = TraceServiceClient::connect(app.grpc_url()).await.unwrap();
    let trace = vec![6; 16];
    let response = client
        .export(request(vec![
            span(trace.clone(), vec![1; 8], "kept"),
            span(vec![], vec![2; 8], "no-trace-id"),
        ]))
        .await
        .unwrap()
        .into_inner();
    let partial = response.partial_success.expect("a partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("trace_id must be 16 bytes"),
        "{}",
        partial.error_message
    );

    let status = send_raw_grpc(&app, b"\xff\xff\xff\xff not protobuf".to_vec())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .contains("not a valid OTLP protobuf message"),
        "{}",
        status.message()
    );

    // The service keeps serving, and the good span of the first call is there.
    let (good_req, good_id) = good(8);
    client.export(good_req).await.unwrap();
    assert_stored(&app, &hex::encode(&trace)).await;
    assert_stored(&app, &good_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_messages_over_the_limit_are_refused() {
    let app = TestApp::with(TestConfig {
        max_request_bytes: 4096,
        ..Default::default()
    })
    .await;
    let mut big = span(vec![9; 16], vec![9; 8], "big");
    big.attributes.push(KeyValue {
        key: "blob".into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue("x".repeat(10_000))),
        }),
        key_strindex: 0,
    });
    let mut client = TraceServiceClient::connect(app.grpc_url()).await.unwrap();
    let status = client.export(request(vec![big])).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
    let (small, small_id) = good(10);
    client.export(small).await.unwrap();
    assert_stored(&app, &small_id).await;
}

/// Sends raw bytes as the body of a TraceService/Export call.
async fn send_raw_grpc(
    app: &TestApp,
    body: Vec<u8>,
) -> Result<ExportTraceServiceResponse, tonic::Status> {
    struct RawEncoder;
    impl Encoder for RawEncoder {
        type Item = Vec<u8>;
        type Error = tonic::Status;
        fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
            dst.put_slice(&item);
            Ok(())
        }
    }
    struct RawCodec;
    impl Codec for RawCodec {
        type Encode = Vec<u8>;
        type Decode = ExportTraceServiceResponse;
        type Encoder = RawEncoder;
        type Decoder =
            <tonic_prost::ProstCodec<Vec<u8>, ExportTraceServiceResponse> as Codec>::Decoder;
        fn encoder(&mut self) -> RawEncoder {
            RawEncoder
        }
        fn decoder(&mut self) -> Self::Decoder {
            tonic_prost::ProstCodec::<ExportTraceServiceResponse, ExportTraceServiceResponse>::default().decoder()
        }
    }
    let channel = tonic::transport::Channel::from_shared(app.grpc_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    grpc.unary(tonic::Request::new(body), path, RawCodec)
        .await
        .map(|r| r.into_inner())
}
