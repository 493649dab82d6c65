//! Property tests of the request parsers ([`query_pairs`], [`page_limit`], [`precondition`],
//! [`json_body`] and [`crate::input`] under it): whatever a client sends, the answer is a value
//! or a 4xx [`Error`] (never a panic, never a 500), messages never quote a submitted value, and
//! what is valid comes through exactly as it was sent.

use bytes::Bytes;
use http::{HeaderValue, header};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;
use crate::apps::{AppInput, Precondition};
use crate::testing::config;

const KNOWN: [&str; 4] = ["limit", "next", "category", "product_area"];

fn get(path_and_query: &str) -> ApiRequest {
    http::Request::builder().uri(path_and_query).body(Bytes::new()).expect("a valid request")
}

fn with_headers(headers: &[(header::HeaderName, HeaderValue)]) -> ApiRequest {
    let mut req = get("/apps/a");
    for (name, value) in headers {
        req.headers_mut().append(name.clone(), value.clone());
    }
    req
}

fn post(content_type: &str, body: Vec<u8>) -> ApiRequest {
    let mut req = http::Request::builder().method(Method::PUT).uri("/apps/a").body(Bytes::from(body)).unwrap();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        req.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    req
}

/// A refusal a client can act on: 4xx with `code`.
fn client_error(e: &Error, codes: &[&str]) -> Result<(), TestCaseError> {
    prop_assert!(e.status().is_client_error(), "{e:?} is not a 4xx");
    prop_assert!(codes.contains(&e.code()), "{e:?}: code {} not in {codes:?}", e.code());
    Ok(())
}

/// `q` with each `%` and two hex digits as its byte (`q` is ASCII).
fn percent_decoded(q: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < q.len() {
        let escape =
            q.get(i + 1..i + 3).filter(|h| q.as_bytes()[i] == b'%' && h.bytes().all(|b| b.is_ascii_hexdigit()));
        match escape.map(|h| u8::from_str_radix(h, 16)) {
            Some(Ok(byte)) => {
                out.push(byte);
                i += 3;
            }
            _ => {
                out.push(q.as_bytes()[i]);
                i += 1;
            }
        }
    }
    out
}

/// Characters a query string may carry as sent (RFC 3986 query, with `%` escapes).
fn raw_query() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("limit".to_owned()),
        Just("next".to_owned()),
        Just("category".to_owned()),
        Just("=".to_owned()),
        Just("&".to_owned()),
        Just("%".to_owned()),
        "%[0-9A-Fa-f]{2}",
        "[A-Za-z0-9._~!$'()*+,;=:@/?-]{1,6}",
    ];
    proptest::collection::vec(piece, 0..16).prop_map(|v| v.concat())
}

/// An `If-Match` / `If-None-Match` value built from the pieces its grammar is made of, with
/// stray bytes: visible ASCII, tabs and obs-text (which `to_str` refuses).
fn header_soup() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"\"".to_vec()),
        Just(b"W/".to_vec()),
        Just(b",".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\t".to_vec()),
        Just(b"*".to_vec()),
        Just(b"\"abc\"".to_vec()),
        Just(b"W/\"w\"".to_vec()),
        "[!-~]{1,4}".prop_map(String::into_bytes),
        (0x80u8..=0xff).prop_map(|b| vec![b]),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

/// An entity tag's content (RFC 9110 `etagc`, visible ASCII but `"`; commas included).
fn etag() -> impl Strategy<Value = String> {
    "[!#-~]{0,16}"
}

/// Optional whitespace.
fn ows() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", " ", "  ", "\t", " \t "])
}

/// Any JSON value, its strings marked (`zq` and 8 letters or digits) so that a message quoting
/// one is seen; object keys are `AppInput`'s fields or one unknown name.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (1_000_000i64..i64::MAX).prop_map(|n| json!(n)),
        (1_000_000.5f64..1e15).prop_map(|f| json!(f)),
        marker().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((field_name(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn marker() -> impl Strategy<Value = String> {
    "zq[a-z0-9]{8}"
}

const FIELDS: [&str; 13] = [
    "slug",
    "function_id",
    "function_version_id",
    "title",
    "description",
    "version",
    "image",
    "icon",
    "category",
    "product_area",
    "group",
    "published_at",
    "updated_at",
];

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![prop::sample::select(FIELDS.to_vec()).prop_map(str::to_owned), Just("owner".to_owned())]
}

/// What `value` holds that a message must not repeat, at any depth: its marked strings and
/// its (large) numbers.
fn sent_values(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|i| sent_values(i, out)),
        Value::Object(map) => map.values().for_each(|v| sent_values(v, out)),
        _ => {}
    }
}

