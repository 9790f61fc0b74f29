//! Unit tests of the connection limits: caps, deadlines, the HTTP/2 preface.

use super::watch::{ConnState, Reason, Watched, H2_PREFACE};
use super::*;

#[test]
fn caps_leave_half_the_open_files_to_the_store() {
    let share = |configured, listeners, open_files| share(configured, listeners, open_files);
    // Plenty of files: the default, or what is configured.
    assert_eq!(share(None, 3, Some(65536)).per_listener, 512);
    assert_eq!(share(Some(2000), 3, Some(65536)).per_listener, 2000);
    assert!(!share(Some(2000), 3, Some(65536)).lowered);
    // The case: 300 open files, three listeners.
    assert_eq!(share(None, 3, Some(300)).per_listener, 50);
    assert!(!share(None, 3, Some(300)).lowered);
    // A configured cap beyond half the limit is lowered, and says so.
    let lowered = share(Some(512), 3, Some(1024));
    assert_eq!(lowered.per_listener, 170);
    assert!(lowered.lowered);
    // One listener gets all of the half.
    assert_eq!(share(None, 1, Some(1024)).per_listener, 512);
    assert_eq!(share(None, 1, Some(600)).per_listener, 300);
    // Unlimited: as configured.
    assert_eq!(share(None, 3, None).per_listener, 512);
    assert_eq!(share(Some(0), 3, Some(4)).per_listener, 1);
}

fn limits() -> ConnectionLimits {
    ConnectionLimits {
        header_read_timeout: Duration::from_secs(10),
        body_read_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(60),
        max_connections: None,
    }
}

/// `deadline` is `expected` (to the millisecond the state keeps) and
/// for `reason`.
fn assert_deadline(state: &ConnState, expected: Instant, reason: Reason) {
    let (at, why) = state.deadline(&limits()).expect("a deadline");
    assert_eq!(why, reason);
    let off = if at > expected {
        at - expected
    } else {
        expected - at
    };
    assert!(off < Duration::from_millis(50), "{at:?} vs {expected:?}");
}

#[test]
fn deadlines_follow_the_requests() {
    let limits = limits();
    let state = ConnState::new();
    let start = state.accepted;
    // A new connection: the head must come within the header timeout.
    assert_deadline(
        &state,
        start + limits.header_read_timeout,
        Reason::HeaderTimeout,
    );
    // Bytes arriving change nothing for the first request.
    state.bytes_read();
    assert_deadline(
        &state,
        start + limits.header_read_timeout,
        Reason::HeaderTimeout,
    );
    // No deadline while a request is in flight.
    state.request_started();
    assert_eq!(state.deadline(&limits), None);
    std::thread::sleep(Duration::from_millis(100));
    state.request_ended();
    let ended = Instant::now();
    assert_deadline(&state, ended + limits.idle_timeout, Reason::IdleTimeout);
    // The next request's first byte starts the header timeout.
    std::thread::sleep(Duration::from_millis(100));
    let first_byte = Instant::now();
    state.bytes_read();
    assert_deadline(
        &state,
        first_byte + limits.header_read_timeout,
        Reason::HeaderTimeout,
    );
    // HTTP/2: only the idle timeout.
    state.h2.store(true, Ordering::Relaxed);
    assert_deadline(&state, ended + limits.idle_timeout, Reason::IdleTimeout);
}

#[test]
fn the_http2_preface_is_recognised_in_pieces() {
    let watched = |chunks: &[&[u8]]| {
        let mut w = Watched {
            io: (),
            state: Arc::new(ConnState::new()),
            preface: Some(0),
        };
        for chunk in chunks {
            w.sniff(chunk);
        }
        w.state.h2.load(Ordering::Relaxed)
    };
    assert!(watched(&[H2_PREFACE]));
    assert!(watched(&[b"PRI * HT", b"TP/2.0\r\n\r\nSM\r\n\r\n\0\0"]));
    assert!(!watched(&[b"POST /v1/traces HTTP/1.1\r\n"]));
    assert!(!watched(&[b"PRI * HTTP/1.1\r\n"]));
}
