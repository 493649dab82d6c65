//! `/docs` renders in a real browser from the emulator, offline: the reference lists the routes.

use std::sync::Arc;
use std::time::Duration;

use fantoccini::Locator;
use portico_core::store::memory::MemoryTable;
use portico_tests::browser::Browser;
use portico_tests::{TestApi, test_config};

#[tokio::test]
async fn the_docs_page_renders_every_route_group_in_headless_chromium() {
    let api = TestApi::start(Arc::new(MemoryTable::new()), test_config()).await;
    let browser = Browser::start().await;
    browser.client.goto(&api.url("/docs")).await.unwrap();
    // Redoc renders the operations once the script (served by Portico itself) has run: it
    // lays out ~300 operations, which takes a loaded 2-core machine well over 30 s.
    browser
        .client
        .wait()
        .at_most(Duration::from_secs(120))
        .for_element(Locator::XPath("//*[contains(text(), '/apps/{slug}')]"))
        .await
        .expect("the apps routes are listed");
    let text = browser.client.find(Locator::Css("body")).await.unwrap().text().await.unwrap();
    for route in
        ["/jobs/{id}", "/sessions", "/admin/users", "/auth/token", "/show.ShowInterface/FindShow", "/ogdc/submit"]
    {
        assert!(text.contains(route), "{route} is not on the page");
    }
    let shot = browser.screenshot("docs").await;
    assert!(std::fs::metadata(shot).unwrap().len() > 10_000, "a real screenshot");
    browser.client.clone().close().await.unwrap();
}
