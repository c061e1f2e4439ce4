#!/usr/bin/env bash
# shuffle_bench.sh — word count and TeraSort on the 1 GiB datagen inputs,
# timed as whole processes next to the hand-written C baselines.
#
#   bench/shuffle_bench.sh [--shared DIR] [--data DIR] [--master URL] [--runs N]
#
#   --shared DIR  the folder holding datagen/ and baselines/ (../shared)
#   --data DIR    where the inputs are generated once (default /tmp/ember-bench-data)
#   --master URL  the master for ember (default local[2])
#   --runs N      runs of each, alternating ember and the baselines; the
#                 ratios are of the medians (default 3)
#
# Needs a built tree (build/, as ./dev.sh run leaves it: build/examples/
# wordcount and build/examples/terasort). Prints one JSON line per run:
#   {"bench":"wordcount","impl":"ember","seconds":S,"peak_rss_mib":M,...}
# and the ratios of the median seconds at the end. Never part of the
# test run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
SHARED=$ROOT/../shared
DATA=/tmp/ember-bench-data
MASTER='local[2]'
RUNS=3
. "$ROOT/bench/bench_lib.sh"
options "$0 [--shared DIR] [--data DIR] [--master URL] [--runs N]" "" "$@"
tools "$SHARED" "$DATA"
[ -f "$DATA/text_1g.txt" ] || "$DATA/datagen" text -o "$DATA/text_1g.txt"
[ -f "$DATA/tera_10m.dat" ] || "$DATA/datagen" terasort -o "$DATA/tera_10m.dat"

OUT=$DATA/out
rm -rf "$OUT"; mkdir -p "$OUT"
for ((i = 0; i < RUNS; i++)); do
  run wordcount ember build/examples/wordcount --master "$MASTER" "$DATA/text_1g.txt"
  run wordcount bl "$DATA/bl" wc -t 2 "$DATA/text_1g.txt" "$OUT/bl-wc.txt"
  if [ -x build/examples/terasort ]; then
    rm -rf "$OUT/tera"
    run terasort ember build/examples/terasort --master "$MASTER" "$DATA/tera_10m.dat" "$OUT/tera"
    run terasort bl "$DATA/bl" sort -t 2 "$DATA/tera_10m.dat" "$OUT/bl-sort.dat"
    if [ "$i" = 0 ]; then # minutes each: once
      run terasort coreutils env LC_ALL=C sort --parallel=2 -S 1G -o "$OUT/sort.txt" "$DATA/tera_10m.dat"
    fi
  fi
done
echo "wordcount ember/bl: $(ratio wordcount/ember wordcount/bl)"
if [ -n "${SECS[terasort/ember]:-}" ]; then
  echo "terasort ember/bl: $(ratio terasort/ember terasort/bl)"
  echo "terasort coreutils/ember: $(ratio terasort/coreutils terasort/ember)"
fi
