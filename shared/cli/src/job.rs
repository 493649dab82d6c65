//! `portico job`: recipes submitted as jobs, followed, read and cancelled.

use std::path::Path;
use std::time::Duration;

use portico_jobs::recipe::{Meta, Recipe, RecipeError};
use reqwest::Method;
use serde_json::{Value, json};

use super::args::JobCommand;
use super::{Client, Failure, enc, list, list_columns, show};

/// How often `--wait` asks for the job's phase.
const POLL: Duration = Duration::from_secs(2);

pub(super) async fn run(client: &Client, json_out: bool, command: JobCommand) -> Result<(), Failure> {
    match command {
        JobCommand::Submit { recipe, params, wait } => {
            let body = submission(&recipe, &params)?;
            let job = client.call(Method::POST, "/jobs", Some(body)).await?;
            let id = job["id"].as_str().unwrap_or_default().to_owned();
            show(json_out, &job, |j| {
                format!("submitted job {id} ({}), {}", j["recipe"].as_str().unwrap_or("?"), phase(j))
            });
            if wait {
                follow(client, json_out, &id).await?;
            }
        }
        JobCommand::List { all } => {
            list_columns(client, json_out, "/jobs", all, &["id", "recipe", "phase", "owner"]).await?;
        }
        JobCommand::Templates => {
            let page = client.call(Method::GET, "/recipes", None).await?;
            show(json_out, &page, |p| {
                list(p, |t| {
                    let names: Vec<&str> =
                        t["parameters"].as_array().into_iter().flatten().filter_map(|p| p["name"].as_str()).collect();
                    format!(
                        "{}\t{}\t({})",
                        t["name"].as_str().unwrap_or("?"),
                        t["description"].as_str().unwrap_or(""),
                        names.join(", ")
                    )
                })
            });
        }
        JobCommand::Output { id } => {
            let output = client.call(Method::GET, &format!("/jobs/{}/output", enc(&id)), None).await?;
            show(json_out, &output, |o| match o["url"].as_str() {
                Some(url) => url.to_owned(),
                None => {
                    format!("{} (volume {})", o["path"].as_str().unwrap_or("?"), o["volume"].as_str().unwrap_or("?"))
                }
            });
        }
        JobCommand::Status { id } => {
            let job = client.call(Method::GET, &format!("/jobs/{}", enc(&id)), None).await?;
            show(true, &job, |_| String::new());
        }
        JobCommand::Logs { id } => {
            // Logs are text, printed as sent: `call` would read a log that happens to be JSON
            // (`42`, `{...}`) as a value and print nothing.
            let response = client.send(client.request(Method::GET, &format!("/jobs/{}/logs", enc(&id)))).await?;
            if !response.status().is_success() {
                // The API's refusal, worded as every other command's.
                return Client::answer(response).await.map(drop);
            }
            let text = response.text().await.map_err(|e| Failure::Unreachable(format!("reading the logs: {e}")))?;
            print!("{text}");
        }
        JobCommand::Cancel { id } => {
            let job = client.call(Method::DELETE, &format!("/jobs/{}", enc(&id)), None).await?;
            show(json_out, &job, |j| format!("job {id}: {}", phase(j)));
        }
    }
    Ok(())
}

fn phase(job: &Value) -> String {
    let phase = job["phase"].as_str().unwrap_or("?");
    match job["message"].as_str().filter(|m| !m.is_empty()) {
        Some(message) => format!("{phase}: {message}"),
        None => phase.to_owned(),
    }
}

/// The request body for `recipe`: a `github://` source as it is, a local directory's
/// `meta.yml` and step file (checked here first, so a mistake never leaves the machine), or
/// else a registered template's name with `params`.
fn submission(recipe: &str, params: &[String]) -> Result<Value, Failure> {
    let dir = Path::new(recipe);
    if !recipe.starts_with("github://") && !dir.is_dir() {
        let mut values = serde_json::Map::new();
        for p in params {
            let (k, v) = p.split_once('=').ok_or_else(|| Failure::Usage(format!("--param {p:?}: give KEY=VALUE")))?;
            values.insert(k.to_owned(), json!(v));
        }
        return Ok(json!({"template": recipe, "parameters": values}));
    }
    if !params.is_empty() {
        return Err(Failure::Usage("--param is for templates".into()));
    }
    if recipe.starts_with("github://") {
        return Ok(json!({"source": recipe}));
    }
    let read = |name: &str| {
        std::fs::read(dir.join(name)).map_err(|e| Failure::Local(format!("{}: {e}", dir.join(name).display())))
    };
    let refused = |e: RecipeError| Failure::Local(e.to_string());
    let meta = read("meta.yml")?;
    let parsed = Meta::parse(&meta).map_err(refused)?;
    let sh_file = parsed.sh_file().ok_or_else(|| refused(RecipeError::VisualizationUnsupported))?;
    let steps = read(sh_file)?;
    Recipe::from_parts(parsed, &steps).map_err(refused)?;
    let text =
        |bytes: Vec<u8>| String::from_utf8(bytes).map_err(|_| Failure::Local("the recipe files must be UTF-8".into()));
    Ok(json!({"recipe": {"meta_yml": text(meta)?, "steps": text(steps)?}}))
}

/// Prints each phase change until the job ends; a job that did not succeed exits non-zero.
async fn follow(client: &Client, json_out: bool, id: &str) -> Result<(), Failure> {
    let mut last = String::new();
    loop {
        let job = client.call(Method::GET, &format!("/jobs/{}", enc(id)), None).await?;
        let now = phase(&job);
        if now != last && !json_out {
            println!("job {id}: {now} {}", job["progress"].as_str().unwrap_or(""));
        }
        last = now;
        match job["phase"].as_str() {
            Some("Succeeded") => return Ok(()),
            Some("Failed" | "Error") => return Err(Failure::Local(format!("job {id} did not succeed: {last}"))),
            _ => tokio::time::sleep(POLL).await,
        }
    }
}
