"""Helpers the tests share: waiting on client state and collecting watch events."""

import queue
import threading

from kazoo.protocol.states import KazooState

from serverctl import wait_until

EVENT_TIMEOUT_S = 10.0


def wait_for_state(client, state, timeout=30.0):
    """Wait until a kazoo client reports ``state`` (a KazooState)."""
    return wait_until(lambda: client.state == state, timeout, f"client state {state}")


def wait_connected(client, timeout=30.0):
    return wait_for_state(client, KazooState.CONNECTED, timeout)


class Events:
    """A kazoo watcher that queues the node events it receives.

    kazoo also hands its watchers session events of type NONE (it makes them up when the
    connection drops); those say nothing about the server's notifications and are kept apart.
    """

    def __init__(self):
        self.queue = queue.Queue()
        self.session_events = []

    def __call__(self, event):
        if event.type == "NONE":
            self.session_events.append(event)
        else:
            self.queue.put(event)

    def next(self, timeout=EVENT_TIMEOUT_S):
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no watch event within {timeout}s") from None

    def pending(self):
        """Events already delivered and not yet taken (after a barrier that orders them)."""
        out = []
        while True:
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                return out


def event_fence(client, base):
    """Return once every watch event already due to ``client`` has been handed to its watchers.

    ZooKeeper sends a session's notifications in order and kazoo runs watchers one at a time in
    arrival order, so when a watch set now on a fence node fires, every earlier event has been
    delivered. Tests use this to prove an event did NOT arrive, without sleeping.
    """
    fence = f"{base}/fence-node"
    seen = Events()
    client.exists(fence, watch=seen)
    client.create(fence)
    event = seen.next()
    assert event.path == fence, event
    client.delete(fence)


class StateLog:
    """Records every KazooState a client passes through."""

    def __init__(self, client):
        self.states = []
        self.lock = threading.Lock()
        client.add_listener(self)

    def __call__(self, state):
        with self.lock:
            self.states.append(state)

    def seen(self, state):
        with self.lock:
            return state in self.states
