# The two commands a newcomer needs: `make demo` and `make test`.
# Both install what is missing (ClickHouse) on Debian/Ubuntu first.

CARGO ?= cargo
DATA_DIR ?= ./data
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: deps build demo test lint bench fuzz clean

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

# Each fuzz target for FUZZ_SECONDS (default 60); not part of `test`.
# See fuzz/README.md.
FUZZ_SECONDS ?= 60
fuzz:
	CARGO=$(CARGO) FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

clean:
	$(CARGO) clean
