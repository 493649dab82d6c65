//! Recipes written for these tests (not copied from OGDC's recipe repository, which has no
//! licence). `s3cr3t-value` marks submitted text that must never reach a message.

use super::*;

const SECRET: &str = "s3cr3t-value";

const META: &str = "\
# A test recipe of Portico's own.
name: Coastline Extract 2.1
workflow:
  type: shell
  sh_file: steps/clip.sh
  parallel:
    enabled: true
    partition_strategy: files
    partition_size: 2
input:
  params:
    - type: url
      value: https://data.example.org/coast/part-1.gpkg
    - type: dataone
      dataset_identifier: resource_map_urn:uuid:00000000-1111-2222-3333-444444444444
      filename: \"*.tif\"
output:
  type: temporary
";

const STEPS: &str = "\
# Inputs are already in /input_dir.
mkdir -p /output_dir/clipped

ogr2ogr -clipsrc -50 60 -20 85 /output_dir/clipped/coast.gpkg /input_dir/part-1.gpkg
   # an indented comment
\t
zip -r /output_dir/coast.zip /output_dir/clipped  # a trailing comment stays
";

const MINIMAL: &str = "name: tiny\nworkflow: {type: shell}\ninput: {params: [{type: url, value: 'http://h/x'}]}\n";

fn meta_err(text: &str) -> RecipeError {
    Meta::parse(text.as_bytes()).unwrap_err()
}

/// META with `from` replaced by `to`, which must change it.
fn edited(from: &str, to: &str) -> String {
    assert!(META.contains(from), "{from}");
    META.replacen(from, to, 1)
}

#[test]
fn a_valid_recipe_parses_with_every_field() {
    let recipe = Recipe::parse(META.as_bytes(), STEPS.as_bytes()).unwrap();
    assert_eq!(recipe.meta.name, "Coastline Extract 2.1");
    assert_eq!(recipe.meta.id(), "coastline-extract-2.1");
    let parallel = Parallel { enabled: true, partition_size: 2 };
    assert_eq!(recipe.meta.workflow, Workflow::Shell { sh_file: "steps/clip.sh".into(), parallel });
    assert_eq!(
        recipe.meta.inputs,
        vec![
            InputParam::Url { value: "https://data.example.org/coast/part-1.gpkg".into() },
            InputParam::Dataone {
                dataset_identifier: "resource_map_urn:uuid:00000000-1111-2222-3333-444444444444".into(),
                filename: Some("*.tif".into()),
            },
        ]
    );
    assert_eq!(recipe.meta.output, Output::Temporary);
    assert_eq!(
        recipe.steps,
        vec![
            "mkdir -p /output_dir/clipped",
            "ogr2ogr -clipsrc -50 60 -20 85 /output_dir/clipped/coast.gpkg /input_dir/part-1.gpkg",
            "zip -r /output_dir/coast.zip /output_dir/clipped  # a trailing comment stays",
        ]
    );
}

#[test]
fn absent_optional_fields_take_ogdcs_defaults() {
    let meta = Meta::parse(MINIMAL.as_bytes()).unwrap();
    let parallel = Parallel { enabled: false, partition_size: 1 };
    assert_eq!(meta.workflow, Workflow::Shell { sh_file: DEFAULT_SH_FILE.into(), parallel });
    assert_eq!(meta.output, Output::Pvc);
    let parallel = MINIMAL.replace("{type: shell}", "{type: shell, parallel: {enabled: yes}}");
    let Workflow::Shell { parallel, .. } = Meta::parse(parallel.as_bytes()).unwrap().workflow else { panic!() };
    assert_eq!(parallel, Parallel { enabled: true, partition_size: 1 });
}

#[test]
fn the_recipe_id_is_the_name_lowercased_with_dashes_for_spaces() {
    assert_eq!(recipe_id("Seal Tags"), "seal-tags");
    assert_eq!(recipe_id("ABC  1.0-x"), "abc--1.0-x");
    assert_eq!(recipe_id("plain"), "plain");
}

