//! The RPC gateway's routes in the OpenAPI document, from the loaded descriptors: one
//! `POST /<package.Service>/<Method>` per method of each exposed service, its request and
//! response messages as JSON Schema in the proto3 JSON mapping the gateway speaks
//! ([`crate::transcode`]). Built at run time, so a descriptor set added by configuration
//! appears as well; services learnt by reflection are not (the apps function, which serves the
//! document, does not dial upstreams).

use std::collections::BTreeSet;

use portico_core::openapi::bearer_security;
use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor};
use serde_json::json;
use utoipa::openapi::path::{HttpMethod, OperationBuilder};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, Ref, Schema, SchemaFormat, Type,
};
use utoipa::openapi::{ContentBuilder, OpenApi, RefOr};

use crate::descriptors::{DescriptorError, Descriptors};

/// The component holding grpc-gateway's error body.
const RPC_ERROR: &str = "RpcError";

/// The document for `config`, from `committed` (the whole document for the default
/// configuration, as `openapi.json` holds it): as it is when `config` exposes the default
/// services, else with the default services' methods and message schemas swapped for those
/// `config` exposes.
pub fn served(committed: &str, config: &portico_core::Config) -> Result<String, DescriptorError> {
    let default = portico_core::Config::default();
    if config.rpc_services == default.rpc_services && config.rpc_descriptor_sets.is_empty() {
        return Ok(committed.to_owned());
    }
    let methods = |descriptors: &Descriptors| {
        let mut api = OpenApi::default();
        add_methods(&mut api, descriptors);
        serde_json::to_value(&api).unwrap_or_default()
    };
    let (old, new) = (methods(&Descriptors::configured(&default)?), methods(&Descriptors::configured(config)?));
    let mut doc: serde_json::Value =
        serde_json::from_str(committed).map_err(|e| DescriptorError::File("openapi.json".into(), e.to_string()))?;
    for (section, at) in [("paths", "/paths"), ("schemas", "/components/schemas")] {
        let (Some(old), Some(new)) =
            (old.pointer(at).and_then(|v| v.as_object()), new.pointer(at).and_then(|v| v.as_object()))
        else {
            continue;
        };
        if let Some(map) = doc.pointer_mut(at).and_then(|v| v.as_object_mut()) {
            map.retain(|name, _| !old.contains_key(name));
            map.extend(new.clone());
        } else {
            tracing::warn!(section, "the committed document has no such section");
        }
    }
    Ok(serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n")
}

/// Adds every exposed method of `descriptors` to `api`, with its message schemas.
pub fn add_methods(api: &mut OpenApi, descriptors: &Descriptors) {
    let mut messages = Messages::default();
    for service in descriptors.services() {
        for method in service.methods() {
            let path = format!("/{}/{}", service.full_name(), method.name());
            api.paths.add_path_operation(
                path,
                vec![HttpMethod::Post],
                operation(service.full_name(), &method, &mut messages),
            );
        }
    }
    let components = api.components.get_or_insert_with(Default::default);
    components.schemas.insert(RPC_ERROR.into(), rpc_error_schema());
    components.schemas.extend(messages.schemas);
}

fn operation(service: &str, method: &MethodDescriptor, messages: &mut Messages) -> utoipa::openapi::path::Operation {
    let streaming = method.is_client_streaming() || method.is_server_streaming();
    let description = if streaming {
        "A streaming method: the gateway does not serve it (501).".to_owned()
    } else {
        format!(
            "`{}` in, `{}` out, as protojson (lowerCamelCase names out, either spelling in; 64-bit integers \
             as strings; enums by name). Needs `rpc.call` on the upstream's group.",
            method.input().full_name(),
            method.output().full_name()
        )
    };
    let error = |what: &str| {
        ResponseBuilder::new()
            .description(what)
            .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name(RPC_ERROR))).build())
            .build()
    };
    let mut responses = ResponsesBuilder::new();
    if !streaming {
        let ok = ContentBuilder::new().schema(Some(messages.reference(&method.output()))).build();
        responses = responses.response(
            "200",
            ResponseBuilder::new()
                .description("The response message. Fields the server ignored are named in `Portico-Ignored-Fields`.")
                .content("application/json", ok),
        );
    }
    for (status, what) in [
        (
            "400",
            "The body does not fit the request message (INVALID_ARGUMENT, 3), or the upstream's INVALID_ARGUMENT, \
             FAILED_PRECONDITION (9) or OUT_OF_RANGE (11)",
        ),
        ("401", "No valid bearer token (UNAUTHENTICATED, 16)"),
        ("403", "Not allowed (PERMISSION_DENIED, 7)"),
        ("404", "Unknown method (NOT_FOUND, 5), or the upstream's NOT_FOUND"),
        ("409", "The upstream's ALREADY_EXISTS (6) or ABORTED (10)"),
        ("429", "The upstream's RESOURCE_EXHAUSTED (8)"),
        ("499", "The upstream's CANCELLED (1)"),
        ("500", "The upstream's INTERNAL (13), UNKNOWN (2) or DATA_LOSS (15)"),
        ("501", "A streaming method, or one the upstream does not implement (UNIMPLEMENTED, 12)"),
        ("502", "The answer is too large for a Lambda response (RESOURCE_EXHAUSTED, 8)"),
        ("503", "The upstream cannot be reached (UNAVAILABLE, 14)"),
        ("504", "The upstream took longer than `rpc_deadline_ms` (DEADLINE_EXCEEDED, 4)"),
    ] {
        responses = responses.response(status, error(what));
    }
    let body = RequestBodyBuilder::new()
        .content("application/json", ContentBuilder::new().schema(Some(messages.reference(&method.input()))).build())
        .required(Some(utoipa::openapi::Required::False))
        .description(Some("The request message; an empty body is `{}`."))
        .build();
    OperationBuilder::new()
        .tag(format!("rpc: {service}"))
        .operation_id(Some(format!("{service}.{}", method.name())))
        .summary(Some(method.name()))
        .description(Some(description))
        .request_body(Some(body))
        .responses(responses.build())
        .securities(Some(bearer_security()))
        .build()
}

