//! A stand-in for the S3 bucket of job outputs: presigned-style links (`?expires=`) to a zip
//! per workflow, served on 127.0.0.1 without any token, as S3 serves a presigned GET. The
//! zip is real (stored entries, CRC-32), so `ogdc-runner get-output` downloads and keeps it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use portico_core::Error;
use portico_core::store::now_epoch;
use portico_jobs::output::{ArtifactLocation, OutputLinks};

/// The bucket name the demo engine reports for outputs.
pub const DEMO_BUCKET: &str = "demo-outputs";

/// A running demo store; dropping it stops it.
pub struct DemoStore {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DemoStore {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DemoStore {
    pub async fn start() -> std::io::Result<DemoStore> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                        Ok::<_, Infallible>(answer(req.uri()))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(DemoStore { addr, task })
    }

    /// Links to this store's objects.
    pub fn links(&self) -> Arc<dyn OutputLinks> {
        Arc::new(DemoLinks { base: format!("http://{}", self.addr) })
    }
}

struct DemoLinks {
    base: String,
}

#[async_trait::async_trait]
impl OutputLinks for DemoLinks {
    async fn link(&self, at: &ArtifactLocation, ttl: Duration) -> Result<String, Error> {
        Ok(format!("{}/{}/{}?expires={}", self.base, at.bucket, at.key, now_epoch() + ttl.as_secs() as i64))
    }
}

fn answer(uri: &http::Uri) -> http::Response<Full<Bytes>> {
    let expires = uri.query().and_then(|q| q.strip_prefix("expires=")).and_then(|e| e.parse::<i64>().ok());
    let path = uri.path().trim_start_matches('/');
    let refuse = |status: u16, why: &str| {
        let mut r = http::Response::new(Full::new(Bytes::from(why.to_owned())));
        *r.status_mut() = http::StatusCode::from_u16(status).expect("a status");
        r
    };
    if expires.is_none_or(|e| e < now_epoch()) {
        return refuse(403, "the link has expired");
    }
    let Some(key) = path.strip_prefix(&format!("{DEMO_BUCKET}/")).filter(|k| k.ends_with("/output.zip")) else {
        return refuse(404, "no such object");
    };
    let workflow = key.trim_end_matches("/output.zip");
    let readme = format!("Output of workflow {workflow}, made by Portico's demo workflow engine.\n");
    let mut r = http::Response::new(Full::new(Bytes::from(zip_of("README.txt", readme.as_bytes()))));
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/zip"));
    r
}

/// A zip archive holding one stored (uncompressed) file.
fn zip_of(name: &str, content: &[u8]) -> Vec<u8> {
    let mut crc = flate2::Crc::new();
    crc.update(content);
    let (crc, size, name_len) = (crc.sum(), content.len() as u32, name.len() as u16);
    let mut out = Vec::new();
    let common = |out: &mut Vec<u8>| {
        out.extend_from_slice(&20u16.to_le_bytes()); // version needed
        out.extend_from_slice(&0u16.to_le_bytes()); // flags
        out.extend_from_slice(&0u16.to_le_bytes()); // stored
        out.extend_from_slice(&0u16.to_le_bytes()); // time
        out.extend_from_slice(&0x5a21u16.to_le_bytes()); // date: 2025-01-01
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // extra length
    };
    out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    common(&mut out);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(content);
    let central = out.len() as u32;
    out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    out.extend_from_slice(&20u16.to_le_bytes()); // version made by
    common(&mut out);
    out.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
    out.extend_from_slice(&0u32.to_le_bytes()); // external attributes
    out.extend_from_slice(&0u32.to_le_bytes()); // local header offset
    out.extend_from_slice(name.as_bytes());
    let central_size = out.len() as u32 - central;
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // disk numbers
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&central_size.to_le_bytes());
    out.extend_from_slice(&central.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
    out
}
