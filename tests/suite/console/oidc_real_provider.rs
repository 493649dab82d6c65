//! Signing in at a real OpenID Provider: panva's `oidc-provider` (OpenID-certified, npm, on
//! Node 22; `fixtures/oidc-provider/provider.mjs`) on 127.0.0.1, driven in Chromium through
//! its own login and consent pages. It checks RFC 7636 as written (a verifier of 43 to 128
//! characters), which the console's first verifier (32 characters) failed. The ID token it
//! signs is then a bearer for the API, as any OIDC token is.

use fantoccini::Locator;
use portico_tests::browser::Browser;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::process::{Child, Command};

use super::ConsoleEnv;

const CLIENT_ID: &str = "portico-console";

/// The provider, stopped when dropped.
struct RealProvider {
    issuer: String,
    _process: Child,
}

impl RealProvider {
    /// Starts the provider for a console whose callback is `redirect_uri`, on `port`.
    async fn start(port: u16, redirect_uri: &str) -> RealProvider {
        let (node, modules) = portico_tests::oidc_provider();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/oidc-provider/provider.mjs");
        let mut command = Command::new(node);
        command
            .arg(script)
            .env("OIDC_MODULES", modules)
            .env("OIDC_PORT", port.to_string())
            .env("OIDC_CLIENT_ID", CLIENT_ID)
            .env("OIDC_REDIRECT_URI", redirect_uri)
            .env("OIDC_GROUPS", "staff,admin");
        let (process, issuer, _) = portico_tests::spawn_until(command, "oidc-provider listening on ").await;
        RealProvider { issuer, _process: process }
    }
}

/// A port nothing listens on now, for a provider whose issuer must be known before it starts.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn a_user_signs_in_at_a_real_openid_provider_and_its_id_token_is_a_bearer() {
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let env = ConsoleEnv::start_tuned(|config| {
        config.oidc_jwks_uri = Some(format!("{issuer}/jwks"));
        config.oidc_issuer = Some(issuer.clone());
        config.oidc_audience = Some(CLIENT_ID.into());
        config.oidc_algorithms = vec!["ES256".into()];
        config.console_oidc_client_id = Some(CLIENT_ID.into());
    })
    .await;
    let provider = RealProvider::start(port, &env.url("/console/oidc/callback")).await;
    assert_eq!(provider.issuer, issuer);

    let browser = Browser::start().await;
    let c = &browser.client;
    c.goto(&env.url("/console/apps?status=ACTIVE")).await.unwrap();
    c.wait().for_element(Locator::LinkText("Sign in with your organization")).await.unwrap().click().await.unwrap();
    // The provider's own login page, then its consent page.
    let login = c.wait().for_element(Locator::Css("input[name=login]")).await.expect("the provider's login page");
    login.send_keys("olivia").await.unwrap();
    c.find(Locator::Css("input[name=password]")).await.unwrap().send_keys("any-password").await.unwrap();
    browser.screenshot("console-oidc-real-provider-login").await;
    c.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("input[name=prompt][value=consent]")).await.expect("the consent page");
    c.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    let who = c.wait().for_element(Locator::Css("form.signout .who")).await;
    let who = match who {
        Ok(who) => who,
        Err(e) => {
            browser.screenshot("console-oidc-real-provider-failed").await;
            let page = c.source().await.unwrap_or_default();
            panic!("not signed in ({e}): {}", page.chars().take(2000).collect::<String>());
        }
    };
    assert_eq!(who.text().await.unwrap(), "olivia");
    let back = c.current_url().await.unwrap();
    assert_eq!((back.path(), back.query()), ("/console/apps", Some("status=ACTIVE")), "back where the user was going");
    browser.screenshot("console-oidc-real-provider-signed-in").await;

    // The session cookie holds the provider's ID token: a bearer for the API as well.
    let id_token = c.get_named_cookie("portico_console").await.expect("the session cookie").value().to_owned();
    let me = env.api.req(Method::GET, "/auth/me", Some(&id_token)).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!((&me["username"], &me["source"]), (&"olivia".into(), &"oidc".into()), "{me}");
    assert_eq!(me["groups"], serde_json::json!(["staff", "admin"]), "{me}");
    assert_eq!(me["admin"], true, "the provider's admin group makes an administrator: {me}");
    // Its signature is the provider's: a changed payload is refused.
    let mut parts: Vec<String> = id_token.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].chars().rev().collect();
    let forged = parts.join(".");
    let refused = env.api.req(Method::GET, "/auth/me", Some(&forged)).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    c.clone().close().await.unwrap();
}