/// grpc-gateway's error body (`{"code": <gRPC code>, "message", "details"}`).
fn rpc_error_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .description(Some("An error in grpc-gateway's shape: `code` is the gRPC status code."))
        .property(
            "code",
            ObjectBuilder::new().schema_type(Type::Integer).format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32))),
        )
        .property("message", ObjectBuilder::new().schema_type(Type::String))
        .property(
            "details",
            ArrayBuilder::new()
                .items(ObjectBuilder::new().property("@type", ObjectBuilder::new().schema_type(Type::String))),
        )
        .required("code")
        .required("message")
        .examples([json!({"code": 5, "message": "show not found", "details": []})])
        .into()
}

/// Message and enum schemas, as components named by full name, made once each.
#[derive(Default)]
struct Messages {
    schemas: std::collections::BTreeMap<String, RefOr<Schema>>,
    seen: BTreeSet<String>,
}

impl Messages {
    /// A reference to `message`'s schema (made on first use), or the well-known type inline.
    fn reference(&mut self, message: &MessageDescriptor) -> RefOr<Schema> {
        if let Some(known) = well_known(message.full_name()) {
            return known;
        }
        let name = message.full_name().to_owned();
        if self.seen.insert(name.clone()) {
            let mut object = ObjectBuilder::new().schema_type(Type::Object).title(Some(name.clone()));
            for field in message.fields() {
                object = object.property(field.json_name(), self.field(&field));
            }
            self.schemas.insert(name.clone(), object.into());
        }
        Ref::from_schema_name(name).into()
    }

    fn enumeration(&mut self, e: &EnumDescriptor) -> RefOr<Schema> {
        if e.full_name() == "google.protobuf.NullValue" {
            return ObjectBuilder::new().schema_type(Type::Null).into();
        }
        let name = e.full_name().to_owned();
        if self.seen.insert(name.clone()) {
            let names: Vec<String> = e.values().map(|v| v.name().to_owned()).collect();
            let schema = ObjectBuilder::new()
                .schema_type(Type::String)
                .title(Some(name.clone()))
                .description(Some("By name; numbers are accepted in."))
                .enum_values(Some(names));
            self.schemas.insert(name.clone(), schema.into());
        }
        Ref::from_schema_name(name).into()
    }

    fn field(&mut self, field: &FieldDescriptor) -> RefOr<Schema> {
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else { unreachable!("a map field is a message") };
            let value = self.single(&entry.map_entry_value_field().kind());
            return ObjectBuilder::new()
                .schema_type(Type::Object)
                .additional_properties(Some(AdditionalProperties::RefOr(value)))
                .into();
        }
        let single = self.single(&field.kind());
        match field.kind() {
            _ if field.is_list() => ArrayBuilder::new().items(single).into(),
            // An unset message field is `null` out (as grpc-gateway writes it), and `null` in
            // leaves it unset.
            Kind::Message(_) => {
                AnyOfBuilder::new().item(single).item(ObjectBuilder::new().schema_type(Type::Null)).into()
            }
            _ => single,
        }
    }

    /// The schema of one value of `kind` (proto3 JSON mapping).
    fn single(&mut self, kind: &Kind) -> RefOr<Schema> {
        let typed = |t: Type, format: Option<KnownFormat>| {
            ObjectBuilder::new().schema_type(t).format(format.map(SchemaFormat::KnownFormat)).into()
        };
        // Unsigned and 64-bit integers keep their proto type as a custom format.
        let custom = |t: Type, format: &str| {
            ObjectBuilder::new().schema_type(t).format(Some(SchemaFormat::Custom(format.into()))).into()
        };
        match kind {
            Kind::Double => typed(Type::Number, Some(KnownFormat::Double)),
            Kind::Float => typed(Type::Number, Some(KnownFormat::Float)),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => typed(Type::Integer, Some(KnownFormat::Int32)),
            Kind::Uint32 | Kind::Fixed32 => custom(Type::Integer, "uint32"),
            // 64-bit integers are JSON strings, so no precision is lost in JavaScript.
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => typed(Type::String, Some(KnownFormat::Int64)),
            Kind::Uint64 | Kind::Fixed64 => custom(Type::String, "uint64"),
            Kind::Bool => typed(Type::Boolean, None),
            Kind::String => typed(Type::String, None),
            Kind::Bytes => ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Byte)))
                .content_encoding("base64")
                .into(),
            Kind::Message(m) => self.reference(m),
            Kind::Enum(e) => self.enumeration(e),
        }
    }
}

