#!/usr/bin/env bash
# Runs the real-client interop suite (kazoo, zkCli.sh, cli_mt) against a server it starts.
#   SK_SERVER=swiftkeeper (default)  build .build/release/swiftkeeper and test it
#                                    (set SK_BINARY to test another binary; no build then)
#   SK_SERVER=zookeeper              test the Debian zookeeper package's Apache ZooKeeper
#   SK_SEED=<n>                      replay the seeded parts (durability kill point, workloads)
# Installs nothing (`make interop` runs Tools/bootstrap.sh --interop first). Extra arguments go
# to pytest, e.g. `Tests/Interop/run.sh -k watches`. Exits with pytest's status.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "${SK_SERVER:-swiftkeeper}" = "swiftkeeper" ] && [ -z "${SK_BINARY:-}" ]; then
    swift build -c release --product swiftkeeper
fi
exec python3 -m pytest -q Tests/Interop "$@"
