//! A headless Chromium (Debian's `chromium` + `chromium-driver`, installed by scripts/test)
//! driven over WebDriver, for pages Portico serves. The driver listens on 127.0.0.1 and stops
//! with the value.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

pub struct Browser {
    pub client: fantoccini::Client,
    _driver: tokio::process::Child,
    profile: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Where tests leave screenshots: `target/test-output/`.
pub fn output_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-output");
    std::fs::create_dir_all(&dir).expect("the test output directory");
    dir
}

impl Browser {
    pub async fn start() -> Browser {
        let driver_path = std::env::var("PORTICO_TEST_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = tokio::process::Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{driver_path}: {e}. Run the suite with scripts/test, which installs chromium-driver.")
            });
        let url = format!("http://127.0.0.1:{port}");
        let mut listening = false;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                listening = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(listening, "{driver_path} did not listen on 127.0.0.1:{port} within 5 s");
        let profile = std::env::temp_dir().join(crate::unique("portico-chromium"));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": std::env::var("PORTICO_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                         format!("--user-data-dir={}", profile.display())],
            }),
        );
        let client = fantoccini::ClientBuilder::rustls()
            .expect("rustls")
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("a WebDriver session");
        Browser { client, _driver: driver, profile }
    }

    /// Saves a screenshot as `target/test-output/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let path = output_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("writing the screenshot");
        path
    }
}
