//! Opening a desktop: a Guacamole login for exactly its one connection (Guacamole's
//! encrypted-JSON authentication), valid for a minute and once, exchanged server-side for an
//! `authToken` and answered as the URL that opens the connection. The desktop's password goes
//! from the cluster's Secret into the sealed login and nowhere else.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use portico_core::Error;
use portico_core::outbound::Outbound;
use portico_core::store::now_epoch;
use serde::{Deserialize, Serialize};

use crate::desktops::{DesktopState, Desktops};
use crate::environments::DesktopProtocol;
use crate::guacamole::{Connection, Login, SecretKey, client_fragment};
use crate::manifests::{PASSWORD_KEY, pod_name, secret_name};

/// How long a login may wait before Guacamole accepts it (the contract: at most 60 s).
pub const LOGIN_SECONDS: u64 = 60;

/// Where Guacamole is, and the key it shares with Portico.
pub struct Guacamole<'a> {
    /// Its base URL, as users reach it (`https://desktops.facility.example/guacamole`).
    pub url: &'a str,
    pub key: SecretKey,
    pub http: &'a Outbound,
}

/// What opens a desktop.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DesktopConnection {
    /// Opens the desktop in Guacamole's web application.
    pub url: String,
    /// Seconds the URL may wait before it is used; it opens the desktop once.
    pub expires_in: u64,
}

impl Desktops<'_> {
    /// A connection to `owner`'s desktop `id`, which must be ready (else 409). Storage calls: the
    /// read that refreshes it; cluster calls: the Pod, its Secret.
    pub async fn connection(
        &self,
        owner: &str,
        id: &str,
        guacamole: &Guacamole<'_>,
    ) -> Result<DesktopConnection, Error> {
        let (desktop, _) = self.refresh(owner, id, false).await?;
        if desktop.state != DesktopState::Ready {
            return Err(Error::Conflict(format!("desktop '{id}' is not ready")));
        }
        let secret = self.cluster()?.secret(&secret_name(id)).await?.ok_or_else(|| {
            Error::Unavailable(format!("desktop '{id}' has no password on the cluster yet; try again"))
        })?;
        let password = secret["data"][PASSWORD_KEY]
            .as_str()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| Error::Internal(format!("desktop '{id}': its Secret holds no password")))?;
        let name = pod_name(id);
        let mut parameters = BTreeMap::from([
            ("hostname".to_owned(), format!("{name}.{}.svc", self.config.desktops_namespace)),
            ("port".to_owned(), desktop.port.to_string()),
            ("password".to_owned(), password),
        ]);
        if desktop.protocol == DesktopProtocol::Rdp {
            parameters.insert("ignore-cert".into(), "true".into());
            parameters.insert("security".into(), "any".into());
        }
        let protocol = protocol_name(desktop.protocol);
        let login = Login {
            username: owner.to_owned(),
            expires: (now_epoch() as u64 + LOGIN_SECONDS) * 1000,
            single_use: true,
            connections: BTreeMap::from([(
                name.clone(),
                Connection { protocol: protocol.into(), parameters, id: Some(name.clone()), join: None },
            )]),
        };
        opened(guacamole, &login, &name).await
    }
}

impl Desktops<'_> {
    /// A read-only view of `owner`'s desktop `id` for `viewer`, whom the owner lets watch it
    /// (else 404): a Guacamole login that joins the owner's connection (`join`, `read-only`),
    /// without the desktop's password. It shows the desktop while the owner has it open.
    /// Storage calls: the read that refreshes it; cluster calls: the Pod.
    pub async fn view_connection(
        &self,
        viewer: &str,
        owner: &str,
        id: &str,
        guacamole: &Guacamole<'_>,
    ) -> Result<DesktopConnection, Error> {
        let (desktop, _) = match self.refresh(owner, id, false).await {
            Ok(found) if found.0.viewers.iter().any(|v| v == viewer) => found,
            // Not shared with the caller: as if it did not exist.
            Ok(_) | Err(Error::NotFound(_)) => {
                return Err(Error::NotFound(format!(
                    "desktop '{}' does not exist",
                    portico_core::input::shown_key(id)
                )));
            }
            Err(e) => return Err(e),
        };
        if desktop.state != DesktopState::Ready {
            return Err(Error::Conflict(format!("desktop '{id}' is not ready")));
        }
        let joined = pod_name(id);
        let name = format!("{joined}-view");
        let login = Login {
            username: viewer.to_owned(),
            expires: (now_epoch() as u64 + LOGIN_SECONDS) * 1000,
            single_use: true,
            connections: BTreeMap::from([(
                name.clone(),
                Connection {
                    protocol: protocol_name(desktop.protocol).into(),
                    parameters: BTreeMap::from([("read-only".to_owned(), "true".to_owned())]),
                    id: None,
                    join: Some(joined),
                },
            )]),
        };
        opened(guacamole, &login, &name).await
    }
}

fn protocol_name(protocol: DesktopProtocol) -> &'static str {
    match protocol {
        DesktopProtocol::Vnc => "vnc",
        DesktopProtocol::Rdp => "rdp",
    }
}

/// The login sealed and exchanged: the URL that opens connection `name`.
async fn opened(guacamole: &Guacamole<'_>, login: &Login, name: &str) -> Result<DesktopConnection, Error> {
    let blob = login.seal(&guacamole.key).map_err(|e| Error::Internal(e.to_string()))?;
    let base = guacamole.url.trim_end_matches('/');
    let fragment = client_fragment(name);
    let url = match exchange(guacamole, base, &blob).await? {
        Some(token) => format!("{base}/{fragment}?token={}", encoded(&token)),
        // Guacamole not reachable from here: the browser hands it the login itself.
        None => format!("{base}/?data={}{fragment}", encoded(&blob)),
    };
    Ok(DesktopConnection { url, expires_in: LOGIN_SECONDS })
}

fn encoded(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// `POST {guacamole}/api/tokens` with `data=<blob>`: its `authToken`; `None` when Guacamole
/// cannot be reached; 502 when it refuses the login (its key is not Portico's).
async fn exchange(guacamole: &Guacamole<'_>, base: &str, blob: &str) -> Result<Option<String>, Error> {
    let client = guacamole.http.client()?;
    let form = format!("data={}", encoded(blob));
    let sent = client
        .post(format!("{base}/api/tokens"))
        .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form)
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    let Ok(response) = sent else { return Ok(None) };
    let status = response.status();
    if status.is_server_error() {
        return Ok(None);
    }
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    match body["authToken"].as_str() {
        Some(token) if status.is_success() => Ok(Some(token.to_owned())),
        _ => Err(Error::Upstream {
            status: http::StatusCode::BAD_GATEWAY,
            message: format!(
                "Guacamole refused the login (HTTP {}): is its json-secret-key Portico's?",
                status.as_u16()
            ),
        }),
    }
}
