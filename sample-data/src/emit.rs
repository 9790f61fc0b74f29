//! Sending what the plan says, as real connectors would: spans through the
//! `opentelemetry` SDK (one tracer provider per system, `service.name` on its
//! resource, W3C trace context carried from one system to the next through
//! the standard propagator), events as CloudEvents over HTTP in the mode the
//! plan chose.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider,
};
use opentelemetry_sdk::Resource;
use serde_json::Value;

use crate::plan::{Mode, Record};
use crate::DemoOptions;

/// Events sent in one batch at most.
const BATCH: usize = 50;
/// Requests in flight at once: a backfill sends as several connectors would.
const SENDERS: usize = 6;

/// One HTTP request for a sender thread.
struct Job {
    content_type: String,
    headers: Vec<(String, String)>,
    body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http,
    Grpc,
}

#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error("building the OTLP span exporter: {0}")]
    Exporter(String),
    #[error(
        "sending events to {url}: {message}; is `throughline up` (or the collector) running there?"
    )]
    Events { url: String, message: String },
    #[error("the collector refused events at {url} with {status}: {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
}

pub struct Emitter {
    jobs: Option<std::sync::mpsc::SyncSender<Job>>,
    senders: Vec<std::thread::JoinHandle<()>>,
    /// The first error a sender met; reported by the next call.
    failed: std::sync::Arc<std::sync::Mutex<Option<EmitError>>>,
    events_url: String,
    traces_url: String,
    grpc: Option<String>,
    token: Option<String>,
    runtime: tokio::runtime::Handle,
    providers: HashMap<String, (SdkTracerProvider, SdkTracer)>,
    /// Per order, the W3C headers of its latest span.
    carriers: HashMap<u64, HashMap<String, String>>,
    propagator: TraceContextPropagator,
    batch: Vec<Value>,
}

