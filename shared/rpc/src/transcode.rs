//! JSON <-> protobuf at run time, as grpc-gateway's defaults do it (protojson): lowerCamelCase
//! names out and either spelling in, 64-bit integers as strings, enums by name (numbers taken
//! in), unpopulated fields emitted (`[]`, `0`, `""`, and `null` for an unset message), an empty
//! body read as `{}`.
//!
//! Bad input is refused naming the field (`job.state`), never quoting the value.

use prost_reflect::{DeserializeOptions, DynamicMessage, Kind, MessageDescriptor, ReflectMessage, SerializeOptions};
use serde_json::{Map, Value};

pub use portico_core::config::RpcUnknownFields as UnknownFields;

/// A request body that cannot become the method's request message; safe to return.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(pub String);

/// Reads `body` (JSON; empty means `{}`) as a `desc` message.
pub fn request(desc: &MessageDescriptor, body: &[u8], unknown: UnknownFields) -> Result<DynamicMessage, BadRequest> {
    request_noting_ignored(desc, body, unknown).map(|(message, _)| message)
}

/// As [`request`], also returning the paths of the unknown fields ignored (`job.req`), so the
/// gateway can tell the client what it dropped.
pub fn request_noting_ignored(
    desc: &MessageDescriptor,
    body: &[u8],
    unknown: UnknownFields,
) -> Result<(DynamicMessage, Vec<String>), BadRequest> {
    let mut value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        // A member named twice is refused (grpc-gateway's reader does the same).
        portico_core::input::strict_value(body).map_err(|e| BadRequest(format!("the body is not valid JSON: {e}")))?
    };
    if !value.is_object() {
        return Err(BadRequest(format!("the body must be a JSON object (the {} message)", desc.name())));
    }
    let mut ignored = Vec::new();
    if unknown == UnknownFields::Ignore {
        drop_unknown(desc, &mut value, "", &mut ignored);
    }
    // Unknown fields and enum names are checked by prost-reflect only in its strict mode; the
    // lenient mode would drop a misspelt enum value silently.
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let mut track = serde_path_to_error::Track::new();
    let deserializer = serde_path_to_error::Deserializer::new(value, &mut track);
    let message = DynamicMessage::deserialize_with_options(desc.clone(), deserializer, &options).map_err(|e| {
        let path = field_path(desc, &track.path());
        let parent = if path.is_empty() { None } else { Some(path) };
        let message = e.to_string();
        if let Some(name) = message.strip_prefix("unrecognized field name '").and_then(|m| m.strip_suffix('\'')) {
            // A field name the client chose, not a value: naming it is the point.
            let full = parent.map_or_else(|| name.to_owned(), |p| format!("{p}.{name}"));
            return BadRequest(format!("field '{full}' is not in the message (rpc_unknown_fields = \"reject\")"));
        }
        let what = describe(&message);
        BadRequest(parent.map_or_else(|| what.clone(), |p| format!("field '{p}': {what}")))
    })?;
    Ok((message, ignored))
}

/// Where a refused value sits (`job.states.frameStates[0]`): field names as sent and list
/// indexes. A map's keys are the client's data, not names: one is shown only when it looks
/// like a name (as [`portico_core::input::shown_key`] shows keys), else as `?`.
fn field_path(desc: &MessageDescriptor, path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    /// What the segment being read names.
    enum At {
        Message(MessageDescriptor),
        /// A list or map field, whose elements come next.
        Container(prost_reflect::FieldDescriptor),
        Other,
    }
    let value_of = |kind: Kind| match kind {
        Kind::Message(m) => At::Message(m),
        _ => At::Other,
    };
    let mut at = At::Message(desc.clone());
    let mut out = String::new();
    for segment in path.iter() {
        let (shown, next) = match (segment, at) {
            (Segment::Seq { index }, At::Container(f)) if f.is_list() => (format!("[{index}]"), value_of(f.kind())),
            (Segment::Seq { index }, _) => (format!("[{index}]"), At::Other),
            (Segment::Map { key }, At::Message(m)) => {
                match m.get_field_by_json_name(key).or_else(|| m.get_field_by_name(key)) {
                    Some(f) if f.is_list() || f.is_map() => (key.clone(), At::Container(f)),
                    Some(f) => (key.clone(), value_of(f.kind())),
                    None => (name_or_mark(key), At::Other),
                }
            }
            (Segment::Map { key }, At::Container(f)) if f.is_map() => {
                let value = match f.kind() {
                    Kind::Message(entry) => value_of(entry.map_entry_value_field().kind()),
                    _ => At::Other,
                };
                (name_or_mark(key), value)
            }
            (Segment::Map { key } | Segment::Enum { variant: key }, _) => (name_or_mark(key), At::Other),
            (Segment::Unknown, _) => ("?".to_owned(), At::Other),
        };
        if !out.is_empty() && !shown.starts_with('[') {
            out.push('.');
        }
        out.push_str(&shown);
        at = next;
    }
    out
}

