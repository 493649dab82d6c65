//! The requests the `storage` part drives, route by route, in an order that leaves each one
//! something valid to act on (see [`crate::storage`]). The designed counts quoted beside the
//! measured ones come from the README's "Storage calls" notes and the tests that assert them.

use std::time::Duration;

use futures_util::SinkExt;
use http::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::storage::{Env, Failure, closed, next_of};

const README: &str = "the book";
const APPS_TEST: &str = "the book, tests/suite/apps_api.rs";
const IDENTITY_TEST: &str = "the book, tests/suite/identity.rs";
const JOBS_TEST: &str = "the book, tests/suite/jobs.rs";
const SESSIONS_TEST: &str = "the book, tests/suite/sessions.rs";
const DESKTOPS_TEST: &str = "tests/suite/desktops.rs";
const NONE_TEST: &str = "tests/suite/observability.rs, openapi.rs";

fn form(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish()
}

pub async fn drive(env: &Env) -> Result<(), Failure> {
    let admin = env.token("bench");
    setup(env, &admin).await?;
    apps_and_identity(env, &admin).await?;
    admin_routes(env, &admin).await?;
    sessions(env, &admin).await?;
    portal(env).await?;
    jobs(env, &admin).await?;
    ogdc(env, &admin).await?;
    desktops(env, &admin).await?;
    console(env, &admin).await?;
    Ok(())
}

/// Roles and users the routes need; every caller's identity read once.
async fn setup(env: &Env, admin: &str) -> Result<(), Failure> {
    env.call(env.req(Method::GET, "/auth/me", Some(admin))).await?;
    let role = |name: &str| json!({"name": name, "description": "benchmark"});
    let grant = |group: &str, action: &str| json!({"group": group, "action": action});
    for (method, path, body) in [
        (Method::POST, "/admin/roles", role("bench-user")),
        (Method::POST, "/admin/roles/bench-user/permissions", grant("*", "session.start")),
        (Method::POST, "/admin/roles/bench-user/permissions", grant("*", "job.submit")),
        (Method::POST, "/admin/roles", role("ogdc-user")),
        (Method::POST, "/admin/roles/ogdc-user/permissions", grant("jobs", "job.submit")),
        (Method::POST, "/admin/users", json!({"username": "alice", "password": "alice-password-1"})),
        (Method::PUT, "/admin/users/alice/roles/bench-user", Value::Null),
        (Method::POST, "/admin/users", json!({"username": "bob"})),
        (Method::PUT, "/admin/users/bob/roles/bench-user", Value::Null),
    ] {
        let r = env.req(method, path, Some(admin));
        env.call(if body.is_null() { r } else { r.json(&body) }).await?;
    }
    let alice = env.token("alice");
    env.call(env.req(Method::GET, "/auth/me", Some(&alice))).await?;
    Ok(())
}

