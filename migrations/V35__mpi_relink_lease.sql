-- Relink jobs as server background jobs (issue 6, docs/mpi.md): a job
-- runs on the one holder of its lease (a server instance, or `baraza mpi
-- relink`), which renews it with every batch; when the holder dies, the
-- lease runs out and another instance adopts the job from its cursor.
-- The batch size is kept so that the adopter runs the same job.
ALTER TABLE mpi_jobs
    ADD COLUMN batch       integer NOT NULL DEFAULT 500 CHECK (batch BETWEEN 1 AND 10000),
    ADD COLUMN leased_by   text,
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN error       text,
    ADD COLUMN finished_at timestamptz;

-- One running relink per tenant (`store::start_relink_job` checks it
-- under an advisory lock; this holds it against anything else).
CREATE UNIQUE INDEX mpi_jobs_one_running ON mpi_jobs (tenant, kind) WHERE status = 'running';
