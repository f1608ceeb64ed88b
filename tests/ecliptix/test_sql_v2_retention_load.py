"""ecliptix_purge over time and under load: a simulated week of traffic,
purged as scheduled, levels every table's row count off; purging from
several sessions while 28 others register, log in and recover deletes
nothing in use. Time passing is simulated by moving stored timestamps back."""

from __future__ import annotations

import random
from typing import Any

from tests.ecliptix.sql_support import (
    PURGED_TABLES,
    Conn,
    make_flow,
    make_phone,
    new_number,
    one,
    run_concurrently,
    scalar,
)
from tests.ecliptix.test_sql_v2_membership import end_verified_flows, member_with_key
from tests.ecliptix.test_sql_v2_retention import (
    attacker_traffic,
    counts,
    purge,
    purge_until_done,
    shift_time,
)

STEPS_PER_DAY = 8  # one step is 3 hours
DAYS = 7
# Short retention, so that a week shows the steady state.
SHORT_RETENTION = {
    "ended_flow_retention_seconds": 86400,
    "attempt_retention_seconds": 86400,
    "event_log_retention_seconds": 2 * 86400,
    "ended_lock_retention_seconds": 3600,
    "soft_deleted_retention_seconds": 86400,
    "unreferenced_retention_seconds": 86400,
}


def attack(db: Conn, victim: dict[str, Any]) -> None:
    """A fresh attacker device: a flow on the victim's number with a wrong
    code and a failed creation, wrong passwords until locked out, a recovery
    check, and a random number of its own."""
    device, _, _ = attacker_traffic(db, victim)
    make_phone(db, new_number(), None, device)


def traffic(db: Conn, owners: list[dict[str, Any]], churn: list[dict[str, Any]]) -> None:
    """Three hours of traffic: the owners log in, one user joins and an
    earlier one leaves, three attacker devices attack."""
    for owner in owners:
        assert one(db, "login_membership", owner["number"], owner["device"])["outcome"] == (
            "success"
        )
    churn.append(member_with_key(db, b"churn"))
    if len(churn) > 1:
        left = churn.pop(0)
        db.execute(
            "UPDATE memberships SET is_deleted = true WHERE unique_id = %s", (left["membership"],)
        )
    rng = random.Random(len(churn))
    for _ in range(3):
        attack(db, rng.choice(owners))


def test_a_week_of_traffic_levels_off(db: Conn) -> None:
    for name, value in SHORT_RETENTION.items():
        db.execute("UPDATE ecliptix_limits SET value = %s WHERE name = %s", (value, name))
    owners = [member_with_key(db) for _ in range(4)]
    end_verified_flows(db)
    churn: list[dict[str, Any]] = []
    history: list[dict[str, int]] = []
    deleted = dict.fromkeys(PURGED_TABLES, 0)
    totals: list[dict[str, int]] = []  # what there would be without the purge
    for _ in range(STEPS_PER_DAY * DAYS):
        traffic(db, owners, churn)
        shift_time(db, "3 hours")
        for table, n in purge_until_done(db).items():
            deleted[table] += n
        history.append(counts(db))
        totals.append({t: history[-1][t] + deleted[t] for t in PURGED_TABLES})

    mid, end = STEPS_PER_DAY * DAYS // 2 - 1, -1
    for table in PURGED_TABLES:
        if totals[end][table] == 0:
            continue  # never written (login_lockouts: every caller names its device)
        assert deleted[table] > 0, table
        # without the purge the table keeps growing with time ...
        assert totals[end][table] >= 1.8 * totals[mid][table], (table, totals[mid], totals[end])
        # ... with it, the count of the last days stays where it was mid-week
        late = [h[table] for h in history[mid:]]
        assert max(late) <= 1.15 * history[mid][table] + 3, (table, late)
    # the owners lost nothing
    for owner in owners:
        login = one(db, "login_membership", owner["number"], owner["device"])
        assert (login["outcome"], login["secure_key"]) == ("success", b"owner-key")


PURGERS = 4
WORKERS = 28
ROUNDS = 3


def load(c: Conn, owners: list[dict[str, Any]], i: int) -> dict[str, list[Any]]:
    """A load session: new registrations, owners logging in and recovering."""
    made: dict[str, list[Any]] = {"members": [], "recoveries": []}
    for r in range(ROUNDS):
        member = member_with_key(c, f"m{i}-{r}".encode())
        made["members"].append(member)
        owner = owners[(i + r) % len(owners)]
        login = one(c, "login_membership", owner["number"], owner["device"])
        assert login["outcome"] == "success", login
        flow = make_flow(c, owner["device"], owner["phone"], "password_recovery", 5)
        made["recoveries"].append(flow["unique_identifier"])
    return made


def test_purge_under_load_deletes_nothing_in_use(db: Conn, ecliptix_url: str) -> None:
    owners = [member_with_key(db) for _ in range(8)]
    end_verified_flows(db)
    for k in range(40):
        attack(db, owners[k % len(owners)])
    shift_time(db, "40 days")  # owners and junk are old; only the junk is unused
    before = counts(db)

    def work(c: Conn, i: int) -> Any:
        if i < PURGERS:
            return [purge(c, 25) for _ in range(12)]
        return load(c, owners, i)

    results = run_concurrently(ecliptix_url, work, n=PURGERS + WORKERS)
    purge_until_done(db)

    # everything the load created or used is there
    made = results[PURGERS:]
    for member in (m for r in made for m in r["members"]):
        row = one(db, "login_membership", member["number"], member["device"])
        assert row["outcome"] == "success" and row["membership_unique_id"] == member["membership"]
    for flow in (f for r in made for f in r["recoveries"]):
        assert one(db, "get_full_flow_state", flow)["status"] == "pending"
    for owner in owners:
        login = one(db, "login_membership", owner["number"], owner["device"])
        assert (login["outcome"], login["secure_key"]) == ("success", b"owner-key")
        assert (
            scalar(
                db,
                "SELECT count(*) FROM phone_number_devices WHERE phone_number_id = %s "
                "AND app_device_id = %s",
                (owner["phone"], owner["device"]),
            )
            == 1
        )
    # the owners' flows that memberships were created from stay; the junk is gone
    assert scalar(db, "SELECT count(*) FROM memberships WHERE secure_key = 'owner-key'") == 8
    after = counts(db)
    assert after["app_devices"] == 8 + WORKERS * ROUNDS
    assert after["failed_otp_attempts"] == 0 and before["failed_otp_attempts"] == 40
    assert after["login_device_lockouts"] == 0 and before["login_device_lockouts"] == 40
