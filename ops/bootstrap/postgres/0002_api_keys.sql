-- API keys, stored only as SHA-256 digests (gateway/auth.py); revoking keeps the row.
CREATE TABLE api_keys (
    key_sha256 text        PRIMARY KEY,
    tenant     text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE INDEX api_keys_tenant_idx ON api_keys (tenant);
