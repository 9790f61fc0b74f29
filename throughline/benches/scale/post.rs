//! Loads that post to `up`: bodies sent by concurrent clients as fast as
//! they are taken (`load`) or paced at a rate (`paced`), with backpressure
//! (429, 503) waited out and what was refused or failed counted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::up::Up;

/// What a load's requests came to.
#[derive(Default)]
pub struct Posted {
    pub latencies: Vec<Duration>,
    pub records: u64,
    pub refused: u64,
    /// Sent again after a connection error (a record stored twice is
    /// stored once: spans by their ids, events by source and id).
    pub retried: u64,
    pub failed: u64,
    pub first_error: Option<String>,
}

impl Posted {
    pub fn add(&mut self, other: Posted) {
        self.latencies.extend(other.latencies);
        self.records += other.records;
        self.refused += other.refused;
        self.retried += other.retried;
        self.failed += other.failed;
        self.first_error = self.first_error.take().or(other.first_error);
    }
}

/// Where a load posts, and how.
#[derive(Clone)]
struct Endpoint {
    client: reqwest::Client,
    url: String,
    content_type: &'static str,
    authorization: String,
}

impl Endpoint {
    fn new(up: &Up, path: &str, content_type: &'static str, timeout: Duration) -> Endpoint {
        Endpoint {
            client: reqwest::Client::builder().timeout(timeout).build().unwrap(),
            url: format!("{}{path}", up.http),
            content_type,
            authorization: up.authorization.clone(),
        }
    }

    /// Posts one body until it is accepted (a 429 or 503 is backpressure: wait
    /// and send it again; a connection error is tried three times) or refused
    /// otherwise.
    async fn post(&self, body: Vec<u8>, records: u64, posted: &mut Posted, deadline: Instant) {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let t = Instant::now();
            let sent = self
                .client
                .post(&self.url)
                .header("content-type", self.content_type)
                .header("authorization", &self.authorization)
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    posted.latencies.push(t.elapsed());
                    posted.records += records;
                    return;
                }
                Ok(r) if (r.status() == 429 || r.status() == 503) && Instant::now() < deadline => {
                    posted.refused += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(r) => {
                    let status = r.status();
                    let text = plain(&r.text().await.unwrap_or_default());
                    posted.failed += 1;
                    posted
                        .first_error
                        .get_or_insert_with(|| format!("{status}: {text}"));
                    return;
                }
                Err(e) if !e.is_timeout() && attempts < 3 && Instant::now() < deadline => {
                    posted.retried += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    posted.failed += 1;
                    posted
                        .first_error
                        .get_or_insert_with(|| format!("{e}: {:?}", std::error::Error::source(&e)));
                    return;
                }
            }
        }
    }
}

/// `requests` bodies from `body(n)` posted by `clients` concurrent clients,
/// until done or `deadline`.
pub async fn load(
    up: &Up,
    path: &str,
    content_type: &'static str,
    requests: usize,
    clients: usize,
    deadline: Instant,
    body: Arc<dyn Fn(usize) -> (Vec<u8>, u64) + Send + Sync>,
) -> Posted {
    let endpoint = Endpoint::new(up, path, content_type, Duration::from_secs(120));
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (endpoint, body) = (endpoint.clone(), body.clone());
            tokio::spawn(async move {
                let mut posted = Posted::default();
                for n in (c..requests).step_by(clients) {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let (bytes, records) = body(n);
                    endpoint.post(bytes, records, &mut posted, deadline).await;
                }
                posted
            })
        })
        .collect();
    let mut all = Posted::default();
    for t in tasks {
        all.add(t.await.unwrap());
    }
    all
}

/// Live load: `per_second` records a second in requests of `batch`, paced;
/// `body(n)` makes request `n`. Runs until `stop`.
pub fn paced(
    up: &Up,
    path: &'static str,
    content_type: &'static str,
    per_second: u64,
    batch: u64,
    stop: Arc<AtomicBool>,
    body: impl Fn(u64) -> Vec<u8> + Send + Sync + 'static,
) -> tokio::task::JoinHandle<Posted> {
    let endpoint = Endpoint::new(up, path, content_type, Duration::from_secs(60));
    let every = Duration::from_secs_f64(batch as f64 / per_second.max(1) as f64);
    tokio::spawn(async move {
        let in_flight = Arc::new(tokio::sync::Semaphore::new(8));
        let posted = Arc::new(Mutex::new(Posted::default()));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let Ok(slot) = in_flight.clone().acquire_owned().await else {
                break;
            };
            let (endpoint, posted) = (endpoint.clone(), posted.clone());
            let bytes = body(n);
            n += 1;
            tokio::spawn(async move {
                let mut one = Posted::default();
                let deadline = Instant::now() + Duration::from_secs(30);
                endpoint.post(bytes, batch, &mut one, deadline).await;
                posted.lock().unwrap().add(one);
                drop(slot);
            });
        }
        // Wait for what is in flight.
        let _ = in_flight.acquire_many(8).await;
        let all = std::mem::take(&mut *posted.lock().unwrap());
        all
    })
}

/// An answer's text for a note: tags out, one line, at most 300 characters.
pub fn plain(body: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(300).collect()
}
