//! Cache invalidation across instances through PostgreSQL LISTEN/NOTIFY.
//!
//! A change to something an instance caches is announced with
//! `pg_notify('baraza_cache', message)` in the transaction that makes it,
//! so the message goes out exactly when the change commits. Every
//! instance listens on one dedicated connection ([`spawn_listener`]) and
//! drops or reloads what the message names. When that connection breaks,
//! messages may have been missed: on every (re)connection the listener
//! asks for a full resynchronisation ([`Message::Resync`]).
//!
//! The terminology cache needs no message: its entries carry the
//! tenant's change counter, which every check compares (terminology::cache).

use crate::db::tls::DbTls;
use crate::error::ApiError;
use crate::store::Db;
use futures_util::StreamExt;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::AsyncMessage;

/// The channel every instance listens on.
pub const CHANNEL: &str = "baraza_cache";

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A tenant's custom search parameters (active or pending).
    Registries(String),
    /// A tenant's permission groups.
    Groups(String),
    /// The tenants table.
    Tenants,
    /// A tenant's subscriptions (event consumers).
    Consumers(String),
    /// A notification for websocket clients bound to a subscription:
    /// `tenant`, subscription id, the text to send.
    Websocket(String, String, String),
    /// The listener (re)connected: anything may have changed.
    Resync,
}

impl Message {
    pub fn encode(&self) -> String {
        match self {
            Message::Registries(t) => format!("registries|{t}"),
            Message::Groups(t) => format!("groups|{t}"),
            Message::Tenants => "tenants".to_owned(),
            Message::Consumers(t) => format!("consumers|{t}"),
            Message::Websocket(t, id, text) => format!("ws|{t}|{id}|{text}"),
            Message::Resync => "resync".to_owned(),
        }
    }

    pub fn decode(text: &str) -> Option<Message> {
        let (kind, rest) = text.split_once('|').unwrap_or((text, ""));
        Some(match kind {
            "registries" => Message::Registries(rest.to_owned()),
            "groups" => Message::Groups(rest.to_owned()),
            "tenants" => Message::Tenants,
            "consumers" => Message::Consumers(rest.to_owned()),
            "ws" => {
                let mut parts = rest.splitn(3, '|');
                Message::Websocket(
                    parts.next()?.to_owned(),
                    parts.next()?.to_owned(),
                    parts.next()?.to_owned(),
                )
            }
            "resync" => Message::Resync,
            _ => return None,
        })
    }
}

/// Announces `message` when the transaction commits.
pub async fn send(db: &impl Db, message: Message) -> Result<(), ApiError> {
    db.query("SELECT pg_notify($1, $2)", &[&CHANNEL, &message.encode()])
        .await?;
    Ok(())
}

/// Announces `message` on an administrative connection (the `tenant`
/// commands), at once or when its transaction commits.
pub async fn send_on(
    client: &tokio_postgres::Client,
    message: Message,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &message.encode()])
        .await?;
    Ok(())
}

/// Listens on [`CHANNEL`] for as long as the process runs, reconnecting
/// with back-off, and hands every message to `handle`.
pub fn spawn_listener(
    cfg: tokio_postgres::Config,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
    handle: impl Fn(Message) + Send + Sync + 'static,
) {
    tokio::spawn(async move {
        let listening = async move {
            let mut wait = Duration::from_millis(200);
            loop {
                match listen_once(&cfg, &handle).await {
                    Ok(()) => wait = Duration::from_millis(200),
                    Err(e) => {
                        tracing::warn!(error = %e, "the cache-invalidation listener lost its connection");
                    }
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
        };
        tokio::select! {
            () = listening => {}
            () = stopped => {}
        }
    });
}

async fn listen_once(
    cfg: &tokio_postgres::Config,
    handle: &(impl Fn(Message) + Send + Sync),
) -> Result<(), tokio_postgres::Error> {
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel();
    let client = match crate::db::tls::process_tls() {
        DbTls::Off => {
            let (client, connection) = cfg.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(forward(connection, sender));
            client
        }
        DbTls::Verified(connector) => {
            let (client, connection) = cfg.connect(connector.clone()).await?;
            tokio::spawn(forward(connection, sender));
            client
        }
    };
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    handle(Message::Resync);
    while let Some(payload) = received.recv().await {
        match Message::decode(&payload) {
            Some(message) => handle(message),
            None => tracing::debug!(payload, "unknown cache message"),
        }
    }
    drop(client);
    Ok(())
}

/// Drives the listening connection and passes its notifications on; ends
/// when the connection does.
async fn forward<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    sender: tokio::sync::mpsc::UnboundedSender<String>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    while let Some(message) = messages.next().await {
        match message {
            Ok(AsyncMessage::Notification(n)) => {
                if sender.send(n.payload().to_owned()).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "listening connection closed");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_survive_encoding() {
        for m in [
            Message::Registries("acme".into()),
            Message::Groups("default".into()),
            Message::Tenants,
            Message::Consumers("a-b".into()),
            Message::Websocket("t".into(), "s1".into(), "ping s1|x".into()),
            Message::Resync,
        ] {
            assert_eq!(Message::decode(&m.encode()), Some(m));
        }
        assert_eq!(Message::decode("nonsense"), None);
    }
}
