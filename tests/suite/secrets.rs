//! Secrets Manager through the SDK against moto server (the real wire protocol).

use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_secretsmanager::Client;
use portico_core::Error;
use portico_core::Services;
use portico_core::secrets::{Secrets, SecretsManager};
use portico_core::store::memory::MemoryTable;
use portico_tests::{SECRET, moto_endpoint, signing_keys, test_config, unique, web_token};

fn client() -> Client {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .endpoint_url(moto_endpoint())
        .credentials_provider(Credentials::from_keys("testing", "testing", None))
        .build();
    Client::from_conf(config)
}

async fn create(id: &str, value: &str) {
    client().create_secret().name(id).secret_string(value).send().await.expect("create secret in moto");
}

#[tokio::test]
async fn values_are_read_then_cached_for_the_ttl() {
    let id = unique("portico/cached");
    create(&id, "first-value").await;
    let cached = SecretsManager::new(client(), Duration::from_secs(300));
    assert_eq!(cached.get(&id).await.unwrap(), "first-value");
    client().put_secret_value().secret_id(&id).secret_string("rotated-value").send().await.unwrap();
    assert_eq!(cached.get(&id).await.unwrap(), "first-value", "served from cache within the TTL");
    let uncached = SecretsManager::new(client(), Duration::ZERO);
    assert_eq!(uncached.get(&id).await.unwrap(), "rotated-value", "a rotation is seen once the TTL passes");
}

#[tokio::test]
async fn a_missing_secret_is_an_internal_error_that_names_it() {
    let sm = SecretsManager::new(client(), Duration::from_secs(60));
    let err = sm.get("portico/does-not-exist").await.unwrap_err();
    assert_eq!(err.to_string(), "internal error");
    let Error::Internal(detail) = err else { panic!("{err:?}") };
    assert!(detail.contains("portico/does-not-exist"), "{detail}");
}

#[tokio::test]
async fn token_keys_come_from_secrets_manager() {
    let mut config = test_config();
    config.signing_keys_secret_id = unique("portico/signing-keys");
    config.web_token_secret_id = Some(unique("portico/web-token"));
    create(&config.signing_keys_secret_id, signing_keys()).await;
    create(config.web_token_secret_id.as_ref().unwrap(), SECRET).await;
    let sm = std::sync::Arc::new(SecretsManager::new(client(), Duration::from_secs(60)));
    let services = Services::with(config.clone(), std::sync::Arc::new(MemoryTable::new()), sm.clone()).await.unwrap();
    let own = services.keys().issue("ada").0;
    assert_eq!(services.identity.authenticate(&own).await.unwrap().username, "ada");
    let web = web_token("wes", &["admin"]);
    assert!(services.identity.authenticate(&web).await.unwrap().admin);

    config.web_token_secret_id = Some(unique("portico/short"));
    create(config.web_token_secret_id.as_ref().unwrap(), "too-short").await;
    let refused = Services::with(config, std::sync::Arc::new(MemoryTable::new()), sm).await;
    assert!(refused.is_err(), "a web-token secret under 32 bytes is refused at start-up");
}

#[tokio::test]
async fn a_rotation_reaches_a_warm_process_through_the_unknown_key() {
    use portico_core::auth::own::KeyFile;
    let mut config = test_config();
    // No periodic reload within the test: only a token naming a new key makes one.
    config.secrets_cache_ttl = 3600;
    config.signing_keys_secret_id = unique("portico/signing-keys");
    config.web_token_secret_id = Some(unique("portico/web-token"));
    let web_id = config.web_token_secret_id.clone().unwrap();
    let before: KeyFile = serde_json::from_str(signing_keys()).unwrap();
    create(&config.signing_keys_secret_id, signing_keys()).await;
    create(&web_id, SECRET).await;
    let sm = || std::sync::Arc::new(SecretsManager::new(client(), Duration::from_secs(3600)));
    let warm = Services::with(config.clone(), std::sync::Arc::new(MemoryTable::new()), sm()).await.unwrap();
    let old_token = warm.keys().issue("ada").0;

    // The operator rotates: a new signing key first, the old one still listed.
    let rotated = serde_json::to_string(&before.rotate()).unwrap();
    client().put_secret_value().secret_id(&config.signing_keys_secret_id).secret_string(&rotated).send().await.unwrap();
    let new_secret = "a-rotated-web-secret-of-at-least-32-bytes!";
    client().put_secret_value().secret_id(&web_id).secret_string(new_secret).send().await.unwrap();
    // A process started after the rotation signs with the new key.
    let cold = Services::with(config.clone(), std::sync::Arc::new(MemoryTable::new()), sm()).await.unwrap();
    let new_token = cold.keys().issue("bea").0;
    assert_ne!(warm.keys().jwks(), cold.keys().jwks());

    // The warm process accepts it (its cached secret is bypassed once), and still the old one.
    assert_eq!(warm.identity.authenticate(&new_token).await.unwrap().username, "bea");
    assert_eq!(warm.identity.authenticate(&old_token).await.unwrap().username, "ada");
    assert_eq!(warm.keys().jwks(), cold.keys().jwks(), "the warm JWKS now lists the new key");
    // The same for the web system's shared secret; the old one no longer verifies.
    let claims = serde_json::json!({"sub": "wes", "exp": portico_core::store::now_epoch() + 600});
    let rotated_web = portico_tests::mint_hs256(new_secret.as_bytes(), &claims);
    assert_eq!(warm.identity.authenticate(&rotated_web).await.unwrap().username, "wes");
    assert!(warm.identity.authenticate(&web_token("old", &[])).await.is_err());
}
