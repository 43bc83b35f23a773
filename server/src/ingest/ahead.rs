//! The worker checks a batch's next chunk while it writes this one
//! (docs/ingest.md, "Processing"). A chunk's write is mostly PostgreSQL's
//! work and left part of the cores idle; its checks (parsing, validation,
//! the caller's rights: `service::transaction::prepare`) need no database
//! and depend only on the record's payload, which never changes, and on
//! the batch's caller. So once a chunk is checked, the records after it
//! are read and checked in a task of their own, and the next chunk takes
//! the results of the records it finds there by seq; any other record (one
//! left pending by a failed part, say) is checked as usual.

use super::chunk::{CHUNK, prepare_all};
use super::chunk_store;
use super::store::Batch;
use crate::error::ApiError;
use crate::service::AppState;
use crate::service::transaction::Prepared;
use crate::store::{Access, TenantCtx, begin};
use std::collections::HashMap;
use tokio::task::JoinHandle;

/// A record's check: ready to write, or refused.
pub type Checked = Result<Prepared, ApiError>;

/// The checks of the records after a chunk, under way. Dropping it stops
/// them.
pub struct Ahead {
    task: JoinHandle<Result<Vec<(i64, Checked)>, ApiError>>,
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts checking the batch's first [`CHUNK`] pending records after seq
/// `after`.
pub fn start(state: &AppState, ctx: &TenantCtx, batch: &Batch, after: i64) -> Ahead {
    let (state, ctx, batch) = (state.clone(), ctx.clone(), batch.clone());
    let task = tokio::spawn(async move {
        let records = {
            let mut client = state.pool.get().await?;
            let tx = begin(&mut client, &ctx, Access::ReadOnly).await?;
            chunk_store::pending_records(&tx, &batch, after, CHUNK).await?
        };
        let (seqs, payloads): (Vec<i64>, Vec<String>) =
            records.into_iter().map(|r| (r.seq, r.payload)).unzip();
        let checked = prepare_all(&ctx, payloads).await?;
        Ok(seqs.into_iter().zip(checked).collect())
    });
    Ahead { task }
}

/// The checks `ahead` made, by seq; none if it failed.
pub async fn finish(ahead: Option<Ahead>) -> HashMap<i64, Checked> {
    let Some(mut ahead) = ahead else {
        return HashMap::new();
    };
    match (&mut ahead.task).await {
        Ok(Ok(checked)) => checked.into_iter().collect(),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "the ingest look-ahead failed; the chunk is checked as usual");
            HashMap::new()
        }
        Err(_) => HashMap::new(),
    }
}
