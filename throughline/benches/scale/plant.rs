//! The plant's day the scale bench sends, as wire bodies: OTLP/HTTP
//! protobuf requests of spans and CloudEvents batches.
//!
//! One trace of ten spans per order, across crm, middleware, erp and mes,
//! each span a child of a span of the caller, so the service map has the
//! edges crm -> middleware -> erp -> mes. Every span carries `order.id` and
//! `customer.id`; the erp spans that release a work order and the mes spans
//! also `work_order.id` (two work orders per order). A customer has 100
//! orders; orders start evenly over the 24 h before the load.
//!
//! Events follow the process definitions of `sample-data/processes/`
//! (sources as `sample-data/demo.toml` maps them to systems): every order
//! that has events goes through order to delivery; one in eight also has
//! a quality hold, one in twelve a production delay. Some stages come late
//! and some never come, so breaches exist, closed and open; a stage whose
//! time is still in the future is not sent.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use prost::Message;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::support::text;

pub const SPANS_PER_TRACE: u64 = 10;
pub const SPANS_PER_REQUEST: u64 = 500;
pub const TRACES_PER_REQUEST: u64 = SPANS_PER_REQUEST / SPANS_PER_TRACE;
pub const ORDERS_PER_CUSTOMER: u64 = 100;
pub const DAY_NS: u64 = 86_400_000_000_000;
const MINUTE_NS: u64 = 60_000_000_000;

/// How many orders and customers, and when each order starts.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Orders of the bulk load (one trace each); live orders follow them.
    pub orders: u64,
    pub customers: u64,
    start_ns: u64,
    step_ns: u64,
}

impl Shape {
    /// `spans` spans of the 24 h before `now_ns`.
    pub fn new(spans: u64, now_ns: u64) -> Shape {
        let orders = (spans / SPANS_PER_TRACE).max(1);
        Shape {
            orders,
            customers: (orders / ORDERS_PER_CUSTOMER).max(1),
            start_ns: now_ns - DAY_NS,
            step_ns: DAY_NS / orders,
        }
    }

    /// When a bulk order starts.
    pub fn order_start(&self, order: u64) -> u64 {
        self.start_ns + order * self.step_ns
    }

    /// The customer of an order: bulk orders share `customers` customers,
    /// 100 orders each; live orders have customers of their own, so a
    /// bulk customer keeps its 100 orders while the live load runs.
    pub fn customer(&self, order: u64) -> String {
        if order < self.orders {
            format!("C-{}", order % self.customers)
        } else {
            format!("CL-{}", order % self.customers)
        }
    }
}

pub fn order_id(order: u64) -> String {
    format!("SO-{order:08}")
}

/// Work order 1 or 2 of an order.
pub fn work_order_id(order: u64, n: u8) -> String {
    format!("WO-{order:08}-{n}")
}

pub fn trace_id(order: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&0x5ca1_e000_0000_0001u64.to_be_bytes());
    id[8..].copy_from_slice(&(order + 1).to_be_bytes());
    id
}

/// One span of a trace: its service and name, its parent (an index into
/// [`TRACE`]), its work order (0: none, else 1 or 2), when it starts after
/// the trace and how long it takes, in ms.
struct Hop {
    service: &'static str,
    name: &'static str,
    parent: Option<usize>,
    work_order: u8,
    offset_ms: u64,
    duration_ms: u64,
}

const fn hop(
    service: &'static str,
    name: &'static str,
    parent: Option<usize>,
    work_order: u8,
    offset_ms: u64,
    duration_ms: u64,
) -> Hop {
    Hop {
        service,
        name,
        parent,
        work_order,
        offset_ms,
        duration_ms,
    }
}

const TRACE: [Hop; SPANS_PER_TRACE as usize] = [
    hop("crm", "crm.order.submit", None, 0, 0, 900),
    hop("crm", "crm.order.validate", Some(0), 0, 5, 40),
    hop("middleware", "route order", Some(0), 0, 50, 800),
    hop("middleware", "transform order", Some(2), 0, 55, 20),
    hop("erp", "erp.sales_order.create", Some(2), 0, 80, 600),
    hop("erp", "erp.production_order.release", Some(4), 1, 120, 200),
    hop("erp", "erp.production_order.release", Some(4), 2, 330, 200),
    hop("mes", "mes.work_order.schedule", Some(5), 1, 150, 100),
    hop("mes", "mes.work_order.schedule", Some(6), 2, 360, 100),
    hop("mes", "mes.machine.reserve", Some(8), 2, 380, 50),
];
const SERVICES: [&str; 4] = ["crm", "middleware", "erp", "mes"];

