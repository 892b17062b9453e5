-- The history behind GET /docs (gateway/listing.py): one tenant's documents, newest first,
-- optionally only those with a SHA-256 or with a piece of text in their name.
-- An index on the partitioned table is created on every partition, and on each partition
-- ensure_document_partitions attaches later, so a page walks one index range per month it
-- reaches and stops after `limit` rows, however many documents the tenant has.
-- (On a big production table: build each partition's index CONCURRENTLY first and attach it;
-- a migration runs in a transaction, where CONCURRENTLY is not allowed.)
CREATE INDEX documents_tenant_created_idx ON documents (tenant, created_at DESC, id DESC);

-- Filter by SHA-256, newest first.  Its (tenant, sha256) prefix serves the dedup look-ups
-- the old index was there for, so that one goes.
CREATE INDEX documents_tenant_sha256_created_idx
    ON documents (tenant, sha256, created_at DESC, id DESC);
DROP INDEX documents_tenant_sha256_idx;

-- Filter by name: a case-insensitive substring match (file_name ILIKE '%q%'), which only a
-- trigram index can serve.  The extension lives in public whatever schema this runs in: a
-- test schema dropped with CASCADE must never take it (and every index using it) along.
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
CREATE INDEX documents_file_name_trgm_idx ON documents USING gin (file_name public.gin_trgm_ops);
