"""kazoo's recipes (Lock, Election, Barrier, DoubleBarrier, Counter, Queue, LockingQueue)
against the server: they combine ephemeral-sequential nodes, child and exists watches,
versioned writes and multi, so they catch ordering and watch-delivery mistakes that single-op
tests miss. Contention is driven by threads whose interleaving is left to the server; the
assertions hold for every interleaving."""

import threading

from kazoo.recipe.barrier import Barrier, DoubleBarrier
from kazoo.recipe.counter import Counter
from kazoo.recipe.election import Election
from kazoo.recipe.lock import Lock
from kazoo.recipe.queue import LockingQueue, Queue

from serverctl import wait_until

THREAD_DEADLINE_S = 60.0


def run_threads(targets):
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(THREAD_DEADLINE_S)
        assert not t.is_alive(), "a recipe thread did not finish in time"


def test_lock_mutual_exclusion(zk_factory, base):
    clients = [zk_factory() for _ in range(4)]
    holders = []
    inside = []
    errors = []
    guard = threading.Lock()

    def worker(client, name):
        lock = Lock(client, f"{base}/lock", identifier=name)
        for _ in range(5):
            with lock:
                with guard:
                    inside.append(name)
                    if len(inside) != 1:
                        errors.append(list(inside))
                # The lock node is ours while we hold it.
                contenders = lock.contenders()
                holders.append((name, contenders[0] if contenders else None))
                with guard:
                    inside.remove(name)

    run_threads([lambda c=c, i=i: worker(c, f"w{i}") for i, c in enumerate(clients)])
    assert errors == []
    assert len(holders) == 20
    assert all(name == first for name, first in holders)


def test_lock_released_when_holder_session_closes(zk_factory, base):
    holder = zk_factory()
    waiter = zk_factory()
    lock = Lock(holder, f"{base}/lock", identifier="holder")
    assert lock.acquire(timeout=10)
    other = Lock(waiter, f"{base}/lock", identifier="waiter")
    assert other.acquire(blocking=False) is False
    acquired = threading.Event()

    def wait_for_lock():
        if other.acquire(timeout=30):
            acquired.set()

    t = threading.Thread(target=wait_for_lock, daemon=True)
    t.start()
    wait_until(lambda: len(other.contenders()) == 2, 10, "the waiter to queue")
    holder.stop()  # its ephemeral lock node goes: the waiter's watch fires
    t.join(THREAD_DEADLINE_S)
    assert acquired.is_set()
    other.release()


def test_election_picks_one_leader_then_the_next(zk_factory, base):
    clients = [zk_factory() for _ in range(3)]
    leaders = []
    stop = [threading.Event() for _ in clients]
    lead_count = threading.Semaphore(0)

    def lead(i):
        leaders.append(i)
        lead_count.release()
        stop[i].wait(THREAD_DEADLINE_S)

    elections = [Election(c, f"{base}/election", identifier=f"c{i}") for i, c in enumerate(clients)]
    threads = [threading.Thread(target=e.run, args=(lead, i), daemon=True)
               for i, e in enumerate(elections)]
    for t in threads:
        t.start()
    assert lead_count.acquire(timeout=30)
    first = leaders[0]
    wait_until(lambda: len(elections[0].contenders()) == 3, 10, "all three to contend")
    assert elections[0].contenders()[0] == f"c{first}"
    stop[first].set()  # the leader steps down; exactly one other takes over
    assert lead_count.acquire(timeout=30)
    assert len(leaders) == 2 and leaders[1] != first
    for i in range(3):
        stop[i].set()
    for e in elections:
        e.cancel()
    for t in threads:
        t.join(THREAD_DEADLINE_S)
    assert len(set(leaders)) == len(leaders)


def test_barrier(zk_factory, base):
    controller, waiter = zk_factory(), zk_factory()
    barrier = Barrier(controller, f"{base}/barrier")
    barrier.create()
    assert Barrier(waiter, f"{base}/barrier").wait(timeout=0.2) is False
    passed = threading.Event()

    def wait():
        if Barrier(waiter, f"{base}/barrier").wait(timeout=30):
            passed.set()

    t = threading.Thread(target=wait, daemon=True)
    t.start()
    barrier.remove()
    t.join(THREAD_DEADLINE_S)
    assert passed.is_set()


def test_double_barrier(zk_factory, base):
    # enter() returns only once all three members are present; leave() once all have left.
    clients = [zk_factory() for _ in range(3)]
    observer = zk_factory()
    present_at_entry, left = [], []
    # kazoo's DoubleBarrier races with itself: a member still inside enter() (its exists() on
    # the ready node not yet sent) when another has already left waits for a ready node that
    # is never created again, against any server. The members therefore start leaving only
    # once all three have entered; what is tested is the server's side of both phases.
    all_entered = threading.Barrier(3, timeout=THREAD_DEADLINE_S)

    def member(i, client):
        b = DoubleBarrier(client, f"{base}/double", 3)
        b.enter()
        present_at_entry.append(b.participating)
        all_entered.wait()
        b.leave()
        left.append(i)

    run_threads([lambda i=i, c=c: member(i, c) for i, c in enumerate(clients)])
    assert present_at_entry == [True, True, True]
    assert sorted(left) == [0, 1, 2]
    assert observer.get_children(f"{base}/double") == []


def test_counter(zk_factory, base):
    clients = [zk_factory() for _ in range(4)]

    def bump(client):
        counter = Counter(client, f"{base}/counter")
        for _ in range(25):
            counter += 1

    run_threads([lambda c=c: bump(c) for c in clients])
    assert Counter(clients[0], f"{base}/counter").value == 100
    counter = Counter(clients[0], f"{base}/float", default=0.0)
    counter += 2.5
    counter -= 1.0
    assert counter.value == 1.5


def test_queue_order_and_priority(zk_factory, base):
    producer, consumer = zk_factory(), zk_factory()
    q = Queue(producer, f"{base}/queue")
    for i in range(10):
        q.put(f"item-{i}".encode())
    q.put(b"urgent", priority=1)
    assert len(q) == 11
    cq = Queue(consumer, f"{base}/queue")
    assert cq.get() == b"urgent"
    assert [cq.get() for _ in range(10)] == [f"item-{i}".encode() for i in range(10)]
    assert cq.get() is None


def test_locking_queue_concurrent_consumers(zk_factory, base):
    producer = zk_factory()
    LockingQueue(producer, f"{base}/lq").put_all([f"job-{i}".encode() for i in range(20)])
    consumed = []
    guard = threading.Lock()

    def consume(client):
        q = LockingQueue(client, f"{base}/lq")
        while True:
            item = q.get(timeout=1)
            if item is None:
                return
            with guard:
                consumed.append(item)
            assert q.consume()

    run_threads([lambda c=c: consume(c) for c in [zk_factory() for _ in range(3)]])
    assert sorted(consumed) == sorted(f"job-{i}".encode() for i in range(20))
    assert len(LockingQueue(producer, f"{base}/lq")) == 0
