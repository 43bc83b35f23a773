//! `baraza dhis2 sync`: pulls DHIS2 Web API pages into an ingest batch
//! (docs/ingest.md). Each page's records and the cursor's next page are
//! committed together, so an interrupted sync resumes at the page after the
//! last one stored: nothing is lost and no page is stored twice. After the
//! last page the batch is sent complete, the run's start time becomes the
//! `lastUpdated` high-water mark of the next run (incremental), and the
//! batch is written through the worker. Fetches are retried with
//! exponential backoff on connection errors, 429 and 5xx.

use super::caller::Reach;
use super::records::{self, Split};
use super::store::{self, Batch, NewBatch};
use super::{DataType, Status};
use crate::error::ApiError;
use crate::store::{Access, Db, TenantCtx, begin};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

/// How to authenticate to DHIS2.
#[derive(Clone)]
pub enum Dhis2Auth {
    /// A personal access token (`Authorization: ApiToken …`).
    Token(crate::config::Secret),
    Basic(String, crate::config::Secret),
}

/// What to pull, from where.
#[derive(Clone)]
pub struct SyncOptions {
    /// The DHIS2 root, e.g. `https://dhis2.example.org` (the API is `/api`).
    pub base_url: String,
    pub auth: Dhis2Auth,
    pub kind: DataType,
    pub page_size: u32,
    pub program: Option<String>,
    pub org_unit: Option<String>,
    pub data_set: Option<String>,
    pub retries: u32,
    pub backoff: Duration,
}

/// One page fetched: its payload and whether more pages follow.
struct Page {
    payload: Value,
    more: bool,
}

/// The cursor of one (tenant, source, kind).
#[derive(Debug, Default)]
struct Cursor {
    last_updated: Option<String>,
    run_started: Option<String>,
    next_page: Option<i32>,
    batch_id: Option<String>,
}

async fn read_cursor(db: &impl Db, tenant: &str, source: &str, kind: &str) -> Result<Cursor> {
    let rows = db
        .query(
            "SELECT last_updated, run_started, next_page, batch_id FROM dhis2_sync_cursors \
             WHERE tenant = $1 AND source = $2 AND kind = $3",
            &[&tenant, &source, &kind],
        )
        .await?;
    Ok(rows.first().map_or_else(Cursor::default, |row| Cursor {
        last_updated: row.get(0),
        run_started: row.get(1),
        next_page: row.get(2),
        batch_id: row.get(3),
    }))
}

async fn write_cursor(
    db: &impl Db,
    tenant: &str,
    source: &str,
    kind: &str,
    c: &Cursor,
) -> Result<()> {
    db.execute(
        "INSERT INTO dhis2_sync_cursors (tenant, source, kind, last_updated, run_started, next_page, batch_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant, source, kind) DO UPDATE SET \
         last_updated = excluded.last_updated, run_started = excluded.run_started, \
         next_page = excluded.next_page, batch_id = excluded.batch_id, updated_at = now()",
        &[&tenant, &source, &kind, &c.last_updated, &c.run_started, &c.next_page, &c.batch_id],
    )
    .await?;
    Ok(())
}

