//! The request path as API Gateway's HTTP API hands it to Lambda: `rawPath` (and
//! `requestContext.http.path`) is percent-*decoded*, and routes match the decoded path.
//!
//! What a deployment does, from live captures of payload 2.0 events (hotsock/voker,
//! `vokerhttp/testdata/ingress-paths.json`, July 2026):
//!
//! | sent | `rawPath` |
//! |------|-----------|
//! | `/a/space%20value` | `/a/space value` |
//! | `/a/slash%2Fvalue` | `/a/slash/value` (so routes see one more segment) |
//! | `/a/unicode-%CE%BB` | `/a/unicode-λ` |
//! | `/a/question%3Fvalue` | `/a/question` (cut at the decoded `?`) |
//! | `/a/hash%23value` | `/a/hash#value` |
//! | `/a/literal%252Fvalue` | `/a/literal/value` (decoded twice) |
//! | `/a/literal%253Fvalue` | `/a/literal?value` (the cut happens between the two) |
//! | `/a/literal%2525value` | `/a/literal%value` |
//! | `/a/percent%25done` | refused, 400 |
//!
//! So: one decoding, the path cut at the first `?`, a second decoding. The last two rows say
//! how a `%` that starts no escape fares: `%va` stays as it is, `%do` (a hex digit, then not)
//! refuses the request; that is the rule applied here to both passes. A path whose bytes are
//! not UTF-8 once decoded cannot be put in the event's JSON: refused too.

/// Why a path cannot become an event's `rawPath`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadPath {
    /// A `%` and one hex digit, then something else.
    Escape,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

impl BadPath {
    pub fn message(self) -> &'static str {
        match self {
            BadPath::Escape => "the path has a malformed percent-escape ('%' must be followed by two hex digits)",
            BadPath::NotUtf8 => "the path, percent-decoded, is not UTF-8",
        }
    }
}

/// The `rawPath` API Gateway sends for a request to `path` (as sent, percent-encoded).
pub fn raw_path(path: &str) -> Result<String, BadPath> {
    let once = decode(path.as_bytes())?;
    let cut = once.iter().position(|&b| b == b'?').unwrap_or(once.len());
    let twice = decode(&once[..cut])?;
    String::from_utf8(twice).map_err(|_| BadPath::NotUtf8)
}

/// One decoding pass.
fn decode(bytes: &[u8]) -> Result<Vec<u8>, BadPath> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                out.push(high << 4 | low);
                i += 3;
            }
            (b'%', Some(_), None) => return Err(BadPath::Escape),
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The captured cases, under `/capture/`.
    #[test]
    fn paths_decode_as_the_captured_deployment_decoded_them() {
        for (sent, want) in [
            ("/capture/plain", Ok("/capture/plain")),
            ("/capture/space%20value", Ok("/capture/space value")),
            ("/capture/question%3Fvalue", Ok("/capture/question")),
            ("/capture/percent%25done", Err(BadPath::Escape)),
            ("/capture/hash%23value", Ok("/capture/hash#value")),
            ("/capture/slash%2Fvalue", Ok("/capture/slash/value")),
            ("/capture/unicode-%CE%BB-%E4%B8%96%E7%95%8C", Ok("/capture/unicode-λ-世界")),
            ("/capture/literal%252Fvalue", Ok("/capture/literal/value")),
            ("/capture/literal%253Fvalue", Ok("/capture/literal?value")),
            ("/capture/literal%2525value", Ok("/capture/literal%value")),
        ] {
            assert_eq!(raw_path(sent).as_deref(), want.as_deref(), "{sent}");
        }
        assert_eq!(raw_path("/apps/usd%2Dvalidate").as_deref(), Ok("/apps/usd-validate"));
        assert_eq!(raw_path("/apps/%FF"), Err(BadPath::NotUtf8));
        assert_eq!(raw_path("/apps/%C3"), Err(BadPath::NotUtf8), "half a character");
        assert_eq!(raw_path("/apps/a%2"), Err(BadPath::Escape));
        assert_eq!(raw_path("/apps/100%").as_deref(), Ok("/apps/100%"));
    }
}