/// `key` if it looks like a name, else `?` (as core's messages show keys).
fn name_or_mark(key: &str) -> String {
    portico_core::input::shown_key(key).to_owned()
}

/// prost-reflect's and serde's messages, without the submitted value.
fn describe(message: &str) -> String {
    if message.starts_with("unrecognized enum value") {
        return "is not a value of the field's enum".into();
    }
    if message.starts_with("invalid base64") {
        return "is not valid base64".into();
    }
    for known in ["multiple fields provided for oneof", "float value out of range", "expected integer value"] {
        if message.starts_with(known) {
            return message.to_owned();
        }
    }
    for (std_error, said) in [
        ("invalid digit", "is not an integer"),
        ("number too large", "is out of range for the field's type"),
        ("number too small", "is out of range for the field's type"),
        ("out of range integral type conversion", "is out of range for the field's type"),
        ("cannot parse integer from empty string", "is not an integer"),
        ("invalid float literal", "is not a number"),
        ("provided string was not `true` or `false`", "is not a boolean"),
    ] {
        if message.starts_with(std_error) {
            return said.into();
        }
    }
    portico_core::input::shape_message(message)
}

/// Removes, at every level, keys that are not fields of their message; notes their paths.
fn drop_unknown(desc: &MessageDescriptor, value: &mut Value, at: &str, dropped: &mut Vec<String>) {
    let Value::Object(map) = value else { return };
    map.retain(|key, _| {
        let known = desc.get_field_by_json_name(key).or_else(|| desc.get_field_by_name(key)).is_some();
        if !known {
            dropped.push(format!("{at}{key}"));
        }
        known
    });
    for (key, v) in map.iter_mut() {
        let at = format!("{at}{key}.");
        let Some(field) = desc.get_field_by_json_name(key).or_else(|| desc.get_field_by_name(key)) else { continue };
        let Kind::Message(inner) = field.kind() else { continue };
        if field.is_map() {
            let value_kind = inner.map_entry_value_field().kind();
            if let (Kind::Message(m), Value::Object(entries)) = (value_kind, v) {
                entries.values_mut().for_each(|e| drop_unknown(&m, e, &at, dropped));
            }
        } else if let Value::Array(items) = v {
            items.iter_mut().for_each(|i| drop_unknown(&inner, i, &at, dropped));
        } else {
            drop_unknown(&inner, v, &at, dropped);
        }
    }
}

/// `message` as grpc-gateway writes it.
pub fn response(message: &DynamicMessage) -> Value {
    let options = SerializeOptions::new().skip_default_fields(false).stringify_64_bit_integers(true);
    let mut value = message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .unwrap_or_else(|_| Value::Object(Map::new()));
    emit_unset_messages(message, &mut value);
    value
}

