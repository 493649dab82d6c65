//! Which services the gateway knows and exposes: OpenCue's descriptors embedded at build
//! time, sets loaded from files at start-up, and services learnt from an upstream's reflection.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, MethodDescriptor, ServiceDescriptor};

/// OpenCue's FileDescriptorSet, compiled from `proto/` by `build.rs`.
pub static OPENCUE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/opencue.fds"));

/// [`OPENCUE`] decoded once per process: a pool clone shares it, and adding to a clone
/// copies it first, so the shared one never changes.
static OPENCUE_POOL: LazyLock<DescriptorPool> =
    LazyLock::new(|| DescriptorPool::decode(OPENCUE).expect("the embedded descriptor set decodes"));

/// Decodes [`OPENCUE`] now, if no one has (a start-up thread's work).
pub fn decode_opencue() {
    LazyLock::force(&OPENCUE_POOL);
}

#[derive(Debug, thiserror::Error)]
pub enum DescriptorError {
    #[error("descriptor set {0}: {1}")]
    File(String, String),
}

/// Every known descriptor, and which services callers may reach.
#[derive(Clone)]
pub struct Descriptors {
    pool: DescriptorPool,
    /// Exposed services; `None` (`*`) exposes every loaded one, an empty set none.
    exposed: Option<BTreeSet<String>>,
    /// Services learnt at run time (extra sets, reflection): always exposed.
    added: BTreeSet<String>,
}

impl Descriptors {
    /// OpenCue's embedded set, exposing `exposed` (`["*"]`: every service; `[]`: none).
    pub fn opencue(exposed: &[String]) -> Descriptors {
        let exposed = if exposed.iter().any(|s| s == "*") { None } else { Some(exposed.iter().cloned().collect()) };
        Descriptors { pool: OPENCUE_POOL.clone(), exposed, added: BTreeSet::new() }
    }

    /// What `config` describes without asking an upstream: OpenCue's embedded set, exposing
    /// `rpc_services`, and the `rpc_descriptor_sets` files (reflection is the gateway's).
    pub fn configured(config: &portico_core::Config) -> Result<Descriptors, DescriptorError> {
        let mut descriptors = Descriptors::opencue(&config.rpc_services);
        descriptors.add_files(&config.rpc_descriptor_sets)?;
        Ok(descriptors)
    }

    /// Adds a serialized FileDescriptorSet; its services become callable.
    pub fn add_set(&mut self, bytes: &[u8], origin: &str) -> Result<(), DescriptorError> {
        let before: BTreeSet<String> = self.pool.services().map(|s| s.full_name().to_owned()).collect();
        self.pool.decode_file_descriptor_set(bytes).map_err(|e| DescriptorError::File(origin.into(), e.to_string()))?;
        let new = self.pool.services().map(|s| s.full_name().to_owned()).filter(|s| !before.contains(s));
        self.added.extend(new);
        Ok(())
    }

    /// Adds the FileDescriptorSet files named by `paths`.
    pub fn add_files(&mut self, paths: &[String]) -> Result<(), DescriptorError> {
        for path in paths {
            let bytes = std::fs::read(path).map_err(|e| DescriptorError::File(path.clone(), e.to_string()))?;
            self.add_set(&bytes, path)?;
        }
        Ok(())
    }

    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }

    /// Whether callers may reach `service`.
    pub fn is_exposed(&self, service: &str) -> bool {
        self.exposed.as_ref().is_none_or(|e| e.contains(service)) || self.added.contains(service)
    }

    /// The method `service`/`method` if it is exposed.
    pub fn method(&self, service: &str, method: &str) -> Option<MethodDescriptor> {
        if !self.is_exposed(service) {
            return None;
        }
        self.pool.get_service_by_name(service)?.methods().find(|m| m.name() == method)
    }

    /// The exposed services, by name.
    pub fn services(&self) -> Vec<ServiceDescriptor> {
        let mut all: Vec<_> = self.pool.services().filter(|s| self.is_exposed(s.full_name())).collect();
        all.sort_by(|a, b| a.full_name().cmp(b.full_name()));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_api_is_opencues_whole_api() {
        let all = Descriptors::opencue(&["*".into()]);
        assert_eq!(all.services().len(), 28);
        assert_eq!(all.services().iter().map(|s| s.methods().len()).sum::<usize>(), 304);
        let gateway: Vec<String> =
            portico_core::config::OPENCUE_GATEWAY_SERVICES.iter().map(|s| s.to_string()).collect();
        let default = Descriptors::opencue(&gateway);
        assert_eq!(default.services().len(), 22);
        assert!(default.method("show.ShowInterface", "FindShow").is_some());
        assert!(default.method("cue.CueInterface", "GetSystemStats").is_none(), "not exposed by default");
    }

    #[test]
    fn star_exposes_every_service_and_an_empty_list_none() {
        let all = Descriptors::opencue(&["*".into()]);
        assert!(all.is_exposed("cue.CueInterface") && all.is_exposed("show.ShowInterface"));
        let none = Descriptors::opencue(&[]);
        assert!(none.services().is_empty(), "an empty list exposes nothing");
        assert!(none.method("show.ShowInterface", "FindShow").is_none());
        // Every service is still described: only exposure changed.
        assert!(none.pool().get_service_by_name("show.ShowInterface").is_some());
    }

    #[test]
    fn added_services_are_exposed_even_when_the_list_is_empty() {
        let mut none = Descriptors::opencue(&[]);
        none.add_set(&greeter_set(), "test").unwrap();
        let names: Vec<String> = none.services().iter().map(|s| s.full_name().to_owned()).collect();
        assert_eq!(names, ["t.Greeter"]);
        assert!(none.method("t.Greeter", "Hello").is_some());
        // Adding to one copy leaves the shared embedded pool as it was.
        assert!(Descriptors::opencue(&["*".into()]).pool().get_service_by_name("t.Greeter").is_none());
    }

    /// `t.Greeter/Hello` as a serialized FileDescriptorSet.
    fn greeter_set() -> Vec<u8> {
        use prost::Message as _;
        use prost_reflect::prost_types::*;
        let message = |name: &str| DescriptorProto { name: Some(name.into()), ..Default::default() };
        let file = FileDescriptorProto {
            name: Some("t/greeter.proto".into()),
            package: Some("t".into()),
            syntax: Some("proto3".into()),
            message_type: vec![message("HelloRequest"), message("HelloReply")],
            service: vec![ServiceDescriptorProto {
                name: Some("Greeter".into()),
                method: vec![MethodDescriptorProto {
                    name: Some("Hello".into()),
                    input_type: Some(".t.HelloRequest".into()),
                    output_type: Some(".t.HelloReply".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        FileDescriptorSet { file: vec![file] }.encode_to_vec()
    }
}
