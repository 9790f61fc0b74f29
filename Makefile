# The two commands a newcomer needs: `make demo` and `make test`.
# Both install what is missing (ClickHouse) on Debian/Ubuntu first.

CARGO ?= cargo
DATA_DIR ?= ./data
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: deps build demo test test-cluster lint bench bench-cluster bench-forward bench-scale fuzz clean

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

# Lint, then every test against a private ClickHouse 18.16 started for this
# run, then the integration tests again on the current engine (ClickHouse
# 26.x as chDB behind scripts/chdb-server.py, about two minutes): the
# store's reads and writes, migrations from an empty database and from
# earlier releases' databases, pages, API, correlator and alerts end to end
# (in process, and `up::a_throughline_up_on_the_runs_clickhouse_...`: the
# binary).
# Left to 18.16 alone: the faults that stop, freeze or start a
# clickhouse-server of their own (`a_clickhouse_outage`, `a_frozen_clickhouse`,
# `a_collector_started_while_clickhouse_is_down`: chDB cannot be stopped
# apart from its front, and those tests start 18.16 whatever the URL), `up`
# starting its own clickhouse-server (`up::up_`), `browser::` (the
# console's HTML in Chromium: the same pages `pages::` reads on both), and
# `faults::a_two_minute_cut` (two minutes of an edge's link cut: it tests
# forwarding, not SQL, and the SQL it runs is the other tests').
# Last, `cluster::` on two 18.16 servers forming a cluster of two shards
# without ZooKeeper (scripts/with-cluster.sh, about ten seconds); the runs
# before it have no cluster and skip it.
CHDB_SKIP := --skip faults::a_clickhouse_outage --skip faults::a_frozen_clickhouse \
	--skip faults::a_collector_started_while_clickhouse_is_down --skip up::up_ --skip browser:: \
	--skip faults::a_two_minute_cut
test: lint
	CARGO=$(CARGO) scripts/with-clickhouse.sh scripts/cargo-test.sh
	CARGO=$(CARGO) scripts/with-chdb.sh scripts/cargo-test.sh -p throughline --test it -- $(CHDB_SKIP)
	CARGO=$(CARGO) scripts/with-cluster.sh scripts/cargo-test.sh -p throughline --test it -- cluster::

# Not part of `test`: Throughline on a cluster of 2 shards x 2 replicas
# (ReplicatedMergeTree, `clickhouse_replicated`) with a private ZooKeeper
# (Debian's `zookeeper` 3.8) and four private 18.16 servers
# (scripts/with-replicated-cluster.sh): migrate, ingest through two
# collectors while one replica is killed (SIGKILL) and started again;
# nothing acknowledged is lost, reads keep working, the replica catches up.
# Under a minute once built (start-up, and the test, most of it waiting for the
# killed replica's ZooKeeper session to run out before it replicates again).
test-cluster: deps
	CARGO=$(CARGO) scripts/with-replicated-cluster.sh scripts/cargo-test.sh -p throughline --test it -- cluster_replicated::

# Ingest end to end through the spool vs ClickHouse alone (spans/s, p99, peak
# RSS, bytes per span), correlator catch-up and lag, and console page times,
# each against a private ClickHouse; see BENCHMARKS.md.
bench: deps
	scripts/with-clickhouse.sh $(CARGO) bench -p throughline --bench ingest
	scripts/with-clickhouse.sh $(CARGO) bench -p throughline-engine --bench correlator
	scripts/with-clickhouse.sh $(CARGO) bench -p throughline --bench pages

# Issue 19's forwarding benchmark: an edge collector forwarding to a
# central one over loopback (spans/s), and the catch-up after a backlog of
# BENCH_BACKLOG_BYTES (1 GiB) built while central was stopped; see
# BENCHMARKS.md. A few minutes; about 3 GB of disk under TMPDIR meanwhile.
bench-forward: deps
	scripts/with-clickhouse.sh $(CARGO) bench -p throughline --bench forward

# Two collectors into a cluster of two shards (scripts/with-cluster.sh) vs
# one and two collectors into one server, end to end, with CPU seconds;
# BENCH_SPANS (500 000) and BENCH_CLIENTS (8); see BENCHMARKS.md.
bench-cluster: deps
	scripts/with-cluster.sh $(CARGO) bench -p throughline --bench cluster_ingest

# Issue 16's scale benchmark: SCALE_SPANS spans and SCALE_EVENTS events
# through a real `throughline up` (release, its own private ClickHouse),
# correlator catch-up, reads under live load, peak RSS, bytes per span; the
# table goes to $(TARGET_DIR)/bench-scale.md. Takes long at full size; try
# `make bench-scale SCALE_SPANS=200000 SCALE_EVENTS=40000` first.
# SCALE_KEEP=1 keeps the run's data directory; SCALE_REUSE=<that dir>
# re-measures the live load and the reads on it in minutes; SCALE_BIN=<a
# throughline binary> runs another build under the same bench (an A/B).
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
