-- How far `intellidox storage-events` has applied the filer's metadata log (the filer's time,
-- ns), per subscription (its name carries the bucket prefix).  Every listener process of a
-- deployment shares the row and only moves it forward; a restart resumes a little before it.
CREATE TABLE storage_event_cursors (
    name       text        PRIMARY KEY,
    ts_ns      bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
