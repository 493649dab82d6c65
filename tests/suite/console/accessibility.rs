//! Usable by everyone: every control has a label, the page has one `main` and one `h1`, and
//! nothing needs sideways scrolling at phone width.

use fantoccini::Locator;
use portico_tests::browser::Browser;
use reqwest::Method;
use serde_json::{Value, json};

use super::{ADMIN_PASSWORD, ConsoleEnv, sign_in};

/// What the page says of itself: unlabelled controls, landmarks, and overflow.
const AUDIT: &str = r#"
const controls = [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')];
const unlabelled = controls
  .filter((c) => c.tagName === 'BUTTON' ? !c.textContent.trim() && !c.getAttribute('aria-label')
                                        : c.labels.length === 0 && !c.getAttribute('aria-label'))
  .map((c) => c.outerHTML.slice(0, 120));
const unreachable = controls.filter((c) => c.tabIndex < 0).map((c) => c.outerHTML.slice(0, 120));
return { unlabelled, unreachable, mains: document.querySelectorAll('main').length,
         h1s: document.querySelectorAll('h1').length, lang: document.documentElement.lang,
         overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth };
"#;

#[tokio::test]
async fn every_page_labels_its_controls_and_fits_a_phone() {
    let env = ConsoleEnv::start().await;
    env.admin(Method::PUT, "/apps/usd-validate", portico_tests::app_body("usd-validate")).await;
    env.admin(Method::POST, "/admin/roles", json!({"name": "analyst"})).await;
    let environment = json!({"title": "Analysis desktop", "kind": "kubernetes", "image": "facility/xfce:1",
                             "protocol": "vnc", "port": 5901, "cpu": 1000, "memory": 1024, "max_lifetime": 3600});
    env.admin(Method::PUT, "/environments/xfce", environment).await;
    let browser = Browser::start().await;
    sign_in(&env, &browser, "root", ADMIN_PASSWORD).await;
    let c = &browser.client;
    // An iPhone's CSS width.
    c.set_window_size(390, 844).await.unwrap();
    let pages = [
        "/console/apps",
        "/console/apps/usd-validate",
        "/console/sessions",
        "/console/jobs",
        "/console/desktops",
        "/console/experiments",
        "/console/profile",
        "/console/admin",
        "/console/admin/apps",
        "/console/admin/apps/new",
        "/console/admin/apps/usd-validate",
        "/console/admin/users",
        "/console/admin/users/lena",
        "/console/admin/roles",
        "/console/admin/roles/analyst",
        "/console/admin/sessions",
        "/console/admin/jobs",
        "/console/admin/environments",
        "/console/admin/desktops",
    ];
    for path in pages {
        c.goto(&env.url(path)).await.unwrap();
        c.find(Locator::Css("main h1")).await.unwrap_or_else(|_| panic!("{path}: no heading"));
        let audit: Value = c.execute(AUDIT, vec![]).await.unwrap();
        assert_eq!(audit["unlabelled"], json!([]), "{path}: controls without a label");
        assert_eq!(audit["unreachable"], json!([]), "{path}: controls out of the tab order");
        assert_eq!((audit["mains"].as_u64(), audit["h1s"].as_u64()), (Some(1), Some(1)), "{path}: landmarks");
        assert_eq!(audit["lang"], "en", "{path}");
        assert!(audit["overflow"].as_i64().unwrap() <= 0, "{path}: {} px of sideways scrolling", audit["overflow"]);
    }
    browser.screenshot("console-phone-width").await;
    // The first stop of the keyboard is the link that skips to the content.
    c.goto(&env.url("/console/apps")).await.unwrap();
    let first: Value = c
        .execute(
            "const f = document.querySelector('a[href], button, input:not([type=hidden]), select, textarea'); \
             return [f.className, f.getAttribute('href'), !!document.getElementById('main')]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(first, json!(["skip", "#main", true]));
    c.clone().close().await.unwrap();
}