/// The well-known types' special JSON forms (protobuf's JSON mapping table).
fn well_known(name: &str) -> Option<RefOr<Schema>> {
    let string = |format: &str| {
        ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::Custom(format.into()))).into()
    };
    let of = |t: Type| ObjectBuilder::new().schema_type(t).into();
    Some(match name {
        "google.protobuf.Timestamp" => string("date-time"),
        "google.protobuf.Duration" => string("duration"),
        "google.protobuf.FieldMask" => string("field-mask"),
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => string("int64"),
        "google.protobuf.StringValue" | "google.protobuf.BytesValue" => of(Type::String),
        "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => of(Type::Integer),
        "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => of(Type::Number),
        "google.protobuf.BoolValue" => of(Type::Boolean),
        "google.protobuf.Struct" | "google.protobuf.Empty" | "google.protobuf.Any" => of(Type::Object),
        "google.protobuf.ListValue" => ArrayBuilder::new().items(RefOr::T(Schema::default())).into(),
        // Any JSON value.
        "google.protobuf.Value" => RefOr::T(Schema::default()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use portico_core::openapi as doc;

    use super::*;

    /// The document's shared parts and the methods `config` exposes.
    fn document(config: &portico_core::Config) -> Result<OpenApi, DescriptorError> {
        let mut api = doc::spec();
        add_methods(&mut api, &Descriptors::configured(config)?);
        Ok(api)
    }

    fn spec() -> serde_json::Value {
        let mut api = doc::spec();
        add_methods(&mut api, &Descriptors::opencue(&["*".into()]));
        serde_json::to_value(&api).unwrap()
    }

    /// A deployment exposing other services than the default gets the committed document with
    /// the default services' methods and messages swapped for its own, exactly as generated.
    #[test]
    fn the_served_document_swaps_in_the_configured_services() {
        let default = portico_core::Config::default();
        let committed = doc::to_json(&document(&default).unwrap());
        assert_eq!(served(&committed, &default).unwrap(), committed, "the default is served as committed");
        let narrow = portico_core::Config { rpc_services: vec!["show.ShowInterface".into()], ..default.clone() };
        let swapped = served(&committed, &narrow).unwrap();
        let generated = doc::to_json(&document(&narrow).unwrap());
        let (swapped, generated): (serde_json::Value, serde_json::Value) =
            (serde_json::from_str(&swapped).unwrap(), serde_json::from_str(&generated).unwrap());
        assert_eq!(swapped, generated);
        assert!(swapped["paths"].get("/job.JobInterface/GetFrames").is_none(), "an unexposed service is gone");
        assert!(swapped["paths"].get("/show.ShowInterface/FindShow").is_some());
    }

    #[test]
    fn every_exposed_method_is_a_post_route_with_its_messages() {
        let spec = spec();
        let schemas = &spec["components"]["schemas"];
        let find = &spec["paths"]["/show.ShowInterface/FindShow"]["post"];
        assert_eq!(
            find["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/show.ShowFindShowRequest"
        );
        assert_eq!(schemas["show.ShowFindShowRequest"]["properties"]["name"]["type"], "string");
        assert_eq!(
            find["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/show.ShowFindShowResponse"
        );
        assert_eq!(find["security"], serde_json::to_value(bearer_security()).unwrap());
        let rpc_paths = spec["paths"].as_object().unwrap().len() - doc::spec().paths.paths.len();
        assert_eq!(rpc_paths, 304, "every method of OpenCue's whole API");
    }

    #[test]
    fn fields_follow_the_proto3_json_mapping() {
        let spec = spec();
        let schemas = &spec["components"]["schemas"];
        let frame = &schemas["job.Frame"]["properties"];
        assert_eq!(frame["maxRss"], json!({"type": "string", "format": "int64"}));
        assert!(frame.get("max_rss").is_none(), "lowerCamelCase names");
        let states = schemas["job.JobState"]["enum"].as_array().unwrap();
        assert!(states.contains(&json!("PENDING")) && states.contains(&json!("FINISHED")), "{states:?}");
        assert_eq!(schemas["job.Job"]["properties"]["state"]["$ref"], "#/components/schemas/job.JobState");
        // repeated → array of references.
        assert_eq!(schemas["job.FrameSeq"]["properties"]["frames"]["items"]["$ref"], "#/components/schemas/job.Frame");
    }

    #[test]
    fn only_exposed_services_appear() {
        let mut api = doc::spec();
        add_methods(&mut api, &Descriptors::opencue(&["show.ShowInterface".into()]));
        let core = doc::spec().paths.paths;
        let paths: Vec<&String> = api.paths.paths.keys().filter(|p| !core.contains_key(*p)).collect();
        assert!(!paths.is_empty() && paths.iter().all(|p| p.starts_with("/show.ShowInterface/")), "{paths:?}");
    }

    #[test]
    fn maps_bytes_and_well_known_types() {
        // None of OpenCue's services is exposed, so only the test's (a set's are, always).
        let mut d = Descriptors::opencue(&[]);
        let set = protox_free_set();
        d.add_set(&set, "test").unwrap();
        let mut api = doc::spec();
        add_methods(&mut api, &d);
        let schemas = serde_json::to_value(&api.components.unwrap().schemas).unwrap();
        let p = &schemas["t.Req"]["properties"];
        assert_eq!(p["labels"]["additionalProperties"]["type"], "string");
        assert_eq!(p["blob"], json!({"type": "string", "format": "byte", "contentEncoding": "base64"}));
        assert_eq!(p["count"]["type"], "string");
        assert_eq!(p["when"]["anyOf"][0]["format"], "date-time");
        assert_eq!(p["when"]["anyOf"][1]["type"], "null", "an unset message is null");
        let added = api.paths.paths.len() - doc::spec().paths.paths.len();
        assert_eq!(added, 1, "only t.T/Call: OpenCue's services are not exposed");
    }

    /// A descriptor set for `t.proto` (a service `t.T` with `Call(Req) returns (Req)`), built
    /// by hand so the test needs no compiler.
    fn protox_free_set() -> Vec<u8> {
        use prost::Message;
        use prost_reflect::prost_types::field_descriptor_proto::{Label, Type as T};
        use prost_reflect::prost_types::{
            DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet, MessageOptions,
            MethodDescriptorProto, ServiceDescriptorProto,
        };
        let field =
            |name: &str, json: &str, number: i32, ty: T, type_name: Option<&str>, label: Label| FieldDescriptorProto {
                name: Some(name.into()),
                json_name: Some(json.into()),
                number: Some(number),
                r#type: Some(ty as i32),
                type_name: type_name.map(str::to_owned),
                label: Some(label as i32),
                ..Default::default()
            };
        let entry = DescriptorProto {
            name: Some("LabelsEntry".into()),
            field: vec![
                field("key", "key", 1, T::String, None, Label::Optional),
                field("value", "value", 2, T::String, None, Label::Optional),
            ],
            options: Some(MessageOptions { map_entry: Some(true), ..Default::default() }),
            ..Default::default()
        };
        let req = DescriptorProto {
            name: Some("Req".into()),
            field: vec![
                field("labels", "labels", 1, T::Message, Some(".t.Req.LabelsEntry"), Label::Repeated),
                field("blob", "blob", 2, T::Bytes, None, Label::Optional),
                field("count", "count", 3, T::Uint64, None, Label::Optional),
                field("when", "when", 4, T::Message, Some(".google.protobuf.Timestamp"), Label::Optional),
            ],
            nested_type: vec![entry],
            ..Default::default()
        };
        let timestamp = FileDescriptorProto {
            name: Some("google/protobuf/timestamp.proto".into()),
            package: Some("google.protobuf".into()),
            syntax: Some("proto3".into()),
            message_type: vec![DescriptorProto {
                name: Some("Timestamp".into()),
                field: vec![
                    field("seconds", "seconds", 1, T::Int64, None, Label::Optional),
                    field("nanos", "nanos", 2, T::Int32, None, Label::Optional),
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let file = FileDescriptorProto {
            name: Some("t.proto".into()),
            package: Some("t".into()),
            syntax: Some("proto3".into()),
            dependency: vec!["google/protobuf/timestamp.proto".into()],
            message_type: vec![req],
            service: vec![ServiceDescriptorProto {
                name: Some("T".into()),
                method: vec![MethodDescriptorProto {
                    name: Some("Call".into()),
                    input_type: Some(".t.Req".into()),
                    output_type: Some(".t.Req".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        FileDescriptorSet { file: vec![timestamp, file] }.encode_to_vec()
    }
}
