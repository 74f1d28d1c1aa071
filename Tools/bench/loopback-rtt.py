#!/usr/bin/env python3
"""One TCP round trip on loopback, the floor under a serial request's latency.

    Tools/bench/loopback-rtt.py [--count 20000] [--size 100]

An echo server process (forked, so no interpreter lock is shared) and a client exchange SIZE-byte messages one at a time over 127.0.0.1
with TCP_NODELAY (as ZooKeeper clients and servers set it); prints p50/p99 of the round trip.
Python's own overhead is inside the figure, so it is an upper bound of the kernel's RTT.
"""

import argparse
import socket
import statistics
import os
import time


def echo(listener, size):
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with conn:
        while True:
            data = b""
            while len(data) < size:
                chunk = conn.recv(size - len(data))
                if not chunk:
                    return
                data += chunk
            conn.sendall(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    child = os.fork()
    if child == 0:
        try:
            echo(listener, args.size)
        finally:
            os._exit(0)
    address = listener.getsockname()
    listener.close()
    client = socket.create_connection(address)
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    message = bytes(args.size)
    samples = []
    for i in range(args.count + 1000):
        started = time.perf_counter_ns()
        client.sendall(message)
        got = 0
        while got < args.size:
            chunk = client.recv(args.size - got)
            if not chunk:
                raise SystemExit("echo server closed the connection")
            got += len(chunk)
        if i >= 1000:  # the first thousand warm up
            samples.append((time.perf_counter_ns() - started) / 1000)
    client.close()
    os.waitpid(child, 0)
    samples.sort()
    p99 = samples[int(len(samples) * 0.99)]
    print(f"loopback TCP round trip, {args.size} B, {args.count} samples: "
          f"p50 {statistics.median(samples):.1f} us, p99 {p99:.1f} us")


if __name__ == "__main__":
    main()