fn api_error(e: ApiError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// The result of one sync run.
#[derive(Debug)]
pub struct SyncReport {
    pub pages: u32,
    pub batch: Batch,
    pub since: Option<String>,
}

/// Runs (or resumes) a sync of `opts.kind` into `ctx`'s tenant, mapped with
/// `state.dhis2`, and writes the batch. Returns the finished batch.
pub async fn sync(
    state: &crate::service::AppState,
    ctx: &TenantCtx,
    opts: &SyncOptions,
) -> Result<SyncReport> {
    let cfg = state.dhis2.clone().context("no DHIS2 mapping config")?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let source = opts.base_url.trim_end_matches('/').to_owned();
    let kind = opts.kind.as_str();
    let mut client = state.pool.get().await?;
    // Start a run, or pick up the one in progress.
    let mut cursor = {
        let tx = begin(&mut client, ctx, Access::ReadWrite)
            .await
            .map_err(api_error)?;
        let mut cursor = read_cursor(&tx, &ctx.tenant, &source, kind).await?;
        if cursor.run_started.is_none() {
            let id = uuid::Uuid::new_v4().to_string();
            let name = format!("dhis2 sync {kind} from {source}");
            let new = NewBatch {
                id: &id,
                name: &name,
                data_type: opts.kind,
                integrator: None,
                caller: None,
                expected: None,
            };
            store::insert_batch(&tx, &ctx.tenant, &new)
                .await
                .map_err(api_error)?;
            cursor.run_started = Some(dhis2_timestamp(chrono::Utc::now()));
            cursor.next_page = Some(1);
            cursor.batch_id = Some(id);
            write_cursor(&tx, &ctx.tenant, &source, kind, &cursor).await?;
        }
        tx.commit().await?;
        cursor
    };
    let batch_id = cursor.batch_id.clone().context("the cursor has no batch")?;
    let since = cursor.last_updated.clone();
    let mut pages = 0;
    loop {
        let page_no = cursor.next_page.unwrap_or(1).max(1) as u32;
        let page = fetch_with_retries(&http, opts, since.as_deref(), page_no).await?;
        pages += 1;
        let tx = begin(&mut client, ctx, Access::ReadWrite)
            .await
            .map_err(api_error)?;
        let batch = store::find_batch(&tx, &ctx.tenant, &batch_id, &Reach::All, true)
            .await
            .map_err(api_error)?
            .context("the sync's batch is gone")?;
        if batch.status != Status::Started {
            bail!(
                "the sync's batch {batch_id} is {}; clear the cursor to start over",
                batch.status.as_str()
            );
        }
        let known = known_parents(&tx, ctx, &cfg, &batch, &page.payload).await?;
        let split: Split = records::of_dhis2(opts.kind, &page.payload, &cfg, &known)
            .map_err(|e| anyhow::anyhow!("page {page_no}: {e}"))?;
        if !split.records.is_empty() {
            store::append_records(&tx, &batch, &split.records)
                .await
                .map_err(api_error)?;
        }
        if page.more {
            cursor.next_page = Some(page_no as i32 + 1);
        } else {
            store::set_status(&tx, &ctx.tenant, &batch_id, Status::SendCompleted, None)
                .await
                .map_err(api_error)?;
            cursor = Cursor {
                last_updated: cursor.run_started.take(),
                ..Cursor::default()
            };
        }
        write_cursor(&tx, &ctx.tenant, &source, kind, &cursor).await?;
        tx.commit().await?;
        if !page.more {
            break;
        }
    }
    drop(client);
    let stop = super::worker::Stopper::default();
    super::worker::process_batch(state, &ctx.tenant, &batch_id, &stop)
        .await
        .map_err(api_error)?;
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadOnly)
        .await
        .map_err(api_error)?;
    let batch = store::find_batch(&tx, &ctx.tenant, &batch_id, &Reach::All, false)
        .await
        .map_err(api_error)?
        .context("the sync's batch is gone")?;
    Ok(SyncReport {
        pages,
        batch,
        since,
    })
}

/// Parents outside an org-unit page that count as known: imported before
/// (their Location exists) or stored earlier in this run.
async fn known_parents(
    db: &impl Db,
    ctx: &TenantCtx,
    cfg: &adapters::dhis2::Config,
    batch: &Batch,
    payload: &Value,
) -> Result<HashSet<String>> {
    let mut known = HashSet::new();
    for uid in records::outside_parents(payload) {
        let id = cfg.id(&uid);
        let stored = crate::store::read::read_current(db, ctx, "Location", &id).await?;
        let in_run = db
            .query(
                "SELECT 1 FROM ingest_records WHERE tenant = $1 AND batch_id = $2 \
                 AND source_id = $3 AND state <> 'failed' LIMIT 1",
                &[&ctx.tenant, &batch.id, &format!("Organization/{id}")],
            )
            .await?;
        if stored.is_some_and(|s| !s.deleted) || !in_run.is_empty() {
            known.insert(uid);
        }
    }
    Ok(known)
}

/// DHIS2's timestamp format (no offset; this server's clock in UTC).
fn dhis2_timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
}

