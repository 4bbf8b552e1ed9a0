-- How often each check of the phishing analysis held on messages analysts
-- judged, for the weights the organisation learns (riposte-mail's
-- `Verdicts`). The row named '*' counts every judged message.
CREATE TABLE mail_check_verdicts (
    check_name TEXT   PRIMARY KEY,
    phishing   BIGINT NOT NULL,
    legitimate BIGINT NOT NULL
);
