-- Permission groups a tenant's admins define (issue 4). The system groups
-- (clinician, analyst, tenant-admin, …) live in the code, the same for
-- every tenant, and cannot be changed; rows here are the tenant's own.
-- `permissions` maps a resource type (or "*") to the interactions allowed
-- on it; `purposes` lists purpose permissions such as "$export".
CREATE TABLE permission_groups (
    tenant      text        NOT NULL,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    permissions jsonb       NOT NULL,
    purposes    jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, name)
);

ALTER TABLE permission_groups ENABLE ROW LEVEL SECURITY;
ALTER TABLE permission_groups FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON permission_groups
    USING (tenant = current_setting('baraza.tenant', true))
    WITH CHECK (tenant = current_setting('baraza.tenant', true));
