//! What happens in the plant, decided from the seed alone: a discrete-event
//! simulation whose steps yield the records connectors send. Times are
//! absolute (the run's start plus simulated offsets); nothing here does I/O.
//!
//! `records` holds what connectors send and its builders.

mod records;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use serde_json::{json, Value};

use crate::rng::Rng;

use records::event;
pub use records::{rfc3339, Mode, Record};

const MIN: u64 = 60_000_000_000;

/// Which incidents are injected (all on by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incidents {
    /// Machine downtime that delays orders and must reach CRM.
    pub downtime: bool,
    /// Quality holds on finished goods that ERP must block.
    pub quality_hold: bool,
    /// Orders move from `erp-legacy` to `erp-cloud` halfway, same keys.
    pub erp_migration: bool,
    /// The CRM connector is down for 45 minutes: retries, dead letters.
    pub crm_outage: bool,
    /// Some events delivered twice, some late and out of order.
    pub delivery_faults: bool,
}

impl Default for Incidents {
    fn default() -> Self {
        Self {
            downtime: true,
            quality_hold: true,
            erp_migration: true,
            crm_outage: true,
            delivery_faults: true,
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub orders: u64,
    pub spans: u64,
    pub events: u64,
    pub downtimes: u64,
    pub quality_holds: u64,
    pub erp_migrations: u64,
    pub crm_retried: u64,
    pub crm_dead_lettered: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "demo: {} orders, {} spans, {} events; incidents: {} machine downtimes, {} quality holds, \
             {} ERP migration, CRM outage ({} events retried, {} dead-lettered), {} duplicate deliveries, \
             {} out of order",
            self.orders,
            self.spans,
            self.events,
            self.downtimes,
            self.quality_holds,
            self.erp_migrations,
            self.crm_retried,
            self.crm_dead_lettered,
            self.duplicates,
            self.out_of_order
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    NewOrder,
    ErpEntry(u64),
    MesStart(u64),
    Downtime(u64),
    Reschedule(u64),
    CustomerAlert(u64),
    MesDone(u64),
    QualityHold(u64),
    StockBlock(u64),
    AccountInform(u64),
    GoodsIssue(u64),
    ShipNotice(u64),
    /// A record held back (out of order, or a second delivery).
    Deliver(u64),
}

#[derive(Debug, Clone)]
struct Order {
    customer: String,
    order_id: String,
    work_order: String,
    work_centre: String,
    delayed: bool,
}

/// The simulation.
pub struct Plan {
    rng: Rng,
    incidents: Incidents,
    mean_gap_ns: u64,
    queue: BinaryHeap<Reverse<(u64, u64, Action)>>,
    seq: u64,
    orders: Vec<Order>,
    held: Vec<Option<Record>>,
    erp_cutover_ns: u64,
    crm_outage: (u64, u64),
    summary: Summary,
}

const CUSTOMERS: &[&str] = &[
    "ACME", "BOLT", "CORA", "DELTA", "EMBER", "FJORD", "GALE", "HALO", "IRIS", "JADE", "KITE",
    "LUMEN",
];
const WORK_CENTRES: &[&str] = &[
    "P1-PRESS-01",
    "P1-PRESS-02",
    "P1-WELD-01",
    "P2-CNC-01",
    "P2-PAINT-01",
];

impl Plan {
    /// A plan from `seed` at `rate` orders per minute, starting at `start_ns`.
    /// The ERP migration happens 12 h in, the CRM outage 17 h in (for 45 min),
    /// so a 24 h backfill shows both.
    pub fn new(seed: u64, rate: f64, incidents: Incidents, start_ns: u64) -> Self {
        let mut plan = Self {
            rng: Rng::new(seed),
            incidents,
            mean_gap_ns: (60_000_000_000.0 / rate.max(0.01)) as u64,
            queue: BinaryHeap::new(),
            seq: 0,
            orders: Vec::new(),
            held: Vec::new(),
            erp_cutover_ns: start_ns + 12 * 60 * MIN,
            crm_outage: (
                start_ns + 17 * 60 * MIN,
                start_ns + 17 * 60 * MIN + 45 * MIN,
            ),
            summary: Summary::default(),
        };
        if incidents.erp_migration {
            plan.summary.erp_migrations = 1;
        }
        plan.schedule(start_ns, Action::NewOrder);
        plan
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// When the next step is due.
    pub fn next_due(&self) -> Option<u64> {
        self.queue.peek().map(|Reverse((due, _, _))| *due)
    }

    fn schedule(&mut self, at: u64, action: Action) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, action)));
    }

    fn in_outage(&self, t: u64) -> bool {
        self.incidents.crm_outage && t >= self.crm_outage.0 && t < self.crm_outage.1
    }

    /// Takes the next step; returns what connectors send now.
    pub fn step(&mut self) -> Vec<Record> {
        let Some(Reverse((now, _, action))) = self.queue.pop() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match action {
            Action::NewOrder => self.new_order(now, &mut out),
            Action::ErpEntry(n) => self.erp_entry(n, now, &mut out),
            Action::MesStart(n) => self.mes_start(n, now, &mut out),
            Action::Downtime(n) => self.downtime(n, now, &mut out),
            Action::Reschedule(n) => {
                let o = self.orders[n as usize].clone();
                let e = event(
                    format!("erp-resched-{n}"),
                    "urn:acme:erp",
                    "erp.order.rescheduled",
                    now,
                    &[("system", json!("erp")), ("orderid", json!(o.order_id))],
                    json!({"new_date_shift_hours": 6}),
                );
                self.deliver_event(now, Mode::Structured, e, Some(n), &mut out);
            }
            Action::CustomerAlert(n) => {
                self.crm_order_event(
                    n,
                    "crm-alert",
                    "crm.customer.alerted",
                    now,
                    json!({"channel": "email"}),
                    &mut out,
                );
            }
            Action::MesDone(n) => self.mes_done(n, now, &mut out),
            Action::QualityHold(n) => {
                let o = self.orders[n as usize].clone();
                let e = event(
                    format!("mes-hold-{n}"),
                    "urn:plant1:mes",
                    "mes.quality_hold.placed",
                    now,
                    &[("workorderid", json!(o.work_order))],
                    json!({"reason": "surface defects", "quantity": self.rng.between(5, 40)}),
                );
                self.deliver_event(now, Mode::Batch, e, None, &mut out);
                let late = self.rng.chance(0.2);
                let block = if late {
                    self.rng.between(15, 40)
                } else {
                    self.rng.between(2, 8)
                };
                self.schedule(now + block * MIN, Action::StockBlock(n));
                if !self.rng.chance(0.15) {
                    let inform = self.rng.between(30, 90);
                    self.schedule(now + inform * MIN, Action::AccountInform(n));
                }
            }
            Action::StockBlock(n) => {
                let o = self.orders[n as usize].clone();
                let e = event(
                    format!("erp-block-{n}"),
                    "urn:acme:erp",
                    "erp.stock.blocked",
                    now,
                    &[
                        ("system", json!("erp")),
                        ("workorderid", json!(o.work_order)),
                    ],
                    json!({"storage_location": "FG01"}),
                );
                self.deliver_event(now, Mode::Binary, e, Some(n), &mut out);
            }
            Action::AccountInform(n) => {
                self.crm_order_event(
                    n,
                    "crm-inform",
                    "crm.account.informed",
                    now,
                    json!({"topic": "quality hold"}),
                    &mut out,
                );
            }
            Action::GoodsIssue(n) => {
                let o = self.orders[n as usize].clone();
                let service = self.erp_service(now);
                out.push(self.erp_span(
                    service,
                    "erp.delivery.post",
                    now,
                    now + 3_000_000_000,
                    &o,
                    n,
                ));
                let e = event(
                    format!("erp-gi-{n}"),
                    "urn:acme:erp",
                    "erp.delivery.goods_issued",
                    now,
                    &[("system", json!("erp")), ("orderid", json!(o.order_id))],
                    json!({"delivery": format!("80{n:06}")}),
                );
                self.deliver_event(now, Mode::Binary, e, Some(n), &mut out);
                let notice = self.rng.between(2, 40);
                self.schedule(now + notice * MIN, Action::ShipNotice(n));
            }
            Action::ShipNotice(n) => {
                let o = self.orders[n as usize].clone();
                out.push(Record::Span {
                    service: "crm".into(),
                    name: "crm.order.ship_notice".into(),
                    start_ns: now,
                    end_ns: now + 90_000_000,
                    attributes: vec![
                        ("customer.id".into(), o.customer.clone()),
                        ("order.id".into(), o.order_id.clone()),
                    ],
                    error: None,
                    order: n,
                    root: false,
                });
                let e = self.crm_event(
                    format!("crm-shipped-{n}"),
                    "crm.order.shipped",
                    now,
                    &[
                        ("orderid", json!(o.order_id)),
                        ("customerid", json!(o.customer)),
                    ],
                    json!({"notified": "email"}),
                );
                self.deliver_crm(now, e, n, &mut out);
            }
            Action::Deliver(i) => {
                if let Some(record) = self.held[i as usize].take() {
                    out.push(record);
                }
            }
        }
        for record in &out {
            match record {
                Record::Span { .. } => self.summary.spans += 1,
                Record::Event { .. } => self.summary.events += 1,
            }
        }
        out
    }

    fn erp_service(&self, t: u64) -> &'static str {
        if self.incidents.erp_migration && t >= self.erp_cutover_ns {
            "erp-cloud"
        } else {
            "erp-legacy"
        }
    }

    /// CRM events during the outage arrive when it ends.
    fn deliver_crm(&mut self, t: u64, e: Value, n: u64, out: &mut Vec<Record>) {
        let record = Record::Event {
            mode: Mode::Structured,
            event: e,
            order: Some(n),
        };
        if self.in_outage(t) {
            let at = self.crm_outage.1 + self.rng.between(0, 5) * MIN;
            self.hold(at, record);
        } else {
            self.deliver(t, record, out);
        }
    }

    /// Sends (see [`Plan::deliver`]) one CloudEvent in `mode`, carrying the
    /// trace context of `order` when given.
    fn deliver_event(
        &mut self,
        t: u64,
        mode: Mode,
        event: Value,
        order: Option<u64>,
        out: &mut Vec<Record>,
    ) {
        self.deliver(t, Record::Event { mode, event, order }, out);
    }

    /// A CRM event about order `n` (its order and customer keys), delivered
    /// as the CRM connector manages: late and retried during its outage.
    fn crm_order_event(
        &mut self,
        n: u64,
        id: &str,
        ty: &str,
        t: u64,
        data: Value,
        out: &mut Vec<Record>,
    ) {
        let o = self.orders[n as usize].clone();
        let e = self.crm_event(
            format!("{id}-{n}"),
            ty,
            t,
            &[
                ("orderid", json!(o.order_id)),
                ("customerid", json!(o.customer)),
            ],
            data,
        );
        self.deliver_crm(t, e, n, out);
    }

    fn hold(&mut self, at: u64, record: Record) {
        self.held.push(Some(record));
        let i = self.held.len() as u64 - 1;
        self.schedule(at, Action::Deliver(i));
    }

    /// Sends now, or (delivery faults) later and/or twice.
    fn deliver(&mut self, t: u64, record: Record, out: &mut Vec<Record>) {
        if self.incidents.delivery_faults && matches!(record, Record::Event { .. }) {
            if self.rng.chance(0.03) {
                self.summary.duplicates += 1;
                let later = self.rng.between(0, 10) * MIN;
                self.hold(t + later, record.clone());
            }
            if self.rng.chance(0.05) {
                self.summary.out_of_order += 1;
                let later = self.rng.between(5, 30) * MIN;
                self.hold(t + later, record);
                return;
            }
        }
        out.push(record);
    }

    fn new_order(&mut self, now: u64, out: &mut Vec<Record>) {
        let n = self.orders.len() as u64;
        let gap = self.mean_gap_ns / 2 + self.rng.below(self.mean_gap_ns.max(1));
        self.schedule(now + gap, Action::NewOrder);
        let order = Order {
            customer: CUSTOMERS[self.rng.below(CUSTOMERS.len() as u64) as usize].into(),
            order_id: format!("SO-{}", 100_000 + n),
            work_order: format!("WO-{}", 500_000 + n),
            work_centre: WORK_CENTRES[self.rng.below(WORK_CENTRES.len() as u64) as usize].into(),
            delayed: false,
        };
        self.orders.push(order.clone());
        self.summary.orders += 1;
        out.push(Record::Span {
            service: "crm".into(),
            name: "crm.order.create".into(),
            start_ns: now,
            end_ns: now + 150_000_000,
            attributes: vec![
                ("customer.id".into(), order.customer.clone()),
                ("order.id".into(), order.order_id.clone()),
                ("crm.channel".into(), "portal".into()),
            ],
            error: None,
            order: n,
            root: true,
        });
        let lines = self.rng.between(1, 5);
        let e = self.crm_event(
            format!("crm-created-{n}"),
            "crm.order.created",
            now,
            &[
                ("orderid", json!(order.order_id)),
                ("customerid", json!(order.customer)),
            ],
            json!({"lines": lines}),
        );
        self.deliver_crm(now, e, n, out);
        let late = self.rng.chance(0.08);
        let entry = if late {
            self.rng.between(16, 45)
        } else {
            self.rng.between(2, 10)
        };
        self.schedule(now + entry * MIN, Action::ErpEntry(n));
    }

    fn erp_entry(&mut self, n: u64, now: u64, out: &mut Vec<Record>) {
        let o = self.orders[n as usize].clone();
        let service = self.erp_service(now);
        out.push(self.erp_span(
            service,
            "erp.sales_order.create",
            now,
            now + 800_000_000,
            &o,
            n,
        ));
        let e = event(
            format!("erp-so-{n}"),
            "urn:acme:erp",
            "erp.sales_order.created",
            now,
            &[
                ("system", json!("erp")),
                ("orderid", json!(o.order_id)),
                ("workorderid", json!(o.work_order)),
            ],
            json!({"plant": "1000", "erp": service}),
        );
        self.deliver_event(now, Mode::Binary, e, Some(n), out);
        let start = self.rng.between(30, 120);
        self.schedule(now + start * MIN, Action::MesStart(n));
    }

    fn mes_start(&mut self, n: u64, now: u64, out: &mut Vec<Record>) {
        let o = self.orders[n as usize].clone();
        let mut run = self.rng.between(120, 300) * MIN;
        if self.incidents.downtime && self.rng.chance(0.08) {
            self.summary.downtimes += 1;
            self.orders[n as usize].delayed = true;
            let at = now + self.rng.between(20, 60) * MIN;
            self.schedule(at, Action::Downtime(n));
            run += self.rng.between(180, 360) * MIN;
        }
        out.push(Record::Span {
            service: "mes".into(),
            name: "mes.work_order.run".into(),
            start_ns: now,
            end_ns: now + run,
            attributes: vec![
                ("work_order.id".into(), o.work_order.clone()),
                ("mes.work_centre".into(), o.work_centre.clone()),
            ],
            error: None,
            order: n,
            root: false,
        });
        self.schedule(now + run, Action::MesDone(n));
    }

    fn downtime(&mut self, n: u64, now: u64, out: &mut Vec<Record>) {
        let o = self.orders[n as usize].clone();
        let e = event(
            format!("mes-down-{n}"),
            "urn:plant1:mes",
            "mes.machine.downtime",
            now,
            &[("workorderid", json!(o.work_order))],
            json!({"machine": o.work_centre, "reason": "hydraulic failure"}),
        );
        self.deliver_event(now, Mode::Batch, e, None, out);
        let late = self.rng.chance(0.15);
        let resched = if late {
            self.rng.between(35, 90)
        } else {
            self.rng.between(5, 25)
        };
        self.schedule(now + resched * MIN, Action::Reschedule(n));
        if !self.rng.chance(0.2) {
            let alert = self.rng.between(20, 50);
            self.schedule(now + alert * MIN, Action::CustomerAlert(n));
        }
    }

    fn mes_done(&mut self, n: u64, now: u64, out: &mut Vec<Record>) {
        let o = self.orders[n as usize].clone();
        let e = event(
            format!("mes-done-{n}"),
            "urn:plant1:mes",
            "mes.work_order.completed",
            now,
            &[("workorderid", json!(o.work_order))],
            json!({"quantity": self.rng.between(50, 500), "work_centre": o.work_centre}),
        );
        self.deliver_event(now, Mode::Batch, e, None, out);
        if self.incidents.quality_hold && self.rng.chance(0.05) {
            self.summary.quality_holds += 1;
            let at = now + self.rng.between(5, 30) * MIN;
            self.schedule(at, Action::QualityHold(n));
        } else {
            let at = now + self.rng.between(30, 180) * MIN;
            self.schedule(at, Action::GoodsIssue(n));
        }
    }
}

#[cfg(test)]
mod tests;