/// An `AppInput` body: every string any text at all (the parser does not judge content;
/// [`AppInput::validate`] does), optional fields present or not, `image`/`icon` also `null`.
fn app_body() -> impl Strategy<Value = Map<String, Value>> {
    let text = || any::<String>().prop_map(Value::String);
    let optional = || proptest::option::of(text());
    let nullable = || proptest::option::of(prop_oneof![Just(Value::Null), text()]);
    (
        (optional(), text(), text(), text()),
        (optional(), optional(), optional(), optional(), optional()),
        (nullable(), nullable(), proptest::option::of(json_value())),
    )
        .prop_map(|(required, optionals, rest)| {
            let (slug, function_id, function_version_id, title) = required;
            let (description, version, category, product_area, group) = optionals;
            let (image, icon, updated_at) = rest;
            let fields = [
                ("slug", slug),
                ("function_id", Some(function_id)),
                ("function_version_id", Some(function_version_id)),
                ("title", Some(title)),
                ("description", description),
                ("version", version),
                ("category", category),
                ("product_area", product_area),
                ("group", group),
                ("image", image),
                ("icon", icon),
                // Server-managed: any value, accepted and ignored.
                ("updated_at", updated_at),
            ];
            fields.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_owned(), v))).collect()
        })
}

fn text_of(body: &Map<String, Value>, key: &str) -> String {
    body.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_query_string_is_read_or_refused_as_invalid_query(q in raw_query()) {
        // `raw_query` makes URI characters only: every case is a request (none skipped).
        let req = get(&format!("/apps?{q}"));
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(q.as_bytes()).map(|(n, v)| (n.into_owned(), v.into_owned())).collect();
        let names_ok = pairs.iter().all(|(n, _)| KNOWN.contains(&n.as_str()))
            && pairs.iter().enumerate().all(|(i, (n, _))| pairs[..i].iter().all(|(m, _)| m != n));
        // Escapes that are not UTF-8 are refused, never read as U+FFFD.
        let text = String::from_utf8(percent_decoded(&q)).is_ok();
        match query_pairs(req.uri().query().unwrap_or(""), &KNOWN) {
            Ok(got) => {
                prop_assert!(names_ok && text);
                prop_assert_eq!(got, pairs);
            }
            Err(e) => {
                prop_assert!(!names_ok || !text, "refused {:?}: {:?}", q, e);
                client_error(&e, &[codes::INVALID_QUERY])?;
            }
        }
    }

    #[test]
    fn known_parameters_with_any_values_round_trip(
        values in proptest::collection::vec(proptest::option::of(any::<String>()), KNOWN.len()),
        order in Just((0..KNOWN.len()).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        let sent: Vec<(String, String)> = order
            .iter()
            .filter_map(|&i| values[i].as_ref().map(|v| (KNOWN[i].to_owned(), v.clone())))
            .collect();
        let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(&sent).finish();
        let got = query_pairs(get(&format!("/apps?{query}")).uri().query().unwrap_or(""), &KNOWN).expect("known, unrepeated names");
        prop_assert_eq!(got, sent);
    }

    #[test]
    fn any_limit_is_a_page_size_in_range_or_invalid_query(limit in any::<String>()) {
        let config = Config::default();
        match page_limit(Some(&limit), &config) {
            Ok(n) => prop_assert!((1..=config.page_size_max).contains(&n), "{limit:?} gave {n}"),
            Err(e) => client_error(&e, &[codes::INVALID_QUERY])?,
        }
    }

    #[test]
    fn a_positive_integer_of_any_size_is_clamped_to_the_maximum(digits in "0{0,3}[1-9][0-9]{0,60}") {
        let config = Config::default();
        let max = config.page_size_max;
        let want = digits.parse::<u64>().map_or(max, |n| n.min(u64::from(max)) as u32);
        prop_assert_eq!(page_limit(Some(&digits), &config).unwrap(), want);
        let zeros = "0".repeat(digits.len() % 5 + 1);
        client_error(&page_limit(Some(&zeros), &config).unwrap_err(), &[codes::INVALID_QUERY])?;
    }

    #[test]
    fn any_precondition_header_is_read_or_refused_as_invalid_header(
        if_match in proptest::option::of(header_soup()),
        if_none_match in proptest::option::of(header_soup()),
    ) {
        let mut headers = Vec::new();
        for (name, bytes) in [(header::IF_MATCH, &if_match), (header::IF_NONE_MATCH, &if_none_match)] {
            if let Some(v) = bytes.as_ref().and_then(|b| HeaderValue::from_bytes(b).ok()) {
                headers.push((name, v));
            }
        }
        match precondition(&with_headers(&headers)) {
            Ok(Precondition::IfMatch(tags)) => {
                prop_assert!(!tags.is_empty());
                // What was read reads the same once written back.
                let again: Vec<String> =
                    tags.iter().map(|t| if t.starts_with("W/\"") { t.clone() } else { format!("\"{t}\"") }).collect();
                let v = HeaderValue::from_str(&again.join(", ")).unwrap();
                prop_assert_eq!(precondition(&with_headers(&[(header::IF_MATCH, v)])).unwrap(), Precondition::IfMatch(tags));
            }
            Ok(Precondition::IfMatchAny) => prop_assert!(headers.iter().any(|(n, _)| n == header::IF_MATCH)),
            Ok(Precondition::IfNoneMatchAny) => prop_assert!(headers.iter().all(|(n, _)| n != header::IF_MATCH)),
            Ok(Precondition::None) => prop_assert!(headers.is_empty()),
            Err(e) => client_error(&e, &[codes::INVALID_HEADER])?,
        }
    }

    #[test]
    fn a_list_of_entity_tags_round_trips(
        tags in proptest::collection::vec((any::<bool>(), etag(), ows(), ows(), any::<bool>()), 1..6),
    ) {
        let mut value = String::new();
        let mut want = Vec::new();
        for (i, (weak, tag, before, after, empty_element)) in tags.iter().enumerate() {
            if i > 0 {
                value.push(',');
            }
            if *empty_element {
                // RFC 9110 §5.6.1: empty list elements are allowed and ignored.
                value.push_str(before);
                value.push(',');
            }
            value.push_str(before);
            if *weak {
                value.push_str(&format!("W/\"{tag}\""));
                want.push(format!("W/\"{tag}\""));
            } else {
                value.push_str(&format!("\"{tag}\""));
                want.push(tag.clone());
            }
            value.push_str(after);
        }
        let v = HeaderValue::from_str(&value).unwrap();
        prop_assert_eq!(precondition(&with_headers(&[(header::IF_MATCH, v)])).unwrap(), Precondition::IfMatch(want));
        // A star alone, with any whitespace, is "any".
        let star = HeaderValue::from_str(&format!("{}*{}", tags[0].2, tags[0].3)).unwrap();
        prop_assert_eq!(precondition(&with_headers(&[(header::IF_MATCH, star.clone())])).unwrap(), Precondition::IfMatchAny);
        prop_assert_eq!(precondition(&with_headers(&[(header::IF_NONE_MATCH, star)])).unwrap(), Precondition::IfNoneMatchAny);
    }

    #[test]
    fn any_body_bytes_are_read_or_refused_as_a_client_error(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        match json_body::<AppInput>(&post("application/json", body), &Config::default()) {
            Ok(_) => {}
            Err(e) => client_error(&e, &[codes::INVALID_JSON, codes::INVALID_BODY])?,
        }
    }

    #[test]
    fn any_json_is_read_or_refused_without_quoting_a_value(value in json_value()) {
        let body = serde_json::to_vec(&value).unwrap();
        if let Err(e) = json_body::<AppInput>(&post("application/json", body), &Config::default()) {
            client_error(&e, &[codes::INVALID_BODY])?;
            let said = serde_json::to_string(&e.body()).unwrap();
            let mut sent = Vec::new();
            sent_values(&value, &mut sent);
            for s in sent {
                prop_assert!(!said.contains(&s), "{} quotes {}", said, s);
            }
            if !value.is_object() {
                prop_assert!(said.contains("must be a JSON object"), "{}", said);
            }
        }
    }

    #[test]
    fn a_valid_body_is_read_as_sent(body in app_body()) {
        let bytes = serde_json::to_vec(&body).unwrap();
        let got: AppInput = json_body(&post("application/json; charset=utf-8", bytes), &Config::default()).unwrap();
        prop_assert_eq!(got.slug, body.get("slug").and_then(Value::as_str).map(str::to_owned));
        prop_assert_eq!(got.function_id, text_of(&body, "function_id"));
        prop_assert_eq!(got.function_version_id, text_of(&body, "function_version_id"));
        prop_assert_eq!(got.title, text_of(&body, "title"));
        prop_assert_eq!(got.description, text_of(&body, "description"));
        prop_assert_eq!(got.version, text_of(&body, "version"));
        prop_assert_eq!(got.category, text_of(&body, "category"));
        prop_assert_eq!(got.product_area, text_of(&body, "product_area"));
        prop_assert_eq!(got.group, text_of(&body, "group"));
        prop_assert_eq!(got.image, body.get("image").and_then(Value::as_str).map(str::to_owned));
        prop_assert_eq!(got.icon, body.get("icon").and_then(Value::as_str).map(str::to_owned));
    }

    #[test]
    fn a_wrongly_typed_field_is_named_and_its_value_never_quoted(
        body in app_body(),
        field in prop::sample::select(FIELDS[..11].to_vec()),
        wrong in prop_oneof![
            (1_000_000i64..i64::MAX).prop_map(|n| (json!(n), "a number")),
            any::<bool>().prop_map(|b| (json!(b), "a boolean")),
            marker().prop_map(|m| (json!([m]), "an array")),
            marker().prop_map(|m| (json!({"k": m}), "an object")),
        ],
    ) {
        let (value, kind) = wrong;
        let mut body = body;
        body.insert(field.to_owned(), value.clone());
        let e = json_body::<AppInput>(&post("application/json", serde_json::to_vec(&body).unwrap()), &Config::default())
            .unwrap_err();
        client_error(&e, &[codes::INVALID_BODY])?;
        prop_assert_eq!(e.to_string(), format!("field '{field}': expected a string, found {kind}"));
    }

    #[test]
    fn only_json_media_types_are_read(
        kind in prop::sample::select(vec!["application", "Application", "APPLICATION", "text", "image", ""]),
        sub in prop::sample::select(vec!["json", "JSON", "vnd.portico+json", "problem+JSON", "xml", "json5", "x-www-form-urlencoded", "jsonx", ""]),
        params in prop::sample::select(vec!["", "; charset=utf-8", ";charset=\"x\"", " ; q=1"]),
    ) {
        let content_type = format!("{kind}/{sub}{params}");
        let json_mime = kind.eq_ignore_ascii_case("application")
            && (sub.eq_ignore_ascii_case("json") || sub.to_ascii_lowercase().ends_with("+json"));
        let result = json_body::<Value>(&post(&content_type, b"{}".to_vec()), &Config::default());
        match result {
            Ok(v) => {
                prop_assert!(json_mime, "{content_type} was read");
                prop_assert_eq!(v, json!({}));
            }
            Err(e) => {
                prop_assert!(!json_mime, "{content_type}: {e:?}");
                prop_assert_eq!(e.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
            }
        }
    }

    #[test]
    fn a_body_over_the_limit_is_413_whatever_it_holds(extra in 1usize..64, byte in any::<u8>()) {
        let config = Config { max_body_bytes: 64, ..Config::default() };
        let e = json_body::<Value>(&post("application/json", vec![byte; 64 + extra]), &config).unwrap_err();
        prop_assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}

/// The two refusals the properties above found, as examples: an entity tag may hold a comma,
/// and a page size beyond `u64` is still a positive integer.
#[test]
fn found_by_the_properties() {
    let v = HeaderValue::from_static(r#""a,b", W/"c,d" ,, "e""#);
    let want = Precondition::IfMatch(vec!["a,b".into(), "W/\"c,d\"".into(), "e".into()]);
    assert_eq!(precondition(&with_headers(&[(header::IF_MATCH, v)])).unwrap(), want);
    let config = Config::default();
    assert_eq!(page_limit(Some("99999999999999999999999"), &config).unwrap(), config.page_size_max);
}
