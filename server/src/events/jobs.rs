//! Background jobs shared by the instances: a job runs on the instance
//! holding its lease, which renews it with every batch. Every instance
//! looks, at start-up and then every half lease, for running jobs whose
//! lease has run out (their instance died or stopped) and adopts them;
//! a job resumes from its last committed cursor.
//!
//! Today's jobs are `$reindex` (`service::reindex`), `$export`
//! (`service::export::job`) and the MPI's `$mpi-relink`
//! (`service::patient_index`), whose adopter also starts the periodic
//! refresh of the MPI's name frequencies.

use crate::service::AppState;
use std::time::Duration;

/// Starts the adopter.
pub fn spawn(state: AppState) {
    crate::service::patient_index::spawn_frequency_refresh(state.clone());
    tokio::spawn(async move {
        let every = (state.node.settings.lease / 2).max(Duration::from_millis(200));
        while !state.node.is_stopped() {
            for tenant in state.tenants.active() {
                if let Err(e) = crate::service::reindex::adopt(&state, &tenant).await {
                    tracing::warn!(tenant, error = %e, "cannot look for $reindex jobs to adopt");
                }
                let ctx = crate::store::TenantCtx::new(
                    &tenant,
                    &state.base_url,
                    state.registries.clone(),
                );
                if let Err(e) =
                    crate::service::export::job::adopt(&state.pool, &state.exports, &ctx).await
                {
                    tracing::warn!(tenant, error = %e, "cannot look for $export jobs to adopt");
                }
                if let Err(e) = crate::service::patient_index::adopt_relinks(&state, &tenant).await
                {
                    tracing::warn!(tenant, error = %e, "cannot look for MPI relink jobs to adopt");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = state.node.stopped() => {}
            }
        }
    });
}
