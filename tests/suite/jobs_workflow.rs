//! The Argo Workflow Portico builds from an OGDC shell recipe: valid against Argo's published
//! API, steps in order on the configured image and volume, outputs as OGDC publishes them,
//! and user text inert (never an Argo `{{...}}` expression).

use base64::Engine as _;
use portico_jobs::recipe::Recipe;
use portico_jobs::workflow::{self, WorkflowSettings};
use portico_tests::argo::ArgoApi;
use serde_json::{Value, json};

const JOB: &str = "0a1b2c3d-0000-4000-8000-00000000beef";

fn settings() -> WorkflowSettings {
    WorkflowSettings {
        namespace: "qgnet".into(),
        service_account: "argo-workflow".into(),
        image: "registry.example.org/ogdc-runner:1.2.3".into(),
        volume_claim: "ogdc-data".into(),
        ttl_seconds: 86_400,
        ttl_temporary_seconds: 604_800,
        parallelism: 5,
    }
}

fn meta(output: &str, parallel: bool) -> String {
    format!(
        "name: Seal Tags Demo\nworkflow:\n  type: shell\n  parallel: {{enabled: {parallel}, partition_strategy: files, partition_size: 3}}\n\
         input:\n  params:\n    - {{type: url, value: 'https://data.example.org/tags/{{{{workflow.name}}}}.csv'}}\n\
         output:\n  type: {output}\n"
    )
}

const STEPS: &str = "mkdir -p /output_dir/a && cp /input_dir/* /output_dir/a\n# a comment\necho '{{workflow.parameters.secret}}' > /output_dir/b\nls -R /input_dir > /output_dir/listing\n";

fn build(output: &str, parallel: bool) -> Value {
    let recipe = Recipe::parse(meta(output, parallel).as_bytes(), STEPS.as_bytes()).expect("a valid recipe");
    let built = workflow::shell_workflow(JOB, &recipe, &settings(), Some("key-123"), false);
    ArgoApi::load()
        .check(&built, "io.argoproj.workflow.v1alpha1.Workflow")
        .expect("a Workflow as Argo's API defines it");
    let request = json!({"namespace": "qgnet", "workflow": built});
    ArgoApi::load().check(&request, "io.argoproj.workflow.v1alpha1.WorkflowCreateRequest").expect("a create request");
    request["workflow"].clone()
}

fn template<'a>(wf: &'a Value, name: &str) -> &'a Value {
    wf["spec"]["templates"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap_or_else(|| panic!("{name}"))
}

fn decoded(b64: &Value) -> String {
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap()).unwrap()).unwrap()
}