/// prost-reflect leaves out unset message fields; grpc-gateway writes them as `null` (not
/// those in a oneof, which protojson never emits when unset).
fn emit_unset_messages(message: &DynamicMessage, value: &mut Value) {
    let Value::Object(map) = value else { return };
    for field in message.descriptor().fields() {
        let Kind::Message(_) = field.kind() else { continue };
        if field.is_map() {
            continue; // map values are emitted as they are; OpenCue has none of messages
        }
        let name = field.json_name();
        if field.is_list() {
            if let (Some(list), Some(Value::Array(items))) = (message.get_field(&field).as_list(), map.get_mut(name)) {
                for (item, v) in list.iter().zip(items.iter_mut()) {
                    if let Some(m) = item.as_message() {
                        emit_unset_messages(m, v);
                    }
                }
            }
            continue;
        }
        if message.has_field(&field) {
            if let (Some(m), Some(v)) = (message.get_field(&field).as_message(), map.get_mut(name)) {
                emit_unset_messages(m, v);
            }
        } else if field.containing_oneof().is_none() {
            map.insert(name.to_owned(), Value::Null);
        }
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptors::Descriptors;

    fn message(name: &str) -> MessageDescriptor {
        Descriptors::opencue(&["*".into()]).pool().get_message_by_name(name).expect("a vendored message")
    }

    fn refused(name: &str, body: &str) -> String {
        match request(&message(name), body.as_bytes(), UnknownFields::Reject) {
            Err(BadRequest(said)) => said,
            Ok(m) => panic!("{body} was accepted as {m:?}"),
        }
    }

    #[test]
    fn each_bad_input_names_the_field_and_never_the_value() {
        let frames = "job.JobGetFramesRequest";
        for (body, said) in [
            (r#"{"req": {"page": "seven-seven"}}"#, "field 'req.page': is not an integer"),
            (r#"{"req": {"page": 99999999999}}"#, "field 'req.page'"),
            (
                r#"{"req": {"states": {"frameStates": ["RUNNNING"]}}}"#,
                "field 'req.states.frameStates[0]': is not a value",
            ),
            (r#"{"req": {"includeFinished": "yes-please"}}"#, "field 'req.includeFinished'"),
            (r#"{"job": {"reqq": 1}}"#, "field 'job.reqq' is not in the message"),
            (r#"{"job": "#, "the body is not valid JSON"),
            (r#"["job"]"#, "must be a JSON object"),
        ] {
            let message = refused(frames, body);
            assert!(message.contains(said), "{body} → {message}");
            for value in ["seven-seven", "99999999999", "RUNNNING", "yes-please"] {
                assert!(!message.contains(value), "{body} → {message} quotes the value");
            }
        }
        let bad_base64 = refused("host.ProcGetFrameRequest", r#"{"proc": {"childProcesses": "not*base64!"}}"#);
        assert_eq!(bad_base64, "field 'proc.childProcesses': is not valid base64");
        // A map's keys are data: one that does not look like a name is not shown.
        let frame = "rqd.RqdStaticGetRunFrameResponse";
        let said = refused(frame, r#"{"runFrame": {"environment": {"TOKEN=s3cr3t value": 7}}}"#);
        assert_eq!(said, "field 'runFrame.environment.?': expected a string, found a number");
        let said = refused(frame, r#"{"runFrame": {"environment": {"SHOW": 7}}}"#);
        assert_eq!(said, "field 'runFrame.environment.SHOW': expected a string, found a number");
    }

    #[test]
    fn both_spellings_and_enum_numbers_are_read() {
        let desc = message("job.JobGetFramesRequest");
        let snake = request(
            &desc,
            br#"{"req": {"include_finished": true, "states": {"frame_states": [2]}}}"#,
            UnknownFields::Reject,
        );
        let camel = request(
            &desc,
            br#"{"req": {"includeFinished": true, "states": {"frameStates": ["RUNNING"]}}}"#,
            UnknownFields::Reject,
        );
        assert_eq!(snake.unwrap(), camel.unwrap());
    }

    #[test]
    fn ignored_fields_are_dropped_at_every_level_and_listed() {
        let desc = message("job.JobGetFramesRequest");
        let (_, ignored) = request_noting_ignored(
            &desc,
            br#"{"extra": 1, "job": {"req": {}}, "req": {"pg": 2}}"#,
            UnknownFields::Ignore,
        )
        .unwrap();
        assert_eq!(ignored, ["extra", "job.req", "req.pg"]);
    }

    #[test]
    fn unpopulated_fields_are_emitted() {
        let empty = DynamicMessage::new(message("job.JobGetFramesResponse"));
        assert_eq!(response(&empty), serde_json::json!({"frames": null}));
        let job = DynamicMessage::new(message("job.Job"));
        let out = response(&job);
        assert_eq!(
            (&out["state"], &out["startTime"], &out["name"]),
            (&serde_json::json!("PENDING"), &serde_json::json!(0), &serde_json::json!(""))
        );
    }
}
