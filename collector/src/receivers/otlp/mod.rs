//! OTLP receivers: gRPC (`grpc`) and HTTP (`http`), protobuf and JSON (`json`),
//! sharing one conversion into canonical records (`convert`).
//!
//! [`crate::receivers::ReceiveError`] maps to HTTP 400 / 413 / 415 / 503 and
//! gRPC `INVALID_ARGUMENT` / `OUT_OF_RANGE` / `UNAVAILABLE`.

pub mod convert;
pub mod encode;
pub mod grpc;
pub mod http;
pub mod json;

use prost::Message;

/// `google.rpc.Status`: the body of an OTLP/HTTP error, and with details
/// the gRPC `grpc-status-details-bin`.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<RpcAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
struct RpcAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}
