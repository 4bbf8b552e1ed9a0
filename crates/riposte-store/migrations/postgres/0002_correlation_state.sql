-- The correlation engine's open windows, as of the spool position `seq`:
-- written with the batch that changed them, read back at start.
CREATE TABLE correlation_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    seq        BIGINT  NOT NULL,
    state      TEXT    NOT NULL,
    updated_ms BIGINT  NOT NULL
);
