//! The SAM template deploys what the emulator serves: the same HTTP routes, to the same
//! functions.

use std::collections::BTreeSet;
use std::sync::Arc;

use portico_core::Services;
use portico_core::secrets::LocalSecrets;
use portico_core::store::memory::MemoryTable;
use portico_tests::test_config;

const TEMPLATE: &str = include_str!("../../infra/template.yaml");

/// `(function binary, "METHOD /path")` for every HttpApi event of the template. The template
/// writes each event's properties on one line (`Path: ..., Method: ...`) under its function.
fn template_routes() -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    let mut binary = None;
    for line in TEMPLATE.lines().map(str::trim) {
        if let Some(b) = line.strip_prefix("Binary: ") {
            binary = Some(b.to_owned());
        }
        let Some(props) = line.strip_prefix("Properties: { ApiId: !Ref HttpApi, Path: ") else { continue };
        let (path, method) = props.trim_end_matches(" }").split_once(", Method: ").expect("Path, then Method");
        routes.insert((
            binary.clone().expect("an event under a function"),
            format!("{method} {}", path.trim_matches('"')),
        ));
    }
    routes
}

#[tokio::test]
async fn the_template_routes_every_emulated_route_to_its_function() {
    let config = test_config();
    let secrets = Arc::new(LocalSecrets::new(config.local_secrets.clone()));
    let rpc = portico_local::rpc_gateway(&config).await.unwrap();
    let services = Services::with(config, Arc::new(MemoryTable::new()), secrets).await.unwrap();
    let emulated: BTreeSet<(String, String)> =
        portico_local::route_groups(&portico_local::Platform::new(services).shared(), rpc)
            .iter()
            .flat_map(|g| {
                g.route_keys().into_iter().map(|k| (g.name().to_owned(), k.replace("$default", "ANY $default")))
            })
            .collect();
    let deployed = template_routes();
    assert_eq!(
        deployed.iter().filter(|(f, _)| f == "rpc").count(),
        portico_core::config::OPENCUE_GATEWAY_SERVICES.len() + 1,
        "one route per exposed OpenCue service, and the listing"
    );
    let missing: Vec<_> = emulated.difference(&deployed).collect();
    let extra: Vec<_> = deployed.difference(&emulated).collect();
    assert!(missing.is_empty() && extra.is_empty(), "not deployed: {missing:?}; not emulated: {extra:?}");
}
