# The two commands a newcomer needs (see README.md):
#   make run    build and start a standalone server on 127.0.0.1:2181, data in ./swiftkeeper-data
#   make test   build and run every test: unit, model-based, and real-client interop
.PHONY: run test unit interop bootstrap build

bootstrap:
	Tools/bootstrap.sh

build: bootstrap
	swift build -c release --product swiftkeeper

run: build
	.build/release/swiftkeeper serve

unit: bootstrap
	swift test

interop:
	Tools/bootstrap.sh --interop
	@if [ -f Tests/Interop/run.sh ]; then bash Tests/Interop/run.sh; else echo "interop: no interop suite yet"; fi

test: unit interop
