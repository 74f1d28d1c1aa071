#!/usr/bin/env python3
"""What a log's disk does with fdatasync: new space, syncs that overlap, work beside a sync.

    Tools/bench/log-disk.py --dir DIR_ON_THE_LOG_DISK [--batch 49152] [--syncs 600] [--rounds 2]

Three experiments, each a plain pwrite + fdatasync loop in one file (no SwiftKeeper code), so
that a figure about the log can be checked against the disk itself:

- space: how the file's space was made before the batches land in it. `zeroed`: zero-filled
  and synced before the loop starts; `zero-fill-ahead`: a second thread zero-fills 256 KiB
  chunks at most 4 MiB ahead of the writer and starts each chunk's write-back at once
  (sync_file_range), as KeeperLog's preallocator does; `sparse`: the file grows with each
  write (ZooKeeper's padding leaves such holes); `fallocate`: posix_fallocate'd (unwritten
  extents). Prints syncs/s, MB/s of batches and the fdatasync p50/p99 of each.
- threads: 1, 2 and 4 threads each appending --batch bytes and syncing, so that one sync
  overlaps the next (pipelined group commit): total syncs/s and the p50/p99 of one sync.
- overlap: one writer that, between its pwrite and its fdatasync, spends 0, 40 or 80 us of
  CPU (a busy loop standing in for work that does not need the batch durable), either as is
  or after starting the batch's write-back at once (sync_file_range WRITE). Prints the p50 and
  p99 from pwrite to the end of fdatasync: how much of such work the disk's write can hide.
- pages: the system time of zero-filling a new file in 256 KiB chunks (synced every 4 MiB)
  into fresh pages of memory, and with the synced pages more than 8 MiB behind dropped from
  the page cache as it goes (posix_fadvise DONTNEED), as KeeperLog's writer does. Each run
  starts after a pause (--pause), so that memory freed by the previous one has gone back to
  the free pool. Prints microseconds per KiB.

Everything is written under --dir (files named log-disk-*) and removed after.
"""

import argparse
import ctypes
import ctypes.util
import os
import resource
import statistics
import threading
import time

CHUNK = 256 << 10
LEAD = 4 << 20
SYNC_FILE_RANGE_WRITE = 2

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]


def start_writeback(fd, offset, length):
    if _libc.sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"sync_file_range: {os.strerror(err)}")


def zero_fill(fd, start, end):
    zeros = bytes(CHUNK)
    for offset in range(start, end, CHUNK):
        os.pwrite(fd, zeros, offset)


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def space(directory, mode, batch, syncs):
    path = os.path.join(directory, f"log-disk-{mode}")
    size = syncs * batch + LEAD + CHUNK
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        written = [0]
        stop = threading.Event()
        progress = threading.Condition()
        failure = []
        filler = None
        if mode == "zeroed":
            zero_fill(fd, 0, size)
            os.fsync(fd)
        elif mode == "fallocate":
            os.posix_fallocate(fd, 0, size)
            os.fsync(fd)
        elif mode == "zero-fill-ahead":
            zero_fill(fd, 0, LEAD)
            os.fsync(fd)

            def fill():
                try:
                    zeros = bytes(CHUNK)
                    offset = LEAD
                    while offset < size:
                        with progress:
                            # Waits for the writer to come within LEAD of this chunk.
                            while offset >= written[0] + LEAD and not stop.is_set():
                                progress.wait()
                            if stop.is_set():
                                return
                        os.pwrite(fd, zeros, offset)
                        start_writeback(fd, offset, CHUNK)
                        offset += CHUNK
                except OSError as e:
                    failure.append(e)

            filler = threading.Thread(target=fill)
            filler.start()
        data = b"x" * batch
        latencies = []
        began = time.perf_counter()
        for i in range(syncs):
            os.pwrite(fd, data, i * batch)
            with progress:
                written[0] = (i + 1) * batch
                progress.notify()
            t = time.perf_counter()
            os.fdatasync(fd)
            latencies.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - began
        with progress:
            stop.set()
            progress.notify()
        if filler:
            filler.join()
        if failure:
            raise failure[0]
    finally:
        os.close(fd)
        os.unlink(path)
    latencies.sort()
    return syncs / elapsed, syncs * batch / elapsed / 1e6, percentile(latencies, 0.5), percentile(latencies, 0.99)


