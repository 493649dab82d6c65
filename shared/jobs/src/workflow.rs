//! An OGDC shell recipe as an Argo Workflow, built as OGDC builds it: a fetch step (url
//! inputs downloaded, DataONE packages resolved, inside the workflow), one step per line of the
//! step file run as `sh -c` with `/input_dir` and `/output_dir` chained on a shared volume, and
//! a publish step (`pvc`: a per-recipe sub-path of the volume; `temporary`: a zip artifact).
//! Parallel recipes fan the step chain out over partitions of the fetched files, at most
//! `parallelism` at a time.
//!
//! User text never reaches Argo as text: Argo substitutes `{{...}}` anywhere in a template,
//! so commands and inputs travel base64-encoded (an alphabet without braces) in environment
//! variables and are decoded by the container. Image, namespace, service account, volume and
//! lifetimes come from [`WorkflowSettings`], never from the recipe.

use base64::Engine as _;
use serde_json::{Value, json};

use super::recipe::{InputParam, Output, Recipe};

/// Deployment settings of generated workflows (configuration, never user input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowSettings {
    pub namespace: String,
    pub service_account: String,
    pub image: String,
    /// PersistentVolumeClaim holding runs (`runs/<workflow>/...`) and published outputs
    /// (`recipes/<recipe id>/`).
    pub volume_claim: String,
    /// Seconds a finished workflow is kept (OGDC: one day).
    pub ttl_seconds: u64,
    /// Seconds a workflow with a `temporary` output is kept, so its artifact stays
    /// downloadable (OGDC: seven days).
    pub ttl_temporary_seconds: u64,
    /// Most partitions of a parallel recipe running at once (OGDC: 5).
    pub parallelism: u32,
}

/// The Argo name of a job's workflow: fixed by the job id, so a retried submission finds the
/// workflow a first attempt created.
pub fn workflow_name(job_id: &str) -> String {
    let id: String = job_id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    format!("portico-{}", id.to_ascii_lowercase())
}

/// The job id a workflow name was made from ([`workflow_name`]'s inverse, for the lowercase
/// ids Portico makes); `None` for a name Portico did not make.
pub fn job_id_of(workflow: &str) -> Option<&str> {
    workflow.strip_prefix("portico-").filter(|id| !id.is_empty())
}

/// Labels and annotations Portico puts on a workflow.
pub const JOB_LABEL: &str = "portico.dev/job";
/// The recipe id as a label value ([`label_value`]); the whole id is in the annotation of the
/// same name.
pub const RECIPE_LABEL: &str = "portico.dev/recipe";
pub const RECIPE_ANNOTATION: &str = "portico.dev/recipe";
/// The client's `Idempotency-Key`, base64-encoded like all user text.
pub const IDEMPOTENCY_ANNOTATION: &str = "portico.dev/idempotency-key";

pub use portico_core::names::label_value;

/// Where the fetch step leaves its partition list (parallel recipes).
const PARTITIONS_FILE: &str = "/tmp/portico-partitions.json";

/// The fetch step's program, constant text (no user input, no `{{`): reads the inputs from
/// `PORTICO_INPUTS` (base64 JSON), downloads url inputs, resolves DataONE packages and their
/// file globs through DataONE's query API, and, with `PORTICO_PARTITION_SIZE` set, spreads
/// the files over `p-<n>/` directories and writes their list for the fan-out.
const FETCH_PROGRAM: &str = r#"import base64, fnmatch, json, os, shutil, urllib.parse, urllib.request
out = "/output_dir"
inputs = json.loads(base64.b64decode(os.environ["PORTICO_INPUTS"]))
def get(url, name):
    target = os.path.join(out, os.path.basename(name) or "input")
    with urllib.request.urlopen(url, timeout=600) as r, open(target, "wb") as f:
        shutil.copyfileobj(r, f)
for item in inputs:
    if item["type"] == "url":
        get(item["value"], urllib.parse.urlparse(item["value"]).path)
    else:
        query = urllib.parse.urlencode({"q": 'resourceMap:"%s"' % item["dataset_identifier"].replace('"', ''),
                                        "fl": "identifier,fileName", "rows": "10000", "wt": "json"})
        with urllib.request.urlopen("https://cn.dataone.org/cn/v2/query/solr/?" + query, timeout=600) as r:
            docs = json.load(r)["response"]["docs"]
        for doc in docs:
            name = doc.get("fileName") or doc["identifier"]
            if fnmatch.fnmatch(name, item.get("filename") or "*"):
                get("https://cn.dataone.org/cn/v2/resolve/" + urllib.parse.quote(doc["identifier"], safe=""), name)
