//! Cold start: each function binary, built for this machine with the deployment's profile,
//! started as Lambda starts it, against a stand-in for Lambda's Runtime API on 127.0.0.1,
//! beside `lambda_http`'s hello world built the same way (`functions.rs`).
//!
//! Measured per binary, median of `--starts` (10) starts after one unmeasured start (which
//! warms the page cache, as a recently deployed function's code is cached on its worker):
//! - process start (spawn) to the first invocation's response received by the Runtime API:
//!   exec and dynamic loading, the tokio runtime, logging set-up, `Config::load` (settings from
//!   the environment), `Services::from_config` (the signing keyring read and parsed, the HTTPS
//!   client with the system's root certificates, token verifiers; the rpc function also
//!   loads its descriptors), the first `GET .../invocation/next`, then the first request
//!   handled (a token verified, the user created on first sight, storage read) and its
//!   response posted; and the time to the first `next` alone (Lambda's "Init Duration");
//! - the process's peak resident memory (VmHWM) after that first answer;
//! - a warm invocation through the same Runtime API (`--warm` invocations, p50; for `auth`,
//!   its main route: a password login, refused, so one argon2id verification).
//!
//! The functions run on the embedded store with local secrets (`PORTICO_STORE=memory`,
//! `PORTICO_SECRETS=local`), so the cold start here does NOT include what AWS adds: loading
//! the AWS SDK's configuration, the Secrets Manager read of the signing keys and DynamoDB
//! calls, each a TLS connection to an AWS endpoint (tens of ms on a real cold start), nor
//! Lambda's own work before `exec` (fetching the code, starting the sandbox). The CPU is this
//! machine's, not a share of one sized by the function's memory. When moto is installed
//! (`./scripts/test` installs it), `apps` runs once more with DynamoDB and Secrets Manager
//! played by moto on 127.0.0.1 (`AWS_ENDPOINT_URL`): the SDK's configuration and clients, one
//! `GetSecretValue` and the first request's DynamoDB calls, over plain HTTP.

mod inputs;
mod runtime_api;
mod start;

use std::path::{Path, PathBuf};
use std::time::Duration;

use portico_core::auth::own::Keyring;

use crate::functions::{self, Function, HELLO};
use crate::report::{Better, Report};
use crate::{BenchResult, flag, ms};
use inputs::{Outside, first_event, moto, warm_events};
use start::{Start, start_once};

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// One binary's figures: (init, first answer, peak MiB, warm p50), times in ms.
struct Figures {
    init_ms: f64,
    first_ms: f64,
    peak_mib: f64,
    warm_ms: f64,
    warm_what: &'static str,
    answer: String,
}

/// The figures of each of `binaries` (builds of `f`), started in turn (one start of each, then
/// again), so that a change in the machine's load falls on each alike.
async fn measure(f: &Function, binaries: &[PathBuf], outside: &Outside, dir: &Path) -> Result<Vec<Figures>, String> {
    let (starts, warm) = (flag("--starts", 10).max(1), flag("--warm", 200).max(1));
    let event = first_event(f.bin, &outside.token);
    let (warm_events, warm_what) = warm_events(f.bin, &event, warm);
    for binary in binaries {
        start_once(f, binary, &event, &[], outside, dir).await?; // page cache
    }
    let mut runs: Vec<Vec<Start>> = binaries.iter().map(|_| Vec::with_capacity(starts)).collect();
    for i in 0..starts {
        for (binary, runs) in binaries.iter().zip(&mut runs) {
            let warm = if i + 1 == starts { warm_events.as_slice() } else { &[] };
            runs.push(start_once(f, binary, &event, warm, outside, dir).await?);
        }
    }
    Ok(runs
        .into_iter()
        .map(|runs| {
            let mut peaks: Vec<u64> = runs.iter().map(|r| r.peak_kb).collect();
            peaks.sort();
            let warm = runs.iter().flat_map(|r| r.warm.iter().copied()).collect();
            Figures {
                init_ms: ms(median(runs.iter().map(|r| r.init).collect())),
                first_ms: ms(median(runs.iter().map(|r| r.first_answer).collect())),
                peak_mib: peaks[peaks.len() / 2] as f64 / 1024.0,
                warm_ms: ms(median(warm)),
                warm_what,
                answer: runs[0].answer.clone(),
            }
        })
        .collect())
}

