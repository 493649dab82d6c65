//! Desktops in the console, in a real browser: my experiments (favourites first), starting a
//! desktop from one, following it until it is ready, opening it through Guacamole (the demo),
//! stopping it; and the administrators' environments and every live desktop.

use std::sync::Arc;
use std::time::Duration;

use fantoccini::Locator;
use portico_local::Running;
use portico_local::demo_cluster::DemoCluster;
use portico_tests::browser::Browser;
use reqwest::Method;
use serde_json::{Value, json};

use super::{ADMIN_PASSWORD, ConsoleEnv, USER_PASSWORD, main_text, sign_in, wait_for_text};

/// The console with a demo cluster (Pods ready after 2 s), a demo Guacamole and a demo user
/// office listing lena's two experiments; lena may start environment `xfce`.
async fn desktops_env() -> (ConsoleEnv, Arc<DemoCluster>, Vec<Running>) {
    let mut demos = portico_core::Config::default();
    let (cluster, cluster_running) = portico_local::demo_cluster::serve(&mut demos).await.unwrap();
    // Long enough that the desktop's first page surely finds it starting.
    *cluster.ready_after.lock().unwrap() = Duration::from_secs(2);
    demos.local_secrets = portico_tests::test_config().local_secrets;
    let (_, guacamole_running) = portico_local::demo_guacamole::serve(&mut demos).await.unwrap();
    let (office, office_running) = portico_local::demo_user_office::serve(&mut demos).await.unwrap();
    office
        .experiments
        .lock()
        .unwrap()
        .insert("lena".into(), portico_local::demo_user_office::sample_experiments(41_000));
    office.authorized.lock().unwrap().insert("lena".into(), true);
    office.authorized.lock().unwrap().insert("root".into(), true);
    let env = ConsoleEnv::start_tuned(|c| {
        c.desktops_cluster_url = demos.desktops_cluster_url.clone();
        c.guacamole_url = demos.guacamole_url.clone();
        c.experiments_url = demos.experiments_url.clone();
        c.facility_authorize_url = demos.facility_authorize_url.clone();
        c.local_secrets.extend(demos.local_secrets.clone());
    })
    .await;
    let environment = json!({"title": "Analysis desktop", "kind": "kubernetes", "image": "facility/xfce:1.4",
                             "protocol": "vnc", "port": 5901, "cpu": 1000, "memory": 2048, "max_lifetime": 7200,
                             "group": "beamline"});
    env.admin(Method::PUT, "/environments/xfce", environment).await;
    env.admin(Method::POST, "/admin/roles", json!({"name": "beamline-users"})).await;
    let grant = json!({"group": "beamline", "action": "desktop.start"});
    env.admin(Method::POST, "/admin/roles/beamline-users/permissions", grant).await;
    env.admin(Method::PUT, "/admin/users/lena/roles/beamline-users", Value::Null).await;
    (env, cluster, vec![cluster_running, guacamole_running, office_running])
}

async fn click(browser: &Browser, css: &str) {
    browser.client.find(Locator::Css(css)).await.unwrap_or_else(|_| panic!("no {css}")).click().await.unwrap();
}

