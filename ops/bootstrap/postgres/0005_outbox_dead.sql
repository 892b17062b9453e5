-- Outbox rows Kafka refused for good (topic gone or not ours to write, record too large):
-- moved here with the reason instead of blocking every row behind them; nothing is lost.
CREATE TABLE outbox_dead (
    id bigint PRIMARY KEY,
    topic text NOT NULL,
    key text,
    payload bytea NOT NULL,
    created_at timestamptz NOT NULL,
    error text NOT NULL,
    dead_at timestamptz NOT NULL DEFAULT now()
);
-- A relay takes only its own topics' rows (several environments may share one database).
CREATE INDEX outbox_topic_id_idx ON outbox (topic, id);
