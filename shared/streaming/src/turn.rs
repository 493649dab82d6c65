//! TURN credentials for each side of a session, as TURN servers' REST API takes them
//! (draft-uberti-behave-turn-rest; coturn's `use-auth-secret`): `username = <expiry>:<session>:
//! <side>`, `credential = base64(HMAC-SHA1(secret, username))`, where the secret is shared with
//! the TURN server (`turn_secret_id`) and the expiry is the session's end. A TURN server that
//! knows the secret accepts them until then, and nobody without the secret can make them: what
//! no peer of the seed ties to authorization, Portico ties to a session it started.

use aws_lc_rs::hmac;
use base64::Engine as _;
use serde_json::{Value, json};

/// The username and credential for `side` of `session`, valid until `expiry` (epoch seconds).
pub fn credentials(secret: &[u8], expiry: i64, session: &str, side: &str) -> (String, String) {
    let username = format!("{expiry}:{session}:{side}");
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let credential = base64::engine::general_purpose::STANDARD.encode(hmac::sign(&key, username.as_bytes()));
    (username, credential)
}

/// The `iceServers` a side's `welcome` carries: WebRTC's `RTCIceServer`s for `uris`.
pub fn ice_servers(uris: &[String], secret: &[u8], expiry: i64, session: &str, side: &str) -> Value {
    let (username, credential) = credentials(secret, expiry, session, side);
    json!([{"urls": uris, "username": username, "credential": credential}])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_is_the_hmac_sha1_of_the_username() {
        // `printf '1796605200:s1:client' | openssl dgst -sha1 -hmac s3cr3t -binary | base64`
        let (username, credential) = credentials(b"s3cr3t", 1_796_605_200, "s1", "client");
        assert_eq!(username, "1796605200:s1:client");
        assert_eq!(credential, "ZB5oONlEPg0egfu5iMHQao37f28=");
        let servers = ice_servers(&["turn:turn.example.org:3478".into()], b"s3cr3t", 1_796_605_200, "s1", "host");
        assert_eq!(servers[0]["username"], "1796605200:s1:host");
        assert_eq!(servers[0]["urls"], json!(["turn:turn.example.org:3478"]));
    }
}
