//! Experiments from the facility's user office (CalipsoPlus's API, served by the demo user
//! office on 127.0.0.1 with HTTP Basic credentials), favourites, and desktops started from an
//! experiment: its uid/gid, its datasets read-only, the user's results read-write, and the
//! facility's word for desktops without one.

use std::sync::Arc;

use portico_core::store::Table;
use portico_local::demo_user_office::{DemoUserOffice, sample_experiments};
use portico_tests::{TestApi, test_config};
use reqwest::Method;
use serde_json::{Value, json};

use crate::desktops::{assert_valid_for_kubernetes, environment, send, setup, usage};

struct Facility {
    api: TestApi,
    office: Arc<DemoUserOffice>,
    cluster: Arc<portico_local::demo_cluster::DemoCluster>,
    _running: Vec<portico_local::Running>,
    carol: String,
    bob: String,
}

/// An API with a demo cluster, a demo Guacamole and a demo user office listing carol's two
/// experiments (uids 41002/41003) and one of bob's; environment `xfce` exists for carol.
async fn facility(table: Arc<dyn Table>) -> Facility {
    facility_with(table, test_config()).await
}

async fn facility_with(table: Arc<dyn Table>, mut config: portico_core::Config) -> Facility {
    config.desktops_datasets_volume = Some(r#"{"persistentVolumeClaim": {"claimName": "experiments"}}"#.into());
    config.desktops_results_volume = Some(r#"{"nfs": {"server": "nfs.facility", "path": "/results"}}"#.into());
    let (cluster, cluster_running) = portico_local::demo_cluster::serve(&mut config).await.unwrap();
    *cluster.ready_after.lock().unwrap() = std::time::Duration::from_millis(200);
    let (_, guacamole_running) = portico_local::demo_guacamole::serve(&mut config).await.unwrap();
    let (office, office_running) = portico_local::demo_user_office::serve(&mut config).await.unwrap();
    office.experiments.lock().unwrap().insert("carol".into(), sample_experiments(41_002));
    let bobs = json!({"subject": "Bob's own", "proposal_id": "2026-0999", "body": "", "beam_line": "BL01",
                      "uid": 50_000, "gid": 50_000, "sessions": []});
    office.experiments.lock().unwrap().insert("bob".into(), vec![bobs]);
    office.authorized.lock().unwrap().insert("carol".into(), false);
    let api = TestApi::start(table, config).await;
    let (admin, carol, bob) = setup(&api).await;
    let (status, answer) =
        send(&api, Method::PUT, "/environments/xfce", Some(&admin), Some(environment("beamline-1"))).await;
    assert_eq!(status, 201, "{answer}");
    Facility { api, office, cluster, _running: vec![cluster_running, guacamole_running, office_running], carol, bob }
}

fn proposal_ids(page: &Value) -> Vec<&str> {
    page["items"].as_array().unwrap().iter().map(|e| e["proposal_id"].as_str().unwrap()).collect()
}

on_both_stores!(the_callers_experiments_come_from_the_user_office_with_favourites_first);

async fn the_callers_experiments_come_from_the_user_office_with_favourites_first(table: Arc<dyn Table>) {
    let f = facility(table).await;
    let (api, carol) = (&f.api, Some(f.carol.as_str()));
    let (status, page) = send(api, Method::GET, "/experiments", carol, None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(proposal_ids(&page), ["2026-0042", "2026-0117"]);
    assert_eq!((page["count"].as_u64(), page["page"].as_u64(), &page["next_page"]), (Some(2), Some(1), &Value::Null));
    let first = &page["items"][0];
    assert_eq!(first["favorite"], false);
    assert_eq!(first["sessions"][1]["number"], "2");
    assert!(first["sessions"][0].get("data_set_path").is_none() && first.get("uid").is_none(), "{first}");
    assert_eq!(
        f.office.requests.lock().unwrap().clone(),
        ["GET /demo-user-office/experiments/carol/?page=1&page_size=20"]
    );

    // Search, ordering and paging go through as the user office takes them.
    let (status, page) =
        send(api, Method::GET, "/experiments?ordering=-proposal_id&page=1&page_size=1", carol, None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!((proposal_ids(&page), page["next_page"].as_u64()), (vec!["2026-0117"], Some(2)));
    let (_, found) = send(api, Method::GET, "/experiments?search=xanes", carol, None).await;
    assert_eq!(proposal_ids(&found), ["2026-0117"]);
    let asked = f.office.requests.lock().unwrap().clone();
    assert!(
        asked.contains(&"GET /demo-user-office/experiments/carol/?page=1&page_size=1&ordering=-proposal_id".into())
    );
    // Reused for a while: the same listing again asks the user office nothing.
    send(api, Method::GET, "/experiments?search=xanes", carol, None).await;
    assert_eq!(f.office.requests.lock().unwrap().len(), asked.len());

    // A favourite comes first; only the caller's own experiments can be one.
    let favorite = "/experiments/2026-0117/favorite";
    assert_eq!(send(api, Method::PUT, favorite, carol, None).await.0, 204);
    assert_eq!(send(api, Method::PUT, favorite, carol, None).await.0, 204, "again: no change");
    let (_, page) = send(api, Method::GET, "/experiments", carol, None).await;
    assert_eq!(proposal_ids(&page), ["2026-0117", "2026-0042"]);
    assert_eq!(
        (page["items"][0]["favorite"].as_bool(), page["items"][1]["favorite"].as_bool()),
        (Some(true), Some(false))
    );
    let (status, refused) = send(api, Method::PUT, "/experiments/2026-0999/favorite", carol, None).await;
    assert_eq!((status, refused["code"].as_str()), (404, Some("not_found")), "bob's experiment: {refused}");
    let (_, bobs) = send(api, Method::GET, "/experiments", Some(&f.bob), None).await;
    assert_eq!((proposal_ids(&bobs), bobs["items"][0]["favorite"].as_bool()), (vec!["2026-0999"], Some(false)));
    assert_eq!(send(api, Method::DELETE, favorite, carol, None).await.0, 204);
    assert_eq!(send(api, Method::DELETE, favorite, carol, None).await.0, 204, "again: no change");
    assert_eq!(send(api, Method::DELETE, "/experiments/null%2Cnull/favorite", carol, None).await.0, 404);
    let (_, page) = send(api, Method::GET, "/experiments", carol, None).await;
    assert_eq!(proposal_ids(&page), ["2026-0042", "2026-0117"]);

    // Mistakes are the caller's: 400 naming the part, and nobody is asked.
    let before = f.office.requests.lock().unwrap().len();
    for query in ["ordering=uid", "page=0", "page_size=1000", "colour=blue", "page=two"] {
        let (status, refused) = send(api, Method::GET, &format!("/experiments?{query}"), carol, None).await;
        assert_eq!((status, refused["code"].as_str()), (400, Some("invalid_query")), "{query}: {refused}");
    }
    assert_eq!(f.office.requests.lock().unwrap().len(), before);
    assert_eq!(send(api, Method::GET, "/experiments", None, None).await.0, 401);
}

#[tokio::test]
async fn a_user_office_that_fails_is_a_gateway_error_and_none_configured_is_503() {
    let table: Arc<dyn Table> = Arc::new(portico_core::store::memory::MemoryTable::new());
    let f = facility(table).await;
    let carol = Some(f.carol.as_str());
    *f.office.fail.lock().unwrap() = Some(500);
    let (status, answer) = send(&f.api, Method::GET, "/experiments", carol, None).await;
    assert_eq!((status, answer["code"].as_str()), (502, Some("upstream_failed")), "{answer}");
    *f.office.fail.lock().unwrap() = Some(403);
    let (status, answer) = send(&f.api, Method::GET, "/experiments?page_size=5", carol, None).await;
    assert_eq!(status, 502, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("credentials"), "{answer}");

    let api = TestApi::start(Arc::new(portico_core::store::memory::MemoryTable::new()), test_config()).await;
    let (status, answer) = send(&api, Method::GET, "/experiments", Some(&api.token("carol")), None).await;
    assert_eq!((status, answer["code"].as_str()), (503, Some("unavailable")), "{answer}");
}

on_both_stores!(a_desktop_from_an_experiment_runs_as_its_uid_with_its_datasets_read_only);

async fn a_desktop_from_an_experiment_runs_as_its_uid_with_its_datasets_read_only(table: Arc<dyn Table>) {
    let f = facility(table).await;
    let (api, carol) = (&f.api, Some(f.carol.as_str()));
    let start = |experiment: &str| json!({"environment": "xfce", "experiment": experiment});
    let (status, started) = send(api, Method::POST, "/desktops", carol, Some(start("2026-0042"))).await;
    assert_eq!(status, 201, "{started}");
    assert_eq!(started["experiment"], "2026-0042");

    let pod = f.cluster.created.lock().unwrap()[0].clone();
    let spec = &pod["spec"];
    assert_eq!(
        (spec["securityContext"]["runAsUser"].as_u64(), spec["securityContext"]["runAsGroup"].as_u64()),
        (Some(41_002), Some(41_002))
    );
    let mounts = spec["containers"][0]["volumeMounts"].as_array().unwrap().clone();
    assert_eq!(
        mounts,
        [
            json!({"name": "datasets", "mountPath": "/data/1", "subPath": "2026/2026-0042/1", "readOnly": true}),
            json!({"name": "datasets", "mountPath": "/data/2", "subPath": "2026/2026-0042/2", "readOnly": true}),
            json!({"name": "results", "mountPath": "/results", "subPath": "carol", "readOnly": false}),
        ]
    );
    let volumes = spec["volumes"].as_array().unwrap();
    assert_eq!(volumes[0]["persistentVolumeClaim"], json!({"claimName": "experiments", "readOnly": true}));
    assert_valid_for_kubernetes(std::slice::from_ref(&pod));
    let id = started["id"].as_str().unwrap();
    let (_, read) = send(api, Method::GET, &format!("/desktops/{id}"), carol, None).await;
    assert_eq!(read["experiment"], "2026-0042");
    assert_eq!(send(api, Method::DELETE, &format!("/desktops/{id}"), carol, None).await.0, 200);

    // Bob's experiment, or one nobody has, is not carol's to name: 404, nothing held or sent.
    let sent = f.cluster.created.lock().unwrap().len();
    for experiment in ["2026-0999", "1999-0001"] {
        let (status, refused) = send(api, Method::POST, "/desktops", carol, Some(start(experiment))).await;
        assert_eq!((status, refused["code"].as_str()), (404, Some("not_found")), "{experiment}: {refused}");
    }
    let (status, refused) = send(api, Method::POST, "/desktops", carol, Some(start("../../etc"))).await;
    assert_eq!((status, refused["field"].as_str()), (400, Some("experiment")), "a path is no experiment: {refused}");
    assert_eq!(usage(api, &f.carol).await, 0);
    assert_eq!(f.cluster.created.lock().unwrap().len(), sent);
}

#[tokio::test]
async fn without_an_experiment_a_desktop_needs_the_facilitys_word() {
    let table: Arc<dyn Table> = Arc::new(portico_core::store::memory::MemoryTable::new());
    let f = facility_with(table, portico_core::Config { user_office_cache_ttl: 0, ..test_config() }).await;
    let carol = f.carol.clone();
    let bare = json!({"environment": "xfce"});
    let (status, refused) = send(&f.api, Method::POST, "/desktops", Some(&carol), Some(bare.clone())).await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("forbidden")), "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("experiment"), "{refused}");
    assert_eq!(usage(&f.api, &carol).await, 0);
    assert!(f.cluster.created.lock().unwrap().is_empty());
    let asked = f.office.requests.lock().unwrap().clone();
    assert_eq!(asked, ["POST /demo-user-office/authorized"]);

    // Once the facility says yes (asked again: nothing is reused here), it starts, as the
    // configured uid and without datasets.
    f.office.authorized.lock().unwrap().insert("carol".into(), true);
    let (status, started) = send(&f.api, Method::POST, "/desktops", Some(&carol), Some(bare)).await;
    assert_eq!(status, 201, "{started}");
    assert_eq!(started["experiment"], Value::Null);
    assert_eq!(f.office.requests.lock().unwrap().len(), 2);
    let pod = f.cluster.created.lock().unwrap()[0].clone();
    assert_eq!(pod["spec"]["securityContext"]["runAsUser"], 1000, "the configured uid");
    assert!(pod["spec"]["containers"][0]["volumeMounts"].as_array().unwrap().iter().all(|m| m["name"] != "datasets"));
}

/// Storage calls of the experiments' routes: a listing 1 (the favourites; the experiments are the
/// user office's), marking 1, unmarking 1; a start from an experiment as one without (4).
#[tokio::test]
async fn each_experiment_route_makes_a_known_number_of_storage_calls() {
    let f = facility(Arc::new(portico_core::store::memory::MemoryTable::new())).await;
    let carol = f.carol.clone();
    let counted = |method: Method, path: &'static str, body: Option<Value>| {
        let (api, carol) = (&f.api, carol.clone());
        async move {
            send(api, Method::GET, "/auth/me", Some(&carol), None).await;
            api.calls.take();
            let (status, answer) = send(api, method, path, Some(&carol), body).await;
            assert!((200..300).contains(&status), "{path}: {status} {answer}");
            api.calls.take()
        }
    };
    let c = counted(Method::GET, "/experiments", None).await;
    assert_eq!((c.query, c.total()), (1, 1), "the favourites: {c:?}");
    let c = counted(Method::PUT, "/experiments/2026-0042/favorite", None).await;
    assert_eq!((c.put, c.total()), (1, 1), "{c:?}");
    let c = counted(Method::DELETE, "/experiments/2026-0042/favorite", None).await;
    assert_eq!((c.delete, c.total()), (1, 1), "{c:?}");
    let c = counted(Method::POST, "/desktops", Some(json!({"environment": "xfce", "experiment": "2026-0117"}))).await;
    assert_eq!(c.total(), 4, "environment, quota, marker, record: {c:?}");
}
