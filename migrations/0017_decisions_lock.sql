-- consentd schema, migration 17: nothing changes on SQLite. On PostgreSQL
-- (migrations-pg/0017_decisions_lock.sql) the triggers that drop decision
-- rows take the writers' lock, which SQLite's one writer at a time already
-- gives: every write, consentd's or not, holds the database's write lock
-- from its first change to its commit.
SELECT 1;
