//! `POST /v1/plants/status`: an edge collector's report of its backlog, on
//! central. The only code that knows the report's JSON, both ways
//! ([`encode`] is the edge's side). An edge reports every
//! `forward_heartbeat` (10 s), also while its spool is empty, with its
//! forward token; central keeps the report with the time it heard it
//! (`Store::write_plant_report`), and a plant unheard for
//! `plant_link_timeout` shows its link down.
//!
//! ```json
//! {"plant": "hamburg", "backlog_bytes": 52428800, "backlog_records": 91000,
//!  "oldest_age_seconds": 3600.5}
//! ```
//!
//! Unknown fields are ignored (a newer edge may say more). With tokens
//! configured, only a token bound to a plant may report, and only its own
//! plant: a connector's token cannot move a plant's link state. A report is
//! not a record: it is not spooled, and one that cannot be stored is
//! answered 503 (the next one is due in seconds).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use domain::plant::PlantReport;
use serde::{Deserialize, Serialize};
use store::Store;

use super::{authorization, read_body, ReceiveError, ReceiverState};
use crate::auth::Access;

/// The path an edge posts its reports to.
pub const PATH: &str = "/v1/plants/status";

/// The largest report body accepted.
const MAX_BODY: usize = 4096;

/// A report as sent.
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    plant: String,
    backlog_bytes: u64,
    backlog_records: u64,
    oldest_age_seconds: f64,
}

/// What the edge sends: its plant and backlog, as JSON.
pub fn encode(
    plant: &str,
    backlog_bytes: u64,
    backlog_records: u64,
    oldest_age_ns: u64,
) -> Vec<u8> {
    serde_json::to_vec(&Wire {
        plant: plant.to_string(),
        backlog_bytes,
        backlog_records,
        oldest_age_seconds: oldest_age_ns as f64 / 1e9,
    })
    .expect("a report serializes")
}

/// Reads a report received at `received_ns`; the error says what is wrong.
pub fn decode(body: &[u8], received_ns: u64) -> Result<PlantReport, String> {
    let w: Wire = serde_json::from_slice(body).map_err(|e| {
        format!("not a plant status report ({e}); send {{\"plant\": \"...\", \"backlog_bytes\": N, \"backlog_records\": N, \"oldest_age_seconds\": S}}")
    })?;
    let plant = w.plant.trim();
    if plant.is_empty() || plant.len() > 256 {
        return Err("`plant` must name the plant, 1 to 256 bytes".into());
    }
    domain::text::check_printable(plant).map_err(|e| format!("`plant`: {e}"))?;
    if !w.oldest_age_seconds.is_finite() || w.oldest_age_seconds < 0.0 {
        return Err("`oldest_age_seconds` must be a number of seconds, 0 or more".into());
    }
    Ok(PlantReport {
        plant: plant.to_string(),
        received_ns,
        backlog_bytes: w.backlog_bytes,
        backlog_records: w.backlog_records,
        oldest_age_ns: (w.oldest_age_seconds * 1e9) as u64,
    })
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

async fn report(
    State((state, store)): State<(ReceiverState, Store)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let access = match state.auth.authenticate(authorization(&headers)).await {
        Ok(a) => a,
        Err(e) => return error(StatusCode::UNAUTHORIZED, e.to_string()),
    };
    let body: Bytes = match read_body(&headers, body, MAX_BODY).await {
        Ok(b) => b,
        Err(e @ ReceiveError::TooLarge { .. }) => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let report = match decode(&body, domain::now_ns()) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if let Access::Granted(g) = &access {
        match g.plant.as_deref() {
            Some(own) if own == report.plant => {}
            Some(own) => {
                return error(
                    StatusCode::FORBIDDEN,
                    format!(
                        "the token `{}` reports for plant `{own}` only, not `{}`",
                        g.name, report.plant
                    ),
                )
            }
            None => {
                return error(
                    StatusCode::FORBIDDEN,
                    format!(
                        "the token `{}` is bound to no plant; only an edge collector's token (with `plant`) reports a plant's status",
                        g.name
                    ),
                )
            }
        }
    }
    match store.write_plant_report(&report).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            tracing::warn!(plant = %report.plant, error = %e, "a plant status report could not be stored");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the report could not be stored; the next one will be",
            )
        }
    }
}

/// `POST /v1/plants/status`, on a collector that stores (central).
pub fn router(state: ReceiverState, store: Store) -> Router {
    Router::new()
        .route(PATH, post(report))
        .with_state((state, store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_comes_back_as_sent() {
        let body = encode("hamburg", 1000, 10, 2_500_000_000);
        let r = decode(&body, 7).unwrap();
        assert_eq!(
            (
                r.plant.as_str(),
                r.received_ns,
                r.backlog_bytes,
                r.backlog_records,
                r.oldest_age_ns
            ),
            ("hamburg", 7, 1000, 10, 2_500_000_000)
        );
    }

    #[test]
    fn a_bad_report_says_what_is_wrong() {
        assert!(decode(b"{}", 0)
            .unwrap_err()
            .contains("not a plant status report"));
        let no_plant =
            br#"{"plant":" ","backlog_bytes":0,"backlog_records":0,"oldest_age_seconds":0}"#;
        assert!(decode(no_plant, 0).unwrap_err().contains("`plant`"));
        let negative =
            br#"{"plant":"a","backlog_bytes":0,"backlog_records":0,"oldest_age_seconds":-1}"#;
        assert!(decode(negative, 0)
            .unwrap_err()
            .contains("oldest_age_seconds"));
    }
}
