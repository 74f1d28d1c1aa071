"""Check a recorded client history against ZooKeeper's guarantees.

ZooKeeper promises (Programmer's Guide, "ZooKeeper consistency guarantees"; the ZAB paper):

- Writes are linearizable: every update takes effect at one instant between its request and its
  reply, in one total order that respects real time. Per znode, the data and its version form a
  register with compare-and-set (setData with an expected version); every successful update
  bumps the version by one, so an acknowledged write names the exact position it took.
- Reads are sequentially consistent, not linearizable: a server may answer from a state that
  lags the leader, but a session never sees the state go backwards, always sees its own writes,
  and a read after ``sync`` sees every write that completed before the sync was issued.
- An acknowledged write is never lost.

An operation whose reply never came (connection loss, a timeout) has an unknown outcome: it may
have taken effect at any instant after it was invoked, or never.

The checks:

1. ``linearizable``: per znode, a Wing-Gong search (with the memoisation of Lowe, as Knossos and
   Porcupine do) for an order of its writes (setData, compare-and-set, including failed ones and
   unknown ones) that respects real time and the register-with-version semantics, ending in the
   final state read after the run. Version numbers make it tractable: an acknowledged write must
   be the one that moves version v to v+1, so the search only branches on unknown outcomes; a
   failed compare-and-set changes nothing and is placed at once where it is legal.
2. ``integrity``: every value read was written by a write that did not fail, whose version is
   the one read, and that was invoked before the read completed; one value per version.
3. ``session``: per session, per znode, versions read never go backwards; no read misses a
   write whose zxid the session has already seen (any znode: the session's zxid only grows);
   a session reads its own acknowledged writes.
4. ``sync``: a read after sync has at least the version of every write to that znode that was
   acknowledged before the sync was invoked.
5. ``order``: acknowledged writes (any znode, creates included) have distinct zxids, and if one
   was acknowledged before another was invoked, its zxid is smaller.
6. ``lost``: after the run, every acknowledged write is in the final state: the final version is
   at least its version (and the final value is its value when the versions are equal); every
   acknowledged create exists with its data and czxid; a failed create does not exist.

Everything here is plain Python on recorded data: the unit tests feed it hand-made histories.

One tolerance exists, off by default: ``tolerate_deposed_leader_sync``. Apache ZooKeeper 3.8
breaks check 4 when its leader is paused (SIGSTOP, a long GC) while the others elect a new one:
on resuming, the deposed leader still believes it leads until its own timeouts fire, and answers
sync + getData from its stale state (the ZooKeeper paper, section 4.4, leans on timeouts here
instead of confirming leadership before answering a sync). With the tolerance on, a sync
violation whose read carries a zxid of an OLDER epoch than the write it missed (the signature of
a server still in the deposed leader's epoch) is listed under ``tolerated`` instead of failing;
a stale sync read within the same epoch is still a violation. The suite turns it on only for
ZooKeeper; SwiftKeeper is held to the guarantee.
"""

import bisect
import dataclasses
import math

# Limits of the checker.
SEARCH_BUDGET = 2_000_000   # search states per znode before the search gives up (a failure)
MAX_REPORTED = 20           # violations listed per check; the count is always exact


@dataclasses.dataclass
class Op:
    """One client operation as the workload saw it.

    kind: ``write`` (setData, any version), ``cas`` (setData with ``expected_version``),
    ``read`` (getData; ``sync_invoke`` set when a sync was issued first, at that time),
    ``create`` (a new znode at ``key`` with ``value``).
    outcome: ``ok``, ``fail`` (a definite error from the server, in ``error``) or ``unknown``.
    version/zxid: on ``ok``, the Stat of the reply: the version written or read and mzxid (for
    create, the czxid). Times are monotonic seconds; ``complete`` is None when unknown.
    """

    id: int
    process: int
    session: object
    kind: str
    key: str
    invoke: float
    complete: float = None
    outcome: str = "unknown"
    value: bytes = None
    expected_version: int = None
    version: int = None
    zxid: int = None
    sync_invoke: float = None
    error: str = None

    def describe(self):
        parts = [f"op#{self.id} p{self.process}", self.kind, self.key]
        if self.kind == "cas":
            parts.append(f"if-version={self.expected_version}")
        if self.value is not None:
            parts.append(f"value={self.value!r}")
        if self.sync_invoke is not None:
            parts.append(f"sync@{self.sync_invoke:.4f}")
        result = self.outcome
        if self.outcome == "ok" and self.version is not None:
            result += f" version={self.version}"
        if self.outcome == "ok" and self.zxid is not None:
            result += f" zxid=0x{self.zxid:x}"
        if self.error:
            result += f" ({self.error})"
        end = "?" if self.complete is None else f"{self.complete:.4f}"
        return f"{' '.join(parts)} [{self.invoke:.4f}..{end}] -> {result}"


