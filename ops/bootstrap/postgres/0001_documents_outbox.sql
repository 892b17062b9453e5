-- Documents, partitioned by month of created_at, and the outbox the gateway publishes from.
-- Runs with search_path set to the target schema: no name here is schema-qualified.

CREATE TABLE documents (
    id             uuid        NOT NULL,
    tenant         text        NOT NULL,
    file_name      text        NOT NULL,
    file_size      bigint      NOT NULL CHECK (file_size >= 0),
    file_type      text,
    content_type   text,
    sha256         text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    uploaded_at    timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    process_status text        NOT NULL DEFAULT 'pending',
    script_version text,
    meta_data      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- The partition key has to be part of every unique constraint.
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);

-- Dedup look-up: "has this tenant already sent this content?"
CREATE INDEX documents_tenant_sha256_idx ON documents (tenant, sha256);

-- Rows outside every monthly partition land here instead of failing the insert;
-- ensure_document_partitions moves them out when their month's partition is created.
CREATE TABLE documents_default PARTITION OF documents DEFAULT;

-- Creates the partitions from the current month (UTC) to months_ahead months later.
-- Idempotent; returns how many partitions it created.  SET search_path FROM CURRENT pins
-- the function to the schema it was created in, whoever calls it later.
CREATE FUNCTION ensure_document_partitions(months_ahead int DEFAULT 3) RETURNS int
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    first_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
    month_start timestamp;
    lo timestamptz;
    hi timestamptz;
    part text;
    created int := 0;
BEGIN
    -- Serialise concurrent callers (two gateways starting at once).
    PERFORM pg_advisory_xact_lock(hashtext('ensure_document_partitions:' || current_schema()));
    FOR i IN 0..months_ahead LOOP
        month_start := first_month + make_interval(months => i);
        part := 'documents_' || to_char(month_start, 'YYYY_MM');
        CONTINUE WHEN to_regclass(quote_ident(part)) IS NOT NULL;
        lo := month_start AT TIME ZONE 'UTC';
        hi := (month_start + interval '1 month') AT TIME ZONE 'UTC';
        -- Create detached, move rows the default partition caught for this month, attach:
        -- attaching fails if the default partition still holds rows of the new range.
        EXECUTE format('CREATE TABLE %I (LIKE documents INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                       part);
        EXECUTE format(
            'WITH moved AS (DELETE FROM documents_default WHERE created_at >= %L AND created_at < %L '
            'RETURNING *) INSERT INTO %I SELECT * FROM moved', lo, hi, part);
        EXECUTE format('ALTER TABLE documents ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       part, lo, hi);
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;

-- Transactional outbox: the gateway writes the document row and its event in one
-- transaction; a relay publishes unpublished rows to Kafka and stamps published_at.
CREATE TABLE outbox (
    id           bigserial   PRIMARY KEY,
    topic        text        NOT NULL,
    key          text,
    payload      bytea       NOT NULL,
    headers      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);

-- The relay's scan: only what is still to publish, oldest first.
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
