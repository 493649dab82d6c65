//! The console's own stylesheet and script, embedded, served under names that carry a digest
//! of their content, so they may be cached for a year and still change with each release.

use std::sync::LazyLock;

use aws_lc_rs::digest;
use http::{HeaderValue, StatusCode, header};
use portico_core::web::ApiResponse;

/// One embedded file.
pub struct Asset {
    /// The path it is served at: `/console/assets/<stem>.<digest>.<ext>`.
    pub path: String,
    content_type: &'static str,
    body: &'static str,
}

fn asset(stem: &str, ext: &str, content_type: &'static str, body: &'static str) -> Asset {
    let hash = digest::digest(&digest::SHA256, body.as_bytes());
    let hex: String = hash.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect();
    Asset { path: format!("{}/assets/{stem}.{hex}.{ext}", crate::guard::BASE), content_type, body }
}

pub static CSS: LazyLock<Asset> =
    LazyLock::new(|| asset("console", "css", "text/css; charset=utf-8", include_str!("../assets/console.css")));
pub static JS: LazyLock<Asset> =
    LazyLock::new(|| asset("console", "js", "text/javascript; charset=utf-8", include_str!("../assets/console.js")));

/// The asset served at `path`, with a year-long immutable cache lifetime.
pub fn serve(path: &str) -> Option<ApiResponse> {
    let asset = [&*CSS, &*JS].into_iter().find(|a| a.path == path)?;
    let mut r = http::Response::new(asset.body.to_owned());
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    Some(r)
}
