//! Property tests of the transcoder over OpenCue's real descriptors: a message generated from
//! its descriptor (every field kind, either spelling, enums by name or number, 64-bit integers
//! as numbers or strings) goes JSON → protobuf (on the wire) → JSON and comes back as
//! protojson writes it, and again unchanged; unknown fields are dropped and listed, or refused
//! by name; any JSON put anywhere in a valid request is read or refused as a 400 naming the
//! field, never quoting a value, never a panic.

use base64::Engine as _;
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::{Config, RngSeed};
use prost::Message as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use super::*;
use crate::descriptors::Descriptors;

/// `cases` cases from a fixed seed (CI repeats itself); `PROPTEST_CASES` and
/// `PROPTEST_RNG_SEED` override both for a longer run (docs/src/proof.md).
fn config(cases: u32) -> Config {
    let from_env = Config::default();
    let set = |name: &str| std::env::var_os(name).is_some();
    Config {
        cases: if set("PROPTEST_CASES") { from_env.cases } else { cases },
        rng_seed: if set("PROPTEST_RNG_SEED") { from_env.rng_seed } else { RngSeed::Fixed(0x0050_0271_C0DE) },
        failure_persistence: None,
        ..from_env
    }
}

/// A message descriptor, shown by its name in a failing case.
#[derive(Clone)]
struct Desc(MessageDescriptor);

impl std::fmt::Debug for Desc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.full_name())
    }
}

/// Every message of OpenCue's API (not map entries).
fn messages() -> Vec<Desc> {
    Descriptors::opencue(&["*".into()]).pool().all_messages().filter(|m| !m.is_map_entry()).map(Desc).collect()
}

/// A value as a client may send it, and as protojson writes it back.
type Pair = (Value, Value);

fn same(v: Value) -> Pair {
    (v.clone(), v)
}

/// A 64-bit integer: sent as a number or a string, written back as a string.
fn wide(n: impl ToString + Into<serde_json::Number>, as_string: bool) -> Pair {
    let s = n.to_string();
    (if as_string { json!(s) } else { Value::Number(n.into()) }, json!(s))
}

fn narrow(n: impl ToString + Into<serde_json::Number>, as_string: bool) -> Pair {
    let number = Value::Number(n.into());
    (if as_string { json!(number.to_string()) } else { number.clone() }, number)
}

fn special_float() -> impl Strategy<Value = Pair> {
    prop::sample::select(vec!["NaN", "Infinity", "-Infinity"]).prop_map(|s| same(json!(s)))
}

fn scalar(kind: &Kind) -> BoxedStrategy<Pair> {
    match kind {
        Kind::Double => prop_oneof![
            4 => any::<f64>().prop_map(|f| same(json!(if f.is_finite() { f } else { 0.0 }))),
            1 => special_float(),
        ]
        .boxed(),
        Kind::Float => prop_oneof![
            4 => any::<f32>().prop_map(|f| same(json!(f64::from(if f.is_finite() { f } else { 0.0 })))),
            1 => special_float(),
        ]
        .boxed(),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            (any::<i32>(), any::<bool>()).prop_map(|(n, s)| narrow(n, s)).boxed()
        }
        Kind::Uint32 | Kind::Fixed32 => (any::<u32>(), any::<bool>()).prop_map(|(n, s)| narrow(n, s)).boxed(),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            (any::<i64>(), any::<bool>()).prop_map(|(n, s)| wide(n, s)).boxed()
        }
        Kind::Uint64 | Kind::Fixed64 => (any::<u64>(), any::<bool>()).prop_map(|(n, s)| wide(n, s)).boxed(),
        Kind::Bool => any::<bool>().prop_map(|b| same(json!(b))).boxed(),
        Kind::String => any::<String>().prop_map(|s| same(json!(s))).boxed(),
        Kind::Bytes => (proptest::collection::vec(any::<u8>(), 0..24), any::<bool>())
            .prop_map(|(b, url_safe)| {
                let standard = base64::engine::general_purpose::STANDARD.encode(&b);
                let sent = if url_safe {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&b)
                } else {
                    standard.clone()
                };
                (json!(sent), json!(standard))
            })
            .boxed(),
        Kind::Enum(e) => {
            let values: Vec<(String, i32)> = e.values().map(|v| (v.name().to_owned(), v.number())).collect();
            let e = e.clone();
            (prop::sample::select(values), any::<bool>())
                .prop_map(move |((name, number), by_number)| {
                    // protojson writes the first name declared for a number.
                    let written = e.get_value(number).map_or(name.clone(), |v| v.name().to_owned());
                    (if by_number { json!(number) } else { json!(name) }, json!(written))
                })
                .boxed()
        }
        Kind::Message(m) => message(m, 0).boxed(),
    }
}

