//! `portico desktop`: remote desktops started, followed, opened and stopped.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::args::DesktopCommand;
use super::{Client, Failure, enc, list, list_columns, show};

/// How often `--wait` reads the desktop.
const POLL: Duration = Duration::from_secs(2);

pub(super) async fn run(client: &Client, json_out: bool, command: DesktopCommand) -> Result<(), Failure> {
    match command {
        DesktopCommand::Start { environment, lifetime, experiment, wait } => {
            let body = json!({"environment": environment, "lifetime": lifetime, "experiment": experiment});
            let started = client.call(Method::POST, "/desktops", Some(body)).await?;
            if let Some(link) = started["link"].as_str() {
                show(json_out, &started, |_| format!("{environment} is a link: {link}"));
                return Ok(());
            }
            let id = started["id"].as_str().unwrap_or_default().to_owned();
            show(json_out, &started, |d| format!("started desktop {id} ({environment}), {}", state(d)));
            if wait {
                loop {
                    tokio::time::sleep(POLL).await;
                    let desktop = client.call(Method::GET, &format!("/desktops/{}", enc(&id)), None).await?;
                    if desktop["state"] != "starting" {
                        show(json_out, &desktop, |d| format!("desktop {id}: {}", state(d)));
                        return if desktop["state"] == "ready" {
                            Ok(())
                        } else {
                            Err(Failure::Local(format!("desktop {id} ended: {}", state(&desktop))))
                        };
                    }
                    if !json_out && let Some(last) = desktop["progress"].as_array().and_then(|p| p.last()) {
                        eprintln!("{}", last.as_str().unwrap_or_default());
                    }
                }
            }
        }
        DesktopCommand::List => {
            let page = client.call(Method::GET, "/desktops", None).await?;
            show(json_out, &page, |p| {
                list(p, |d| {
                    format!(
                        "{}\t{}\t{}",
                        d["id"].as_str().unwrap_or(""),
                        d["environment"].as_str().unwrap_or(""),
                        state(d)
                    )
                })
            });
        }
        DesktopCommand::Environments => {
            list_columns(client, json_out, "/environments", false, &["name", "kind", "title"]).await?;
        }
        DesktopCommand::Experiments { search } => {
            let query = search.map(|s| format!("?search={}", enc(&s))).unwrap_or_default();
            let page = client.call(Method::GET, &format!("/experiments{query}"), None).await?;
            show(json_out, &page, |p| {
                list(p, |e| {
                    let star = if e["favorite"] == true { "*" } else { " " };
                    let text = |name: &str| e[name].as_str().unwrap_or_default().to_owned();
                    format!("{star} {}\t{}\t{}", text("proposal_id"), text("beam_line"), text("subject"))
                })
            });
        }
        DesktopCommand::Favorite { proposal_id, remove } => {
            let method = if remove { Method::DELETE } else { Method::PUT };
            client.call(method, &format!("/experiments/{}/favorite", enc(&proposal_id)), None).await?;
            if !json_out {
                println!("{proposal_id} {}", if remove { "unmarked" } else { "marked as a favourite" });
            }
        }
        DesktopCommand::Status { id } => {
            let desktop = client.call(Method::GET, &format!("/desktops/{}", enc(&id)), None).await?;
            show(json_out, &desktop, |d| format!("desktop {id}: {}", state(d)));
        }
        DesktopCommand::Open { id, owner } => {
            let query = owner.map(|o| format!("?owner={}", enc(&o))).unwrap_or_default();
            let opened = client.call(Method::POST, &format!("/desktops/{}/connection{query}", enc(&id)), None).await?;
            show(json_out, &opened, |o| o["url"].as_str().unwrap_or_default().to_owned());
        }
        DesktopCommand::Extend { id, seconds } => {
            let path = format!("/desktops/{}/extend", enc(&id));
            let extended = client.call(Method::POST, &path, Some(json!({"seconds": seconds}))).await?;
            show(json_out, &extended, |d| format!("desktop {id} ends at {}", d["ends_at"].as_str().unwrap_or("?")));
        }
        DesktopCommand::Share { id, user, remove } => {
            let method = if remove { Method::DELETE } else { Method::PUT };
            let shared = client.call(method, &format!("/desktops/{}/viewers/{}", enc(&id), enc(&user)), None).await?;
            show(json_out, &shared, |d| {
                let viewers: Vec<&str> =
                    d["viewers"].as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect();
                format!("desktop {id} viewers: {}", if viewers.is_empty() { "none".into() } else { viewers.join(", ") })
            });
        }
        DesktopCommand::Stop { id } => {
            let stopped = client.call(Method::DELETE, &format!("/desktops/{}", enc(&id)), None).await?;
            show(json_out, &stopped, |d| format!("desktop {id}: {}", state(d)));
        }
    }
    Ok(())
}

/// `starting`, `ready`, or `ended (<reason>)`.
fn state(desktop: &Value) -> String {
    match (desktop["state"].as_str(), desktop["reason"].as_str()) {
        (Some(state), Some(reason)) => format!("{state} ({reason})"),
        (Some(state), None) => state.to_owned(),
        _ => "?".into(),
    }
}