/// `(command, from, to)` of each step invocation, in order.
fn step_calls(steps: &Value) -> Vec<(String, String, String)> {
    steps
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group.as_array().unwrap().iter())
        .filter(|s| s["template"] == "run-step")
        .map(|s| {
            let p = |n: usize| s["arguments"]["parameters"][n]["value"].clone();
            (decoded(&p(0)), p(1).as_str().unwrap().to_owned(), p(2).as_str().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn a_multi_step_recipe_runs_its_lines_in_order_on_the_configured_image_and_volume() {
    let wf = build("pvc", false);
    assert_eq!(wf["metadata"]["name"], "portico-0a1b2c3d-0000-4000-8000-00000000beef", "named after the job");
    assert_eq!(wf["metadata"]["namespace"], "qgnet");
    assert_eq!(decoded(&wf["metadata"]["annotations"][workflow::IDEMPOTENCY_ANNOTATION]), "key-123");
    assert_eq!(wf["metadata"]["labels"][workflow::RECIPE_LABEL], "seal-tags-demo");
    assert_eq!(wf["metadata"]["annotations"][workflow::RECIPE_ANNOTATION], "seal-tags-demo");
    let spec = &wf["spec"];
    assert_eq!((&spec["entrypoint"], &spec["serviceAccountName"]), (&json!("main"), &json!("argo-workflow")));
    assert_eq!(spec["volumes"], json!([{"name": "work", "persistentVolumeClaim": {"claimName": "ogdc-data"}}]));
    assert_eq!(spec["ttlStrategy"]["secondsAfterCompletion"], 86_400);
    let main = template(&wf, "main");
    let order: Vec<&str> = main["steps"].as_array().unwrap().iter().map(|g| g[0]["name"].as_str().unwrap()).collect();
    assert_eq!(order, ["fetch", "step-1", "step-2", "step-3", "publish"], "one sequential step per line");
    let run = "runs/portico-0a1b2c3d-0000-4000-8000-00000000beef";
    let lines: Vec<&str> = STEPS.lines().filter(|l| !l.starts_with('#')).collect();
    let expected: Vec<(String, String, String)> = lines
        .iter()
        .enumerate()
        .map(|(n, l)| (l.to_string(), format!("{run}/step-{n}"), format!("{run}/step-{}", n + 1)))
        .collect();
    assert_eq!(step_calls(&main["steps"]), expected, "each line, /output_dir of one the /input_dir of the next");
    // Every container runs the configured image; nothing else is ever pulled.
    for t in spec["templates"].as_array().unwrap().iter().filter(|t| t["container"].is_object()) {
        assert_eq!(t["container"]["image"], "registry.example.org/ogdc-runner:1.2.3", "{}", t["name"]);
    }
    let publish = template(&wf, "publish");
    let mounts = &publish["container"]["volumeMounts"];
    assert_eq!(mounts[0]["subPath"], format!("{run}/step-3"), "publishes the last step's output");
    assert_eq!(mounts[1]["subPath"], "recipes/seal-tags-demo", "to the recipe's sub-path of the volume");
    assert!(spec.get("artifactGC").is_none());
    let publishing = publish["container"]["command"][2].as_str().unwrap();
    assert!(publishing.starts_with("if [ -n \"$(ls -A /output_dir)\" ]"), "never over an earlier output: {publishing}");
    let recipe = Recipe::parse(meta("pvc", false).as_bytes(), STEPS.as_bytes()).unwrap();
    let replacing = workflow::shell_workflow(JOB, &recipe, &settings(), None, true);
    let publishing = template(&replacing, "publish")["container"]["command"][2].as_str().unwrap().to_owned();
    assert!(
        publishing.starts_with("find /output_dir -mindepth 1 -delete && cp -R"),
        "overwrite replaces: {publishing}"
    );
}

#[test]
fn a_temporary_output_is_a_zip_artifact_kept_a_week() {
    let wf = build("temporary", false);
    let publish = template(&wf, "publish");
    assert_eq!(publish["outputs"]["artifacts"][0]["archive"], json!({"zip": {}}));
    assert_eq!(wf["spec"]["ttlStrategy"]["secondsAfterCompletion"], 604_800);
    assert_eq!(wf["spec"]["artifactGC"]["strategy"], "OnWorkflowDeletion");
}

#[test]
fn a_parallel_recipe_fans_out_over_partitions_five_at_a_time() {
    let wf = build("pvc", true);
    let main = template(&wf, "main");
    assert_eq!(main["parallelism"], 5);
    let fan = &main["steps"][1][0];
    assert_eq!(
        (&fan["template"], &fan["withParam"]),
        (&json!("partition"), &json!("{{steps.fetch.outputs.parameters.partitions}}"))
    );
    let fetch = template(&wf, "fetch");
    assert_eq!(fetch["outputs"]["parameters"][0]["name"], "partitions");
    let env: Vec<&str> =
        fetch["container"]["env"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert!(env.contains(&"PORTICO_PARTITION_SIZE"), "{env:?}");
    let run = "runs/portico-0a1b2c3d-0000-4000-8000-00000000beef";
    let calls = step_calls(&template(&wf, "partition")["steps"]);
    assert_eq!(calls.len(), 3);
    assert_eq!(
        calls[0].1,
        format!("{run}/step-0/p-{{{{inputs.parameters.partition}}}}"),
        "a partition starts from its files"
    );
    assert_eq!(calls[2].2, format!("{run}/p-{{{{inputs.parameters.partition}}}}/step-3"));
    let gather = template(&wf, "publish")["container"]["command"][2].as_str().unwrap().to_owned();
    assert!(gather.contains("/input_dir/p-*/step-3"), "every partition's results are published: {gather}");
}

#[test]
fn user_text_never_becomes_an_argo_expression() {
    for (output, parallel) in [("pvc", false), ("temporary", false), ("pvc", true)] {
        let text = build(output, parallel).to_string();
        // The recipe's own `{{workflow.name}}` and `{{workflow.parameters.secret}}` are not in
        // the workflow as text (only base64-encoded, decoded by the container).
        assert!(!text.contains("workflow.parameters.secret") && !text.contains("workflow.name"), "{text}");
        let portico_own = [
            "inputs.parameters.command",
            "inputs.parameters.from",
            "inputs.parameters.to",
            "inputs.parameters.partition",
            "item",
            "steps.fetch.outputs.parameters.partitions",
        ];
        for expression in text.split("{{").skip(1).map(|rest| rest.split("}}").next().unwrap()) {
            assert!(portico_own.contains(&expression), "an expression Portico did not write: {{{{{expression}}}}}");
        }
    }
    // The url input reaches the fetch step intact, base64 inside the inputs' JSON.
    let wf = build("pvc", false);
    let inputs: Value =
        serde_json::from_str(&decoded(&template(&wf, "fetch")["container"]["env"][0]["value"])).unwrap();
    assert_eq!(inputs[0]["value"], "https://data.example.org/tags/{{workflow.name}}.csv");
}

#[test]
fn the_api_check_refuses_what_argo_does_not_define() {
    let argo = ArgoApi::load();
    let mut wf = build("pvc", false);
    let name = "io.argoproj.workflow.v1alpha1.Workflow";
    wf["spec"]["serviceAccount"] = json!("x");
    assert_eq!(argo.check(&wf, name).unwrap_err(), "$.spec.serviceAccount: not a property of this object");
    let mut wf = build("pvc", false);
    wf["spec"]["parallelism"] = json!("five");
    assert!(argo.check(&wf, name).unwrap_err().starts_with("$.spec.parallelism: expected integer"));
    let mut wf = build("pvc", false);
    wf["spec"]["templates"][1]["container"]["volumeMounts"][0].as_object_mut().unwrap().remove("mountPath");
    assert!(argo.check(&wf, name).unwrap_err().contains("required property mountPath"));
}

#[test]
fn a_workflow_name_gives_back_its_job_id() {
    assert_eq!(workflow::job_id_of(&workflow::workflow_name(JOB)), Some(JOB));
    for other in ["argo-made-this", "portico-", "portico"] {
        assert_eq!(workflow::job_id_of(other), None, "{other}");
    }
}

/// Every recipe name OGDC allows gives a workflow whose metadata a cluster takes: a recipe id
/// that is not a label value (a trailing `.`, over 63 characters) becomes one, distinct for
/// distinct ids, the whole id kept in an annotation; the client's idempotency key arrives
/// base64-encoded, never as text.
#[test]
fn any_recipe_name_gives_labels_and_annotations_kubernetes_accepts() {
    let long = format!("Coastline {}", "x".repeat(90));
    let names = [
        "Seal Tags 2.",
        "A",
        "9 lives",
        "Seal..Tags",
        long.as_str(),
        &format!("{}.", &long[..99]),
        &format!("{}y", &long[..99]),
    ];
    let mut values = std::collections::BTreeSet::new();
    for name in names {
        let text = meta("pvc", false).replace("Seal Tags Demo", name);
        let recipe = Recipe::parse(text.as_bytes(), STEPS.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let key = "retry {{workflow.name}} \u{7f}";
        let wf = workflow::shell_workflow(JOB, &recipe, &settings(), Some(key), false);
        let problem = portico_local::kubernetes::metadata_problem("Workflow.argoproj.io", &wf["metadata"]);
        assert_eq!(problem, None, "{name}");
        let id = recipe.meta.id();
        assert_eq!(wf["metadata"]["annotations"][workflow::RECIPE_ANNOTATION], json!(id), "{name}: the whole id kept");
        let label = wf["metadata"]["labels"][workflow::RECIPE_LABEL].as_str().unwrap().to_owned();
        if portico_local::kubernetes::label_value_problem(&id).is_none() {
            assert_eq!(label, id, "a valid id is its own label");
        }
        assert!(values.insert(label), "{name}: two ids, one label");
        assert!(!wf.to_string().contains("{{workflow.name}}"), "the key is not text in the workflow");
        assert_eq!(decoded(&wf["metadata"]["annotations"][workflow::IDEMPOTENCY_ANNOTATION]), key);
    }
}
