//! DynamoDB Local behind the fault proxy.

use std::time::{Duration, Instant};

use portico_tests::fault_proxy::{Fault, Plan};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Faulty, assert_retry_later, call, recipe};

/// Longest a request may take while the store fails (store calls give up after
/// `dynamodb_timeout_ms`, 1.2 s here, and a failed write's clean-up makes a few more).
const BOUND: Duration = Duration::from_secs(8);

/// The requests a user makes most, each a different mix of reads and multi-step writes.
async fn five_requests(env: &Faulty, n: usize) -> Vec<(&'static str, StatusCode, Option<String>, Value, Duration)> {
    let admin = portico_tests::ADMIN;
    let slug = format!("faulty-{n}");
    let calls = [
        ("publish an app", Method::PUT, format!("/apps/{slug}"), admin, Some(portico_tests::app_body(&slug))),
        ("start a session", Method::POST, "/sessions".into(), "carol", Some(json!({"app": "viewer"}))),
        ("submit a job", Method::POST, "/jobs".into(), "carol", Some(recipe())),
        ("create a user", Method::POST, "/admin/users".into(), admin, Some(json!({"username": format!("user-{n}")}))),
        ("read an app", Method::GET, "/apps/viewer".into(), "carol", None),
    ];
    let answers = calls.into_iter().map(|(what, method, path, user, body)| async move {
        let started = Instant::now();
        let (status, retry_after, answer) = call(&env.farm.api, method, &path, user, body, None).await;
        (what, status, retry_after, answer, started.elapsed())
    });
    futures_util::future::join_all(answers).await
}

/// With every store call failing (each way the network can fail), every request answers a
/// 503 with `Retry-After` and Portico's error body, well within a bounded time, never a 500
/// or a hang. Once the store is back (and the scheduled repairs have run), nothing is left
/// half-written, and the same requests succeed with usage exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_store_failing_every_request_answers_503_to_retry_in_bounded_time() {
    let env = Faulty::start().await;
    let faults = [Fault::Drop, Fault::ResetRequest, Fault::ResetAnswer, Fault::Delay(Duration::from_secs(3))];
    for (n, fault) in faults.into_iter().enumerate() {
        env.proxy.set(fault);
        let faulted = env.proxy.faulted();
        for (what, status, retry_after, body, took) in five_requests(&env, n).await {
            let what = format!("{what} ({fault:?})");
            assert!(took < BOUND, "{what}: answered after {took:?}");
            assert_retry_later(&what, status, retry_after.as_deref(), &body);
        }
        assert!(env.proxy.faulted() > faulted, "{fault:?}: the store was asked, and failed");
        env.proxy.set(Fault::Pass);
        env.repair().await;
        env.audit(&format!("after {fault:?}")).await;
    }
    // Healed: the same requests go through, and what they hold is exactly what is recorded.
    for (what, status, _, body, _) in five_requests(&env, 9).await {
        assert!(status.is_success(), "{what} after healing: {status} {body}");
    }
    env.audit("after healing").await;
    let (_, _, me) = call(&env.farm.api, Method::GET, "/auth/me", "carol", None, None).await;
    assert_eq!((me["usage"]["sessions"].as_i64(), me["usage"]["jobs"].as_i64()), (Some(1), Some(1)), "{me}");
    assert!(!portico_tests::captured_logs().contains(portico_tests::STREAM_API_KEY));
}

/// A multi-step write (starting a session, submitting a job with an `Idempotency-Key`) with
/// every attempt of one of its store calls failing, then the store back: whichever step
/// failed, the answer is a success or a 503 to retry, and what was done is undone (or whole),
/// at once, by the request itself. Tried at each step, with the connection dropped and with
/// the answer lost after the write landed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fault_at_any_step_of_a_multi_step_write_is_undone_at_once() {
    let env = Faulty::start().await;
    let attempts = 3; // `dynamodb_max_attempts` in `super::tune`
    for flow in [Flow::Session, Flow::Job] {
        let steps = flow.steps(&env).await;
        for fault in [Fault::ResetAnswer, Fault::Drop] {
            for step in 0..steps {
                let faulted = env.proxy.faulted();
                env.proxy.plan(Plan::pass(step).then(attempts, fault));
                let (status, retry_after, body) = flow.run(&env, &format!("{fault:?}-{step}")).await;
                let what = format!("{flow:?}, {fault:?} at store call {}", step + 1);
                // All of them during this request: the step was reached, and the fault spent.
                assert_eq!(env.proxy.faulted() - faulted, attempts, "{what}: every attempt met the fault");
                match status {
                    s if s.is_success() => {}
                    _ => assert_retry_later(&what, status, retry_after.as_deref(), &body),
                }
                env.proxy.set(Fault::Pass);
                env.audit(&what).await;
            }
        }
    }
}

