-- Tickets that playbook runs opened for alerts, followed until they close
-- so that the alert closes with them.
CREATE TABLE ticket_links (
    -- The read-only action that gives the ticket's status, and its inputs.
    status_action TEXT   NOT NULL,
    ticket        TEXT   NOT NULL,
    inputs_json   TEXT   NOT NULL,
    alert_id      BIGINT NOT NULL,
    run_id        TEXT   NOT NULL,
    -- open | closed
    state         TEXT   NOT NULL,
    -- The ticket's last status as its tool gave it.
    status_json   TEXT,
    updated_ms    BIGINT NOT NULL,
    PRIMARY KEY (status_action, ticket)
);
CREATE INDEX ticket_links_open ON ticket_links (state);
