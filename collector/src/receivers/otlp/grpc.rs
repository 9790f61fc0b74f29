//! OTLP/gRPC: `TraceService/Export` and `LogsService/Export`, gzip accepted.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use super::{convert, count_refused, ingest, now_ns, OtlpState, ReceiveError, Signal};

/// The one place a [`ReceiveError`] becomes a gRPC status.
fn status(error: ReceiveError) -> Status {
    count_refused(&error);
    let message = error.to_string();
    match error {
        ReceiveError::BadRequest(_) | ReceiveError::UnsupportedMediaType(_) => {
            Status::invalid_argument(message)
        }
        ReceiveError::TooLarge { .. } => Status::resource_exhausted(message),
        ReceiveError::Unavailable(_) => Status::unavailable(message),
    }
}

pub struct Traces(pub OtlpState);
pub struct Logs(pub OtlpState);

#[tonic::async_trait]
impl TraceService for Traces {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let converted = convert::traces(request.get_ref(), &self.0.keys);
        let done = ingest(&self.0, Signal::Spans, converted)
            .await
            .map_err(status)?;
        let partial_success = (!done.rejected.is_empty() || !done.warnings.is_empty()).then(|| {
            ExportTracePartialSuccess {
                rejected_spans: done.rejected.len() as i64,
                error_message: done.message(),
            }
        });
        Ok(Response::new(ExportTraceServiceResponse { partial_success }))
    }
}

#[tonic::async_trait]
impl LogsService for Logs {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let converted = convert::logs(request.get_ref(), &self.0.keys, now_ns());
        let done = ingest(&self.0, Signal::Logs, converted)
            .await
            .map_err(status)?;
        let partial_success = (!done.rejected.is_empty() || !done.warnings.is_empty()).then(|| {
            ExportLogsPartialSuccess {
                rejected_log_records: done.rejected.len() as i64,
                error_message: done.message(),
            }
        });
        Ok(Response::new(ExportLogsServiceResponse { partial_success }))
    }
}

/// The gRPC services, ready for a `tonic` server.
pub fn services(state: OtlpState) -> (TraceServiceServer<Traces>, LogsServiceServer<Logs>) {
    let limit = state.max_request_bytes;
    let traces = TraceServiceServer::new(Traces(state.clone()))
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit);
    let logs = LogsServiceServer::new(Logs(state))
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit);
    (traces, logs)
}
