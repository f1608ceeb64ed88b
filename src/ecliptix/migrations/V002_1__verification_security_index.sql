-- V002_1: the index behind the per-number failed-check budgets (V002).
-- Built CONCURRENTLY, so failed_otp_attempts keeps taking reads and writes
-- while it builds, however big the table is; persistor therefore runs this
-- file outside a transaction. Partial: the version 1 rows that V002_2
-- leaves without a number (older than the window) are never counted.
-- If the build fails (it leaves an INVALID index behind), drop that index
-- with DROP INDEX CONCURRENTLY ix_failed_otp_attempts_phone_number_time and
-- run migrate again.
CREATE INDEX CONCURRENTLY ix_failed_otp_attempts_phone_number_time
    ON failed_otp_attempts (phone_number, attempt_time)
    WHERE phone_number IS NOT NULL;