size = int(os.environ.get("PORTICO_PARTITION_SIZE") or 0)
if size:
    files = sorted(f for f in os.listdir(out) if os.path.isfile(os.path.join(out, f)))
    parts = [files[i:i + size] for i in range(0, len(files), size)] or [[]]
    for n, part in enumerate(parts):
        os.makedirs(os.path.join(out, "p-%d" % n), exist_ok=True)
        for f in part:
            os.rename(os.path.join(out, f), os.path.join(out, "p-%d" % n, f))
    with open(os.environ["PORTICO_PARTITIONS_FILE"], "w") as f:
        json.dump([str(n) for n in range(len(parts))], f)
"#;

/// Runs one step: the command arrives base64-encoded, is decoded, and runs as `sh -c`.
const STEP_PROGRAM: &str = r#"exec sh -c "$(printf '%s' "$PORTICO_STEP" | base64 -d)""#;

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// The Workflow for `recipe`, submitted as job `job_id` (and `idempotency_key`, if any).
/// With `overwrite`, a `pvc` output replaces what the recipe published before; without, the
/// publish step fails if something is there (OGDC's `--overwrite`).
pub fn shell_workflow(
    job_id: &str,
    recipe: &Recipe,
    settings: &WorkflowSettings,
    idempotency_key: Option<&str>,
    overwrite: bool,
) -> Value {
    let name = workflow_name(job_id);
    let recipe_id = recipe.meta.id();
    let runs = format!("runs/{name}");
    let parallel = match &recipe.meta.workflow {
        super::recipe::Workflow::Shell { parallel, .. } if parallel.enabled => Some(parallel.partition_size),
        _ => None,
    };
    let inputs: Vec<Value> = recipe
        .meta
        .inputs
        .iter()
        .map(|i| match i {
            InputParam::Url { value } => json!({"type": "url", "value": value}),
            InputParam::Dataone { dataset_identifier, filename } => {
                json!({"type": "dataone", "dataset_identifier": dataset_identifier, "filename": filename})
            }
        })
        .collect();
    let fetched = format!("{runs}/step-0");
    let mut fetch_env = vec![env("PORTICO_INPUTS", &b64(&Value::Array(inputs).to_string()))];
    let mut fetch_outputs = json!({});
    if let Some(size) = parallel {
        fetch_env.push(env("PORTICO_PARTITION_SIZE", &size.to_string()));
        fetch_env.push(env("PORTICO_PARTITIONS_FILE", PARTITIONS_FILE));
        fetch_outputs = json!({"parameters": [{"name": "partitions", "valueFrom": {"path": PARTITIONS_FILE}}]});
    }
    let fetch = json!({
        "name": "fetch",
        "outputs": fetch_outputs,
        "container": container(settings, vec!["python3".into(), "-c".into(), FETCH_PROGRAM.into()], fetch_env,
                               vec![mount("/output_dir", &fetched)]),
    });
    let run_step = json!({
        "name": "run-step",
        "inputs": {"parameters": [{"name": "command"}, {"name": "from"}, {"name": "to"}]},
        "container": container(
            settings,
            vec!["sh".into(), "-c".into(), STEP_PROGRAM.into()],
            vec![env("PORTICO_STEP", "{{inputs.parameters.command}}")],
            vec![mount("/input_dir", "{{inputs.parameters.from}}"), mount("/output_dir", "{{inputs.parameters.to}}")],
        ),
    });
    // The chain of steps: step 1 reads `first`, step N writes `base/step-N`.
    let chain = |first: &str, base: &str| -> Vec<Value> {
        recipe
            .steps
            .iter()
            .enumerate()
            .map(|(n, command)| {
                let from = if n == 0 { first.to_owned() } else { format!("{base}/step-{n}") };
                let args = json!({"parameters": [
                    {"name": "command", "value": b64(command)},
                    {"name": "from", "value": from},
                    {"name": "to", "value": format!("{base}/step-{}", n + 1)},
                ]});
                json!([{"name": format!("step-{}", n + 1), "template": "run-step", "arguments": args}])
            })
            .collect()
    };
    let last = recipe.steps.len();
    let mut templates = vec![fetch, run_step];
    let mut main_steps = vec![json!([{"name": "fetch", "template": "fetch"}])];
    let results = match parallel {
        None => {
            main_steps.extend(chain(&fetched, &runs));
            format!("{runs}/step-{last}")
        }
        Some(_) => {
            // Fetched files sit in `step-0/p-<n>/`; each partition runs the chain from there
            // under `p-<n>/`, so its results land in `p-<n>/step-N/`. The partition number is
            // Portico's (`{{item}}`), never user text.
            let partition = "{{inputs.parameters.partition}}";
            templates.push(json!({
                "name": "partition",
                "inputs": {"parameters": [{"name": "partition"}]},
                "steps": chain(&format!("{fetched}/p-{partition}"), &format!("{runs}/p-{partition}")),
            }));
            main_steps.push(json!([{
                "name": "partitions", "template": "partition",
                "arguments": {"parameters": [{"name": "partition", "value": "{{item}}"}]},
                "withParam": "{{steps.fetch.outputs.parameters.partitions}}",
            }]));
            runs.clone()
        }
    };
    let merge = Merge { parallel: parallel.is_some(), last, overwrite };
    let (publish, ttl) = publish(settings, recipe.meta.output, &recipe_id, &results, merge);
    templates.push(publish);
    main_steps.push(json!([{"name": "publish", "template": "publish"}]));
    let mut main = json!({"name": "main", "steps": main_steps});
    if parallel.is_some() {
        main["parallelism"] = json!(settings.parallelism);
    }
    templates.insert(0, main);

    let mut annotations = serde_json::Map::new();
    annotations.insert(RECIPE_ANNOTATION.into(), json!(recipe_id));
    if let Some(key) = idempotency_key {
        annotations.insert(IDEMPOTENCY_ANNOTATION.into(), json!(b64(key)));
    }
    let mut spec = json!({
        "entrypoint": "main",
        "serviceAccountName": settings.service_account,
        "ttlStrategy": {"secondsAfterCompletion": ttl},
        "volumes": [{"name": "work", "persistentVolumeClaim": {"claimName": settings.volume_claim}}],
        "templates": templates,
    });
    if recipe.meta.output == Output::Temporary {
        spec["artifactGC"] = json!({"strategy": "OnWorkflowDeletion"});
    }
    json!({
        "metadata": {
            "name": name,
            "namespace": settings.namespace,
            "labels": {JOB_LABEL: job_id, RECIPE_LABEL: label_value(&recipe_id)},
            "annotations": annotations,
        },
        "spec": spec,
    })
}

