-- Messages held back by the phishing analysis. Their bytes are kept on
-- disk by hash (`<data_dir>/quarantine/<sha256>.eml`); this is the record
-- of each, kept after a release or a deletion.
CREATE TABLE quarantine (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sha256      TEXT    NOT NULL,
    received_ms BIGINT  NOT NULL,
    sender      TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    verdict     TEXT    NOT NULL,
    score       DOUBLE PRECISION NOT NULL,
    findings    TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    updated_ms  BIGINT  NOT NULL
);
CREATE INDEX quarantine_status ON quarantine (status, id);
