-- V001: production baseline of the Ecliptix memberships database (PostgreSQL port).
--
-- Holds the ten contract tables (keys, checks, partial unique indexes so that
-- soft-deleted rows never block new ones and a NULL region is one value), the
-- single updated_at trigger function with its nine triggers, and two support
-- tables: ecliptix_limits (every tunable number, in one place, read by the
-- functions) and login_lockouts (login lock state stored as data).
-- Functions live in the repeatable R__ scripts. No schema is named: objects go
-- into the current schema (the migrator sets search_path).

CREATE TABLE app_devices (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    unique_id       uuid        NOT NULL DEFAULT gen_random_uuid(),
    app_instance_id uuid        NOT NULL,
    device_id       uuid        NOT NULL,
    device_type     int         NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    is_deleted      boolean     NOT NULL DEFAULT false,
    CONSTRAINT uq_app_devices_unique_id UNIQUE (unique_id),
    CONSTRAINT uq_app_devices_device_id UNIQUE (device_id)
);
CREATE INDEX ix_app_devices_app_instance_id ON app_devices (app_instance_id);

CREATE TABLE phone_numbers (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    unique_id    uuid        NOT NULL DEFAULT gen_random_uuid(),
    phone_number varchar(18) NOT NULL,
    region       varchar(2),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    is_deleted   boolean     NOT NULL DEFAULT false,
    CONSTRAINT uq_phone_numbers_unique_id UNIQUE (unique_id),
    CONSTRAINT ck_phone_numbers_phone_number_not_empty CHECK (phone_number <> ''),
    CONSTRAINT ck_phone_numbers_region_iso2 CHECK (region ~ '^[A-Z]{2}$')
);
CREATE INDEX ix_phone_numbers_phone_number_region ON phone_numbers (phone_number, region);
-- One non-deleted row per (number, region); NULL region counts as a value.
CREATE UNIQUE INDEX uq_phone_numbers_number_region_active
    ON phone_numbers (phone_number, region) NULLS NOT DISTINCT
    WHERE NOT is_deleted;

CREATE TABLE phone_number_devices (
    phone_number_id uuid        NOT NULL
        REFERENCES phone_numbers (unique_id) ON DELETE CASCADE,
    app_device_id   uuid        NOT NULL
        REFERENCES app_devices (unique_id) ON DELETE CASCADE,
    is_primary      boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    is_deleted      boolean     NOT NULL DEFAULT false,
    CONSTRAINT pk_phone_number_devices PRIMARY KEY (phone_number_id, app_device_id)
);
CREATE INDEX ix_phone_number_devices_app_device_id ON phone_number_devices (app_device_id);

CREATE TABLE verification_flows (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    unique_id       uuid        NOT NULL DEFAULT gen_random_uuid(),
    phone_number_id bigint      NOT NULL REFERENCES phone_numbers (id) ON DELETE CASCADE,
    app_device_id   uuid        NOT NULL REFERENCES app_devices (unique_id) ON DELETE CASCADE,
    status          varchar(20) NOT NULL DEFAULT 'pending',
    purpose         varchar(30) NOT NULL DEFAULT 'unspecified',
    expires_at      timestamptz NOT NULL,
    otp_count       smallint    NOT NULL DEFAULT 0,
    connection_id   bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    is_deleted      boolean     NOT NULL DEFAULT false,
    CONSTRAINT uq_verification_flows_unique_id UNIQUE (unique_id),
    CONSTRAINT ck_verification_flows_status
        CHECK (status IN ('pending', 'verified', 'expired', 'failed')),
    CONSTRAINT ck_verification_flows_purpose
        CHECK (purpose IN ('unspecified', 'registration', 'login', 'password_recovery',
                           'update_phone')),
    CONSTRAINT ck_verification_flows_otp_count CHECK (otp_count >= 0)
);
CREATE INDEX ix_verification_flows_phone_number_id_status
    ON verification_flows (phone_number_id, status);
-- Serves the per-phone hourly flow count.
CREATE INDEX ix_verification_flows_phone_number_id_created_at
    ON verification_flows (phone_number_id, created_at);
CREATE INDEX ix_verification_flows_app_device_id ON verification_flows (app_device_id);
-- One pending, non-deleted flow per (device, phone, purpose).
CREATE UNIQUE INDEX uq_verification_flows_pending
    ON verification_flows (app_device_id, phone_number_id, purpose)
    WHERE status = 'pending' AND NOT is_deleted;

