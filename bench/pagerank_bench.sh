#!/usr/bin/env bash
# pagerank_bench.sh — PageRank, 10 iterations, with its links dataset
# cached and with --no-cache (issue 6's target: cached at least 2x
# faster), next to the hand-written C baseline (bl pagerank).
#
#   bench/pagerank_bench.sh [--shared DIR] [--data DIR] [--master URL]
#                           [--runs N] [--graph small|reference]
#
#   --graph small      datagen graph --vertices 100k --edges 1M
#   --graph reference  datagen graph with its defaults: 1M vertices, 10M
#                      edges (the datagen README's reference graph)
#   other options as bench/shuffle_bench.sh (--runs default 3)
#
# Needs a built tree (build/examples/pagerank, as ./dev.sh run leaves it).
# Prints one JSON line per run and the ratios of the medians. Checks that
# the cached and uncached runs print the same ranks. Never part of the
# test run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
SHARED=$ROOT/../shared
DATA=/tmp/ember-bench-data
MASTER='local[2]'
RUNS=3
GRAPH=small
. "$ROOT/bench/bench_lib.sh"
options "$0 [--shared DIR] [--data DIR] [--master URL] [--runs N] [--graph small|reference]" "--graph" "$@"
GRAPH=${OPT[--graph]:-$GRAPH}
tools "$SHARED" "$DATA"
case $GRAPH in
  small) IN=$DATA/graph_100k_1m.tsv
         [ -f "$IN" ] || "$DATA/datagen" graph --vertices 100k --edges 1M -o "$IN" ;;
  reference) IN=$DATA/graph_1m_10m.tsv
             [ -f "$IN" ] || "$DATA/datagen" graph -o "$IN" ;;
  *) echo "$0: --graph small or reference, not '$GRAPH'" >&2; exit 2 ;;
esac
PR=build/examples/pagerank
OUT=$DATA/out
rm -rf "$OUT"; mkdir -p "$OUT"
for ((i = 0; i < RUNS; i++)); do
  run pagerank cached $PR --master "$MASTER" "$IN"
  run pagerank uncached $PR --master "$MASTER" --no-cache "$IN"
  run pagerank bl "$DATA/bl" pagerank -t 2 -n 10 "$IN" "$OUT/bl-ranks.tsv"
done
# the same ranks either way (any order)
$PR --master "$MASTER" "$IN" | sort > "$OUT/cached.tsv"
$PR --master "$MASTER" --no-cache "$IN" | sort > "$OUT/uncached.tsv"
cmp -s "$OUT/cached.tsv" "$OUT/uncached.tsv" ||
  { echo "$0: cached and uncached ranks differ" >&2; exit 1; }
echo "pagerank uncached/cached: $(ratio pagerank/uncached pagerank/cached)"
echo "pagerank cached/bl: $(ratio pagerank/cached pagerank/bl)"
