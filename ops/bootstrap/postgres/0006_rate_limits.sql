-- Rate limits (README "Rate limits", gateway/ratelimit.py).  The limits are stored with the key;
-- NULL means the gateway's default (INTELLIDOX_RATE_LIMIT_*).  All of a tenant's keys share
-- one bucket per kind, so minting keys does not multiply a tenant's allowance.
ALTER TABLE api_keys
    ADD COLUMN rate_per_s  double precision CHECK (rate_per_s > 0),
    ADD COLUMN rate_burst  integer CHECK (rate_burst >= 1),
    ADD COLUMN max_uploads integer CHECK (max_uploads >= 0);

-- The token buckets every gateway process shares.  Gateways take tokens in small leases
-- (take_tokens), not one round trip per request.  Unlogged: no WAL for this churn; after a
-- Postgres crash the buckets start full again, which errs on the client's side.
CREATE UNLOGGED TABLE rate_buckets (
    bucket     text             PRIMARY KEY,
    tokens     double precision NOT NULL,
    updated_at timestamptz      NOT NULL
);

-- Refill the bucket at p_rate per second up to p_burst, then take up to p_want whole tokens.
-- granted = 0 means empty; wait_s then says when the next token will be there.  The row lock
-- serialises gateways; the clock is read after taking it, so time never runs backwards.
CREATE FUNCTION take_tokens(
    p_bucket text, p_rate double precision, p_burst double precision, p_want integer,
    OUT granted integer, OUT wait_s double precision
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    have double precision;
    last timestamptz;
    now_ts timestamptz;
BEGIN
    SELECT tokens, updated_at INTO have, last FROM rate_buckets WHERE bucket = p_bucket FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO rate_buckets VALUES (p_bucket, p_burst, clock_timestamp())
            ON CONFLICT (bucket) DO NOTHING;
        SELECT tokens, updated_at INTO have, last FROM rate_buckets
            WHERE bucket = p_bucket FOR UPDATE;
    END IF;
    now_ts := greatest(last, clock_timestamp());
    have := least(p_burst, have + p_rate * extract(epoch FROM now_ts - last));
    granted := greatest(0, least(p_want, floor(have)))::integer;
    wait_s := CASE WHEN granted > 0 THEN 0 ELSE (1 - have) / p_rate END;
    UPDATE rate_buckets SET tokens = have - granted, updated_at = now_ts WHERE bucket = p_bucket;
END
$$;

-- Uploads in progress: a tenant's documents still 'requested' (created, bytes not confirmed)
-- whose upload URLs have not expired.  Partial, so it only holds the few rows in flight.
CREATE INDEX documents_requested_idx ON documents (tenant, created_at)
    WHERE process_status = 'requested';
