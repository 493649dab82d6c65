//! `portico rpc`: the RPC gateway's routes, `GET /rpc/services` and
//! `POST /<package.Service>/<Method>`.

use std::io::Read;

use portico_core::web::IGNORED_FIELDS_HEADER;
use reqwest::Method;
use serde_json::Value;

use super::args::RpcCommand;
use super::{Client, Failure, show};

const EXAMPLE: &str = "e.g. portico rpc call show.ShowInterface/FindShow '{\"name\": \"testshow\"}'";

pub(super) async fn run(client: &Client, json_out: bool, command: RpcCommand) -> Result<(), Failure> {
    match command {
        RpcCommand::List => {
            let listing = client.call(Method::GET, "/rpc/services", None).await?;
            show(json_out, &listing, listing_text);
        }
        RpcCommand::Call { method, request } => {
            // Both are checked before anything is sent, so a typo never reaches the upstream.
            let path = method_path(&method)?;
            let body = request_body(request.as_deref())?;
            let req = client.request(Method::POST, &path).header("content-type", "application/json").body(body);
            let resp = client.send(req).await?;
            if let Some(ignored) = resp.headers().get(IGNORED_FIELDS_HEADER) {
                let names = String::from_utf8_lossy(ignored.as_bytes());
                eprintln!("portico: warning: the gateway ignored request fields it does not know: {names}");
            }
            let answer = Client::answer(resp).await?;
            show(true, &answer, |_| String::new());
        }
    }
    Ok(())
}

/// One header line per service, then one line per method.
fn listing_text(listing: &Value) -> String {
    let mut out = Vec::new();
    for service in listing["services"].as_array().into_iter().flatten() {
        let name = service["name"].as_str().unwrap_or("?");
        match service["group"].as_str() {
            Some(group) => out.push(format!("{name}  (group {group})")),
            None => out.push(format!("{name}  (no upstream serves it)")),
        }
        for m in service["methods"].as_array().into_iter().flatten() {
            let field = |n: &str| m[n].as_str().unwrap_or("?").to_owned();
            out.push(format!("  {name}/{}  ({} -> {})", field("name"), field("request"), field("response")));
        }
    }
    if out.is_empty() {
        out.push("no services exposed".into());
    }
    out.join("\n")
}

/// `pkg.Service/Method` (a leading `/`, as listed paths have, is accepted) as the route's path.
fn method_path(arg: &str) -> Result<String, Failure> {
    let bad = || Failure::Usage(format!("{arg:?} is not a method: give PKG.SERVICE/METHOD, {EXAMPLE}"));
    let (service, method) = arg.strip_prefix('/').unwrap_or(arg).split_once('/').ok_or_else(bad)?;
    let ident = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !service.contains('.') || !service.split('.').all(ident) || !ident(method) {
        return Err(bad());
    }
    Ok(format!("/{service}/{method}"))
}

/// The request's JSON text, sent as written (re-serializing could round large numbers).
fn request_body(arg: Option<&str>) -> Result<String, Failure> {
    let text = match arg {
        None => return Ok("{}".into()),
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Failure::Local(format!("reading the request: {e}")))?;
            text
        }
        Some(text) => text.to_owned(),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(_)) => Ok(text),
        Ok(_) => Err(Failure::Usage(format!("the request must be a JSON object, {EXAMPLE}"))),
        Err(e) => Err(Failure::Usage(format!("the request is not valid JSON ({e}), {EXAMPLE}"))),
    }
}

/// gRPC's name for a status code number, as `grpc-gateway` error bodies carry only the number.
pub(super) fn code_name(code: u64) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    match NAMES.get(code as usize) {
        Some(name) => name.to_string(),
        None => format!("gRPC code {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_paths() {
        assert_eq!(method_path("show.ShowInterface/FindShow").ok().as_deref(), Some("/show.ShowInterface/FindShow"));
        assert_eq!(method_path("/a.b.C_1/Get").ok().as_deref(), Some("/a.b.C_1/Get"));
        for bad in
            ["ShowInterface/FindShow", "show.ShowInterface", "show.ShowInterface/", "a..B/C", "a.B/C/D", "a.B/C?x"]
        {
            assert!(method_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies() {
        assert_eq!(request_body(None).ok().as_deref(), Some("{}"));
        assert_eq!(
            request_body(Some(r#"{"n": 12345678901234567890123}"#)).ok().as_deref(),
            Some(r#"{"n": 12345678901234567890123}"#)
        );
        assert!(request_body(Some(r#"{"name": "#)).is_err());
        assert!(request_body(Some("[1]")).is_err());
    }

    #[test]
    fn codes() {
        assert_eq!((code_name(5).as_str(), code_name(16).as_str()), ("NOT_FOUND", "UNAUTHENTICATED"));
        assert_eq!(code_name(99), "gRPC code 99");
    }
}
