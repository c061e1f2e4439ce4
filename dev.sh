#!/usr/bin/env bash
# dev.sh — the two commands of the README, for a fresh Debian 12 machine.
#
#   ./dev.sh run    install missing packages, build, run the main job (word
#                   count on a generated text, embedded local default)
#   ./dev.sh test   install missing packages, build with warnings as errors,
#                   run the whole suite, build the examples against a staged
#                   install, then run the suite again under AddressSanitizer
#                   + UndefinedBehaviorSanitizer (clang, with the fuzzer)
#
# Both are idempotent: packages already present are not reinstalled, and
# builds are incremental. Output: build/ (build/bin/ember,
# build/lib/ember/plugins/), build/stage (install), build/examples,
# build/asan.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT=$PWD
JOBS=${JOBS:-$(nproc)}

RUN_PACKAGES=(build-essential cmake ninja-build pkg-config libnng-dev
  libsqlite3-dev libcmocka-dev libjansson-dev liblz4-dev libzstd-dev
  libxxhash-dev libexpat1-dev)
TEST_PACKAGES=(clang libclang-rt-14-dev)

say() { printf '\n==> %s\n' "$*"; }

# Installs the named Debian packages that are not installed yet.
ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
      missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# configure_and_build DIR [cmake args...]
configure_and_build() {
  local dir=$1; shift
  cmake -S "$ROOT" -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j "$JOBS"
}

run_main() {
  ensure_packages "${RUN_PACKAGES[@]}"
  say "building ember in build/"
  configure_and_build build -DEMBER_WERROR=ON
  stage_and_build_examples
  say "the main job: word count on a generated 16 MiB text, embedded local[*]"
  build/bench/gentext --bytes 16777216 -o build/wordcount-input.txt
  build/examples/wordcount build/wordcount-input.txt > build/wordcount-output.tsv
  printf 'distinct words: %s, words: %s\n' \
    "$(wc -l < build/wordcount-output.tsv)" \
    "$(awk -F '\t' '{ n += $2 } END { print n }' build/wordcount-output.tsv)"
  echo "top words:"
  # sed reads to the end, so sort never dies of SIGPIPE under pipefail
  LC_ALL=C sort -t "$(printf '\t')" -k2,2nr -k1,1 build/wordcount-output.tsv |
    sed -n '1,10p'
}

# Installs build/ into build/stage and builds examples/ against it.
stage_and_build_examples() {
  say "examples, built against a staged install"
  rm -rf build/stage
  cmake --install build --prefix "$ROOT/build/stage" >/dev/null
  cmake -S examples -B build/examples -G Ninja -DEMBER_WERROR=ON \
    -DCMAKE_PREFIX_PATH="$ROOT/build/stage" >/dev/null
  cmake --build build/examples -j "$JOBS"
}

run_tests() {
  ensure_packages "${RUN_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
  say "build (gcc, warnings as errors)"
  configure_and_build build -DEMBER_WERROR=ON
  say "tests"
  ctest --test-dir build --output-on-failure -j "$JOBS"

  stage_and_build_examples
  ctest --test-dir build/examples --output-on-failure

  say "build (clang, AddressSanitizer + UndefinedBehaviorSanitizer, fuzzer)"
  CC=clang configure_and_build build/asan -DEMBER_WERROR=ON \
    -DEMBER_SANITIZE=address,undefined -DEMBER_FUZZ=ON
  say "tests under sanitizers"
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
  LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    ctest --test-dir build/asan --output-on-failure -j "$JOBS"
}

case "${1:-}" in
  run) run_main ;;
  test) run_tests ;;
  *) echo "usage: $0 run|test" >&2; exit 2 ;;
esac
