-- The observables of stored events (addresses, domains and their parents,
-- URLs, hashes, e-mail addresses), so that a new indicator can be looked for
-- in what was already seen (retro-hunt) without reading every event.
CREATE TABLE observables (
    value TEXT   NOT NULL,
    seq   BIGINT NOT NULL
);
CREATE INDEX observables_value ON observables (value);
CREATE INDEX observables_seq ON observables (seq);
