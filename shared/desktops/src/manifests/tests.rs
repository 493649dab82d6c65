//! The objects a desktop is made of, checked against what the contract asks of them.

use serde_json::{Value, json};

use super::*;
use crate::environments::{DesktopProtocol, Environment, EnvironmentKind};

fn environment() -> Environment {
    Environment {
        name: "xfce".into(),
        title: "Analysis desktop".into(),
        description: String::new(),
        kind: EnvironmentKind::Kubernetes,
        image: Some("registry.example.org/facility/xfce:1.4".into()),
        protocol: Some(DesktopProtocol::Vnc),
        port: Some(5901),
        link: None,
        cpu: 2000,
        memory: 4096,
        storage: 10,
        max_lifetime: 28_800,
        group: "beamline-1".into(),
        updated_at: "2026-12-07T00:00:00Z".into(),
    }
}

fn spec(environment: &Environment) -> DesktopSpec<'_> {
    DesktopSpec {
        id: "3f2a9c",
        owner: "alice@facility.example",
        environment,
        lifetime: 7200,
        uid: 41_002,
        gid: 41_000,
        datasets: Some(Mount {
            source: json!({"persistentVolumeClaim": {"claimName": "experiments"}}),
            folders: vec![
                (format!("{DATASETS_PATH}/1"), "2026/proposal-77/1".into()),
                (format!("{DATASETS_PATH}/2"), "2026/proposal-77/2".into()),
            ],
        }),
        results: Some(Mount {
            source: json!({"nfs": {"server": "nfs.facility", "path": "/results"}}),
            folders: vec![(RESULTS_PATH.into(), "alice".into())],
        }),
        guacd_labels: None,
    }
}

#[test]
fn the_pod_is_bounded_unprivileged_and_reserves_what_the_environment_says() {
    let environment = environment();
    let pod = spec(&environment).pod();
    let spec = &pod["spec"];
    assert_eq!(pod["metadata"]["name"], "desktop-3f2a9c");
    assert_eq!(pod["metadata"]["labels"]["portico.dev/desktop"], "3f2a9c");
    let owner = pod["metadata"]["labels"]["portico.dev/owner"].as_str().unwrap();
    assert!(owner.len() <= 63 && !owner.contains('@'), "a valid label value: {owner}");
    assert_eq!(pod["metadata"]["annotations"]["portico.dev/owner"], "alice@facility.example");
    assert_eq!(spec["activeDeadlineSeconds"], 7200);
    assert_eq!(spec["automountServiceAccountToken"], false, "no service-account token");
    assert_eq!(spec["restartPolicy"], "Never");
    assert_eq!(
        (spec["securityContext"]["runAsUser"].as_u64(), spec["securityContext"]["runAsGroup"].as_u64()),
        (Some(41_002), Some(41_000))
    );
    let container = &spec["containers"][0];
    assert_eq!(container["image"], "registry.example.org/facility/xfce:1.4");
    assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(container["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    let reserved = json!({"cpu": "2000m", "memory": "4096Mi", "ephemeral-storage": "10Gi"});
    assert_eq!((&container["resources"]["requests"], &container["resources"]["limits"]), (&reserved, &reserved));
    assert_eq!(container["readinessProbe"]["tcpSocket"]["port"], 5901);
    // The password comes from the Secret, never from the Pod's own spec.
    let env = &container["env"][0];
    assert_eq!(
        (env["name"].as_str(), env["valueFrom"]["secretKeyRef"]["name"].as_str()),
        (Some(PASSWORD_ENV), Some("desktop-3f2a9c-password"))
    );
    assert!(env.get("value").is_none());
}

#[test]
fn the_datasets_are_mounted_read_only_and_the_results_read_write() {
    let environment = environment();
    let pod = spec(&environment).pod();
    let mounts = pod["spec"]["containers"][0]["volumeMounts"].as_array().unwrap();
    let mount = |name: &str| mounts.iter().find(|m| m["name"] == name).unwrap().clone();
    let datasets: Vec<_> = mounts.iter().filter(|m| m["name"] == "datasets").cloned().collect();
    assert_eq!(
        datasets,
        [
            json!({"name": "datasets", "mountPath": "/data/1", "subPath": "2026/proposal-77/1", "readOnly": true}),
            json!({"name": "datasets", "mountPath": "/data/2", "subPath": "2026/proposal-77/2", "readOnly": true}),
        ]
    );
    assert_eq!(
        mount("results"),
        json!({"name": "results", "mountPath": "/results", "subPath": "alice", "readOnly": false})
    );
    let volumes = pod["spec"]["volumes"].as_array().unwrap();
    let datasets = volumes.iter().find(|v| v["name"] == "datasets").unwrap();
    assert_eq!(
        datasets["persistentVolumeClaim"],
        json!({"claimName": "experiments", "readOnly": true}),
        "the claim itself read-only too"
    );
    let results = volumes.iter().find(|v| v["name"] == "results").unwrap();
    assert!(results["nfs"].get("readOnly").is_none());
}

#[test]
fn the_secret_service_and_policy_are_owned_by_the_pod() {
    let environment = environment();
    let labels = serde_json::Map::from_iter([("app".to_owned(), Value::from("guacd"))]);
    let mut desktop = spec(&environment);
    assert!(desktop.network_policy("uid-1").is_none(), "no policy without guacd's labels");
    desktop.guacd_labels = Some(&labels);
    for object in [desktop.secret("uid-1", "pw"), desktop.service("uid-1"), desktop.network_policy("uid-1").unwrap()] {
        let owner = &object["metadata"]["ownerReferences"][0];
        assert_eq!(
            (owner["kind"].as_str(), owner["name"].as_str(), owner["uid"].as_str()),
            (Some("Pod"), Some("desktop-3f2a9c"), Some("uid-1")),
            "{object}"
        );
    }
    let service = desktop.service("uid-1");
    assert_eq!(service["spec"]["type"], "ClusterIP");
    assert_eq!(service["spec"]["selector"], json!({"portico.dev/desktop": "3f2a9c"}));
    assert_eq!(desktop.secret("uid-1", "pw")["stringData"][PASSWORD_KEY], "pw");
    let policy = desktop.network_policy("uid-1").unwrap();
    assert_eq!(policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"], json!({"app": "guacd"}));
    assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"], 5901);
}

#[test]
fn a_pod_is_ready_when_running_with_an_ip_and_every_container_ready() {
    let status = |s: Value| pod_state(&json!({"status": s}));
    assert_eq!(status(json!({"phase": "Pending"})), PodState::Starting);
    assert_eq!(
        status(json!({"phase": "Running", "podIP": "10.1.2.3", "containerStatuses": [{"ready": false}]})),
        PodState::Starting
    );
    assert_eq!(
        status(json!({"phase": "Running", "containerStatuses": [{"ready": true}]})),
        PodState::Starting,
        "no IP yet"
    );
    assert_eq!(
        status(json!({"phase": "Running", "podIP": "10.1.2.3", "containerStatuses": [{"ready": true}]})),
        PodState::Ready
    );
    assert_eq!(
        status(json!({"phase": "Failed", "reason": "DeadlineExceeded"})),
        PodState::Ended("DeadlineExceeded".into())
    );
    assert_eq!(status(json!({"phase": "Failed", "reason": "Evicted"})), PodState::Ended("Evicted".into()));
    assert_eq!(status(json!({"phase": "Succeeded"})), PodState::Ended("Succeeded".into()));
}
