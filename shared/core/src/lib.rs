//! Portico's core: everything a route needs that is not Lambda.
//!
//! - [`config`]: the one typed configuration.
//! - [`error`]: the one error enum and its HTTP mapping.
//! - [`input`]: client JSON in: objects only, errors that never quote a value.
//! - [`web`]: requests, responses, CORS and the [`web::RouteGroup`] trait functions implement.
//! - [`auth`]: bearer token to [`auth::VerifiedToken`] (own ES256, OIDC, HS256 web tokens).
//! - [`identity`]: verified token to [`authz::Principal`] (user, roles, permissions, quota).
//! - [`authz`]: actions, permissions, and the check.
//! - [`cache`]: the one time-to-live cache warm processes keep.
//! - [`directory`]: users, roles, permissions and quota settings in the store.
//! - [`quotas`]: usage reserved and released without overshooting.
//! - [`login`] / [`passwords`]: the OAuth2 password grant, argon2id, delegated login.
//! - [`store`]: the [`store::Table`] trait, its DynamoDB and in-memory implementations.
//! - [`outbound`]: the outbound HTTPS client, built on first use.
//! - [`secrets`]: Secrets Manager (cached) and local secrets.
//! - [`openapi`]: the OpenAPI 3.1 document of every route and the `/docs` page.
//! - [`apps`]: the apps catalog domain.
//! - [`lambda`] (feature `lambda`): the adapter from `lambda_http` to a route group.

pub mod apps;
pub mod auth;
pub mod authz;
pub mod cache;
pub mod config;
pub mod directory;
pub mod error;
pub mod identity;
pub mod input;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod login;
pub mod names;
pub mod openapi;
pub mod outbound;
pub mod passwords;
pub mod quotas;
pub mod secrets;
pub mod services;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod web;

pub use config::Config;
pub use error::{Error, codes};
pub use services::Services;
