//! The jobs domain's clients, built by the functions that use them (jobs, the reconciler, the
//! console).

use std::sync::Arc;

use portico_core::Services;

use crate::engine::{ArgoServer, WorkflowEngine};
use crate::output::{OutputLinks, S3Presigner};

/// What jobs need beyond the platform's services.
pub struct JobClients {
    /// The workflow engine jobs run on (Argo); `None` when not configured.
    pub workflows: Option<Arc<dyn WorkflowEngine>>,
    /// Download links for `temporary` job outputs (presigned S3 GETs on AWS).
    pub output_links: Option<Arc<dyn OutputLinks>>,
}

impl JobClients {
    /// The clients `services`' configuration names: Argo Server when `argo_server_url` is set,
    /// S3 links with the process's AWS credentials when it has them.
    pub fn from_services(services: &Services) -> JobClients {
        let argo = services.outside(&services.config.argo_server_url, ArgoServer::new);
        let workflows = argo.map(|argo| Arc::new(argo) as Arc<dyn WorkflowEngine>);
        let output_links = services
            .aws
            .as_ref()
            .and_then(|aws| Some((aws.credentials_provider()?, aws.region()?.to_string())))
            .map(|(credentials, region)| Arc::new(S3Presigner::new(credentials, region)) as Arc<dyn OutputLinks>);
        JobClients { workflows, output_links }
    }
}