fn span_id(order: u64, i: usize) -> Vec<u8> {
    (((order + 1) << 8) | (i as u64 + 1)).to_be_bytes().to_vec()
}

/// Span `i` of an order's trace starting at `t0`.
fn span(shape: &Shape, order: u64, i: usize, t0: u64) -> Span {
    let Hop {
        service,
        name,
        parent,
        work_order,
        offset_ms,
        duration_ms,
    } = TRACE[i];
    let failed = (i == 9 && order.is_multiple_of(50)) || (i == 4 && order % 200 == 7);
    let mut attributes = vec![
        text("order.id", order_id(order)),
        text("customer.id", shape.customer(order)),
    ];
    if work_order > 0 {
        attributes.push(text("work_order.id", work_order_id(order, work_order)));
    }
    attributes.push(text("plant", "P1"));
    attributes.push(text("line", format!("L{}", order % 4)));
    let start = t0 + offset_ms * 1_000_000;
    // A span whose parent is in another service is the callee's server span.
    let server = parent.is_none_or(|p| TRACE[p].service != service);
    Span {
        trace_id: trace_id(order).to_vec(),
        span_id: span_id(order, i),
        parent_span_id: parent.map(|p| span_id(order, p)).unwrap_or_default(),
        name: name.into(),
        kind: if server {
            span::SpanKind::Server as i32
        } else {
            span::SpanKind::Internal as i32
        },
        start_time_unix_nano: start,
        end_time_unix_nano: start + (duration_ms + order % 7 * 3) * 1_000_000,
        attributes,
        status: Some(if failed {
            Status {
                code: status::StatusCode::Error as i32,
                message: "machine not available".into(),
            }
        } else {
            Status::default()
        }),
        ..Default::default()
    }
}

/// One OTLP/HTTP protobuf request: the traces of `orders`, each starting
/// at `t0(order)`, grouped by service as a connector per system would
/// send them.
pub fn spans_request(
    shape: &Shape,
    orders: std::ops::Range<u64>,
    t0: impl Fn(u64) -> u64,
) -> Vec<u8> {
    let resource_spans = SERVICES
        .iter()
        .map(|service| {
            let spans = orders
                .clone()
                .flat_map(|o| {
                    let start = t0(o);
                    (0..TRACE.len())
                        .filter(|i| TRACE[*i].service == *service)
                        .map(move |i| span(shape, o, i, start))
                })
                .collect();
            ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        text("service.name", *service),
                        text("host.name", format!("{service}-app-01")),
                        text("deployment.environment", "production"),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: format!("{service}-connector"),
                        version: "1.0.0".into(),
                        ..Default::default()
                    }),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }.encode_to_vec()
}

/// One event of an order, before it is written as a CloudEvent.
#[derive(Debug, Clone)]
pub struct Planned {
    order: u64,
    event_type: &'static str,
    time_ns: u64,
    order_key: bool,
    customer_key: bool,
    work_order: u8,
    failed: bool,
}

