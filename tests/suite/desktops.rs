//! Remote desktops through the emulator: the environments' registry (who writes it, who sees
//! which environment, what an environment may be, what each route costs), on both stores.

use std::sync::Arc;

use portico_core::store::Table;
use portico_core::store::counting::Calls;
use portico_tests::{TestApi, test_config};
use reqwest::Method;
use serde_json::{Value, json};

pub(crate) fn environment(group: &str) -> Value {
    json!({"title": "Analysis desktop", "kind": "kubernetes", "image": "registry.example.org/facility/xfce:1.4",
           "protocol": "vnc", "port": 5901, "cpu": 2000, "memory": 4096, "storage": 10, "max_lifetime": 28800,
           "group": group})
}

pub(crate) async fn send(
    api: &TestApi,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = api.req(method, path, token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `carol` may start desktops of group `beamline-1`; `bob` of none.
pub(crate) async fn setup(api: &TestApi) -> (String, String, String) {
    let admin = api.admin_token();
    for (path, body) in [
        ("/admin/roles", json!({"name": "beamline-1-users"})),
        ("/admin/roles/beamline-1-users/permissions", json!({"group": "beamline-1", "action": "desktop.start"})),
        ("/admin/users", json!({"username": "carol"})),
        ("/admin/users", json!({"username": "bob"})),
    ] {
        let (status, answer) = send(api, Method::POST, path, Some(&admin), Some(body)).await;
        assert_eq!(status, 201, "{path}: {answer}");
    }
    let (status, _) = send(api, Method::PUT, "/admin/users/carol/roles/beamline-1-users", Some(&admin), None).await;
    assert_eq!(status, 200);
    (admin, api.token("carol"), api.token("bob"))
}

on_both_stores!(environments_are_written_by_administrators_and_seen_by_who_may_start_them);

async fn environments_are_written_by_administrators_and_seen_by_who_may_start_them(table: Arc<dyn Table>) {
    let api = TestApi::start(table, test_config()).await;
    let (admin, carol, bob) = setup(&api).await;
    let (status, created) =
        send(&api, Method::PUT, "/environments/xfce", Some(&admin), Some(environment("beamline-1"))).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!((created["name"].as_str(), created["kind"].as_str()), (Some("xfce"), Some("kubernetes")));
    assert!(created["updated_at"].is_string());
    // Sent back as read: replaced.
    let (status, replaced) = send(&api, Method::PUT, "/environments/xfce", Some(&admin), Some(created.clone())).await;
    assert_eq!(status, 200, "{replaced}");
    let link = json!({"title": "Jupyter", "kind": "link", "link": "https://jupyter.example.org/", "max_lifetime": 3600,
                      "group": "beamline-2"});
    assert_eq!(send(&api, Method::PUT, "/environments/jupyter", Some(&admin), Some(link)).await.0, 201);

    let names = |page: &Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_owned()).collect()
    };
    let (_, all) = send(&api, Method::GET, "/environments", Some(&admin), None).await;
    assert_eq!(names(&all), ["jupyter", "xfce"], "administrators see every one");
    let (_, mine) = send(&api, Method::GET, "/environments", Some(&carol), None).await;
    assert_eq!(names(&mine), ["xfce"], "carol: desktop.start on beamline-1 only");
    let (_, none) = send(&api, Method::GET, "/environments", Some(&bob), None).await;
    assert_eq!(names(&none), Vec::<String>::new());
    assert_eq!(send(&api, Method::GET, "/environments/xfce", Some(&carol), None).await.0, 200);
    let (status, refused) = send(&api, Method::GET, "/environments/xfce", Some(&bob), None).await;
    assert_eq!((status, refused["code"].as_str()), (404, Some("not_found")), "not startable: as if absent");
    assert_eq!(send(&api, Method::GET, "/environments/jupyter", Some(&carol), None).await.0, 404);

    // Writes: administrators only; anonymous callers are 401.
    for token in [&carol, &bob] {
        let (status, _) = send(&api, Method::PUT, "/environments/x", Some(token), Some(environment(""))).await;
        assert_eq!(status, 403);
        assert_eq!(send(&api, Method::DELETE, "/environments/xfce", Some(token), None).await.0, 403);
    }
    for (method, path) in
        [(Method::GET, "/environments"), (Method::GET, "/environments/xfce"), (Method::DELETE, "/environments/xfce")]
    {
        assert_eq!(send(&api, method, path, None, None).await.0, 401);
    }
    assert_eq!(send(&api, Method::DELETE, "/environments/xfce", Some(&admin), None).await.0, 204);
    assert_eq!(send(&api, Method::DELETE, "/environments/xfce", Some(&admin), None).await.0, 404);
    assert_eq!(send(&api, Method::GET, "/environments/xfce", Some(&admin), None).await.0, 404);
}