/// One element: a scalar, or a message `depth` levels deep at most.
fn element(kind: &Kind, depth: u32) -> Option<BoxedStrategy<Pair>> {
    match kind {
        Kind::Message(m) if depth == 0 => {
            // A message with no message fields still ends the recursion.
            m.fields().all(|f| !matches!(f.kind(), Kind::Message(_))).then(|| message(m, 0).boxed())
        }
        Kind::Message(m) => Some(message(m, depth - 1).boxed()),
        other => Some(scalar(other)),
    }
}

fn map_key(kind: &Kind) -> BoxedStrategy<String> {
    match kind {
        Kind::String => any::<String>().boxed(),
        Kind::Bool => any::<bool>().prop_map(|b| b.to_string()).boxed(),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => any::<i32>().prop_map(|n| n.to_string()).boxed(),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => any::<i64>().prop_map(|n| n.to_string()).boxed(),
        Kind::Uint32 | Kind::Fixed32 => any::<u32>().prop_map(|n| n.to_string()).boxed(),
        _ => any::<u64>().prop_map(|n| n.to_string()).boxed(),
    }
}

/// A field's value (a list, a map or one element), if one can be made at `depth`.
fn field_value(field: &FieldDescriptor, depth: u32) -> Option<BoxedStrategy<Pair>> {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else { return None };
        let key = map_key(&entry.map_entry_key_field().kind());
        let value = element(&entry.map_entry_value_field().kind(), depth)?;
        return Some(
            proptest::collection::vec((key, value), 0..4)
                .prop_map(|entries| {
                    let (mut sent, mut written) = (Map::new(), Map::new());
                    for (k, (s, w)) in entries {
                        sent.insert(k.clone(), s);
                        written.insert(k, w);
                    }
                    (Value::Object(sent), Value::Object(written))
                })
                .boxed(),
        );
    }
    let one = element(&field.kind(), depth)?;
    if field.is_list() {
        return Some(
            proptest::collection::vec(one, 0..4)
                .prop_map(|items| {
                    let (sent, written): (Vec<Value>, Vec<Value>) = items.into_iter().unzip();
                    (Value::Array(sent), Value::Array(written))
                })
                .boxed(),
        );
    }
    Some(one)
}

/// A field set: (key as sent, key protojson writes, value).
type Entry = Option<(String, String, Pair)>;

fn entry(field: &FieldDescriptor, depth: u32) -> Option<BoxedStrategy<Entry>> {
    let value = field_value(field, depth)?;
    let (name, json_name) = (field.name().to_owned(), field.json_name().to_owned());
    Some(
        (value, any::<bool>())
            .prop_map(move |(v, proto_name)| {
                let sent = if proto_name { name.clone() } else { json_name.clone() };
                Some((sent, json_name.clone(), v))
            })
            .boxed(),
    )
}

/// A message of `desc`: each field set or not, at most one field of each oneof.
fn message(desc: &MessageDescriptor, depth: u32) -> impl Strategy<Value = Pair> + use<> {
    let mut parts: Vec<BoxedStrategy<Entry>> = Vec::new();
    for field in desc.fields().filter(|f| f.containing_oneof().is_none()) {
        if let Some(e) = entry(&field, depth) {
            parts.push(prop_oneof![Just(None), e].boxed());
        }
    }
    for oneof in desc.oneofs() {
        let mut choices: Vec<BoxedStrategy<Entry>> = vec![Just(None).boxed()];
        choices.extend(oneof.fields().filter_map(|f| entry(&f, depth)));
        parts.push(Union::new(choices).boxed());
    }
    parts.prop_map(|entries| {
        let (mut sent, mut written) = (Map::new(), Map::new());
        for (key, json_name, (s, w)) in entries.into_iter().flatten() {
            sent.insert(key, s);
            written.insert(json_name, w);
        }
        (Value::Object(sent), Value::Object(written))
    })
}