async fn apps_and_identity(env: &Env, admin: &str) -> Result<(), Failure> {
    let alice = env.token("alice");
    for (route, path) in [("GET /healthz", "/healthz"), ("GET /openapi.json", "/openapi.json"), ("GET /docs", "/docs")]
    {
        env.counted(route, route, Some((0, NONE_TEST)), env.req(Method::GET, path, None)).await?;
    }
    // The reference page's one script, under its versioned name.
    let asset = format!("/docs/{}", portico_core::openapi::docs::ASSET);
    let route = "GET /docs/{asset}";
    env.counted(route, route, Some((0, NONE_TEST)), env.req(Method::GET, &asset, None)).await?;
    let app = |slug: &str| {
        json!({"slug": slug, "function_id": "f", "function_version_id": "v", "title": "Streamed app",
               "description": "An app the benchmark streams.", "category": "Template Applications"})
    };
    let put = |slug: &str| env.req(Method::PUT, &format!("/apps/{slug}"), Some(admin)).json(&app(slug));
    env.counted("PUT /apps/{slug}", "PUT /apps/{slug}, created", Some((2, APPS_TEST)), put("stream")).await?;
    env.counted("PUT /apps/{slug}", "PUT /apps/{slug}, replaced", Some((2, APPS_TEST)), put("stream")).await?;
    let create_only = put("other").header("if-none-match", "*");
    env.counted("PUT /apps/{slug}", "PUT /apps/{slug}, If-None-Match: *", Some((1, APPS_TEST)), create_only).await?;
    let get = env.req(Method::GET, "/apps/stream", Some(&alice));
    env.counted("GET /apps/{slug}", "GET /apps/{slug}", Some((1, APPS_TEST)), get).await?;
    env.counted("GET /apps", "GET /apps", Some((1, APPS_TEST)), env.req(Method::GET, "/apps", Some(&alice))).await?;
    let delete = env.req(Method::DELETE, "/apps/other", Some(admin));
    env.counted("DELETE /apps/{slug}", "DELETE /apps/{slug}", Some((2, APPS_TEST)), delete).await?;

    // A caller's first request: its user read (and, never seen before, written) and its roles.
    let newbie = env.token("newbie");
    let first = env.req(Method::GET, "/apps", Some(&newbie));
    let label = "GET /apps, a never-seen caller's first request (user created)";
    env.measure("GET /apps", label, Some((3, IDENTITY_TEST)), first, false).await?;
    let bob = env.token("bob");
    let label = "GET /apps, a caller's first request in authz_cache_ttl (user with 1 role)";
    let first = env.req(Method::GET, "/apps", Some(&bob));
    env.measure("GET /apps", label, Some((3, IDENTITY_TEST)), first, false).await?;

    // Tokens and the caller.
    let jwks = env.req(Method::GET, "/.well-known/jwks.json", None);
    env.counted("GET /.well-known/jwks.json", "GET /.well-known/jwks.json", None, jwks).await?;
    env.counted("GET /auth/me", "GET /auth/me", None, env.req(Method::GET, "/auth/me", Some(&alice))).await?;
    env.counted("GET /user", "GET /user", None, env.req(Method::GET, "/user", Some(&alice))).await?;
    let login = env
        .req(Method::POST, "/auth/token", None)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("grant_type", "password"), ("username", "alice"), ("password", "alice-password-1")]));
    env.counted("POST /auth/token", "POST /auth/token (password grant)", None, login).await?;
    let services = env.req(Method::GET, "/rpc/services", Some(&alice));
    env.counted("GET /rpc/services", "GET /rpc/services", None, services).await?;
    Ok(())
}

async fn admin_routes(env: &Env, admin: &str) -> Result<(), Failure> {
    let steps: [(Method, &str, &str, Value); 20] = [
        (Method::POST, "/admin/users", "/admin/users", json!({"username": "carol", "password": "carol-password-1"})),
        (Method::GET, "/admin/users", "/admin/users", Value::Null),
        (Method::GET, "/admin/users/{user}", "/admin/users/carol", Value::Null),
        (Method::PUT, "/admin/users/{user}/admin", "/admin/users/carol/admin", json!({"admin": false})),
        (
            Method::PUT,
            "/admin/users/{user}/password",
            "/admin/users/carol/password",
            json!({"password": "carol-password-2"}),
        ),
        (Method::PUT, "/admin/users/{user}/quota", "/admin/users/carol/quota", json!({"sessions": 2})),
        (Method::GET, "/admin/users/{user}/quota", "/admin/users/carol/quota", Value::Null),
        (Method::DELETE, "/admin/users/{user}/quota", "/admin/users/carol/quota", Value::Null),
        (Method::POST, "/admin/roles", "/admin/roles", json!({"name": "viewer", "description": "reads"})),
        (Method::GET, "/admin/roles", "/admin/roles", Value::Null),
        (Method::GET, "/admin/roles/{role}", "/admin/roles/viewer", Value::Null),
        (
            Method::POST,
            "/admin/roles/{role}/permissions",
            "/admin/roles/viewer/permissions",
            json!({"group": "g", "action": "rpc.call"}),
        ),
        (Method::GET, "/admin/roles/{role}/permissions", "/admin/roles/viewer/permissions", Value::Null),
        (
            Method::DELETE,
            "/admin/roles/{role}/permissions",
            "/admin/roles/viewer/permissions?group=g&action=rpc.call",
            Value::Null,
        ),
        (Method::PUT, "/admin/roles/{role}/quota", "/admin/roles/viewer/quota", json!({"jobs": 2})),
        (Method::DELETE, "/admin/roles/{role}/quota", "/admin/roles/viewer/quota", Value::Null),
        (Method::PUT, "/admin/users/{user}/roles/{role}", "/admin/users/carol/roles/viewer", Value::Null),
        (Method::DELETE, "/admin/users/{user}/roles/{role}", "/admin/users/carol/roles/viewer", Value::Null),
        (Method::DELETE, "/admin/roles/{role}", "/admin/roles/viewer", Value::Null),
        (Method::DELETE, "/admin/users/{user}", "/admin/users/carol", Value::Null),
    ];
    for (method, template, path, body) in steps {
        let route = format!("{method} {template}");
        let r = env.req(method, path, Some(admin));
        env.counted(&route, &route, None, if body.is_null() { r } else { r.json(&body) }).await?;
    }
    Ok(())
}

