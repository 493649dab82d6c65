//! Starting a session: its live marker, what it holds of the owner's quota and the app's
//! instances, its record and tickets, and undoing a start that fails half-way.

use super::{
    DirectStream, Session, SessionState, Sessions, Side, Started, direct_session_id, instances_key, live_key,
    one_session, random_token, session_item, ticket_key,
};
use crate::nvcf::NvcfSignaling;
use portico_core::Error;
use portico_core::apps::App;
use portico_core::quotas::{Quotas, Resources, holder_flag};
use portico_core::store::{Condition, Counter, Item, StoreError, now_epoch};

impl Sessions<'_> {
    /// Starts a session: its live marker first, naming the owner and the app (so that a start
    /// that fails half-way is found by the sweeper even if its own clean-up cannot reach the
    /// store), then one unit of the owner's `sessions` quota and one live instance of the app,
    /// both held by the session's id, then the session record and both tickets: 2 counter
    /// updates + 4 writes. A refusal or a failure gives back exactly what was taken.
    pub async fn start(&self, owner: &str, app: &str, app_group: &str, limits: &Resources) -> Result<Started, Error> {
        let now = now_epoch();
        let session = Session {
            id: uuid::Uuid::new_v4().simple().to_string(),
            owner: owner.to_owned(),
            app: app.to_owned(),
            app_group: app_group.to_owned(),
            state: SessionState::Connecting,
            created_at: now,
            ends_at: now + self.config.session_ttl as i64,
            host_deadline: now + self.config.session_host_timeout as i64,
            idle_since: None,
            client_conn: None,
            host_conn: None,
            ended_reason: None,
            host_resumable: false,
            direct: None,
        };
        self.reserve(&session, limits).await?;
        let recorded = self.table.put(session_item(&session, self.config.session_history_ttl), Condition::Absent).await;
        let tickets = match recorded {
            Ok(_) => {
                async {
                    let client_ticket = self.ticket(&session.id, Side::Client).await?;
                    let host_ticket = self.ticket(&session.id, Side::Host).await?;
                    Ok::<_, Error>((client_ticket, host_ticket))
                }
                .await
            }
            Err(e) => Err(e.into()),
        };
        match tickets {
            Ok((client_ticket, host_ticket)) => Ok(Started { session, client_ticket, host_ticket }),
            Err(e) => {
                // The record may have landed even if its answer was lost: ending it (or, if it is
                // not there, giving back what was held) undoes the start, once.
                self.abandon(&session, true).await;
                Err(e)
            }
        }
    }

    /// Starts a session of the streaming portal's own routes on NVCF: the caller's instances of
    /// the app are checked first (at the limit: refused without calling NVCF), then NVCF's
    /// `sign_in` (`query`: the client's, passed on) names the session, then its live marker,
    /// quota and instance are taken as for [`Sessions::start`] and it is recorded `idle`, its
    /// client not yet connected: 1 read, 2 counter updates, 2 writes. A refusal or a failure
    /// gives back what was taken and ends NVCF's session.
    pub async fn start_direct(
        &self,
        owner: &str,
        app: &App,
        limits: &Resources,
        nvcf: &NvcfSignaling,
        query: &str,
    ) -> Result<Session, Error> {
        let max = self.config.max_app_instances_count;
        let live = self.table.get(&instances_key(owner, &app.slug)).await?.and_then(|i| i.n("live")).unwrap_or(0);
        if live >= max {
            return Err(Error::QuotaExceeded(format!("Maximum number of instances reached ({live}).")));
        }
        let (function_id, version_id) = (&app.function_id, &app.function_version_id);
        let request_id = nvcf.sign_in(function_id, version_id, query).await?;
        let now = now_epoch();
        let session = Session {
            id: direct_session_id(&request_id),
            owner: owner.to_owned(),
            app: app.slug.clone(),
            app_group: app.group.clone(),
            state: SessionState::Idle,
            created_at: now,
            ends_at: now + self.config.session_ttl as i64,
            // No host joins: NVCF's side is there from the sign-in.
            host_deadline: now,
            idle_since: Some(now),
            client_conn: None,
            host_conn: None,
            ended_reason: None,
            host_resumable: false,
            direct: Some(DirectStream {
                request_id: request_id.clone(),
                function_id: function_id.clone(),
                function_version_id: version_id.clone(),
                authentication: app.authentication_type,
                lease_until: None,
            }),
        };
        let recorded = async {
            self.reserve(&session, limits).await?;
            match self.table.put(session_item(&session, self.config.session_history_ttl), Condition::Absent).await {
                Ok(_) => Ok(()),
                Err(e) => {
                    self.abandon(&session, true).await;
                    Err(Error::from(e))
                }
            }
        };
        if let Err(e) = recorded.await {
            if let Err(out) = nvcf.sign_out(function_id, version_id, &request_id).await {
                tracing::warn!(session = %session.id, error = %out, "NVCF's session of a failed start could not be ended");
            }
            return Err(e);
        }
        Ok(session)
    }

    /// The session's live marker, naming the owner and the app (so that a start that fails
    /// half-way is found by the sweeper even if its own clean-up cannot reach the store), then
    /// what it holds ([`Sessions::hold`]). A refusal or a failure gives back what was taken.
    async fn reserve(&self, session: &Session, limits: &Resources) -> Result<(), Error> {
        let (owner, app) = (&session.owner, &session.app);
        let marker = Item::new(live_key(&session.id))
            .with_n("since", session.created_at)
            .with_s("owner", owner)
            .with_s("app", app);
        if let Err(e) = self.table.put(marker, Condition::Always).await {
            // It may have landed unseen. It holds nothing yet; if it stays, the sweeper removes it.
            let _ = self.table.delete(&live_key(&session.id), Condition::Always).await;
            return Err(e.into());
        }
        if let Err(e) = self.hold(session, limits).await {
            match e {
                // Refused: nothing is held (see `hold`).
                Error::QuotaExceeded(_) => {
                    let _ = self.table.delete(&live_key(&session.id), Condition::Always).await;
                }
                _ => self.abandon(session, false).await,
            }
            return Err(e);
        }
        Ok(())
    }

    /// Takes one `sessions` unit of the owner's quota and one live instance of the app, each
    /// held by the session (again: nothing more, if a retried start already holds them). A
    /// refusal (`quota_exceeded`) holds nothing; another failure may hold either.
    async fn hold(&self, s: &Session, limits: &Resources) -> Result<(), Error> {
        let quotas = Quotas::new(self.table);
        quotas.reserve_for(&s.owner, &s.id, &one_session(), limits).await?;
        let (max, flag) = (self.config.max_app_instances_count, holder_flag(&s.id));
        let counters = [Counter::new("live", 1, Some(max)), Counter::set_flag(flag.clone())];
        match self.table.add(&instances_key(&s.owner, &s.app), &counters, None).await {
            Ok(_) => Ok(()),
            Err(StoreError::ConditionFailed { current: Some(c) }) if c.n(&flag).is_some() => Ok(()),
            Err(StoreError::ConditionFailed { .. }) => {
                quotas.release_for(&s.owner, &s.id, &one_session()).await?;
                Err(Error::QuotaExceeded(format!("at most {max} live session(s) of app '{}' per user", s.app)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Undoes a start that failed: the session ends if it was recorded, what it holds is given
    /// back and its marker removed. What cannot be done now is left to the sweeper, which
    /// finds the marker.
    async fn abandon(&self, s: &Session, recorded: bool) {
        if recorded {
            match self.end(&s.id, "start_failed").await {
                Ok(_) => return,
                Err(Error::NotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(session = %s.id, error = %e, "undoing a failed start failed; the sweeper will");
                    return;
                }
            }
        }
        if self.release(&s.owner, &s.app, &s.id).await {
            let _ = self.table.delete(&live_key(&s.id), Condition::Always).await;
        }
    }

    /// Uses up `ticket`: the session and side it was for; 401 if it is none, used or expired.
    /// 1 delete (conditional: a ticket serves once).
    pub async fn redeem(&self, ticket: Option<&str>) -> Result<(String, Side), Error> {
        let ticket = ticket
            .filter(|t| !t.is_empty() && t.len() <= 128)
            .ok_or_else(|| Error::Unauthorized("a ticket is required (?ticket=...)".into()))?;
        let used = match self.table.delete(&ticket_key(ticket), Condition::Exists).await {
            Ok(Some(item)) => item,
            Ok(None) | Err(StoreError::ConditionFailed { .. }) => {
                return Err(Error::Unauthorized("the ticket is invalid, used or expired".into()));
            }
            Err(e) => return Err(e.into()),
        };
        match (used.s("session"), used.s("side").and_then(Side::parse)) {
            (Some(session), Some(side)) => Ok((session.to_owned(), side)),
            _ => Err(Error::Internal("ticket item without session or side".into())),
        }
    }

    /// A fresh single-use ticket for `side` of the session. 1 write.
    pub async fn ticket(&self, session: &str, side: Side) -> Result<String, Error> {
        let ticket = random_token();
        let mut item =
            Item::new(ticket_key(&ticket)).with_s("session", session.to_owned()).with_s("side", side.as_str());
        item.expires_at = Some(now_epoch() + self.config.session_ticket_ttl as i64);
        self.table.put(item, Condition::Absent).await?;
        Ok(ticket)
    }
}
