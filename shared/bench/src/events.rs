//! Lambda events as AWS sends them, as JSON bytes: API Gateway HTTP API (payload 2.0), API
//! Gateway WebSocket, and EventBridge's scheduled event. The `lambda` part feeds them to the
//! handlers in-process; the `coldstart` part hands them to function processes through its
//! Runtime API stand-in.

use serde_json::{Map, Value, json};

/// The path parameters API Gateway sets for `path` matched by `route_key`
/// (`ANY /apps/{proxy+}` and `/apps/x/y` give `proxy = x/y`).
fn path_parameters(route_key: &str, path: &str) -> Map<String, Value> {
    let template = route_key.split_once(' ').map_or("", |(_, p)| p);
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut params = Map::new();
    for (i, segment) in template.split('/').filter(|s| !s.is_empty()).enumerate() {
        let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else { continue };
        match name.strip_suffix('+') {
            Some(greedy) => {
                params.insert(greedy.into(), Value::String(parts.get(i..).unwrap_or_default().join("/")));
                break;
            }
            None => {
                params.insert(name.into(), Value::String(parts.get(i).copied().unwrap_or_default().into()));
            }
        }
    }
    params
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// An HTTP API (payload 2.0) event for `method path_and_query` routed by `route_key`, with the
/// headers a browser and API Gateway put on it, `bearer` as `Authorization`, and `body` as
/// (content type, text).
pub fn http(
    method: &str,
    path_and_query: &str,
    route_key: &str,
    bearer: Option<&str>,
    body: Option<(&str, &str)>,
) -> Vec<u8> {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let mut headers = json!({
        "accept": "application/json",
        "accept-encoding": "gzip, deflate, br",
        "accept-language": "en-US,en;q=0.9",
        "host": "abcdef1234.execute-api.us-east-1.amazonaws.com",
        "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
        "x-amzn-trace-id": "Root=1-6743a1b2-0123456789abcdef01234567",
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    });
    if let Some(token) = bearer {
        headers["authorization"] = Value::String(format!("Bearer {token}"));
    }
    if let Some((content_type, text)) = body {
        headers["content-type"] = Value::String(content_type.into());
        headers["content-length"] = Value::String(text.len().to_string());
    }
    let mut query_params = Map::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        query_params.insert(k.into_owned(), Value::String(v.into_owned()));
    }
    let params = path_parameters(route_key, path);
    let event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "queryStringParameters": if query_params.is_empty() { Value::Null } else { Value::Object(query_params) },
        "pathParameters": if params.is_empty() { Value::Null } else { Value::Object(params) },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdef1234",
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abcdef1234",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": "24/Nov/2026:12:00:00 +0000",
            "timeEpoch": now_ms(),
        },
        "body": body.map(|(_, text)| text),
        "isBase64Encoded": false,
    });
    serde_json::to_vec(&event).expect("an event serializes")
}

/// A WebSocket API `$connect` event carrying `?ticket=`.
pub fn ws_connect(ticket: &str) -> Vec<u8> {
    let now = now_ms();
    let event = json!({
        "headers": {
            "Host": "wxyz987654.execute-api.us-east-1.amazonaws.com",
            "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
            "X-Amzn-Trace-Id": "Root=1-6743a1b2-0123456789abcdef01234567",
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Port": "443",
            "X-Forwarded-Proto": "https",
        },
        "multiValueHeaders": {
            "Host": ["wxyz987654.execute-api.us-east-1.amazonaws.com"],
            "Sec-WebSocket-Version": ["13"],
        },
        "queryStringParameters": {"ticket": ticket},
        "multiValueQueryStringParameters": {"ticket": [ticket]},
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "extendedRequestId": "Bench1234567890=",
            "requestTime": "24/Nov/2026:12:00:00 +0000",
            "messageDirection": "IN",
            "stage": "ws",
            "connectedAt": now,
            "requestTimeEpoch": now,
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "Mozilla/5.0"},
            "requestId": "Bench1234567890=",
            "domainName": "wxyz987654.execute-api.us-east-1.amazonaws.com",
            "connectionId": "Bench0Connection=",
            "apiId": "wxyz987654",
        },
        "isBase64Encoded": false,
    });
    serde_json::to_vec(&event).expect("an event serializes")
}

/// EventBridge's scheduled event (what the `sweeper` and `reconciler` rules send).
pub fn scheduled(rule: &str) -> Vec<u8> {
    let event = json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-24T12:00:00Z",
        "region": "us-east-1",
        "resources": [format!("arn:aws:events:us-east-1:123456789012:rule/{rule}")],
        "detail": {},
    });
    serde_json::to_vec(&event).expect("an event serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
    use lambda_http::request::LambdaRequest;

    #[test]
    fn events_parse_as_lambda_parses_them() {
        let event = http("GET", "/apps/x/y?limit=3", "ANY /apps/{proxy+}", Some("t"), None);
        let request: lambda_http::Request = serde_json::from_slice::<LambdaRequest>(&event).unwrap().into();
        assert_eq!(request.uri().path(), "/apps/x/y");
        let value: Value = serde_json::from_slice(&event).unwrap();
        assert_eq!(value["pathParameters"]["proxy"], "x/y");
        assert_eq!(value["queryStringParameters"]["limit"], "3");
        let ws: ApiGatewayWebsocketProxyRequest = serde_json::from_slice(&ws_connect("abc")).unwrap();
        assert_eq!(ws.request_context.route_key.as_deref(), Some("$connect"));
        let rpc = http("POST", "/show.ShowInterface/FindShow", "POST /show.ShowInterface/{method}", None, None);
        let value: Value = serde_json::from_slice(&rpc).unwrap();
        assert_eq!(value["pathParameters"]["method"], "FindShow");
    }
}
