//! Outbound HTTPS: one `reqwest` client (rustls) per process, built on first use.
//!
//! Building the client loads the system's root certificates (every file in `/etc/ssl/certs`),
//! which took most of a function's start-up; a function that never calls out (apps, admin,
//! the relay, ...) now never pays for it, and one that does pays once, on its first call.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::Error;

/// The longest any outbound request may take unless its caller sets a shorter timeout.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A cheap-to-clone handle on the process's outbound HTTPS client.
#[derive(Clone, Default)]
pub struct Outbound(Arc<OnceLock<Result<reqwest::Client, String>>>);

impl Outbound {
    /// The client, built now if this is the first call; 503 if the TLS backend cannot start
    /// (no root certificates, say), on this call and every later one.
    pub fn client(&self) -> Result<&reqwest::Client, Error> {
        let built = self.0.get_or_init(|| {
            reqwest::Client::builder().timeout(TIMEOUT).build().map_err(|e| {
                tracing::error!(error = %e, "outbound HTTPS client cannot start");
                e.to_string()
            })
        });
        built.as_ref().map_err(|e| Error::Unavailable(format!("outbound HTTPS client: {e}")))
    }

    /// Whether the client has been built (start-up tests: nothing calls out before a request).
    pub fn is_built(&self) -> bool {
        self.0.get().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_built_on_first_use_once_for_every_clone() {
        let outbound = Outbound::default();
        let copy = outbound.clone();
        assert!(!outbound.is_built() && !copy.is_built(), "nothing is built before a call");
        let first: *const reqwest::Client = outbound.client().expect("rustls starts");
        assert!(copy.is_built(), "a clone shares the client");
        let again: *const reqwest::Client = copy.client().expect("built");
        assert_eq!(first, again, "one client per process");
    }
}