@dataclasses.dataclass
class RegisterState:
    """A znode's (data, version, mzxid): initial, or final as read after the run."""
    value: bytes
    version: int
    zxid: int = None


class Report:
    def __init__(self):
        self.violations = {}  # check -> [messages]
        self.tolerated = []   # known deviations the caller chose to accept (see the module doc)
        self.stats = {}

    def add(self, check, message):
        self.violations.setdefault(check, []).append(message)

    @property
    def ok(self):
        return not self.violations

    def count(self, check=None):
        if check is not None:
            return len(self.violations.get(check, []))
        return sum(len(v) for v in self.violations.values())

    def summary(self):
        lines = [f"history: {', '.join(f'{k}={v}' for k, v in sorted(self.stats.items()))}"]
        if self.ok:
            lines.append("no violations")
        if self.tolerated:
            lines.append(f"tolerated: {len(self.tolerated)} stale sync read(s) from a deposed "
                         "leader (a known ZooKeeper limitation)")
            lines += [f"  - {m}" for m in self.tolerated[:MAX_REPORTED]]
        for check, messages in sorted(self.violations.items()):
            lines.append(f"{check}: {len(messages)} violation(s)")
            lines += [f"  - {m}" for m in messages[:MAX_REPORTED]]
            if len(messages) > MAX_REPORTED:
                lines.append(f"  ... {len(messages) - MAX_REPORTED} more")
        return "\n".join(lines)


def check(ops, initial, final, final_creates=None, tolerate_deposed_leader_sync=False):
    """Check a history.

    ops: the Op list (any order). initial: key -> RegisterState before any op. final: key ->
    RegisterState read after the run (every op finished, through a synced server).
    final_creates: path -> (data, czxid) of the create paths that exist after the run (None to
    skip the create checks). tolerate_deposed_leader_sync: see the module doc.
    """
    report = Report()
    registers = [o for o in ops if o.kind in ("write", "cas", "read")]
    creates = [o for o in ops if o.kind == "create"]
    report.stats = {
        "ops": len(ops),
        "ok": sum(o.outcome == "ok" for o in ops),
        "fail": sum(o.outcome == "fail" for o in ops),
        "unknown": sum(o.outcome == "unknown" for o in ops),
        "keys": len(initial),
    }
    for o in registers:
        if o.key not in initial:
            raise ValueError(f"{o.describe()}: key has no initial state")
    known = _known_versions(registers, initial, final, report)
    by_key = {}
    for o in registers:
        by_key.setdefault(o.key, []).append(o)
    for key in sorted(initial):
        key_ops = by_key.get(key, [])
        if key not in final:
            report.add("lost", f"{key}: missing after the run")
            continue
        duplicates = _check_lost(key, key_ops, final[key], report)
        if duplicates:
            continue  # the search would only fail again, less clearly
        _search(key, key_ops, initial[key], final[key], report)
    _check_reads(registers, initial, known, report)
    _check_sessions(ops, known, report)
    _check_sync(registers, report, tolerate_deposed_leader_sync)
    _check_order(ops, report)
    if final_creates is not None:
        _check_creates(creates, final_creates, report)
    return report


# -- 2. integrity, and what each version's value and zxid are -------------------------------


def _known_versions(registers, initial, final, report):
    """key -> sorted [(version, zxid)] of every write whose zxid was observed, and the
    value -> write index; reports reads of values nobody wrote."""
    seen = {}  # (key, version) -> (value, zxid, source)

    def note(key, version, value, zxid, source):
        if version is None:
            return
        prior = seen.get((key, version))
        if prior is None:
            seen[(key, version)] = (value, zxid, source)
            return
        if prior[0] != value:
            report.add("integrity", f"{key} version {version} holds {prior[0]!r} by {prior[2]} "
                                    f"but {value!r} by {source}")
        elif zxid is not None and prior[1] is not None and prior[1] != zxid:
            report.add("integrity", f"{key} version {version} has mzxid 0x{prior[1]:x} by "
                                    f"{prior[2]} but 0x{zxid:x} by {source}")

    for key, state in initial.items():
        note(key, state.version, state.value, state.zxid, "the initial state")
    for o in registers:
        if o.outcome == "ok":
            note(o.key, o.version, o.value, o.zxid, o.describe())
    for key, state in final.items():
        note(key, state.version, state.value, state.zxid, "the final state")
    known = {}
    for (key, version), (_, zxid, _) in seen.items():
        if zxid is not None:
            known.setdefault(key, []).append((version, zxid))
    for key in known:
        known[key].sort()
        for (v1, z1), (v2, z2) in zip(known[key], known[key][1:]):
            if z2 <= z1:
                report.add("integrity", f"{key}: version {v2} has mzxid 0x{z2:x}, not after "
                                        f"version {v1}'s 0x{z1:x}")
    return known


