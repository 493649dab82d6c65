//! No secret in any log line: a password login (good and bad), a streaming session with
//! signals, a job on Argo with its token, an RPC call with a CueWeb token, all in one run,
//! then every secret value used is searched for in everything logged (at DEBUG).

use std::sync::Arc;
use std::time::{Duration, Instant};

use portico_core::store::memory::MemoryTable;
use portico_tests::{ADMIN, SECRET, STREAM_API_KEY, TestApi, Ws, app_body, captured_logs, test_config, web_token};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ARGO_TOKEN: &str = "argo-sa-token-LOGCHECK-51b7";
const PASSWORD: &str = "lena-Secret-passphrase-42";
const WRONG_PASSWORD: &str = "lena-Wrong-passphrase-99";

#[tokio::test]
async fn no_secret_reaches_a_log_line_through_a_session_a_job_and_an_rpc_call() {
    let mut config = test_config();
    config.argo_token_secret_id = Some("portico/argo-token".into());
    config.local_secrets.insert("portico/argo-token".into(), ARGO_TOKEN.into());
    let timing = (Duration::from_millis(100), Duration::from_millis(100));
    let (_argo, _engine) = portico_local::demo_argo::serve(&mut config, timing).await.unwrap();
    let _cuebot = portico_local::demo::start_cuebot(&mut config).await.unwrap();
    // A desktop from an experiment, opened: the user office's credentials, Guacamole's key and
    // the desktop's password are all used.
    let (cluster, _cluster) = portico_local::demo_cluster::serve(&mut config).await.unwrap();
    *cluster.ready_after.lock().unwrap() = Duration::ZERO;
    let (_, _guacamole) = portico_local::demo_guacamole::serve(&mut config).await.unwrap();
    let (office, _office) = portico_local::demo_user_office::serve(&mut config).await.unwrap();
    office
        .experiments
        .lock()
        .unwrap()
        .insert(ADMIN.into(), portico_local::demo_user_office::sample_experiments(41_000));
    let office_secret = config.local_secrets[&config.user_office_secret_id].clone();
    let guacamole_key = config.local_secrets[&config.guacamole_key_secret_id].clone();
    // NVCF for the streaming portal's own routes; `/sessions` stays on the relay's demo host.
    let nvcf = portico_local::demo_nvcf::DemoNvcf::start(STREAM_API_KEY).await.unwrap();
    config.nvcf_signaling_endpoint = Some(nvcf.endpoint.clone());
    config.stream_platform = Some(portico_core::config::StreamPlatform::RelayHost);
    let api = TestApi::start_with_demo_platform(Arc::new(MemoryTable::new()), config).await;
    let admin = api.admin_token();
    let call = |method: Method, path: &str, token: &str, body: Option<Value>| {
        let mut req = api.req(method, path, Some(token));
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or_default())
        }
    };
    let mut tokens = vec![admin.clone()];

    // Logins: a user with a password, one good attempt, one bad.
    let (status, _) =
        call(Method::POST, "/admin/users", &admin, Some(json!({"username": "lena", "password": PASSWORD}))).await;
    assert_eq!(status, StatusCode::CREATED);
    for (password, want) in [(PASSWORD, StatusCode::OK), (WRONG_PASSWORD, StatusCode::BAD_REQUEST)] {
        let form = format!("grant_type=password&username=lena&password={password}");
        let r = api
            .req(Method::POST, "/auth/token", None)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want);
        if let Some(t) = r.json::<Value>().await.unwrap()["access_token"].as_str() {
            tokens.push(t.to_owned());
        }
    }
    // lena's token in use: her request's log line shows this run was logged (checked below).
    let lena = tokens.last().unwrap().clone();
    assert_eq!(call(Method::GET, "/auth/me", &lena, None).await.0, StatusCode::OK);

    // A streaming session on the demo platform: the client's signal comes back echoed.
    assert!(call(Method::PUT, "/apps/logcheck", &admin, Some(app_body("logcheck"))).await.0.is_success());
    let (status, started) = call(Method::POST, "/sessions", &admin, Some(json!({"app": "logcheck"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    tokens.push(started["ticket"].as_str().unwrap().to_owned());
    let (mut client, _) = Ws::join(started["ws_url"].as_str().unwrap()).await;
    client.expect("peer_joined").await;
    client.signal(json!({"sdp": "offer"})).await;
    assert_eq!(client.expect_signal().await, json!({"echo": {"sdp": "offer"}}));

    let session = format!("/sessions/{}", started["session_id"].as_str().unwrap());
    assert_eq!(call(Method::DELETE, &session, &admin, None).await.0, StatusCode::NO_CONTENT);

    // The streaming portal's own routes (the same app, its one instance free again): a start
    // with its `id_token` cookie, its signaling socket (NVCF speaks first, then echoes), a stop.
    let portal = format!(
        "/sessions/{}/{}/sign_in",
        app_body("x")["function_id"].as_str().unwrap(),
        app_body("x")["function_version_id"].as_str().unwrap()
    );
    let r = api.req(Method::POST, &portal, None).header("Cookie", format!("id_token={admin}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookies = format!("id_token={admin}; nvcf-request-id={}", r.headers()["nvcf-request-id"].to_str().unwrap());
    let mut request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
        "{}{portal}",
        api.url("").replace("http://", "ws://")
    ))
    .unwrap();
    request.headers_mut().insert("Cookie", cookies.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    use futures_util::{SinkExt, StreamExt};
    assert_eq!(socket.next().await.unwrap().unwrap().into_text().unwrap().as_str(), "SYN");
    socket.send(tokio_tungstenite::tungstenite::Message::text("ACK")).await.unwrap();
    assert_eq!(socket.next().await.unwrap().unwrap().into_text().unwrap().as_str(), r#"{"echo":"ACK"}"#);
    let r = api.req(Method::DELETE, &portal, None).header("Cookie", cookies).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // A job, followed to its end, and its logs.
    let recipe = json!({"recipe": {"meta_yml": "name: Log Check\nworkflow: {type: shell}\ninput: {params: [{type: url, value: 'https://e.org/a'}]}\n", "steps": "true\n"}});
    let (status, job) = call(Method::POST, "/jobs", &admin, Some(recipe)).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let path = format!("/jobs/{}", job["id"].as_str().unwrap());
    let started_at = Instant::now();
    while call(Method::GET, &path, &admin, None).await.1["phase"] != "Succeeded" {
        assert!(started_at.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = api.req(Method::GET, &format!("{path}/logs"), Some(&admin)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // An RPC call with a web system's HS256 token.
    let cueweb = web_token(ADMIN, &[]);
    tokens.push(cueweb.clone());
    let r = api
        .req(Method::POST, "/show.ShowInterface/FindShow", Some(&cueweb))
        .body(r#"{"name": "testshow"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let environment = json!({"title": "Desktop", "kind": "kubernetes", "image": "facility/xfce:1", "protocol": "vnc",
                             "port": 5901, "cpu": 100, "memory": 100, "max_lifetime": 3600});
    assert_eq!(call(Method::PUT, "/environments/xfce", &admin, Some(environment)).await.0, StatusCode::CREATED);
    let (status, desktop) =
        call(Method::POST, "/desktops", &admin, Some(json!({"environment": "xfce", "experiment": "2026-0042"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{desktop}");
    let id = desktop["id"].as_str().unwrap().to_owned();
    assert_eq!(call(Method::GET, &format!("/desktops/{id}"), &admin, None).await.1["state"], "ready");
    assert_eq!(call(Method::POST, &format!("/desktops/{id}/connection"), &admin, None).await.0, StatusCode::OK);
    let secret = cluster.created.lock().unwrap().iter().find(|o| o["kind"] == "Secret").unwrap().clone();
    let desktop_password = secret["stringData"]["password"].as_str().unwrap().to_owned();
    let office: Value = serde_json::from_str(&office_secret).unwrap();
    let office_password = office["password"].as_str().unwrap().to_owned();
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{}:{office_password}", office["username"].as_str().unwrap()),
    );

    let keyring: Value = serde_json::from_str(portico_tests::signing_keys()).unwrap();
    let mut secrets = vec![
        SECRET.to_owned(),
        STREAM_API_KEY.to_owned(),
        ARGO_TOKEN.to_owned(),
        PASSWORD.to_owned(),
        WRONG_PASSWORD.to_owned(),
        keyring["keys"][0]["pkcs8"].as_str().unwrap().to_owned(),
        "$argon2id$".to_owned(),
        desktop_password,
        office_password,
        basic,
        guacamole_key.to_ascii_lowercase(),
        guacamole_key.to_ascii_uppercase(),
    ];
    secrets.extend(tokens);
    let logs = captured_logs();
    // Every test of this process logs into the same capture: only a line of this run's own
    // (lena exists nowhere else) shows these requests were captured.
    assert!(
        logs.lines().any(|l| l.contains("principal=lena") && l.contains("/auth/me")),
        "this run's requests were logged"
    );
    for secret in &secrets {
        let shown: String = secret.chars().take(12).collect();
        assert!(!logs.contains(secret.as_str()), "a secret starting {shown}... is in the logs");
    }
}