fn page_url(opts: &SyncOptions, since: Option<&str>, page: u32) -> Result<String> {
    let base = opts.base_url.trim_end_matches('/');
    let mut url = match opts.kind {
        DataType::Dhis2Metadata => {
            let mut url = url::Url::parse(&format!("{base}/api/organisationUnits.json"))?;
            url.query_pairs_mut()
                .append_pair("paging", "true")
                .append_pair("page", &page.to_string())
                .append_pair("pageSize", &opts.page_size.to_string())
                .append_pair("order", "level:asc,id:asc")
                .append_pair("fields", "id,code,name,shortName,level,path,parent[id],geometry,openingDate,closedDate,organisationUnitGroups[id,name],lastUpdated");
            if let Some(since) = since {
                url.query_pairs_mut()
                    .append_pair("filter", &format!("lastUpdated:ge:{since}"));
            }
            url
        }
        DataType::Dhis2Tracker => {
            let (Some(program), Some(org_unit)) = (&opts.program, &opts.org_unit) else {
                bail!("a tracker sync needs --program and --org-unit");
            };
            let mut url = url::Url::parse(&format!("{base}/api/tracker/trackedEntities"))?;
            url.query_pairs_mut()
                .append_pair("program", program)
                .append_pair("orgUnit", org_unit)
                .append_pair("ouMode", "DESCENDANTS")
                .append_pair("fields", "*")
                .append_pair("totalPages", "true")
                .append_pair("page", &page.to_string())
                .append_pair("pageSize", &opts.page_size.to_string());
            if let Some(since) = since {
                url.query_pairs_mut().append_pair("updatedAfter", since);
            }
            url
        }
        DataType::Dhis2DataValues => {
            let (Some(data_set), Some(org_unit)) = (&opts.data_set, &opts.org_unit) else {
                bail!("a data value sync needs --data-set and --org-unit");
            };
            let mut url = url::Url::parse(&format!("{base}/api/dataValueSets.json"))?;
            url.query_pairs_mut()
                .append_pair("dataSet", data_set)
                .append_pair("orgUnit", org_unit)
                .append_pair("children", "true")
                .append_pair("lastUpdated", since.unwrap_or("1970-01-01"));
            url
        }
        other => bail!("{} is not a DHIS2 kind", other.as_str()),
    };
    url.set_fragment(None);
    Ok(url.to_string())
}

/// Whether a page is not the last: from DHIS2's `pager` (metadata, 2.41
/// tracker) or top-level `pageCount` (2.36–2.40 tracker); data value sets
/// come in one answer.
fn has_more(kind: DataType, payload: &Value, page: u32, page_size: u32) -> bool {
    if kind == DataType::Dhis2DataValues {
        return false;
    }
    let pager = payload.get("pager").unwrap_or(payload);
    if let Some(count) = pager.get("pageCount").and_then(Value::as_u64) {
        return u64::from(page) < count;
    }
    let items = [
        "organisationUnits",
        "instances",
        "trackedEntities",
        "trackedEntityInstances",
    ]
    .iter()
    .find_map(|key| payload.get(*key).and_then(Value::as_array))
    .map_or(0, Vec::len);
    items as u64 >= u64::from(page_size)
}

async fn fetch_with_retries(
    http: &reqwest::Client,
    opts: &SyncOptions,
    since: Option<&str>,
    page: u32,
) -> Result<Page> {
    let url = page_url(opts, since, page)?;
    let mut delay = opts.backoff;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut request = http.get(&url).header("accept", "application/json");
        request = match &opts.auth {
            Dhis2Auth::Token(token) => {
                request.header("authorization", format!("ApiToken {}", token.expose()))
            }
            Dhis2Auth::Basic(user, password) => request.basic_auth(user, Some(password.expose())),
        };
        let outcome = match request.send().await {
            Ok(response) if response.status().is_success() => {
                let payload: Value = response
                    .json()
                    .await
                    .with_context(|| format!("page {page}: DHIS2 did not answer JSON"))?;
                let more = has_more(opts.kind, &payload, page, opts.page_size);
                return Ok(Page { payload, more });
            }
            Ok(response) => {
                let status = response.status();
                if !(status.is_server_error() || status.as_u16() == 429) {
                    bail!("page {page}: DHIS2 answered {status}; not retried");
                }
                format!("DHIS2 answered {status}")
            }
            Err(e) => format!("{e}"),
        };
        if attempt > opts.retries {
            bail!(
                "page {page}: {outcome}, after {attempt} attempts; run the sync again to resume at this page"
            );
        }
        tracing::warn!(page, attempt, problem = %outcome, "DHIS2 fetch failed; retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(60));
    }
}
