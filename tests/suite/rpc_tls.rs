//! An `https://` upstream: TLS with rustls, verified against the system's roots plus the
//! upstream's `ca_file` (a facility's private CA). The test CA's key was deleted once the
//! fixtures were made (tests/fixtures/tls/README.md).

use std::sync::Arc;

use portico_core::config::RpcUpstream;
use portico_rpc::descriptors::Descriptors;
use portico_rpc::server;
use reqwest::StatusCode;
use serde_json::json;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::rpc::{gateway, post};

pub(crate) const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tls");

/// A TLS listener on 127.0.0.1 (certificate for `127.0.0.1`, signed by the test CA, ALPN h2)
/// in front of `plain`; returns its port. Stops with the test's runtime.
pub(crate) async fn tls_front(plain: std::net::SocketAddr) -> u16 {
    tls_front_speaking(plain, b"h2").await
}

/// As [`tls_front`], offering the application protocol `alpn` (`http/1.1` for an HTTPS/1.1
/// server).
pub(crate) async fn tls_front_speaking(plain: std::net::SocketAddr, alpn: &[u8]) -> u16 {
    use tokio_rustls::rustls;
    let certs = CertificateDer::pem_file_iter(format!("{FIXTURES}/server.pem")).unwrap().collect::<Result<Vec<_>, _>>();
    let key = PrivateKeyDer::from_pem_file(format!("{FIXTURES}/server-key.pem")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs.unwrap(), key)
        .unwrap();
    config.alpn_protocols = vec![alpn.to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else { return };
                let Ok(mut upstream) = tokio::net::TcpStream::connect(plain).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn an_https_upstream_is_verified_against_its_ca_file() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pool = Descriptors::opencue(&["*".into()]).pool().clone();
    let cuebot = server::serve(listener, pool, portico_rpc::demo::cuebot());
    let endpoint = format!("https://127.0.0.1:{}", tls_front(cuebot.addr).await);
    let upstream = |ca_file: Option<String>| {
        let endpoint = endpoint.clone();
        move |c: &mut portico_core::Config| {
            c.rpc_upstreams = vec![RpcUpstream { ca_file, ..RpcUpstream::new(endpoint) }];
        }
    };
    let find_show = r#"{"name": "testshow"}"#;

    let trusting = gateway(endpoint.clone(), upstream(Some(format!("{FIXTURES}/ca.pem")))).await;
    let (status, body, _) =
        post(&trusting, "/show.ShowInterface/FindShow", Some(&trusting.token("carol")), find_show).await;
    assert_eq!((status, &body["show"]["name"]), (StatusCode::OK, &json!("testshow")), "{body}");

    // Without the CA, the certificate is unknown: the upstream is unavailable, never trusted.
    let strict = gateway(endpoint.clone(), upstream(None)).await;
    let (status, body, _) =
        post(&strict, "/show.ShowInterface/FindShow", Some(&strict.token("carol")), find_show).await;
    assert_eq!((status, &body["code"]), (StatusCode::SERVICE_UNAVAILABLE, &json!(14)), "{body}");
}
