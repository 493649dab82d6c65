//! Client JSON in, for every route group and the relay: one parser that takes objects only and
//! whose messages name the field and what was expected, never the submitted value.
//!
//! Two serde behaviours make this necessary. A struct deserializes from a JSON array of its
//! fields in order (`["alice", "pw", true]` would be a `NewUser`), and `deny_unknown_fields`
//! does not stop it; and serde's messages quote the offending value (`invalid type: integer
//! `918273645501`, expected a string`), which for a password field puts the secret in the
//! response.
//!
//! The object check covers the body itself. A request type with a nested struct field marks
//! it `#[serde(deserialize_with = "portico_core::input::nested_object")]`, which applies the
//! same rule one level down.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why a client's JSON was refused; the message is safe to return and to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Not JSON at all.
    #[error("{0}")]
    Syntax(String),
    /// JSON, but not an object of the expected shape; `field` is the field's path, when the
    /// refusal concerns one (`limits.cpu`).
    #[error("{message}")]
    Shape { message: String, field: Option<String> },
}

/// Parses `bytes` as a JSON object, then as `T`.
pub fn object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, InputError> {
    let value = strict_value(bytes).map_err(|e| InputError::Syntax(syntax_message(&e)))?;
    object_value(value)
}

/// Parses `bytes` as JSON, refusing an object that names a member twice, at any depth. RFC
/// 8259 §4 leaves duplicates to the reader and serde_json keeps the last one silently, so a
/// proxy, a log or a reviewer reading the first copy would disagree with Portico about what
/// was asked (grpc-gateway's reader refuses them too). The message names the member only if
/// it looks like a field name ([`shown_key`]).
pub fn strict_value(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue::deserialize(&mut deserializer)?.0;
    deserializer.end()?;
    Ok(value)
}

/// A [`Value`] read with [`strict_value`]'s rule.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON has no NaN or infinity, so the number always exists.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = serde_json::Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                let shown = shown_key(&key);
                return Err(serde::de::Error::custom(format_args!("duplicate member '{shown}' in an object")));
            }
            let StrictValue(value) = access.next_value()?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// A request body: [`object`], reading numbers without a fraction (`5.0`) as integers, as JSON
/// Schema's `integer` (and the OpenAPI document) does. Only for bodies Portico reads itself,
/// never for data it passes on.
pub fn request_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, InputError> {
    let mut value = strict_value(bytes).map_err(|e| InputError::Syntax(syntax_message(&e)))?;
    integral_numbers(&mut value);
    object_value(value)
}

/// Every number of `value` that is a whole number in `i64`/`u64`'s range becomes an integer.
fn integral_numbers(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // Both bounds are powers of two, so exact as f64; `as` is exact inside them.
            if f.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
                *n = (f as i64).into();
            } else if f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f) {
                *n = (f as u64).into();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        Value::Object(map) => map.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// Whether `key`, a key of the client's data, looks like a field name (1 to 40 of
/// `[A-Za-z0-9_-]`): messages show such a key; any other may be data, and shows as `?`.
pub fn is_field_name(key: &str) -> bool {
    (1..=40).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `key` as a message shows it: itself if [`is_field_name`], else `?`.
pub fn shown_key(key: &str) -> &str {
    if is_field_name(key) { key } else { "?" }
}

/// `value`, which must be a JSON object, as `T`.
pub fn object_value<T: DeserializeOwned>(value: Value) -> Result<T, InputError> {
    if !value.is_object() {
        let message = format!("the body must be a JSON object, not {}", kind_of(&value));
        return Err(InputError::Shape { message, field: None });
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let (path, what) = located(e);
        if path.is_empty() {
            // serde names a missing or unknown field only in its words (stable: serde::de::Error).
            let named = ["missing field `", "unknown field `"]
                .iter()
                .find_map(|p| what.strip_prefix(p).and_then(|r| r.split_once('`')).map(|(f, _)| f.to_owned()));
            InputError::Shape { field: named.filter(|f| is_field_name(f)), message: what }
        } else {
            InputError::Shape { message: format!("field '{path}': {what}"), field: Some(path) }
        }
    })
}

/// The error's full field path (empty for the body itself) and its safe message.
fn located(e: serde_path_to_error::Error<serde_json::Error>) -> (String, String) {
    let outer = e.path().to_string();
    let outer = if outer == "." { String::new() } else { outer };
    let message = e.into_inner().to_string();
    match message.strip_prefix(CHECKED).and_then(|m| m.split_once(PATH_END)) {
        Some((inner, what)) if outer.is_empty() || inner.is_empty() => (format!("{outer}{inner}"), what.to_owned()),
        Some((inner, what)) => (format!("{outer}.{inner}"), what.to_owned()),
        None => (outer, shape_message(&message)),
    }
}

/// A nested struct field of a request type: an object only, never an array of its fields.
pub fn nested_object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::de::Error as _;
    let value = Value::deserialize(deserializer)?;
    if !value.is_object() {
        let what = format!("expected an object, found {}", kind_of(&value));
        return Err(D::Error::custom(format!("{CHECKED}{PATH_END}{what}")));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let (path, what) = located(e);
        D::Error::custom(format!("{CHECKED}{path}{PATH_END}{what}"))
    })
}

