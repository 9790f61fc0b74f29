//! Opaque paging cursors: a position serialized as JSON, then base64url.

use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::AppError;

pub fn encode<T: Serialize>(position: &T) -> String {
    let json = serde_json::to_vec(position).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// A cursor given as `cursor`, handed out as `next_cursor`.
pub fn decode<T: DeserializeOwned>(text: &str) -> Result<T, AppError> {
    decode_param(text, "cursor", "next_cursor")
}

/// A cursor given in the parameter `param`, handed out in the answer's
/// field `next`.
pub fn decode_param<T: DeserializeOwned>(
    text: &str,
    param: &str,
    next: &str,
) -> Result<T, AppError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "`{param}` is not one this API gave out; pass {next} from the previous page unchanged"
            ))
        })
}
