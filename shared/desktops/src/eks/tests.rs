use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;

use super::*;

/// Made by botocore (`make_token_vector.py`): the token `aws eks get-token` would give.
const VECTOR: &str = include_str!("token-vector.json");

fn query_of(url: &str) -> Vec<(String, String)> {
    let (_, query) = url.split_once('?').unwrap();
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    pairs.sort();
    pairs
}

#[test]
fn the_token_is_the_one_botocore_signs() {
    let vector: Value = serde_json::from_str(VECTOR).unwrap();
    let text = |name: &str| vector[name].as_str().unwrap().to_owned();
    let credentials = Credentials::from_keys(text("access_key"), text("secret_key"), None);
    // 2026-12-07T00:00:00Z.
    let time = UNIX_EPOCH + Duration::from_secs(1_796_601_600);
    let made = token(&text("cluster"), &text("region"), &credentials, time).unwrap();
    let url = |token: &str| {
        let encoded = token.strip_prefix(PREFIX).expect("the prefix");
        String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded).unwrap()).unwrap()
    };
    let (ours, theirs) = (url(&made), text("presigned_url"));
    assert_eq!(ours.split_once('?').unwrap().0, "https://sts.eu-west-1.amazonaws.com/");
    // The same parameters (the order of a query is not signed), signature included.
    assert_eq!(query_of(&ours), query_of(&theirs));
    assert!(!made.contains(&text("secret_key")) && !ours.contains(&text("secret_key")));
}

#[tokio::test]
async fn without_credentials_a_token_is_refused_naming_why() {
    let tokens = EksTokens::new("facility-desktops".into(), None);
    assert!(tokens.get().await.unwrap_err().contains("AWS credentials"));
}
