-- persistor:no-transaction
-- V004: the indexes V003's changes need on existing tables, built without
-- blocking the application.
--
-- These tables can be large in a version 1 database (the attempt tables and
-- event_log were never purged), so each index is built CONCURRENTLY: only a
-- SHARE UPDATE EXCLUSIVE lock, which lets reads and writes go on while it
-- builds. That cannot run in a transaction, hence the directive above: the
-- statements run one by one. Each index is first dropped (CONCURRENTLY, if
-- present): a build that failed or was interrupted leaves an INVALID index
-- behind, and running this file again from the top (persistor repair, then
-- migrate) replaces it instead of stopping at "already exists".
--
-- Per-(number, device) counts: login_membership and create_membership count
-- one device's failures for a number without reading every other device's.
-- Purge: ecliptix_purge finds the oldest attempts, events and ended locks,
-- and the soft-deleted rows, without scanning whole tables.

DROP INDEX CONCURRENTLY IF EXISTS ix_login_attempts_phone_number_device_attempted_at;
CREATE INDEX CONCURRENTLY ix_login_attempts_phone_number_device_attempted_at
    ON login_attempts (phone_number, app_device_id, attempted_at);

DROP INDEX CONCURRENTLY IF EXISTS ix_login_attempts_attempted_at;
CREATE INDEX CONCURRENTLY ix_login_attempts_attempted_at ON login_attempts (attempted_at);

DROP INDEX CONCURRENTLY IF EXISTS ix_membership_attempts_phone_device_attempted_at;
CREATE INDEX CONCURRENTLY ix_membership_attempts_phone_device_attempted_at
    ON membership_attempts (phone_number_id, app_device_id, attempted_at);

DROP INDEX CONCURRENTLY IF EXISTS ix_membership_attempts_attempted_at;
CREATE INDEX CONCURRENTLY ix_membership_attempts_attempted_at
    ON membership_attempts (attempted_at);

DROP INDEX CONCURRENTLY IF EXISTS ix_event_log_created_at;
CREATE INDEX CONCURRENTLY ix_event_log_created_at ON event_log (created_at);

DROP INDEX CONCURRENTLY IF EXISTS ix_login_lockouts_locked_until;
CREATE INDEX CONCURRENTLY ix_login_lockouts_locked_until ON login_lockouts (locked_until);

-- Soft-deleted rows only (partial), keyed by columns that updates never
-- change, so ordinary updates of these tables stay HOT.
DROP INDEX CONCURRENTLY IF EXISTS ix_verification_flows_deleted;
CREATE INDEX CONCURRENTLY ix_verification_flows_deleted
    ON verification_flows (id) WHERE is_deleted;

DROP INDEX CONCURRENTLY IF EXISTS ix_otp_records_deleted;
CREATE INDEX CONCURRENTLY ix_otp_records_deleted ON otp_records (id) WHERE is_deleted;

DROP INDEX CONCURRENTLY IF EXISTS ix_failed_otp_attempts_deleted;
CREATE INDEX CONCURRENTLY ix_failed_otp_attempts_deleted
    ON failed_otp_attempts (id) WHERE is_deleted;

DROP INDEX CONCURRENTLY IF EXISTS ix_memberships_deleted;
CREATE INDEX CONCURRENTLY ix_memberships_deleted ON memberships (id) WHERE is_deleted;

DROP INDEX CONCURRENTLY IF EXISTS ix_membership_attempts_deleted;
CREATE INDEX CONCURRENTLY ix_membership_attempts_deleted
    ON membership_attempts (id) WHERE is_deleted;

DROP INDEX CONCURRENTLY IF EXISTS ix_phone_number_devices_deleted;
CREATE INDEX CONCURRENTLY ix_phone_number_devices_deleted
    ON phone_number_devices (phone_number_id, app_device_id) WHERE is_deleted;
