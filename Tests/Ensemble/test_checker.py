"""The checker on hand-made histories: each valid one must pass and each violating one must be
caught by the right check (a checker that cannot fail proves nothing). Plus seeded random
histories of a simulated linearizable register, valid as generated and caught once corrupted.

No server is needed: ``python3 -m pytest Tests/Ensemble/test_checker.py``.
"""

import random

import pytest

from checker import Op, RegisterState, check

K = "/k"


class H:
    """A tiny history builder: times are explicit, zxids grow with versions by default."""

    def __init__(self, initial=(b"init", 0, 0x10)):
        self.ops = []
        self.initial = {K: RegisterState(*initial)}

    def op(self, kind, invoke, complete, outcome="ok", process=0, session=1, key=K, value=None,
           expected=None, version=None, zxid=None, sync=None, error=None):
        if zxid is None and outcome == "ok" and version is not None:
            zxid = 0x10 + version
        o = Op(id=len(self.ops), process=process, session=session, kind=kind, key=key,
               invoke=invoke, complete=complete if outcome != "unknown" else None,
               outcome=outcome, value=value, expected_version=expected, version=version,
               zxid=zxid, sync_invoke=sync, error=error)
        self.ops.append(o)
        return o

    def write(self, invoke, complete, value, version=None, **kw):
        return self.op("write", invoke, complete, value=value, version=version, **kw)

    def cas(self, invoke, complete, expected, value, version=None, **kw):
        return self.op("cas", invoke, complete, value=value, expected=expected, version=version,
                       **kw)

    def read(self, invoke, complete, value, version, **kw):
        return self.op("read", invoke, complete, value=value, version=version, **kw)

    def check(self, final_value, final_version, final_zxid=None, creates=None):
        zxid = final_zxid if final_zxid is not None else 0x10 + final_version
        return check(self.ops, self.initial, {K: RegisterState(final_value, final_version, zxid)},
                     creates)


def assert_only(report, *checks):
    assert report.ok is False, report.summary()
    assert set(report.violations) == set(checks), report.summary()


# -- valid histories --------------------------------------------------------------------------


def test_sequential_writes_and_reads_pass():
    h = H()
    h.write(1, 2, b"a", 1)
    h.read(3, 4, b"a", 1)
    h.cas(5, 6, 1, b"b", 2)
    h.cas(7, 8, 1, b"c", outcome="fail", error="BadVersion")
    h.read(9, 10, b"b", 2, sync=8.5)
    r = h.check(b"b", 2)
    assert r.ok, r.summary()


def test_concurrent_writes_may_take_either_order():
    h = H()
    h.write(1, 5, b"a", 2, process=0, session=1)
    h.write(2, 4, b"b", 1, process=1, session=2)
    r = h.check(b"a", 2)
    assert r.ok, r.summary()


def test_unknown_write_may_fill_a_version_gap():
    h = H()
    h.write(1, None, b"lost?", outcome="unknown", process=1, session=2)
    h.write(3, 4, b"a", 2)
    r = h.check(b"a", 2)
    assert r.ok, r.summary()


def test_unknown_write_may_never_happen():
    h = H()
    h.write(1, None, b"never", outcome="unknown", process=1, session=2)
    h.write(3, 4, b"a", 1)
    r = h.check(b"a", 1)
    assert r.ok, r.summary()


def test_unknown_write_may_happen_long_after_its_invoke():
    h = H()
    h.write(1, None, b"late", outcome="unknown", process=1, session=2)
    h.write(3, 4, b"a", 1)
    h.write(5, 6, b"b", 2)
    r = h.check(b"late", 3)
    assert r.ok, r.summary()


def test_stale_read_from_a_lagging_server_is_allowed_without_sync():
    h = H()
    h.write(1, 2, b"a", 1, process=0, session=1)
    h.read(3, 4, b"init", 0, process=1, session=2)  # another session, no sync: may lag
    r = h.check(b"a", 1)
    assert r.ok, r.summary()


def test_failed_cas_fits_between_writes():
    h = H()
    h.write(1, 2, b"a", 1)
    h.cas(3, 6, 1, b"x", outcome="fail", error="BadVersion", process=1, session=2)
    h.write(4, 5, b"b", 2, process=2, session=3)  # the CAS may go after this one
    r = h.check(b"b", 2)
    assert r.ok, r.summary()


def test_creates_pass_when_present():
    h = H()
    c = h.op("create", 1, 2, key="/c/1", value=b"c1", zxid=0x40)
    h.op("create", 3, None, outcome="unknown", key="/c/2", value=b"c2")
    r = h.check(b"init", 0, creates={"/c/1": (b"c1", 0x40)})
    assert r.ok, r.summary()
    del c


# -- violations -------------------------------------------------------------------------------


def test_lost_acknowledged_write_is_caught():
    h = H()
    h.write(1, 2, b"a", 1)
    h.write(3, 4, b"b", 2)
    r = h.check(b"a", 1)
    assert_only(r, "lost", "linearizable")


