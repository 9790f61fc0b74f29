# The two commands a newcomer needs: `make demo` and `make test`.
# Both install what is missing (ClickHouse) on Debian/Ubuntu first.

CARGO ?= cargo
DATA_DIR ?= ./data
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: deps build demo test lint bench bench-scale fuzz clean

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --release -p throughline

# Starts everything with a private ClickHouse under $(DATA_DIR), loads the
# sample trace, and serves until Ctrl-C.
demo: build
	@scripts/demo.sh $(TARGET_DIR)/release/throughline $(DATA_DIR)

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Lint, then every test against a private ClickHouse started for this run.
test: lint
	CARGO=$(CARGO) scripts/with-clickhouse.sh scripts/cargo-test.sh

# Ingest end to end through the spool vs ClickHouse alone (spans/s, p99, peak
# RSS, bytes per span), correlator catch-up and lag, and console page times,
# each against a private ClickHouse; see BENCHMARKS.md.
bench: deps
	scripts/with-clickhouse.sh $(CARGO) bench -p throughline --bench ingest
	scripts/with-clickhouse.sh $(CARGO) bench -p throughline-engine --bench correlator
	scripts/with-clickhouse.sh $(CARGO) bench -p throughline --bench pages

# Issue 16's scale benchmark: SCALE_SPANS spans and SCALE_EVENTS events
# through a real `throughline up` (release, its own private ClickHouse),
# correlator catch-up, reads under live load, peak RSS, bytes per span; the
# table goes to $(TARGET_DIR)/bench-scale.md. Takes long at full size; try
# `make bench-scale SCALE_SPANS=200000 SCALE_EVENTS=40000` first.
SCALE_SPANS ?= 10000000
SCALE_EVENTS ?= 2000000
bench-scale: deps
	SCALE_SPANS=$(SCALE_SPANS) SCALE_EVENTS=$(SCALE_EVENTS) $(CARGO) bench -p throughline --bench scale

# Each fuzz target for FUZZ_SECONDS (default 60); not part of `test`.
# See fuzz/README.md.
FUZZ_SECONDS ?= 60
fuzz:
	CARGO=$(CARGO) FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

clean:
	$(CARGO) clean