/// How the publish step gathers results.
struct Merge {
    /// Results are `p-<n>/step-<last>/` per partition.
    parallel: bool,
    last: usize,
    /// Replace an earlier publication (else refuse to publish over one).
    overwrite: bool,
}

/// Publishing over an earlier `pvc` output: cleared with `overwrite`, else refused.
const CLEAR_OUTPUT: &str = "find /output_dir -mindepth 1 -delete && ";
const REFUSE_OVER_OUTPUT: &str = "if [ -n \"$(ls -A /output_dir)\" ]; then echo 'this recipe has published before; submit with overwrite to replace it' >&2; exit 1; fi; ";

/// The publish template and the workflow's lifetime for `output`.
fn publish(settings: &WorkflowSettings, output: Output, recipe_id: &str, results: &str, merge: Merge) -> (Value, u64) {
    let Merge { parallel, last, overwrite } = merge;
    // Parallel results are `p-<n>/step-N/` under the run; merged on publication.
    let gather = if parallel {
        format!("for d in /input_dir/p-*/step-{last}; do cp -R \"$d/.\" /output_dir/; done")
    } else {
        "cp -R /input_dir/. /output_dir/".to_owned()
    };
    match output {
        Output::Temporary => {
            let template = json!({
                "name": "publish",
                "container": container(settings, vec!["sh".into(), "-c".into(), format!("mkdir -p /output_dir && {gather}")],
                                       vec![], vec![mount("/input_dir", results)]),
                "outputs": {"artifacts": [{"name": "output", "path": "/output_dir", "archive": {"zip": {}}}]},
            });
            (template, settings.ttl_temporary_seconds)
        }
        // Dataone outputs are refused by `Meta::validate` before a workflow is built.
        Output::Pvc | Output::Dataone => {
            let guard = if overwrite { CLEAR_OUTPUT } else { REFUSE_OVER_OUTPUT };
            let template = json!({
                "name": "publish",
                "container": container(settings, vec!["sh".into(), "-c".into(), format!("{guard}{gather}")], vec![],
                                       vec![mount("/input_dir", results), mount("/output_dir", &format!("recipes/{recipe_id}"))]),
            });
            (template, settings.ttl_seconds)
        }
    }
}

fn env(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

fn mount(path: &str, sub_path: &str) -> Value {
    json!({"name": "work", "mountPath": path, "subPath": sub_path})
}

fn container(settings: &WorkflowSettings, command: Vec<String>, env: Vec<Value>, mounts: Vec<Value>) -> Value {
    json!({"image": settings.image, "command": command, "env": env, "volumeMounts": mounts})
}