/// The store goes down in the middle of a multi-step write, just after one step landed (its
/// answer lost), and stays down through the request's own clean-up. Once it is back, the
/// scheduled sweeper and reconciler (run as they would be, minutes later) leave nothing
/// half-written: no quota held by nothing, no marker without its record.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_down_mid_write_leaves_nothing_the_scheduled_repairs_do_not_finish() {
    let env = Faulty::start().await;
    for flow in [Flow::Session, Flow::Job] {
        let steps = flow.steps(&env).await;
        for step in 0..steps {
            let faulted = env.proxy.faulted();
            env.proxy.plan(Plan::pass(step).then(1, Fault::ResetAnswer).always(Fault::Drop));
            let started = Instant::now();
            let (status, retry_after, body) = flow.run(&env, &format!("down-{step}")).await;
            let what = format!("{flow:?}, down from store call {}", step + 1);
            assert!(env.proxy.faulted() > faulted, "{what}: the request reached the step");
            assert!(started.elapsed() < BOUND, "{what}: answered after {:?}", started.elapsed());
            if !status.is_success() {
                assert_retry_later(&what, status, retry_after.as_deref(), &body);
            }
            env.proxy.set(Fault::Pass);
            env.repair().await;
            env.audit(&what).await;
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Flow {
    Session,
    Job,
}

impl Flow {
    async fn run(self, env: &Faulty, key: &str) -> (StatusCode, Option<String>, Value) {
        match self {
            Flow::Session => {
                call(&env.farm.api, Method::POST, "/sessions", "carol", Some(json!({"app": "viewer"})), None).await
            }
            Flow::Job => call(&env.farm.api, Method::POST, "/jobs", "carol", Some(recipe()), Some(key)).await,
        }
    }

    /// The store calls one successful run makes (as the proxy counts them).
    async fn steps(self, env: &Faulty) -> u64 {
        let before = env.proxy.requests();
        let (status, _, body) = self.run(env, "measure").await;
        assert!(status.is_success(), "{self:?}: {status} {body}");
        let steps = env.proxy.requests() - before;
        assert!(steps >= 5, "{self:?} is a multi-step write: {steps} store calls");
        steps
    }
}

/// The store's own promise under faults, call by call: a write whose answer was lost (or held
/// past the attempt's timeout) is retried without being applied twice, and says so when it
/// cannot tell; a store that does not answer is `Unavailable` within `dynamodb_timeout_ms`.
#[tokio::test]
async fn a_lost_answer_is_never_a_second_write_nor_a_hang() {
    use portico_core::store::{Condition, Counter, Item, Key, StoreError, Table};
    let env = Faulty::start().await;
    let proxied = &env.farm.api.services.table;
    let once = |fault| env.proxy.plan(Plan::pass(0).then(1, fault));
    for (n, fault) in [Fault::ResetAnswer, Fault::Delay(Duration::from_secs(2))].into_iter().enumerate() {
        let key = Key::new("FAULTS", format!("counter-{n}"));
        once(fault);
        let after = proxied.add(&key, &[Counter::new("n", 1, Some(5))], None).await.expect("retried to success");
        assert_eq!(after.n("n"), Some(1), "{fault:?}: a counter change applied once");
        assert_eq!(env.direct.get(&key).await.unwrap().unwrap().n("n"), Some(1), "{fault:?}: as stored");

        let item = Item::new(Key::new("FAULTS", format!("item-{n}"))).with_s("v", "first");
        once(fault);
        assert_eq!(
            proxied.put(item.clone(), Condition::Absent).await.unwrap(),
            None,
            "{fault:?}: created, not a conflict"
        );
        let replacement = Item::new(item.key.clone()).with_s("v", "second");
        once(fault);
        assert!(proxied.put(replacement, Condition::Rev(item.rev.clone())).await.unwrap().is_some(), "{fault:?}");
        assert_eq!(env.direct.get(&item.key).await.unwrap().unwrap().s("v"), Some("second"));
        once(fault);
        match proxied.delete(&item.key, Condition::Exists).await {
            Err(StoreError::Unavailable(_)) => {}
            other => panic!("{fault:?}: a conditional delete that cannot tell says so, got {other:?}"),
        }
        assert_eq!(env.direct.get(&item.key).await.unwrap(), None, "{fault:?}: it was deleted");
    }
    env.proxy.set(Fault::Drop);
    let started = Instant::now();
    match proxied.get(&Key::new("FAULTS", "any")).await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("an unreachable store is Unavailable, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(3_000), "gave up after {:?}", started.elapsed());
}
