//! A person's way through the console in headless Chromium.

use fantoccini::Locator;
use portico_tests::browser::Browser;
use reqwest::Method;

use super::{ConsoleEnv, USER_PASSWORD, main_text, sign_in, wait_for_text};

#[tokio::test]
async fn a_user_signs_in_browses_the_catalog_and_signs_out() {
    let env = ConsoleEnv::start().await;
    env.admin(Method::PUT, "/apps/usd-validate", portico_tests::app_body("usd-validate")).await;
    let mut other = portico_tests::app_body("usd-explorer");
    other["title"] = "USD Explorer".into();
    other["category"] = "Viewers".into();
    env.admin(Method::PUT, "/apps/usd-explorer", other).await;

    let browser = Browser::start().await;
    sign_in(&env, &browser, "lena", USER_PASSWORD).await;
    let c = &browser.client;
    assert_eq!(c.current_url().await.unwrap().path(), "/console/apps");
    let text = main_text(&browser).await;
    for expected in ["USD Validate", "USD Explorer", "2024.1.0", "Template Applications", "Omniverse", "ACTIVE"] {
        assert!(text.contains(expected), "{expected} not on the catalog:\n{text}");
    }
    browser.screenshot("console-catalog").await;
    // Filtering by category keeps only the matching card.
    c.find(Locator::Id("f-category")).await.unwrap().send_keys("Viewers").await.unwrap();
    c.find(Locator::Css("form.filters button")).await.unwrap().click().await.unwrap();
    super::wait_for_query(&browser, "category=Viewers").await;
    wait_for_text(&browser, "USD Explorer").await;
    let text = main_text(&browser).await;
    assert!(text.contains("USD Explorer") && !text.contains("USD Validate"), "{text}");

    // A plain user sees no admin link, and the admin pages refuse them.
    assert!(c.find(Locator::LinkText("Admin")).await.is_err(), "no admin link for a plain user");

    c.find(Locator::Css("form.signout button")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Id("f-username")).await.unwrap();
    c.goto(&env.url("/console/apps")).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/console/signin", "signed out for good");
    c.clone().close().await.unwrap();
}
