#!/usr/bin/env bash
# Runs the ensemble fault suite: real 3- and 5-node ensembles (and an observer) on loopback under
# recorded client load, with leader kills, pauses, partitions and wiped nodes; the checker must
# find zero violations and zero lost acknowledged writes.
#   SK_SERVER=swiftkeeper (default)  build .build/debug/swiftkeeper and test it
#                                    (set SK_BINARY to test another binary; no build then)
#   SK_SERVER=zookeeper              test the Debian zookeeper package's Apache ZooKeeper
#   SK_ENSEMBLE_ROUNDS=<n>           repeat every fault n times (default 2: CI-sized)
#   SK_SEED=<n>                      replay a run's random choices (printed in the header)
#   SK_KEEP_DATA=1                   keep the nodes' directories and logs (under $TMPDIR)
# Installs nothing (Tools/bootstrap.sh --interop installs zookeeper, kazoo and pytest). Extra
# arguments go to pytest, e.g. `Tests/Ensemble/run.sh -k partition`. Exits with pytest's status.
# Failover time is a separate command: python3 Tests/Ensemble/failover.py --help
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "${SK_SERVER:-swiftkeeper}" = "swiftkeeper" ] && [ -z "${SK_BINARY:-}" ]; then
    swift build --product swiftkeeper
fi
exec python3 -m pytest -q -p no:cacheprovider Tests/Ensemble "$@"