pub async fn bench(keys: &str, report: &mut Report) -> BenchResult {
    let chosen = functions::selected()?;
    let profiles = functions::profiles();
    let starts = flag("--starts", 10).max(1);
    println!(
        "\nCold start: each function binary (host build) started against a Runtime API stand-in on 127.0.0.1, \
         embedded store, median of {starts} starts (profiles: {})",
        profiles.join(", ")
    );
    for profile in &profiles {
        functions::build(profile, &chosen)?;
    }
    let mut config = crate::config(keys, None);
    let _cuebot = portico_local::demo::start_cuebot(&mut config).await?;
    let (_argo, _engine) =
        portico_local::demo_argo::serve(&mut config, (Duration::from_millis(1), Duration::from_secs(3600))).await?;
    let token = Keyring::from_json(keys, &config).map_err(|e| format!("{e:?}"))?.issue("bench").0;
    let outside = Outside {
        keys: keys.to_owned(),
        token,
        rpc_upstreams: serde_json::to_string(&config.rpc_upstreams)?,
        argo_url: config.argo_server_url.clone().ok_or("the demo Argo's URL")?,
        aws: None,
    };
    let dir = std::env::temp_dir().join(format!("portico-coldstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    // The hello world first: every other figure's baseline.
    let order: Vec<&Function> =
        chosen.iter().filter(|f| f.bin == HELLO).chain(chosen.iter().filter(|f| f.bin != HELLO)).copied().collect();
    let mut measured: Vec<(String, &str, Figures)> = Vec::new();
    for f in order {
        let binaries = profiles.iter().map(|p| functions::path(p, f.bin)).collect::<Result<Vec<_>, _>>()?;
        let figures = measure(f, &binaries, &outside, &dir).await?;
        for (profile, got) in profiles.iter().zip(figures) {
            println!(
                "    {:<11} [{profile}] init {:.1} ms, first answer ({}) {:.1} ms, peak RSS {:.1} MiB, warm p50 {:.3} ms",
                f.bin, got.init_ms, got.answer, got.first_ms, got.peak_mib, got.warm_ms
            );
            let (baseline_name, base) = match measured.iter().find(|(p, b, _)| p == "release" && *b == f.bin) {
                Some((_, _, base)) if profile != "release" => (format!("{} [release]", f.bin), base),
                _ => {
                    let hello = measured.iter().find(|(p, b, _)| p == profile && *b == HELLO).map(|(_, _, h)| h);
                    (format!("{HELLO} [{profile}]"), hello.unwrap_or(&got))
                }
            };
            rows(report, &format!("{} [{profile}]", f.bin), &baseline_name, &got, base);
            measured.push((profile.clone(), f.bin, got));
        }
    }
    aws(&chosen, &profiles, &outside, &measured, &dir, report).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The four rows of one binary: `got` beside `base`.
fn rows(report: &mut Report, name: &str, baseline: &str, got: &Figures, base: &Figures) {
    let label = |what: &str| format!("{name}: {what}");
    let area = "cold start";
    report.add(area, label("start to first next (init)"), got.init_ms, "ms", Better::Lower, baseline, base.init_ms);
    report.add(area, label("start to first answer"), got.first_ms, "ms", Better::Lower, baseline, base.first_ms);
    report.add(area, label("peak RSS (VmHWM)"), got.peak_mib, "MiB", Better::Lower, baseline, base.peak_mib);
    report.add(area, label(got.warm_what), got.warm_ms, "ms", Better::Lower, baseline, base.warm_ms);
}

/// `apps` once more with DynamoDB and Secrets Manager played by moto: what the AWS SDK adds to
/// a cold start (its configuration, clients, one `GetSecretValue`, the first request's
/// DynamoDB calls; over plain HTTP on 127.0.0.1, so without TLS handshakes nor AWS's latency).
async fn aws(
    chosen: &[&Function],
    profiles: &[String],
    outside: &Outside,
    measured: &[(String, &str, Figures)],
    dir: &Path,
    report: &mut Report,
) -> BenchResult {
    let Some(apps) = chosen.iter().find(|f| f.bin == "apps") else { return Ok(()) };
    let Some((_, _, base)) = measured.iter().find(|(p, b, _)| p == &profiles[0] && *b == "apps") else {
        return Ok(());
    };
    let Some((_moto, endpoint)) = moto(&outside.keys).await? else {
        println!(
            "    (moto is not installed in .tools/venv: no DynamoDB/Secrets Manager figure; ./scripts/test installs it)"
        );
        return Ok(());
    };
    let profile = &profiles[0];
    let on_aws = Outside { aws: Some(endpoint), ..outside.clone() };
    let mut got = measure(apps, &[functions::path(profile, "apps")?], &on_aws, dir).await?;
    let got = got.pop().ok_or("no figures")?;
    println!(
        "    apps on moto [{profile}] init {:.1} ms, first answer ({}) {:.1} ms, peak RSS {:.1} MiB, warm p50 {:.3} ms",
        got.init_ms, got.answer, got.first_ms, got.peak_mib, got.warm_ms
    );
    let name = format!("apps [{profile}], DynamoDB + Secrets Manager on moto");
    rows(report, &name, &format!("apps [{profile}], embedded store"), &got, base);
    Ok(())
}