/// Marks a message this module already made safe (and the field path below the level that
/// made it), so an outer level keeps it.
const CHECKED: &str = "\u{1}checked:";
const PATH_END: char = '\u{2}';

/// serde_json's syntax messages carry a position and never the input; kept as they are.
fn syntax_message(e: &serde_json::Error) -> String {
    format!("the body is not valid JSON: {e}")
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// serde's data error, with any quoted value dropped (public for other JSON readers, such as
/// the RPC gateway's transcoder). serde's wording is stable
/// (`serde::de::Error`'s provided methods); anything else, e.g. a custom message that might
/// quote input, becomes a generic one.
pub fn shape_message(msg: &str) -> String {
    let expected = || msg.rfind(", expected ").map(|i| json_terms(&msg[i + 2..])).unwrap_or_default();
    if let Some(rest) = msg.strip_prefix("invalid type: ") {
        return format!("{}, found {}", expected(), unexpected_kind(rest));
    }
    if msg.starts_with("invalid value: ") {
        return format!("invalid value, {}", expected());
    }
    if msg.starts_with("unknown variant ") {
        return format!("unknown value, {}", expected());
    }
    let keeps_no_value = ["missing field `", "unknown field `", "duplicate field `", "invalid length "];
    if keeps_no_value.iter().any(|p| msg.starts_with(p)) {
        return json_terms(msg);
    }
    "is not valid".into()
}

/// The JSON kind of serde's `Unexpected` display (`integer `5``, `string "x"`, `map`, ...).
fn unexpected_kind(rest: &str) -> &'static str {
    let table = [
        ("integer", "a number"),
        ("floating point", "a number"),
        ("string", "a string"),
        ("char", "a string"),
        ("boolean", "a boolean"),
        ("map", "an object"),
        ("sequence", "an array"),
        ("unit value", "null"),
        ("null", "null"),
    ];
    table.iter().find(|(p, _)| rest.starts_with(p)).map(|(_, k)| *k).unwrap_or("another type")
}

