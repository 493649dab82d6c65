//! Remote desktops through the emulator: the environments' registry (who writes it, who sees
//! which environment, what an environment may be, what each route costs), on both stores.

use std::sync::Arc;

use portico_core::store::Table;
use portico_core::store::counting::Calls;
use portico_tests::{TestApi, test_config};
use reqwest::Method;
use serde_json::{Value, json};

fn environment(group: &str) -> Value {
    json!({"title": "Analysis desktop", "kind": "kubernetes", "image": "registry.example.org/facility/xfce:1.4",
           "protocol": "vnc", "port": 5901, "cpu": 2000, "memory": 4096, "storage": 10, "max_lifetime": 28800,
           "group": group})
}

async fn send(api: &TestApi, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut r = api.req(method, path, token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `carol` may start desktops of group `beamline-1`; `bob` of none.
async fn setup(api: &TestApi) -> (String, String, String) {
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
            sub_path: "p-77".into(),
        }),
        results: Some(Mount {
            source: json!({"nfs": {"server": "nfs.facility", "path": "/results"}}),
            sub_path: "alice".into(),
        }),
        guacd_labels: Some(&guacd),
    };
    let bare = DesktopSpec { datasets: None, results: None, guacd_labels: None, ..full.clone() };
    let host_path = DesktopSpec {
        datasets: Some(Mount {
            source: json!({"hostPath": {"path": "/data", "type": "Directory"}}),
            sub_path: "p".into(),
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
    let dir = tempfile_dir();
    let files: Vec<String> = objects
        .iter()
        .map(|(name, object)| {
            let path = format!("{dir}/{name}.json");
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
