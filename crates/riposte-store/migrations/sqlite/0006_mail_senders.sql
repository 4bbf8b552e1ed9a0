-- What the organisation has learned of each sender: when it first wrote,
-- and how analysts judged its messages. The phishing analysis reads it
-- (a first-time sender, a sender analysts trust or distrust).
CREATE TABLE mail_senders (
    address       TEXT   PRIMARY KEY,
    first_seen_ms BIGINT NOT NULL,
    messages      BIGINT NOT NULL,
    legitimate    BIGINT NOT NULL,
    phishing      BIGINT NOT NULL,
    updated_ms    BIGINT NOT NULL
);
