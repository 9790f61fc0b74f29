//! OTLP receivers: gRPC (`grpc`) and HTTP (`http`), protobuf and JSON (`json`),
//! sharing one conversion into canonical records (`convert`).
//!
//! [`crate::receivers::ReceiveError`] maps to HTTP 400 / 413 / 415 / 503 and
//! gRPC `INVALID_ARGUMENT` / `OUT_OF_RANGE` / `UNAVAILABLE`.

pub mod convert;
pub mod grpc;
pub mod http;
pub mod json;
