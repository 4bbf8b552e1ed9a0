-- Alerts: one per (fingerprint, suppression window), with a count.
CREATE TABLE alerts (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fingerprint   TEXT    NOT NULL,
    rule_id       TEXT    NOT NULL,
    rule_title    TEXT    NOT NULL,
    level         TEXT    NOT NULL,
    techniques    TEXT    NOT NULL,
    entities      TEXT    NOT NULL,
    first_seen_ms BIGINT  NOT NULL,
    last_seen_ms  BIGINT  NOT NULL,
    window_end_ms BIGINT  NOT NULL,
    count         BIGINT  NOT NULL,
    status        TEXT    NOT NULL DEFAULT 'new',
    verdict       TEXT,
    event_seq     BIGINT  NOT NULL,
    updated_ms    BIGINT  NOT NULL
);
CREATE INDEX alerts_fingerprint ON alerts (fingerprint, window_end_ms);
CREATE INDEX alerts_status ON alerts (status, id);
CREATE INDEX alerts_rule ON alerts (rule_id, id);

-- Every detection once: replaying the spool after a crash adds nothing.
CREATE TABLE detections (
    key      TEXT   PRIMARY KEY,
    alert_id BIGINT NOT NULL REFERENCES alerts (id)
);

-- Events: those that matched are kept with their alerts; the others are a
-- bounded window of recent raw events.
CREATE TABLE events (
    seq         BIGINT  PRIMARY KEY,
    received_ms BIGINT  NOT NULL,
    source      TEXT    NOT NULL,
    matched     BOOLEAN NOT NULL,
    body        TEXT    NOT NULL
);
CREATE INDEX events_unmatched ON events (matched, seq);

CREATE TABLE tokens (
    id         TEXT   PRIMARY KEY,
    name       TEXT   NOT NULL,
    scope      TEXT   NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE rule_states (
    rule_id    TEXT    PRIMARY KEY,
    enabled    BOOLEAN NOT NULL,
    updated_ms BIGINT  NOT NULL
);

-- Append-only, each entry authenticated with the previous one's MAC.
CREATE TABLE audit (
    seq     BIGINT PRIMARY KEY,
    time_ms BIGINT NOT NULL,
    actor   TEXT   NOT NULL,
    action  TEXT   NOT NULL,
    target  TEXT   NOT NULL,
    detail  TEXT   NOT NULL,
    prev_mac TEXT  NOT NULL,
    mac     TEXT   NOT NULL
);
