//! Glue between Lambda (`lambda_http`) and a [`RouteGroup`]: the only code that knows Lambda
//! events. The emulator calls [`handle`] too, so local runs take the same path.

use std::sync::Arc;

use bytes::Bytes;
use lambda_http::{Body, Request, Response, service_fn};

use lambda_http::aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use lambda_http::lambda_runtime::LambdaEvent;

use crate::web::{RouteGroup, WebSocketApi, WsEvent, serve};

/// Serves one Lambda HTTP request through `group`.
pub async fn handle(group: &dyn RouteGroup, req: Request) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let req = http::Request::from_parts(parts, Bytes::copy_from_slice(&body));
    serve(group, req).await.map(|b| if b.is_empty() { Body::Empty } else { Body::Text(b) })
}

/// Runs `group` as a Lambda function (the whole `main` of an HTTP function).
pub async fn run(group: impl RouteGroup + 'static) -> Result<(), lambda_http::Error> {
    let group = Arc::new(group);
    lambda_http::run(service_fn(move |req: Request| {
        let group = Arc::clone(&group);
        async move { Ok::<_, lambda_http::Error>(handle(group.as_ref(), req).await) }
    }))
    .await
}

/// Logs as Lambda expects (level from `AWS_LAMBDA_LOG_LEVEL` / `RUST_LOG`).
pub fn init_tracing() {
    lambda_http::tracing::init_default_subscriber();
}

/// The relay's view of an API Gateway WebSocket event; `None` for events it does not handle.
pub fn ws_event(event: ApiGatewayWebsocketProxyRequest) -> Option<WsEvent> {
    let ctx = event.request_context;
    let connection_id = ctx.connection_id?;
    match ctx.route_key.as_deref()? {
        "$connect" => {
            let ticket = event.query_string_parameters.first("ticket").map(str::to_owned);
            Some(WsEvent::Connect { connection_id, ticket })
        }
        "$disconnect" => Some(WsEvent::Disconnect { connection_id }),
        // API Gateway passes text frames only; a binary one arrives base64-encoded.
        _ if event.is_base64_encoded => Some(WsEvent::Message { connection_id, body: String::new() }),
        _ => Some(WsEvent::Message { connection_id, body: event.body.unwrap_or_default() }),
    }
}

/// Handles one API Gateway WebSocket event with `api`.
pub async fn handle_ws(api: &dyn WebSocketApi, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    let status = match ws_event(event) {
        Some(e) => api.handle(e).await,
        None => 400,
    };
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = status as i64;
    response
}

/// Runs `api` as the WebSocket API's Lambda function (on lambda_runtime: lambda_http
/// misreads some WebSocket events).
pub async fn run_websocket(api: impl WebSocketApi + 'static) -> Result<(), lambda_http::Error> {
    let api = Arc::new(api);
    lambda_http::lambda_runtime::run(lambda_http::lambda_runtime::service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
            let api = Arc::clone(&api);
            async move { Ok::<_, lambda_http::Error>(handle_ws(api.as_ref(), event.payload).await) }
        },
    ))
    .await
}
