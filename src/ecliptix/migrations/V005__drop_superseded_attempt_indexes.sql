-- persistor:no-transaction
-- V005: drop the two version 1 attempt indexes that V004's per-(number,
-- device) indexes superseded.
--
--   ix_login_attempts_phone_number_attempted_at (phone_number, attempted_at)
--     -> ix_login_attempts_phone_number_device_attempted_at
--        (phone_number, app_device_id, attempted_at)
--   ix_membership_attempts_phone_number_id_attempted_at (phone_number_id, attempted_at)
--     -> ix_membership_attempts_phone_device_attempted_at
--        (phone_number_id, app_device_id, attempted_at)
--
-- Every query of these tables by number names the device too, or "no
-- device" (IS NULL, which a btree index matches), so it reads one range of
-- the three-column index (see R__04: the login failure count and clear, the
-- membership failure budget and its reset); a lookup by number alone (the
-- purge's "is this phone referenced", the foreign key's ON DELETE CASCADE
-- from phone_numbers) uses the same index's leading column. The purge of old
-- attempts reads the attempted_at indexes of V004. Each login and each
-- membership attempt then updates one index fewer: less work and write-ahead
-- log on the hot path.
--
-- DROP INDEX CONCURRENTLY takes no lock that blocks reads or writes of the
-- table (it waits for the transactions using the index to end), and cannot
-- run in a transaction, hence the directive above: the statements run one by
-- one. IF EXISTS makes the file safe to run again after an interruption
-- (persistor repair, then migrate).

DROP INDEX CONCURRENTLY IF EXISTS ix_login_attempts_phone_number_attempted_at;

DROP INDEX CONCURRENTLY IF EXISTS ix_membership_attempts_phone_number_id_attempted_at;
