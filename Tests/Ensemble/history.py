"""Concurrent client load on an ensemble, recorded as a history for ``checker.check``.

Each worker is a thread with its own kazoo session. It loops over a seeded random mix of
setData (any version), compare-and-set (setData with the version it last saw), getData,
sync + getData, and create of a znode whose path and data are unique to the op, on a few
shared keys. Every op is recorded with its invoke and completion times (time.monotonic), its
outcome (ok, a definite failure, or unknown: connection loss, session expiry, no reply within
OP_TIMEOUT_S) and the Stat it got back. Every value written is unique, so a read names the write
it saw.

After ``stop()``, ``final_state()`` reads every key and every created znode through each server
after a sync, and waits (with a deadline) until all servers agree: replicas must converge.
"""

import random
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError, KazooException, NoNodeError, NodeExistsError)
from kazoo.handlers.threading import KazooTimeoutError

from checker import Op, RegisterState

# Limits of the workload, named in one place.
SESSION_TIMEOUT_S = 15.0     # long enough that no fault in the suite expires a session
OP_TIMEOUT_S = 5.0           # no reply by then: the outcome is unknown
CONNECT_TIMEOUT_S = 60.0
CONVERGE_DEADLINE_S = 60.0   # servers must agree on the final state by then
PROGRESS_DEADLINE_S = 60.0   # wait_acked gives up after this
FAST_RETRY = dict(max_tries=-1, delay=0.02, backoff=1.5, max_delay=0.3, max_jitter=0.02)
BASE = "/ensemble"
CREATES = f"{BASE}/created"

# The op mix: (kind, weight).
MIX = (("write", 30), ("cas", 25), ("read", 20), ("sync-read", 15), ("create", 10))

# Errors that are definite answers from the server: the op did not happen.
DEFINITE = {BadVersionError: "BadVersion", NoNodeError: "NoNode", NodeExistsError: "NodeExists"}


def make_client(hosts, **kwargs):
    kwargs.setdefault("connection_retry", dict(FAST_RETRY))
    kwargs.setdefault("command_retry", None)
    return KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT_S, **kwargs)


class WorkloadError(Exception):
    """The workload could not set up, progress or read the final state; the message says why."""


