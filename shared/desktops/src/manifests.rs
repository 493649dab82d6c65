//! A desktop's Kubernetes objects, as the established spawners make them (KubeSpawner, Open
//! OnDemand): one bare Pod, and a Secret (the desktop's password), a ClusterIP Service and,
//! optionally, a NetworkPolicy, each owned by the Pod so that deleting the Pod removes them.
//!
//! What is fixed here and never user input: the Pod runs as the facility's uid/gid, without a
//! service-account token, privilege escalation or capabilities; its life is bounded by
//! `activeDeadlineSeconds` even if Portico is down; requests equal limits (the reservation);
//! the experiment's datasets are mounted read-only and the user's results folder read-write.

use serde_json::{Value, json};

use crate::environments::Environment;

/// The container's name in the Pod.
pub const CONTAINER: &str = "desktop";
/// The environment variable the desktop image reads its password from.
pub const PASSWORD_ENV: &str = "PORTICO_DESKTOP_PASSWORD";
/// The Secret's key holding the password.
pub const PASSWORD_KEY: &str = "password";
/// Where the datasets and the results are mounted in the container.
pub const DATASETS_PATH: &str = "/data";
pub const RESULTS_PATH: &str = "/results";

/// A volume the desktop mounts: a Kubernetes volume source (`{"persistentVolumeClaim":
/// {"claimName": ...}}`, `{"nfs": {...}}`, `{"hostPath": {...}}`: configuration, never user
/// input) and the folders of it this desktop sees, as (mount path, path in the volume).
#[derive(Clone, Debug, PartialEq)]
pub struct Mount {
    pub source: Value,
    pub folders: Vec<(String, String)>,
}

/// One desktop to run.
#[derive(Clone, Debug)]
pub struct DesktopSpec<'a> {
    /// The desktop's id: lowercase hex, part of every object's name.
    pub id: &'a str,
    pub owner: &'a str,
    pub environment: &'a Environment,
    /// Seconds the Pod may run (`activeDeadlineSeconds`).
    pub lifetime: u64,
    /// The facility's uid and gid for the experiment.
    pub uid: u32,
    pub gid: u32,
    /// The experiment's datasets (read-only, each session's at `/data/<session>`), if any.
    pub datasets: Option<Mount>,
    /// The user's results folder (read-write), if configured.
    pub results: Option<Mount>,
    /// Labels of guacd's Pods: with them, a NetworkPolicy lets only guacd reach the desktop.
    pub guacd_labels: Option<&'a serde_json::Map<String, Value>>,
}

/// The Pod's name (the Service's too).
pub fn pod_name(id: &str) -> String {
    format!("desktop-{id}")
}

/// The Secret's name.
pub fn secret_name(id: &str) -> String {
    format!("desktop-{id}-password")
}