/// serde's Rust-flavoured expectations in JSON's words.
fn json_terms(text: &str) -> String {
    let mut out = text.to_owned();
    if let Some(i) = out.find("expected struct ") {
        out.replace_range(i.., "expected an object");
    }
    for (rust, json) in [
        ("expected a map", "expected an object"),
        ("expected a sequence", "expected an array"),
        ("expected a borrowed string", "expected a string"),
        ("expected u8", "expected a non-negative integer"),
        ("expected u16", "expected a non-negative integer"),
        ("expected u32", "expected a non-negative integer"),
        ("expected u64", "expected a non-negative integer"),
        ("expected usize", "expected a non-negative integer"),
        ("expected i32", "expected an integer"),
        ("expected i64", "expected an integer"),
        ("expected f64", "expected a number"),
    ] {
        if out.ends_with(rust) {
            out.truncate(out.len() - rust.len());
            out.push_str(json);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_named_twice_is_refused_at_any_depth() {
        for (body, shown) in [
            (r#"{"recipe": 1, "recipe": 2}"#, "'recipe'"),
            (r#"{"a": {"group": "jobs", "group": "other"}}"#, "'group'"),
            (r#"[{"x": [{"k": 1, "k": 1}]}]"#, "'k'"),
            (r#"{"s3cr3t value": 1, "s3cr3t value": 2}"#, "'?'"),
        ] {
            let message = strict_value(body.as_bytes()).unwrap_err().to_string();
            assert!(message.contains(&format!("duplicate member {shown}")), "{body}: {message}");
            assert!(!message.contains("s3cr3t"), "{message}");
            let refused = request_object::<Value>(body.as_bytes()).unwrap_err();
            assert!(matches!(refused, InputError::Syntax(_)), "{body}");
        }
        // Anything else reads as serde_json reads it.
        for body in [
            r#"{"a": [1, -2, 3.5, 1e300, 18446744073709551615, null, true, "\ud83d\ude00"], "b": {"a": {}}}"#,
            "[]",
            "7",
        ] {
            let expected: Value = serde_json::from_slice(body.as_bytes()).unwrap();
            assert_eq!(strict_value(body.as_bytes()).unwrap(), expected, "{body}");
        }
        for bad in [r#"{"a": 1} x"#, r#"{"a": }"#, r#""\ud800""#] {
            assert!(strict_value(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct NewUser {
        username: String,
        password: String,
        #[serde(default)]
        admin: bool,
        #[serde(default, deserialize_with = "nested")]
        limits: Option<Limits>,
        #[serde(default)]
        side: Option<Side>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Limits {
        cpu: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Side {
        Client,
    }

    fn nested<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Limits>, D::Error> {
        nested_object(d).map(Some)
    }

    fn refuse(body: &str) -> InputError {
        object::<NewUser>(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn a_struct_is_never_read_from_an_array() {
        let e = refuse(r#"["alice", "a-password", true]"#);
        assert_eq!(e.to_string(), "the body must be a JSON object, not an array");
        assert!(matches!(e, InputError::Shape { field: None, .. }));
        assert!(matches!(refuse("5"), InputError::Shape { .. }));
        assert!(matches!(refuse("null"), InputError::Shape { .. }));
        assert!(matches!(refuse("{"), InputError::Syntax(_)));
    }

    #[test]
    fn messages_name_the_field_and_never_quote_the_value() {
        let cases = [
            (
                r#"{"username": "a", "password": 918273645501}"#,
                "918273645501",
                "field 'password': expected a string, found a number",
            ),
            (
                r#"{"username": "a", "password": 9182736.45501}"#,
                "9182736.45501",
                "field 'password': expected a string, found a number",
            ),
            (
                r#"{"username": "a", "password": ["s3cret-value"]}"#,
                "s3cret-value",
                "field 'password': expected a string, found an array",
            ),
            (
                r#"{"username": "a", "password": "p", "admin": "yes-secret"}"#,
                "yes-secret",
                "field 'admin': expected a boolean, found a string",
            ),
            (
                r#"{"username": "a", "password": "p", "side": "hidden-variant"}"#,
                "hidden-variant",
                "field 'side': unknown value, expected `client`",
            ),
            (
                r#"{"username": "a", "password": "p", "limits": {"cpu": -77123}}"#,
                "77123",
                "field 'limits.cpu': invalid value, expected a non-negative integer",
            ),
            (
                r#"{"username": "a", "password": "p", "limits": [4]}"#,
                "[4]",
                "field 'limits': expected an object, found an array",
            ),
            (
                r#"{"username": "a", "password": "p", "limits": {"cpu": "55501"}}"#,
                "55501",
                "field 'limits.cpu': expected a non-negative integer, found a string",
            ),
        ];
        for (body, secret, want) in cases {
            let refused = refuse(body);
            let message = refused.to_string();
            assert!(!message.contains(secret), "{body}: {message}");
            assert_eq!(message, want, "{body}");
            // The field as data, for clients that show the error beside it.
            let named = want.strip_prefix("field '").and_then(|r| r.split_once('\'')).map(|(f, _)| f);
            assert!(matches!(&refused, InputError::Shape { field, .. } if field.as_deref() == named), "{body}");
        }
        let missing = refuse(r#"{"username": "a"}"#);
        assert_eq!(missing.to_string(), "missing field `password`");
        assert!(matches!(missing, InputError::Shape { field: Some(f), .. } if f == "password"));
        let unknown = refuse(r#"{"username": "a", "password": "p", "owner": 1}"#).to_string();
        assert!(unknown.contains("unknown field `owner`"), "{unknown}");
    }

    #[test]
    fn request_bodies_read_whole_numbers_as_integers() {
        let body = br#"{"username": "a", "password": "p", "limits": {"cpu": 5.0}}"#;
        let user: NewUser = request_object(body).unwrap();
        assert_eq!(user.limits.unwrap().cpu, 5);
        assert!(object::<NewUser>(body).is_err(), "object() reads numbers as they are");
        for fraction in ["5.5", "1e30", "-1.0"] {
            let body = format!(r#"{{"username": "a", "password": "p", "limits": {{"cpu": {fraction}}}}}"#);
            assert!(request_object::<NewUser>(body.as_bytes()).is_err(), "{fraction}");
        }
        let mut value = serde_json::json!({"a": [-0.0, 9.007199254740992e15, 1.844_674_407_370_955e19]});
        integral_numbers(&mut value);
        assert_eq!(value, serde_json::json!({"a": [0, 9_007_199_254_740_992_i64, 18_446_744_073_709_549_568_u64]}));
    }
}
