# bench_lib.sh — what the bench/*.sh scripts share; sourced, never run.
#
#   run NAME IMPL CMD...   times CMD (output to /dev/null), prints one
#                          JSON line {"bench","impl","seconds",
#                          "peak_rss_mib"} and remembers the seconds
#   median NAME/IMPL       the median of NAME/IMPL's remembered seconds
#   ratio A B              "median(A)/median(B) (a s / b s)"
#   tools SHARED DATA      builds SHARED's datagen and C baselines (bl)
#                          into DATA/datagen and DATA/bl
#
# A sync before each run: the previous run's unflushed output would slow
# this one.
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
median() {
  tr ' ' '\n' <<< "${SECS[$1]}" | sed '/^$/d' | sort -n |
    awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$(median "$1")" -v b="$(median "$2")" 'BEGIN { printf "%.2f (%s s / %s s)", a / b, a, b }'; }
tools() {
  mkdir -p "$2"
  cc -O2 -std=c99 -ffp-contract=off -o "$2/datagen" "$1/datagen/datagen.c" -lm
  cc -O2 -pthread -o "$2/bl" "$1/baselines/bl.c" -lm
}