/// The events of `order` that started at `t0`, those not after `now_ns`.
pub fn order_events(order: u64, t0: u64, now_ns: u64) -> Vec<Planned> {
    let ev = |event_type, time_ns, order_key, customer_key, work_order| Planned {
        order,
        event_type,
        time_ns,
        order_key,
        customer_key,
        work_order,
        failed: false,
    };
    let mut out = Vec::with_capacity(11);
    // Order to delivery; one in twenty entered late, one in ten never
    // produced, one in ten of the rest never shipped, one in sixteen told
    // late: the four SLAs breached, open and closed.
    out.push(ev("crm.order.created", t0, true, true, 0));
    let entered = t0 + if order % 20 == 3 { 20 } else { 5 } * MINUTE_NS;
    out.push(ev("erp.sales_order.created", entered, true, false, 1));
    if order % 10 != 5 {
        let produced = entered + if order % 25 == 1 { 540 } else { 120 } * MINUTE_NS;
        out.push(ev("mes.work_order.completed", produced, false, false, 1));
        if order % 10 != 6 {
            let shipped = produced + 60 * MINUTE_NS;
            let mut e = ev("erp.delivery.goods_issued", shipped, true, false, 0);
            e.failed = order.is_multiple_of(101);
            out.push(e);
            let told = shipped + if order % 16 == 2 { 45 } else { 10 } * MINUTE_NS;
            out.push(ev("crm.order.shipped", told, true, true, 0));
        }
    }
    // Quality hold on the second work order; one in three never blocked.
    if order.is_multiple_of(8) {
        let hold = t0 + 150 * MINUTE_NS;
        out.push(ev("mes.quality_hold.placed", hold, false, false, 2));
        if !order.is_multiple_of(24) {
            out.push(ev(
                "erp.stock.blocked",
                hold + 5 * MINUTE_NS,
                false,
                false,
                2,
            ));
        }
        out.push(ev(
            "crm.account.informed",
            hold + 60 * MINUTE_NS,
            true,
            true,
            0,
        ));
    }
    // Production delay on the first; one in three never rescheduled.
    if order % 12 == 1 {
        let down = t0 + 60 * MINUTE_NS;
        out.push(ev("mes.machine.downtime", down, false, false, 1));
        if order % 36 != 1 {
            out.push(ev(
                "erp.order.rescheduled",
                down + 20 * MINUTE_NS,
                true,
                false,
                0,
            ));
        }
        out.push(ev(
            "crm.customer.alerted",
            down + 40 * MINUTE_NS,
            true,
            true,
            0,
        ));
    }
    out.retain(|e| e.time_ns <= now_ns);
    out
}

fn rfc3339(ns: u64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .expect("a time after 1970")
        .format(&Rfc3339)
        .expect("RFC 3339")
}

/// A CloudEvents batch (`application/cloudevents-batch+json`) of events;
/// keys as extensions, the source one `[events.systems]` of
/// `sample-data/demo.toml` maps to the system.
pub fn events_batch(shape: &Shape, events: &[Planned]) -> Vec<u8> {
    let list: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            let system = e.event_type.split('.').next().expect("a dotted type");
            let source = match system {
                "crm" => "urn:acme:crm",
                "erp" => "urn:acme:erp",
                _ => "urn:plant1:mes",
            };
            let mut v = serde_json::json!({
                "specversion": "1.0",
                "id": format!("{}-{}", e.event_type, e.order),
                "source": source,
                "type": e.event_type,
                "time": rfc3339(e.time_ns),
                "datacontenttype": "application/json",
                "data": { "plant": "P1", "line": format!("L{}", e.order % 4) },
            });
            let fields = v.as_object_mut().expect("an object");
            if e.order_key {
                fields.insert("orderid".into(), order_id(e.order).into());
            }
            if e.customer_key {
                fields.insert("customerid".into(), shape.customer(e.order).into());
            }
            if e.work_order > 0 {
                fields.insert(
                    "workorderid".into(),
                    work_order_id(e.order, e.work_order).into(),
                );
            }
            if e.failed {
                fields.insert("outcome".into(), "failed".into());
            }
            v
        })
        .collect();
    serde_json::to_vec(&list).expect("JSON")
}

/// The bulk load's events: orders picked evenly over the day so that about
/// `total` events come out, cut at `total`.
pub fn bulk_events(shape: &Shape, total: u64, now_ns: u64) -> Vec<Planned> {
    let all: u64 = (0..shape.orders)
        .map(|o| order_events(o, shape.order_start(o), now_ns).len() as u64)
        .sum();
    let mut out = Vec::with_capacity(total.min(all) as usize);
    for o in 0..shape.orders {
        // Bresenham: order o is picked when (o + 1) * total / all steps up.
        let picked = total >= all || (o + 1) * total / all > o * total / all;
        if picked {
            out.extend(order_events(o, shape.order_start(o), now_ns));
        }
    }
    out.truncate(total as usize);
    out
}
