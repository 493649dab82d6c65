//! Property tests of the recipe parser: a recipe generated with every field, written in any
//! YAML style, parses to exactly what was generated; steps come back as written; and hostile
//! YAML-ish text never panics, is refused as 400 `invalid_recipe`, and never comes back in the
//! message.

use proptest::prelude::*;

use super::*;
use portico_core::testing::config;

/// Submitted text no message may repeat. Not an identifier (`~`), so it is not echoed as a
/// field name either.
const SECRET: &str = "s3cr3t~v4lue";

/// How a scalar is written.
#[derive(Clone, Copy, Debug)]
enum Style {
    Plain,
    /// Double-quoted; `true` escapes every non-ASCII character (`\u00e9`, `\U0001f600`).
    Double(bool),
    Single,
}

fn style() -> impl Strategy<Value = Style> {
    prop_oneof![Just(Style::Plain), any::<bool>().prop_map(Style::Double), Just(Style::Single)]
}

/// YAML's printable characters (`c-printable`), less the byte order mark: what may appear
/// unescaped in a scalar.
fn printable(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && c != '\u{feff}'
}

/// Whether `s` reads back as itself written plain, in block context.
fn plain_ok(s: &str) -> bool {
    let reserved = ["null", "true", "false", "yes", "no", "on", "off", "y", "n"];
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !s.contains(" #")
        && s.chars().all(|c| c.is_ascii_alphanumeric() || " ._/-:?#=&%~+;@!$()*".contains(c))
        && !reserved.contains(&s.to_ascii_lowercase().as_str())
}

/// `s` as a YAML scalar in `style`; `flow` (inside `{...}` or `[...]`) always quotes.
fn scalar(s: &str, style: Style, flow: bool) -> String {
    match style {
        Style::Plain if !flow && plain_ok(s) => s.to_owned(),
        Style::Single if s.chars().all(printable) => format!("'{}'", s.replace('\'', "''")),
        Style::Double(escape_all) => double(s, escape_all),
        _ => double(s, false),
    }
}

fn double(s: &str, escape_all: bool) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii() && printable(c) => out.push(c),
            c if printable(c) && !escape_all => out.push(c),
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9 .-]{0,99}"
}

fn relative_path() -> impl Strategy<Value = String> {
    proptest::collection::vec("[A-Za-z0-9_-][A-Za-z0-9._-]{0,15}", 1..4).prop_map(|s| s.join("/"))
}

fn url() -> impl Strategy<Value = String> {
    (
        "[hH][tT][tT][pP][sS]?://",
        "[a-z0-9][a-z0-9.-]{0,20}(:[0-9]{1,5})?",
        "(/[A-Za-z0-9._~%!$&'()*+,;=:@-]{0,12}){0,3}",
        "(\\?[a-z0-9=&]{1,12})?",
    )
        .prop_map(|(scheme, host, path, query)| format!("{scheme}{host}{path}{query}"))
}

/// Free text as DataONE fields take it: 1-512 characters, no control characters.
fn text() -> impl Strategy<Value = String> {
    let char = any::<char>().prop_map(|c| if c.is_control() { '~' } else { c });
    proptest::collection::vec(char, 1..40).prop_map(|c| c.into_iter().collect())
}

/// `workflow.parallel` as written: absent, or `enabled`, `partition_size` if written, and
/// whether `partition_strategy: files` is.
type ParallelWritten = Option<(bool, Option<u32>, bool)>;

fn parallel() -> impl Strategy<Value = ParallelWritten> {
    proptest::option::of((any::<bool>(), proptest::option::of(1u32..), any::<bool>()))
}

#[derive(Clone, Debug)]
struct Generated {
    meta: Meta,
    /// How each part is written.
    sh_file_written: bool,
    parallel: ParallelWritten,
    batch_size_written: bool,
    output_written: bool,
    dataone_id: Option<String>,
}

