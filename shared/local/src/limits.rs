//! The platform's own refusals, as the emulator answers them: API Gateway's 10 MB payload
//! limit, its 10 KB quota on the request line and headers, the paths it cannot decode, and
//! Lambda's 6 MB limit on the invocation's event. The platform refuses these before any
//! function runs; the emulator refuses at the same sizes and says so in Portico's error shape
//! (`{"code", "message"}`), so local runs fail where a deployment would.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::path::BadPath;
use crate::{MAX_HEAD_BYTES, MAX_INVOKE_REQUEST_BYTES, MAX_PAYLOAD_BYTES};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The path cannot be decoded as API Gateway decodes it (400).
    Path(BadPath),
    /// The event for the request, this many bytes of JSON, is over
    /// [`MAX_INVOKE_REQUEST_BYTES`] (413).
    Invocation(usize),
    /// The body is over [`MAX_PAYLOAD_BYTES`].
    Payload,
    /// The request line alone is over [`MAX_HEAD_BYTES`].
    Uri,
    /// The request line and headers are over [`MAX_HEAD_BYTES`].
    Headers,
    /// The request target holds bytes no URI may hold (raw non-ASCII, controls), which hyper
    /// would refuse with an empty body (400).
    Target,
}

impl Refusal {
    fn status(self) -> StatusCode {
        match self {
            Refusal::Path(_) | Refusal::Target => StatusCode::BAD_REQUEST,
            Refusal::Payload | Refusal::Invocation(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Uri => StatusCode::URI_TOO_LONG,
            Refusal::Headers => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        }
    }

    fn body(self) -> String {
        let (code, message) = match self {
            Refusal::Path(why) => ("invalid_path", why.message().to_owned()),
            Refusal::Target => {
                ("invalid_request", "the request target holds bytes a URI cannot (percent-encode them)".to_owned())
            }
            Refusal::Invocation(size) => (
                "payload_too_large",
                format!(
                    "the request is {size} bytes as the function's event (a binary body counts \
                     base64-encoded), over Lambda's {MAX_INVOKE_REQUEST_BYTES}-byte invocation payload"
                ),
            ),
            Refusal::Payload => ("payload_too_large", format!("the request body exceeds {MAX_PAYLOAD_BYTES} bytes")),
            Refusal::Uri => ("uri_too_long", format!("the request line exceeds {MAX_HEAD_BYTES} bytes")),
            Refusal::Headers => {
                ("headers_too_large", format!("the request line and headers exceed {MAX_HEAD_BYTES} bytes"))
            }
        };
        serde_json::json!({"code": code, "message": message}).to_string()
    }
}

/// The refusal as a response.
pub fn refusal(why: Refusal) -> http::Response<Bytes> {
    let mut r = http::Response::new(Bytes::from(why.body()));
    *r.status_mut() = why.status();
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}

/// The refusal of a parsed request whose head is over the quota.
pub fn head_refusal<B>(req: &http::Request<B>) -> Option<http::Response<Bytes>> {
    // "METHOD URI HTTP/1.1\r\n", then "name: value\r\n" per header.
    let line = req.method().as_str().len() + req.uri().to_string().len() + 11;
    let headers: usize = req.headers().iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    match () {
        _ if line > MAX_HEAD_BYTES => Some(refusal(Refusal::Uri)),
        _ if line + headers > MAX_HEAD_BYTES => Some(refusal(Refusal::Headers)),
        _ => None,
    }
}

/// The length of `value` as JSON, without writing it out.
pub fn json_size(value: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// The size of the invocation's response: `response` as lambda_http hands it to the runtime
/// for an HTTP API (payload 2.0) event.
pub fn response_size(response: &http::Response<lambda_http::Body>) -> usize {
    use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse;
    let mut headers = response.headers().clone();
    let cookies = headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    headers.remove(http::header::SET_COOKIE);
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(response.status().as_u16());
    out.headers = headers;
    out.cookies = cookies;
    (out.body, out.is_base64_encoded) = match response.body() {
        lambda_http::Body::Empty => (None, false),
        body => (Some(body.clone()), matches!(body, lambda_http::Body::Binary(_))),
    };
    json_size(&out)
}

/// Looks at a new connection's first request head before the HTTP server parses it: hyper
/// answers heads past its own limits (a URI over 64 KB, headers over its buffer) and request
/// targets it cannot parse with an empty body, so the emulator's refusal must come first.
pub async fn refused_head(stream: &TcpStream) -> Option<Refusal> {
    let mut buf = vec![0u8; MAX_HEAD_BYTES + 1];
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = match stream.peek(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => &buf[..n],
        };
        if seen.windows(4).any(|w| w == b"\r\n\r\n") {
            return bad_target(seen).then_some(Refusal::Target);
        }
        if seen.len() > MAX_HEAD_BYTES {
            let line_ends = seen.windows(2).any(|w| w == b"\r\n");
            return Some(if line_ends { Refusal::Headers } else { Refusal::Uri });
        }
        if Instant::now() > give_up {
            return None; // hyper's own header timeout handles a stalled client
        }
        // The head is still arriving: peek again shortly (peek returns at once while any
        // bytes are buffered).
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Whether the request line of `head` has a target that is not a URI.
fn bad_target(head: &[u8]) -> bool {
    let line = head.split(|&b| b == b'\r').next().unwrap_or(head);
    match line.split(|&b| b == b' ').nth(1) {
        Some(target) => http::Uri::try_from(target).is_err(),
        None => false, // not HTTP as hyper knows it: hyper answers
    }
}

/// Writes `why` on a connection hyper never saw, then closes it. What the client is still
/// sending is read and dropped for a moment first, so its socket sees the answer rather than
/// a reset.
pub async fn answer_raw(stream: &mut TcpStream, why: Refusal) {
    let body = why.body();
    let status = why.status();
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    drain(stream).await;
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
    drain(stream).await; // an orderly close: no reset while the client still writes
}

async fn drain(stream: &mut TcpStream) {
    let mut sink = vec![0u8; 64 * 1024];
    let _ = tokio::time::timeout(Duration::from_millis(150), async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}
