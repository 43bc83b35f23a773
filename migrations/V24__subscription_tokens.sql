-- Websocket binding tokens of Subscriptions (Backport IG
-- $get-ws-binding-token): short-lived, stored as SHA-256 hashes, readable
-- by every instance (the client may connect to any of them).
CREATE TABLE subscription_tokens (
    tenant       text        NOT NULL,
    token_hash   text        NOT NULL,
    subscription text        NOT NULL,
    expires      timestamptz NOT NULL,
    PRIMARY KEY (tenant, token_hash)
);

ALTER TABLE subscription_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE subscription_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON subscription_tokens
    USING (tenant = current_setting('baraza.tenant', true))
    WITH CHECK (tenant = current_setting('baraza.tenant', true));