def _check_reads(registers, initial, known, report):
    writes_by_value = {}
    for o in registers:
        if o.kind in ("write", "cas"):
            writes_by_value[(o.key, o.value)] = o
    for r in registers:
        if r.kind != "read" or r.outcome != "ok":
            continue
        init = initial[r.key]
        if r.version == init.version:
            if r.value != init.value:
                report.add("integrity", f"{r.describe()}: the initial version {init.version} "
                                        f"holds {init.value!r}")
            continue
        w = writes_by_value.get((r.key, r.value))
        if w is None:
            report.add("integrity", f"{r.describe()}: no operation ever wrote this value")
        elif w.outcome == "fail":
            report.add("integrity", f"{r.describe()}: read the value of a failed write "
                                    f"{w.describe()}")
        elif w.outcome == "ok" and w.version != r.version:
            report.add("integrity", f"{r.describe()}: its write {w.describe()} made version "
                                    f"{w.version}")
        elif r.complete < w.invoke:
            report.add("integrity", f"{r.describe()}: read a value before its write was "
                                    f"invoked: {w.describe()}")


# -- 6. lost acknowledged writes -------------------------------------------------------------


def _check_lost(key, key_ops, final, report):
    """Returns True when two acknowledged writes claim one version (the search is skipped)."""
    by_version = {}
    duplicate = False
    for o in key_ops:
        if o.kind in ("write", "cas") and o.outcome == "ok":
            other = by_version.setdefault(o.version, o)
            if other is not o:
                duplicate = True
                report.add("lost", f"{key}: two acknowledged writes made version {o.version}: "
                                   f"{other.describe()} and {o.describe()} (one was lost and its "
                                   "version reused)")
            if o.version > final.version:
                report.add("lost", f"{key}: acknowledged {o.describe()} but the final version is "
                                   f"{final.version} (value {final.value!r})")
            elif o.version == final.version and o.value != final.value:
                report.add("lost", f"{key}: acknowledged {o.describe()} but the final state at "
                                   f"that version holds {final.value!r}")
    return duplicate


def _check_creates(creates, final_creates, report):
    czxids = {}
    for o in creates:
        present = final_creates.get(o.key)
        if o.outcome == "ok":
            if present is None:
                report.add("lost", f"acknowledged {o.describe()} but the znode is missing after "
                                   "the run")
            elif present[0] != o.value or (o.zxid is not None and present[1] != o.zxid):
                report.add("lost", f"acknowledged {o.describe()} but after the run it holds "
                                   f"{present[0]!r} with czxid 0x{present[1]:x}")
            if o.zxid is not None:
                other = czxids.setdefault(o.zxid, o)
                if other is not o:
                    report.add("order", f"{other.describe()} and {o.describe()} share a czxid")
        elif o.outcome == "fail":
            if o.error == "NodeExists":
                report.add("integrity", f"{o.describe()}: the path is unique to this create")
            if present is not None:
                report.add("integrity", f"{o.describe()} failed yet the znode exists after the "
                                        "run")


# -- 1. linearizability of writes, per znode -------------------------------------------------


class _SearchOp:
    __slots__ = ("op", "bit", "invoke", "complete", "kind", "value", "expected", "version", "ok")

    def __init__(self, op, bit, invoke, complete, kind, value, expected, version, ok):
        self.op = op
        self.bit = bit
        self.invoke = invoke
        self.complete = complete
        self.kind = kind
        self.value = value
        self.expected = expected
        self.version = version
        self.ok = ok


