-- Retro-scan (issue 12, streams/rescan/).  `scope` is the deployment's topic prefix: stacks
-- that share this database keep their scanners and jobs apart.

-- Every signatures version each scanner has announced.  The first worker to insert a version
-- opens the rescan job; every other worker (and every later heartbeat) finds it there, so a
-- change triggers once, and a version seen before (a rollout where hosts alternate) never
-- triggers again.
CREATE TABLE scanner_signatures (
    scope              text        NOT NULL,
    scanner            text        NOT NULL,
    signatures_version text        NOT NULL,
    first_seen_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, scanner, signatures_version)
);

-- One job: scan again what `scanner` judged since `since` (verdicts at or before
-- `created_at`), optionally only documents with bytes `sha256`.  A worker holds it under a
-- lease it renews; `pos_*` is how far it has got, so a successor resumes there.
CREATE TABLE rescan_jobs (
    id                 uuid        PRIMARY KEY,
    scope              text        NOT NULL,
    scanner            text        NOT NULL,
    reason             text        NOT NULL CHECK (reason IN ('signatures', 'manual')),
    signatures_version text,       -- the version that triggered it; NULL: manual, any
    since              timestamptz NOT NULL,
    sha256             text,
    state              text        NOT NULL DEFAULT 'pending'
                       CHECK (state IN ('pending', 'running', 'done', 'superseded')),
    owner              text,
    lease_until        timestamptz,
    pos_hour           timestamptz,
    pos_end_at         timestamptz,
    pos_doc            uuid,
    selected           integer     NOT NULL DEFAULT 0,  -- verdicts found needing a rescan
    requested          integer     NOT NULL DEFAULT 0,  -- rescan requests sent
    created_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz
);
CREATE INDEX rescan_jobs_open ON rescan_jobs (scope, created_at)
    WHERE state IN ('pending', 'running');
