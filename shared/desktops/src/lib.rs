//! Remote desktops (CalipsoPlus, seed 002): a user's desktop runs as a Pod on Kubernetes with
//! the experiment's data mounted, and opens in the browser through Apache Guacamole.
//!
//! - [`desktops`]: desktops started from an environment, followed on read, stopped;
//! - [`cluster`]: the Kubernetes API server they run on, behind a trait;
//! - [`environments`]: the registry of what users may start (CalipsoPlus's "images");
//! - [`experiments`]: the user's experiments from the facility's user office, and favourites;
//! - [`guacamole`]: Guacamole's encrypted-JSON authentication (`guacamole-auth-json`): the
//!   signed, encrypted login for exactly one connection that Portico hands a user;
//! - [`manifests`]: a desktop's Kubernetes objects (Pod, Secret, Service, NetworkPolicy) and
//!   what a Pod's status says of it.
//!
//! - [`connection`]: opening a ready desktop through Guacamole.
//!

pub mod cluster;
pub mod connection;
pub mod desktops;
pub mod eks;
pub mod environments;
pub mod experiments;
pub mod guacamole;
pub mod manifests;

use std::sync::Arc;

/// What desktops need beyond the platform's services, built by the functions that use them.
pub struct DesktopClients {
    /// The cluster desktops run on; `None` when `desktops_cluster_url` is not set.
    pub cluster: Option<Arc<dyn cluster::Cluster>>,
    /// The facility's user office (experiments, authorization).
    pub user_office: experiments::UserOffice,
}

impl DesktopClients {
    /// The cluster `services`' configuration names.
    pub fn from_services(services: &portico_core::Services) -> DesktopClients {
        let api = services.outside(&services.config.desktops_cluster_url, |config, url, secrets, http| {
            cluster::KubeApi::new(config, url, secrets, http, services.aws.as_ref())
        });
        let user_office =
            experiments::UserOffice::new(&services.config, services.secrets.clone(), services.http.clone());
        DesktopClients { cluster: api.map(|api| Arc::new(api) as Arc<dyn cluster::Cluster>), user_office }
    }
}
