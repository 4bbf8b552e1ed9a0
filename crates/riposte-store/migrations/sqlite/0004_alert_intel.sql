-- What threat intelligence said of the observables of an alert's first
-- event when it was raised (indicators, sources, decayed scores, linked
-- campaigns and actors), as a JSON list; empty when nothing matched.
ALTER TABLE alerts ADD COLUMN intel TEXT NOT NULL DEFAULT '[]';
