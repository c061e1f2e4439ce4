# bench_lib.sh — what the bench/*.sh scripts share; sourced, never run.
#
#   run NAME IMPL CMD...   times CMD (output to /dev/null), prints one
#                          JSON line {"bench","impl","seconds",
#                          "peak_rss_mib"} and remembers the seconds
#   median NAME/IMPL       the median of NAME/IMPL's remembered seconds
#   ratio A B              "median(A)/median(B) (a s / b s)"
#   tools SHARED DATA      builds SHARED's datagen and C baselines (bl)
#                          into DATA/datagen and DATA/bl
#   options USAGE KNOWN ARGS...
#                          reads --shared, --data, --master, --runs into
#                          SHARED, DATA, MASTER, RUNS, and the options named
#                          in KNOWN (space-separated, each taking a value)
#                          into OPT[name]; anything else prints USAGE and
#                          exits 2
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
declare -A OPT
options() {
  local usage=$1 known=" $2 "; shift 2
  while [ $# -gt 0 ]; do
    [ $# -gt 1 ] || { echo "usage: $usage" >&2; exit 2; }
    case $1 in
      --shared) SHARED=$2 ;;
      --data) DATA=$2 ;;
      --master) MASTER=$2 ;;
      --runs) RUNS=$2 ;;
      *) if [[ $known == *" $1 "* && $# -gt 1 ]]; then OPT[$1]=$2
         else echo "usage: $usage" >&2; exit 2; fi ;;
    esac
    shift 2
  done
}
