//! Unit tests of the job record and its view.

use super::*;
use serde_json::json;

fn job(output: Option<Output>) -> Job {
    Job {
        id: "j".into(),
        owner: "ada".into(),
        group: "jobs".into(),
        recipe: "reproject".into(),
        workflow: "portico-j".into(),
        phase: Phase::Pending,
        message: String::new(),
        progress: String::new(),
        created_at: 1_700_000_000,
        started_at: None,
        finished_at: None,
        output,
        resources: Resources::default(),
    }
}

#[test]
fn records_read_back_as_written() {
    for output in [None, Some(Output::Pvc), Some(Output::Temporary)] {
        let written = job(output);
        assert_eq!(job_from(&job_item(&written, 60)).unwrap(), written);
    }
}

#[test]
fn the_view_tells_a_templates_output_from_a_recipes() {
    let config = Config::default();
    let view = |output| serde_json::to_value(job(output).view(&config)).unwrap();
    assert_eq!(view(None)["kind"], "template");
    assert_eq!(view(None)["output"]["type"], "template");
    assert_eq!(view(Some(Output::Temporary))["output"], json!({"type": "temporary"}));
    let pvc = view(Some(Output::Pvc));
    assert_eq!((&pvc["kind"], &pvc["output"]["path"]), (&json!("recipe"), &json!("recipes/reproject")));
    assert_eq!(pvc["created_at"], "2023-11-14T22:13:20Z");
}
