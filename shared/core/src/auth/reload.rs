//! Token keys that follow their secret: a rotation reaches warm processes without a restart.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::Error;
use crate::secrets::Secrets;

/// Least time between reloads forced by a token naming an unknown key (or failing a shared
/// secret), so bad tokens cannot make every request read Secrets Manager.
pub const FORCED_RELOAD_MIN_INTERVAL: Duration = Duration::from_secs(30);

type Build<T> = Box<dyn Fn(&str) -> Result<T, Error> + Send + Sync>;

struct Loaded<T> {
    value: Arc<T>,
    raw: String,
    checked: Instant,
    forced: Option<Instant>,
}

/// A value built from secret `secret_id` (a keyring, an HS256 key), rebuilt when the secret
/// changes: checked every `interval` through the (cached) secrets, and on demand at most once
/// per [`FORCED_RELOAD_MIN_INTERVAL`] bypassing the cache. A secret that cannot be read or
/// built keeps the previous value serving.
pub struct FromSecret<T> {
    secrets: Arc<dyn Secrets>,
    secret_id: String,
    interval: Duration,
    build: Build<T>,
    loaded: RwLock<Loaded<T>>,
}

impl<T> FromSecret<T> {
    /// Reads and builds the value once; an error here stops start-up.
    pub async fn load(
        secrets: Arc<dyn Secrets>,
        secret_id: &str,
        interval: Duration,
        build: impl Fn(&str) -> Result<T, Error> + Send + Sync + 'static,
    ) -> Result<Self, Error> {
        let raw = secrets.get(secret_id).await?;
        let value = Arc::new(build(&raw)?);
        let loaded = Loaded { value, raw, checked: Instant::now(), forced: None };
        Ok(FromSecret {
            secrets,
            secret_id: secret_id.to_owned(),
            interval,
            build: Box::new(build),
            loaded: RwLock::new(loaded),
        })
    }

    /// The value as last loaded, without any check.
    pub fn current(&self) -> Arc<T> {
        Arc::clone(&self.loaded.read().expect("loaded secret").value)
    }

    /// The value, reloaded first if it was last checked more than `interval` ago.
    pub async fn fresh(&self) -> Arc<T> {
        let due = self.loaded.read().expect("loaded secret").checked.elapsed() >= self.interval;
        if due {
            self.reload(false).await;
        }
        self.current()
    }

    /// Reloads past every cache, unless that was done less than
    /// [`FORCED_RELOAD_MIN_INTERVAL`] ago; returns the value and whether it changed.
    pub async fn force_reload(&self) -> (Arc<T>, bool) {
        let recent = self
            .loaded
            .read()
            .expect("loaded secret")
            .forced
            .is_some_and(|at| at.elapsed() < FORCED_RELOAD_MIN_INTERVAL);
        let changed = !recent && self.reload(true).await;
        (self.current(), changed)
    }

    async fn reload(&self, bypass_cache: bool) -> bool {
        {
            // Claim the check first, so concurrent requests do not all read the secret.
            let mut loaded = self.loaded.write().expect("loaded secret");
            loaded.checked = Instant::now();
            if bypass_cache {
                loaded.forced = Some(Instant::now());
            }
        }
        let read = if bypass_cache {
            self.secrets.get_fresh(&self.secret_id).await
        } else {
            self.secrets.get(&self.secret_id).await
        };
        let raw = match read {
            Ok(raw) => raw,
            Err(e) => {
                tracing::warn!(secret = %self.secret_id, error = ?e, "secret reload failed; the loaded value keeps serving");
                return false;
            }
        };
        if raw == self.loaded.read().expect("loaded secret").raw {
            return false;
        }
        match (self.build)(&raw) {
            Ok(value) => {
                let mut loaded = self.loaded.write().expect("loaded secret");
                loaded.value = Arc::new(value);
                loaded.raw = raw;
                tracing::info!(secret = %self.secret_id, "secret changed; reloaded");
                true
            }
            Err(e) => {
                tracing::warn!(secret = %self.secret_id, error = ?e, "secret changed but is unusable; the loaded value keeps serving");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A secret whose value the test sets, counting reads.
    #[derive(Default)]
    struct Counted {
        value: Mutex<String>,
        reads: AtomicUsize,
        fresh_reads: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Secrets for Counted {
        async fn get(&self, _: &str) -> Result<String, Error> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            Ok(self.value.lock().unwrap().clone())
        }
        async fn get_fresh(&self, _: &str) -> Result<String, Error> {
            self.fresh_reads.fetch_add(1, Ordering::SeqCst);
            Ok(self.value.lock().unwrap().clone())
        }
    }

    fn parse(raw: &str) -> Result<u32, Error> {
        raw.parse().map_err(|_| Error::Internal("not a number".into()))
    }

    #[tokio::test]
    async fn forced_reloads_are_rate_limited_and_bad_values_keep_the_old_one() {
        let secret = Arc::new(Counted::default());
        *secret.value.lock().unwrap() = "1".into();
        let loaded = FromSecret::load(secret.clone(), "n", Duration::from_secs(3600), parse).await.unwrap();
        assert_eq!(*loaded.fresh().await, 1);
        assert_eq!(secret.reads.load(Ordering::SeqCst), 1, "no reload before the interval");

        *secret.value.lock().unwrap() = "2".into();
        assert_eq!(loaded.force_reload().await, (Arc::new(2), true));
        *secret.value.lock().unwrap() = "3".into();
        assert_eq!(loaded.force_reload().await, (Arc::new(2), false), "within the minimum interval");
        assert_eq!(secret.fresh_reads.load(Ordering::SeqCst), 1);

        let every_time = FromSecret::load(secret.clone(), "n", Duration::ZERO, parse).await.unwrap();
        assert_eq!(*every_time.fresh().await, 3);
        *secret.value.lock().unwrap() = "not a number".into();
        assert_eq!(*every_time.fresh().await, 3, "an unusable value leaves the loaded one serving");
        *secret.value.lock().unwrap() = "4".into();
        assert_eq!(*every_time.fresh().await, 4);
    }
}
