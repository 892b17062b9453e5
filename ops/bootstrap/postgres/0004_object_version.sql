-- The object store version pinned at confirm: extraction, scanners, /content and replay read
-- exactly these bytes, whatever is PUT to the upload URL afterwards.
ALTER TABLE documents ADD COLUMN object_version text;