/// The desktop environments' registry: every call its one read, query, write or delete.
async fn desktops(env: &Env, admin: &str) -> Result<(), Failure> {
    let environment = json!({"title": "Analysis desktop", "kind": "kubernetes", "image": "facility/xfce:1.4",
                             "protocol": "vnc", "port": 5901, "cpu": 1000, "memory": 2048, "max_lifetime": 3600});
    let put = env.req(Method::PUT, "/environments/xfce", Some(admin)).json(&environment);
    env.counted("PUT /environments/{name}", "PUT /environments/{name}", Some((1, DESKTOPS_TEST)), put).await?;
    let list = env.req(Method::GET, "/environments", Some(admin));
    env.counted("GET /environments", "GET /environments", Some((1, DESKTOPS_TEST)), list).await?;
    let get = env.req(Method::GET, "/environments/xfce", Some(admin));
    env.counted("GET /environments/{name}", "GET /environments/{name}", Some((1, DESKTOPS_TEST)), get).await?;
    // On the demo cluster, ready at once: a start (the environment read, the quota reserved,
    // the marker and the record written), its first read (record, then the Pod: ready,
    // written), a listing, a stop (record read, end written, quota released, marker removed).
    let start = env.req(Method::POST, "/desktops", Some(admin)).json(&json!({"environment": "xfce", "lifetime": 1800}));
    let desktop = env.counted("POST /desktops", "POST /desktops", Some((4, DESKTOPS_TEST)), start).await?;
    let id = desktop["id"].as_str().unwrap_or_default().to_owned();
    let path = format!("/desktops/{id}");
    let read = env.req(Method::GET, &path, Some(admin));
    let label = "GET /desktops/{id}, the Pod ready: recorded";
    env.counted("GET /desktops/{id}", label, Some((2, DESKTOPS_TEST)), read).await?;
    let open = env.req(Method::POST, &format!("{path}/connection"), Some(admin));
    let label = "POST /desktops/{id}/connection (the record, read once)";
    env.counted("POST /desktops/{id}/connection", label, Some((1, DESKTOPS_TEST)), open).await?;
    let extend = env.req(Method::POST, &format!("{path}/extend"), Some(admin)).json(&json!({"seconds": 60}));
    env.counted("POST /desktops/{id}/extend", "POST /desktops/{id}/extend", Some((2, DESKTOPS_TEST)), extend).await?;
    let list = env.req(Method::GET, "/desktops", Some(admin));
    env.counted("GET /desktops", "GET /desktops", Some((1, DESKTOPS_TEST)), list).await?;
    let viewer = format!("/desktops/{id}/viewers/alice");
    let label = "PUT /desktops/{id}/viewers/{username}";
    let share = env.req(Method::PUT, &viewer, Some(admin));
    env.counted(label, label, Some((2, DESKTOPS_TEST)), share).await?;
    let label = "DELETE /desktops/{id}/viewers/{username}";
    let unshare = env.req(Method::DELETE, &viewer, Some(admin));
    env.counted(label, label, Some((2, DESKTOPS_TEST)), unshare).await?;
    let stop = env.req(Method::DELETE, &path, Some(admin));
    env.counted("DELETE /desktops/{id}", "DELETE /desktops/{id}", Some((4, DESKTOPS_TEST)), stop).await?;
    // The experiments are the user office's; Portico reads only the caller's favourites.
    const EXPERIMENTS_TEST: &str = "tests/suite/experiments.rs";
    let list = env.req(Method::GET, "/experiments", Some(admin));
    env.counted("GET /experiments", "GET /experiments (the favourites)", Some((1, EXPERIMENTS_TEST)), list).await?;
    let path = "/experiments/2026-0042/favorite";
    let (mark, unmark) = (env.req(Method::PUT, path, Some(admin)), env.req(Method::DELETE, path, Some(admin)));
    let label = "PUT /experiments/{proposal_id}/favorite";
    env.counted(label, label, Some((1, EXPERIMENTS_TEST)), mark).await?;
    let label = "DELETE /experiments/{proposal_id}/favorite";
    env.counted(label, label, Some((1, EXPERIMENTS_TEST)), unmark).await?;
    let delete = env.req(Method::DELETE, "/environments/xfce", Some(admin));
    env.counted("DELETE /environments/{name}", "DELETE /environments/{name}", Some((1, DESKTOPS_TEST)), delete).await?;
    Ok(())
}

