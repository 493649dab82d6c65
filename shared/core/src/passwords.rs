//! Local passwords: argon2id (the crate's defaults: 19 MiB, 2 passes), PHC strings.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};

use crate::Error;

/// Shortest and longest password accepted when one is set.
pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 256;

pub fn validate(password: &str) -> Result<(), Error> {
    let n = password.chars().count();
    if (MIN_LEN..=MAX_LEN).contains(&n) {
        Ok(())
    } else {
        Err(Error::invalid_field("password", format_args!("must be {MIN_LEN} to {MAX_LEN} characters")))
    }
}

/// The PHC string of `password`, with a fresh random salt.
pub fn hash(password: &str) -> Result<String, Error> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))
}

/// [`validate`]s `password`, then hashes it off the async workers (Argon2 takes tens of
/// milliseconds of CPU, which would stall every request sharing the worker).
pub async fn hash_async(password: String) -> Result<String, Error> {
    validate(&password)?;
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(|e| Error::Internal(format!("password hashing: {e}")))?
}

/// Whether `password` matches the PHC string `stored`.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Spends the time of one verification, so that an unknown username answers as slowly as a
/// wrong password.
pub fn verify_nobody(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let stored = DUMMY.get_or_init(|| hash("portico-dummy-password").expect("hashing a constant"));
    let _ = verify(password, stored);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = hash("correct horse").unwrap();
        let b = hash("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(verify("correct horse", &a));
        assert!(!verify("correct horsE", &a));
        assert!(!verify("x", "not a phc string"));
    }
}
