-- How many judged messages held each word (token) of the phishing
-- analysis's classifier (riposte-mail's `WordCounts`), learned from
-- analysts' verdicts. The row named '*' counts the judged messages whose
-- words were read (a token never is '*').
CREATE TABLE mail_word_verdicts (
    token      TEXT   PRIMARY KEY,
    phishing   BIGINT NOT NULL,
    legitimate BIGINT NOT NULL
);
