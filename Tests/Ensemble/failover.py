#!/usr/bin/env python3
"""Failover time of a real ensemble: from SIGKILL of the leader to the first write acknowledged
through another server.

Each round: wait for a healthy ensemble; connect a kazoo client to one follower only and have
it call setData in a tight loop (each call waits for its reply; while the follower has no
leader the calls wait in the client's queue or fail and are retried at once); SIGKILL the
leader; the round's figure is the time from the kill to the reply of the first setData that was
invoked after the kill. Also printed: when a surviving server first says ``Mode: leader``
(polled over srvr). Then the killed node is restarted and rejoins before the next round.

    python3 Tests/Ensemble/failover.py [--server zookeeper|swiftkeeper] [--nodes 3] [--rounds 10]

The ZooKeeper paper (Hunt et al., USENIX ATC 2010) reports elections under 200 ms; the figures
here include detection, election, the new leader's synchronization with a quorum and the
client's reconnection.
"""

import argparse
import logging
import os
import random
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import KazooException  # noqa: E402
from kazoo.handlers.threading import KazooTimeoutError  # noqa: E402

from ensemble import Ensemble, EnsembleError  # noqa: E402

# Limits of the measurement.
ROUND_DEADLINE_S = 60.0     # no write through the follower by then: the round fails
WRITE_TIMEOUT_S = 10.0      # one setData may wait this long (queued while reconnecting)
SESSION_TIMEOUT_S = 15.0
WARMUP_WRITES = 20          # acknowledged writes before the kill: the client is steady
# Reconnect as fast as the server lets it, so the figure is the server's, not the backoff's.
TIGHT_RETRY = dict(max_tries=-1, delay=0.005, backoff=1.2, max_delay=0.05, max_jitter=0.002)
PATH = "/failover"


class Writer(threading.Thread):
    """setData in a loop through one client; keeps (invoke, complete) of each success."""

    def __init__(self, client):
        super().__init__(name="failover-writer", daemon=True)
        self.client = client
        self.stop_event = threading.Event()
        self.lock = threading.Condition()
        self.successes = []
        self.failures = 0

    def run(self):
        n = 0
        while not self.stop_event.is_set():
            n += 1
            invoke = time.monotonic()
            try:
                self.client.set_async(PATH, str(n).encode()).get(timeout=WRITE_TIMEOUT_S)
            except (KazooException, KazooTimeoutError):
                with self.lock:
                    self.failures += 1
                continue
            complete = time.monotonic()
            with self.lock:
                self.successes.append((invoke, complete))
                self.lock.notify_all()

    def wait_for(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                result = predicate(self.successes)
                if result is not None:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise EnsembleError(f"timed out after {timeout:.0f}s waiting for {what} "
                                        f"({len(self.successes)} writes ok, {self.failures} failed)")
                self.lock.wait(min(left, 0.1))


def first_write_after(t0):
    def find(successes):
        # One writer thread: successes are in invoke (and completion) order.
        for invoke, complete in successes:
            if invoke >= t0:
                return complete
        return None
    return find


def watch_election(ensemble, exclude, t0, box, stop):
    """Poll srvr on the survivors until one says leader; box['elected'] = seconds after t0."""
    survivors = [n for n in ensemble.nodes if n not in exclude]
    while not stop.is_set():
        for node in survivors:
            if node.mode() == "leader":
                box["elected"] = time.monotonic() - t0
                box["leader"] = node
                return
        time.sleep(0.005)  # the poll interval of this probe; bounded by the round's deadline


def percentile(values, p):
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * p // 100)))  # nearest rank
    return ordered[int(rank) - 1]


def run(kind, nodes, rounds, seed, proxied):
    rng = random.Random(seed)
    ensemble = Ensemble(nodes, kind=kind, proxied=proxied)
    results = []
    try:
        ensemble.start()
        setup = KazooClient(hosts=ensemble.hosts(), timeout=SESSION_TIMEOUT_S)
        setup.start(timeout=60)
        setup.create(PATH, b"0")
        setup.stop()
        setup.close()
        print(f"{kind}: {nodes} nodes, {rounds} rounds, tickTime and limits as in ensemble.py, "
              f"{'proxied' if proxied else 'direct'} peer links, seed {seed}")
        print(f"{'round':>5} {'killed':>7} {'new leader':>10} {'elected ms':>10} "
              f"{'first write ms':>14}")
        for r in range(1, rounds + 1):
            leader = ensemble.wait_healthy()
            follower = rng.choice([n for n in ensemble.voters if n is not leader])
            client = KazooClient(hosts=follower.hosts, timeout=SESSION_TIMEOUT_S,
                                 connection_retry=dict(TIGHT_RETRY))
            client.start(timeout=60)
            writer = Writer(client)
            writer.start()
            box = {}
            stop = threading.Event()
            try:
                writer.wait_for(lambda s: True if len(s) >= WARMUP_WRITES else None,
                                ROUND_DEADLINE_S, f"{WARMUP_WRITES} warm-up writes")
                t0 = time.monotonic()
                leader.kill()
                watcher = threading.Thread(target=watch_election,
                                           args=(ensemble, [leader], t0, box, stop), daemon=True)
                watcher.start()
                done = writer.wait_for(first_write_after(t0), ROUND_DEADLINE_S,
                                       f"a write through {follower} after the kill")
                write_ms = (done - t0) * 1000.0
                watcher.join(ROUND_DEADLINE_S)
            finally:
                stop.set()
                writer.stop_event.set()
                writer.join(WRITE_TIMEOUT_S + 5)
                client.stop()
                client.close()
            elected = box.get("elected")
            elected_ms = f"{elected * 1000.0:10.0f}" if elected is not None else f"{'?':>10}"
            new_leader = box.get("leader")
            print(f"{r:>5} {leader.sid:>7} {new_leader.sid if new_leader else '?':>10} "
                  f"{elected_ms} {write_ms:14.0f}", flush=True)
            results.append(write_ms)
            ensemble.restart(leader)
    finally:
        ensemble.close()
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=["zookeeper", "swiftkeeper"],
                        default=os.environ.get("SK_SERVER", "swiftkeeper"))
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=None, help="which follower each round")
    parser.add_argument("--proxied", action="store_true",
                        help="peer links through the test proxy (default: direct)")
    args = parser.parse_args()
    # The client's reconnect warnings are expected here (the leader is killed on purpose).
    logging.getLogger("kazoo").setLevel(logging.ERROR)
    if args.nodes < 3:
        parser.error("--nodes must be at least 3: a failover needs a quorum without the leader")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    try:
        results = run(args.server, args.nodes, args.rounds, seed, args.proxied)
    except EnsembleError as e:
        print(f"failover: {e}", file=sys.stderr)
        return 1
    print(f"failover (SIGKILL of the leader to the first acknowledged write through a "
          f"follower), {len(results)} rounds: median {statistics.median(results):.0f} ms, "
          f"p90 {percentile(results, 90):.0f} ms, max {max(results):.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
