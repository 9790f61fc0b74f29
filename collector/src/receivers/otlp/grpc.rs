//! OTLP/gRPC: `TraceService/Export` and `LogsService/Export`, gzip accepted.
//!
//! The services are written out here instead of using the generated
//! `*ServiceServer`s for one reason: those decode with a codec that answers a
//! malformed message with `INTERNAL`, and a sender must learn that its
//! request is wrong (`INVALID_ARGUMENT`) and is not worth retrying.

use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::body::Body as TonicBody;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings};
use tonic::codegen::{http, BoxFuture, Service, StdError};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Code, Request, Response, Status};

use crate::metrics::Metrics;
use crate::pipeline::SubmitError;

use super::convert;
use super::convert::Rejection;
use super::{RpcAny, RpcStatus};
use crate::auth::Access;
use crate::receivers::{
    admit, count_refused, enforce, ingest, now_ns, ReceiveError, ReceiverState, Signal,
};

/// Seconds a client should wait before retrying into a full spool.
const FULL_RETRY_DELAY_SECS: i64 = 5;

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<RpcDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Message)]
struct RpcDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// The one place a [`ReceiveError`] becomes a gRPC status.
fn status(metrics: &Metrics, error: ReceiveError) -> Status {
    count_refused(metrics, &error);
    let message = error.to_string();
    match error {
        ReceiveError::BadRequest(_) | ReceiveError::UnsupportedMediaType(_) => {
            Status::invalid_argument(message)
        }
        ReceiveError::TooLarge { .. } => Status::resource_exhausted(message),
        ReceiveError::Unauthenticated(_) => Status::unauthenticated(message),
        ReceiveError::Forbidden(_) => Status::permission_denied(message),
        // OTLP clients retry RESOURCE_EXHAUSTED only when RetryInfo says when.
        ReceiveError::Unavailable(SubmitError::Full { .. }) => {
            let details = RpcStatus {
                code: Code::ResourceExhausted as i32,
                message: message.clone(),
                details: vec![RpcAny {
                    type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
                    value: RetryInfo {
                        retry_delay: Some(RpcDuration {
                            seconds: FULL_RETRY_DELAY_SECS,
                            nanos: 0,
                        }),
                    }
                    .encode_to_vec(),
                }],
            };
            Status::with_details(
                Code::ResourceExhausted,
                message,
                details.encode_to_vec().into(),
            )
        }
        ReceiveError::Unavailable(_) => Status::unavailable(message),
        ReceiveError::BodyTimeout(_) => Status::deadline_exceeded(message),
    }
}

/// One OTLP export method.
pub trait Export: Send + Sync + 'static {
    /// The fully qualified gRPC service name.
    const SERVICE: &'static str;
    type Request: Message + Default + Send + 'static;
    type Response: Message + Send + 'static;
    /// Stores what `access` may write of `request`.
    fn export(&self, request: Self::Request, access: Access) -> BoxFuture<Self::Response, Status>;
    fn state(&self) -> &ReceiverState;
}

/// Takes out what `access` may not write, as rejections.
fn enforce_grpc(
    state: &ReceiverState,
    access: &Access,
    done: &mut convert::Converted,
    batch: &mut domain::model::Batch,
) -> Result<(), Status> {
    let refused = enforce(state, access, batch).map_err(|e| status(&state.metrics, e))?;
    done.rejected.extend(
        refused
            .into_iter()
            .map(|(path, reason)| Rejection { path, reason }),
    );
    Ok(())
}

pub struct Traces(pub ReceiverState);
pub struct Logs(pub ReceiverState);

impl Export for Traces {
    const SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    type Request = ExportTraceServiceRequest;
    type Response = ExportTraceServiceResponse;

    fn state(&self) -> &ReceiverState {
        &self.0
    }

    fn export(&self, request: Self::Request, access: Access) -> BoxFuture<Self::Response, Status> {
        let state = self.0.clone();
        Box::pin(async move {
            let mut done = convert::traces(&request, &state.keys, &state.limits);
            let mut batch = std::mem::take(&mut done.batch);
            enforce_grpc(&state, &access, &mut done, &mut batch)?;
            ingest(&state, Signal::Spans, batch, done.rejected.len())
                .await
                .map_err(|e| status(&state.metrics, e))?;
            let partial = !done.rejected.is_empty() || !done.warnings.is_empty();
            Ok(ExportTraceServiceResponse {
                partial_success: partial.then(|| ExportTracePartialSuccess {
                    rejected_spans: done.rejected.len() as i64,
                    error_message: done.message(),
                }),
            })
        })
    }
}