async fn connect(url: &str) -> Result<crate::storage::Socket, Failure> {
    Ok(tokio_tungstenite::connect_async(url).await?.0)
}

const HELLO: &str = r#"{"type":"hello"}"#;

fn signal(n: u64) -> Message {
    Message::text(json!({"type": "signal", "data": {"n": n}}).to_string())
}

/// Sessions' REST routes and the relay's WebSocket routes, one session through its life.
async fn sessions(env: &Env, admin: &str) -> Result<(), Failure> {
    let alice = env.token("alice");
    let start = env.req(Method::POST, "/sessions", Some(&alice)).json(&json!({"app": "stream"}));
    let label = "POST /sessions (app read, quota, instance, marker, session, 2 tickets)";
    let started = env.counted("POST /sessions", label, Some((7, README)), start).await?;
    let id = started["session_id"].as_str().ok_or("no session id")?.to_owned();
    let client_url = started["ws_url"].as_str().ok_or("no ws_url")?.to_owned();
    let host_url =
        env.launches.lock().expect("launches").last().and_then(|l| l["relay_url"].as_str().map(str::to_owned));
    let host_url = host_url.ok_or("no launch")?;
    let own = env.req(Method::GET, "/sessions", Some(&alice));
    env.counted("GET /sessions", "GET /sessions (own, index)", Some((1, README)), own).await?;
    let one = env.req(Method::GET, &format!("/sessions/{id}"), Some(&alice));
    env.counted("GET /sessions/{id}", "GET /sessions/{id}", None, one).await?;
    let all = env.req(Method::GET, "/sessions?all=true", Some(admin));
    env.counted("GET /sessions", "GET /sessions?all=true (16 shards walked)", Some((16, SESSIONS_TEST)), all).await?;

    // The relay.
    env.settle();
    let mut client = connect(&client_url).await?;
    env.record("WS $connect", "WS $connect (client ticket)", None, env.take());
    client.send(Message::text(HELLO)).await?;
    next_of(&mut client, "welcome").await?;
    env.record("WS hello", "WS hello, first side", None, env.take());
    client.send(Message::text(r#"{"type":"ping"}"#)).await?;
    next_of(&mut client, "pong").await?;
    let ping = env.take();
    *env.ping.lock().expect("ping") = Some(ping);
    env.record("WS ping", "WS ping", None, ping);
    client.send(signal(0)).await?;
    env.settled(&mut client).await?;
    env.record("WS signal", "WS signal before the peer joined (buffered)", None, env.take_less_ping());
    env.settle();
    let mut host = connect(&host_url).await?;
    env.record("WS $connect", "WS $connect (host ticket)", None, env.take());
    host.send(Message::text(HELLO)).await?;
    next_of(&mut host, "welcome").await?;
    next_of(&mut host, "signal").await?;
    env.record("WS hello", "WS hello, second side (linked, 1 buffered signal flushed)", None, env.take());
    next_of(&mut client, "peer_joined").await?;
    env.settled(&mut host).await?;
    env.settle();
    client.send(signal(1)).await?;
    next_of(&mut host, "signal").await?;
    env.settled(&mut client).await?;
    env.record("WS signal", "WS signal to a joined peer", Some((1, SESSIONS_TEST)), env.take_less_ping());
    client.close(None).await?;
    next_of(&mut host, "peer_left").await?;
    env.record("WS $disconnect", "WS $disconnect (client leaves: session idle)", None, env.quiet().await);
    let ticket = env.req(Method::POST, &format!("/sessions/{id}/tickets"), Some(&alice));
    let fresh = env.counted("POST /sessions/{id}/tickets", "POST /sessions/{id}/tickets", None, ticket).await?;
    let back_url = fresh["ws_url"].as_str().map(str::to_owned).unwrap_or_else(|| {
        let base = client_url.split('?').next().unwrap_or_default().to_owned();
        format!("{base}?ticket={}", fresh["ticket"].as_str().unwrap_or_default())
    });
    env.settle();
    let mut client = connect(&back_url).await?;
    client.send(Message::text(HELLO)).await?;
    next_of(&mut client, "welcome").await?;
    env.record("WS $connect", "WS $connect + hello, back to an idle session", None, env.take());
    next_of(&mut host, "peer_joined").await?;
    env.settled(&mut host).await?;
    env.settle();
    let stop = env.req(Method::DELETE, &format!("/sessions/{id}"), Some(&alice));
    env.call(stop).await?;
    closed(&mut host).await?;
    closed(&mut client).await?;
    let label = "DELETE /sessions/{id}, both sides connected (their $disconnect included)";
    env.record("DELETE /sessions/{id}", label, None, env.quiet().await);
    Ok(())
}

/// The streaming portal's own routes and its signaling socket, one session through its life
/// (on the NVCF stand-in).
async fn portal(env: &Env) -> Result<(), Failure> {
    let alice = env.token("alice");
    let (path, route) = ("/sessions/f/v/sign_in", "/sessions/{function_id}/{function_version_id}/sign_in");
    let start = env.req(Method::POST, path, Some(&alice));
    let label = format!("POST {route} (apps by version, instances, marker, quota, instance, session)");
    env.counted(&format!("POST {route}"), &label, Some((6, README)), start).await?;
    let request_id = env.nvcf_sessions().pop().ok_or("NVCF started no session")?;
    let cookie = format!("nvcf-request-id={request_id}");
    let check = env.req(Method::HEAD, path, Some(&alice)).header("cookie", &cookie);
    env.counted(&format!("HEAD {route}"), &format!("HEAD {route}"), Some((1, README)), check).await?;
    let url = format!("{}{path}", env.base.replace("http://", "ws://"));
    let mut request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)?;
    request.headers_mut().insert("cookie", cookie.parse()?);
    request.headers_mut().insert("authorization", format!("Bearer {alice}").parse()?);
    env.settle();
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    futures_util::StreamExt::next(&mut socket).await.ok_or("NVCF said nothing")??;
    let label = format!("WS {route}, the session taken (NVCF speaks first)");
    env.record(&format!("WS {route}"), &label, Some((2, README)), env.take());
    socket.close(None).await?;
    let label = format!("WS {route}, closed by the client (the session idle)");
    env.record(&format!("WS {route}"), &label, Some((2, README)), env.quiet().await);
    let stop = env.req(Method::DELETE, path, Some(&alice)).header("cookie", &cookie);
    let label = format!("DELETE {route} (read, end, quota, instance, marker)");
    env.counted(&format!("DELETE {route}"), &label, Some((6, README)), stop).await?;
    Ok(())
}

fn recipe() -> Value {
    json!({"recipe": {"meta_yml": crate::storage::RECIPE_META, "steps": crate::storage::RECIPE_STEPS}})
}

async fn jobs(env: &Env, admin: &str) -> Result<(), Failure> {
    let alice = env.token("alice");
    let submit = || env.req(Method::POST, "/jobs", Some(&alice));
    let label = "POST /jobs, a recipe (quota, marker, record twice)";
    let job = env.counted("POST /jobs", label, Some((4, JOBS_TEST)), submit().json(&recipe())).await?;
    let id = job["id"].as_str().ok_or("no job id")?.to_owned();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let path = format!("/jobs/{id}");
    let label = "GET /jobs/{id}, the phase changed (Running written)";
    env.counted("GET /jobs/{id}", label, Some((2, JOBS_TEST)), env.req(Method::GET, &path, Some(&alice))).await?;
    let label = "GET /jobs/{id}, unchanged";
    env.counted("GET /jobs/{id}", label, Some((1, JOBS_TEST)), env.req(Method::GET, &path, Some(&alice))).await?;
    let own = env.req(Method::GET, "/jobs", Some(&alice));
    env.counted("GET /jobs", "GET /jobs (own, index)", Some((1, JOBS_TEST)), own).await?;
    let all = env.req(Method::GET, "/jobs?all=true", Some(admin));
    env.counted("GET /jobs", "GET /jobs?all=true (16 shards walked)", Some((16, JOBS_TEST)), all).await?;
    let logs = env.req(Method::GET, &format!("{path}/logs"), Some(&alice));
    env.counted("GET /jobs/{id}/logs", "GET /jobs/{id}/logs", Some((1, JOBS_TEST)), logs).await?;
    let output = env.req(Method::GET, &format!("{path}/output"), Some(&alice));
    env.counted("GET /jobs/{id}/output", "GET /jobs/{id}/output (pvc)", Some((1, JOBS_TEST)), output).await?;
    let cancel = env.req(Method::DELETE, &path, Some(&alice));
    let label = "DELETE /jobs/{id} (read, end recorded, quota released, marker removed)";
    env.counted("DELETE /jobs/{id}", label, Some((4, JOBS_TEST)), cancel).await?;
    let keyed = submit().header("idempotency-key", "bench-1").json(&recipe());
    env.counted("POST /jobs", "POST /jobs with an Idempotency-Key", Some((6, JOBS_TEST)), keyed).await?;
    let source = submit().json(&json!({"source": "github://farm:recipes@v1/seal-tags"}));
    env.counted("POST /jobs", "POST /jobs, a github:// recipe source", None, source).await?;

    let template = json!({"workflow_template": "gdal-reproject", "description": "Reprojects a raster",
        "parameters": [{"name": "epsg", "pattern": "[0-9]{4,5}", "max_length": 5, "required": true}]});
    let put = env.req(Method::PUT, "/recipes/reproject", Some(admin)).json(&template);
    env.counted("PUT /recipes/{name}", "PUT /recipes/{name}", None, put).await?;
    env.counted("GET /recipes", "GET /recipes", None, env.req(Method::GET, "/recipes", Some(&alice))).await?;
    let one = env.req(Method::GET, "/recipes/reproject", Some(&alice));
    env.counted("GET /recipes/{name}", "GET /recipes/{name}", None, one).await?;
    let run = submit().json(&json!({"template": "reproject", "parameters": {"epsg": "3413"}}));
    env.counted("POST /jobs", "POST /jobs, a registered template", None, run).await?;
    let delete = env.req(Method::DELETE, "/recipes/reproject", Some(admin));
    env.counted("DELETE /recipes/{name}", "DELETE /recipes/{name}", None, delete).await?;
    Ok(())
}

/// OGDC's service API, as the `ogdc-runner` CLI calls it.
async fn ogdc(env: &Env, admin: &str) -> Result<(), Failure> {
    let post_form = |path: &str, token: Option<&str>, fields: &[(&str, &str)]| {
        env.req(Method::POST, path, token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(fields))
    };
    let user = [("username", "erin"), ("password", "a-long-passphrase")];
    let create = post_form("/ogdc/create_user", Some(admin), &user);
    env.counted("POST /ogdc/create_user", "POST /ogdc/create_user", None, create).await?;
    let token = post_form("/ogdc/token", None, &user);
    let token = env.counted("POST /ogdc/token", "POST /ogdc/token", None, token).await?;
    let erin = token["access_token"].as_str().ok_or("no OGDC token")?.to_owned();
    env.call(env.req(Method::GET, "/ogdc/user", Some(&erin))).await?; // erin's identity read once
    env.counted("GET /ogdc/user", "GET /ogdc/user", None, env.req(Method::GET, "/ogdc/user", Some(&erin))).await?;
    env.counted("GET /ogdc/version", "GET /ogdc/version", None, env.req(Method::GET, "/ogdc/version", None)).await?;
    *env.argo.timing.lock().expect("demo argo") = (Duration::from_millis(1), Duration::from_millis(1));
    let body = json!({"recipe_path": "github://farm:recipes@v1/seal-zip", "overwrite": false});
    let submit = env.req(Method::POST, "/ogdc/submit", Some(&erin)).json(&body);
    let submitted = env.counted("POST /ogdc/submit", "POST /ogdc/submit", None, submit).await?;
    let name = submitted["recipe_workflow_name"].as_str().ok_or("no workflow name")?.to_owned();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let status = env.req(Method::GET, &format!("/ogdc/status/{name}"), Some(&erin));
    let label = "GET /ogdc/status/{name}, the workflow finished (end recorded)";
    env.counted("GET /ogdc/status/{name}", label, None, status).await?;
    let output = env.req(Method::GET, &format!("/ogdc/output/{name}"), Some(&erin));
    env.counted("GET /ogdc/output/{name}", "GET /ogdc/output/{name} (a temporary output's link)", None, output).await?;
    Ok(())
}

/// The console's pages (GET; each form post calls the API route it names, counted above).
async fn console(env: &Env, admin: &str) -> Result<(), Failure> {
    let (alice, admin) = (env.token("alice"), admin.to_owned());
    // A session and a job to show.
    let started = env.call(env.req(Method::POST, "/sessions", Some(&alice)).json(&json!({"app": "stream"}))).await?;
    let session = started["session_id"].as_str().ok_or("no session id")?.to_owned();
    let job = env.call(env.req(Method::POST, "/jobs", Some(&alice)).json(&recipe())).await?;
    let job = job["id"].as_str().ok_or("no job id")?.to_owned();
    // The workflow has finished by now: its end is recorded here, so the pages read a settled job.
    tokio::time::sleep(Duration::from_millis(20)).await;
    env.call(env.req(Method::GET, &format!("/jobs/{job}"), Some(&alice))).await?;
    let pages = [
        (&alice, "/console/apps".to_owned()),
        (&alice, "/console/apps/stream".to_owned()),
        (&alice, "/console/sessions".to_owned()),
        (&alice, format!("/console/sessions/{session}")),
        (&alice, "/console/jobs".to_owned()),
        (&alice, format!("/console/jobs/{job}")),
        (&alice, format!("/console/jobs/{job}/status")),
        (&alice, "/console/profile".to_owned()),
        (&admin, "/console/admin/apps".to_owned()),
        (&admin, "/console/admin/apps/stream".to_owned()),
        (&admin, "/console/admin/users".to_owned()),
        (&admin, "/console/admin/users/alice".to_owned()),
        (&admin, "/console/admin/roles".to_owned()),
        (&admin, "/console/admin/roles/bench-user".to_owned()),
        (&admin, "/console/admin/sessions".to_owned()),
        (&admin, "/console/admin/jobs".to_owned()),
    ];
    for (token, path) in pages {
        let route = format!("GET {}", path.replace(&session, "{id}").replace(&job, "{id}"));
        let page = env.req(Method::GET, &path, None).header("cookie", format!("portico_console={token}"));
        env.counted(&route, &format!("console {route}"), None, page).await?;
    }
    Ok(())
}
