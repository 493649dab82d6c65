//! Token verification throughput per token kind, in-process on one core, beside the bare
//! `jsonwebtoken` check of the same token with the same key (signature and expiry only): the
//! difference is what Portico adds (RFC 8725 checks, key lookup by `kid`, claims mapping).

use std::time::Instant;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use portico_core::Services;
use portico_core::auth::own::{KeyFile, Keyring};
use portico_core::store::now_epoch;
use portico_local::{HttpApi, start};
use serde_json::{Value, json};

use crate::report::{Better, Report};
use crate::standin::stand_in;
use crate::{BenchResult, WEB_SECRET, config, services};

/// Full verifications (no memory of verified tokens) per second of `token` on this thread.
async fn portico_rate(services: &Services, token: &str, count: usize) -> f64 {
    services.identity.tokens.verify_signed(token).await.expect("the benchmark token verifies");
    let t = Instant::now();
    for _ in 0..count {
        services.identity.tokens.verify_signed(token).await.expect("verifies");
    }
    count as f64 / t.elapsed().as_secs_f64()
}

/// The same, with `jsonwebtoken` alone: signature and `exp`, nothing else.
fn library_rate(token: &str, key: &DecodingKey, algorithm: Algorithm, count: usize) -> f64 {
    let mut validation = Validation::new(algorithm);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(token, key, &validation).expect("the library verifies the benchmark token");
    let t = Instant::now();
    for _ in 0..count {
        std::hint::black_box(jsonwebtoken::decode::<Value>(token, key, &validation).expect("verifies"));
    }
    count as f64 / t.elapsed().as_secs_f64()
}

/// The decoding key of the first key of a JWKS document.
fn first_key(jwks: &portico_core::auth::own::Jwks) -> Result<DecodingKey, Box<dyn std::error::Error>> {
    let set: JwkSet = serde_json::from_value(serde_json::to_value(jwks)?)?;
    Ok(DecodingKey::from_jwk(set.keys.first().ok_or("an empty key set")?)?)
}

pub async fn bench(keys: &str, report: &mut Report) -> BenchResult {
    println!("\nToken verification, one core (signature + claims; OIDC with a warm JWKS cache)");
    let now = now_epoch();
    let idp_keys = KeyFile::generate();
    let idp_ring = Keyring::new(&idp_keys, &config(keys, None)).map_err(|e| format!("{e:?}"))?;
    // A stand-in OpenID provider publishing one key set.
    let jwks = idp_ring.jwks().clone();
    let idp_api = HttpApi::new(vec![stand_in("idp", "GET /jwks", move |_| {
        Ok(portico_core::web::json(http::StatusCode::OK, &jwks))
    })]);
    let idp = start(idp_api, 0).await?;
    let verifier = services(config(keys, Some(format!("{}/jwks", idp.url())))).await?;
    let own = verifier.keys().issue("bench").0;
    let web = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &json!({"sub": "bench", "exp": now + 3600}),
        &jsonwebtoken::EncodingKey::from_secret(WEB_SECRET.as_bytes()),
    )?;
    let mut oidc_header = jsonwebtoken::Header::new(Algorithm::ES256);
    oidc_header.kid = Some(idp_keys.keys[0].kid.clone());
    let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &idp_keys.keys[0].pkcs8)?;
    let oidc = jsonwebtoken::encode(
        &oidc_header,
        &json!({"iss": "https://idp.bench", "sub": "x", "preferred_username": "bench", "exp": now + 3600}),
        &jsonwebtoken::EncodingKey::from_ec_der(&der),
    )?;
    let own_key = first_key(verifier.keys().jwks())?;
    let idp_key = first_key(idp_ring.jwks())?;
    let web_key = DecodingKey::from_secret(WEB_SECRET.as_bytes());
    let kinds = [
        ("HS256 web token", &web, &web_key, Algorithm::HS256, 100_000),
        ("ES256 Portico token", &own, &own_key, Algorithm::ES256, 20_000),
        ("ES256 OIDC token", &oidc, &idp_key, Algorithm::ES256, 20_000),
    ];
    for (name, token, key, algorithm, count) in kinds {
        let baseline = library_rate(token, key, algorithm, count);
        let rate = portico_rate(&verifier, token, count).await;
        report.add("JWT verify", name, rate, "/s", Better::Higher, "jsonwebtoken alone, same token", baseline);
    }
    drop(idp);
    Ok(())
}