def test_reused_version_is_caught():
    h = H()
    h.write(1, 2, b"a", 1, zxid=0x21)
    h.write(3, 4, b"b", 1, zxid=0x22)   # a new leader reused version 1: "a" was lost
    r = h.check(b"b", 1, final_zxid=0x22)
    assert "lost" in r.violations, r.summary()


def test_real_time_order_violation_is_caught():
    h = H()
    h.write(1, 2, b"a", 2)   # acknowledged first, yet version 2 ...
    h.write(3, 4, b"b", 1)   # ... and this later write got version 1
    r = h.check(b"a", 2)
    assert "linearizable" in r.violations, r.summary()
    assert "order" in r.violations, r.summary()


def test_cas_that_should_have_failed_is_caught():
    h = H()
    h.write(1, 2, b"a", 1)
    h.cas(3, 4, 0, b"b", 2)  # expected version 0 after version 1 was acknowledged
    r = h.check(b"b", 2)
    assert_only(r, "linearizable")


def test_cas_rejected_although_version_matched_is_caught():
    h = H()
    h.write(1, 2, b"a", 1)
    h.cas(3, 4, 1, b"b", outcome="fail", error="BadVersion")  # nothing else ran: must succeed
    r = h.check(b"a", 1)
    assert_only(r, "linearizable")


def test_final_state_no_write_explains_is_caught():
    h = H()
    h.write(1, 2, b"a", 1)
    r = h.check(b"zzz", 2)
    assert "linearizable" in r.violations, r.summary()


def test_read_of_unwritten_value_is_caught():
    h = H()
    h.write(1, 2, b"a", 1)
    h.read(3, 4, b"phantom", 1)
    r = h.check(b"a", 1)
    assert "integrity" in r.violations, r.summary()


def test_read_of_failed_write_is_caught():
    h = H()
    h.cas(1, 2, 5, b"bad", outcome="fail", error="BadVersion")
    h.read(3, 4, b"bad", 1, process=1, session=2)
    r = h.check(b"init", 0)
    assert "integrity" in r.violations, r.summary()


def test_read_before_its_write_was_invoked_is_caught():
    h = H()
    h.read(1, 2, b"future", 1, process=1, session=2)
    h.write(3, None, b"future", outcome="unknown")
    r = h.check(b"future", 1)
    assert_only(r, "integrity")


def test_session_reading_backwards_is_caught():
    h = H()
    h.write(1, 2, b"a", 1, process=1, session=2)
    h.read(3, 4, b"a", 1, process=0, session=1)
    h.read(5, 6, b"init", 0, process=0, session=1)  # same session, older version
    r = h.check(b"a", 1)
    assert_only(r, "session")


def test_session_not_seeing_its_own_write_is_caught():
    h = H()
    h.write(1, 2, b"a", 1, process=0, session=1)
    h.read(3, 4, b"init", 0, process=0, session=1)
    r = h.check(b"a", 1)
    assert_only(r, "session")


def test_session_missing_a_write_older_than_its_zxid_is_caught():
    h = H()
    h.initial["/other"] = RegisterState(b"o", 0, 0x10)
    h.write(1, 2, b"a", 1, zxid=0x30, process=1, session=2)
    h.write(3, 4, b"x", 1, key="/other", zxid=0x31, process=1, session=2)
    h.read(5, 6, b"x", 1, key="/other", zxid=0x31, process=0, session=1)  # sees zxid 0x31
    h.read(7, 8, b"init", 0, process=0, session=1)  # ... then misses /k's zxid 0x30
    r = check(h.ops, h.initial, {K: RegisterState(b"a", 1, 0x30),
                                 "/other": RegisterState(b"x", 1, 0x31)})
    assert_only(r, "session")


def test_stale_read_after_sync_is_caught():
    h = H()
    h.write(1, 2, b"a", 1, process=1, session=2)
    h.read(4, 5, b"init", 0, sync=3, process=0, session=1)
    r = h.check(b"a", 1)
    assert_only(r, "sync")


def test_stale_sync_read_from_a_deposed_leader_is_tolerated_only_on_request():
    h = H()
    h.write(0, 0.5, b"a", 1, zxid=0x200000005, process=1, session=2)  # the old leader's epoch 2
    h.write(1, 2, b"b", 2, zxid=0x300000001, process=1, session=2)    # the new leader's epoch 3
    h.read(4, 5, b"a", 1, zxid=0x200000005, sync=3, process=0, session=1)  # an epoch-2 answer
    final = {K: RegisterState(b"b", 2, 0x300000001)}
    strict = check(h.ops, h.initial, final)
    assert_only(strict, "sync")
    lenient = check(h.ops, h.initial, final, tolerate_deposed_leader_sync=True)
    assert lenient.ok and len(lenient.tolerated) == 1, lenient.summary()


