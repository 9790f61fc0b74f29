//! Every address the console hands out, built here and nowhere else, with
//! each user value percent-encoded. Pages add the time range through
//! `web::Chrome` (`keep_range`, `href`).

/// `text` percent-encoded for a path segment or a query value (RFC 3986
/// unreserved characters kept).
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The process page.
pub fn process(id: &str) -> String {
    format!("/processes/{}", urlencode(id))
}

/// A business key's journey page.
pub fn key(key_type: &str, value: &str) -> String {
    format!("/keys/{}/{}", urlencode(key_type), urlencode(value))
}

/// A business key in the API.
pub fn key_api(key_type: &str, value: &str) -> String {
    format!("/api/v1/keys/{}/{}", urlencode(key_type), urlencode(value))
}

/// A trace page, by its hex id.
pub fn trace(hex_id: &str) -> String {
    format!("/traces/{}", urlencode(hex_id))
}

/// A trace in the API, by its hex id.
pub fn trace_api(hex_id: &str) -> String {
    format!("/api/v1/traces/{}", urlencode(hex_id))
}

/// An alert rule's page.
pub fn alert(id: &str) -> String {
    format!("/alerts/{}", urlencode(id))
}

/// The API's instances of `process` with root key value `root`.
pub fn instance_api(process: &str, root: &str) -> String {
    format!(
        "/api/v1/processes/{}/instances?key={}",
        urlencode(process),
        urlencode(root)
    )
}

/// The API's events of one type.
pub fn events_api(event_type: &str) -> String {
    format!("/api/v1/events?type={}", urlencode(event_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_values_are_encoded() {
        assert_eq!(key("order", "SO 1/2"), "/keys/order/SO%201%2F2");
        assert_eq!(
            instance_api("o2d", "a&b"),
            "/api/v1/processes/o2d/instances?key=a%26b"
        );
        assert_eq!(process("o2d"), "/processes/o2d");
    }
}
