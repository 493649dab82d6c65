//! Portico's core: everything a route needs that is not Lambda.
//!
//! - [`config`]: the one typed configuration.
//! - [`error`]: the one error enum and its HTTP mapping.
//! - [`web`]: requests, responses, CORS and the [`web::RouteGroup`] trait functions implement.
//! - [`auth`] / [`authz`]: bearer token to [`auth::Principal`]; may it do an [`authz::Action`]?
//! - [`store`]: the [`store::Table`] trait, its DynamoDB and in-memory implementations.
//! - [`secrets`]: Secrets Manager (cached) and local secrets.
//! - [`apps`]: the apps catalog domain.
//! - [`lambda`] (feature `lambda`): the adapter from `lambda_http` to a route group.

pub mod apps;
pub mod auth;
pub mod authz;
pub mod config;
pub mod error;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod secrets;
pub mod services;
pub mod store;
pub mod web;

pub use config::Config;
pub use error::{Error, codes};
pub use services::Services;
