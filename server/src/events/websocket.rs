//! The websocket channel's side in the events: which sockets of this
//! instance are bound to which subscription ([`Hub`]), and how a
//! notification reaches them. The instance delivering a subscription is
//! not necessarily the one its client is connected to, so a notification
//! goes out through NOTIFY to every instance, and each passes it to its
//! own bound sockets (`http::ws` holds the sockets themselves).
//!
//! Websocket notifications are best effort: one sent while no client is
//! bound is lost (the R4 websocket channel has no acknowledgement).

use super::outbox::Event;
use super::subscription::Subscription;
use crate::service::AppState;
use crate::store::TenantCtx;
use dashmap::DashMap;
use tokio::sync::mpsc::UnboundedSender;

/// A bound socket: its key and where its messages go.
type Bound = (u64, UnboundedSender<String>);

/// The sockets bound on this instance, by (tenant, subscription id).
#[derive(Debug, Default)]
pub struct Hub {
    bound: DashMap<(String, String), Vec<Bound>>,
    next: std::sync::atomic::AtomicU64,
}

impl Hub {
    /// Binds a socket's sender to a subscription; returns its key for
    /// [`Hub::unbind`].
    pub fn bind(&self, tenant: &str, id: &str, sender: UnboundedSender<String>) -> u64 {
        let key = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.bound
            .entry((tenant.to_owned(), id.to_owned()))
            .or_default()
            .push((key, sender));
        key
    }

    pub fn unbind(&self, tenant: &str, id: &str, key: u64) {
        let entry = (tenant.to_owned(), id.to_owned());
        let now_empty = match self.bound.get_mut(&entry) {
            Some(mut senders) => {
                senders.retain(|(k, _)| *k != key);
                senders.is_empty()
            }
            None => false,
        };
        if now_empty {
            self.bound
                .remove_if(&entry, |_, senders| senders.is_empty());
        }
    }

    /// Sends `text` to every socket bound to the subscription here.
    pub fn deliver(&self, tenant: &str, id: &str, text: &str) {
        if let Some(mut senders) = self.bound.get_mut(&(tenant.to_owned(), id.to_owned())) {
            senders.retain(|(_, sender)| sender.send(text.to_owned()).is_ok());
        }
    }
}

/// Announces an event to the subscription's websocket clients, wherever
/// they are connected: `ping {id}` (subscription.html#2.46.7.2).
pub async fn publish(
    state: &AppState,
    ctx: &TenantCtx,
    subscription: &Subscription,
    _event: &Event,
) {
    let text = format!("ping {}", subscription.id);
    if !state.node.shared() {
        state
            .node
            .sockets
            .deliver(&ctx.tenant, &subscription.id, &text);
        return;
    }
    let message =
        super::notify::Message::Websocket(ctx.tenant.clone(), subscription.id.clone(), text);
    let sent = match state.pool.get().await {
        Ok(client) => super::notify::send_on(&client, message).await.is_ok(),
        Err(_) => false,
    };
    if !sent {
        tracing::warn!(
            subscription = subscription.id,
            "cannot announce a websocket notification"
        );
    }
}

/// How long a binding token is valid.
const TOKEN_MINUTES: i64 = 5;

fn hash(token: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new binding token for the websocket Subscription `id`, and its
/// expiry (FHIR dateTime).
pub async fn issue_token(
    db: &impl crate::store::Db,
    ctx: &TenantCtx,
    id: &str,
) -> Result<(String, String), crate::error::ApiError> {
    let stored = crate::store::read::read_current(db, ctx, "Subscription", id)
        .await?
        .filter(|s| !s.deleted)
        .ok_or_else(|| {
            crate::error::ApiError::not_found(format!("Subscription/{id} is not known"))
        })?;
    let resource: serde_json::Value =
        serde_json::from_str(stored.content.as_deref().unwrap_or("{}"))
            .map_err(crate::error::ApiError::fault)?;
    if resource["channel"]["type"] != "websocket" {
        return Err(crate::error::ApiError::new(
            crate::error::Category::Unprocessable,
            format!("Subscription/{id} does not use the websocket channel"),
        ));
    }
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let expires = crate::store::now() + chrono::Duration::minutes(TOKEN_MINUTES);
    db.execute(
        "DELETE FROM subscription_tokens WHERE tenant = $1 AND expires < now()",
        &[&ctx.tenant],
    )
    .await?;
    db.execute(
        "INSERT INTO subscription_tokens (tenant, token_hash, subscription, expires) VALUES ($1, $2, $3, $4)",
        &[&ctx.tenant, &hash(&token), &id, &expires],
    )
    .await?;
    Ok((token, crate::store::format_instant(expires)))
}

/// The Subscription a token binds to, while it is valid.
pub async fn redeem_token(
    db: &impl crate::store::Db,
    ctx: &TenantCtx,
    token: &str,
) -> Result<Option<String>, crate::error::ApiError> {
    let rows = db
        .query(
            "SELECT subscription FROM subscription_tokens \
             WHERE tenant = $1 AND token_hash = $2 AND expires > now()",
            &[&ctx.tenant, &hash(token)],
        )
        .await?;
    Ok(rows.first().map(|row| row.get(0)))
}

/// The websocket URL of a tenant's FHIR base.
pub fn socket_url(base_url: &str) -> String {
    let ws = if let Some(rest) = base_url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base_url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base_url.to_owned()
    };
    format!("{ws}/$websocket")
}
