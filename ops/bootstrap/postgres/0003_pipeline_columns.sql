-- Columns the pipeline needs: the declared hash may be absent until extraction computes it;
-- the multipart upload id; how many verdicts are expected; the Kafka offset of the metadata
-- event shown (SSE resume cursors and replay ordering); why a document failed or was rejected.
ALTER TABLE documents ALTER COLUMN sha256 DROP NOT NULL;
ALTER TABLE documents ALTER COLUMN process_status SET DEFAULT 'requested';
ALTER TABLE documents ADD COLUMN upload_id text;
ALTER TABLE documents ADD COLUMN expected_scanners int;
ALTER TABLE documents ADD COLUMN meta_offset bigint;
ALTER TABLE documents ADD COLUMN status_reason text;

-- A status only moves forward; replays and redeliveries compare ranks.
CREATE FUNCTION status_rank(status text) RETURNS int
LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE status
        WHEN 'requested' THEN 0 WHEN 'uploaded' THEN 1 WHEN 'in_progress' THEN 2
        WHEN 'done' THEN 3 WHEN 'failed' THEN 3 WHEN 'rejected' THEN 3 ELSE -1 END
$$;
