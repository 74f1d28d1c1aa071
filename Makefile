# The two commands a newcomer needs (see README.md):
#   make run    build and start a standalone server on 127.0.0.1:2181, data in ./swiftkeeper-data
#   make test   build and run every test: unit, model-based, simulation, real-client interop, and
#               real ensembles under faults
.PHONY: run test unit interop ensemble bootstrap build

bootstrap:
	Tools/bootstrap.sh

build: bootstrap
	swift build -c release --product swiftkeeper

run: build
	.build/release/swiftkeeper serve

unit: bootstrap
	swift test

# The interop suite drives the debug binary that `swift test` already compiled most of, which
# keeps CI short; Tests/Interop/run.sh on its own builds and tests the release binary.
interop:
	Tools/bootstrap.sh --interop
	swift build --product swiftkeeper
	SK_BINARY=$(CURDIR)/.build/debug/swiftkeeper bash Tests/Interop/run.sh

# Real 3- and 5-node ensembles under leader kills, pauses, partitions and wiped nodes, histories
# checked for linearizable writes and no lost acknowledged write (CI-sized: 2 rounds each;
# SK_ENSEMBLE_ROUNDS=10 for a longer run, see Tests/Ensemble/README.md).
ensemble:
	Tools/bootstrap.sh --interop
	swift build --product swiftkeeper
	SK_BINARY=$(CURDIR)/.build/debug/swiftkeeper bash Tests/Ensemble/run.sh

test: unit interop ensemble
