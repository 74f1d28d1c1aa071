"""Real ensembles under concurrent client load and faults; the recorded history must pass the
checker: linearizable writes, sequentially consistent reads, no lost acknowledged write, and
every server ends with the same tree.

Faults: SIGKILL of the leader again and again (3 and 5 nodes), SIGKILL of every node at once,
SIGSTOP of a follower and of the leader, a partition of the leader with a minority (blackholed
or reset links) and heal, a node restarted with its data directory wiped, and an observer
through all of it.

Every fault step waits on a condition with a deadline: a new leader elected, N more writes
acknowledged (the ensemble makes progress without the faulty node), every node serving again.

SK_SERVER=zookeeper|swiftkeeper picks the server; SK_ENSEMBLE_ROUNDS=<n> repeats each fault n
times (default: a CI-sized 2); SK_SEED=<n> replays a run's random choices (workload mix, which
follower); SK_KEEP_DATA=1 keeps the servers' directories and logs.
"""

import contextlib
import os
import random

import pytest

import checker
from ensemble import Ensemble, EnsembleError
from history import Workload, WorkloadError
from linkproxy import LinkState

ROUNDS = int(os.environ.get("SK_ENSEMBLE_ROUNDS", "2"))
PROGRESS = 25   # acknowledged writes that show the ensemble works, per fault step


@contextlib.contextmanager
def loaded_ensemble(seed, voters, observers=0, workers=4, hosts=None):
    """An ensemble under load: yields (ensemble, workload, rng); at the end stops the load,
    waits for every node to serve, reads the final state through every node and checks the
    history. The test fails with the checker's report, the seed and the nodes' last output."""
    rng = random.Random(seed)
    ens = Ensemble(voters, observers)
    try:
        ens.start()
        workload = Workload(ens, seed, workers=workers,
                            hosts=hosts(ens) if hosts is not None else None)
        workload.setup()
        workload.start()
        try:
            yield ens, workload, rng
        finally:
            workload.stop()
        ens.wait_healthy()
        keys, creates = workload.final_state()
        # Apache ZooKeeper lets a deposed leader answer sync from stale state after a pause
        # (see checker's module doc); that known gap is listed, not failed, for it alone.
        report = checker.check(workload.ops, workload.initial, keys, creates,
                               tolerate_deposed_leader_sync=ens.kind == "zookeeper")
        print(report.summary())
        assert report.stats["ok"] > 0, "no operation succeeded"
        if not report.ok:
            pytest.fail(f"{report.summary()}\nnode output:\n{ens.tails(30)}", pytrace=False)
    except (EnsembleError, WorkloadError) as e:
        pytest.fail(f"{e}\nnode output:\n{ens.tails(30)}", pytrace=False)
    finally:
        ens.close()


@pytest.mark.parametrize("voters", [3, 5])
def test_kill_leader_repeatedly(seed, voters):
    with loaded_ensemble(seed, voters) as (ens, load, rng):
        for _ in range(ROUNDS):
            load.wait_acked(PROGRESS)
            leader = ens.wait_leader()
            leader.kill()
            victims = [leader]
            if voters == 5 and rng.random() < 0.5:
                # Five nodes survive two failures: take a follower down with the leader.
                follower = rng.choice([n for n in ens.voters if n is not leader])
                follower.kill()
                victims.append(follower)
            ens.wait_leader(exclude=victims)
            load.wait_acked(PROGRESS)
            for node in victims:
                ens.restart(node)
        ens.wait_healthy()
        load.wait_acked(PROGRESS)


def test_kill_every_node_at_once(seed):
    # A power cut: every acknowledged write was durable on a quorum, so it must come back.
    with loaded_ensemble(seed, 3) as (ens, load, rng):
        for _ in range(ROUNDS):
            ens.wait_healthy()
            load.wait_acked(PROGRESS)
            order = list(ens.nodes)
            rng.shuffle(order)
            for node in order:
                node.kill()
            for node in order:
                node.launch()
            ens.wait_healthy()
            load.wait_acked(PROGRESS)