CREATE TABLE otp_records (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    unique_id       uuid         NOT NULL DEFAULT gen_random_uuid(),
    flow_unique_id  uuid         NOT NULL
        REFERENCES verification_flows (unique_id) ON DELETE CASCADE,
    phone_number_id bigint       NOT NULL REFERENCES phone_numbers (id),
    otp_hash        varchar(255) NOT NULL,
    otp_salt        varchar(255) NOT NULL,
    expires_at      timestamptz  NOT NULL,
    status          varchar(20)  NOT NULL DEFAULT 'pending',
    is_active       boolean      NOT NULL DEFAULT true,
    created_at      timestamptz  NOT NULL DEFAULT now(),
    updated_at      timestamptz  NOT NULL DEFAULT now(),
    is_deleted      boolean      NOT NULL DEFAULT false,
    CONSTRAINT uq_otp_records_unique_id UNIQUE (unique_id),
    CONSTRAINT ck_otp_records_status
        CHECK (status IN ('pending', 'verified', 'expired', 'failed'))
);
CREATE INDEX ix_otp_records_flow_unique_id_status ON otp_records (flow_unique_id, status);
CREATE INDEX ix_otp_records_phone_number_id ON otp_records (phone_number_id);
-- At most one active, non-deleted OTP per flow.
CREATE UNIQUE INDEX uq_otp_records_one_active_per_flow
    ON otp_records (flow_unique_id)
    WHERE is_active AND NOT is_deleted;

CREATE TABLE failed_otp_attempts (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    otp_unique_id  uuid        NOT NULL REFERENCES otp_records (unique_id) ON DELETE CASCADE,
    flow_unique_id uuid        NOT NULL REFERENCES verification_flows (unique_id),
    attempt_time   timestamptz NOT NULL DEFAULT now(),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    is_deleted     boolean     NOT NULL DEFAULT false
);
CREATE INDEX ix_failed_otp_attempts_otp_unique_id ON failed_otp_attempts (otp_unique_id);
CREATE INDEX ix_failed_otp_attempts_flow_unique_id ON failed_otp_attempts (flow_unique_id);

CREATE TABLE memberships (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    unique_id            uuid        NOT NULL DEFAULT gen_random_uuid(),
    phone_number_id      uuid        NOT NULL REFERENCES phone_numbers (unique_id),
    app_device_id        uuid        NOT NULL REFERENCES app_devices (unique_id),
    verification_flow_id uuid        REFERENCES verification_flows (unique_id),
    secure_key           bytea,
    status               varchar(20) NOT NULL DEFAULT 'inactive',
    creation_status      varchar(20),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    is_deleted           boolean     NOT NULL DEFAULT false,
    CONSTRAINT uq_memberships_unique_id UNIQUE (unique_id),
    CONSTRAINT ck_memberships_status CHECK (status IN ('active', 'inactive')),
    CONSTRAINT ck_memberships_creation_status
        CHECK (creation_status IN ('otp_verified', 'secure_key_set', 'passphrase_set'))
);
CREATE INDEX ix_memberships_phone_number_id_status ON memberships (phone_number_id, status);
CREATE INDEX ix_memberships_app_device_id ON memberships (app_device_id);
CREATE INDEX ix_memberships_verification_flow_id ON memberships (verification_flow_id);
-- One non-deleted membership per (phone, device).
CREATE UNIQUE INDEX uq_memberships_phone_device_active
    ON memberships (phone_number_id, app_device_id)
    WHERE NOT is_deleted;

CREATE TABLE login_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    attempted_at timestamptz  NOT NULL DEFAULT now(),
    phone_number varchar(18)  NOT NULL,
    outcome      varchar(255) NOT NULL,
    is_success   boolean      NOT NULL DEFAULT false,
    created_at   timestamptz  NOT NULL DEFAULT now(),
    updated_at   timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX ix_login_attempts_phone_number_attempted_at
    ON login_attempts (phone_number, attempted_at);

