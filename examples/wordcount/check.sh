#!/bin/sh
# check.sh WORDCOUNT INPUT — runs the wordcount driver on INPUT in
# local[2] and local-cluster[2,1,512] and compares each with a reference
# count made by tr/sort/uniq (words = runs of non-white-space bytes).
set -eu
wc_bin=$1
input=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
LC_ALL=C tr ' \t\n\v\f\r' '\n\n\n\n\n\n' < "$input" | grep -v '^$' |
  LC_ALL=C sort | LC_ALL=C uniq -c |
  awk '{ printf "%s\t%s\n", $2, $1 }' | LC_ALL=C sort > "$tmp/expected"
for master in 'local[2]' 'local-cluster[2,1,512]'; do
  "$wc_bin" --master "$master" "$input" | LC_ALL=C sort > "$tmp/got"
  if ! cmp -s "$tmp/expected" "$tmp/got"; then
    echo "wordcount on $master differs from the reference:"
    diff "$tmp/expected" "$tmp/got" | head -20
    exit 1
  fi
done
echo "wordcount matches the reference ($(wc -l < "$tmp/expected") words)"
