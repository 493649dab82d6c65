//! Portico's end-to-end suite. Run it with `scripts/test`, which starts DynamoDB Local and
//! moto server on 127.0.0.1 and tells the tests where they are.

/// Runs each test body (an `async fn(Arc<dyn Table>)`) on the embedded store and on DynamoDB
/// Local, as `<name>::memory` and `<name>::dynamodb_local`: `name` alone, or `name => body`.
/// Led by `multi_thread:`, on four worker threads (races need threads to race on).
/// Defined before the modules, so that every one of them sees it.
macro_rules! on_both_stores {
    (multi_thread: $($tests:tt)*) => {
        on_both_stores!(@with [tokio::test(flavor = "multi_thread", worker_threads = 4)] $($tests)*);
    };
    (@with [$test:meta] $($name:ident $(=> $body:ident)?),* $(,)?) => {$(
        mod $name {
            #[$test]
            async fn memory() {
                on_both_stores!(@body $name $($body)?)(std::sync::Arc::new(portico_core::store::memory::MemoryTable::new()))
                    .await;
            }

            #[$test]
            async fn dynamodb_local() {
                on_both_stores!(@body $name $($body)?)(std::sync::Arc::new(portico_tests::dynamo_table().await)).await;
            }
        }
    )*};
    (@body $name:ident) => { super::$name };
    (@body $name:ident $body:ident) => { super::$body };
    ($($tests:tt)*) => {
        on_both_stores!(@with [tokio::test] $($tests)*);
    };
}

mod apps_api;
mod cluster_access;
mod concurrency;
mod conformance;
mod console;
mod deploy;
mod desktops;
mod desktops_vnc;
mod docs_page;
mod experiments;
mod faults;
mod hostile_input;
mod identity;
mod jobs;
mod jobs_ogdc;
mod jobs_workflow;
mod limits;
mod log_secrecy;
mod management_api;
mod nvcf;
mod observability;
mod openapi;
mod portal;
mod rpc;
mod rpc_python;
mod rpc_reflection;
mod rpc_tls;
mod secrets;
mod sessions;
mod turn;
mod webrtc;
