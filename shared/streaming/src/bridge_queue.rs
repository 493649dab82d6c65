//! Bridges on AWS: a session to carry is a message on an SQS queue (`bridge_queue_url`), and
//! the bridge service (`functions/bridge`, on ECS Fargate) takes messages as it has room,
//! carries each session in a task of its own, keeps the message hidden while it carries it
//! (its visibility extended every [`HEARTBEAT`]) and deletes it when the bridge ends. A task that
//! dies stops extending: the message shows again and another task takes it, whose bridge finds
//! the host's ticket used, takes a fresh one and carries the session on (the relay waits for it:
//! `HOST_RESUME_SECONDS`), NVCF's session still the same.
//!
//! A message holds the [`BridgeJob`]: ids, NVCF's session cookie and the host's single-use
//! relay URL, never the key (each bridge reads it from Secrets Manager).
//!
//! While a task carries at least one session it asks ECS to protect it from scale-in (the ECS
//! agent's task-protection endpoint, `$ECS_AGENT_URI/task-protection/v1/state`), and lets go
//! when it carries none: the service scales in only idle tasks, never a stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use portico_core::Error;

use crate::bridge::{BridgeEnd, BridgeJob, BridgeQueue, HostTickets, carry};
use crate::nvcf::NvcfSignaling;

/// How long a taken message stays hidden without news from its bridge.
pub const VISIBILITY: Duration = Duration::from_secs(60);
/// How often a carrying bridge extends its message's visibility.
pub const HEARTBEAT: Duration = Duration::from_secs(20);

/// Sessions handed to the bridge service through SQS.
pub struct SqsBridges {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsBridges {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String) -> SqsBridges {
        SqsBridges { client, queue_url }
    }
}

#[async_trait::async_trait]
impl BridgeQueue for SqsBridges {
    #[tracing::instrument(name = "sqs", skip_all, fields(session = %job.session_id))]
    async fn enqueue(&self, job: BridgeJob) -> Result<(), Error> {
        let body = serde_json::to_string(&job).map_err(|e| Error::Internal(format!("a bridge job: {e}")))?;
        self.client.send_message().queue_url(&self.queue_url).message_body(body).send().await.map_err(|e| {
            Error::Unavailable(format!("the bridges' queue: {}", aws_sdk_sqs::error::DisplayErrorContext(&e)))
        })?;
        Ok(())
    }
}

/// ECS's scale-in protection of the task this process runs in, through the ECS agent's
/// endpoint, held while the task carries anything (queue sessions, the portal's sockets); without
/// an agent (not on ECS), nothing.
#[derive(Clone)]
pub struct TaskProtection {
    agent: Option<String>,
    http: reqwest::Client,
    /// What the task carries.
    carrying: Arc<AtomicUsize>,
    /// When protection was last asked for (none: let go). Changes go one at a time, each
    /// applying what the count says then, so a release and a hold never land out of order.
    protected_since: Arc<tokio::sync::Mutex<Option<std::time::Instant>>>,
}

/// How long a protection lasts unless renewed: more than a session's longest life (8 h).
const PROTECTION_MINUTES: u32 = 600;

impl TaskProtection {
    /// The agent at `agent` (`ECS_AGENT_URI`), if any.
    pub fn new(agent: Option<String>) -> TaskProtection {
        TaskProtection {
            agent,
            http: reqwest::Client::new(),
            carrying: Arc::default(),
            protected_since: Arc::default(),
        }
    }

    /// One more thing carried: protected from scale-in with the first (renewed on a hold once
    /// half its time has passed).
    pub async fn hold(&self) {
        self.carrying.fetch_add(1, Ordering::SeqCst);
        self.apply().await;
    }

    /// One thing fewer: let go with the last.
    pub async fn release(&self) {
        self.carrying.fetch_sub(1, Ordering::SeqCst);
        self.apply().await;
    }

    async fn apply(&self) {
        let mut since = self.protected_since.lock().await;
        let wanted = self.carrying.load(Ordering::SeqCst) > 0;
        let renew = Duration::from_secs(u64::from(PROTECTION_MINUTES) * 30);
        match (wanted, *since) {
            (true, Some(at)) if at.elapsed() < renew => {}
            (true, _) => {
                self.set(true).await;
                *since = Some(std::time::Instant::now());
            }
            (false, Some(_)) => {
                self.set(false).await;
                *since = None;
            }
            (false, None) => {}
        }
    }

    /// Asks for protection (`true`) or lets it go; a failure is logged, never fatal.
    async fn set(&self, protected: bool) {
        let Some(agent) = &self.agent else { return };
        let mut body = serde_json::json!({"ProtectionEnabled": protected});
        if protected {
            body["ExpiresInMinutes"] = PROTECTION_MINUTES.into();
        }
        let url = format!("{agent}/task-protection/v1/state");
        let sent = self.http.put(url).json(&body).timeout(Duration::from_secs(5)).send().await;
        match sent {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(status = r.status().as_u16(), "scale-in protection refused"),
            Err(e) => tracing::warn!(error = %e, "scale-in protection unreachable"),
        }
    }
}

/// The bridge service's loop: takes up to `capacity` sessions at a time from the queue and
/// carries each to its end, protected from scale-in while it carries any. Runs until the
/// process stops.
pub async fn serve_queue(
    client: aws_sdk_sqs::Client,
    queue_url: String,
    signaling: NvcfSignaling,
    tickets: Option<HostTickets>,
    capacity: usize,
    protection: TaskProtection,
) {
    let carrying = Arc::new(AtomicUsize::new(0));
    loop {
        let room = capacity.saturating_sub(carrying.load(Ordering::SeqCst)).min(10);
        if room == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let received = client
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(room as i32)
            .wait_time_seconds(20)
            .visibility_timeout(VISIBILITY.as_secs() as i32)
            .send()
            .await;
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "the bridges' queue cannot be read; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for message in messages {
            let (Some(body), Some(receipt)) = (message.body, message.receipt_handle) else { continue };
            let job: BridgeJob = match serde_json::from_str(&body) {
                Ok(job) => job,
                Err(e) => {
                    tracing::warn!(error = %e, "a message that is no bridge job; dropped");
                    let _ = client.delete_message().queue_url(&queue_url).receipt_handle(&receipt).send().await;
                    continue;
                }
            };
            carrying.fetch_add(1, Ordering::SeqCst);
            protection.hold().await;
            let (client, queue_url, signaling, carrying, protection) =
                (client.clone(), queue_url.clone(), signaling.clone(), Arc::clone(&carrying), protection.clone());
            let tickets = tickets.clone();
            tokio::spawn(async move {
                let bridge = carry(&signaling, tickets.as_ref(), &job);
                tokio::pin!(bridge);
                let mut heartbeat = tokio::time::interval(HEARTBEAT);
                heartbeat.tick().await;
                let end = loop {
                    tokio::select! {
                        end = &mut bridge => break end,
                        _ = heartbeat.tick() => {
                            let _ = client
                                .change_message_visibility()
                                .queue_url(&queue_url)
                                .receipt_handle(&receipt)
                                .visibility_timeout(VISIBILITY.as_secs() as i32)
                                .send()
                                .await;
                        }
                    }
                };
                // Another bridge carries it: the message shows again after its visibility, and
                // is taken up then if that bridge has gone.
                if end != BridgeEnd::NotHost {
                    let _ = client.delete_message().queue_url(&queue_url).receipt_handle(&receipt).send().await;
                }
                carrying.fetch_sub(1, Ordering::SeqCst);
                protection.release().await;
            });
        }
    }
}