class Workload:
    def __init__(self, ensemble, seed, workers=4, keys=3, hosts=None):
        """``hosts``: per worker, its connection string (default: every server, kazoo picks
        one at random and moves on when it fails)."""
        self.ensemble = ensemble
        self.seed = seed
        self.keys = [f"{BASE}/k{i}" for i in range(keys)]
        self.hosts = hosts or [ensemble.hosts()] * workers
        self.ops = []
        self.initial = {}
        self._lock = threading.Condition()
        self._acked = 0
        self._stop = threading.Event()
        self._threads = []
        self._clients = []
        self._next_id = 0
        self.errors = []

    # -- setup -----------------------------------------------------------------------------

    def setup(self):
        client = make_client(self.ensemble.hosts())
        client.start(timeout=CONNECT_TIMEOUT_S)
        try:
            client.ensure_path(CREATES)
            for key in self.keys:
                client.create(key, b"init")
                data, stat = client.get(key)
                self.initial[key] = RegisterState(data, stat.version, stat.mzxid)
        finally:
            client.stop()
            client.close()

    def start(self):
        for i, hosts in enumerate(self.hosts):
            client = make_client(hosts)
            client.start(timeout=CONNECT_TIMEOUT_S)
            self._clients.append(client)
            t = threading.Thread(target=self._worker, args=(i, client),
                                 name=f"worker-{i}", daemon=True)
            self._threads.append(t)
        for t in self._threads:
            t.start()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(OP_TIMEOUT_S * 4)
            if t.is_alive():
                raise WorkloadError(f"{t.name} did not stop within {OP_TIMEOUT_S * 4}s")
        for client in self._clients:
            client.stop()
            client.close()
        if self.errors:
            raise WorkloadError("workers failed: " + "; ".join(self.errors))

    # -- progress --------------------------------------------------------------------------

    @property
    def acked(self):
        with self._lock:
            return self._acked

    def wait_acked(self, count, timeout=PROGRESS_DEADLINE_S, what="writes"):
        """Wait until ``count`` more writes than now are acknowledged: the ensemble makes
        progress (the condition a fault step waits on, instead of a fixed sleep)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._acked + count
            while self._acked < target:
                left = deadline - time.monotonic()
                if left <= 0 or self.errors:
                    raise WorkloadError(
                        f"only {self._acked - (target - count)} of {count} {what} acknowledged "
                        f"in {timeout:.0f}s; nodes {self.ensemble.describe()}; worker errors "
                        f"{self.errors}")
                self._lock.wait(min(left, 0.5))

    # -- the workers -----------------------------------------------------------------------

    def _record(self, op):
        with self._lock:
            op.id = self._next_id
            self._next_id += 1
            self.ops.append(op)
            if op.outcome == "ok" and op.kind in ("write", "cas", "create"):
                self._acked += 1
                self._lock.notify_all()

    def _worker(self, index, client):
        rng = random.Random(self.seed * 7919 + index)
        kinds = [k for k, w in MIX for _ in range(w)]
        last_version = {}
        seq = 0
        try:
            while not self._stop.is_set():
                seq += 1
                kind = rng.choice(kinds)
                key = rng.choice(self.keys)
                value = f"p{index}-{seq}".encode()
                if kind == "create":
                    self._create(index, client, f"{CREATES}/p{index}-{seq}", value)
                elif kind == "write":
                    op = self._set(index, client, key, value, None)
                    if op.outcome == "ok":
                        last_version[key] = op.version
                elif kind == "cas":
                    expected = last_version.get(key, 0)
                    op = self._set(index, client, key, value, expected)
                    if op.outcome == "ok":
                        last_version[key] = op.version
                else:
                    op = self._read(index, client, key, kind == "sync-read")
                    if op is not None and op.outcome == "ok":
                        last_version[key] = op.version
        except Exception as e:  # reported by stop(), the test fails with it
            self.errors.append(f"worker {index}: {type(e).__name__}: {e}")
            with self._lock:
                self._lock.notify_all()

    def _call(self, client, op, start):
        """Run one kazoo async call for ``op``; fill in its outcome; return the result."""
        session = client._session_id
        try:
            result = start().get(timeout=OP_TIMEOUT_S)
        except tuple(DEFINITE) as e:
            op.complete = time.monotonic()
            op.outcome = "fail"
            op.error = DEFINITE[type(e)]
            op.session = session if client._session_id == session else None
            return None
        except (KazooException, KazooTimeoutError) as e:
            op.outcome = "unknown"
            op.error = type(e).__name__
            return None
        op.complete = time.monotonic()
        op.outcome = "ok"
        # The reply belongs to the session that was current when the op was sent, unless a
        # new session replaced it meanwhile: then it is not attributed to any session.
        op.session = session if client._session_id == session else None
        return result

    def _set(self, index, client, key, value, expected):
        op = Op(id=-1, process=index, session=None, kind="cas" if expected is not None else
                "write", key=key, invoke=time.monotonic(), value=value, expected_version=expected)
        stat = self._call(client, op, lambda: client.set_async(
            key, value, -1 if expected is None else expected))
        if stat is not None:
            op.version, op.zxid = stat.version, stat.mzxid
        self._record(op)
        return op

    def _read(self, index, client, key, sync):
        sync_invoke = None
        if sync:
            sync_op = Op(id=-1, process=index, session=None, kind="sync", key=key,
                         invoke=time.monotonic())
            self._call(client, sync_op, lambda: client.sync_async(key))
            if sync_op.outcome != "ok":
                return None  # no sync, no sync-read
            sync_invoke = sync_op.invoke
        op = Op(id=-1, process=index, session=None, kind="read", key=key,
                invoke=time.monotonic(), sync_invoke=sync_invoke)
        result = self._call(client, op, lambda: client.get_async(key))
        if result is not None:
            data, stat = result
            op.value, op.version, op.zxid = data, stat.version, stat.mzxid
        self._record(op)
        return op

    def _create(self, index, client, path, value):
        op = Op(id=-1, process=index, session=None, kind="create", key=path,
                invoke=time.monotonic(), value=value)
        result = self._call(client, op, lambda: client.create_async(path, value,
                                                                    include_data=True))
        if result is not None:
            _, stat = result
            op.zxid = stat.czxid
        self._record(op)
        return op

    # -- the final state -------------------------------------------------------------------

    def read_through(self, node):
        """(keys: key -> RegisterState, creates: path -> (data, czxid)) through ``node``,
        after a sync."""
        client = make_client(node.hosts)
        client.start(timeout=CONNECT_TIMEOUT_S)
        try:
            keys = {}
            for key in self.keys:
                client.sync(key)
                data, stat = client.get(key)
                keys[key] = RegisterState(data, stat.version, stat.mzxid)
            client.sync(CREATES)
            creates = {}
            for child in client.get_children(CREATES):
                data, stat = client.get(f"{CREATES}/{child}")
                creates[f"{CREATES}/{child}"] = (data, stat.czxid)
            return keys, creates
        finally:
            client.stop()
            client.close()

    def final_state(self, nodes=None):
        """The state every server agrees on after the run, waiting (with a deadline) for
        lagging servers to catch up; raises WorkloadError naming the servers that differ."""
        nodes = nodes or self.ensemble.nodes
        deadline = time.monotonic() + CONVERGE_DEADLINE_S
        while True:
            views = {}
            problem = None
            for node in nodes:
                try:
                    views[node] = self.read_through(node)
                except (KazooException, KazooTimeoutError) as e:
                    problem = f"{node}: {type(e).__name__} {e}"
                    break
            if problem is None:
                reference = views[nodes[0]]
                differing = [n for n in nodes if views[n] != reference]
                if not differing:
                    return reference
                problem = self._describe_difference(nodes[0], reference, differing, views)
            if time.monotonic() >= deadline:
                raise WorkloadError(f"the servers do not agree on the final state after "
                                    f"{CONVERGE_DEADLINE_S}s: {problem}")
            time.sleep(0.2)  # poll interval of the convergence wait (bounded by the deadline)

    @staticmethod
    def _describe_difference(first, reference, differing, views):
        lines = []
        for node in differing:
            keys, creates = views[node]
            for key, state in keys.items():
                if state != reference[0].get(key):
                    lines.append(f"{key}: {first} has {reference[0].get(key)}, {node} has {state}")
            only_ref = set(reference[1]) - set(creates)
            only_node = set(creates) - set(reference[1])
            if only_ref or only_node:
                lines.append(f"creates only on {first}: {sorted(only_ref)[:5]}, only on {node}: "
                             f"{sorted(only_node)[:5]}")
        return "; ".join(lines)