#[test]
fn steps_skip_blank_and_comment_lines_and_accept_crlf() {
    assert_eq!(parse_steps(b"echo a\r\n\r\n# c\r\n  echo b\r\n").unwrap(), vec!["echo a", "  echo b"]);
    assert_eq!(parse_steps(b"echo last-line-without-newline").unwrap(), vec!["echo last-line-without-newline"]);
    assert_eq!(parse_steps(b"").unwrap_err(), RecipeError::NoSteps);
    assert_eq!(parse_steps(b"# only comments\n\n   \n\t# more\n").unwrap_err(), RecipeError::NoSteps);
    let e = parse_steps(b"echo a\n\necho \x1b[31m s3cr3t-value\n").unwrap_err();
    assert_eq!(e, RecipeError::StepLine { line: 3, expected: "must not contain control characters" });
    assert_eq!(parse_steps(b"echo \xff\n").unwrap_err(), RecipeError::StepsNotUtf8);
}

#[test]
fn limits_are_enforced() {
    let big = format!("{MINIMAL}# {}\n", "x".repeat(MAX_META_BYTES));
    assert_eq!(meta_err(&big), RecipeError::MetaTooLarge { limit: MAX_META_BYTES });
    let steps = "echo x\n".repeat(MAX_STEPS);
    assert_eq!(parse_steps(steps.as_bytes()).unwrap().len(), MAX_STEPS);
    let steps = format!("{steps}echo one-too-many\n");
    assert_eq!(parse_steps(steps.as_bytes()).unwrap_err(), RecipeError::TooManySteps { limit: MAX_STEPS });
    let long = format!("echo {}\n", "y".repeat(MAX_STEPS_BYTES));
    assert_eq!(parse_steps(long.as_bytes()).unwrap_err(), RecipeError::StepsTooLarge { limit: MAX_STEPS_BYTES });
    let params = "{type: url, value: 'https://h/x'}, ".repeat(MAX_INPUTS + 1);
    let many = MINIMAL.replace("{type: url, value: 'http://h/x'}", &params);
    assert!(meta_err(&many).to_string().contains("too many inputs"));
    let name = format!("name: {}", "n".repeat(MAX_NAME_CHARS + 1));
    assert!(meta_err(&MINIMAL.replace("name: tiny", &name)).to_string().contains("field 'name'"));
    assert_eq!(Meta::parse(b"name: \xff\n").unwrap_err(), RecipeError::MetaNotUtf8);
    assert_eq!(RecipeError::MetaNotUtf8.to_string(), "meta.yml is not UTF-8 text");
}

#[test]
fn unknown_keys_are_refused_at_every_level() {
    let cases = [
        (format!("{META}extra: {SECRET}\n"), "unknown field `extra`"),
        (edited("  type: shell\n", "  type: shell\n  shell_file: x.sh\n"), "unknown field `shell_file`"),
        (edited("    enabled: true\n", "    enabled: true\n    workers: 9\n"), "unknown field `workers`"),
        (edited("input:\n", "input:\n  extra: 1\n"), "unknown field `extra`"),
        (edited("    - type: url\n", "    - type: url\n      headers: {}\n"), "unknown field `headers`"),
        (edited("  type: temporary\n", "  type: temporary\n  path: /x\n"), "unknown field `path`"),
    ];
    for (text, want) in cases {
        let message = meta_err(&text).to_string();
        assert!(message.contains(want), "{message}");
        assert!(message.contains("line "), "{message}");
    }
}

#[test]
fn messages_say_where_and_what_was_expected() {
    let cases = [
        (
            format!("{META}extra: {SECRET}\n"),
            "meta.yml: line 19, column 1: unknown field `extra`, expected one of `name`, `workflow`, `input`, `output`",
        ),
        (
            edited("    enabled: true\n", "    enabled: true\n    workers: 9\n"),
            "meta.yml: field 'workflow.parallel' (line 8, column 5): unknown field `workers`, expected one of `enabled`, `partition_strategy`, `partition_size`",
        ),
        (
            edited("enabled: true", &format!("enabled: {SECRET}")),
            "meta.yml: field 'workflow.parallel.enabled' (line 7, column 14): expected a boolean (true or false)",
        ),
        (
            edited("- type: url", &format!("- type: {SECRET}")),
            "meta.yml: field 'input.params[0].type' (line 12, column 13): unknown value, expected `url` or `dataone`",
        ),
        (
            edited("workflow:\n  type: shell\n", &format!("workflow: [shell, {SECRET}]\n")),
            "meta.yml: field 'workflow' (line 3, column 11): expected a mapping",
        ),
        ("name: x\n".into(), "meta.yml: line 1, column 1: missing field `workflow`"),
    ];
    for (text, want) in cases {
        assert_eq!(meta_err(&text).to_string(), want);
    }
}

