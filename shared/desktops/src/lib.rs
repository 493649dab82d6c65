//! Remote desktops (CalipsoPlus, seed 002): a user's desktop runs as a Pod on Kubernetes with
//! the experiment's data mounted, and opens in the browser through Apache Guacamole.
//!
//! - [`environments`]: the registry of what users may start (CalipsoPlus's "images");
//! - [`guacamole`]: Guacamole's encrypted-JSON authentication (`guacamole-auth-json`): the
//!   signed, encrypted login for exactly one connection that Portico hands a user;
//! - [`manifests`]: a desktop's Kubernetes objects (Pod, Secret, Service, NetworkPolicy) and
//!   what a Pod's status says of it.
//!
//! Built so far: the registry, the Guacamole login and the manifests. The desktops themselves,
//! the cluster client and the experiments are to come.

pub mod environments;
pub mod guacamole;
pub mod manifests;