def threads(directory, count, batch, seconds):
    path = os.path.join(directory, "log-disk-threads")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        zero_fill(fd, 0, 64 << 20)
        os.fsync(fd)
        lock = threading.Lock()
        state = {"offset": 0, "latencies": []}
        deadline = time.perf_counter() + seconds
        data = b"x" * batch

        def append():
            while time.perf_counter() < deadline:
                with lock:
                    offset = state["offset"] % ((64 << 20) - batch)
                    state["offset"] += batch
                os.pwrite(fd, data, offset)
                t = time.perf_counter()
                os.fdatasync(fd)
                with lock:
                    state["latencies"].append(time.perf_counter() - t)

        workers = [threading.Thread(target=append) for _ in range(count)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        os.close(fd)
        os.unlink(path)
    latencies = sorted(state["latencies"])
    return len(latencies) / seconds, percentile(latencies, 0.5), percentile(latencies, 0.99)


def overlap(directory, batch, syncs, work_us, early):
    path = os.path.join(directory, "log-disk-overlap")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        zero_fill(fd, 0, syncs * batch + CHUNK)
        os.fsync(fd)
        data = b"x" * batch
        work = work_us / 1e6
        latencies = []
        for i in range(syncs):
            t = time.perf_counter()
            os.pwrite(fd, data, i * batch)
            if early:
                start_writeback(fd, i * batch, batch)
            until = time.perf_counter() + work
            while time.perf_counter() < until:
                pass
            os.fdatasync(fd)
            latencies.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        os.unlink(path)
    latencies.sort()
    return percentile(latencies, 0.5), percentile(latencies, 0.99)


def pages(directory, total, drop):
    path = os.path.join(directory, "log-disk-pages")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    zeros = bytes(CHUNK)
    system = 0.0
    try:
        for offset in range(0, total, CHUNK):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
            os.pwrite(fd, zeros, offset)
            system += resource.getrusage(resource.RUSAGE_SELF).ru_stime - before
            end = offset + CHUNK
            if end % LEAD == 0:
                os.fdatasync(fd)
                if drop and end > 2 * LEAD:
                    os.posix_fadvise(fd, 0, end - 2 * LEAD, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
        os.unlink(path)
    return system * 1e6 / (total / 1024)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", required=True, help="a directory on the disk that holds the log")
    parser.add_argument("--batch", type=int, default=48 << 10, help="bytes written before each fdatasync")
    parser.add_argument("--syncs", type=int, default=600, help="syncs per space run")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of a threads run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", choices=["space", "threads", "overlap", "pages"])
    parser.add_argument("--pages-mib", type=int, default=512, help="MiB zero-filled per pages run")
    parser.add_argument("--pause", type=float, default=8.0, help="seconds before each pages run")
    args = parser.parse_args()
    if args.only in (None, "space"):
        print(f"== space: {args.batch} B per fdatasync, {args.syncs} syncs, {args.rounds} rounds (median of rounds)")
        modes = ("zeroed", "zero-fill-ahead", "sparse", "fallocate")
        results = {m: [] for m in modes}
        for _ in range(args.rounds):
            for mode in modes:
                results[mode].append(space(args.dir, mode, args.batch, args.syncs))
        print(f"{'space':17s} {'syncs/s':>8s} {'MB/s':>6s} {'p50 ms':>7s} {'p99 ms':>7s}")
        for mode in modes:
            rate, mbps, p50, p99 = (statistics.median(r[i] for r in results[mode]) for i in range(4))
            print(f"{mode:17s} {rate:8.0f} {mbps:6.1f} {p50 * 1e3:7.3f} {p99 * 1e3:7.3f}")
    if args.only in (None, "threads"):
        print(f"== threads: each appends {args.batch} B and syncs, {args.seconds} s, {args.rounds} rounds (median of rounds)")
        print(f"{'threads':>7s} {'syncs/s':>8s} {'p50 ms':>7s} {'p99 ms':>7s}")
        for count in (1, 2, 4):
            runs = [threads(args.dir, count, args.batch, args.seconds) for _ in range(args.rounds)]
            rate, p50, p99 = (statistics.median(r[i] for r in runs) for i in range(3))
            print(f"{count:7d} {rate:8.0f} {p50 * 1e3:7.3f} {p99 * 1e3:7.3f}")
    if args.only in (None, "overlap"):
        print(f"== overlap: {args.batch} B per fdatasync, {args.syncs} syncs, CPU work between pwrite and"
              f" fdatasync, {args.rounds} rounds (median of rounds; ms from pwrite to synced)")
        print(f"{'work us':>7s} {'plain p50':>9s} {'p99':>7s} {'early write-back p50':>20s} {'p99':>7s}")
        for work_us in (0, 40, 80):
            plain, early = [], []
            for _ in range(args.rounds):
                plain.append(overlap(args.dir, args.batch, args.syncs, work_us, early=False))
                early.append(overlap(args.dir, args.batch, args.syncs, work_us, early=True))
            p = [statistics.median(r[i] for r in plain) * 1e3 for i in range(2)]
            e = [statistics.median(r[i] for r in early) * 1e3 for i in range(2)]
            print(f"{work_us:7d} {p[0]:9.3f} {p[1]:7.3f} {e[0]:20.3f} {e[1]:7.3f}")
    if args.only in (None, "pages"):
        print(f"== pages: {args.pages_mib} MiB zero-filled in {CHUNK >> 10} KiB chunks, {args.rounds} rounds"
              f" (median of rounds; system time per KiB)")
        results = {False: [], True: []}
        for _ in range(args.rounds):
            for drop in (False, True):
                time.sleep(args.pause)
                results[drop].append(pages(args.dir, args.pages_mib << 20, drop))
        print(f"fresh pages:           {statistics.median(results[False]):.3f} us/KiB")
        print(f"dropped behind (8 MiB): {statistics.median(results[True]):.3f} us/KiB")


if __name__ == "__main__":
    main()
