-- The master patient index's storage (issue 6, crate mpi, mpi/src/store):
-- the indexed source records and their blocking keys, the link of every
-- record to its golden record, the append-only history of link changes,
-- the review queue, name frequencies for the term-frequency adjustment
-- and relink jobs. The golden Patients themselves are FHIR resources the
-- server stores; these tables hold what matching needs (docs/mpi.md).
--
-- Every table is keyed by tenant first, with forced row-level security
-- and the same policy as every other tenant table (docs/tenants.md).

-- One row per indexed source Patient: a copy of the Patient as indexed
-- (features are recomputed from it when the record is a candidate, and
-- golden records are built from the copies), the source that sent it,
-- its blocking keys (so that a re-index deletes exactly the old ones) and
-- the normalised names counted by mpi_name_frequencies.
CREATE TABLE mpi_records (
    tenant      text        NOT NULL,
    patient_id  text        NOT NULL,
    source      text        NOT NULL,
    patient     json        NOT NULL,
    keys        text[]      NOT NULL,
    given_name  text,
    family_name text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, patient_id)
);

-- Blocking keys: records sharing a key are candidates of each other.
CREATE TABLE mpi_block_keys (
    tenant     text NOT NULL,
    key        text NOT NULL,
    patient_id text NOT NULL,
    PRIMARY KEY (tenant, key, patient_id)
);

-- Golden records (clusters). The id is derived from the tenant, the
-- record that founded the cluster and how many clusters that record has
-- founded before (store/golden.rs), so replaying the same writes gives
-- the same ids. content_hash is the SHA-256 of the golden Patient last
-- handed to the server, so that unchanged content is not written again.
CREATE TABLE mpi_goldens (
    tenant       text        NOT NULL,
    golden_id    text        NOT NULL,
    founder      text        NOT NULL,
    generation   integer     NOT NULL,
    active       boolean     NOT NULL DEFAULT true,
    content_hash text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, golden_id),
    UNIQUE (tenant, founder, generation)
);

-- The current link of each source record to its golden record.
-- kind: 'auto' (scored at or above auto_link, or a record alone in its
-- cluster), 'manual' (a reviewer accepted a pair), 'merged' (the record
-- was merged into merged_into by $merge).
CREATE TABLE mpi_links (
    tenant      text             NOT NULL,
    patient_id  text             NOT NULL,
    golden_id   text             NOT NULL,
    kind        text             NOT NULL CHECK (kind IN ('auto', 'manual', 'merged')),
    score       double precision,
    rule        text             NOT NULL,
    merged_into text,
    decided_by  text             NOT NULL,
    decided_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, patient_id)
);
CREATE INDEX mpi_links_golden ON mpi_links (tenant, golden_id, patient_id);
CREATE INDEX mpi_links_merged ON mpi_links (tenant, merged_into) WHERE merged_into IS NOT NULL;

-- Every link change, append-only: which record, from which golden record
-- to which (NULL: none), what kind of change, who or what made it and why.
CREATE TABLE mpi_link_log (
    tenant        text             NOT NULL,
    seq           bigserial        NOT NULL,
    patient_id    text             NOT NULL,
    golden_before text,
    golden_after  text,
    action        text             NOT NULL,
    kind          text,
    score         double precision,
    rule          text             NOT NULL,
    actor         text             NOT NULL,
    at            timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, seq)
);
CREATE INDEX mpi_link_log_patient ON mpi_link_log (tenant, patient_id, seq);

CREATE FUNCTION mpi_link_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the MPI link log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER mpi_link_log_append_only BEFORE UPDATE OR DELETE ON mpi_link_log
    FOR EACH ROW EXECUTE FUNCTION mpi_link_log_refuse_change();
CREATE TRIGGER mpi_link_log_no_truncate BEFORE TRUNCATE ON mpi_link_log
    FOR EACH STATEMENT EXECUTE FUNCTION mpi_link_log_refuse_change();

-- Pairs scored between the review and auto-link thresholds (or otherwise
-- needing a person), a < b. A rejected pair is never linked automatically
-- again.
CREATE TABLE mpi_review (
    tenant     text             NOT NULL,
    a          text COLLATE "C" NOT NULL,
    b          text COLLATE "C" NOT NULL,
    score      double precision NOT NULL,
    comparison json             NOT NULL,
    reason     text             NOT NULL,
    status     text             NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'accepted', 'rejected', 'deferred')),
    created_at timestamptz      NOT NULL DEFAULT now(),
    decided_by text,
    decided_at timestamptz,
    PRIMARY KEY (tenant, a, b),
    CHECK (a < b)
);
CREATE INDEX mpi_review_status ON mpi_review (tenant, status, a, b);
-- Lookups by either member (rejections and decisions of a record).
CREATE INDEX mpi_review_b ON mpi_review (tenant, b, a);

-- How many indexed records carry each normalised name, per kind ('given':
-- the first given word, 'family': the family name); the row ('total', '')
-- counts the records. Recomputed from mpi_records by
-- store::refresh_name_frequencies (relink, and periodically).
CREATE TABLE mpi_name_frequencies (
    tenant text   NOT NULL,
    kind   text   NOT NULL,
    name   text   NOT NULL,
    count  bigint NOT NULL,
    PRIMARY KEY (tenant, name, kind)
);

-- Relink jobs (`baraza mpi relink`): records are re-indexed in batches in
-- patient-id order; cursor is the last id done, committed with the batch.
CREATE TABLE mpi_jobs (
    tenant     text        NOT NULL,
    id         text        NOT NULL,
    kind       text        NOT NULL,
    status     text        NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    cursor     text,
    processed  bigint      NOT NULL DEFAULT 0,
    total      bigint      NOT NULL,
    changed    bigint      NOT NULL DEFAULT 0,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['mpi_records', 'mpi_block_keys', 'mpi_goldens', 'mpi_links',
                             'mpi_link_log', 'mpi_review', 'mpi_name_frequencies', 'mpi_jobs'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I '
                       'USING (tenant = current_setting(''baraza.tenant'', true)) '
                       'WITH CHECK (tenant = current_setting(''baraza.tenant'', true))', t);
    END LOOP;
END
$$;
