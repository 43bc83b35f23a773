-- Export jobs run under a lease, like $reindex jobs (issue 9): the
-- instance running a job renews it with every page; another instance
-- adopts a running job whose lease has run out (its instance died or
-- stopped) and resumes it from its cursor.
ALTER TABLE export_jobs ADD COLUMN leased_by text;
ALTER TABLE export_jobs ADD COLUMN lease_until timestamptz;