/// A workflow, whether `sh_file` is written, `parallel` as written, whether `batch_size` is.
fn workflow() -> impl Strategy<Value = (Workflow, bool, ParallelWritten, bool)> {
    let shell = (proptest::option::of(relative_path()), parallel()).prop_map(|(sh_file, p)| {
        let parallel = to_parallel(&p);
        let written = sh_file.is_some();
        let sh_file = sh_file.unwrap_or_else(|| DEFAULT_SH_FILE.into());
        (Workflow::Shell { sh_file, parallel }, written, p, false)
    });
    let viz = (proptest::option::of(relative_path()), proptest::option::of(1u32..), parallel()).prop_map(
        |(config_file, batch_size, p)| {
            let parallel = to_parallel(&p);
            let written = batch_size.is_some();
            (
                Workflow::Visualization { config_file, batch_size: batch_size.unwrap_or(250), parallel },
                false,
                p,
                written,
            )
        },
    );
    prop_oneof![4 => shell, 1 => viz]
}

fn to_parallel(p: &ParallelWritten) -> Parallel {
    match p {
        None => Parallel { enabled: false, partition_size: 1 },
        Some((enabled, size, _)) => Parallel { enabled: *enabled, partition_size: size.unwrap_or(1) },
    }
}

fn input() -> impl Strategy<Value = InputParam> {
    prop_oneof![
        url().prop_map(|value| InputParam::Url { value }),
        (text(), proptest::option::of(text()))
            .prop_map(|(dataset_identifier, filename)| InputParam::Dataone { dataset_identifier, filename }),
    ]
}

fn meta() -> impl Strategy<Value = Generated> {
    (
        name(),
        workflow(),
        proptest::collection::vec(input(), 1..5),
        proptest::option::of(prop::sample::select(vec![Output::Pvc, Output::Temporary, Output::Dataone])),
        proptest::option::of(text()),
    )
        .prop_map(|(name, (workflow, sh_file_written, parallel, batch_size_written), inputs, output, id)| {
            let dataone_id = id.filter(|_| output == Some(Output::Dataone));
            Generated {
                meta: Meta { name, workflow, inputs, output: output.unwrap_or(Output::Pvc) },
                sh_file_written,
                parallel,
                batch_size_written,
                output_written: output.is_some(),
                dataone_id,
            }
        })
}

/// How the document is laid out.
#[derive(Clone, Debug)]
struct Layout {
    indent: usize,
    /// `workflow`, `input.params` items and `output` as flow mappings.
    flow: (bool, bool, bool),
    /// Top-level keys in this order (a permutation of 0..4).
    order: Vec<usize>,
    /// A comment line, a blank line or nothing after each top-level entry.
    between: Vec<u8>,
    /// List items indented under their key, or level with it.
    indent_items: bool,
    styles: Vec<Style>,
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        prop::sample::select(vec![2usize, 3, 4]),
        any::<(bool, bool, bool)>(),
        Just(vec![0usize, 1, 2, 3]).prop_shuffle(),
        proptest::collection::vec(0u8..3, 4),
        any::<bool>(),
        proptest::collection::vec(style(), 64),
    )
        .prop_map(|(indent, flow, order, between, indent_items, styles)| Layout {
            indent,
            flow,
            order,
            between,
            indent_items,
            styles,
        })
}

