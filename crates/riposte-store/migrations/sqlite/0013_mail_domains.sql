-- Sender domains (registered domains, `mail.example.co.uk` counted as
-- `example.co.uk`) the organisation has had mail from: a domain never seen
-- before is a finding of the phishing analysis.
CREATE TABLE mail_domains (
    domain        TEXT   PRIMARY KEY,
    first_seen_ms BIGINT NOT NULL,
    messages      BIGINT NOT NULL,
    updated_ms    BIGINT NOT NULL
);
