//! The reads of issue 16 that phase 3 samples under live load: what each
//! asks for, the bound on its p95, and a timed GET.

use std::time::{Duration, Instant};

use crate::plant::{self, Shape};
use crate::post::plain;

/// splitmix64: which order, customer or trace a read asks for.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n.max(1)
    }
}

/// The address a read asks for, from the sample's number.
pub type PathFn = Box<dyn Fn(&mut Rng, u64) -> String>;

/// One read of phase 3: what it asks, and the bound on its p95.
pub struct Read {
    pub name: String,
    pub target_ms: f64,
    pub target: &'static str,
    pub path: PathFn,
    pub times: Vec<Duration>,
    pub bytes: Vec<usize>,
    pub failed: u64,
    pub first_error: Option<String>,
}

/// The reads of phase 3, each with no sample yet.
pub fn reads(shape: Shape) -> Vec<Read> {
    let read = |name: &str, target_ms, target, path: PathFn| Read {
        name: name.into(),
        target_ms,
        target,
        path,
        times: Vec::new(),
        bytes: Vec::new(),
        failed: 0,
        first_error: None,
    };
    let orders = shape.orders;
    let customers = shape.customers;
    let mut out = vec![
        read(
            "trace by id `/api/v1/traces/{id}`",
            50.0,
            "p95 < 50 ms",
            Box::new(move |rng, _| {
                format!(
                    "/api/v1/traces/{}",
                    hex::encode(plant::trace_id(rng.below(orders)))
                )
            }),
        ),
        read(
            "an order's key API",
            50.0,
            "p95 < 50 ms",
            Box::new(move |rng, _| {
                format!("/api/v1/keys/order/{}", plant::order_id(rng.below(orders)))
            }),
        ),
        read(
            "a work order's key API",
            50.0,
            "p95 < 50 ms",
            Box::new(move |rng, _| {
                let n = 1 + rng.below(2) as u8;
                format!(
                    "/api/v1/keys/work_order/{}",
                    plant::work_order_id(rng.below(orders), n)
                )
            }),
        ),
        read(
            "a customer's key API (100 orders), first page",
            150.0,
            "p95 < 150 ms",
            Box::new(move |rng, _| format!("/api/v1/keys/customer/C-{}", rng.below(customers))),
        ),
        read(
            "search `/api/v1/search?q=` an order id",
            300.0,
            "p95 < 300 ms",
            Box::new(move |rng, _| {
                format!("/api/v1/search?q={}", plant::order_id(rng.below(orders)))
            }),
        ),
    ];
    let pages = [
        ("overview", "/"),
        ("systems", "/systems"),
        ("process", "/processes/order-to-delivery"),
        ("breaches", "/breaches"),
    ];
    for (range, secs) in [("24 h", 86_400u64), ("7 d", 7 * 86_400)] {
        for (p, (page, path)) in pages.into_iter().enumerate() {
            // Each sample its own range, distinct across pages too: the end
            // a second further back per sample and page.
            out.push(read(
                &format!("{page} page `{path}`, {range}, a range not cached"),
                300.0,
                "p95 < 300 ms",
                Box::new(move |_, sample| {
                    let shift = 1 + sample * 8 + p as u64 + if secs > 86_400 { 4 } else { 0 };
                    let sep = if path.contains('?') { '&' } else { '?' };
                    format!("{path}{sep}from=now-{}s&to=now-{shift}s", secs + shift)
                }),
            ));
        }
    }
    out
}

/// GET `url`: how long the whole answer took and its bytes, or what
/// went wrong.
pub async fn timed(client: &reqwest::Client, url: &str) -> Result<(Duration, usize), String> {
    let t = Instant::now();
    let r = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = r.status();
    let body = r.bytes().await.map_err(|e| e.to_string())?;
    let took = t.elapsed();
    if status.is_success() || status.is_redirection() {
        Ok((took, body.len()))
    } else {
        Err(format!(
            "{status}: {}",
            plain(&String::from_utf8_lossy(&body))
        ))
    }
}
