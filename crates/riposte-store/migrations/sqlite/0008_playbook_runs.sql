-- Playbook runs and their journals. A run is replayed from its journal when
-- it is taken up again (after a restart, a wait, a decision), so a step the
-- journal holds as done is never done twice.
CREATE TABLE playbook_runs (
    id           TEXT   PRIMARY KEY,
    playbook     TEXT   NOT NULL,
    -- running | waiting | completed | failed | cancelled
    status       TEXT   NOT NULL,
    trigger_json TEXT   NOT NULL,
    inputs_json  TEXT   NOT NULL,
    requested_by TEXT,
    -- One run per trigger occurrence (an alert starts a playbook once).
    dedup_key    TEXT   UNIQUE,
    created_ms   BIGINT NOT NULL,
    updated_ms   BIGINT NOT NULL,
    -- When a waiting run is taken up again (none: when a person decides).
    wake_ms      BIGINT,
    outcome_json TEXT
);
CREATE INDEX playbook_runs_by_status ON playbook_runs (status, wake_ms);
CREATE INDEX playbook_runs_by_playbook ON playbook_runs (playbook, created_ms);

-- One row per step path: the interpreter's journal entry (JSON).
CREATE TABLE playbook_steps (
    run_id     TEXT   NOT NULL REFERENCES playbook_runs (id),
    path       TEXT   NOT NULL,
    -- The entry's state (started | done | failed | waiting), for queries.
    state      TEXT   NOT NULL,
    entry_json TEXT   NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (run_id, path)
);
CREATE INDEX playbook_steps_waiting ON playbook_steps (state);

-- Inverses of done actions, due by themselves at due_ms (a TTL) or when a
-- person undoes the run.
CREATE TABLE playbook_undos (
    run_id      TEXT   NOT NULL REFERENCES playbook_runs (id),
    path        TEXT   NOT NULL,
    action      TEXT   NOT NULL,
    inputs_json TEXT   NOT NULL,
    due_ms      BIGINT,
    -- pending | done | failed
    state       TEXT   NOT NULL,
    detail      TEXT,
    updated_ms  BIGINT NOT NULL,
    PRIMARY KEY (run_id, path)
);
CREATE INDEX playbook_undos_due ON playbook_undos (state, due_ms);

-- Actions that changed something, for blast-radius limits per hour.
CREATE TABLE playbook_actions (
    run_id   TEXT   NOT NULL,
    path     TEXT   NOT NULL,
    playbook TEXT   NOT NULL,
    kind     TEXT   NOT NULL,
    at_ms    BIGINT NOT NULL,
    PRIMARY KEY (run_id, path)
);
CREATE INDEX playbook_actions_by_kind ON playbook_actions (kind, at_ms);
