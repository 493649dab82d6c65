//! Portico's end-to-end suite. Run it with `scripts/test`, which starts DynamoDB Local and
//! moto server on 127.0.0.1 and tells the tests where they are.

mod apps_api;
mod concurrency;
mod conformance;
mod console;
mod deploy;
mod docs_page;
mod faults;
mod hostile_input;
mod identity;
mod jobs;
mod jobs_ogdc;
mod jobs_workflow;
mod limits;
mod log_secrecy;
mod management_api;
mod observability;
mod openapi;
mod rpc;
mod rpc_reflection;
mod rpc_tls;
mod secrets;
mod sessions;