def test_stale_sync_read_within_one_epoch_is_never_tolerated():
    h = H()
    h.write(0, 0.5, b"a", 1, zxid=0x300000005, process=1, session=2)
    h.write(1, 2, b"b", 2, zxid=0x300000007, process=1, session=2)
    h.read(4, 5, b"a", 1, zxid=0x300000005, sync=3, process=0, session=1)
    r = check(h.ops, h.initial, {K: RegisterState(b"b", 2, 0x300000007)},
              tolerate_deposed_leader_sync=True)
    assert_only(r, "sync")


def test_sync_does_not_require_writes_that_completed_after_it_was_issued():
    h = H()
    h.write(1, 4, b"a", 1, process=1, session=2)
    h.read(3.5, 5, b"init", 0, sync=3, process=0, session=1)
    r = h.check(b"a", 1)
    assert r.ok, r.summary()


def test_lost_create_is_caught():
    h = H()
    h.op("create", 1, 2, key="/c/1", value=b"c1", zxid=0x40)
    r = h.check(b"init", 0, creates={})
    assert_only(r, "lost")


def test_shared_zxid_is_caught():
    h = H()
    h.write(1, 2, b"a", 1, zxid=0x40)
    h.op("create", 3, 4, key="/c/1", value=b"c1", zxid=0x40)
    r = h.check(b"a", 1, final_zxid=0x40, creates={"/c/1": (b"c1", 0x40)})
    assert_only(r, "order")


# -- seeded random histories ------------------------------------------------------------------


def simulate(rng, processes=5, steps=300, unknown_rate=0.05, stale_rate=0.2):
    """A linearizable register with versions, served by a leader and lagging replicas: each
    op takes effect at a random instant inside its interval; reads without sync may return an
    older state (never older than what their session saw). Returns (ops, initial, final)."""
    initial = {K: RegisterState(b"init", 0, 0x100)}
    history = [(b"init", 0, 0x100)]     # version -> (value, version, zxid)
    ops = []
    clock = 0.0
    session_seen = [0] * processes
    busy_until = [0.0] * processes
    events = []
    for step in range(steps):
        p = rng.randrange(processes)
        clock += rng.random()
        invoke = max(clock, busy_until[p])
        point = invoke + rng.random()
        complete = point + rng.random()
        events.append((point, p, invoke, complete, step))
        busy_until[p] = complete
    events.sort()
    for point, p, invoke, complete, step in events:
        value, version, zxid = history[-1]
        kind = rng.choice(["write", "cas", "cas", "read", "read"])
        unknown = rng.random() < unknown_rate
        o = Op(id=len(ops), process=p, session=p + 1, kind=kind, key=K, invoke=invoke,
               complete=None if unknown else complete, outcome="unknown" if unknown else "ok")
        if kind == "write":
            o.value = f"v{step}".encode()
            history.append((o.value, version + 1, zxid + 1))
        elif kind == "cas":
            o.value = f"v{step}".encode()
            o.expected_version = version if rng.random() < 0.6 else max(0, version - 1)
            if o.expected_version == version:
                history.append((o.value, version + 1, zxid + 1))
            else:
                o.outcome = "unknown" if unknown else "fail"
                o.error = "BadVersion"
        else:
            lowest = session_seen[p]
            if rng.random() < stale_rate:
                version = rng.randint(min(lowest, version), version)
            value, version, zxid = history[version]
            o.value = value
        if o.outcome == "ok":
            o.version = history[-1][1] if kind != "read" else version
            o.zxid = history[-1][2] if kind != "read" else zxid
            session_seen[p] = max(session_seen[p], o.version)
        ops.append(o)
    value, version, zxid = history[-1]
    return ops, initial, {K: RegisterState(value, version, zxid)}


@pytest.mark.parametrize("case", range(20))
def test_random_valid_histories_pass(seed, case):
    rng = random.Random(seed * 1000 + case)
    ops, initial, final = simulate(rng)
    r = check(ops, initial, final)
    assert r.ok, f"seed {seed} case {case}\n{r.summary()}"


@pytest.mark.parametrize("case", range(20))
def test_random_corrupted_histories_fail(seed, case):
    rng = random.Random(seed * 1000 + case)
    ops, initial, final = simulate(rng, unknown_rate=0.02)
    acked = [o for o in ops if o.kind in ("write", "cas") and o.outcome == "ok"]
    assert acked, f"seed {seed} case {case}: the simulation acknowledged no write"
    victim = rng.choice(acked)
    corruption = rng.choice(["drop-final", "swap-version", "stale-final"])
    if corruption == "drop-final" or victim.version == final[K].version:
        # Lose the newest acknowledged write: the final state goes back one version.
        newest = max(acked, key=lambda o: o.version)
        final[K] = RegisterState(b"init", 0, 0x100) if newest.version == 1 else \
            RegisterState(b"gone", newest.version - 1, None)
    elif corruption == "swap-version":
        victim.version += 1000    # a version nobody else can explain
    else:
        final[K] = RegisterState(victim.value, victim.version, victim.zxid)
    r = check(ops, initial, final)
    assert not r.ok, f"seed {seed} case {case}: {corruption} of {victim.describe()} not caught"
