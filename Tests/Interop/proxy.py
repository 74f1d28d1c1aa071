"""A loopback TCP proxy the tests use to cut a client off its server and let it back.

Cutting closes every proxied connection and refuses (accepts, then closes) new ones, so the
client sees a dropped connection while the server still holds its session; restoring lets the
client reconnect, carrying its session id, password and last zxid as a real network partition
would. This is how the suite disconnects a client deterministically, without pausing processes.
"""

import selectors
import socket
import threading

POLL_INTERVAL_S = 0.05  # how soon the pump threads notice close()
BUFFER_SIZE = 65536


class Proxy:
    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.cut_off = False
        self.closed = False
        self.pairs = []
        self.accepted = 0
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def hosts(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        self.thread.start()

    def cut(self):
        """Drop every connection now and refuse new ones until restore()."""
        with self.lock:
            self.cut_off = True
            pairs, self.pairs = self.pairs, []
        for a, b in pairs:
            _close(a)
            _close(b)

    def restore(self):
        with self.lock:
            self.cut_off = False

    def close(self):
        with self.lock:
            self.closed = True
        self.cut()
        _close(self.listener)
        self.thread.join(timeout=5)

    def _accept_loop(self):
        self.listener.settimeout(POLL_INTERVAL_S)
        while True:
            with self.lock:
                if self.closed:
                    return
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                refuse = self.cut_off or self.closed
                self.accepted += 1
            if refuse:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            with self.lock:
                self.pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a, b):
        sel = selectors.DefaultSelector()
        try:
            a.setblocking(False)
            b.setblocking(False)
            sel.register(a, selectors.EVENT_READ, b)
            sel.register(b, selectors.EVENT_READ, a)
            while True:
                for key, _ in sel.select(POLL_INTERVAL_S):
                    data = key.fileobj.recv(BUFFER_SIZE)
                    if not data:
                        return
                    key.data.setblocking(True)
                    key.data.sendall(data)
                    key.data.setblocking(False)
                with self.lock:
                    if (a, b) not in self.pairs:
                        return
        except (OSError, ValueError):
            return
        finally:
            sel.close()
            _close(a)
            _close(b)


def _close(s):
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
