//! Desktops: started from an environment, run as a Pod, followed on read, stopped.
//!
//! A start checks the environment (`desktop.start` on its group), reserves the quota (one
//! `desktops`, and the environment's cpu, memory and storage) as the desktop, records it
//! `starting` with a marker (`LIVE_DESKTOPS`, what a scheduled sweep reads), and creates the
//! Pod, then its Secret (a fresh password) and Service, owned by the Pod. Any failure undoes
//! what was done: the Pod deleted, the quota given back, the desktop `ended`.
//!
//! Storage: a user's desktops at `DESKTOPS#<owner>` / `<id>`, so a user reads only their own
//! (another's id is simply absent); the marker at `LIVE_DESKTOPS` / `<owner>/<id>`.

use std::sync::Arc;

use base64::Engine as _;
use portico_core::authz::Principal;
use portico_core::quotas::{Quotas, Resources};
use portico_core::store::{Condition, Item, Key, Query, Table, now_epoch, rmw};
use portico_core::{Config, Error};
use serde::{Deserialize, Serialize};

use crate::cluster::{Cluster, ClusterError};
use crate::environments::{DesktopProtocol, Environment, EnvironmentKind, Environments};
use crate::experiments::UserOffice;
use crate::manifests::{DATASETS_PATH, DesktopSpec, Mount, PodState, RESULTS_PATH, pod_name};

/// Where live desktops' markers are.
const LIVE: &str = "LIVE_DESKTOPS";
/// Seconds after which a marker without its record is a start that died.
const STALE_START: i64 = 60;

/// A desktop's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DesktopState {
    /// Its Pod is being scheduled, pulled or started.
    Starting,
    /// Its desktop answers: it can be opened.
    Ready,
    /// Over (`reason` says why); what it held is given back.
    Ended,
}

/// A desktop as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desktop {
    pub id: String,
    pub owner: String,
    pub environment: String,
    /// The experiment whose data it mounts (its `proposal_id`), if started from one.
    #[serde(default)]
    pub experiment: Option<String>,
    pub state: DesktopState,
    pub reason: Option<String>,
    /// Epoch seconds.
    pub created_at: i64,
    /// When it is stopped (epoch seconds); an extension moves it, up to `latest_end`.
    pub ends_at: i64,
    /// The environment's maximum lifetime after the start: the Pod's own deadline.
    pub latest_end: i64,
    pub resources: Resources,
    /// How Guacamole reaches it (from its environment when it started).
    pub protocol: DesktopProtocol,
    pub port: u16,
    /// Users the owner lets watch it, read-only (at most [`MAX_VIEWERS`]).
    #[serde(default)]
    pub viewers: Vec<String>,
}

/// How many users may be let watch one desktop.
pub const MAX_VIEWERS: usize = 10;

/// A desktop as clients see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DesktopView {
    #[schema(example = "3f2a9c0d1e2f4a5b")]
    pub id: String,
    pub owner: String,
    pub environment: String,
    /// The experiment whose data it mounts, if started from one.
    pub experiment: Option<String>,
    pub state: DesktopState,
    /// Why it ended: `stopped`, `lifetime`, `DeadlineExceeded`, `Evicted`, `pod_gone`, ...
    pub reason: Option<String>,
    /// While starting: the Pod's events so far (scheduled, pulling, started, ...).
    pub progress: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
    pub ends_at: String,
    /// How far an extension may move `ends_at` (the environment's maximum lifetime).
    pub latest_end: String,
    pub resources: Resources,
    /// Users the owner lets watch it, read-only (`PUT /desktops/{id}/viewers/{username}`).
    pub viewers: Vec<String>,
}

fn rfc3339(epoch: i64) -> String {
    portico_core::directory::rfc3339(epoch)
}

impl Desktop {
    pub fn view(&self, progress: Vec<String>) -> DesktopView {
        DesktopView {
            id: self.id.clone(),
            owner: self.owner.clone(),
            environment: self.environment.clone(),
            experiment: self.experiment.clone(),
            state: self.state,
            reason: self.reason.clone(),
            progress,
            created_at: rfc3339(self.created_at),
            ends_at: rfc3339(self.ends_at),
            latest_end: rfc3339(self.latest_end),
            resources: self.resources,
            viewers: self.viewers.clone(),
        }
    }
}

