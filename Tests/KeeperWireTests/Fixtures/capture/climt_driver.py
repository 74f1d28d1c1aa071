#!/usr/bin/env python3
"""Drives the C client's shell (cli_mt) through every request type its commands produce, and
makes it reconnect once (the proxy drops the connection) so that it re-registers its watches
with SetWatches (101). Usage: climt_driver.py CLI_MT HOST:PORT PROXY_PID"""
import os
import signal
import subprocess
import sys
import time

cli, server, proxy_pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
commands = """
create /cm
create /cm/plain
create +e /cm/eph
create +s /cm/seq-
create +es /cm/eseq-
create +c /cm/cont
create +t=60000 /cm/ttl
create2 /cm/two
create2 +s /cm/two-
create /cm/plain
set /cm/plain newdata
get /cm/plain
get /cm/missing
exists /cm/plain
wexists /cm/later
create /cm/later
ls /cm
ls2 /cm
sync /cm
wexists /cm/never
get /cm/plain
RECONNECT
addauth digest user:secret
config
reconfig -remove 3
delete /cm/later
delete /cm/missing
delete /cm
quit
""".strip().splitlines()

proc = subprocess.Popen([cli, "-h", server], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True)
time.sleep(1.5)
for line in commands:
    if line == "RECONNECT":
        os.kill(proxy_pid, signal.SIGUSR1)  # drop the connection: cli_mt reconnects with SetWatches
        time.sleep(4)
        continue
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    time.sleep(0.4)
out, _ = proc.communicate(timeout=30)
print("cli_mt: done, exit", proc.returncode)
