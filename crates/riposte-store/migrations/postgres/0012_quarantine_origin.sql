-- Where a held message came from: 'api' (POST /api/email/analyze) or the
-- mailbox it was taken from, 'imap://HOST:PORT/FOLDER', which is where a
-- release moves it back to. Messages held before this was recorded have
-- '' (unknown): a release tries the configured mailbox, as it did then.
ALTER TABLE quarantine ADD COLUMN origin TEXT NOT NULL DEFAULT '';
