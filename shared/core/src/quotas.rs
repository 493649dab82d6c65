//! Quotas (as in CalipsoPlus): per-user limits on concurrent sessions, active jobs, running
//! desktops and
//! requested cpu / memory / storage. Usage lives in one counter item per user and is only
//! ever changed by a single conditional update, so concurrent reservations can never
//! overshoot a limit.

use serde::{Deserialize, Serialize};

use crate::store::{Counter, Item, Key, StoreError, Table};
use crate::{Config, Error};

/// An amount of each resource; used both for limits and for usage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Concurrent streaming sessions.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_099_511_627_776_f64)]
    pub sessions: i64,
    /// Active jobs.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_099_511_627_776_f64)]
    pub jobs: i64,
    /// Running remote desktops.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_099_511_627_776_f64)]
    pub desktops: i64,
    /// Millicores.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_099_511_627_776_f64)]
    pub cpu: i64,
    /// MiB.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_099_511_627_776_f64)]
    pub memory: i64,
    /// GiB.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_099_511_627_776_f64)]
    pub storage: i64,
}

/// Largest limit or amount accepted for any resource.
const MAX_AMOUNT: i64 = 1 << 40;

impl Resources {
    pub fn fields(&self) -> [(&'static str, i64); 6] {
        [
            ("sessions", self.sessions),
            ("jobs", self.jobs),
            ("desktops", self.desktops),
            ("cpu", self.cpu),
            ("memory", self.memory),
            ("storage", self.storage),
        ]
    }

    /// The configured defaults for users with neither an override nor a role default.
    pub fn defaults(config: &Config) -> Resources {
        Resources {
            sessions: config.quota_sessions,
            jobs: config.quota_jobs,
            desktops: config.quota_desktops,
            cpu: config.quota_cpu,
            memory: config.quota_memory,
            storage: config.quota_storage,
        }
    }

    /// Element-wise maximum (a user with several roles gets the most generous default).
    pub fn max(self, o: Resources) -> Resources {
        Resources {
            sessions: self.sessions.max(o.sessions),
            jobs: self.jobs.max(o.jobs),
            desktops: self.desktops.max(o.desktops),
            cpu: self.cpu.max(o.cpu),
            memory: self.memory.max(o.memory),
            storage: self.storage.max(o.storage),
        }
    }

    /// Refuses negative or absurd amounts.
    pub fn validate(&self) -> Result<(), Error> {
        for (name, value) in self.fields() {
            if !(0..=MAX_AMOUNT).contains(&value) {
                return Err(Error::invalid_field(name, format_args!("must be between 0 and {MAX_AMOUNT}")));
            }
        }
        Ok(())
    }

    /// The amounts an item's counters hold (a user's usage, a job's marker).
    pub fn from_item(item: &Item) -> Resources {
        let n = |f: &str| item.n(f).unwrap_or(0);
        Resources {
            sessions: n("sessions"),
            jobs: n("jobs"),
            desktops: n("desktops"),
            cpu: n("cpu"),
            memory: n("memory"),
            storage: n("storage"),
        }
    }
}

fn usage_key(username: &str) -> Key {
    Key::new(format!("USER#{username}"), "USAGE")
}

/// The flag, beside the usage counters, naming what holds a reservation (a session, a job).
pub fn holder_flag(holder: &str) -> String {
    format!("held:{holder}")
}

/// Reserves and releases usage. One storage call each.
pub struct Quotas<'a> {
    table: &'a dyn Table,
}

impl<'a> Quotas<'a> {
    pub fn new(table: &'a dyn Table) -> Self {
        Quotas { table }
    }

    /// The user's current usage. 1 read.
    pub async fn usage(&self, username: &str) -> Result<Resources, Error> {
        Ok(self.table.get(&usage_key(username)).await?.map(|i| Resources::from_item(&i)).unwrap_or_default())
    }

    /// Adds `amounts` to the user's usage if every resource stays within `limits`; otherwise
    /// 409 `quota_exceeded` naming the resource, and nothing changes. Returns the new usage.
    pub async fn reserve(&self, username: &str, amounts: &Resources, limits: &Resources) -> Result<Resources, Error> {
        amounts.validate()?;
        let counters = changes(amounts, 1, Some(limits));
        if counters.is_empty() {
            return self.usage(username).await;
        }
        match self.table.add(&usage_key(username), &counters, None).await {
            Ok(item) => Ok(Resources::from_item(&item)),
            Err(StoreError::ConditionFailed { current }) => Err(exceeded(amounts, current.as_deref(), limits)),
            Err(e) => Err(e.into()),
        }
    }

