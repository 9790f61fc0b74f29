//! What connectors send and how it is built: `Record` (a span, or a
//! CloudEvent and how it travels, `Mode`), CloudEvent JSON (`event`,
//! `rfc3339`), ERP spans named each ERP's way, and CRM events marked by the
//! CRM outage.

use serde_json::{json, Value};

use super::{Order, Plan};

/// How a CloudEvent travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Structured,
    Binary,
    /// Collected and sent with others as one batch.
    Batch,
}

/// One thing a connector sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Span {
        service: String,
        name: String,
        start_ns: u64,
        end_ns: u64,
        attributes: Vec<(String, String)>,
        error: Option<String>,
        /// The order whose trace context the span continues (and then holds).
        order: u64,
        /// Start a new trace for the order instead of continuing it.
        root: bool,
    },
    Event {
        mode: Mode,
        /// The CloudEvent (attributes and data), without `traceparent`.
        event: Value,
        /// Carry the order's current trace context as `traceparent`.
        order: Option<u64>,
    },
}

pub(super) fn event(
    id: String,
    source: &str,
    ty: &str,
    time_ns: u64,
    ext: &[(&str, Value)],
    data: Value,
) -> Value {
    let mut e = json!({
        "specversion": "1.0",
        "id": id,
        "source": source,
        "type": ty,
        "time": rfc3339(time_ns),
        "datacontenttype": "application/json",
        "data": data,
    });
    for (k, v) in ext {
        e[*k] = v.clone();
    }
    e
}

pub fn rfc3339(ns: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

impl Plan {
    /// An ERP span; each ERP names orders its own way (per-system aliases).
    pub(super) fn erp_span(
        &self,
        service: &str,
        name: &str,
        start: u64,
        end: u64,
        o: &Order,
        n: u64,
    ) -> Record {
        let (order_attr, wo_attr) = if service == "erp-cloud" {
            ("erp.sales_order_number", "erp.production_order_number")
        } else {
            ("sap.sales_order", "sap.production_order")
        };
        Record::Span {
            service: service.into(),
            name: name.into(),
            start_ns: start,
            end_ns: end,
            attributes: vec![
                (order_attr.into(), o.order_id.clone()),
                (wo_attr.into(), o.work_order.clone()),
                ("erp.plant".into(), "1000".into()),
            ],
            error: None,
            order: n,
            root: false,
        }
    }

    pub(super) fn crm_event(
        &mut self,
        id: String,
        ty: &str,
        t: u64,
        ext: &[(&str, Value)],
        data: Value,
    ) -> Value {
        let mut e = event(id, "urn:acme:crm", ty, t, ext, data);
        e["system"] = json!("crm");
        if self.in_outage(t) {
            if self.rng.chance(0.3) {
                e["outcome"] = json!("dead_lettered");
                e["attempt"] = json!(5);
                self.summary.crm_dead_lettered += 1;
            } else {
                e["outcome"] = json!("retried");
                e["attempt"] = json!(3);
                self.summary.crm_retried += 1;
            }
        }
        e
    }
}