CREATE TABLE membership_attempts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phone_number_id uuid         NOT NULL
        REFERENCES phone_numbers (unique_id) ON DELETE CASCADE,
    attempted_at    timestamptz  NOT NULL DEFAULT now(),
    outcome         varchar(255) NOT NULL,
    is_success      boolean      NOT NULL DEFAULT false,
    created_at      timestamptz  NOT NULL DEFAULT now(),
    updated_at      timestamptz  NOT NULL DEFAULT now(),
    is_deleted      boolean      NOT NULL DEFAULT false
);
CREATE INDEX ix_membership_attempts_phone_number_id_attempted_at
    ON membership_attempts (phone_number_id, attempted_at);

CREATE TABLE event_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_type varchar(50) NOT NULL,
    message    text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- updated_at: any UPDATE that does not itself assign a new value gets now().
CREATE FUNCTION ecliptix_set_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER trg_app_devices_updated_at BEFORE UPDATE ON app_devices
    FOR EACH ROW EXECUTE FUNCTION ecliptix_set_updated_at();
CREATE TRIGGER trg_phone_numbers_updated_at BEFORE UPDATE ON phone_numbers
    FOR EACH ROW EXECUTE FUNCTION ecliptix_set_updated_at();
CREATE TRIGGER trg_phone_number_devices_updated_at BEFORE UPDATE ON phone_number_devices
    FOR EACH ROW EXECUTE FUNCTION ecliptix_set_updated_at();
CREATE TRIGGER trg_verification_flows_updated_at BEFORE UPDATE ON verification_flows
    FOR EACH ROW EXECUTE FUNCTION ecliptix_set_updated_at();
CREATE TRIGGER trg_otp_records_updated_at BEFORE UPDATE ON otp_records
    FOR EACH ROW EXECUTE FUNCTION ecliptix_set_updated_at();
CREATE TRIGGER trg_failed_otp_attempts_updated_at BEFORE UPDATE ON failed_otp_attempts
    FOR EACH ROW EXECUTE FUNCTION ecliptix_set_updated_at();
CREATE TRIGGER trg_memberships_updated_at BEFORE UPDATE ON memberships
    FOR EACH ROW EXECUTE FUNCTION ecliptix_set_updated_at();
CREATE TRIGGER trg_login_attempts_updated_at BEFORE UPDATE ON login_attempts
    FOR EACH ROW EXECUTE FUNCTION ecliptix_set_updated_at();
CREATE TRIGGER trg_membership_attempts_updated_at BEFORE UPDATE ON membership_attempts
    FOR EACH ROW EXECUTE FUNCTION ecliptix_set_updated_at();

-- Tunable limits: the only place the numbers live. A later migration changes
-- one with a single statement, e.g.
--   UPDATE ecliptix_limits SET value = 31 WHERE name = 'flows_per_phone_per_window';
-- Durations are whole seconds (the unit is part of the name).
CREATE TABLE ecliptix_limits (
    name        text    PRIMARY KEY,
    value       integer NOT NULL,
    description text    NOT NULL,
    CONSTRAINT ck_ecliptix_limits_value_positive CHECK (value > 0)
);
INSERT INTO ecliptix_limits (name, value, description) VALUES
    ('flow_lifetime_seconds',             300,   'A new verification flow expires this long after creation'),
    ('verified_flow_validity_seconds',    86400, 'A flow moved to verified stays valid this long'),
    ('flows_per_phone_per_window',        30,    'Most flows created for one phone within flow_rate_window_seconds'),
    ('flow_rate_window_seconds',          3600,  'Window of flows_per_phone_per_window'),
    ('otps_per_flow',                     5,     'Most OTPs issued for one flow'),
    ('otp_resend_cooldown_seconds',       30,    'Minimum age of the newest OTP before a resend is allowed'),
    ('membership_failures_per_window',    5,     'Counted create_membership failures per phone that refuse further attempts'),
    ('membership_failure_window_seconds', 3600,  'Window of membership_failures_per_window'),
    ('login_failures_per_window',         5,     'Failed logins per number within login_failure_window_seconds that lock it'),
    ('login_failure_window_seconds',      300,   'Window of login_failures_per_window'),
    ('login_lockout_seconds',             300,   'How long a locked-out number stays locked');

-- Login lock state as data (not parsed back from login_attempts.outcome).
-- One row per locked (or recently locked) number; cleared when the lock has
-- ended or on a successful login.
CREATE TABLE login_lockouts (
    phone_number varchar(18) PRIMARY KEY,
    locked_at    timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz NOT NULL
);