#[test]
fn bad_names_are_refused() {
    for name in ["bad/name", "'..'", "' lead'", "-dash", "'s3cr3t-value!'", "''", "naïve"] {
        let text = MINIMAL.replace("name: tiny", &format!("name: {name}"));
        let e = meta_err(&text);
        assert!(matches!(&e, RecipeError::Field { field, .. } if field == "name"), "{name}: {e}");
    }
    assert!(Meta::parse(MINIMAL.replace("tiny", "'1 A.b-c'").as_bytes()).is_ok());
}

#[test]
fn inputs_are_required_and_typed() {
    let none = MINIMAL.replace("[{type: url, value: 'http://h/x'}]", "[]");
    let want = RecipeError::Field { field: "input.params".into(), expected: "must list at least one input" };
    assert_eq!(meta_err(&none), want);
    let missing = "name: tiny\nworkflow: {type: shell}\n";
    assert!(meta_err(missing).to_string().contains("missing field `input`"), "{}", meta_err(missing));
    for kind in [SECRET, "pvc_mount", "file_system"] {
        let message = meta_err(&edited("- type: url", &format!("- type: {kind}"))).to_string();
        assert!(message.contains("field 'input.params[0].type'"), "{message}");
        assert!(message.contains("expected `url` or `dataone`"), "{message}");
        assert!(!message.contains(SECRET), "{message}");
    }
    let cases = [
        ("value: https://data.example.org/coast/part-1.gpkg", "filename: x", "input.params[0].filename"),
        (
            "value: https://data.example.org/coast/part-1.gpkg",
            "dataset_identifier: x",
            "input.params[0].dataset_identifier",
        ),
        ("value: https://data.example.org/coast/part-1.gpkg", "", "input.params[0].value"),
        ("filename: \"*.tif\"", "filename: \"*.tif\"\n      value: https://h/x", "input.params[1].value"),
        ("dataset_identifier: resource_map", "filename_not: x\n      x_: resource_map", "input.params[1]"),
    ];
    for (from, to, want) in cases {
        let message = meta_err(&edited(from, to)).to_string();
        assert!(message.contains(want), "{to}: {message}");
    }
}

#[test]
fn url_inputs_must_be_http_urls_with_a_host() {
    for bad in [
        "ftp://s3cr3t-value/x",
        "file:///etc/s3cr3t-value",
        "https://",
        "https:///s3cr3t-value",
        "'https://h/a s3cr3t-value'",
        "s3cr3t-value",
        "'http://:80/s3cr3t-value'",
    ] {
        let e = meta_err(&MINIMAL.replace("'http://h/x'", bad));
        assert!(matches!(&e, RecipeError::Field { field, .. } if field == "input.params[0].value"), "{bad}: {e}");
        assert!(!e.to_string().contains(SECRET), "{e}");
    }
    for good in ["HTTPS://Example.org", "http://10.0.0.1:8080/a?b=c#d", "https://user@h/x"] {
        assert!(Meta::parse(MINIMAL.replace("'http://h/x'", good).as_bytes()).is_ok(), "{good}");
    }
    let long = format!("https://h/{}", "a".repeat(MAX_URL_CHARS));
    assert!(meta_err(&MINIMAL.replace("http://h/x", &long)).to_string().contains("at most 2048"));
}

