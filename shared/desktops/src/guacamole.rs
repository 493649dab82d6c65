//! Apache Guacamole's encrypted-JSON authentication (the `guacamole-auth-json` extension): a
//! backend that shares Guacamole's `json-secret-key` hands a user a temporary Guacamole login
//! holding exactly the connections it chose; Guacamole keeps no rows for it.
//!
//! The format, as the extension reads it (`CryptoService`, `UserDataService`): the login as
//! JSON, prefixed with its HMAC-SHA256 under the key (32 bytes), encrypted with AES-128-CBC
//! under the same key with an all-zero IV and PKCS#7 padding, then base64. Deterministic: the
//! extension's published example encrypts to its published blob, byte for byte (the tests).
//!
//! The connection's password travels inside the blob and nowhere else: [`Login`]'s `Debug`
//! hides every parameter's value.

use std::collections::BTreeMap;
use std::fmt;

use aws_lc_rs::cipher::{
    AES_128, DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::{constant_time, hmac, iv::FixedLength};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// Length of the HMAC-SHA256 signature before the JSON.
const SIGNATURE_LEN: usize = 32;

/// Why a key or a blob was refused. Never quotes the key or the blob.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuacamoleError {
    #[error("the Guacamole key must be 128 bits written as 32 hexadecimal digits (json-secret-key)")]
    BadKey,
    #[error("the Guacamole login could not be sealed")]
    Seal,
    /// Not base64, not decryptable, or its signature does not match: what Guacamole answers
    /// as "invalid credentials".
    #[error("the Guacamole login is not one sealed with this key")]
    Invalid,
    #[error("the Guacamole login is not the JSON Guacamole reads: {0}")]
    Json(String),
}

/// Guacamole's `json-secret-key`: 128 bits, both the signing and the encryption key.
#[derive(Clone)]
pub struct SecretKey([u8; 16]);

impl SecretKey {
    /// The key as `guacamole.properties` writes it: 32 hexadecimal digits (either case;
    /// surrounding white space, as a secret's value may carry, is ignored).
    pub fn from_hex(text: &str) -> Result<SecretKey, GuacamoleError> {
        let text = text.trim().as_bytes();
        if text.len() != 32 {
            return Err(GuacamoleError::BadKey);
        }
        let mut key = [0u8; 16];
        for (byte, pair) in key.iter_mut().zip(text.chunks(2)) {
            let digit = |c: u8| (c as char).to_digit(16).ok_or(GuacamoleError::BadKey);
            *byte = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
        }
        Ok(SecretKey(key))
    }

    fn cipher_key(&self) -> Result<UnboundCipherKey, GuacamoleError> {
        UnboundCipherKey::new(&AES_128, &self.0).map_err(|_| GuacamoleError::BadKey)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// The extension's all-zero IV (the HMAC first in the plaintext is what varies).
fn zero_iv() -> FixedLength<16> {
    FixedLength::from([0u8; 16])
}

/// `json` signed and encrypted under `key`, as base64 (URL-encode it to put it in a URL).
pub fn seal(key: &SecretKey, json: &[u8]) -> Result<String, GuacamoleError> {
    let signature = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key.0), json);
    let mut data = Vec::with_capacity(SIGNATURE_LEN + json.len() + 16);
    data.extend_from_slice(signature.as_ref());
    data.extend_from_slice(json);
    let cipher = PaddedBlockEncryptingKey::cbc_pkcs7(key.cipher_key()?).map_err(|_| GuacamoleError::Seal)?;
    cipher.less_safe_encrypt(&mut data, EncryptionContext::Iv128(zero_iv())).map_err(|_| GuacamoleError::Seal)?;
    Ok(STANDARD.encode(data))
}

/// The JSON inside `blob`, if `key` sealed it: what Guacamole does before reading a login (the
/// demo Guacamole and the tests use it). White space in the base64 is ignored, as Java's MIME
/// decoder ignores the published example's line breaks.
pub fn open(key: &SecretKey, blob: &str) -> Result<Vec<u8>, GuacamoleError> {
    let compact: String = blob.chars().filter(|c| !c.is_whitespace()).collect();
    let mut data = STANDARD.decode(compact).map_err(|_| GuacamoleError::Invalid)?;
    let cipher = PaddedBlockDecryptingKey::cbc_pkcs7(key.cipher_key()?).map_err(|_| GuacamoleError::Invalid)?;
    let plain = cipher.decrypt(&mut data, DecryptionContext::Iv128(zero_iv())).map_err(|_| GuacamoleError::Invalid)?;
    if plain.len() < SIGNATURE_LEN {
        return Err(GuacamoleError::Invalid);
    }
    let (signature, json) = plain.split_at(SIGNATURE_LEN);
    let expected = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key.0), json);
    constant_time::verify_slices_are_equal(expected.as_ref(), signature).map_err(|_| GuacamoleError::Invalid)?;
    Ok(json.to_vec())
}

/// A temporary Guacamole login: who, until when, and the connections it may open.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Login {
    pub username: String,
    /// When the login stops being accepted, epoch milliseconds.
    pub expires: u64,
    /// Accepted once: a replayed blob is refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub single_use: bool,
    pub connections: BTreeMap<String, Connection>,
}

/// One connection of a [`Login`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// `vnc`, `rdp`, `ssh`, ...
    pub protocol: String,
    /// guacd's parameters for the protocol: `hostname`, `port`, `password`, `read-only`, ...
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// The connection's id, so that a share can join it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The id of an active connection this one joins (a share).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<String>,
}

impl Login {
    /// The login sealed under `key` (see [`seal`]).
    pub fn seal(&self, key: &SecretKey) -> Result<String, GuacamoleError> {
        let json = serde_json::to_vec(self).map_err(|e| GuacamoleError::Json(e.to_string()))?;
        seal(key, &json)
    }

    /// The login inside `blob`, if `key` sealed it and it is a login.
    pub fn open(key: &SecretKey, blob: &str) -> Result<Login, GuacamoleError> {
        let json = open(key, blob)?;
        serde_json::from_slice(&json).map_err(|e| GuacamoleError::Json(e.to_string()))
    }
}

/// The parameters' values are secrets (a VNC password): shown by name only.
impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .field("expires", &self.expires)
            .field("single_use", &self.single_use)
            .field("connections", &self.connections)
            .finish()
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("protocol", &self.protocol)
            .field("parameters", &self.parameters.keys().collect::<Vec<_>>())
            .field("id", &self.id)
            .field("join", &self.join)
            .finish()
    }
}

/// The fragment of Guacamole's web application that opens connection `name` of the JSON
/// data source: `#/client/<base64("<name>\0c\0json")>`.
pub fn client_fragment(name: &str) -> String {
    format!("#/client/{}", STANDARD.encode(format!("{name}\0c\0json")))
}

#[cfg(test)]
mod tests;
