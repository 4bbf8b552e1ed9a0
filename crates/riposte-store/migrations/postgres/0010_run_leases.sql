-- Which process is running a run, and until when: several `serve`
-- processes on one database take each due run up once. A process that dies
-- leaves its lease to run out; another then takes the run up.
ALTER TABLE playbook_runs ADD COLUMN leased_by TEXT;
ALTER TABLE playbook_runs ADD COLUMN lease_until_ms BIGINT;