#[tokio::test]
async fn a_mistaken_environment_is_refused_naming_its_field_and_nothing_is_written() {
    let api = TestApi::start(Arc::new(portico_core::store::memory::MemoryTable::new()), test_config()).await;
    let admin = api.admin_token();
    send(&api, Method::GET, "/auth/me", Some(&admin), None).await; // the admin's record, made once
    let with = |field: &str, value: Value| {
        let mut body = environment("");
        body[field] = value;
        body
    };
    for (body, field) in [
        (with("image", json!("Not An Image")), "image"),
        (with("port", json!(0)), "port"),
        (with("max_lifetime", json!(10)), "max_lifetime"),
        (with("link", json!("https://x.example/")), "link"),
        (with("group", json!("a group")), "group"),
        (with("name", json!("other")), "name"),
    ] {
        api.calls.take();
        let (status, answer) = send(&api, Method::PUT, "/environments/xfce", Some(&admin), Some(body)).await;
        assert_eq!(
            (status, answer["code"].as_str(), answer["field"].as_str()),
            (400, Some("invalid_field"), Some(field)),
            "{answer}"
        );
        assert_eq!(api.calls.take().put, 0, "nothing written");
    }
    let (status, answer) =
        send(&api, Method::PUT, "/environments/xfce", Some(&admin), Some(with("hostname", json!("10.0.0.1")))).await;
    assert_eq!((status, answer["code"].as_str()), (400, Some("invalid_body")), "users never give hosts: {answer}");
    let (status, answer) = send(&api, Method::PUT, "/environments/Bad_Name", Some(&admin), Some(environment(""))).await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("name")), "{answer}");
    assert_eq!(send(&api, Method::GET, "/environments", Some(&admin), None).await.1["items"], json!([]));
}

#[tokio::test]
async fn each_environment_route_makes_one_storage_call() {
    let api = TestApi::start(Arc::new(portico_core::store::memory::MemoryTable::new()), test_config()).await;
    let (admin, carol, _) = setup(&api).await;
    let counted = |method: Method, path: &'static str, token: String, body: Option<Value>| {
        let api = &api;
        async move {
            send(api, Method::GET, "/auth/me", Some(&token), None).await; // the caller's identity, cached
            api.calls.take();
            let (status, answer) = send(api, method.clone(), path, Some(&token), body).await;
            assert!((200..300).contains(&status), "{method} {path}: {status} {answer}");
            api.calls.take()
        }
    };
    let put = counted(Method::PUT, "/environments/xfce", admin.clone(), Some(environment("beamline-1"))).await;
    assert_eq!(put, Calls { put: 1, ..Calls::default() }, "one write");
    let list = counted(Method::GET, "/environments", carol.clone(), None).await;
    assert_eq!(list, Calls { query: 1, ..Calls::default() }, "one query");
    let get = counted(Method::GET, "/environments/xfce", carol, None).await;
    assert_eq!(get, Calls { get: 1, ..Calls::default() }, "one read");
    let delete = counted(Method::DELETE, "/environments/xfce", admin, None).await;
    assert_eq!(delete, Calls { delete: 1, ..Calls::default() }, "one delete");
}

/// Every object a desktop is made of passes Kubernetes' published schemas (1.37, strict: an
/// unknown field is an error), for each kind of environment and mount Portico makes.
#[test]
fn the_desktops_manifests_pass_kubernetes_published_schemas() {
    use portico_desktops::environments::{DesktopProtocol, Environment, EnvironmentKind};
    use portico_desktops::manifests::{DesktopSpec, Mount};
    let environment = Environment {
        name: "xfce".into(),
        title: "Analysis desktop".into(),
        description: String::new(),
        kind: EnvironmentKind::Kubernetes,
        image: Some("registry.example.org:5000/facility/xfce:1.4".into()),
        protocol: Some(DesktopProtocol::Rdp),
        port: Some(3389),
        link: None,
        cpu: 1500,
        memory: 3072,
        storage: 0,
        max_lifetime: 3600,
        group: String::new(),
        updated_at: "2026-12-07T00:00:00Z".into(),
    };
    let guacd = serde_json::Map::from_iter([("app.kubernetes.io/name".to_owned(), json!("guacd"))]);
    let full = DesktopSpec {
        id: "0123456789abcdef",
        owner: "a.very.long.name+tag@facility.example.org",
        environment: &environment,
        lifetime: 3600,
        uid: 1000,
        gid: 1000,
        datasets: Some(Mount {
            source: json!({"persistentVolumeClaim": {"claimName": "experiments"}}),
            folders: vec![("/data/1".into(), "2026/p-77/1".into()), ("/data/2".into(), "2026/p-77/2".into())],
        }),
        results: Some(Mount {
            source: json!({"nfs": {"server": "nfs.facility", "path": "/results"}}),
            folders: vec![("/results".into(), "a.very.long.name+tag@facility.example.org".into())],
        }),
        guacd_labels: Some(&guacd),
    };
    let bare = DesktopSpec { datasets: None, results: None, guacd_labels: None, ..full.clone() };
    let host_path = DesktopSpec {
        datasets: Some(Mount {
            source: json!({"hostPath": {"path": "/data", "type": "Directory"}}),
            folders: vec![("/data/s".into(), "p".into())],
        }),
        ..bare.clone()
    };
    let uid = "6f1c0d9e-2b3a-4c5d-8e7f-0a1b2c3d4e5f";
    let mut objects = vec![
        ("pod", full.pod()),
        ("pod-bare", bare.pod()),
        ("pod-host-path", host_path.pod()),
        ("secret", full.secret(uid, "a password")),
        ("service", full.service(uid)),
    ];
    objects.push(("network-policy", full.network_policy(uid).expect("guacd's labels are set")));
    let objects: Vec<Value> = objects.into_iter().map(|(_, o)| o).collect();
    assert_valid_for_kubernetes(&objects);
}