#[test]
fn workflow_fields_are_checked() {
    let cases = [
        ("sh_file: steps/clip.sh", "sh_file: ../s3cr3t-value.sh", "workflow.sh_file"),
        ("sh_file: steps/clip.sh", "sh_file: /etc/s3cr3t-value", "workflow.sh_file"),
        ("sh_file: steps/clip.sh", "sh_file: .s3cr3t-value", "workflow.sh_file"),
        ("sh_file: steps/clip.sh", "config_file: c.json", "workflow.config_file"),
        ("sh_file: steps/clip.sh", "batch_size: 3", "workflow.batch_size"),
        ("partition_size: 2", "partition_size: 0", "workflow.parallel.partition_size"),
        ("partition_size: 2", "partition_size: s3cr3t-value", "workflow.parallel.partition_size"),
        ("partition_strategy: files", "partition_strategy: s3cr3t-value", "workflow.parallel.partition_strategy"),
        ("enabled: true", "enabled: s3cr3t-value", "workflow.parallel.enabled"),
        ("type: shell", "type: s3cr3t-value", "workflow.type"),
        ("  type: temporary", "  type: s3cr3t-value", "output.type"),
        ("  type: temporary", "  type: pvc\n  dataone_id: s3cr3t-value", "output.dataone_id"),
    ];
    for (from, to, want) in cases {
        let message = meta_err(&edited(from, to)).to_string();
        assert!(message.contains(&format!("field '{want}'")), "{to}: {message}");
        assert!(!message.contains(SECRET), "{to}: {message}");
    }
}

#[test]
fn visualization_recipes_parse_but_are_not_supported() {
    let viz = MINIMAL.replace("{type: shell}", "{type: visualization, config_file: config.json, batch_size: 10}");
    let meta = Meta::parse(viz.as_bytes()).unwrap();
    assert!(matches!(meta.workflow, Workflow::Visualization { batch_size: 10, .. }));
    let e = meta.validate().unwrap_err();
    assert_eq!(e, RecipeError::VisualizationUnsupported);
    assert!(e.to_string().contains("visualization recipes are not supported"));
    assert_eq!(Recipe::parse(viz.as_bytes(), b"echo x\n").unwrap_err(), e);
    let sh = MINIMAL.replace("{type: shell}", "{type: visualization, sh_file: a.sh}");
    assert!(meta_err(&sh).to_string().contains("field 'workflow.sh_file'"));
}

#[test]
fn dataone_outputs_parse_but_are_not_implemented() {
    let text = format!("{MINIMAL}output: {{type: dataone, dataone_id: TODO}}\n");
    let meta = Meta::parse(text.as_bytes()).unwrap();
    assert_eq!(meta.output, Output::Dataone);
    assert_eq!(meta.validate().unwrap_err(), RecipeError::DataoneOutputUnsupported);
    assert!(RecipeError::DataoneOutputUnsupported.to_string().contains("not implemented"));
}

#[test]
fn wrong_shapes_name_the_field_and_never_the_value() {
    let cases = [
        ("workflow:\n  type: shell\n", "workflow: [shell, s3cr3t-value]\n", "field 'workflow'"),
        ("name: Coastline Extract 2.1", "name: [s3cr3t-value]", "field 'name'"),
        ("name: Coastline Extract 2.1", "name: {s3cr3t-value: 1}", "field 'name'"),
        ("  params:\n", "  params: s3cr3t-value\n  old:\n", "field 'input.params'"),
        ("name: Coastline Extract 2.1", "name: a\nname: s3cr3t-value", "duplicate key `name`"),
        ("name: Coastline Extract 2.1", "name: \"s3cr3t-value", "line"),
        ("name: Coastline Extract 2.1", "name: !!binary s3cr3t-value", "line 2"),
        ("name: Coastline Extract 2.1", "name: !custom s3cr3t-value", "line 2"),
        ("name: Coastline Extract 2.1", "name: &a s3cr3t-value\nalias: *a", "unknown field `alias`"),
    ];
    for (from, to, want) in cases {
        let e = meta_err(&edited(from, to));
        let message = e.to_string();
        assert!(message.contains(want), "{to}: {message}");
        assert!(!message.contains(SECRET), "{to}: {message}");
        let body = portico_core::Error::from(e).body().to_string();
        assert!(!body.contains(SECRET), "{body}");
    }
    assert!(meta_err("- s3cr3t-value\n").to_string().starts_with("meta.yml"));
    assert!(!meta_err(&format!("{META}---\nname: {SECRET}\n")).to_string().contains(SECRET));
}

#[test]
fn recipe_errors_are_400_invalid_recipe() {
    let e = portico_core::Error::from(RecipeError::NoSteps);
    assert_eq!((e.status(), e.code()), (http::StatusCode::BAD_REQUEST, portico_core::codes::INVALID_RECIPE));
    assert_eq!(e.to_string(), RecipeError::NoSteps.to_string());
}