def test_pause_follower_then_leader(seed):
    with loaded_ensemble(seed, 3) as (ens, load, rng):
        for _ in range(ROUNDS):
            leader = ens.wait_healthy()
            follower = rng.choice([n for n in ens.voters if n is not leader])
            follower.pause()
            load.wait_acked(PROGRESS)   # a quorum without it keeps going
            follower.resume()
            leader = ens.wait_healthy()
            load.wait_acked(PROGRESS)
            leader.pause()
            ens.wait_leader(exclude=[leader])  # the others elect a new leader
            load.wait_acked(PROGRESS)
            leader.resume()                    # the old leader must notice and follow
            ens.wait_healthy()
            load.wait_acked(PROGRESS)


@pytest.mark.parametrize("voters", [3, 5])
def test_partition_leader_with_minority(seed, voters):
    with loaded_ensemble(seed, voters) as (ens, load, rng):
        for round_ in range(ROUNDS):
            leader = ens.wait_healthy()
            load.wait_acked(PROGRESS)
            followers = [n for n in ens.voters if n is not leader]
            rng.shuffle(followers)
            minority = [leader] + followers[:(voters - 1) // 2 - 1]
            majority = [n for n in ens.nodes if n not in minority]
            # Alternate a silent partition (packets dropped) and a noisy one (resets).
            mode = LinkState.BLACKHOLE if round_ % 2 == 0 else LinkState.DOWN
            ens.partition(minority, majority, mode)
            ens.wait_leader(among=majority)
            ens.wait_not_serving(minority)    # the old leader stepped down, without a quorum
            load.wait_acked(PROGRESS)
            ens.heal()
            ens.wait_healthy()
        load.wait_acked(PROGRESS)


def test_wiped_node_rejoins_and_catches_up(seed):
    with loaded_ensemble(seed, 3) as (ens, load, rng):
        for _ in range(ROUNDS):
            leader = ens.wait_healthy()
            load.wait_acked(PROGRESS)
            follower = rng.choice([n for n in ens.voters if n is not leader])
            follower.kill()
            load.wait_acked(PROGRESS)       # writes it never saw
            follower.wipe()
            ens.restart(follower)           # rejoins empty: the leader must send it all
            load.wait_acked(PROGRESS)
            # Now make its copy matter: the leader dies, the wiped node is one of the two left.
            leader = ens.wait_healthy()
            leader.kill()
            ens.wait_leader(exclude=[leader])
            load.wait_acked(PROGRESS)
            leader.wipe()                   # and the old leader comes back empty too
            ens.restart(leader)
            load.wait_acked(PROGRESS)


def test_observer_follows_through_faults(seed):
    def hosts(ens):
        # Half the clients talk only to the observer (its reads are local, its writes are
        # forwarded to the leader); the others to anyone.
        observer = ens.observers[0].hosts
        return [observer, ens.hosts(), observer, ens.hosts()]

    with loaded_ensemble(seed, 3, observers=1, hosts=hosts) as (ens, load, rng):
        observer = ens.observers[0]
        for round_ in range(ROUNDS):
            leader = ens.wait_healthy()
            load.wait_acked(PROGRESS)
            leader.kill()
            ens.wait_leader(exclude=[leader])
            load.wait_acked(PROGRESS)
            ens.restart(leader)
            leader = ens.wait_healthy()
            # Cut the observer off the leader: it must lose it, find it again and catch up.
            ens.partition([observer], [leader],
                          LinkState.BLACKHOLE if round_ % 2 == 0 else LinkState.DOWN)
            load.wait_acked(PROGRESS)
            ens.heal()
            ens.wait_healthy()
            observer.pause()
            load.wait_acked(PROGRESS)
            observer.resume()
            ens.wait_healthy()
            load.wait_acked(PROGRESS)
        assert observer.mode() == "observer"
