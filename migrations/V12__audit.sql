-- The audit trail (issue 4, docs/audit.md): one row per FHIR interaction,
-- the AuditEvent as served plus the columns AuditEvent search uses.
--
-- Append-only: a trigger refuses UPDATE, DELETE and TRUNCATE, and those
-- privileges are revoked from every role (the owner included). Tamper
-- evidence: `hash` = sha256(previous row's hash || canonical bytes of this
-- row), over `seq` without gaps; `baraza audit verify` recomputes it. The
-- server's one writer assigns `seq` and `recorded` under the lock of the
-- chain head, so `recorded` never decreases along `seq` and each monthly
-- partition holds one contiguous run of the chain. Retention drops whole
-- partitions and moves the anchor (the hash the oldest kept row continues
-- from) in the same transaction.

CREATE TABLE audit_events (
    seq      bigint      NOT NULL,
    recorded timestamptz NOT NULL,
    tenant   text        NOT NULL,
    action   text        NOT NULL CHECK (action IN ('C', 'R', 'U', 'D', 'E')),
    -- The FHIR interaction (restful-interaction code: read, search-type, ...).
    subtype  text        NOT NULL,
    outcome  smallint    NOT NULL CHECK (outcome IN (0, 4, 8, 12)),
    -- The caller's subject and client id (empty with authentication off).
    agents   text[]      NOT NULL,
    -- Bare ids of the patients touched.
    patients text[]      NOT NULL,
    -- `Type/id` of every resource touched.
    entities text[]      NOT NULL,
    -- The AuditEvent resource, exactly as hashed and served.
    event    json        NOT NULL,
    hash     bytea       NOT NULL CHECK (length(hash) = 32)
) PARTITION BY RANGE (recorded);

CREATE INDEX audit_events_seq ON audit_events (seq);
CREATE INDEX audit_events_tenant_recorded ON audit_events (tenant, recorded, seq);
CREATE INDEX audit_events_patients ON audit_events USING gin (patients);
CREATE INDEX audit_events_entities ON audit_events USING gin (entities);
CREATE INDEX audit_events_agents ON audit_events USING gin (agents);

-- The end of the chain: the writer locks this row, continues from it and
-- moves it in the transaction that appends a batch.
CREATE TABLE audit_chain_head (
    only_row      boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    last_seq      bigint      NOT NULL,
    last_hash     bytea       NOT NULL CHECK (length(last_hash) = 32),
    last_recorded timestamptz
);
INSERT INTO audit_chain_head (last_seq, last_hash) VALUES (0, decode(repeat('00', 32), 'hex'));

-- The start of the chain: the first sequence number kept and the hash it
-- continues from (zeros until retention drops a partition).
CREATE TABLE audit_chain_anchor (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    next_seq  bigint  NOT NULL,
    prev_hash bytea   NOT NULL CHECK (length(prev_hash) = 32)
);
INSERT INTO audit_chain_anchor (next_seq, prev_hash) VALUES (1, decode(repeat('00', 32), 'hex'));

-- The monthly partitions and their bounds, so that retention need not
-- parse partition bounds from the catalog.
CREATE TABLE audit_partitions (
    name        text        PRIMARY KEY,
    lower_bound timestamptz NOT NULL,
    upper_bound timestamptz NOT NULL
);

CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_chain_head_kept BEFORE DELETE ON audit_chain_head
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_chain_head_no_truncate BEFORE TRUNCATE ON audit_chain_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_chain_anchor_kept BEFORE DELETE ON audit_chain_anchor
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_chain_anchor_no_truncate BEFORE TRUNCATE ON audit_chain_anchor
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- Takes UPDATE, DELETE and TRUNCATE (and REFERENCES, TRIGGER) on `rel`
-- from PUBLIC and from every role holding them, the owner included, so
-- that the roles Baraza runs as may only INSERT and SELECT. (Default
-- privileges may have granted more when the table was created.)
CREATE FUNCTION audit_restrict(rel regclass, keep_update boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    grantee oid;
    taken text := CASE WHEN keep_update THEN 'DELETE, TRUNCATE, REFERENCES, TRIGGER'
                       ELSE 'UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER' END;
BEGIN
    EXECUTE format('REVOKE %s ON %s FROM PUBLIC', taken, rel);
    FOR grantee IN
        SELECT DISTINCT a.grantee
        FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
        WHERE c.oid = rel AND a.grantee <> 0
    LOOP
        EXECUTE format('REVOKE %s ON %s FROM %I', taken, rel, pg_get_userbyid(grantee));
    END LOOP;
END
$$;

SELECT audit_restrict('audit_events', false);
SELECT audit_restrict('audit_chain_head', true);
SELECT audit_restrict('audit_chain_anchor', true);

-- Creates the monthly partition (UTC months) holding `t`, if missing, with
-- its own TRUNCATE guard and privileges taken as on the parent. SECURITY
-- DEFINER: creating a partition needs the parent's owner.
CREATE FUNCTION audit_create_partition(t timestamptz) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    lower_bound timestamptz := date_trunc('month', t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    upper_bound timestamptz := (date_trunc('month', t AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    name text := 'audit_events_' || to_char(lower_bound AT TIME ZONE 'UTC', 'YYYY_MM');
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('baraza audit partitions'));
    IF to_regclass(name) IS NULL THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)',
                       name, lower_bound, upper_bound);
        EXECUTE format('CREATE TRIGGER audit_partition_no_truncate BEFORE TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()', name);
        PERFORM audit_restrict(name::regclass, false);
        INSERT INTO audit_partitions VALUES (name, lower_bound, upper_bound)
            ON CONFLICT DO NOTHING;
    END IF;
    RETURN name;
END
$$;

-- Drops every partition that ends at or before `cutoff`, oldest first,
-- moving the anchor past each one's last row. Refuses a cutoff less than
-- 30 days ago, the shortest retention Baraza accepts. Returns the names
-- dropped. SECURITY DEFINER: dropping needs the owner.
CREATE FUNCTION audit_drop_partitions_before(cutoff timestamptz) RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    p record;
    last record;
BEGIN
    IF cutoff > now() - interval '30 days' THEN
        RAISE EXCEPTION 'audit retention must keep at least 30 days (cutoff %)', cutoff;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('baraza audit partitions'));
    -- The chain head's lock orders this after any batch being appended.
    PERFORM 1 FROM audit_chain_head FOR UPDATE;
    PERFORM set_config('baraza.audit_scope', 'all', true);
    FOR p IN SELECT * FROM audit_partitions WHERE upper_bound <= cutoff ORDER BY lower_bound LOOP
        EXECUTE format('SELECT seq, hash FROM %I ORDER BY seq DESC LIMIT 1', p.name) INTO last;
        IF last.seq IS NOT NULL THEN
            UPDATE audit_chain_anchor SET next_seq = last.seq + 1, prev_hash = last.hash
            WHERE next_seq <= last.seq;
        END IF;
        EXECUTE format('DROP TABLE %I', p.name);
        DELETE FROM audit_partitions WHERE name = p.name;
        RETURN NEXT p.name;
    END LOOP;
END
$$;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION audit_create_partition(timestamptz) SET search_path = %I, pg_temp',
                   current_schema());
    EXECUTE format('ALTER FUNCTION audit_drop_partitions_before(timestamptz) SET search_path = %I, pg_temp',
                   current_schema());
END
$$;

-- Row-level security as on the resource tables (V11): reads see only the
-- tenant named by `baraza.tenant`. The writer appends every tenant's rows
-- in one transaction, so inserts are not limited; `baraza audit verify`
-- and retention, which read the whole chain, say so with
-- `baraza.audit_scope = all`.
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_append ON audit_events FOR INSERT WITH CHECK (true);
CREATE POLICY audit_read ON audit_events FOR SELECT USING (
    tenant = current_setting('baraza.tenant', true)
    OR current_setting('baraza.audit_scope', true) = 'all'
);

SELECT audit_create_partition(now());
SELECT audit_create_partition(now() + interval '1 month');
SELECT audit_create_partition(now() + interval '2 months');