def _search(key, key_ops, initial, final, report):
    entries = []
    last = 0.0
    for o in key_ops:
        if o.kind == "read" or (o.kind == "write" and o.outcome == "fail"):
            last = max(last, o.complete or o.invoke)
            continue  # reads are checked apart; a failed setData did nothing
        if o.kind == "cas" and o.outcome == "fail" and o.error != "BadVersion":
            last = max(last, o.complete or o.invoke)
            continue  # a definite failure other than a version mismatch did nothing
        last = max(last, o.complete or o.invoke)
        entries.append(o)
    ops = []
    for o in entries:
        ok = o.outcome == "ok"
        complete = o.complete if o.outcome != "unknown" else math.inf
        kind = o.kind
        if o.kind == "cas" and o.outcome == "fail":
            kind = "cas-failed"
        ops.append(_SearchOp(o, 0, o.invoke, complete, kind, o.value, o.expected_version,
                             o.version, ok or o.outcome == "fail"))
    # The final read: after everything, it must see exactly the final state.
    ops.append(_SearchOp(None, 0, last + 1.0, last + 2.0, "final", final.value, None,
                         final.version, True))
    ops.sort(key=lambda s: s.invoke)
    for i, s in enumerate(ops):
        s.bit = 1 << i
    n = len(ops)
    all_definite = 0
    unknown_mask = 0
    for s in ops:
        if s.ok:
            all_definite |= s.bit
        else:
            unknown_mask |= s.bit
    unknown = [s for s in ops if not s.ok]

    def window(mask):
        """(first index to look at, the earliest completion among definite ops not yet
        linearized, the op that completes then). Every definite op before the first index is
        linearized; no pending op invoked after that completion can complete before it."""
        rest = ~(mask | unknown_mask)
        lo = (rest & -rest).bit_length() - 1
        horizon = math.inf
        first = None
        i = lo
        while i < n and ops[i].invoke <= horizon:
            s = ops[i]
            if s.ok and not mask & s.bit and s.complete < horizon:
                horizon, first = s.complete, s
            i += 1
        return lo, horizon, first

    def candidates(mask):
        """Ops that may be linearized next: no other pending definite op completed before
        they were invoked (invoke <= the earliest pending completion, or that op itself)."""
        lo, horizon, first = window(mask)
        result = []
        i = lo
        while i < n and ops[i].invoke <= horizon:
            s = ops[i]
            if s.ok and not mask & s.bit:
                result.append(s)
            i += 1
        if first is not None and first not in result:
            result.append(first)
        for s in unknown:
            if s.invoke > horizon:
                break
            if not mask & s.bit:
                result.append(s)
        return result

    def closure(mask, version):
        """Linearize every failed compare-and-set that is legal now (it changes nothing, so
        doing it as early as possible never rules out an order)."""
        changed = True
        while changed:
            changed = False
            for s in candidates(mask):
                if s.kind == "cas-failed" and s.expected != version:
                    mask |= s.bit
                    changed = True
        return mask

    def successors(mask, value, version):
        result = []
        for s in candidates(mask):
            if s.kind == "final":
                if (value, version) == (s.value, s.version):
                    result.append((s, value, version))
            elif s.ok and s.kind in ("write", "cas"):
                if s.version == version + 1 and (s.kind == "write" or s.expected == version):
                    result.append((s, s.value, version + 1))
            elif not s.ok:
                if s.kind == "write" or (s.kind == "cas" and s.expected == version):
                    result.append((s, s.value, version + 1))
        # Acknowledged ops first: they are forced; unknown ones are guesses.
        result.sort(key=lambda t: 0 if t[0].ok else 1)
        return result

    start_mask = closure(0, initial.version)
    seen = set()
    stack = [(start_mask, initial.value, initial.version)]
    best = (start_mask, initial.value, initial.version)
    best_count = -1
    explored = 0
    while stack:
        mask, value, version = stack.pop()
        if mask & all_definite == all_definite:
            return True
        state = (mask, value, version)
        if state in seen:
            continue
        seen.add(state)
        explored += 1
        count = bin(mask & all_definite).count("1")
        if count > best_count:
            best, best_count = state, count
        if explored > SEARCH_BUDGET:
            report.add("linearizable", f"{key}: search gave up after {SEARCH_BUDGET} states "
                                       "(raise checker.SEARCH_BUDGET or shorten the run)")
            return False
        for s, new_value, new_version in reversed(successors(mask, value, version)):
            new_mask = closure(mask | s.bit, new_version)
            stack.append((new_mask, new_value, new_version))
    mask, value, version = best
    blocking = window(mask)[2]
    what = "the final state" if blocking is not None and blocking.kind == "final" else \
        (blocking.op.describe() if blocking is not None else "?")
    unknown_left = sum(1 for s in unknown if not mask & s.bit)
    report.add("linearizable",
               f"{key}: no order of its writes fits real time; the longest linearizable prefix "
               f"reaches version {version} (value {value!r}) and cannot be followed by {what} "
               f"(final state: version {final.version}, value {final.value!r}; "
               f"{unknown_left} unknown-outcome op(s) left to place)")
    return False


