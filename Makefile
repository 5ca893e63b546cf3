# Coil's commands. `make test` is what CI runs; every target installs liburing-dev when missing.
SWIFT ?= swift

.PHONY: deps test test-plain test-tsan demo bench stress clean

deps:
	@scripts/ensure-deps.sh

# The whole suite, then the whole suite again under ThreadSanitizer.
test: deps test-plain test-tsan

test-plain: deps
	$(SWIFT) test

test-tsan: deps
	$(SWIFT) test --sanitize=thread

# The main demo: queue throughput and io_uring NOP throughput, Coil from Swift beside C and a
# mutex baseline, as a short table (release build, about a minute).
demo: deps
	cd Benchmarks && $(SWIFT) run -c release coil-demo

# The full package-benchmark suite (throughput, latency and allocation counts).
bench: deps
	cd Benchmarks && $(SWIFT) package --disable-sandbox benchmark

# Long stress runs of the concurrent queues (50x the CI size), plain and under ThreadSanitizer.
stress: deps
	COIL_STRESS_SCALE=50 $(SWIFT) test -c release --filter 'Stress'
	COIL_STRESS_SCALE=10 $(SWIFT) test --sanitize=thread --filter 'Stress|Wake'

clean:
	rm -rf .build Benchmarks/.build