/// A message of OpenCue's API and a value of it.
fn any_message() -> impl Strategy<Value = (Desc, Pair)> {
    prop::sample::select(messages()).prop_flat_map(|desc| {
        let value = message(&desc.0, 2);
        (Just(desc), value)
    })
}

/// Whether `have` holds everything `want` does (objects may hold more keys).
fn covers(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w.iter().all(|(k, v)| h.get(k).is_some_and(|hv| covers(hv, v))),
        (Value::Array(h), Value::Array(w)) => h.len() == w.len() && h.iter().zip(w).all(|(a, b)| covers(a, b)),
        (Value::Number(h), Value::Number(w)) => h.as_f64() == w.as_f64(),
        _ => have == want,
    }
}

/// The values inside `v`: the path [`replace`] takes (`a.b[0]`, keys as they are), and the
/// path an error names (map keys that are not names shown as `?`; field names are names).
fn paths(v: &Value, at: (&str, &str), out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, inner) in map {
                let join = |p: &str, k: &str| if p.is_empty() { k.to_owned() } else { format!("{p}.{k}") };
                let here = (join(at.0, k), join(at.1, &name_or_mark(k)));
                out.push(here.clone());
                paths(inner, (&here.0, &here.1), out);
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                let here = (format!("{}[{i}]", at.0), format!("{}[{i}]", at.1));
                out.push(here.clone());
                paths(inner, (&here.0, &here.1), out);
            }
        }
        _ => {}
    }
}

/// `v` with the value at `path` (from [`paths`]) replaced by `with`.
fn replace(v: &mut Value, path: &str, at: &str, with: &Value) -> bool {
    match v {
        Value::Object(map) => {
            for (k, inner) in map.iter_mut() {
                let here = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                if here == path {
                    *inner = with.clone();
                    return true;
                }
                if replace(inner, path, &here, with) {
                    return true;
                }
            }
            false
        }
        Value::Array(items) => {
            for (i, inner) in items.iter_mut().enumerate() {
                let here = format!("{at}[{i}]");
                if here == path {
                    *inner = with.clone();
                    return true;
                }
                if replace(inner, path, &here, with) {
                    return true;
                }
            }
            false
        }
        _ => false,
    }
}

fn marker() -> impl Strategy<Value = String> {
    "zq[a-z0-9]{8}"
}