/// `objects` pass Kubernetes 1.37's published schemas, strictly (`kubernetes-validate`).
pub(crate) fn assert_valid_for_kubernetes(objects: &[Value]) {
    let dir = tempfile_dir();
    let files: Vec<String> = objects
        .iter()
        .enumerate()
        .map(|(n, object)| {
            let path = format!("{dir}/{n}.json");
            std::fs::write(&path, object.to_string()).unwrap();
            path
        })
        .collect();
    let out = std::process::Command::new(portico_tests::kubernetes_validate())
        .args(["--strict", "-k", "1.37.0"])
        .args(&files)
        .output()
        .expect("kubernetes-validate runs");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{said}");
    assert_eq!(said.matches("passed for resource").count(), objects.len(), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh directory under the system's temporary one.
fn tempfile_dir() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("portico-manifests-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.to_string_lossy().into_owned()
}

/// An API over `table` with a demo cluster whose Pods are ready after `ready_after` and a demo
/// Guacamole; carol may
/// start desktops of group `beamline-1`, whose environment `xfce` exists; bob may not.
async fn with_cluster(
    table: Arc<dyn Table>,
    ready_after: std::time::Duration,
) -> (TestApi, Arc<portico_local::demo_cluster::DemoCluster>, Vec<portico_local::Running>, [String; 3]) {
    let (api, cluster, _, running, tokens) = with_cluster_and_guacamole(table, ready_after).await;
    (api, cluster, running, tokens)
}

/// As [`with_cluster`], with the demo Guacamole's handle (the logins it accepted); the
/// running servers are the cluster's, then Guacamole's.
async fn with_cluster_and_guacamole(
    table: Arc<dyn Table>,
    ready_after: std::time::Duration,
) -> (
    TestApi,
    Arc<portico_local::demo_cluster::DemoCluster>,
    Arc<portico_local::demo_guacamole::DemoGuacamole>,
    Vec<portico_local::Running>,
    [String; 3],
) {
    let mut config = test_config();
    let (cluster, running) = portico_local::demo_cluster::serve(&mut config).await.unwrap();
    *cluster.ready_after.lock().unwrap() = ready_after;
    let (guacamole, guacamole_running) = portico_local::demo_guacamole::serve(&mut config).await.unwrap();
    let running = vec![running, guacamole_running];
    let api = TestApi::start(table, config).await;
    let (admin, carol, bob) = setup(&api).await;
    let (status, answer) =
        send(&api, Method::PUT, "/environments/xfce", Some(&admin), Some(environment("beamline-1"))).await;
    assert_eq!(status, 201, "{answer}");
    (api, cluster, guacamole, running, [admin, carol, bob])
}

pub(crate) async fn usage(api: &TestApi, token: &str) -> i64 {
    send(api, Method::GET, "/auth/me", Some(token), None).await.1["usage"]["desktops"].as_i64().unwrap()
}

/// Reads the desktop until its state is `want` (at most 10 s).
pub(crate) async fn until(api: &TestApi, token: &str, id: &str, want: &str) -> Value {
    for _ in 0..200 {
        let (status, desktop) = send(api, Method::GET, &format!("/desktops/{id}"), Some(token), None).await;
        assert_eq!(status, 200, "{desktop}");
        if desktop["state"] == want {
            return desktop;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("desktop {id} never became {want}");
}

on_both_stores!(a_desktop_starts_becomes_ready_and_stops_giving_its_quota_back);

async fn a_desktop_starts_becomes_ready_and_stops_giving_its_quota_back(table: Arc<dyn Table>) {
    // Ready after long enough that the first read surely finds it starting, even on a busy
    // machine and DynamoDB Local.
    let (api, cluster, _running, [_, carol, bob]) = with_cluster(table, std::time::Duration::from_millis(1500)).await;
    let (status, started) =
        send(&api, Method::POST, "/desktops", Some(&carol), Some(json!({"environment": "xfce"}))).await;
    assert_eq!(status, 201, "{started}");
    assert_eq!((started["state"].as_str(), started["owner"].as_str()), (Some("starting"), Some("carol")));
    assert_eq!(started["resources"]["desktops"], 1);
    assert_eq!(started["resources"]["cpu"], 2000);
    let id = started["id"].as_str().unwrap().to_owned();
    assert_eq!(usage(&api, &carol).await, 1, "the quota is held");
    let (_, starting) = send(&api, Method::GET, &format!("/desktops/{id}"), Some(&carol), None).await;
    assert!(
        starting["progress"][0].as_str().unwrap().contains("Successfully assigned"),
        "the Pod's events: {starting}"
    );

    // What the cluster was sent: the Pod, then its Secret and Service, owned by it.
    let pod_name = format!("desktop-{id}");
    assert_eq!(cluster.names("Pod"), std::slice::from_ref(&pod_name));
    let created = cluster.created.lock().unwrap().clone();
    let kinds: Vec<&str> = created.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Pod", "Secret", "Service"]);
    assert_eq!(created[0]["spec"]["containers"][0]["image"], "registry.example.org/facility/xfce:1.4");
    let password = created[1]["stringData"]["password"].as_str().unwrap().to_owned();
    assert!(password.len() >= 24, "a fresh password");
    for owned in &created[1..] {
        assert_eq!(owned["metadata"]["ownerReferences"][0]["name"], pod_name.as_str());
    }

    let ready = until(&api, &carol, &id, "ready").await;
    assert_eq!(ready["progress"], json!([]));
    let (_, mine) = send(&api, Method::GET, "/desktops", Some(&carol), None).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);

    // Nobody else reads or stops it, nor sees it listed.
    for (method, path) in [(Method::GET, format!("/desktops/{id}")), (Method::DELETE, format!("/desktops/{id}"))] {
        assert_eq!(send(&api, method, &path, Some(&bob), None).await.0, 404);
    }
    assert_eq!(send(&api, Method::GET, "/desktops", Some(&bob), None).await.1["items"], json!([]));

    let (status, stopped) = send(&api, Method::DELETE, &format!("/desktops/{id}"), Some(&carol), None).await;
    assert_eq!(status, 200, "{stopped}");
    assert_eq!((stopped["state"].as_str(), stopped["reason"].as_str()), (Some("ended"), Some("stopped")));
    assert_eq!(usage(&api, &carol).await, 0, "the quota is back");
    assert!(
        cluster.names("Pod").is_empty() && cluster.names("Secret").is_empty() && cluster.names("Service").is_empty()
    );
    assert_eq!(send(&api, Method::DELETE, &format!("/desktops/{id}"), Some(&carol), None).await.0, 409);
    assert_eq!(usage(&api, &carol).await, 0, "given back once");

    // The password went to the cluster's Secret and nowhere else.
    for path in [format!("/desktops/{id}"), "/desktops".to_owned()] {
        let (_, body) = send(&api, Method::GET, &path, Some(&carol), None).await;
        assert!(!body.to_string().contains(&password), "{path}");
    }
    let logs = portico_tests::captured_logs();
    assert!(!logs.contains(&password), "the password is in no log line");
}

#[tokio::test]
async fn a_desktop_past_the_quota_a_broken_cluster_and_an_evicted_pod_leave_nothing_held() {
    let table: Arc<dyn Table> = Arc::new(portico_core::store::memory::MemoryTable::new());
    let (api, cluster, _running, [admin, carol, _]) = with_cluster(table, std::time::Duration::from_millis(100)).await;
    let quota = json!({"desktops": 1, "cpu": 100_000, "memory": 100_000, "storage": 1000});
    assert_eq!(send(&api, Method::PUT, "/admin/users/carol/quota", Some(&admin), Some(quota)).await.0, 200);
    let start = || send(&api, Method::POST, "/desktops", Some(&carol), Some(json!({"environment": "xfce"})));
    let (status, first) = start().await;
    assert_eq!(status, 201, "{first}");
    let (status, refused) = start().await;
    assert_eq!((status, refused["code"].as_str()), (409, Some("quota_exceeded")), "{refused}");
    assert_eq!(cluster.names("Pod").len(), 1, "nothing created for the refused start");

    // The kubelet evicts the Pod: the next read ends the desktop and gives its quota back.
    let id = first["id"].as_str().unwrap();
    until(&api, &carol, id, "ready").await;
    cluster.evict(&format!("desktop-{id}"));
    let ended = until(&api, &carol, id, "ended").await;
    assert_eq!(ended["reason"], "Evicted");
    assert_eq!(usage(&api, &carol).await, 0);
    assert!(cluster.names("Pod").is_empty(), "the evicted Pod removed");

    // The cluster down: 503, and nothing stays held.
    *cluster.fail.lock().unwrap() = Some(503);
    let (status, answer) = start().await;
    assert_eq!((status, answer["code"].as_str()), (503, Some("unavailable")), "{answer}");
    assert_eq!(usage(&api, &carol).await, 0, "the quota is back");
    *cluster.fail.lock().unwrap() = None;
    assert_eq!(start().await.0, 201, "and the next start works");

    // Unknown, unstartable and link environments.
    let (status, _) = send(&api, Method::POST, "/desktops", Some(&carol), Some(json!({"environment": "nope"}))).await;
    assert_eq!(status, 404);
    let link = json!({"title": "Jupyter", "kind": "link", "link": "https://jupyter.example.org/", "max_lifetime": 3600,
                      "group": "beamline-1"});
    assert_eq!(send(&api, Method::PUT, "/environments/jupyter", Some(&admin), Some(link)).await.0, 201);
    let (status, answer) =
        send(&api, Method::POST, "/desktops", Some(&carol), Some(json!({"environment": "jupyter"}))).await;
    assert_eq!((status, answer["link"].as_str()), (200, Some("https://jupyter.example.org/")), "{answer}");
    assert_eq!(usage(&api, &carol).await, 1, "a link reserves nothing (the one desktop running holds the 1)");
}

/// The objects a real start sends pass Kubernetes' published schemas, strictly.
#[tokio::test]
async fn what_a_start_sends_the_cluster_passes_kubernetes_published_schemas() {
    let table: Arc<dyn Table> = Arc::new(portico_core::store::memory::MemoryTable::new());
    let (api, cluster, _running, [_, carol, _]) = with_cluster(table, std::time::Duration::from_secs(60)).await;
    let (status, _) = send(&api, Method::POST, "/desktops", Some(&carol), Some(json!({"environment": "xfce"}))).await;
    assert_eq!(status, 201);
    let created = cluster.created.lock().unwrap().clone();
    assert_eq!(created.len(), 3, "the Pod, its Secret and its Service");
    assert_valid_for_kubernetes(&created);
}

/// Storage calls of each desktop route: a start 4 (the environment, the quota, the marker, the
/// record), a read 1 (2 when it records a change), a listing 1, an opening 1, an extension 2, a
/// stop 4.
#[tokio::test]
async fn each_desktop_route_makes_a_known_number_of_storage_calls() {
    let table: Arc<dyn Table> = Arc::new(portico_core::store::memory::MemoryTable::new());
    let (api, _cluster, _running, [_, carol, _]) = with_cluster(table, std::time::Duration::ZERO).await;
    let counted = |method: Method, path: String, body: Option<Value>| {
        let (api, carol) = (&api, carol.clone());
        async move {
            send(api, Method::GET, "/auth/me", Some(&carol), None).await;
            api.calls.take();
            let (status, answer) = send(api, method, &path, Some(&carol), body).await;
            assert!((200..300).contains(&status), "{path}: {status} {answer}");
            (api.calls.take(), answer)
        }
    };
    let start = json!({"environment": "xfce", "lifetime": 1800});
    let (c, started) = counted(Method::POST, "/desktops".into(), Some(start)).await;
    assert_eq!((c.get, c.add, c.put, c.total()), (1, 1, 2, 4), "environment, quota, marker, record: {c:?}");
    let path = format!("/desktops/{}", started["id"].as_str().unwrap());
    let (c, ready) = counted(Method::GET, path.clone(), None).await;
    assert_eq!(ready["state"], "ready");
    assert_eq!((c.get, c.put, c.total()), (1, 1, 2), "the record, then ready written under its revision: {c:?}");
    let (c, _) = counted(Method::GET, path.clone(), None).await;
    assert_eq!((c.get, c.total()), (1, 1), "nothing changed, nothing written: {c:?}");
    let (c, _) = counted(Method::GET, "/desktops".into(), None).await;
    assert_eq!((c.query, c.total()), (1, 1), "{c:?}");
    let (c, _) = counted(Method::POST, format!("{path}/connection"), None).await;
    assert_eq!((c.get, c.total()), (1, 1), "the record, read once to refresh it and for the login: {c:?}");
    let (c, _) = counted(Method::POST, format!("{path}/extend"), Some(json!({"seconds": 60}))).await;
    assert_eq!((c.get, c.put, c.total()), (1, 1, 2), "the record, then its end moved under its revision: {c:?}");
    let (c, _) = counted(Method::DELETE, path, None).await;
    assert_eq!((c.get, c.put, c.add, c.delete, c.total()), (1, 1, 1, 1, 4), "record, end, quota back, marker: {c:?}");
}

/// A ready desktop opens through Guacamole: a login for exactly its connection, sealed with
/// Guacamole's key, exchanged for a token; the password in the sealed login and nowhere else.
#[tokio::test]
async fn a_ready_desktop_opens_through_guacamole_once_and_only_for_its_owner() {
    use portico_desktops::guacamole::{Login, SecretKey};
    let table: Arc<dyn Table> = Arc::new(portico_core::store::memory::MemoryTable::new());
    let (api, cluster, guacamole, running, [_, carol, bob]) =
        with_cluster_and_guacamole(table, std::time::Duration::from_millis(1500)).await;
    let guacamole_running = &running[1];
    let namespace = api.services.config.desktops_namespace.clone();
    let (_, started) = send(&api, Method::POST, "/desktops", Some(&carol), Some(json!({"environment": "xfce"}))).await;
    let id = started["id"].as_str().unwrap().to_owned();
    let connection = format!("/desktops/{id}/connection");
    let (status, early) = send(&api, Method::POST, &connection, Some(&carol), None).await;
    assert_eq!((status, early["code"].as_str()), (409, Some("conflict")), "not ready yet: {early}");
    until(&api, &carol, &id, "ready").await;
    assert_eq!(send(&api, Method::POST, &connection, Some(&bob), None).await.0, 404, "only its owner opens it");

    let (status, opened) = send(&api, Method::POST, &connection, Some(&carol), None).await;
    assert_eq!(status, 200, "{opened}");
    assert_eq!(opened["expires_in"], 60);
    let accepted = guacamole.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 1, "the login was exchanged server-side");
    let token = &accepted[0].token;
    let url = opened["url"].as_str().unwrap();
    let name = format!("desktop-{id}");
    let fragment = portico_desktops::guacamole::client_fragment(&name);
    assert_eq!(url, format!("{}/{fragment}?token={token}", guacamole_url(guacamole_running)), "the connection's URL");
    let login = &accepted[0].login;
    assert_eq!(login.username, "carol");
    assert!(login.single_use);
    let now_ms = portico_core::store::now_epoch() as u64 * 1000;
    assert!(login.expires > now_ms && login.expires <= now_ms + 61_000, "a minute at most");
    assert_eq!(login.connections.len(), 1, "exactly this desktop's connection");
    let c = &login.connections[&name];
    let password = cluster.created.lock().unwrap()[1]["stringData"]["password"].as_str().unwrap().to_owned();
    assert_eq!(c.protocol, "vnc");
    assert_eq!(c.parameters["hostname"], format!("{name}.{namespace}.svc"));
    assert_eq!(c.parameters["port"], "5901");
    assert_eq!(c.parameters["password"], password, "the Secret's password, in the sealed login");
    assert!(!opened.to_string().contains(&password), "and not in the answer");
    assert!(!portico_tests::captured_logs().contains(&password), "nor in a log line");

    // Guacamole's own checks: a single-use login is refused the second time, another key's
    // blob is refused.
    let key = SecretKey::from_hex(portico_tests::GUACAMOLE_KEY).unwrap();
    let tokens = tokens_url(guacamole_running);
    // Sealing is deterministic (the extension's zero IV): the same login is the same blob.
    assert_eq!(exchange_status(&tokens, login.seal(&key).unwrap()).await, 403, "a replay");
    let mut later = login.clone();
    later.expires += 1;
    let blob = later.seal(&key).unwrap();
    assert_eq!(exchange_status(&tokens, blob.clone()).await, 200, "another login is accepted once");
    assert_eq!(exchange_status(&tokens, blob).await, 403, "single use");
    let other = SecretKey::from_hex("00112233445566778899aabbccddeeff").unwrap();
    assert_eq!(exchange_status(&tokens, Login::seal(&later, &other).unwrap()).await, 403, "another key");

    // Stopped: no longer opens.
    assert_eq!(send(&api, Method::DELETE, &format!("/desktops/{id}"), Some(&carol), None).await.0, 200);
    assert_eq!(send(&api, Method::POST, &connection, Some(&carol), None).await.0, 409);
}

fn guacamole_url(running: &portico_local::Running) -> String {
    format!("{}{}", running.url(), portico_local::demo_guacamole::DEMO_GUACAMOLE_PATH)
}

fn tokens_url(running: &portico_local::Running) -> String {
    format!("{}/api/tokens", guacamole_url(running))
}

async fn exchange_status(tokens: &str, blob: String) -> u16 {
    let form: String = form_urlencoded::Serializer::new(String::new()).append_pair("data", &blob).finish();
    let r = reqwest::Client::new()
        .post(tokens)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

on_both_stores!(the_sweep_ends_dead_desktops_and_gives_back_what_a_dead_start_held);

/// Nobody reads: the scheduled sweep ends a desktop whose Pod was evicted, and gives back what
/// a start that died before writing its record held (its marker names it).
async fn the_sweep_ends_dead_desktops_and_gives_back_what_a_dead_start_held(table: Arc<dyn Table>) {
    use portico_core::quotas::{Quotas, Resources};
    use portico_core::store::{Condition, Item, Key, now_epoch};
    let (api, cluster, _running, [_, carol, _]) = with_cluster(Arc::clone(&table), std::time::Duration::ZERO).await;
    let (_, started) = send(&api, Method::POST, "/desktops", Some(&carol), Some(json!({"environment": "xfce"}))).await;
    let id = started["id"].as_str().unwrap().to_owned();
    assert_eq!(api.platform.desktops().sweep().await.unwrap(), 0, "a live desktop stays");
    cluster.evict(&format!("desktop-{id}"));
    assert_eq!(api.platform.desktops().sweep().await.unwrap(), 1, "the evicted one ends");
    assert_eq!(usage(&api, &carol).await, 0, "and its quota is back, with no read");
    assert!(cluster.names("Pod").is_empty());

    // A start that reserved and wrote its marker an hour ago, then died.
    let held = Resources { desktops: 1, cpu: 2000, ..Resources::default() };
    let limits = Resources { desktops: 5, cpu: 10_000, ..Resources::default() };
    Quotas::new(table.as_ref()).reserve_for("carol", "deadbeefdeadbeef", &held, &limits).await.unwrap();
    let mut marker = Item::new(Key::new("LIVE_DESKTOPS", "carol/deadbeefdeadbeef")).with_n("since", now_epoch() - 3600);
    for (name, amount) in held.fields() {
        marker = marker.with_n(name, amount);
    }
    table.put(marker, Condition::Always).await.unwrap();
    api.platform.services.identity.forget_all();
    assert_eq!(usage(&api, &carol).await, 1);
    api.platform.desktops().sweep().await.unwrap();
    assert_eq!(usage(&api, &carol).await, 0, "what the dead start held is back");
    assert!(table.get(&Key::new("LIVE_DESKTOPS", "carol/deadbeefdeadbeef")).await.unwrap().is_none());
    api.platform.desktops().sweep().await.unwrap();
    assert_eq!(usage(&api, &carol).await, 0, "once");
}

on_both_stores!(multi_thread: fifty_concurrent_starts_against_a_quota_of_three);

/// Fifty starts at once through the API against a quota of three desktops: exactly three run,
/// the rest are 409 `quota_exceeded` with nothing created on the cluster for them.
async fn fifty_concurrent_starts_against_a_quota_of_three(table: Arc<dyn Table>) {
    let (api, cluster, _running, [admin, carol, _]) = with_cluster(table, std::time::Duration::from_secs(60)).await;
    let quota = json!({"desktops": 3, "cpu": 1_000_000, "memory": 1_000_000, "storage": 10_000});
    assert_eq!(send(&api, Method::PUT, "/admin/users/carol/quota", Some(&admin), Some(quota)).await.0, 200);
    usage(&api, &carol).await; // carol's identity read once, before the race
    let api = Arc::new(api);
    let starts: Vec<_> = (0..50)
        .map(|_| {
            let (api, carol) = (Arc::clone(&api), carol.clone());
            tokio::spawn(async move {
                send(&api, Method::POST, "/desktops", Some(&carol), Some(json!({"environment": "xfce"}))).await
            })
        })
        .collect();
    let mut started = 0;
    for start in starts {
        let (status, answer) = start.await.unwrap();
        match status {
            201 => started += 1,
            409 => assert_eq!(answer["code"], "quota_exceeded", "{answer}"),
            other => panic!("{other}: {answer}"),
        }
    }
    assert_eq!(started, 3);
    assert_eq!(usage(&api, &carol).await, 3);
    assert_eq!(cluster.names("Pod").len(), 3, "a Pod for each start that got room, and none else");
    let (_, mine) = send(&api, Method::GET, "/desktops", Some(&carol), None).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 3);
}

/// A desktop started for less than its environment's maximum is extended up to it, by its
/// owner only; the Pod's own deadline is the maximum from the start.
#[tokio::test]
async fn a_desktop_is_extended_up_to_its_environments_maximum() {
    let table: Arc<dyn Table> = Arc::new(portico_core::store::memory::MemoryTable::new());
    let (api, cluster, _running, [_, carol, bob]) = with_cluster(table, std::time::Duration::ZERO).await;
    let start = |lifetime: u64| {
        send(&api, Method::POST, "/desktops", Some(&carol), Some(json!({"environment": "xfce", "lifetime": lifetime})))
    };
    let (status, refused) = start(28_801).await;
    assert_eq!((status, refused["field"].as_str()), (400, Some("lifetime")), "past the maximum: {refused}");
    let (status, started) = start(600).await;
    assert_eq!(status, 201, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    assert_eq!(
        cluster.created.lock().unwrap()[0]["spec"]["activeDeadlineSeconds"],
        28_800,
        "the Pod's deadline: the maximum"
    );
    let seconds = |s: &Value, field: &str| {
        time::OffsetDateTime::parse(s[field].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp()
    };
    assert_eq!(seconds(&started, "ends_at") - seconds(&started, "created_at"), 600);
    assert_eq!(seconds(&started, "latest_end") - seconds(&started, "created_at"), 28_800);
    let extend = format!("/desktops/{id}/extend");
    let (status, extended) = send(&api, Method::POST, &extend, Some(&carol), Some(json!({"seconds": 3000}))).await;
    assert_eq!(status, 200, "{extended}");
    assert_eq!(seconds(&extended, "ends_at") - seconds(&extended, "created_at"), 3600);
    let (_, read) = send(&api, Method::GET, &format!("/desktops/{id}"), Some(&carol), None).await;
    assert_eq!(read["ends_at"], extended["ends_at"], "recorded");
    let (status, refused) = send(&api, Method::POST, &extend, Some(&carol), Some(json!({"seconds": 25_201}))).await;
    assert_eq!((status, refused["field"].as_str()), (400, Some("seconds")), "past its latest end: {refused}");
    assert_eq!(send(&api, Method::POST, &extend, Some(&bob), Some(json!({"seconds": 60}))).await.0, 404);
    assert_eq!(send(&api, Method::DELETE, &format!("/desktops/{id}"), Some(&carol), None).await.0, 200);
    assert_eq!(send(&api, Method::POST, &extend, Some(&carol), Some(json!({"seconds": 60}))).await.0, 409, "ended");
}

on_both_stores!(administrators_see_every_live_desktop_and_stop_anyones);

async fn administrators_see_every_live_desktop_and_stop_anyones(table: Arc<dyn Table>) {
    let (api, _cluster, _running, [admin, carol, bob]) =
        with_cluster(table, std::time::Duration::from_millis(100)).await;
    let (status, started) =
        send(&api, Method::POST, "/desktops", Some(&carol), Some(json!({"environment": "xfce"}))).await;
    assert_eq!(status, 201, "{started}");
    let id = started["id"].as_str().unwrap();
    let (status, every) = send(&api, Method::GET, "/desktops?all=true", Some(&admin), None).await;
    assert_eq!(status, 200, "{every}");
    let owners: Vec<&str> = every["items"].as_array().unwrap().iter().map(|d| d["owner"].as_str().unwrap()).collect();
    assert_eq!(owners, ["carol"]);
    assert_eq!(send(&api, Method::GET, "/desktops?all=true", Some(&carol), None).await.0, 403);
    assert_eq!(send(&api, Method::GET, "/desktops?all=maybe", Some(&admin), None).await.0, 400);

    // Bob cannot stop it by naming its owner; an administrator can.
    let by_owner = format!("/desktops/{id}?owner=carol");
    assert_eq!(send(&api, Method::DELETE, &by_owner, Some(&bob), None).await.0, 403);
    let (status, stopped) = send(&api, Method::DELETE, &by_owner, Some(&admin), None).await;
    assert_eq!((status, stopped["state"].as_str()), (200, Some("ended")), "{stopped}");
    assert_eq!(usage(&api, &carol).await, 0, "the quota is back");
    let (_, every) = send(&api, Method::GET, "/desktops?all=true", Some(&admin), None).await;
    assert_eq!(every["items"], json!([]), "no longer live");
}

/// A view-only share: the owner lets bob watch; bob's login joins the owner's connection,
/// read-only, without the password; nobody else's, and not after the owner takes it back.
#[tokio::test]
async fn an_owner_lets_another_user_watch_read_only_and_takes_it_back() {
    let table: Arc<dyn Table> = Arc::new(portico_core::store::memory::MemoryTable::new());
    let (api, _cluster, guacamole, _running, [admin, carol, bob]) =
        with_cluster_and_guacamole(table, std::time::Duration::ZERO).await;
    let (_, started) = send(&api, Method::POST, "/desktops", Some(&carol), Some(json!({"environment": "xfce"}))).await;
    let id = started["id"].as_str().unwrap().to_owned();
    until(&api, &carol, &id, "ready").await;
    let viewers = format!("/desktops/{id}/viewers/bob");
    let view = format!("/desktops/{id}/connection?owner=carol");

    // Not shared yet: bob finds nothing, nor does he by his own name.
    assert_eq!(send(&api, Method::POST, &view, Some(&bob), None).await.0, 404);
    assert_eq!(send(&api, Method::PUT, &viewers, Some(&bob), None).await.0, 404, "only the owner shares");
    send(&api, Method::GET, "/auth/me", Some(&carol), None).await;
    api.calls.take();
    let (status, shared) = send(&api, Method::PUT, &viewers, Some(&carol), None).await;
    assert_eq!((status, &shared["viewers"]), (200, &json!(["bob"])), "{shared}");
    let c = api.calls.take();
    assert_eq!((c.get, c.put, c.total()), (1, 1, 2), "the record, read and written under its revision: {c:?}");
    let (status, opened) = send(&api, Method::POST, &view, Some(&bob), None).await;
    assert_eq!(status, 200, "{opened}");
    assert!(opened["url"].as_str().unwrap().contains("?token="), "{opened}");
    let login = guacamole.accepted.lock().unwrap().last().unwrap().login.clone();
    assert_eq!(login.username, "bob");
    let (name, connection) = login.connections.iter().next().unwrap();
    assert_eq!(name, &format!("desktop-{id}-view"));
    assert_eq!(connection.join.as_deref(), Some(format!("desktop-{id}").as_str()), "joins the owner's connection");
    assert_eq!(connection.parameters.get("read-only").map(String::as_str), Some("true"));
    assert!(!connection.parameters.contains_key("password"), "a viewer never gets the password");
    // Nobody else, and the owner is no viewer.
    assert_eq!(send(&api, Method::POST, &view, Some(&admin), None).await.0, 404);
    let (status, refused) = send(&api, Method::PUT, &format!("/desktops/{id}/viewers/carol"), Some(&carol), None).await;
    assert_eq!(status, 400, "{refused}");

    // Taken back: bob finds nothing again.
    let (status, unshared) = send(&api, Method::DELETE, &viewers, Some(&carol), None).await;
    assert_eq!((status, &unshared["viewers"]), (200, &json!([])), "{unshared}");
    assert_eq!(send(&api, Method::POST, &view, Some(&bob), None).await.0, 404);
    // At most ten viewers.
    for n in 0..10 {
        assert_eq!(send(&api, Method::PUT, &format!("/desktops/{id}/viewers/v{n}"), Some(&carol), None).await.0, 200);
    }
    assert_eq!(send(&api, Method::PUT, &viewers, Some(&carol), None).await.0, 409);
}
