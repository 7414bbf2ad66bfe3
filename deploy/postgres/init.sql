-- Run once by the postgres image on an empty volume: a table for the gateway to tail.
-- The `db-init` service of docker-compose.yml then installs the outbox and triggers on it
-- with `pushgate db install`.
CREATE TABLE IF NOT EXISTS orders (
    id bigserial PRIMARY KEY,
    item text NOT NULL,
    quantity integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now()
);