/// `g` written as `meta.yml` in `layout`.
fn render(g: &Generated, layout: &Layout) -> String {
    let mut styles = layout.styles.iter().copied().cycle();
    let mut s = |text: &str, flow: bool| scalar(text, styles.next().unwrap(), flow);
    let pad = |level: usize| " ".repeat(layout.indent * level);
    let meta = &g.meta;

    let name = format!("name: {}\n", s(&meta.name, false));

    let (kind, mut fields): (&str, Vec<(String, String)>) = match &meta.workflow {
        Workflow::Shell { sh_file, .. } => {
            let mut f = Vec::new();
            if g.sh_file_written {
                f.push(("sh_file".into(), s(sh_file, layout.flow.0)));
            }
            ("shell", f)
        }
        Workflow::Visualization { config_file, batch_size, .. } => {
            let mut f = Vec::new();
            if let Some(c) = config_file {
                f.push(("config_file".into(), s(c, layout.flow.0)));
            }
            if g.batch_size_written {
                f.push(("batch_size".into(), batch_size.to_string()));
            }
            ("visualization", f)
        }
    };
    fields.insert(0, ("type".into(), kind.into()));
    let parallel = g.parallel.map(|(enabled, size, strategy)| {
        let mut p = vec![("enabled".to_owned(), enabled.to_string())];
        if strategy {
            p.push(("partition_strategy".into(), "files".into()));
        }
        if let Some(n) = size {
            p.push(("partition_size".into(), n.to_string()));
        }
        p
    });
    let workflow = if layout.flow.0 {
        let mut parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        if let Some(p) = &parallel {
            let inner: Vec<String> = p.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            parts.push(format!("parallel: {{{}}}", inner.join(", ")));
        }
        format!("workflow: {{{}}}\n", parts.join(", "))
    } else {
        let mut w = String::from("workflow:\n");
        for (k, v) in &fields {
            w.push_str(&format!("{}{k}: {v}\n", pad(1)));
        }
        if let Some(p) = &parallel {
            w.push_str(&format!("{}parallel:\n", pad(1)));
            for (k, v) in p {
                w.push_str(&format!("{}{k}: {v}\n", pad(2)));
            }
        }
        w
    };

    let mut input = format!("input:\n{}params:\n", pad(1));
    let item_pad = if layout.indent_items { pad(2) } else { pad(1) };
    for param in &meta.inputs {
        let flow = layout.flow.1;
        let fields: Vec<(&str, String)> = match param {
            InputParam::Url { value } => vec![("type", "url".into()), ("value", s(value, flow))],
            InputParam::Dataone { dataset_identifier, filename } => {
                let mut f = vec![("type", "dataone".into()), ("dataset_identifier", s(dataset_identifier, flow))];
                if let Some(name) = filename {
                    f.push(("filename", s(name, flow)));
                }
                f
            }
        };
        if flow {
            let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            input.push_str(&format!("{item_pad}- {{{}}}\n", parts.join(", ")));
        } else {
            for (i, (k, v)) in fields.iter().enumerate() {
                let lead = if i == 0 { "- " } else { "  " };
                input.push_str(&format!("{item_pad}{lead}{k}: {v}\n"));
            }
        }
    }

    let output = if g.output_written {
        let kind = match meta.output {
            Output::Pvc => "pvc",
            Output::Temporary => "temporary",
            Output::Dataone => "dataone",
        };
        let id = g.dataone_id.as_ref().map(|id| ("dataone_id", s(id, layout.flow.2)));
        if layout.flow.2 {
            let id = id.map(|(k, v)| format!(", {k}: {v}")).unwrap_or_default();
            format!("output: {{type: {kind}{id}}}\n")
        } else {
            let id = id.map(|(k, v)| format!("{}{k}: {v}\n", pad(1))).unwrap_or_default();
            format!("output:\n{}type: {kind}\n{id}", pad(1))
        }
    } else {
        String::new()
    };

    let entries = [name, workflow, input, output];
    let mut doc = String::new();
    for (i, &at) in layout.order.iter().enumerate() {
        doc.push_str(&entries[at]);
        match layout.between[i] {
            0 => doc.push_str("# a comment: [not, yaml] {x}\n"),
            1 => doc.push('\n'),
            _ => {}
        }
    }
    doc
}

/// One line of a step file.
#[derive(Clone, Debug)]
enum Line {
    Step(String),
    Blank(String),
    Comment(String),
}

