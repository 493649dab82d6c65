//! What keeps the console's pages safe: the session cookie, CSRF tokens, same-origin checks
//! on every form post, and the security headers of every answer.

use aws_lc_rs::{constant_time, digest, rand};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderValue, Method, StatusCode, header};
use portico_core::web::{ApiRequest, ApiResponse};

/// The cookie holding the signed-in user's token (only ever sent to `/console`).
pub const SESSION_COOKIE: &str = "portico_console";
/// A short-lived cookie binding a sign-in form (or an OIDC round trip) to this browser.
pub const PRE_COOKIE: &str = "portico_console_pre";
/// Where the console lives.
pub const BASE: &str = "/console";

/// The value of cookie `name` in `req`, if sent.
pub fn cookie<'r>(req: &'r ApiRequest, name: &str) -> Option<&'r str> {
    portico_core::web::cookie(req.headers(), name)
}

/// A `Set-Cookie` value: `HttpOnly; Secure; SameSite=Lax`, scoped to the console.
pub fn set_cookie(name: &str, value: &str, max_age: i64) -> String {
    format!("{name}={value}; Path={BASE}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax")
}

/// A `Set-Cookie` value that removes cookie `name`.
pub fn clear_cookie(name: &str) -> String {
    set_cookie(name, "", 0)
}

/// The CSRF token of a session: derived from the session's secret token, so a page of another
/// origin, which can neither read the cookie nor this page, cannot produce it.
pub fn csrf_token(secret: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"portico-console-csrf\0");
    ctx.update(secret.as_bytes());
    URL_SAFE_NO_PAD.encode(&ctx.finish().as_ref()[..24])
}

/// A fresh random value for a one-off cookie (sign-in form, OIDC state and nonce) or a PKCE
/// verifier: 32 bytes, 43 characters of base64url, the shortest verifier RFC 7636 §4.1 allows
/// (43 to 128 unreserved characters; a real provider refuses 42).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes).expect("the system's random source");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `sent` equals `expected`, in constant time.
pub fn same_secret(sent: &str, expected: &str) -> bool {
    constant_time::verify_slices_are_equal(sent.as_bytes(), expected.as_bytes()).is_ok()
}

/// Whether a state-changing request comes from the console's own pages: browsers say where a
/// request comes from (`Sec-Fetch-Site`, `Origin`); a cross-site or cross-origin post is
/// refused before its CSRF token is even looked at.
pub fn same_origin(req: &ApiRequest) -> bool {
    let site = req.headers().get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if matches!(site, Some("cross-site" | "same-site")) {
        return false;
    }
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true; // Not a browser's cross-origin post (those carry Origin); the token decides.
    };
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    origin.split_once("://").is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

/// Whether `req` changes state (and so needs a CSRF token).
pub fn is_unsafe(req: &ApiRequest) -> bool {
    !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The value of query parameter `name` in `req` (the first one sent), if any. Lenient on
/// purpose, unlike `web::Query`: a page ignores parameters it does not know.
pub fn query_param(req: &ApiRequest, name: &str) -> Option<String> {
    let q = req.uri().query().unwrap_or("");
    form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The form fields of a urlencoded body (later duplicates win).
pub fn form(req: &ApiRequest) -> Vec<(String, String)> {
    form_urlencoded::parse(req.body()).into_owned().collect()
}

/// Percent-encodes one path segment, so a value never changes the path's shape.
pub fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string from `pairs` (empty values left out), with its `?`, or nothing.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        s.append_pair(k, v);
    }
    let q = s.finish();
    if q.is_empty() { q } else { format!("?{q}") }
}

/// `303 See Other` to `location` (a console path or a configured URL: never a URL a request
/// supplied).
pub fn redirect(location: &str) -> ApiResponse {
    let mut r = portico_core::web::empty(StatusCode::SEE_OTHER);
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Where to go after signing in, from the request's `then`: see [`safe_return`].
pub fn return_path(req: &ApiRequest) -> String {
    safe_return(query_param(req, "then").as_deref())
}

/// Where to go after signing in: only a path inside the console, else the catalog.
pub fn safe_return(then: Option<&str>) -> String {
    match then {
        Some(p)
            if p.starts_with("/console")
                && !p.contains("//")
                && !p.contains('\\')
                && p.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            p.to_owned()
        }
        _ => format!("{BASE}/apps"),
    }
}

/// Adds the headers every console answer carries: a strict CSP without inline script, no
/// sniffing, no framing, no referrer leaving the origin, and no caching of pages (they show
/// private data).
pub fn secure(mut r: ApiResponse, relay_origin: &str) -> ApiResponse {
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; \
         connect-src 'self' {relay_origin}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// The origin (`ws://host:port`) of the relay's URL, for the CSP's `connect-src`.
pub fn origin_of(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return String::new() };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || !authority.bytes().all(|b| b.is_ascii_graphic() && b != b';' && b != b',') {
        return String::new();
    }
    format!("{scheme}://{authority}")
}

/// Decodes a path segment: links percent-encode names, and the router does not decode.
pub fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A name as a path segment of both the console and the API: the API does not decode paths,
/// so `@` (legal in a path and in usernames) stays as it is.
pub fn name_segment(name: &str) -> String {
    segment(name).replace("%40", "@")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> ApiRequest {
        let mut b = http::Request::builder().method(Method::POST).uri("/console/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(bytes::Bytes::new()).unwrap()
    }

    #[test]
    fn cross_origin_posts_are_told_apart_from_the_consoles_own() {
        assert!(same_origin(&req(&[("host", "127.0.0.1:8000"), ("origin", "http://127.0.0.1:8000")])));
        assert!(!same_origin(&req(&[("host", "127.0.0.1:8000"), ("origin", "http://127.0.0.1:9999")])));
        assert!(!same_origin(&req(&[("host", "a.example"), ("origin", "null")])));
        assert!(!same_origin(&req(&[("host", "a.example"), ("sec-fetch-site", "cross-site")])));
        assert!(same_origin(&req(&[("host", "a.example"), ("sec-fetch-site", "same-origin")])));
    }

    #[test]
    fn only_console_paths_are_returned_to() {
        assert_eq!(safe_return(Some("/console/jobs?x=1")), "/console/jobs?x=1");
        for evil in ["https://evil.example", "//evil.example", "/console//evil", "/console\\x", "/apps"] {
            assert_eq!(safe_return(Some(evil)), "/console/apps", "{evil}");
        }
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_match_only_their_own() {
        let (a, b) = (csrf_token("token-a"), csrf_token("token-b"));
        assert_ne!(a, b);
        assert!(same_secret(&a, &csrf_token("token-a")));
        assert!(!same_secret(&a, &b));
    }

    #[test]
    fn segments_cannot_change_the_path() {
        assert_eq!(segment("a/../b?c"), "a%2F..%2Fb%3Fc");
    }
}