/// Any JSON; its strings marked, its numbers large, so that a message quoting one shows it.
/// Object keys are field names of OpenCue's messages, or unknown ones.
fn hostile() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (1_000_000_000i64..i64::MAX).prop_map(|n| json!(n)),
        (10_000_000.5f64..1e300).prop_map(|f| json!(f)),
        Just(json!(-77_123_456_789i64)),
        marker().prop_map(Value::String),
        marker().prop_map(|m| json!(format!("{m}=="))),
    ];
    let keys = prop::sample::select(vec![
        "name",
        "id",
        "page",
        "states",
        "frameStates",
        "include_finished",
        "req",
        "job",
        "show",
        "tmap",
        "environment",
        "attributes",
        "reservedCores",
        "coreid",
        "zzUnknown",
    ]);
    leaf.prop_recursive(3, 16, 4, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::vec((keys.clone().prop_map(str::to_owned), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// What `v` holds that a message must not repeat: its marked strings and large numbers.
fn sent_values(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.starts_with("zq") => out.push(s.trim_end_matches('=').to_owned()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|i| sent_values(i, out)),
        Value::Object(map) => map.values().for_each(|i| sent_values(i, out)),
        _ => {}
    }
}

fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// JSON → protobuf → bytes on the wire → protobuf → JSON.
fn through_the_wire(desc: &MessageDescriptor, body: &[u8]) -> Result<Value, BadRequest> {
    let message = request(desc, body, UnknownFields::Reject)?;
    let wire = message.encode_to_vec();
    let decoded = DynamicMessage::decode(desc.clone(), wire.as_slice()).expect("what was encoded decodes");
    Ok(response(&decoded))
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn json_to_protobuf_to_json_round_trips((Desc(desc), (sent, written)) in any_message()) {
        let out = through_the_wire(&desc, &to_bytes(&sent)).map_err(|e| TestCaseError::fail(format!("{}: {e} for {sent}", desc.full_name())))?;
        prop_assert!(covers(&out, &written), "{}: sent {}\nwant {}\ngot  {}", desc.full_name(), sent, written, out);
        // What protojson wrote is read back to the same message, and written the same.
        let again = through_the_wire(&desc, &to_bytes(&out)).map_err(|e| TestCaseError::fail(format!("{e} for {out}")))?;
        prop_assert_eq!(again, out);
    }

    #[test]
    fn unknown_fields_are_dropped_and_listed_or_refused_by_name(
        (Desc(desc), (sent, _)) in any_message(),
        extra in proptest::collection::btree_set("zz[A-Za-z0-9_]{1,8}", 1..4),
        values in proptest::collection::vec(hostile(), 4),
    ) {
        let mut with_extra = sent.clone();
        let map = with_extra.as_object_mut().unwrap();
        for (name, value) in extra.iter().zip(values.iter().cycle()) {
            map.insert(name.clone(), value.clone());
        }
        let (message, ignored) = request_noting_ignored(&desc, &to_bytes(&with_extra), UnknownFields::Ignore).unwrap();
        // Compared as JSON: a NaN field makes two equal messages unequal.
        let without = request(&desc, &to_bytes(&sent), UnknownFields::Reject).unwrap();
        prop_assert_eq!(response(&message), response(&without));
        let mut ignored = ignored;
        ignored.sort();
        prop_assert_eq!(ignored, extra.iter().cloned().collect::<Vec<_>>());
        let BadRequest(said) = request(&desc, &to_bytes(&with_extra), UnknownFields::Reject).unwrap_err();
        prop_assert!(extra.iter().any(|e| said == format!("field '{e}' is not in the message (rpc_unknown_fields = \"reject\")")), "{said}");
    }

    #[test]
    fn any_json_anywhere_is_read_or_refused_naming_the_field(
        (Desc(desc), (sent, _)) in any_message(),
        at in any::<prop::sample::Index>(),
        with in hostile(),
        root_key in prop::sample::select(vec!["name", "job", "req", "zzUnknown"]),
    ) {
        let mut body = sent;
        let mut all = Vec::new();
        paths(&body, ("", ""), &mut all);
        let path = if all.is_empty() {
            body.as_object_mut().unwrap().insert(root_key.to_owned(), with.clone());
            root_key.to_owned()
        } else {
            let (raw, shown) = all[at.index(all.len())].clone();
            prop_assert!(replace(&mut body, &raw, "", &with));
            shown
        };
        if let Err(BadRequest(said)) = request(&desc, &to_bytes(&body), UnknownFields::Reject) {
            let named = said.strip_prefix("field '").and_then(|rest| rest.split_once("': ").or_else(|| rest.split_once("' is not"))).map(|(p, _)| p.to_owned());
            match named {
                Some(named) => prop_assert!(
                    within(&named, &path),
                    "{said} (replaced {path} in {body})"
                ),
                // A second field of a oneof at the top: the oneof is named.
                None => prop_assert!(said.starts_with("multiple fields provided for oneof '"), "{said} (replaced {path})"),
            }
            let mut values = Vec::new();
            sent_values(&with, &mut values);
            for v in values {
                prop_assert!(!said.contains(&v), "{said} quotes {v}");
            }
        }
    }

    #[test]
    fn any_body_is_read_or_refused_as_a_bad_request(
        Desc(desc) in prop::sample::select(messages()),
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            hostile().prop_map(|v| to_bytes(&v)),
        ],
    ) {
        match request(&desc, &body, UnknownFields::Reject) {
            Ok(m) => prop_assert_eq!(through_the_wire(&desc, &to_bytes(&response(&m))).unwrap(), response(&m)),
            Err(BadRequest(said)) => prop_assert!(!said.is_empty()),
        }
    }
}

/// Whether `named` is `path` or a path inside it.
fn within(named: &str, path: &str) -> bool {
    named.strip_prefix(path).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}
