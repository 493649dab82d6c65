//! `GET /docs`: the API reference page, Redoc rendering `/openapi.json`, with Redoc's bundle
//! embedded in the binary (vendored from npm, see `shared/core/assets/redoc/README.md`), so
//! it works with no internet access and loads nothing from a CDN.

use http::{HeaderValue, StatusCode, header};

use crate::web::ApiResponse;

/// Redoc's version; the asset's URL carries it, so a long cache never serves an old bundle.
pub const VERSION: &str = "2.5.4";
/// The asset's name under `/docs/`.
pub const ASSET: &str = "redoc-2.5.4.standalone.js";

static REDOC: &str = include_str!("../../assets/redoc/redoc.standalone.js");

/// No inline script and nothing from elsewhere. Redoc's styled-components inject `<style>`
/// elements (hence `'unsafe-inline'` for styles only), and its search index runs in a Worker
/// made from a `blob:` URL (hence `worker-src blob:`).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; base-uri 'none'; \
form-action 'none'; frame-ancestors 'none'";

/// The page: Redoc finds the `<redoc spec-url>` element when its script loads (at the end of
/// the body) and renders the document it names; there is no script of the page's own.
fn html() -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>Portico API</title>\n</head>\n\
<body>\n<redoc spec-url=\"/openapi.json\"></redoc>\n<script src=\"/docs/{ASSET}\"></script>\n</body>\n</html>\n"
    )
}

fn text(content_type: &'static str, body: String, cache: &'static str) -> ApiResponse {
    let mut r = http::Response::new(body);
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

/// `GET /docs`.
pub fn page() -> ApiResponse {
    let mut r = text("text/html; charset=utf-8", html(), "no-cache");
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}

/// `GET /docs/{name}`: the bundle, cached for a year (its name changes with its version).
pub fn asset(name: &str) -> Option<ApiResponse> {
    (name == ASSET)
        .then(|| text("text/javascript; charset=utf-8", REDOC.to_owned(), "public, max-age=31536000, immutable"))
}

/// `GET /openapi.json`: `document` as built by the caller.
pub fn document(document: &str) -> ApiResponse {
    let mut r = text("application/json", document.to_owned(), "no-cache");
    *r.status_mut() = StatusCode::OK;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_no_inline_script_and_a_strict_policy() {
        let r = page();
        let body = r.body();
        assert_eq!(body.matches("<script").count(), 1);
        assert!(body.contains(&format!("<script src=\"/docs/{ASSET}\"></script>")));
        assert!(!body.contains("http"), "nothing from elsewhere");
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self';") && csp.starts_with("default-src 'none'"));
        assert!(ASSET.contains(VERSION));
    }

    #[test]
    fn the_asset_is_the_vendored_bundle() {
        let r = asset(ASSET).unwrap();
        assert!(r.body().len() > 1_000_000 && r.body().contains("Redoc"));
        assert!(r.headers()[header::CACHE_CONTROL].to_str().unwrap().contains("immutable"));
        assert!(asset("redoc.js").is_none());
    }
}
