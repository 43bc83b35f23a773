//! Loading a release read by `formats`: the reader runs on its own thread
//! (file I/O and parsing block) and hands records over a bounded channel
//! in chunks, while the [`Loader`] stores them in the caller's transaction.
//! Memory holds a few chunks, the loader's batch and its code map.

use crate::Tx;
use crate::formats::Records;
use crate::load::{LoadFailure, LoadOptions, LoadSummary, Loader};
use crate::model::{CodeSystemHeader, LoadError, Record};

const CHUNK: usize = 5_000;
const CHUNKS_IN_FLIGHT: usize = 4;

/// Stores `records` as the code system `header` describes.
pub async fn load_release(
    tx: &Tx<'_>,
    options: &LoadOptions,
    header: &CodeSystemHeader,
    records: Records,
) -> Result<LoadSummary, LoadFailure> {
    let (sender, mut receiver) =
        tokio::sync::mpsc::channel::<Vec<Result<Record, LoadError>>>(CHUNKS_IN_FLIGHT);
    let reader = std::thread::Builder::new()
        .name("terminology-reader".into())
        .spawn(move || {
            let mut chunk = Vec::with_capacity(CHUNK);
            for record in records {
                let failed = record.is_err();
                chunk.push(record);
                if chunk.len() < CHUNK && !failed {
                    continue;
                }
                // An error is the stream's last record: send it, then stop.
                let sent = sender.blocking_send(std::mem::take(&mut chunk)).is_ok();
                if !sent || failed {
                    return;
                }
            }
            if !chunk.is_empty() {
                let _ = sender.blocking_send(chunk);
            }
        })
        .map_err(|e| LoadFailure::Content(format!("cannot start the reader thread: {e}")))?;
    let mut loader = Loader::start(tx, options, header).await?;
    let mut outcome = Ok(());
    'chunks: while let Some(chunk) = receiver.recv().await {
        for record in chunk {
            let step = match record {
                Ok(record) => loader.push(record).await,
                Err(e) => Err(LoadFailure::Input(e)),
            };
            if let Err(e) = step {
                outcome = Err(e);
                break 'chunks;
            }
        }
    }
    // Stop the reader (it ends when its next send fails).
    drop(receiver);
    let _ = reader.join();
    outcome?;
    loader.finish().await
}
