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
while [ $# -gt 0 ]; do
  case $1 in
    --shared) SHARED=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --master) MASTER=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) echo "usage: $0 [--shared DIR] [--data DIR] [--master URL] [--runs N]" >&2; exit 2 ;;
  esac
done
mkdir -p "$DATA"
cc -O2 -std=c99 -ffp-contract=off -o "$DATA/datagen" "$SHARED/datagen/datagen.c" -lm
cc -O2 -pthread -o "$DATA/bl" "$SHARED/baselines/bl.c" -lm
[ -f "$DATA/text_1g.txt" ] || "$DATA/datagen" text -o "$DATA/text_1g.txt"
[ -f "$DATA/tera_10m.dat" ] || "$DATA/datagen" terasort -o "$DATA/tera_10m.dat"

# run NAME IMPL CMD...: times CMD, prints a JSON line, remembers seconds.
# A sync first: the previous run's unflushed output would slow this one.
declare -A SECS
run() {
  local name=$1 impl=$2; shift 2
  sync
  local t; t=$(mktemp)
  /usr/bin/time -f '%e %M' -o "$t" "$@" > /dev/null
  read -r s kb < "$t"; rm -f "$t"
  SECS[$name/$impl]="${SECS[$name/$impl]:-} $s"
  printf '{"bench":"%s","impl":"%s","seconds":%s,"peak_rss_mib":%d}\n' \
    "$name" "$impl" "$s" $((kb / 1024))
}
# median NAME/IMPL: the median of its runs' seconds.
median() {
  tr ' ' '\n' <<< "${SECS[$1]}" | sed '/^$/d' | sort -n |
    awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

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
ratio() { awk -v a="$(median "$1")" -v b="$(median "$2")" 'BEGIN { printf "%.2f (%s s / %s s)", a / b, a, b }'; }
echo "wordcount ember/bl: $(ratio wordcount/ember wordcount/bl)"
if [ -n "${SECS[terasort/ember]:-}" ]; then
  echo "terasort ember/bl: $(ratio terasort/ember terasort/bl)"
  echo "terasort coreutils/ember: $(ratio terasort/coreutils terasort/ember)"
fi
