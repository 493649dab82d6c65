//! Unit tests of the defaults and of validation.

use super::*;

#[test]
fn production_defaults_allow_no_origin() {
    assert!(Config::default().allowed_origins.is_empty());
    assert_eq!(Config::default().store, StoreKind::Dynamodb);
}

#[test]
fn bad_combinations_are_refused() {
    assert!(Config { page_size_default: 500, ..Config::default() }.validate().is_err());
    assert!(Config { rpc_deadline_ms: 30_000, ..Config::default() }.validate().is_err());
    assert!(Config { rpc_forward_headers: vec!["Authorization".into()], ..Config::default() }.validate().is_err());
    assert!(Config { dynamodb_timeout_ms: 0, ..Config::default() }.validate().is_err());
    assert!(Config { dynamodb_attempt_timeout_ms: 6_000, ..Config::default() }.validate().is_err());
    assert!(Config { dynamodb_max_attempts: 0, ..Config::default() }.validate().is_err());
    assert!(Config { stream_launch_timeout_ms: 30_000, ..Config::default() }.validate().is_err());
}
