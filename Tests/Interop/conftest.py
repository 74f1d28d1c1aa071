"""Fixtures of the interop suite: the server under test, kazoo clients, raw protocol clients,
a per-test namespace, a seeded random generator and a TCP proxy that cuts connections on demand.

Run against SwiftKeeper (default) or Apache ZooKeeper:
    SK_SERVER=zookeeper python3 -m pytest -q Tests/Interop
Set SK_SEED=<n> to replay a failing seed; SK_KEEP_DATA=1 to keep the server's data directory.
"""

import itertools
import os
import random
import re

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

import jute
import serverctl
from proxy import Proxy

# Session timeout of ordinary test clients: long enough that a busy 2-core machine never expires
# them by accident, short enough that nothing waits long. Expiry tests use their own, shorter.
CLIENT_SESSION_TIMEOUT_S = 8.0
# Reconnect fast: kazoo's default backoff (0.1 s doubling up to 60 s) makes reconnect tests slow.
FAST_RETRY = dict(max_tries=-1, delay=0.05, backoff=1.5, max_delay=0.5, max_jitter=0.05)


def pytest_report_header(config):
    kind = os.environ.get("SK_SERVER", "swiftkeeper")
    return [f"interop: server under test = {kind} (SK_SERVER), seed = {base_seed()} (SK_SEED)"]


_BASE_SEED = None


def base_seed():
    global _BASE_SEED
    if _BASE_SEED is None:
        env = os.environ.get("SK_SEED")
        _BASE_SEED = int(env) if env else random.SystemRandom().randrange(1 << 32)
    return _BASE_SEED


@pytest.fixture
def seed(request):
    """A per-test seed derived from the run's seed and the test's name; printed, so a failing
    test's output shows how to replay it (SK_SEED=<run seed>)."""
    value = (base_seed() * 1_000_003 + sum(map(ord, request.node.nodeid))) % (1 << 32)
    print(f"seed: SK_SEED={base_seed()} (test seed {value})")
    return value


@pytest.fixture
def rng(seed):
    return random.Random(seed)


_shared_server = None


@pytest.fixture(scope="session")
def server():
    """The server shared by the tests that do not stop it."""
    global _shared_server
    srv = serverctl.Server()
    try:
        srv.start()
    except BaseException:
        srv.cleanup()
        raise
    _shared_server = srv
    yield srv
    _shared_server = None
    srv.cleanup()


@pytest.fixture(autouse=True)
def server_watchdog():
    """If the shared server died during a test, say so in that test (with the server's last
    output) and start it again on the same data, so one crash does not fail every later test."""
    yield
    srv = _shared_server
    if srv is not None and srv.process is not None and not srv.is_running():
        status = srv.process.returncode
        tail = srv.output_tail(80)
        srv.start()
        pytest.fail(f"the {srv.kind} server died during this test (exit status {status}); "
                    f"restarted it on the same data. Its last output:\n{tail}", pytrace=False)


@pytest.fixture
def server_factory():
    """Servers of the test's own (for tests that kill, restart or reconfigure); all stopped and
    removed at the end of the test."""
    servers = []

    def make(**kwargs):
        srv = serverctl.Server(**kwargs)
        servers.append(srv)  # cleaned up at the end even if it fails to start
        srv.start()
        return srv

    yield make
    for srv in servers:
        srv.cleanup()


class ClientFactory:
    """Makes kazoo clients and stops every one of them when the test ends."""

    def __init__(self, default_hosts):
        self.default_hosts = default_hosts
        self.clients = []

    def __call__(self, hosts=None, timeout=CLIENT_SESSION_TIMEOUT_S, start=True, **kwargs):
        kwargs.setdefault("connection_retry", dict(FAST_RETRY))
        client = KazooClient(hosts=hosts or self.default_hosts, timeout=timeout, **kwargs)
        self.clients.append(client)
        if start:
            client.start(timeout=30)
        return client

    def close_all(self):
        for client in self.clients:
            client.stop()
            client.close()


@pytest.fixture
def zk_factory(server):
    factory = ClientFactory(server.hosts)
    yield factory
    factory.close_all()


@pytest.fixture
def zk(zk_factory):
    return zk_factory()


@pytest.fixture
def raw_factory(server):
    """Raw protocol clients (jute.RawClient) against the shared server, closed at the end."""
    clients = []

    def make(**kwargs):
        c = jute.RawClient(server.host, server.port, **kwargs)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def raw(raw_factory):
    return raw_factory()


_namespace_counter = itertools.count()


@pytest.fixture
def base(request, server, zk_factory):
    """A fresh znode of this test's own (/it-<test>-<n>), removed with its subtree afterwards."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:60]
    path = f"/it-{name}-{next(_namespace_counter)}"
    # The super user, so cleanup can delete what a test locked with ACLs.
    admin = zk_factory(auth_data=[("digest", f"{serverctl.SUPER_USER}:{serverctl.SUPER_PASSWORD}")])
    admin.create(path)
    yield path
    try:
        admin.delete(path, recursive=True)
    except NoNodeError:
        pass  # the test removed it itself


@pytest.fixture
def proxy(server):
    """A TCP proxy in front of the shared server: ``proxy.cut()`` drops every connection and
    refuses new ones, ``proxy.restore()`` lets clients through again."""
    p = Proxy(server.host, server.port)
    p.start()
    yield p
    p.close()