impl Export for Logs {
    const SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    type Request = ExportLogsServiceRequest;
    type Response = ExportLogsServiceResponse;

    fn state(&self) -> &ReceiverState {
        &self.0
    }

    fn export(&self, request: Self::Request, access: Access) -> BoxFuture<Self::Response, Status> {
        let state = self.0.clone();
        Box::pin(async move {
            let mut done = convert::logs(&request, &state.keys, &state.limits, now_ns());
            let mut batch = std::mem::take(&mut done.batch);
            enforce_grpc(&state, &access, &mut done, &mut batch)?;
            ingest(&state, Signal::Logs, batch, done.rejected.len())
                .await
                .map_err(|e| status(&state.metrics, e))?;
            let partial = !done.rejected.is_empty() || !done.warnings.is_empty();
            Ok(ExportLogsServiceResponse {
                partial_success: partial.then(|| ExportLogsPartialSuccess {
                    rejected_log_records: done.rejected.len() as i64,
                    error_message: done.message(),
                }),
            })
        })
    }
}

/// Decodes with prost; a malformed message is the sender's error.
pub struct OtlpDecoder<U>(Arc<Metrics>, PhantomData<U>);

impl<U: Message + Default> Decoder for OtlpDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|e| {
            count_refused(&self.0, &ReceiveError::BadRequest(String::new()));
            Status::invalid_argument(format!("request is not a valid OTLP protobuf message: {e}"))
        })
    }
}

/// prost's encoder, our decoder.
pub struct OtlpCodec<T, U>(Arc<Metrics>, PhantomData<(T, U)>);

impl<T, U> Codec for OtlpCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <tonic_prost::ProstCodec<T, U> as Codec>::Encoder;
    type Decoder = OtlpDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        tonic_prost::ProstCodec::<T, U>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        OtlpDecoder(self.0.clone(), PhantomData)
    }
}

/// A gRPC service serving one [`Export`] method.
pub struct ExportServer<E> {
    inner: Arc<E>,
    max_decoding: usize,
    metrics: Arc<Metrics>,
}

impl<E> Clone for ExportServer<E> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            max_decoding: self.max_decoding,
            metrics: self.metrics.clone(),
        }
    }
}

impl<E: Export> NamedService for ExportServer<E> {
    const NAME: &'static str = E::SERVICE;
}

struct Unary<E>(Arc<E>, Access);

impl<E: Export> UnaryService<E::Request> for Unary<E> {
    type Response = E::Response;
    type Future = BoxFuture<Response<E::Response>, Status>;

    fn call(&mut self, request: Request<E::Request>) -> Self::Future {
        let inner = self.0.clone();
        let access = self.1.clone();
        Box::pin(async move {
            inner
                .export(request.into_inner(), access)
                .await
                .map(Response::new)
        })
    }
}

impl<E, B> Service<http::Request<B>> for ExportServer<E>
where
    E: Export,
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<TonicBody>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let export_path = format!("/{}/Export", E::SERVICE);
        if request.uri().path() != export_path {
            let status = Status::new(
                Code::Unimplemented,
                format!("{} has only the Export method", E::SERVICE),
            );
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let inner = self.inner.clone();
        let max_decoding = self.max_decoding;
        let metrics = self.metrics.clone();
        Box::pin(async move {
            // Before the message is read: nothing of a sender without a
            // valid token is decoded, and the rest wait for an in-flight
            // slot (see `receivers::admit`).
            let header = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            let (access, _slot) = match admit(inner.state(), header).await {
                Ok(admitted) => admitted,
                Err(e) => return Ok(status(&metrics, e).into_http()),
            };
            let mut accept = EnabledCompressionEncodings::default();
            accept.enable(CompressionEncoding::Gzip);
            let mut grpc = Grpc::new(OtlpCodec::<E::Response, E::Request>(metrics, PhantomData))
                .apply_compression_config(accept, EnabledCompressionEncodings::default())
                .apply_max_message_size_config(Some(max_decoding), None);
            Ok(grpc.unary(Unary(inner, access), request).await)
        })
    }
}

/// The trace and logs services, ready for a `tonic` server.
pub fn services(state: ReceiverState) -> (ExportServer<Traces>, ExportServer<Logs>) {
    let max_decoding = state.max_request_bytes;
    let metrics = state.metrics.clone();
    (
        ExportServer {
            inner: Arc::new(Traces(state.clone())),
            max_decoding,
            metrics: metrics.clone(),
        },
        ExportServer {
            inner: Arc::new(Logs(state)),
            max_decoding,
            metrics,
        },
    )
}