fn header_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Emitter {
    pub fn new(options: &DemoOptions, runtime: tokio::runtime::Handle) -> Result<Self, EmitError> {
        let target = options.target.trim_end_matches('/').to_string();
        let events_url = format!("{target}/v1/events");
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = &options.token {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| EmitError::Events {
                    url: target.clone(),
                    message: "the token holds characters a header cannot carry".into(),
                })?;
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .default_headers(headers)
            .build()
            .map_err(|e| EmitError::Events {
                url: target.clone(),
                message: e.to_string(),
            })?;
        let (jobs, rx) = std::sync::mpsc::sync_channel::<Job>(256);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let failed = std::sync::Arc::new(std::sync::Mutex::new(None));
        let senders = (0..SENDERS)
            .map(|_| {
                let (rx, failed, client, url) = (
                    rx.clone(),
                    failed.clone(),
                    client.clone(),
                    events_url.clone(),
                );
                std::thread::spawn(move || loop {
                    let job = match rx.lock().expect("job queue").recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    };
                    if let Err(e) = post(&client, &url, job) {
                        failed.lock().expect("error slot").get_or_insert(e);
                    }
                })
            })
            .collect();
        Ok(Self {
            jobs: Some(jobs),
            senders,
            failed,
            events_url,
            traces_url: format!("{target}/v1/traces"),
            grpc: options.grpc.clone(),
            token: options.token.clone(),
            runtime,
            providers: HashMap::new(),
            carriers: HashMap::new(),
            propagator: TraceContextPropagator::new(),
            batch: Vec::new(),
        })
    }

    fn tracer(&mut self, service: &str) -> Result<SdkTracer, EmitError> {
        if let Some((_, tracer)) = self.providers.get(service) {
            return Ok(tracer.clone());
        }
        let exporter = match &self.grpc {
            Some(endpoint) => {
                let _guard = self.runtime.enter();
                let mut metadata = tonic::metadata::MetadataMap::new();
                if let Some(token) = &self.token {
                    let value = format!("Bearer {token}").parse().map_err(|_| {
                        EmitError::Exporter(
                            "the token holds characters a header cannot carry".into(),
                        )
                    })?;
                    metadata.insert("authorization", value);
                }
                opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(endpoint.clone())
                    .with_metadata(metadata)
                    .build()
            }
            None => opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(self.traces_url.clone())
                .with_headers(
                    self.token
                        .iter()
                        .map(|t| ("authorization".to_string(), format!("Bearer {t}")))
                        .collect(),
                )
                .build(),
        }
        .map_err(|e| EmitError::Exporter(e.to_string()))?;
        // A backfill makes spans far faster than a connector does: a queue
        // large enough that none is dropped between exports.
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_max_queue_size(200_000)
                    .with_max_export_batch_size(2_000)
                    .with_scheduled_delay(Duration::from_millis(200))
                    .build(),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(
                Resource::builder()
                    .with_service_name(service.to_string())
                    .with_attribute(KeyValue::new("deployment.environment", "demo-plant"))
                    .build(),
            )
            .build();
        let tracer = provider.tracer(format!("{service}-connector"));
        self.providers
            .insert(service.to_string(), (provider, tracer.clone()));
        Ok(tracer)
    }

    pub fn send(&mut self, record: &Record) -> Result<(), EmitError> {
        match record {
            Record::Span {
                service,
                name,
                start_ns,
                end_ns,
                attributes,
                error,
                order,
                root,
            } => {
                let tracer = self.tracer(service)?;
                let parent = match (root, self.carriers.get(order)) {
                    (false, Some(carrier)) => self.propagator.extract(carrier),
                    _ => Context::new(),
                };
                let mut span = tracer
                    .span_builder(name.clone())
                    .with_kind(if *root {
                        SpanKind::Server
                    } else {
                        SpanKind::Consumer
                    })
                    .with_start_time(UNIX_EPOCH + Duration::from_nanos(*start_ns))
                    .with_attributes(
                        attributes
                            .iter()
                            .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
                            .collect::<Vec<_>>(),
                    )
                    .start_with_context(&tracer, &parent);
                if let Some(message) = error {
                    span.set_status(Status::error(message.clone()));
                }
                let cx = parent.with_span(span);
                let mut carrier = HashMap::new();
                self.propagator.inject_context(&cx, &mut carrier);
                self.carriers.insert(*order, carrier);
                cx.span()
                    .end_with_timestamp(UNIX_EPOCH + Duration::from_nanos(*end_ns));
                Ok(())
            }
            Record::Event { mode, event, order } => {
                let mut event = event.clone();
                if let Some(tp) = order
                    .and_then(|o| self.carriers.get(&o))
                    .and_then(|c| c.get("traceparent"))
                {
                    event["traceparent"] = Value::String(tp.clone());
                }
                match mode {
                    Mode::Structured => {
                        let body = event.to_string();
                        self.post("application/cloudevents+json", Vec::new(), body)
                    }
                    Mode::Binary => {
                        let mut headers = Vec::new();
                        let mut content_type = "application/json".to_string();
                        let mut data = String::new();
                        for (k, v) in event.as_object().into_iter().flatten() {
                            match k.as_str() {
                                "data" => data = v.to_string(),
                                "datacontenttype" => content_type = header_value(v),
                                _ => headers.push((format!("ce-{k}"), header_value(v))),
                            }
                        }
                        self.post(&content_type, headers, data)
                    }
                    Mode::Batch => {
                        self.batch.push(event);
                        if self.batch.len() >= BATCH {
                            self.flush()?;
                        }
                        Ok(())
                    }
                }
            }
        }
    }

    /// Hands a request to the sender threads; reports a sender's earlier
    /// failure, if any.
    fn post(
        &self,
        content_type: &str,
        headers: Vec<(String, String)>,
        body: String,
    ) -> Result<(), EmitError> {
        if let Some(e) = self.failed.lock().expect("error slot").take() {
            return Err(e);
        }
        let job = Job {
            content_type: content_type.to_string(),
            headers,
            body,
        };
        self.jobs
            .as_ref()
            .expect("senders run until finish")
            .send(job)
            .map_err(|_| EmitError::Events {
                url: self.events_url.clone(),
                message: "the sender threads stopped".into(),
            })
    }

    /// Sends the events collected for a batch.
    pub fn flush(&mut self) -> Result<(), EmitError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let body = Value::Array(std::mem::take(&mut self.batch)).to_string();
        self.post("application/cloudevents-batch+json", Vec::new(), body)
    }

    /// Flushes events and spans and shuts the SDK down.
    pub fn finish(mut self) -> Result<(), EmitError> {
        self.flush()?;
        drop(self.jobs.take());
        for sender in self.senders.drain(..) {
            let _ = sender.join();
        }
        if let Some(e) = self.failed.lock().expect("error slot").take() {
            return Err(e);
        }
        for (_, (provider, _)) in self.providers.drain() {
            provider
                .force_flush()
                .map_err(|e| EmitError::Exporter(e.to_string()))?;
            provider
                .shutdown()
                .map_err(|e| EmitError::Exporter(e.to_string()))?;
        }
        Ok(())
    }
}

fn post(client: &reqwest::blocking::Client, url: &str, job: Job) -> Result<(), EmitError> {
    let mut request = client
        .post(url)
        .header("content-type", job.content_type)
        .body(job.body);
    for (k, v) in job.headers {
        request = request.header(k, v);
    }
    let response = request.send().map_err(|e| EmitError::Events {
        url: url.to_string(),
        message: e.to_string(),
    })?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(EmitError::Refused {
            url: url.to_string(),
            status,
            body: response.text().unwrap_or_default(),
        });
    }
    Ok(())
}
