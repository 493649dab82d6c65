//! A real desktop: a real VNC server (TigerVNC's `Xtigervnc`) plays the desktop's Pod, started
//! with the password Portico put in the Pod's Secret; the desktop is opened through Portico (the
//! demo Guacamole reads the login Portico sealed); and a real viewer (noVNC in Chromium, through
//! websockify) connects to the Service address the login names with the password the login
//! carries. The VNC server's own authentication is the check: only the password Portico issued
//! opens it. The screenshot is `target/test-output/desktop-vnc.png`.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use portico_core::store::memory::MemoryTable;
use portico_tests::browser::Browser;
use portico_tests::{TestApi, test_config};
use reqwest::Method;
use serde_json::{Value, json};

use crate::desktops::{environment, send, setup, until};

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn wait_for_port(port: u16, what: &str) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} never listened on 127.0.0.1:{port}");
}

/// The "Pod": Xtigervnc on a free display, the VNC port on 127.0.0.1 only, VNC authentication
/// with `password`, its root window painted #1e8c5a.
async fn vnc_desktop(password: &str) -> (Process, u16) {
    let dir = std::env::temp_dir().join(portico_tests::unique("portico-vnc"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("passwd");
    let mut encode = Command::new("vncpasswd")
        .arg("-f")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("vncpasswd (Debian's tigervnc-tools; ./scripts/test installs it)");
    use std::io::Write as _;
    encode.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    let encoded = encode.wait_with_output().unwrap();
    assert!(encoded.status.success());
    std::fs::write(&file, encoded.stdout).unwrap();
    let port = free_port();
    let display = format!(":{}", 40 + port % 200);
    let server = Command::new("Xtigervnc")
        .args([&display, "-rfbport", &port.to_string(), "-localhost", "-nolisten", "tcp"])
        .args(["-SecurityTypes", "VncAuth", "-PasswordFile", file.to_str().unwrap(), "-geometry", "640x400"])
        .args(["-depth", "24", "-AlwaysShared"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xtigervnc (Debian's tigervnc-standalone-server; ./scripts/test installs it)");
    let server = Process(server);
    wait_for_port(port, "Xtigervnc").await;
    let painted = Command::new("xsetroot").args(["-display", &display, "-solid", "#1e8c5a"]).status();
    assert!(painted.expect("xsetroot (x11-xserver-utils)").success());
    (server, port)
}

/// noVNC's page, served by websockify, which carries the viewer's WebSocket to `target`.
fn viewer(target: u16) -> (Process, u16) {
    let port = free_port();
    let proxy = Command::new("websockify")
        .args(["--web", "/usr/share/novnc", &format!("127.0.0.1:{port}"), &format!("127.0.0.1:{target}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("websockify (Debian's websockify and novnc; ./scripts/test installs them)");
    (Process(proxy), port)
}

/// The viewer at `port`, signing in with `password`: the colour of the desktop's pixel at
/// (20, 20) once noVNC draws it, or noVNC's status line if it never does.
async fn view(browser: &Browser, port: u16, password: &str) -> Result<[u64; 3], String> {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("autoconnect", "true")
        .append_pair("resize", "off")
        .append_pair("password", password)
        .finish();
    let c = &browser.client;
    c.goto(&format!("http://127.0.0.1:{port}/vnc.html?{query}")).await.unwrap();
    const PIXEL: &str = "const canvas = document.querySelector('#noVNC_container canvas'); \
        const status = (document.getElementById('noVNC_status') || {}).textContent || ''; \
        if (!canvas || canvas.width < 100) return {status}; \
        const [r, g, b] = canvas.getContext('2d').getImageData(20, 20, 1, 1).data; \
        return {status, rgb: [r, g, b]};";
    let mut last = Value::Null;
    for _ in 0..100 {
        last = c.execute(PIXEL, vec![]).await.unwrap();
        if let Some(rgb) = last["rgb"].as_array().filter(|rgb| rgb.iter().any(|v| v != 0)) {
            return Ok([rgb[0].as_u64().unwrap(), rgb[1].as_u64().unwrap(), rgb[2].as_u64().unwrap()]);
        }
        if last["status"].as_str().is_some_and(|s| s.contains("rejected") || s.contains("failed")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last["status"].as_str().unwrap_or("no status").to_owned())
}

#[tokio::test]
async fn a_real_vnc_desktop_opens_with_the_password_portico_issued_and_no_other() {
    let mut config = test_config();
    let (cluster, _cluster_running) = portico_local::demo_cluster::serve(&mut config).await.unwrap();
    *cluster.ready_after.lock().unwrap() = Duration::from_millis(100);
    let (guacamole, _guacamole_running) = portico_local::demo_guacamole::serve(&mut config).await.unwrap();
    let api = TestApi::start(Arc::new(MemoryTable::new()), config).await;
    let (admin, carol, _) = setup(&api).await;
    assert_eq!(
        send(&api, Method::PUT, "/environments/xfce", Some(&admin), Some(environment("beamline-1"))).await.0,
        201
    );

    let (status, started) =
        send(&api, Method::POST, "/desktops", Some(&carol), Some(json!({"environment": "xfce"}))).await;
    assert_eq!(status, 201, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    // The Pod's password, as the container reads it from its Secret.
    let secret = cluster.created.lock().unwrap().iter().find(|o| o["kind"] == "Secret").unwrap().clone();
    let pod_password = secret["stringData"]["password"].as_str().unwrap().to_owned();
    let (_desktop, vnc_port) = vnc_desktop(&pod_password).await;
    until(&api, &carol, &id, "ready").await;

    // Opened through Portico: Guacamole reads the login Portico sealed for this one desktop.
    let (status, opened) = send(&api, Method::POST, &format!("/desktops/{id}/connection"), Some(&carol), None).await;
    assert_eq!(status, 200, "{opened}");
    let login = guacamole.accepted.lock().unwrap().last().unwrap().login.clone();
    let connection = login.connections.values().next().unwrap().clone();
    assert_eq!(connection.protocol, "vnc");
    let service = format!("desktop-{id}.portico-desktops.svc");
    let target = (connection.parameters["hostname"].as_str(), connection.parameters["port"].as_str());
    assert_eq!(target, (service.as_str(), "5901"));
    // The cluster's DNS, here: the Service's address is the local VNC server's.
    let (_proxy, viewer_port) = viewer(vnc_port);
    wait_for_port(viewer_port, "websockify").await;

    let browser = Browser::start().await;
    let issued = connection.parameters["password"].clone();
    let shown = view(&browser, viewer_port, &issued).await;
    browser.screenshot("desktop-vnc").await;
    assert_eq!(shown, Ok([0x1e, 0x8c, 0x5a]), "the desktop, drawn with the password Portico issued");

    // Any other password is refused by the VNC server itself.
    let refused = view(&browser, viewer_port, "not-the-password").await;
    assert!(refused.as_ref().is_err_and(|status| status.contains("Authentication fail")), "{refused:?}");
    browser.client.clone().close().await.unwrap();
}
