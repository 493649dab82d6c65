//! How Portico reaches the desktops' cluster: over HTTPS trusting the cluster's CA alone
//! (`desktops_cluster_ca`), and signed in to EKS as its own role (`desktops_eks_cluster`: a
//! token from a presigned STS `GetCallerIdentity`, reused while fresh).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use portico_core::store::Table;
use portico_core::store::memory::MemoryTable;
use portico_tests::{TestApi, test_config};
use reqwest::Method;
use serde_json::json;

use crate::desktops::{environment, send, setup, usage};
use crate::rpc_tls::{FIXTURES, tls_front_speaking};

async fn with_environment(api: &TestApi) -> String {
    let (admin, carol, _) = setup(api).await;
    let (status, answer) =
        send(api, Method::PUT, "/environments/xfce", Some(&admin), Some(environment("beamline-1"))).await;
    assert_eq!(status, 201, "{answer}");
    carol
}

#[tokio::test]
async fn an_https_cluster_is_trusted_by_its_ca_alone() {
    let mut config = test_config();
    let (cluster, running) = portico_local::demo_cluster::serve(&mut config).await.unwrap();
    let port = tls_front_speaking(running.addr, b"http/1.1").await;
    config.desktops_cluster_url = Some(format!("https://127.0.0.1:{port}/demo-cluster"));
    let start = json!({"environment": "xfce"});

    // The CA as EKS gives it (base64 of the PEM).
    let pem = std::fs::read_to_string(format!("{FIXTURES}/ca.pem")).unwrap();
    let trusting = portico_core::Config {
        desktops_cluster_ca: Some(base64::engine::general_purpose::STANDARD.encode(&pem)),
        ..config.clone()
    };
    let table: Arc<dyn Table> = Arc::new(MemoryTable::new());
    let api = TestApi::start(table, trusting).await;
    let carol = with_environment(&api).await;
    let (status, started) = send(&api, Method::POST, "/desktops", Some(&carol), Some(start.clone())).await;
    assert_eq!(status, 201, "{started}");
    assert_eq!(cluster.names("Pod").len(), 1);

    // Without it, the cluster's certificate is unknown: 503, nothing held, nothing sent.
    let api = TestApi::start(Arc::new(MemoryTable::new()), config).await;
    let carol = with_environment(&api).await;
    let (status, refused) = send(&api, Method::POST, "/desktops", Some(&carol), Some(start)).await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(usage(&api, &carol).await, 0);
    assert_eq!(cluster.names("Pod").len(), 1);
}

#[tokio::test]
async fn on_eks_portico_signs_in_as_its_role_with_a_reused_token() {
    let mut config = test_config();
    let (cluster, _running) = portico_local::demo_cluster::serve(&mut config).await.unwrap();
    *cluster.ready_after.lock().unwrap() = Duration::from_millis(100);
    config.desktops_eks_cluster = Some("facility-desktops".into());
    config.desktops_cluster_token_secret_id = Some("not-used-on-eks".into());
    let credentials = aws_credential_types::Credentials::from_keys("AKIDPORTICOROLE", "role-secret-key-EXAMPLE", None);
    let aws = aws_config::SdkConfig::builder()
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(credentials))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let api = TestApi::start_tuned(Arc::new(MemoryTable::new()), config, |platform| {
        let services = &platform.services;
        let url = services.config.desktops_cluster_url.clone().unwrap();
        let api = portico_desktops::cluster::KubeApi::new(
            &services.config,
            url,
            services.secrets.clone(),
            services.http.clone(),
            Some(&aws),
        );
        platform.desktops.cluster = Some(Arc::new(api));
    })
    .await;
    let carol = with_environment(&api).await;
    let (status, started) =
        send(&api, Method::POST, "/desktops", Some(&carol), Some(json!({"environment": "xfce"}))).await;
    assert_eq!(status, 201, "{started}");
    let id = started["id"].as_str().unwrap();
    crate::desktops::until(&api, &carol, id, "ready").await;

    let seen = cluster.authorizations.lock().unwrap().clone();
    assert!(seen.len() >= 4, "{seen:?}");
    assert!(seen.iter().all(|a| a == &seen[0]), "one token, reused while fresh");
    let token = seen[0].strip_prefix("Bearer k8s-aws-v1.").expect("an EKS token");
    let url = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).unwrap()).unwrap();
    assert!(
        url.starts_with("https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"),
        "{url}"
    );
    for part in ["X-Amz-Credential=AKIDPORTICOROLE%2F", "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id", "X-Amz-Expires=60"] {
        assert!(url.contains(part), "{part} in {url}");
    }
    assert!(!url.contains("role-secret-key"), "a signature, never the key");
    assert!(!portico_tests::captured_logs().contains(token), "the token is in no log line");
}

#[tokio::test]
async fn a_hanging_cluster_is_503_within_the_deadline_and_nothing_stays_held() {
    let mut config = portico_core::Config { desktops_timeout_ms: 300, ..test_config() };
    let (cluster, _running) = portico_local::demo_cluster::serve(&mut config).await.unwrap();
    let api = TestApi::start(Arc::new(MemoryTable::new()), config).await;
    let carol = with_environment(&api).await;
    *cluster.hang.lock().unwrap() = Some(Duration::from_secs(6));
    let asked = std::time::Instant::now();
    let (status, refused) =
        send(&api, Method::POST, "/desktops", Some(&carol), Some(json!({"environment": "xfce"}))).await;
    assert_eq!(status, 503, "{refused}");
    // The Pod call and the undo's delete each wait at most the deadline; never the hang.
    assert!(asked.elapsed() < Duration::from_secs(5), "{:?}", asked.elapsed());
    *cluster.hang.lock().unwrap() = None;
    assert_eq!(usage(&api, &carol).await, 0, "the quota is back");
    let (_, mine) = send(&api, Method::GET, "/desktops", Some(&carol), None).await;
    assert_eq!(mine["items"][0]["state"], "ended", "{mine}");
}