fn line() -> impl Strategy<Value = Line> {
    let char = any::<char>().prop_map(|c| if c.is_control() && c != '\t' { '~' } else { c });
    let step = proptest::collection::vec(char, 1..60).prop_map(|c| c.into_iter().collect::<String>()).prop_filter(
        "a step is neither blank nor a comment",
        |s| {
            let body = s.trim_start();
            !body.is_empty() && !body.starts_with('#')
        },
    );
    prop_oneof![
        6 => step.prop_map(Line::Step),
        1 => "[ \t\u{0b}\u{0c}\u{3000}\u{a0}]{0,4}".prop_map(Line::Blank),
        // A comment may hold anything but a line break, control characters included.
        1 => ("[ \t]{0,3}", "[^\n]{0,20}").prop_map(|(lead, rest)| Line::Comment(format!("{lead}#{rest}"))),
    ]
}

/// YAML-ish text: the recipe's own keys and YAML's syntax, pieces of [`SECRET`] among them.
fn yamlish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "name: ",
            "workflow:",
            "input:",
            "params:",
            "output:",
            "type: ",
            "shell",
            "url",
            "dataone",
            "value: ",
            "sh_file: ",
            "parallel:",
            "enabled: ",
            "partition_size: ",
            "dataset_identifier: ",
            "- ",
            "\n",
            "\n  ",
            "\n    ",
            "  ",
            "{",
            "}",
            "[",
            "]",
            ", ",
            ": ",
            "'",
            "\"",
            "\\",
            "#",
            "&a ",
            "*a",
            "!",
            "!!str ",
            "!!binary ",
            "!<tag:yaml.org,2002:str> ",
            "? ",
            "|\n",
            ">-\n",
            "---\n",
            "...\n",
            "%YAML 1.2\n",
            "<<: ",
            "~",
            "null",
            "true",
            "0x1F",
            "-.inf",
            "\t",
            "\r\n",
            "\u{feff}",
            "\u{0}",
        ])
        .prop_map(str::to_owned),
        Just(SECRET.to_owned()),
        Just(format!("!{SECRET} ")),
        Just(format!("&{SECRET} ")),
        Just(format!("*{SECRET}")),
        Just(format!("\"{SECRET}\\q\"")),
        any::<String>(),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}

/// The ways one edit turns a valid recipe into a suspect one.
#[derive(Clone, Debug)]
enum Edit {
    Insert(String),
    ReplaceLine(String),
    DeleteRange(usize),
    DuplicateLine,
}

fn edit() -> impl Strategy<Value = Edit> {
    let hostile = prop::sample::select(vec![
        SECRET.to_owned(),
        format!("{SECRET}: 1"),
        format!("name: {SECRET}"),
        format!("  - {{type: url, value: {SECRET}}}"),
        format!("!{SECRET} x"),
        format!("&{SECRET} [*{SECRET}]"),
        format!("{{{SECRET}: [{SECRET}]}}"),
        format!("'{SECRET}"),
        format!("\"{SECRET}\\x\""),
        format!("  partition_size: {SECRET}"),
        format!("output: {{type: {SECRET}}}"),
        format!("- {SECRET}"),
        format!("? {SECRET}\n: {SECRET}"),
    ]);
    prop_oneof![
        hostile.clone().prop_map(Edit::Insert),
        hostile.prop_map(Edit::ReplaceLine),
        (1usize..30).prop_map(Edit::DeleteRange),
        Just(Edit::DuplicateLine),
    ]
}

fn apply(text: &str, edit: &Edit, at: prop::sample::Index) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
    let pos = boundaries[at.index(boundaries.len())];
    match edit {
        Edit::Insert(s) => format!("{}{s}{}", &text[..pos], &text[pos..]),
        Edit::ReplaceLine(s) => {
            let n = at.index(lines.len());
            let mut out: Vec<&str> = lines.clone();
            out[n] = s;
            out.join("\n")
        }
        Edit::DeleteRange(len) => {
            let end = boundaries.iter().copied().find(|&b| b >= pos + len).unwrap_or(text.len());
            format!("{}{}", &text[..pos], &text[end..])
        }
        Edit::DuplicateLine => {
            let n = at.index(lines.len());
            let mut out: Vec<&str> = lines.clone();
            out.insert(n, lines[n]);
            out.join("\n")
        }
    }
}

