//! The sweeper: ends sessions past their deadlines and finishes what failed starts and ends left.

use super::{DANGLING_MARKER_AGE, LIVE_PARTITION, Session, SessionState, Sessions, session_from, session_key};
use portico_core::Error;
use portico_core::store::{Condition, Query, now_epoch};

impl Sessions<'_> {
    /// Ends sessions past their deadlines (the host never came, idle too long, too old).
    /// Not a request path: run on a schedule. Returns how many it ended.
    pub async fn sweep(&self) -> Result<usize, Error> {
        let now = now_epoch();
        let mut ended = 0;
        let mut after = None;
        loop {
            let mut q = Query::table(LIVE_PARTITION, 100);
            q.after = after;
            let page = self.table.query(&q).await?;
            for marker in &page.items {
                let id = marker.key.sk.as_str();
                let s = match self.table.get(&session_key(id)).await? {
                    Some(item) => session_from(&item)?,
                    // A start that failed half-way; a young marker may be a start in progress.
                    // Whatever it took is given back (nothing, if it took nothing).
                    None => {
                        if marker.n("since").is_none_or(|t| now - t >= DANGLING_MARKER_AGE) {
                            let released = match (marker.s("owner"), marker.s("app")) {
                                (Some(owner), Some(app)) => self.release(owner, app, id).await,
                                _ => true,
                            };
                            if released {
                                self.table.delete(&marker.key, Condition::Always).await?;
                            }
                        }
                        continue;
                    }
                };
                if s.state == SessionState::Stopped {
                    // Ended, but giving back what it held or removing its marker failed then.
                    if self.release(&s.owner, &s.app, &s.id).await {
                        self.table.delete(&marker.key, Condition::Always).await?;
                    }
                    continue;
                }
                if let Some(reason) = self.overdue(&s, now)
                    && self.end(&s.id, reason).await?
                {
                    ended += 1;
                }
            }
            match page.next {
                Some(c) => after = Some(c),
                None => return Ok(ended),
            }
        }
    }

    /// Since when `s` has had no client: idle, or held by a socket whose holder stopped
    /// renewing its lease (a bridge task that died).
    fn idle_since(&self, s: &Session) -> Option<i64> {
        match s.state {
            SessionState::Idle => s.idle_since,
            SessionState::Active => s.direct.as_ref().and_then(|d| d.lease_until),
            _ => None,
        }
    }

    /// Why `s` must end now, if it must.
    fn overdue(&self, s: &Session, now: i64) -> Option<&'static str> {
        if now >= s.ends_at {
            Some("max_duration")
        } else if s.host_conn.is_none() && s.direct.is_none() && now >= s.host_deadline {
            // Never joined, or (a resumable host) left and was not taken up again.
            Some("host_timeout")
        } else if self.idle_since(s).is_some_and(|t| now >= t + self.config.session_idle_timeout as i64) {
            Some("idle_timeout")
        } else {
            None
        }
    }
}