#[tokio::test]
async fn a_user_starts_a_desktop_from_an_experiment_opens_it_and_stops_it() {
    let (env, cluster, _running) = desktops_env().await;
    let browser = Browser::start().await;
    sign_in(&env, &browser, "lena", USER_PASSWORD).await;
    let c = &browser.client;

    // My experiments; one marked as a favourite comes first.
    c.goto(&env.url("/console/experiments")).await.unwrap();
    wait_for_text(&browser, "Crystal structure of a lysozyme mutant").await;
    click(&browser, "button[aria-label='Mark experiment 2026-0117 as a favourite']").await;
    wait_for_text(&browser, "Unmark favourite").await;
    let first_row = c.find(Locator::Css("tbody tr")).await.unwrap().text().await.unwrap();
    assert!(first_row.contains("★") && first_row.contains("2026-0117"), "{first_row}");
    browser.screenshot("console-desktops-experiments").await;

    // Start a desktop with the other experiment (its link preselects it).
    click(&browser, "a[aria-label='Start a desktop with experiment 2026-0042']").await;
    wait_for_text(&browser, "Start a desktop").await;
    let chosen: Value = c.execute("return document.getElementById('f-experiment').value", vec![]).await.unwrap();
    assert_eq!(chosen, "2026-0042");
    click(&browser, "form[action='/console/desktops'] button[type=submit]").await;
    wait_for_text(&browser, "Progress").await;
    let text = main_text(&browser).await;
    assert!(text.contains("2026-0042") && text.contains("starting"), "{text}");
    let pod = cluster.created.lock().unwrap()[0].clone();
    assert_eq!(pod["spec"]["securityContext"]["runAsUser"], 41_000, "the experiment's uid");

    // Refreshed until ready, then opened: a one-time link into Guacamole.
    for _ in 0..50 {
        if main_text(&browser).await.contains("ready") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        c.refresh().await.unwrap();
    }
    click(&browser, "button[aria-label^='Open the xfce desktop']").await;
    wait_for_text(&browser, "Open the desktop").await;
    let href = c.find(Locator::Css("main a.button")).await.unwrap().attr("href").await.unwrap().unwrap();
    assert!(href.contains("/demo-guacamole/#/client/") && href.contains("?token="), "{href}");
    browser.screenshot("console-desktops-open").await;

    // Root may watch it, then no longer.
    c.back().await.unwrap();
    c.find(Locator::Id("f-username")).await.unwrap().send_keys("root").await.unwrap();
    click(&browser, "form[action$='/viewers'] button[type=submit]").await;
    wait_for_text(&browser, "Remove").await;
    let viewers =
        c.find(Locator::Css("section[aria-labelledby=viewers-title] ul")).await.unwrap().text().await.unwrap();
    assert!(viewers.contains("root"), "{viewers}");
    click(&browser, "button[aria-label='Stop letting root watch']").await;
    wait_for_text(&browser, "Nobody else.").await;

    // Stopped from my desktops.
    c.goto(&env.url("/console/desktops")).await.unwrap();
    c.execute("window.confirm = () => true", vec![]).await.unwrap();
    click(&browser, "button[aria-label^='Stop the xfce desktop']").await;
    wait_for_text(&browser, "The desktop has been stopped").await;
    assert!(main_text(&browser).await.contains("ended"));
    assert!(cluster.names("Pod").is_empty());
    c.clone().close().await.unwrap();
}

#[tokio::test]
async fn administrators_keep_the_environments_and_stop_anyones_desktop() {
    let (env, cluster, _running) = desktops_env().await;
    let lena = env.api.token("lena");
    let r = env.api.req(Method::POST, "/desktops", Some(&lena)).json(&json!({"environment": "xfce"})).send().await;
    assert_eq!(r.unwrap().status(), 201);

    let browser = Browser::start().await;
    sign_in(&env, &browser, "root", ADMIN_PASSWORD).await;
    let c = &browser.client;
    c.goto(&env.url("/console/admin/environments")).await.unwrap();
    wait_for_text(&browser, "Analysis desktop").await;
    // A link environment, through the form.
    c.find(Locator::Css("#f-kind option[value=link]")).await.unwrap().click().await.unwrap();
    for (id, value) in [
        ("f-name", "jupyter"),
        ("f-title", "JupyterHub"),
        ("f-link", "https://jupyter.example.org/"),
        ("f-max_lifetime", "3600"),
    ] {
        c.find(Locator::Id(id)).await.unwrap().send_keys(value).await.unwrap();
    }
    click(&browser, "form[action='/console/admin/environments'] button[type=submit]").await;
    wait_for_text(&browser, "Saved.").await;
    assert!(main_text(&browser).await.contains("https://jupyter.example.org/"));
    let saved = env.admin(Method::GET, "/environments/jupyter", Value::Null).await;
    assert_eq!((saved["kind"].as_str(), saved["image"].as_str()), (Some("link"), None), "{saved}");

    // Every live desktop; lena's stopped.
    c.goto(&env.url("/console/admin/desktops")).await.unwrap();
    wait_for_text(&browser, "lena").await;
    browser.screenshot("console-admin-desktops").await;
    c.execute("window.confirm = () => true", vec![]).await.unwrap();
    click(&browser, "button[aria-label^=\"Stop lena's desktop\"]").await;
    wait_for_text(&browser, "Desktop stopped.").await;
    assert!(main_text(&browser).await.contains("No desktop is running."));
    assert!(cluster.names("Pod").is_empty());
    c.clone().close().await.unwrap();
}