# -- 3. sessions ------------------------------------------------------------------------------


def _check_sessions(ops, known, report):
    sessions = {}
    for o in ops:
        if o.outcome == "ok" and o.session is not None:
            sessions.setdefault((o.process, o.session), []).append(o)
    for (process, session), session_ops in sessions.items():
        session_ops.sort(key=lambda o: o.invoke)
        seen_zxid = -1
        seen_version = {}   # key -> (version, op) highest read or written
        for o in session_ops:
            if o.kind == "read":
                prior = seen_version.get(o.key)
                if prior is not None and o.version < prior[0]:
                    what = "wrote" if prior[1].kind in ("write", "cas") else "read"
                    report.add("session", f"session 0x{_session_hex(session)}: {o.describe()} went "
                                      f"back from version {prior[0]} it {what} in "
                                      f"{prior[1].describe()}")
                else:
                    _check_missed(o, seen_zxid, known, session, report)
            if o.kind in ("read", "write", "cas") and o.version is not None:
                prior = seen_version.get(o.key)
                if prior is None or o.version >= prior[0]:
                    seen_version[o.key] = (o.version, o)
            if o.zxid is not None:
                seen_zxid = max(seen_zxid, o.zxid)


def _check_missed(read, seen_zxid, known, session, report):
    versions = known.get(read.key, [])
    i = bisect.bisect_right(versions, (read.version, math.inf))
    if i < len(versions):
        version, zxid = versions[i]
        if zxid <= seen_zxid:
            report.add("session", f"session 0x{_session_hex(session)}: {read.describe()} misses "
                                  f"version {version} (zxid 0x{zxid:x}) although the session had "
                                  f"already seen zxid 0x{seen_zxid:x}")


def _session_hex(session):
    return f"{session:x}" if isinstance(session, int) else str(session)


# -- 4. sync ----------------------------------------------------------------------------------


def _epoch(zxid):
    return zxid >> 32


def _check_sync(registers, report, tolerate_deposed_leader_sync):
    # Per key: acknowledged writes by completion time, and the newest of each prefix.
    acked = {}
    for o in registers:
        if o.kind in ("write", "cas") and o.outcome == "ok":
            acked.setdefault(o.key, []).append(o)
    prefix = {}
    for key, writes in acked.items():
        writes.sort(key=lambda o: o.complete)
        newest = []
        for w in writes:
            newest.append(w if not newest or w.version > newest[-1].version else newest[-1])
        prefix[key] = ([w.complete for w in writes], newest)
    for r in registers:
        if r.kind != "read" or r.outcome != "ok" or r.sync_invoke is None:
            continue
        completes, newest_of = prefix.get(r.key, ([], []))
        i = bisect.bisect_left(completes, r.sync_invoke)  # writes completed before the sync
        if i == 0:
            continue
        newest = newest_of[i - 1]
        if r.version < newest.version:
            message = (f"{r.describe()}: after sync it should see at least version "
                       f"{newest.version}, acknowledged before the sync: {newest.describe()}")
            if tolerate_deposed_leader_sync and r.zxid is not None and newest.zxid is not None \
                    and _epoch(r.zxid) < _epoch(newest.zxid):
                report.tolerated.append(message)
            else:
                report.add("sync", message)


# -- 5. global order of acknowledged writes ---------------------------------------------------


def _check_order(ops, report):
    writes = [o for o in ops if o.kind in ("write", "cas", "create") and o.outcome == "ok"
              and o.zxid is not None]
    by_zxid = {}
    for o in writes:
        other = by_zxid.setdefault(o.zxid, o)
        if other is not o:
            report.add("order", f"{other.describe()} and {o.describe()} share zxid 0x{o.zxid:x}")
    by_invoke = sorted(writes, key=lambda o: o.invoke)
    by_complete = sorted(writes, key=lambda o: o.complete)
    j = 0
    newest = None
    for o in by_invoke:
        while j < len(by_complete) and by_complete[j].complete < o.invoke:
            if newest is None or by_complete[j].zxid > newest.zxid:
                newest = by_complete[j]
            j += 1
        if newest is not None and o.zxid < newest.zxid:
            report.add("order", f"{o.describe()} has a smaller zxid than {newest.describe()}, "
                                "acknowledged before it was invoked")