    /// As [`Quotas::reserve`], for `holder` (a session's or a job's id), whose flag is set in
    /// the same conditional update: a reservation `holder` already holds is not made twice (a
    /// retry, or a retried attempt whose answer was lost, finds it made), and
    /// [`Quotas::release_for`] gives back exactly what it holds, once. Returns the usage.
    pub async fn reserve_for(
        &self,
        username: &str,
        holder: &str,
        amounts: &Resources,
        limits: &Resources,
    ) -> Result<Resources, Error> {
        amounts.validate()?;
        let flag = holder_flag(holder);
        let mut counters = changes(amounts, 1, Some(limits));
        counters.push(Counter::set_flag(flag.clone()));
        match self.table.add(&usage_key(username), &counters, None).await {
            Ok(item) => Ok(Resources::from_item(&item)),
            Err(StoreError::ConditionFailed { current: Some(current) }) if current.n(&flag).is_some() => {
                Ok(Resources::from_item(&current))
            }
            Err(StoreError::ConditionFailed { current }) => Err(exceeded(amounts, current.as_deref(), limits)),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives back what `holder` reserved ([`Quotas::reserve_for`] with the same `amounts`), if
    /// it holds it: true when this call released it, false when it held nothing (never
    /// reserved, or released already). Safe to repeat, and to call when a reservation's outcome
    /// is unknown.
    pub async fn release_for(&self, username: &str, holder: &str, amounts: &Resources) -> Result<bool, Error> {
        // [`Quotas::reserve_for`] refuses such amounts, so nothing can be held for them (a
        // marker written with them by an older release must still be removable).
        if amounts.validate().is_err() {
            return Ok(false);
        }
        let flag = holder_flag(holder);
        let mut counters = changes(amounts, -1, None);
        counters.push(Counter::clear_flag(flag.clone()));
        match self.table.add(&usage_key(username), &counters, None).await {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed { current }) if current.as_ref().is_none_or(|c| c.n(&flag).is_none()) => {
                Ok(false)
            }
            Err(StoreError::ConditionFailed { .. }) => {
                Err(Error::Internal(format!("'{username}' holds '{holder}' but less usage than it reserved")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Gives `amounts` back. Releasing more than is in use is refused (it would hide a
    /// double release) and changes nothing.
    pub async fn release(&self, username: &str, amounts: &Resources) -> Result<Resources, Error> {
        amounts.validate()?;
        let counters = changes(amounts, -1, None);
        if counters.is_empty() {
            return self.usage(username).await;
        }
        match self.table.add(&usage_key(username), &counters, None).await {
            Ok(item) => Ok(Resources::from_item(&item)),
            Err(StoreError::ConditionFailed { .. }) => {
                Err(Error::Conflict(format!("release for '{username}' exceeds the usage recorded")))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// One counter change per resource `amounts` asks for: `sign` times the amount, within the
/// resource's limit among `limits` if given.
fn changes(amounts: &Resources, sign: i64, limits: Option<&Resources>) -> Vec<Counter> {
    let limit_of = |name: &str| limits?.fields().into_iter().find(|(n, _)| *n == name).map(|(_, v)| v);
    amounts
        .fields()
        .into_iter()
        .filter(|(_, amount)| *amount > 0)
        .map(|(name, amount)| Counter::new(name, sign * amount, limit_of(name)))
        .collect()
}

/// The refusal of `amounts` on top of the usage `current` holds: which limit it exceeds.
fn exceeded(amounts: &Resources, current: Option<&Item>, limits: &Resources) -> Error {
    let used = current.map(Resources::from_item).unwrap_or_default();
    let over = amounts
        .fields()
        .into_iter()
        .zip(used.fields())
        .zip(limits.fields())
        .find(|(((_, want), (_, have)), (_, limit))| *want > 0 && have + want > *limit)
        .map(|(((name, want), (_, have)), (_, limit))| {
            format!("{name}: {have} used + {want} requested > limit {limit}")
        })
        .unwrap_or_else(|| "a limit".into());
    Error::QuotaExceeded(format!("quota exceeded for {over}"))
}