/// What a start answers: a desktop, or a link environment's link (nothing runs).
pub enum Started {
    Desktop(Box<DesktopView>),
    Link(String),
}

fn key(owner: &str, id: &str) -> Key {
    Key::new(format!("DESKTOPS#{owner}"), id)
}

fn marker_key(owner: &str, id: &str) -> Key {
    Key::new(LIVE, format!("{owner}/{id}"))
}

fn item(desktop: &Desktop) -> Item {
    Item::new(key(&desktop.owner, &desktop.id)).with_doc(desktop)
}

fn from_item(item: &Item) -> Result<Desktop, Error> {
    let doc = item.s("doc").ok_or_else(|| Error::Internal(format!("desktop {} has no doc", item.key.sk)))?;
    serde_json::from_str(doc).map_err(|e| Error::Internal(format!("desktop {}: {e}", item.key.sk)))
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("desktop '{}' does not exist", portico_core::input::shown_key(id)))
}

/// A fresh password: 18 random bytes as URL-safe base64 (24 characters).
fn password() -> Result<String, Error> {
    let mut bytes = [0u8; 18];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| Error::Internal("no randomness for a password".into()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Desktops over a table, a cluster and the facility's user office.
pub struct Desktops<'a> {
    pub table: &'a dyn Table,
    pub cluster: Option<&'a Arc<dyn Cluster>>,
    pub user_office: &'a UserOffice,
    pub config: &'a Config,
}

/// Whom a desktop's Pod runs as and what it mounts: from the experiment it starts from.
struct Placement {
    experiment: Option<String>,
    uid: u32,
    gid: u32,
    /// (folder under `/data`, path in the datasets volume).
    datasets: Vec<(String, String)>,
}

impl Desktops<'_> {
    pub(crate) fn cluster(&self) -> Result<&dyn Cluster, Error> {
        self.cluster
            .map(|c| c.as_ref())
            .ok_or_else(|| Error::Unavailable("no cluster is configured for desktops (desktops_cluster_url)".into()))
    }

    /// Starts a desktop of `environment` for `who`, to run `lifetime` seconds (at most, and by
    /// default, the environment's maximum), with the data of `experiment` (which the user
    /// office must list for `who`; without one, the facility must authorize `who` when
    /// `facility_authorize_url` is set). 201 with the desktop, `starting`.
    pub async fn start(
        &self,
        who: &Principal,
        environment: &str,
        lifetime: Option<u64>,
        experiment: Option<&str>,
    ) -> Result<Started, Error> {
        let environment = Environments { table: self.table }.startable(who, environment).await?;
        if environment.kind == EnvironmentKind::Link {
            return Ok(Started::Link(environment.link.clone().unwrap_or_default()));
        }
        let lifetime = lifetime.unwrap_or(environment.max_lifetime);
        if !(crate::environments::MIN_LIFETIME..=environment.max_lifetime).contains(&lifetime) {
            let max = environment.max_lifetime;
            let message = format_args!(
                "must be between {} and {max} seconds (the environment's maximum)",
                crate::environments::MIN_LIFETIME
            );
            return Err(Error::invalid_field("lifetime", message));
        }
        let placement = self.placement(who, experiment).await?;
        let cluster = self.cluster()?;
        let id = portico_core::store::new_rev()[..16].to_owned();
        let now = now_epoch();
        let resources = Resources {
            desktops: 1,
            cpu: environment.cpu,
            memory: environment.memory,
            storage: environment.storage,
            ..Resources::default()
        };
        let desktop = Desktop {
            id: id.clone(),
            owner: who.username.clone(),
            environment: environment.name.clone(),
            experiment: placement.experiment.clone(),
            state: DesktopState::Starting,
            reason: None,
            created_at: now,
            ends_at: now + lifetime as i64,
            latest_end: now + environment.max_lifetime as i64,
            resources,
            protocol: environment.protocol.unwrap_or(DesktopProtocol::Vnc),
            port: environment.port.unwrap_or_default(),
            viewers: Vec::new(),
        };
        let quotas = Quotas::new(self.table);
        quotas.reserve_for(&desktop.owner, &id, &resources, &who.limits).await?;
        let recorded = async {
            // The marker names what the desktop holds, so a start that dies before its record
            // is written can still be given back (the sweep).
            let mut marker = Item::new(marker_key(&desktop.owner, &id)).with_n("since", now);
            for (name, amount) in resources.fields() {
                marker = marker.with_n(name, amount);
            }
            self.table.put(marker, Condition::Absent).await?;
            self.table.put(item(&desktop), Condition::Absent).await?;
            Ok::<_, Error>(())
        };
        if let Err(e) = recorded.await {
            let _ = quotas.release_for(&desktop.owner, &id, &resources).await;
            let _ = self.table.delete(&marker_key(&desktop.owner, &id), Condition::Always).await;
            return Err(e);
        }
        if let Err(e) = self.create_objects(cluster, &desktop, &environment, &placement).await {
            tracing::warn!(desktop = %id, error = %e, "a desktop could not be created; undone");
            let _ = cluster.delete_pod(&pod_name(&id)).await;
            self.end(&desktop.owner, &id, "cluster_failed", None).await?;
            return Err(e.into());
        }
        Ok(Started::Desktop(Box::new(desktop.view(Vec::new()))))
    }

    /// The user office's word on `experiment` for `who`: its uid, gid and datasets (an
    /// experiment it does not list for `who` is 404); without one, the facility's authorization.
    async fn placement(&self, who: &Principal, experiment: Option<&str>) -> Result<Placement, Error> {
        if let Some(id) = experiment
            && !crate::experiments::is_proposal_id(id)
        {
            return Err(Error::invalid_field("experiment", "must be 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'"));
        }
        let Some(experiment) = experiment else {
            if !self.user_office.authorized(&who.username).await? {
                return Err(Error::Forbidden(
                    "the facility has not authorized you to start a desktop without an experiment: start it from one"
                        .into(),
                ));
            }
            let config = self.config;
            return Ok(Placement {
                experiment: None,
                uid: config.desktops_uid,
                gid: config.desktops_gid,
                datasets: vec![],
            });
        };
        let found = self.user_office.experiment(&who.username, experiment).await?;
        let uid = found.uid.unwrap_or(self.config.desktops_uid);
        let gid = found.gid.unwrap_or(self.config.desktops_gid);
        if uid == 0 || gid == 0 {
            return Err(Error::Upstream {
                status: http::StatusCode::BAD_GATEWAY,
                message: format!(
                    "the user office gives experiment '{experiment}' uid or gid 0: desktops never run as root"
                ),
            });
        }
        Ok(Placement { experiment: Some(found.proposal_id.clone()), uid, gid, datasets: found.datasets()? })
    }

    /// The volumes configuration names, with the folders this desktop sees of them.
    fn mounts(&self, owner: &str, placement: &Placement) -> (Option<Mount>, Option<Mount>) {
        let source = |setting: &Option<String>| {
            setting
                .as_deref()
                .and_then(|text| portico_core::config::volume_source(text).ok())
                .map(serde_json::Value::Object)
        };
        let datasets = source(&self.config.desktops_datasets_volume).map(|source| Mount {
            source,
            folders: placement
                .datasets
                .iter()
                .map(|(folder, path)| (format!("{DATASETS_PATH}/{folder}"), path.clone()))
                .collect(),
        });
        let results = source(&self.config.desktops_results_volume)
            .map(|source| Mount { source, folders: vec![(RESULTS_PATH.to_owned(), owner.to_owned())] });
        (datasets, results)
    }

    /// The Pod, then its Secret, Service and NetworkPolicy (owned by it). A stale Pod of the
    /// same name (a 409) is replaced once, as KubeSpawner does.
    async fn create_objects(
        &self,
        cluster: &dyn Cluster,
        desktop: &Desktop,
        environment: &Environment,
        placement: &Placement,
    ) -> Result<(), ClusterError> {
        let (datasets, results) = self.mounts(&desktop.owner, placement);
        let guacd: serde_json::Map<String, serde_json::Value> =
            self.config.desktops_guacd_labels.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
        let spec = DesktopSpec {
            id: &desktop.id,
            owner: &desktop.owner,
            environment,
            // The Pod's deadline cannot be raised later: it is the ceiling, and Portico ends
            // the desktop at `ends_at` (reads and the sweep).
            lifetime: (desktop.latest_end - desktop.created_at).max(1) as u64,
            uid: placement.uid,
            gid: placement.gid,
            datasets,
            results,
            guacd_labels: (!guacd.is_empty()).then_some(&guacd),
        };
        let pod = match cluster.create(&spec.pod()).await {
            Err(ClusterError::AlreadyExists) => {
                cluster.delete_pod(&pod_name(&desktop.id)).await?;
                cluster.create(&spec.pod()).await?
            }
            other => other?,
        };
        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
        let password = password().map_err(|e| ClusterError::Unavailable(e.to_string()))?;
        cluster.create(&spec.secret(&uid, &password)).await?;
        cluster.create(&spec.service(&uid)).await?;
        if let Some(policy) = spec.network_policy(&uid) {
            cluster.create(&policy).await?;
        }
        Ok(())
    }

    /// `owner`'s desktop `id`, refreshed from its Pod (1 read; while not ended, 1 Pod read, and
    /// its events while starting).
    pub async fn get(&self, owner: &str, id: &str) -> Result<DesktopView, Error> {
        let (desktop, progress) = self.refresh(owner, id, true).await?;
        Ok(desktop.view(progress))
    }

    /// The record of `owner`'s desktop `id` as its Pod leaves it, and the Pod's events while it
    /// starts when `progress` (what [`Desktops::get`] answers, and an opening reads).
    pub(crate) async fn refresh(&self, owner: &str, id: &str, progress: bool) -> Result<(Desktop, Vec<String>), Error> {
        let (read, desktop) = self.read(owner, id).await?;
        let read = Some(read);
        if desktop.state == DesktopState::Ended {
            return Ok((desktop, Vec::new()));
        }
        let cluster = self.cluster()?;
        let name = pod_name(id);
        if now_epoch() >= desktop.ends_at {
            cluster.delete_pod(&name).await?;
            return Ok((self.end(owner, id, "lifetime", read).await?, Vec::new()));
        }
        let state = match cluster.pod(&name).await? {
            None => PodState::Ended("pod_gone".into()),
            Some(pod) => crate::manifests::pod_state(&pod),
        };
        match state {
            PodState::Ended(reason) => {
                cluster.delete_pod(&name).await?;
                Ok((self.end(owner, id, &reason, read).await?, Vec::new()))
            }
            PodState::Ready if desktop.state != DesktopState::Ready => {
                Ok((self.set_ready(owner, id, read).await?, Vec::new()))
            }
            PodState::Ready => Ok((desktop, Vec::new())),
            PodState::Starting if progress => Ok((desktop, cluster.events(&name).await.unwrap_or_default())),
            PodState::Starting => Ok((desktop, Vec::new())),
        }
    }

    /// Follows every live desktop (its marker) as a read would, so a desktop past its end or
    /// whose Pod died or was evicted ends, and gives back its quota, even if nobody reads it
    /// (the scheduled sweep). Storage calls: a query per 100 markers, and a read each (more
    /// for those that change). The number ended.
    pub async fn sweep(&self) -> Result<usize, Error> {
        if self.cluster.is_none() {
            return Ok(0);
        }
        let mut ended = 0;
        let mut after = None;
        loop {
            let mut query = Query::table(LIVE, 100);
            query.after = after;
            let page = self.table.query(&query).await?;
            for marker in &page.items {
                let Some((owner, id)) = marker.key.sk.split_once('/') else { continue };
                match self.refresh(owner, id, false).await.map(|(desktop, _)| desktop) {
                    // Its marker still here: an end that stopped half-way. What it held is given
                    // back (once: the holder's flag) and the marker goes.
                    Ok(desktop) if desktop.state == DesktopState::Ended => {
                        Quotas::new(self.table).release_for(owner, id, &desktop.resources).await?;
                        self.table.delete(&marker.key, Condition::Always).await?;
                        ended += 1;
                    }
                    Ok(_) => {}
                    // No record a minute after the marker: a start that died before writing it.
                    // What the marker names is given back (once: the holder's flag), then the
                    // marker goes.
                    Err(Error::NotFound(_)) if now_epoch() - marker.n("since").unwrap_or(0) > STALE_START => {
                        Quotas::new(self.table).release_for(owner, id, &Resources::from_item(marker)).await?;
                        self.table.delete(&marker.key, Condition::Always).await?;
                    }
                    Err(Error::NotFound(_)) => {}
                    Err(e) => tracing::warn!(desktop = %id, error = %e, "a desktop could not be followed; next sweep"),
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(ended),
            }
        }
    }

    /// Moves the end of `owner`'s desktop `id` by `seconds`, up to its latest end (past it:
    /// 400 naming `seconds`); an ended desktop is 409. 2 calls (a read, and the write under its
    /// revision).
    pub async fn extend(&self, owner: &str, id: &str, seconds: u64) -> Result<DesktopView, Error> {
        let (read, current) = self.read(owner, id).await?;
        if current.state == DesktopState::Ended {
            return Err(Error::Conflict(format!("desktop '{id}' has ended")));
        }
        let wanted = current.ends_at.saturating_add(i64::try_from(seconds).unwrap_or(i64::MAX));
        if seconds == 0 || wanted > current.latest_end {
            let room = (current.latest_end - current.ends_at).max(0);
            return Err(Error::invalid_field("seconds", format_args!("must be between 1 and {room} (its latest end)")));
        }
        let extended = self
            .change_from(owner, id, Some(read), |d| {
                let change = d.state != DesktopState::Ended && d.ends_at < wanted;
                if change {
                    d.ends_at = wanted;
                }
                change
            })
            .await?;
        Ok(extended.view(Vec::new()))
    }

    /// Lets `viewer` watch `owner`'s desktop `id`, read-only (`allow`), or no longer. 2 calls (a
    /// read and a write; the read alone when nothing changes). An ended desktop is 409; more than
    /// [`MAX_VIEWERS`] is 409; the owner is no viewer (400).
    pub async fn set_viewer(&self, owner: &str, id: &str, viewer: &str, allow: bool) -> Result<DesktopView, Error> {
        portico_core::directory::validate_username(viewer)?;
        if viewer == owner {
            // (Another's id is 404 first, as everywhere.)
            self.record(owner, id).await?;
            return Err(Error::bad_request(portico_core::codes::INVALID_FIELD, "the owner always sees their desktop"));
        }
        let full = std::sync::atomic::AtomicBool::new(false);
        let changed = self
            .change(owner, id, |d| {
                let present = d.viewers.iter().any(|v| v == viewer);
                if d.state == DesktopState::Ended || present == allow {
                    return false;
                }
                if allow && d.viewers.len() >= MAX_VIEWERS {
                    full.store(true, std::sync::atomic::Ordering::Relaxed);
                    return false;
                }
                if allow {
                    d.viewers.push(viewer.to_owned())
                } else {
                    d.viewers.retain(|v| v != viewer)
                }
                true
            })
            .await?;
        if full.into_inner() {
            return Err(Error::Conflict(format!("desktop '{id}' has {MAX_VIEWERS} viewers already")));
        }
        if changed.state == DesktopState::Ended && allow {
            return Err(Error::Conflict(format!("desktop '{id}' has ended")));
        }
        Ok(changed.view(Vec::new()))
    }

    /// A page of `owner`'s desktops, as recorded (1 query).
    pub async fn list(
        &self,
        owner: &str,
        limit: u32,
        after: Option<portico_core::store::Cursor>,
    ) -> Result<(Vec<DesktopView>, Option<portico_core::store::Cursor>), Error> {
        let mut query = Query::table(format!("DESKTOPS#{owner}"), limit);
        query.after = after;
        let page = self.table.query(&query).await?;
        let desktops = page.items.iter().map(|i| from_item(i).map(|d| d.view(Vec::new()))).collect::<Result<_, _>>()?;
        Ok((desktops, page.next))
    }

    /// A page of every live desktop, as recorded (administrators): a query of the markers (100
    /// at most), and a read each.
    pub async fn list_live(
        &self,
        limit: u32,
        after: Option<portico_core::store::Cursor>,
    ) -> Result<(Vec<DesktopView>, Option<portico_core::store::Cursor>), Error> {
        let mut query = Query::table(LIVE, limit.min(100));
        query.after = after;
        let page = self.table.query(&query).await?;
        let mut desktops = Vec::with_capacity(page.items.len());
        for marker in &page.items {
            let Some((owner, id)) = marker.key.sk.split_once('/') else { continue };
            match self.record(owner, id).await {
                Ok(desktop) => desktops.push(desktop.view(Vec::new())),
                // A start in progress, or one that died (the sweep gives it back).
                Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((desktops, page.next))
    }

    /// Stops `owner`'s desktop `id`: its Pod deleted (its Secret and Service follow), the quota
    /// given back once. Stopping an ended desktop is 409. 4 calls (the record read, then ended
    /// under its revision, the quota given back, the marker removed).
    pub async fn stop(&self, owner: &str, id: &str) -> Result<DesktopView, Error> {
        let (read, desktop) = self.read(owner, id).await?;
        if desktop.state == DesktopState::Ended {
            return Err(Error::Conflict(format!("desktop '{id}' has ended")));
        }
        self.cluster()?.delete_pod(&pod_name(id)).await?;
        Ok(self.end(owner, id, "stopped", Some(read)).await?.view(Vec::new()))
    }

    pub(crate) async fn record(&self, owner: &str, id: &str) -> Result<Desktop, Error> {
        Ok(self.read(owner, id).await?.1)
    }

    /// The record's item (its revision, for a change) and the desktop it holds. 1 read.
    async fn read(&self, owner: &str, id: &str) -> Result<(Item, Desktop), Error> {
        let found = self.table.get(&key(owner, id)).await?.ok_or_else(|| not_found(id))?;
        let desktop = from_item(&found)?;
        Ok((found, desktop))
    }

    async fn set_ready(&self, owner: &str, id: &str, read: Option<Item>) -> Result<Desktop, Error> {
        self.change_from(owner, id, read, |d| {
            let change = d.state == DesktopState::Starting;
            d.state = if change { DesktopState::Ready } else { d.state };
            change
        })
        .await
    }

    /// Ends the desktop with `reason` (once: a later end keeps the first reason) and gives back
    /// what it held, then removes its marker.
    async fn end(&self, owner: &str, id: &str, reason: &str, read: Option<Item>) -> Result<Desktop, Error> {
        let ended = self
            .change_from(owner, id, read, |d| {
                let change = d.state != DesktopState::Ended;
                if change {
                    d.state = DesktopState::Ended;
                    d.reason = Some(reason.to_owned());
                }
                change
            })
            .await?;
        Quotas::new(self.table).release_for(owner, id, &ended.resources).await?;
        self.table.delete(&marker_key(owner, id), Condition::Always).await?;
        Ok(ended)
    }

    /// Changes the record under its revision (retried on a concurrent change).
    async fn change(&self, owner: &str, id: &str, change: impl Fn(&mut Desktop) -> bool) -> Result<Desktop, Error> {
        self.change_from(owner, id, None, change).await
    }

    /// As [`Desktops::change`], starting from `read` (the record as just read: no second read
    /// unless someone changed it since).
    async fn change_from(
        &self,
        owner: &str,
        id: &str,
        mut read: Option<Item>,
        change: impl Fn(&mut Desktop) -> bool,
    ) -> Result<Desktop, Error> {
        for _ in rmw::attempts() {
            let found = match read.take() {
                Some(item) => item,
                None => self.table.get(&key(owner, id)).await?.ok_or_else(|| not_found(id))?,
            };
            let mut desktop = from_item(&found)?;
            if !change(&mut desktop) {
                return Ok(desktop);
            }
            if rmw::written(self.table.put(item(&desktop), Condition::Rev(found.rev.clone())).await)?.is_some() {
                return Ok(desktop);
            }
        }
        Err(Error::Conflict(format!("desktop '{id}' is changing concurrently; retry")))
    }
}
