"""SIGKILL durability: several kazoo sessions pipeline writes (creates, setData, deletes,
sequential creates) with many requests in flight; every write the server acknowledges is
recorded; the server is killed with SIGKILL at a seeded random moment and restarted on the same
data directory. Every acknowledged write must be there with the Stat it was acknowledged with,
nothing may go back in time, and sequential numbering must continue without reuse. Two
kill/restart cycles run, so recovery of an already recovered store is exercised too.

A write that was in flight when the server died may or may not have survived; only the
acknowledged prefix of each session's writes is promised (a session's replies come in order).
"""

import random
import threading

from kazoo.exceptions import KazooException

from serverctl import wait_until

CLIENTS = 4
WINDOW = 32  # requests in flight per session
ACK_DEADLINE_S = 60.0


class PathHistory:
    """What one session did to one of its znodes, in issue order."""

    def __init__(self, path):
        self.path = path
        self.values = []  # data by version: values[v] is the data written at version v
        self.create_ack = None  # Stat from create2
        self.set_acks = []  # Stats of acknowledged setData, in order
        self.delete_issued = False
        self.delete_acked = False


class Workload:
    def __init__(self, clients, base, generation):
        self.clients = clients
        self.base = base
        self.generation = generation
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.acks = 0
        self.histories = []
        self.sequential = []  # (path, Stat) of acknowledged sequential creates
        self.max_acked_zxid = 0
        self.failures = []

    def ack(self, zxid):
        with self.lock:
            self.acks += 1
            self.max_acked_zxid = max(self.max_acked_zxid, zxid)

    def run_session(self, index, client, seed):
        rng = random.Random(seed)
        window = threading.Semaphore(WINDOW)
        mine = []
        k = 0

        def done(history_update):
            def callback(result):
                window.release()
                try:
                    value = result.get(timeout=0)
                except KazooException as e:
                    with self.lock:
                        self.failures.append(type(e).__name__)
                    return
                history_update(value)
            return callback

        while not self.stop.is_set():
            if not window.acquire(timeout=0.1):
                continue
            if self.stop.is_set():
                window.release()
                break
            live = [h for h in mine if not h.delete_issued]
            choice = rng.random()
            if choice < 0.35 or not live:
                h = PathHistory(f"{self.base}/g{self.generation}-c{index}-{k}")
                k += 1
                data = f"{h.path}@0".encode()
                h.values.append(data)
                mine.append(h)
                with self.lock:
                    self.histories.append(h)

                def on_create(value, h=h):
                    path, stat = value
                    assert path == h.path
                    h.create_ack = stat
                    self.ack(stat.mzxid)
                client.create_async(h.path, data, include_data=True).rawlink(done(on_create))
            elif choice < 0.80:
                h = rng.choice(live)
                data = f"{h.path}@{len(h.values)}".encode()
                h.values.append(data)

                def on_set(stat, h=h):
                    h.set_acks.append(stat)
                    self.ack(stat.mzxid)
                client.set_async(h.path, data).rawlink(done(on_set))
            elif choice < 0.90:
                h = rng.choice(live)
                h.delete_issued = True

                def on_delete(_, h=h):
                    h.delete_acked = True
                    self.ack(0)
                client.delete_async(h.path).rawlink(done(on_delete))
            else:
                data = f"seq-g{self.generation}-c{index}".encode()

                def on_seq(value, data=data):
                    path, stat = value
                    with self.lock:
                        self.sequential.append((path, stat, data))
                    self.ack(stat.mzxid)
                client.create_async(f"{self.base}/seq/s-", data, sequence=True,
                                    include_data=True).rawlink(done(on_seq))


def verify(reader, workloads, base):
    """Every acknowledged write survived, with its Stat; nothing went back in time."""
    checked = 0
    for w in workloads:
        for h in w.histories:
            stat = reader.exists(h.path)
            if h.delete_acked:
                assert stat is None, f"{h.path}: acknowledged delete undone"
                continue
            if h.create_ack is None:
                continue  # never acknowledged: may or may not exist
            if stat is None:
                assert h.delete_issued, f"{h.path}: acknowledged create lost"
                continue  # an unacknowledged delete made it
            assert stat.czxid == h.create_ack.czxid and stat.ctime == h.create_ack.ctime, h.path
            acked_version = h.set_acks[-1].version if h.set_acks else 0
            assert stat.version >= acked_version, f"{h.path}: went back to version {stat.version}"
            data, stat = reader.get(h.path)
            assert data == h.values[stat.version], f"{h.path}: wrong data for its version"
            if stat.version == acked_version and h.set_acks:
                assert stat.mzxid == h.set_acks[-1].mzxid and stat.mtime == h.set_acks[-1].mtime
            checked += 1
        for path, stat, data in w.sequential:
            got, now = reader.get(path)
            assert got == data and now.czxid == stat.czxid, path
            checked += 1
    return checked


def test_acknowledged_writes_survive_sigkill(server_factory, zk_factory, seed, rng):
    server = server_factory()
    setup = zk_factory(hosts=server.hosts)
    base = "/durable"
    setup.create(f"{base}/seq", makepath=True)
    workloads = []
    all_seq_suffixes = []
    for generation in range(2):
        clients = [zk_factory(hosts=server.hosts) for _ in range(CLIENTS)]
        w = Workload(clients, base, generation)
        workloads.append(w)
        threads = [threading.Thread(target=w.run_session, args=(i, c, rng.randrange(1 << 30)),
                                    daemon=True) for i, c in enumerate(clients)]
        kill_after = rng.randint(150, 600)
        print(f"generation {generation}: SIGKILL after {kill_after} acknowledged writes")
        for t in threads:
            t.start()
        wait_until(lambda: w.acks >= kill_after, ACK_DEADLINE_S,
                   f"{kill_after} acknowledged writes")
        server.kill()
        w.stop.set()
        for t in threads:
            t.join(10)
            assert not t.is_alive()
        for c in clients:
            c.stop()
        server.start()

        reader = zk_factory(hosts=server.hosts)
        checked = verify(reader, workloads, base)
        print(f"generation {generation}: {w.acks} acknowledged, {checked} znodes verified, "
              f"in-flight failures {len(w.failures)}")
        assert checked > 0

        # Sequential numbering continues after the restart: no number is handed out twice.
        acked = [int(p.rsplit("-", 1)[1]) for ww in workloads for p, _, _ in ww.sequential]
        path, stat = reader.create(f"{base}/seq/s-", b"after-restart", sequence=True,
                                   include_data=True)
        suffix = int(path.rsplit("-", 1)[1])
        assert suffix > max(acked, default=-1), (suffix, max(acked, default=-1))
        assert suffix not in all_seq_suffixes
        all_seq_suffixes.extend(acked + [suffix])
        # zxids only move forward across the crash.
        assert stat.czxid > max(ww.max_acked_zxid for ww in workloads)
        children = reader.get_children(f"{base}/seq")
        assert len(children) == len(set(children))
        reader.stop()
