-- Custom search parameters per tenant: the SearchParameter resources that
-- are active (searchable) and those a running $reindex is adding.
CREATE TABLE search_param_sets (
    tenant  text PRIMARY KEY,
    active  json NOT NULL DEFAULT '[]',
    pending json
);

-- $reindex jobs: progress is committed with each batch, so a job resumes
-- from its cursor after a restart.
CREATE TABLE reindex_jobs (
    id          text PRIMARY KEY,
    tenant      text        NOT NULL,
    -- NULL: every resource type.
    types       text[],
    status      text        NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    -- 'pass' over every resource, then 'catch-up' over those written since
    -- the job started (a write that began before the job may have used the
    -- old parameters).
    phase       text        NOT NULL DEFAULT 'pass' CHECK (phase IN ('pass', 'catch-up')),
    cursor_type text        NOT NULL DEFAULT '',
    cursor_id   text        NOT NULL DEFAULT '',
    processed   bigint      NOT NULL DEFAULT 0,
    total       bigint      NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    problems    json        NOT NULL DEFAULT '[]',
    error       text
);

CREATE INDEX reindex_jobs_running ON reindex_jobs (tenant) WHERE status = 'running';
