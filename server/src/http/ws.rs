//! `GET {base}/$websocket`: the R4 websocket channel of Subscriptions
//! (subscription.html#2.46.7.2). A client sends `bind {id}` (R4) or
//! `bind-with-token {token}` (Backport IG, token from
//! `$get-ws-binding-token`); the server answers `bound {id}` and then
//! `ping {id}` for each notification (`events::websocket`).

use crate::events::websocket;
use crate::service::AppState;
use crate::service::route::Route;
use crate::store::{Access, TenantCtx, begin};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

/// Whether the request asks to upgrade to a websocket.
pub fn is_upgrade(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Upgrades the connection and serves its bindings until it closes.
pub fn serve(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    ctx: TenantCtx,
) -> HttpResponse {
    let (response, session, stream) = match actix_ws::handle(req, payload) {
        Ok(upgraded) => upgraded,
        Err(e) => return HttpResponse::from_error(e),
    };
    let state = state.clone();
    actix_web::rt::spawn(async move {
        run(state, ctx, session, stream).await;
    });
    response
}

async fn run(
    state: AppState,
    ctx: TenantCtx,
    mut session: actix_ws::Session,
    mut stream: actix_ws::MessageStream,
) {
    let (sender, mut notifications) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut bound: Vec<(String, u64)> = Vec::new();
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(Ok(message)) = message else { break };
                match message {
                    actix_ws::Message::Text(text) => {
                        let answer = match bind(&state, &ctx, text.trim()).await {
                            Ok(id) => {
                                let key = state.node.sockets.bind(&ctx.tenant, &id, sender.clone());
                                bound.push((id.clone(), key));
                                format!("bound {id}")
                            }
                            Err(why) => format!("error {why}"),
                        };
                        if session.text(answer).await.is_err() {
                            break;
                        }
                    }
                    actix_ws::Message::Ping(bytes) if session.pong(&bytes).await.is_err() => break,
                    actix_ws::Message::Close(_) => break,
                    _ => {}
                }
            }
            Some(text) = notifications.recv() => {
                if session.text(text).await.is_err() {
                    break;
                }
            }
            () = state.node.stopped() => break,
        }
    }
    for (id, key) in bound {
        state.node.sockets.unbind(&ctx.tenant, &id, key);
    }
    let _ = session.close(None).await;
}

/// The subscription a binding message names, if the client may bind to it.
async fn bind(state: &AppState, ctx: &TenantCtx, message: &str) -> Result<String, String> {
    let not_allowed = || "no such websocket subscription, or it may not be bound".to_owned();
    let mut client = state.pool.get().await.map_err(|_| "try again".to_owned())?;
    let tx = begin(&mut client, ctx, Access::ReadOnly)
        .await
        .map_err(|_| "try again".to_owned())?;
    let id = if let Some(token) = message.strip_prefix("bind-with-token ") {
        websocket::redeem_token(&tx, ctx, token.trim())
            .await
            .map_err(|_| "try again".to_owned())?
            .ok_or_else(|| "the token is unknown or expired".to_owned())?
    } else if let Some(id) = message.strip_prefix("bind ") {
        // R4's bind: the connection's own credentials must allow reading it.
        let id = fhir::Id::parse(id.trim()).ok_or_else(not_allowed)?;
        let subscription = fhir::ResourceType::parse("Subscription").ok_or_else(not_allowed)?;
        let route = Route::Read(subscription, id.clone());
        crate::service::authorize::check(ctx, &route, &[]).map_err(|_| not_allowed())?;
        id.into_string()
    } else {
        return Err("send bind {id} or bind-with-token {token}".to_owned());
    };
    let stored = crate::store::read::read_current(&tx, ctx, "Subscription", &id)
        .await
        .map_err(|_| "try again".to_owned())?
        .filter(|s| !s.deleted)
        .ok_or_else(not_allowed)?;
    let is_websocket = stored
        .content
        .as_deref()
        .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        .is_some_and(|r| r["channel"]["type"] == "websocket");
    if !is_websocket {
        return Err(not_allowed());
    }
    Ok(id)
}
