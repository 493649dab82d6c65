//! The function binaries the SAM template deploys, built for this machine, for the `coldstart`
//! and `sizes` parts.
//!
//! The parts build them first, with the profile measured (`--profiles release,release-o3`;
//! `release` by default) and the command below, which cargo answers at once when they are up
//! to date (`--no-build` skips it):
//!
//! ```text
//! cargo build --locked --profile release -p portico-bench -p portico-apps ... --bin apps ... --bin hello-lambda
//! ```
//! The packages are listed with `-p` (not `--workspace`) so the dependencies' features are the
//! benchmark's own and its release build is reused; a `--workspace` build would add the test
//! crates' features (see the README's "Builds").

use std::path::PathBuf;
use std::time::Instant;

use crate::flag_text;

/// One deployed binary: its name, package and memory size (`infra/template.yaml`).
pub struct Function {
    pub bin: &'static str,
    pub package: &'static str,
    pub memory_mb: u32,
}

/// Every binary of every function crate (`scripts/build-lambdas`' list), then the baseline.
pub const FUNCTIONS: [Function; 13] = [
    Function { bin: "apps", package: "portico-apps", memory_mb: 256 },
    Function { bin: "auth", package: "portico-auth", memory_mb: 512 },
    Function { bin: "admin", package: "portico-admin", memory_mb: 512 },
    Function { bin: "desktops", package: "portico-desktops-api", memory_mb: 256 },
    Function { bin: "desktops-sweeper", package: "portico-desktops-api", memory_mb: 256 },
    Function { bin: "sessions", package: "portico-sessions", memory_mb: 256 },
    Function { bin: "relay", package: "portico-sessions", memory_mb: 256 },
    Function { bin: "sweeper", package: "portico-sessions", memory_mb: 256 },
    Function { bin: "rpc", package: "portico-rpc-api", memory_mb: 1024 },
    Function { bin: "jobs", package: "portico-jobs-api", memory_mb: 512 },
    Function { bin: "reconciler", package: "portico-jobs-api", memory_mb: 256 },
    Function { bin: "console", package: "portico-console", memory_mb: 512 },
    Function { bin: HELLO, package: "portico-bench", memory_mb: 256 },
];

/// The baseline: `lambda_http`'s hello world, same profile and dependency versions.
pub const HELLO: &str = "hello-lambda";

/// The binaries `--bins` names (every one by default; the hello world always).
pub fn selected() -> Result<Vec<&'static Function>, String> {
    let wanted = flag_text("--bins");
    let chosen: Vec<&Function> = FUNCTIONS
        .iter()
        .filter(|f| f.bin == HELLO || wanted.as_deref().is_none_or(|w| w.split(',').any(|b| b.trim() == f.bin)))
        .collect();
    if let Some(w) = &wanted
        && let Some(unknown) = w.split(',').map(str::trim).find(|b| !FUNCTIONS.iter().any(|f| f.bin == *b))
    {
        return Err(format!("--bins: no binary '{unknown}'"));
    }
    Ok(chosen)
}

/// The profiles `--profiles` names (`release` by default), `release` first when present.
pub fn profiles() -> Vec<String> {
    let text = flag_text("--profiles").unwrap_or_else(|| "release".into());
    let mut list: Vec<String> = text.split(',').map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect();
    list.sort_by_key(|p| p != "release");
    list
}

/// The target directory this benchmark was built into (`target/`).
fn target_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("the benchmark's path: {e}"))?;
    exe.parent().and_then(|p| p.parent()).map(PathBuf::from).ok_or_else(|| "no target directory".into())
}

/// Where `bin` built with `profile` is.
pub fn path(profile: &str, bin: &str) -> Result<PathBuf, String> {
    // Cargo's directory for the `dev` profile is `debug`; every other profile's is its name.
    Ok(target_dir()?.join(if profile == "dev" { "debug" } else { profile }).join(bin))
}

/// Builds `functions` with `profile` (unless `--no-build`), printing the command and its time.
pub fn build(profile: &str, functions: &[&Function]) -> Result<(), String> {
    if std::env::args().any(|a| a == "--no-build") {
        return Ok(());
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut packages: Vec<&str> = vec!["portico-bench"];
    for f in functions {
        if !packages.contains(&f.package) {
            packages.push(f.package);
        }
    }
    let mut args = vec!["build".to_owned(), "--locked".into(), "--profile".into(), profile.into()];
    args.push("--target-dir".into());
    args.push(target_dir()?.display().to_string());
    for p in packages {
        args.extend(["-p".into(), p.into()]);
    }
    for f in functions {
        args.extend(["--bin".into(), f.bin.into()]);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("  building: cargo {}", args.join(" "));
    let t = Instant::now();
    let status = std::process::Command::new(cargo)
        .args(&args)
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build failed ({status})"));
    }
    println!("  built in {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}
