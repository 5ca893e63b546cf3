# Coil's commands. `make test` is what CI runs; every target installs liburing-dev when missing.
SWIFT ?= swift

.PHONY: deps test test-plain test-tsan fuzz-build fuzz-smoke fuzz demo demo-queues bench bench-queues bench-echo bench-echo-1cpu bench-tokio stress clean

deps:
	@scripts/ensure-deps.sh

# The whole suite, then the whole suite again under ThreadSanitizer, then a one-minute fuzz run.
test: deps test-plain test-tsan fuzz-smoke

test-plain: deps
	$(SWIFT) test

test-tsan: deps
	$(SWIFT) test --sanitize=thread

# The task-state fuzzer (Fuzz/, libFuzzer + AddressSanitizer). lld links it: gold hits an internal
# error on this binary. Crashing inputs are written to Fuzz/crash-*.
FUZZ_BUILD = cd Fuzz && $(SWIFT) build -c release --product task-fuzzer -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld
FUZZ_RUN = cd Fuzz && mkdir -p .build/corpus/task && SWIFT_BACKTRACE=enable=no .build/release/task-fuzzer \
	.build/corpus/task corpus/task -max_len=256

fuzz-build: deps
	$(FUZZ_BUILD)

# Replays the seed corpus, then fuzzes for 60 seconds (part of `make test`).
fuzz-smoke: fuzz-build
	cd Fuzz && $(SWIFT) run -c release task-fuzz-replay corpus/task
	$(FUZZ_RUN) -max_total_time=60

# The long run: ten minutes.
fuzz: fuzz-build
	$(FUZZ_RUN) -max_total_time=600

# The main demo: coil-echo on 127.0.0.1 driven by coil-echo-load at 1, 16 and 64 connections
# for 3 s each (round trips per second, latency), then a graceful SIGINT shutdown.
demo: deps
	SWIFT=$(SWIFT) scripts/echo-demo.sh

# Queue throughput and io_uring NOP throughput, Coil from Swift beside C and a mutex baseline,
# as a short table (release build, about a minute).
demo-queues: deps
	cd Benchmarks && $(SWIFT) run -c release coil-demo

# Coil's bounded queue (from C and from Swift) beside the best queues of ../shared/anchors/queues,
# 15 rounds in a shuffled order, with the ratios paired round by round (~6 minutes).
bench-queues: deps
	scripts/anchors-queues.sh

# coil-echo (1 and 2 workers; connection styles futures, multishot, linked and async) beside the
# C echo servers of ../shared/anchors/uring (io_uring with DEFER_TASKRUN, epoll), all driven by
# the anchors' C load client: 5 rounds in a shuffled order at 1, 16, 64 and 256 connections, 64 B
# and 1 KiB messages (~25 minutes). Prints the table for BENCHMARKS.md.
URING_ANCHOR ?= ../shared/anchors/uring
bench-echo: deps
	$(SWIFT) build -c release --product coil-echo
	python3 scripts/compare-echo.py --anchor $(URING_ANCHOR) --coil $$($(SWIFT) build -c release --show-bin-path)/coil-echo \
		--styles futures,multishot,linked,async --workers 1,2

# The same with client and servers pinned to CPU 0: throughput is then the CPU time per round
# trip of client and server together, free of the VM's vCPU placement (~7 minutes).
bench-echo-1cpu: deps
	$(SWIFT) build -c release --product coil-echo
	python3 scripts/compare-echo.py --anchor $(URING_ANCHOR) --coil $$($(SWIFT) build -c release --show-bin-path)/coil-echo \
		--styles futures,multishot,linked --workers 1 --conns 16,64,256 --pin 0 --port 25500

# The full package-benchmark suite (throughput, latency and allocation counts).
bench: deps
	cd Benchmarks && $(SWIFT) package --disable-sandbox benchmark

# The runtime beside Tokio: builds the Tokio anchor (../shared/anchors/tokio, needs cargo; installs
# Debian's librust-tokio-dev when missing) in a scratch directory and coil-sched-bench, then runs both
# alternately (5 process runs each) and prints the table for BENCHMARKS.md.
TOKIO_ANCHOR ?= ../shared/anchors/tokio
TOKIO_BUILD ?= /tmp/coil-tokio-anchor
bench-tokio: deps
	@dpkg -s librust-tokio-dev >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq librust-tokio-dev; }
	rm -rf $(TOKIO_BUILD) && mkdir -p $(TOKIO_BUILD) && cp -r $(TOKIO_ANCHOR)/Cargo.toml $(TOKIO_ANCHOR)/src $(TOKIO_ANCHOR)/.cargo $(TOKIO_BUILD)/
	cd $(TOKIO_BUILD) && cargo build --release --offline --bin sched_bench
	cd Benchmarks && $(SWIFT) build -c release --product coil-sched-bench
	python3 scripts/compare-tokio.py --tokio $(TOKIO_BUILD)/target/release/sched_bench \
		--coil Benchmarks/.build/release/coil-sched-bench --runs 5

# Long stress runs of the queues, tasks and runtime (50x the CI size), plain and under TSan.
stress: deps
	COIL_STRESS_SCALE=50 $(SWIFT) test -c release --filter 'Stress'
	COIL_STRESS_SCALE=10 $(SWIFT) test --sanitize=thread --filter 'Stress|Wake|Runtime|Sync|TCP|IOLifecycle|UDP|File|ReceiveStream|WriteThenRead|FaultInjection'

clean:
	rm -rf .build Benchmarks/.build Fuzz/.build
