#!/bin/sh
# Runs every fuzz target (or those in FUZZ_TARGETS) for FUZZ_SECONDS each
# (default 60), from the seeds in fuzz/seeds and the corpus earlier runs
# left in fuzz/corpus. Installs cargo-fuzz when missing. cargo-fuzz wants a
# nightly compiler; RUSTC_BOOTSTRAP=1 lets the stable one take its flags.
# FUZZ_SANITIZER: address (default) or none.
set -eu
cargo=${CARGO:-cargo}
seconds=${FUZZ_SECONDS:-60}
sanitizer=${FUZZ_SANITIZER:-address}
command -v cargo-fuzz >/dev/null 2>&1 || $cargo install cargo-fuzz --locked
cd "$(dirname "$0")/../fuzz"
targets=${FUZZ_TARGETS:-$($cargo fuzz list)}
for target in $targets; do
    echo "== $target: ${seconds}s"
    mkdir -p "corpus/$target"
    RUSTC_BOOTSTRAP=1 $cargo fuzz run -s "$sanitizer" "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done