impl DesktopSpec<'_> {
    fn labels(&self) -> Value {
        json!({
            "app.kubernetes.io/managed-by": "portico",
            "app.kubernetes.io/component": "desktop",
            "portico.dev/desktop": self.id,
            "portico.dev/owner": portico_core::names::label_value(self.owner),
            "portico.dev/environment": self.environment.name,
        })
    }

    fn metadata(&self, name: String) -> Value {
        json!({"name": name, "labels": self.labels(), "annotations": {"portico.dev/owner": self.owner}})
    }

    /// The metadata of an object the Pod owns (its `uid` from the Pod as created).
    fn owned_metadata(&self, name: String, pod_uid: &str) -> Value {
        let mut metadata = self.metadata(name);
        metadata["ownerReferences"] = json!([{
            "apiVersion": "v1", "kind": "Pod", "name": pod_name(self.id), "uid": pod_uid,
            "controller": true, "blockOwnerDeletion": true,
        }]);
        metadata
    }

    /// The Pod (core/v1).
    pub fn pod(&self) -> Value {
        let e = self.environment;
        let port = e.port.unwrap_or_default();
        let amounts = json!({
            "cpu": format!("{}m", e.cpu),
            "memory": format!("{}Mi", e.memory),
            "ephemeral-storage": format!("{}Gi", e.storage),
        });
        let mut mounts = Vec::new();
        let mut volumes = Vec::new();
        for (name, mount, read_only) in [("datasets", &self.datasets, true), ("results", &self.results, false)] {
            let Some(mount) = mount.as_ref().filter(|m| !m.folders.is_empty()) else { continue };
            let mut volume = json!({"name": name});
            if let (Some(volume), Some(source)) = (volume.as_object_mut(), mount.source.as_object()) {
                volume.extend(source.clone());
            }
            // The source itself read-only as well, where its kind says so.
            if read_only {
                for kind in ["persistentVolumeClaim", "nfs", "cephfs", "csi"] {
                    if let Some(source) = volume.get_mut(kind).and_then(Value::as_object_mut) {
                        source.insert("readOnly".into(), json!(true));
                    }
                }
            }
            volumes.push(volume);
            for (path, sub_path) in &mount.folders {
                mounts.push(json!({"name": name, "mountPath": path, "subPath": sub_path, "readOnly": read_only}));
            }
        }
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": self.metadata(pod_name(self.id)),
            "spec": {
                "restartPolicy": "Never",
                "activeDeadlineSeconds": self.lifetime,
                "automountServiceAccountToken": false,
                "enableServiceLinks": false,
                "securityContext": {
                    "runAsUser": self.uid, "runAsGroup": self.gid, "fsGroup": self.gid, "runAsNonRoot": true,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [{
                    "name": CONTAINER,
                    "image": e.image,
                    "ports": [{"name": "desktop", "containerPort": port, "protocol": "TCP"}],
                    "env": [{"name": PASSWORD_ENV, "valueFrom": {"secretKeyRef": {"name": secret_name(self.id), "key": PASSWORD_KEY}}}],
                    "resources": {"requests": amounts, "limits": amounts},
                    "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 2, "failureThreshold": 3},
                    "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
                    "volumeMounts": mounts,
                }],
                "volumes": volumes,
            },
        })
    }

    /// The Secret holding the desktop's password, owned by the Pod.
    pub fn secret(&self, pod_uid: &str, password: &str) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": self.owned_metadata(secret_name(self.id), pod_uid),
            "type": "Opaque",
            "stringData": {PASSWORD_KEY: password},
        })
    }

    /// The ClusterIP Service guacd reaches the desktop through, owned by the Pod.
    pub fn service(&self, pod_uid: &str) -> Value {
        let port = self.environment.port.unwrap_or_default();
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self.owned_metadata(pod_name(self.id), pod_uid),
            "spec": {
                "type": "ClusterIP",
                "selector": {"portico.dev/desktop": self.id},
                "ports": [{"name": "desktop", "port": port, "targetPort": port, "protocol": "TCP"}],
            },
        })
    }

    /// The NetworkPolicy letting only guacd reach the desktop's port, if guacd's labels are
    /// configured.
    pub fn network_policy(&self, pod_uid: &str) -> Option<Value> {
        let guacd = self.guacd_labels?;
        let port = self.environment.port.unwrap_or_default();
        Some(json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": self.owned_metadata(pod_name(self.id), pod_uid),
            "spec": {
                "podSelector": {"matchLabels": {"portico.dev/desktop": self.id}},
                "policyTypes": ["Ingress"],
                "ingress": [{
                    "from": [{"podSelector": {"matchLabels": guacd}, "namespaceSelector": {}}],
                    "ports": [{"port": port, "protocol": "TCP"}],
                }],
            },
        }))
    }
}

/// What a Pod's status says of its desktop: ready (KubeSpawner's test: phase `Running`, an IP,
/// every container ready), still starting, or over (its phase and reason).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodState {
    Starting,
    Ready,
    Ended(String),
}

/// The state of `pod` (a Pod object as the API server answers it).
pub fn pod_state(pod: &Value) -> PodState {
    let status = &pod["status"];
    let phase = status["phase"].as_str().unwrap_or("Pending");
    match phase {
        "Succeeded" | "Failed" => {
            let reason = status["reason"].as_str().unwrap_or(phase);
            PodState::Ended(reason.to_owned())
        }
        "Running" => {
            let has_ip = status["podIP"].as_str().is_some_and(|ip| !ip.is_empty());
            let containers = status["containerStatuses"].as_array();
            let all_ready = containers.is_some_and(|c| !c.is_empty() && c.iter().all(|c| c["ready"] == true));
            if has_ip && all_ready { PodState::Ready } else { PodState::Starting }
        }
        _ => PodState::Starting,
    }
}

#[cfg(test)]
mod tests;
