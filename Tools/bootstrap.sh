#!/usr/bin/env bash
# Installs what building and testing SwiftKeeper needs on Debian, and only what is missing:
#   liblmdb-dev, zlib1g-dev        the store and the log (system library targets)
#   libjemalloc-dev                the server's memory allocator (system library target)
#   zookeeper, zookeeper-bin       zkCli.sh, the C client cli_mt and a reference Apache ZooKeeper
#                                  for the interop tests (only with --interop)
#   kazoo, pytest (PyPI)           the Python client for the interop tests (only with --interop)
# Usage: Tools/bootstrap.sh [--interop]
set -euo pipefail

interop=0
[ "${1:-}" = "--interop" ] && interop=1

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

want=()
pkg-config --exists lmdb 2>/dev/null || want+=(liblmdb-dev)
pkg-config --exists zlib 2>/dev/null || want+=(zlib1g-dev)
pkg-config --exists jemalloc 2>/dev/null || want+=(libjemalloc-dev)
command -v pkg-config >/dev/null 2>&1 || want+=(pkg-config)
if [ "$interop" = 1 ]; then
    [ -x /usr/share/zookeeper/bin/zkCli.sh ] || want+=(zookeeper)
    [ -x /usr/lib/zookeeper/bin/cli_mt ] || want+=(zookeeper-bin)
fi
if [ "${#want[@]}" -gt 0 ]; then
    echo "bootstrap: installing ${want[*]}"
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${want[@]}" >/dev/null
fi
if [ "$interop" = 1 ]; then
    python3 -c 'import kazoo, pytest' 2>/dev/null || python3 -m pip install -q kazoo pytest
fi
