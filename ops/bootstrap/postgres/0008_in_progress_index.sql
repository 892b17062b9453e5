-- The worker counts documents in progress every few seconds (streams/monitor.py): few rows
-- are in progress at any time, so a partial index keeps that look small however many
-- documents the table holds.  Each partition gets its own (a new one on ATTACH).
CREATE INDEX documents_in_progress_idx ON documents (updated_at)
    WHERE process_status = 'in_progress';
