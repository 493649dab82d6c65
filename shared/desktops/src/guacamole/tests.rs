//! The published known-answer vector, an independent decryption (OpenSSL), and refusals.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::*;

/// The key of the extension's published example.
const EXAMPLE_KEY: &str = "4C0B569E4C96DF157EEE1B65DD0E4D41";

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/guacamole-auth-json").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn key() -> SecretKey {
    SecretKey::from_hex(EXAMPLE_KEY).expect("the example's key")
}

fn login(password: &str) -> Login {
    let parameters = BTreeMap::from([
        ("hostname".to_owned(), "10.0.3.7".to_owned()),
        ("port".to_owned(), "5901".to_owned()),
        ("password".to_owned(), password.to_owned()),
    ]);
    Login {
        username: "alice".into(),
        expires: 1_700_000_060_000,
        single_use: true,
        connections: BTreeMap::from([(
            "desktop-1".to_owned(),
            Connection { protocol: "vnc".into(), parameters, id: Some("desktop-1".into()), join: None },
        )]),
    }
}

#[test]
fn the_published_example_seals_to_the_published_blob_byte_for_byte() {
    let json = fixture("example.json");
    assert_eq!(json.len(), 706, "the plaintext exactly as published");
    let published: String =
        String::from_utf8(fixture("example.b64")).unwrap().chars().filter(|c| !c.is_whitespace()).collect();
    assert_eq!(seal(&key(), &json).unwrap(), published);
    assert_eq!(open(&key(), &published).unwrap(), json, "and opens back to it");
}

#[test]
fn a_login_round_trips_in_the_shape_guacamole_reads() {
    let sealed = login("s3cret-vnc").seal(&key()).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&open(&key(), &sealed).unwrap()).unwrap();
    assert_eq!(json["username"], "alice");
    assert_eq!(json["expires"], 1_700_000_060_000_u64, "epoch milliseconds, a number");
    assert_eq!(json["singleUse"], true);
    let connection = &json["connections"]["desktop-1"];
    assert_eq!(connection["protocol"], "vnc");
    assert_eq!(connection["parameters"]["port"], "5901", "parameters are strings");
    assert_eq!(connection["id"], "desktop-1");
    assert!(connection.get("join").is_none(), "absent, not null");
    assert_eq!(Login::open(&key(), &sealed).unwrap(), login("s3cret-vnc"));
}

#[test]
fn openssl_decrypts_a_portico_blob_and_its_signature_checks() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let json = serde_json::to_vec(&login("s3cret-vnc")).unwrap();
    let sealed = seal(&key(), &json).unwrap();
    // AES-128-CBC, the key as it is, an all-zero IV, PKCS#7: `openssl enc` as the extension's
    // README shows it.
    let mut child = Command::new("openssl")
        .args(["enc", "-d", "-aes-128-cbc", "-K", EXAMPLE_KEY, "-iv", "00000000000000000000000000000000", "-a", "-A"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl (scripts/test installs it)");
    child.stdin.take().unwrap().write_all(sealed.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    let (signature, plain) = out.stdout.split_at(32);
    assert_eq!(plain, json.as_slice(), "the JSON follows the signature");
    let expected = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key().0), plain);
    assert_eq!(signature, expected.as_ref(), "HMAC-SHA256 of the JSON under the same key");
}

#[test]
fn a_blob_altered_or_sealed_under_another_key_is_invalid() {
    let sealed = login("s3cret-vnc").seal(&key()).unwrap();
    let other = SecretKey::from_hex("00112233445566778899aabbccddeeff").unwrap();
    assert_eq!(open(&other, &sealed), Err(GuacamoleError::Invalid));
    // Every byte flipped in turn: refused (a bad pad, or a signature that no longer matches).
    let bytes = STANDARD.decode(&sealed).unwrap();
    for at in [0, 15, 16, 40, bytes.len() - 17, bytes.len() - 1] {
        let mut altered = bytes.clone();
        altered[at] ^= 0x01;
        assert!(open(&key(), &STANDARD.encode(&altered)).is_err(), "a flip at {at} is refused");
    }
    assert_eq!(open(&key(), "not base64!"), Err(GuacamoleError::Invalid));
    assert_eq!(open(&key(), ""), Err(GuacamoleError::Invalid));
    // A blob that decrypts but is shorter than a signature.
    assert_eq!(open(&key(), &seal(&key(), b"").unwrap()[..24]), Err(GuacamoleError::Invalid));
}

#[test]
fn keys_are_32_hex_digits_and_never_shown() {
    assert!(SecretKey::from_hex(" 4c0b569e4c96df157eee1b65dd0e4d41\n").is_ok(), "either case, trimmed");
    for bad in
        ["", "4C0B569E4C96DF157EEE1B65DD0E4D4", "4C0B569E4C96DF157EEE1B65DD0E4D411", "4C0B569E4C96DF157EEE1B65DD0E4DXY"]
    {
        assert_eq!(SecretKey::from_hex(bad).unwrap_err(), GuacamoleError::BadKey, "{bad:?}");
    }
    let error = SecretKey::from_hex("4C0B569E4C96DF157EEE1B65DD0E4DXY").unwrap_err().to_string();
    assert!(!error.contains("4C0B"), "the error never quotes the key: {error}");
    assert_eq!(format!("{:?}", key()), "SecretKey(..)");
}

#[test]
fn a_logins_debug_names_parameters_but_never_their_values() {
    let shown = format!("{:?}", login("s3cret-vnc"));
    assert!(shown.contains("password") && shown.contains("hostname"), "{shown}");
    assert!(!shown.contains("s3cret-vnc") && !shown.contains("10.0.3.7"), "{shown}");
}

#[test]
fn the_client_fragment_names_the_json_data_sources_connection() {
    // base64("desktop-1\0c\0json")
    assert_eq!(client_fragment("desktop-1"), "#/client/ZGVza3RvcC0xAGMAanNvbg==");
}
