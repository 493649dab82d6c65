//! The OpenAPI document: the committed copy is what the code generates, every emulated route
//! is described (and nothing else), and the apps function serves it and the docs page without
//! a token.

use std::collections::BTreeSet;
use std::sync::Arc;

use portico_core::Services;
use portico_core::openapi::docs;
use portico_core::secrets::LocalSecrets;
use portico_core::store::memory::MemoryTable;
use portico_tests::{TestApi, test_config};
use reqwest::{Method, StatusCode};

/// The committed copy, at the repository's root.
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.json");

/// The document for `config`, as the apps function serves it.
fn generated(config: &portico_core::Config) -> String {
    portico_core::openapi::to_json(&portico_local::openapi_document(config).expect("the descriptors load"))
}

#[test]
fn the_committed_document_is_what_the_code_generates() {
    // The default configuration: OpenCue's gateway services, no extra descriptor sets.
    let now = generated(&portico_core::Config::default());
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    if committed != now {
        // Asked to, it rewrites the copy, and still fails this run: the drift is reported
        // either way, and the new copy is there to review and commit.
        if std::env::var_os("PORTICO_WRITE_OPENAPI").is_some() {
            std::fs::write(COMMITTED, &now).expect("write openapi.json");
        }
        let line = committed.lines().zip(now.lines()).position(|(a, b)| a != b).map_or(0, |i| i + 1);
        panic!(
            "openapi.json differs from what the code generates (first at line {line}); regenerate it with\n  \
             PORTICO_WRITE_OPENAPI=1 cargo test -p portico-tests --test suite openapi\nand commit it \
             (that run writes it and fails once more)"
        );
    }
}

/// `(method, path)` of each route key; `None` for `$default`.
fn parse(key: &str) -> Option<(String, String)> {
    let (method, path) = key.split_once(' ')?;
    Some((method.to_owned(), path.to_owned()))
}

/// Whether the route key `(method, path)` serves `(op_method, op_path)` the way API Gateway
/// matches: exactly, or under a greedy `{proxy+}` / the RPC routes' `{method}` segment.
fn serves((method, path): &(String, String), (op_method, op_path): &(String, String)) -> bool {
    let method_ok = method == "ANY" || method.eq_ignore_ascii_case(op_method);
    let path_ok = match path.strip_suffix("{proxy+}").or_else(|| path.strip_suffix("{method}")) {
        Some(prefix) => op_path.starts_with(prefix) && op_path.len() > prefix.len(),
        None => path == op_path,
    };
    method_ok && path_ok
}

#[tokio::test]
async fn every_emulated_route_is_described_and_nothing_else() {
    let config = test_config();
    let secrets = Arc::new(LocalSecrets::new(config.local_secrets.clone()));
    let rpc = portico_local::rpc_gateway(&config).await.unwrap();
    let services = Services::with(config.clone(), Arc::new(MemoryTable::new()), secrets).await.unwrap();
    let keys: BTreeSet<(String, String)> =
        portico_local::route_groups(&portico_local::Platform::new(services).shared(), rpc)
            .iter()
            // The console's routes are HTML pages for people, not part of the API it describes.
            .filter(|g| g.name() != "console")
            .flat_map(|g| g.route_keys())
            .filter_map(|k| parse(&k))
            .collect();
    let doc: serde_json::Value = serde_json::from_str(&generated(&config)).unwrap();
    let ops: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |m| (m.to_uppercase(), path.clone())))
        .collect();
    let undescribed: Vec<_> = keys.iter().filter(|k| !ops.iter().any(|op| serves(k, op))).collect();
    assert!(undescribed.is_empty(), "routes without an operation in the document: {undescribed:?}");
    let unserved: Vec<_> = ops.iter().filter(|op| !keys.iter().any(|k| serves(k, op))).collect();
    assert!(unserved.is_empty(), "operations no route serves: {unserved:?}");
    // Each exposed RPC service's methods are there, each a POST.
    let rpc_ops = ops.iter().filter(|(_, p)| p.starts_with("/show.ShowInterface/")).count();
    assert!(rpc_ops > 10, "ShowInterface's methods: {rpc_ops}");
}

#[tokio::test]
async fn the_apps_function_serves_the_document_and_the_page_without_a_token() {
    let config = test_config();
    let api = TestApi::start(Arc::new(MemoryTable::new()), config.clone()).await;
    api.calls.take();

    let r = api.req(Method::GET, "/openapi.json", None).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.text().await.unwrap(), generated(&config));

    let r = api.req(Method::GET, "/docs", None).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self';") && !csp.contains("script-src 'self' 'unsafe"), "{csp}");
    let page = r.text().await.unwrap();
    assert!(page.contains("<redoc spec-url=\"/openapi.json\">"), "{page}");
    let script = format!("/docs/{}", docs::ASSET);
    assert!(page.contains(&format!("<script src=\"{script}\"></script>")) && !page.contains("https://"), "{page}");

    let r = api.req(Method::GET, &script, None).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(r.headers()["cache-control"].to_str().unwrap().contains("max-age=31536000"));
    assert!(r.text().await.unwrap().len() > 1_000_000);

    let r = api.req(Method::GET, "/docs/other.js", None).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(api.calls.take().total(), 0, "no storage call");
}

/// Who may call what, and the bodies' examples, as the handlers declare them.
#[test]
fn declared_operations_carry_their_security_and_examples() {
    let doc: serde_json::Value = serde_json::from_str(&generated(&portico_core::Config::default())).unwrap();
    assert_eq!(doc["paths"]["/healthz"]["get"]["security"], serde_json::json!([]));
    assert_eq!(doc["paths"]["/apps"]["get"]["security"].as_array().unwrap().len(), 4);
    let put = &doc["paths"]["/apps/{slug}"]["put"];
    assert_eq!(put["requestBody"]["content"]["application/json"]["example"]["slug"], "usd-validate");
    assert_eq!(put["parameters"][0]["name"], "slug");
    assert_eq!(put["operationId"], "put_apps_slug");
}

/// Every place the document shows a name rule, it shows the rule's own pattern (the check and
/// the message use the same rule: `portico_core::names`).
#[test]
fn names_follow_their_one_rule_everywhere_the_document_shows_them() {
    use portico_core::names::{ENVIRONMENT, ROLE, SLUG, USERNAME};
    let doc: serde_json::Value = serde_json::from_str(&generated(&portico_core::Config::default())).unwrap();
    let schemas = &doc["components"]["schemas"];
    for (at, rule) in [
        (&schemas["AppInput"]["properties"]["slug"], &SLUG),
        (&schemas["StartSession"]["properties"]["app"], &SLUG),
        (&schemas["NewUser"]["properties"]["username"], &USERNAME),
        (&schemas["OgdcNewUser"]["properties"]["username"], &USERNAME),
        (&schemas["NewRole"]["properties"]["name"], &ROLE),
        (&schemas["EnvironmentInput"]["properties"]["name"], &ENVIRONMENT),
    ] {
        assert_eq!(at["pattern"], rule.pattern, "{at}");
    }
    let parameter = |path: &str, name: &str| {
        doc["paths"][path]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|op| op["parameters"].as_array().unwrap().clone())
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} {name}"))["schema"]["pattern"]
            .clone()
    };
    assert_eq!(parameter("/apps/{slug}", "slug"), SLUG.pattern);
    assert_eq!(parameter("/environments/{name}", "name"), ENVIRONMENT.pattern);
    assert_eq!(parameter("/admin/users/{user}", "user"), USERNAME.pattern);
    assert_eq!(parameter("/admin/roles/{role}", "role"), ROLE.pattern);
}
