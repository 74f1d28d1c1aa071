"""Drive the command-line clients shipped with ZooKeeper: zkCli.sh (Java) one command per
process, or interactively through a pipe; cli_mt (C) always interactively. Output is awaited
with a deadline by pattern, never by sleeping."""

import os
import re
import select
import subprocess
import time

from serverctl import CLI_MT, ZKCLI

COMMAND_DEADLINE_S = 60.0  # a JVM start on a loaded 2-core machine
EXPECT_DEADLINE_S = 30.0


def zkcli(hosts, *args):
    """Run one zkCli.sh command; returns (exit status, combined output)."""
    done = subprocess.run([ZKCLI, "-server", hosts, *args], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=COMMAND_DEADLINE_S)
    return done.returncode, done.stdout.decode("utf-8", errors="replace")


class Interactive:
    """A client process fed commands on stdin; ``expect`` waits for a pattern in its output."""

    def __init__(self, argv):
        self.argv = argv
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)
        os.set_blocking(self.process.stdout.fileno(), False)
        self.buffer = ""
        self.transcript = ""

    def send(self, line):
        self.process.stdin.write((line + "\n").encode())
        self.process.stdin.flush()

    def expect(self, pattern, timeout=EXPECT_DEADLINE_S):
        """Wait until ``pattern`` (a regex) appears in unread output; consume output up to the
        end of the match and return the match."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.buffer)
            if match:
                self.buffer = self.buffer[match.end():]
                return match
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{os.path.basename(self.argv[0])}: no {pattern!r} within {timeout}s; "
                    f"unread output:\n{self.buffer}\nwhole transcript:\n{self.transcript}")
            ready, _, _ = select.select([self.process.stdout], [], [], min(remaining, 0.2))
            if ready:
                data = self.process.stdout.read()
                if data:
                    text = data.decode("utf-8", errors="replace")
                    self.buffer += text
                    self.transcript += text
                elif self.process.poll() is not None:
                    raise AssertionError(f"{self.argv[0]} exited ({self.process.returncode}) "
                                         f"before printing {pattern!r}:\n{self.transcript}")

    def command(self, line, pattern, timeout=EXPECT_DEADLINE_S):
        self.send(line)
        return self.expect(pattern, timeout)

    def close(self, quit_command="quit"):
        if self.process.poll() is None:
            try:
                self.send(quit_command)
                self.process.stdin.close()
                self.process.wait(timeout=10)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait(timeout=10)


def zkcli_interactive(hosts):
    session = Interactive([ZKCLI, "-server", hosts])
    session.expect(r"WatchedEvent state:SyncConnected type:None path:null")
    return session


def cli_mt(hosts):
    session = Interactive([CLI_MT, hosts])
    session.expect(r"Got a new session id: 0x[0-9a-f]+")
    return session
