//! Text that is safe to show: URLs without their user info.
//!
//! A ClickHouse or webhook URL may carry credentials
//! (`http://user:password@host:8123`). Wherever such a URL is logged,
//! printed or put into an answer, it goes through [`url`] first; a message
//! that may quote one (a client library's error text) goes through
//! [`urls_in`].

/// `url` without its user info: `http://user:pass@host:8123/x` becomes
/// `http://host:8123/x`, and one written without a scheme
/// (`user:pass@host:8123`, a mistake a message may quote) `host:8123`.
pub fn url(url: &str) -> String {
    if url.contains("://") {
        return urls_in(url);
    }
    let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
    match url[..authority_end].rfind('@') {
        Some(at) => url[at + 1..].to_string(),
        None => url.to_string(),
    }
}

/// `text` with the user info of every `scheme://user:pass@host` in it taken
/// out.
pub fn urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The authority runs to the path, query or fragment, or to whatever
        // ends the URL in running text.
        let end = after
            .find(|c: char| {
                matches!(
                    c,
                    '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`' | ')' | ']' | '('
                ) || c.is_whitespace()
            })
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(user_end) => out.push_str(&authority[user_end + 1..]),
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_is_taken_out_and_the_rest_kept() {
        assert_eq!(url("http://user:pass@host:8123"), "http://host:8123");
        assert_eq!(
            url("https://u:p%40ss@ch.example:8443/?database=x"),
            "https://ch.example:8443/?database=x"
        );
        assert_eq!(url("http://only-user@host/a@b"), "http://host/a@b");
        assert_eq!(url("http://a:b@c@host"), "http://host");
        assert_eq!(url("http://127.0.0.1:8123"), "http://127.0.0.1:8123");
        assert_eq!(url("127.0.0.1:8123"), "127.0.0.1:8123");
        assert_eq!(url("user:pass@host:8123/x@y"), "host:8123/x@y");
        assert_eq!(url(""), "");
    }

    #[test]
    fn every_url_in_a_text_loses_its_user_info() {
        assert_eq!(
            urls_in("error sending request for url (http://ana:s3cret@10.0.0.5:8123/?query=SELECT%201): connection refused; see https://x:y@hooks.example/path"),
            "error sending request for url (http://10.0.0.5:8123/?query=SELECT%201): connection refused; see https://hooks.example/path"
        );
        assert_eq!(
            urls_in("mail ana@example.com, no scheme"),
            "mail ana@example.com, no scheme"
        );
        assert_eq!(urls_in("ends with http://"), "ends with http://");
        assert_eq!(urls_in("«http://ä:ö@hôst»"), "«http://hôst»");
    }
}