/// A refused `meta.yml`: 400 `invalid_recipe`, and no piece of [`SECRET`] in what is said.
fn refused_safely(e: RecipeError) -> Result<(), TestCaseError> {
    let message = e.to_string();
    for piece in ["s3cr3t", "v4lue"] {
        prop_assert!(!message.contains(piece), "{message}");
    }
    let error = portico_core::Error::from(e);
    prop_assert_eq!(
        (error.status(), error.code()),
        (http::StatusCode::BAD_REQUEST, portico_core::codes::INVALID_RECIPE)
    );
    prop_assert!(!error.body().to_string().contains("s3cr3t"));
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn a_generated_recipe_parses_to_what_was_generated(g in meta(), layout in layout()) {
        let text = render(&g, &layout);
        let parsed = Meta::parse(text.as_bytes());
        prop_assert_eq!(parsed.as_ref(), Ok(&g.meta), "{}", text);
        let supported = matches!(g.meta.workflow, Workflow::Shell { .. }) && g.meta.output != Output::Dataone;
        prop_assert_eq!(g.meta.validate().is_ok(), supported);
        if supported {
            let recipe = Recipe::parse(text.as_bytes(), b"echo hi\n").unwrap();
            prop_assert_eq!(recipe.meta, g.meta);
        }
    }

    #[test]
    fn steps_come_back_as_written(lines in proptest::collection::vec(line(), 1..40), crlf in any::<bool>(), trailing in any::<bool>()) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let written: Vec<&str> = lines.iter().map(|l| match l {
            Line::Step(s) | Line::Blank(s) | Line::Comment(s) => s.as_str(),
        }).collect();
        let mut file = written.join(eol);
        if trailing {
            file.push_str(eol);
        }
        let want: Vec<String> = lines.iter().filter_map(|l| match l {
            Line::Step(s) => Some(s.clone()),
            _ => None,
        }).collect();
        match parse_steps(file.as_bytes()) {
            Ok(steps) => prop_assert_eq!(steps, want),
            Err(e) => prop_assert!(want.is_empty() && e == RecipeError::NoSteps, "{e}"),
        }
    }

    #[test]
    fn any_step_file_is_read_or_refused_by_line_number(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            yamlish().prop_map(String::into_bytes),
        ],
    ) {
        match parse_steps(&bytes) {
            Ok(steps) => {
                prop_assert!(!steps.is_empty() && steps.len() <= MAX_STEPS);
                for s in &steps {
                    prop_assert!(!s.trim_start().is_empty() && !s.trim_start().starts_with('#'));
                    prop_assert!(!s.contains('\n') && s.chars().all(|c| !c.is_control() || c == '\t'), "{s:?}");
                }
            }
            Err(e) => refused_safely(e)?,
        }
    }

    #[test]
    fn yamlish_text_never_panics_and_is_never_quoted(text in yamlish()) {
        if let Err(e) = Meta::parse(text.as_bytes()) {
            refused_safely(e)?;
        }
    }

    #[test]
    fn an_edited_recipe_is_read_or_refused_without_quoting_the_edit(
        g in meta(),
        layout in layout(),
        edit in edit(),
        at in any::<prop::sample::Index>(),
    ) {
        let text = apply(&render(&g, &layout), &edit, at);
        match Meta::parse(text.as_bytes()) {
            // Some edits leave a valid recipe (a comment, a deleted optional field).
            Ok(_) => {}
            Err(e) => refused_safely(e)?,
        }
    }

    #[test]
    fn any_bytes_are_refused_safely(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Err(e) = Recipe::parse(&bytes, &bytes) {
            refused_safely(e)?;
        }
    }
}
