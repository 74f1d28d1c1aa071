#!/usr/bin/env python3
"""A recording TCP proxy for ZooKeeper's client protocol.

It listens on --listen, forwards every connection to --upstream, and writes one fixture file
per connection into --out: the frames each side sent, in order, as hex.

    C <hex>    a frame payload the client sent (without its 4-byte length)
    S <hex>    a frame payload the server sent
    C4 <hex>   the raw bytes of a four-letter-word command (the first 4 bytes, + stmk's mask)
    S4 <hex>   the server's raw text answer to it

With --raw, nothing is parsed: each side's bytes are written in the chunks they arrived in,
`I <hex>` for the side that opened the connection and `A <hex>` for the side that accepted it
(peer connections: quorum packets are not length-prefixed).

SIGUSR1 drops every open connection (both sides), so that a client reconnects and sends
SetWatches. SIGTERM stops the proxy after writing what it has.
"""
import argparse
import os
import select
import signal
import socket
import struct
import threading

FOUR_LETTER_WORDS = {w.encode() for w in
                     "conf cons crst dirs dump envi gtmk ruok stmk srvr srst stat wchc wchp wchs mntr isro hash".split()}


class Recorder:
    def __init__(self, path, header, raw=False):
        self.path = path
        self.raw = raw
        self.lines = ["# " + h for h in header]
        self.lock = threading.Lock()
        self.buffers = {"C": b"", "S": b""}
        self.four_letter = False
        self.first = True

    def feed(self, side, data):
        with self.lock:
            if self.raw:
                self.lines.append(f"{'I' if side == 'C' else 'A'} {data.hex()}")
                return
            if side == "C" and self.first:
                self.first = False
                if data[:4] in FOUR_LETTER_WORDS:
                    self.four_letter = True
            if self.four_letter:
                self.lines.append(f"{side}4 {data.hex()}")
                return
            buf = self.buffers[side] + data
            while len(buf) >= 4:
                (length,) = struct.unpack(">i", buf[:4])
                if len(buf) < 4 + length:
                    break
                self.lines.append(f"{side} {buf[4:4 + length].hex()}")
                buf = buf[4 + length:]
            self.buffers[side] = buf

    def close(self):
        with self.lock:
            for side, rest in self.buffers.items():
                if rest:
                    self.lines.append(f"# {side} left {len(rest)} bytes of an incomplete frame")
            with open(self.path, "w") as f:
                f.write("\n".join(self.lines) + "\n")


def pump(conn, upstream, recorder, live):
    pairs = {conn: (upstream, "C"), upstream: (conn, "S")}
    try:
        while True:
            readable, _, _ = select.select(list(pairs), [], [], 1.0)
            if not live.is_set():
                break
            for s in readable:
                data = s.recv(65536)
                if not data:
                    return
                target, side = pairs[s]
                recorder.feed(side, data)
                target.sendall(data)
    except OSError:
        pass
    finally:
        for s in (conn, upstream):
            try:
                s.close()
            except OSError:
                pass
        recorder.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--upstream", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--comment", action="append", default=[])
    parser.add_argument("--raw", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", args.listen))
    server.listen(16)

    connections = []  # (live flag, thread)
    counter = [0]

    def drop_all(*_):
        for live, _thread in connections:
            live.clear()

    def stop(*_):
        drop_all()
        for _live, thread in connections:
            thread.join(5)
        os._exit(0)

    signal.signal(signal.SIGUSR1, drop_all)
    signal.signal(signal.SIGTERM, stop)

    while True:
        try:
            conn, _ = server.accept()
        except InterruptedError:
            continue
        try:
            upstream = socket.create_connection(("127.0.0.1", args.upstream))
        except OSError:
            conn.close()  # the upstream is not listening yet: the peer retries
            continue
        counter[0] += 1
        extension = "stream" if args.raw else "frames"
        path = os.path.join(args.out, f"{args.label}-{counter[0]:02d}.{extension}")
        recorder = Recorder(path, [f"client: {args.label}", *args.comment], raw=args.raw)
        live = threading.Event()
        live.set()
        thread = threading.Thread(target=pump, args=(conn, upstream, recorder, live), daemon=True)
        connections.append((live, thread))
        thread.start()


if __name__ == "__main__":
    main()
