#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-16, ASan+UBSan) and runs each for a while.
#   scripts/fuzz.sh [SECONDS] [TARGET...]    default 60 s each, every target
# Targets: gguf tokenizer adapter functions chat_template server_request (tests/fuzz/fuzz_<t>.cpp).
# Build dir: EMBER_FUZZ_BUILD (default build-fuzz). It is configured (clang-16, -DEMBER_FUZZ=ON,
# no tests or tools) only when it has no CMakeCache.txt, so a tree CI configured its own way
# (e.g. -DEMBER_SANITIZE=ON -DEMBER_FUZZ=ON with tests and tools) is used as it is;
# EMBER_FUZZ_NO_CONFIGURE=1 never configures.
# Seeds come from the fixtures (EMBER_FIXTURES, default ../shared) through
# bin/fuzz_make_seeds; the growing corpus stays in BUILD/fuzz-corpus/<t> between runs.
# A finding leaves a crash file in BUILD/fuzz-findings and makes the exit non-zero.
# EMBER_FUZZ_PARALLEL (default: the CPU count) targets run at the same time.
# Packages: clang-16, libfuzzer-16-dev (scripts/setup.sh --fuzz).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gguf tokenizer adapter functions chat_template server_request)
build=${EMBER_FUZZ_BUILD:-build-fuzz}
jobs=${EMBER_JOBS:-$(nproc)}

if [ ! -f "$build/CMakeCache.txt" ] && [ "${EMBER_FUZZ_NO_CONFIGURE:-0}" != 1 ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang-16 -DCMAKE_CXX_COMPILER=clang++-16 \
    -DEMBER_FUZZ=ON -DEMBER_BUILD_TESTS=OFF -DEMBER_BUILD_TOOLS=OFF -DEMBER_BUILD_BENCH=OFF \
    ${EMBER_FIXTURES:+-DEMBER_FIXTURES="$EMBER_FIXTURES"} ${EMBER_CMAKE_ARGS:-} > "$build.configure.log" ||
    { cat "$build.configure.log"; exit 1; }
fi
grep -qiE '^EMBER_FUZZ:BOOL=(ON|1|TRUE|YES)$' "$build/CMakeCache.txt" 2>/dev/null ||
  { echo "fuzz.sh: $build is not configured with -DEMBER_FUZZ=ON (clang)" >&2; exit 1; }
cmake --build "$build" -j "$jobs" --target fuzz_make_seeds $(printf 'fuzz_%s ' "${targets[@]}")
"$build/bin/fuzz_make_seeds" "$build/fuzz-seeds"
mkdir -p "$build/fuzz-findings"
# run_target T: one target for $seconds; its log in BUILD/fuzz-T.log; non-zero on a finding.
run_target() {
  local t=$1 corpus="$build/fuzz-corpus/$1" dict=()
  mkdir -p "$corpus"
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  # -rss_limit_mb: a hostile file may ask for a context the 512 MiB fake budget refuses,
  # but nothing may allocate beyond it; -timeout: one input may not take 10 s.
  "$build/bin/fuzz_$t" "$corpus" "$build/fuzz-seeds/$t" "${dict[@]}" -max_total_time="$seconds" \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$build/fuzz-findings/$t-" \
    2> "$build/fuzz-$t.log"
}
# EMBER_FUZZ_PARALLEL targets run at once (default: the number of CPUs): each target is
# one process on one core, so CI's two cores fuzz two targets in the time of one.
parallel=${EMBER_FUZZ_PARALLEL:-$jobs}
[[ "$parallel" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: EMBER_FUZZ_PARALLEL must be a positive number" >&2; exit 2; }
declare -A pid_of
status=0
for ((i = 0; i < ${#targets[@]}; i += parallel)); do
  batch=("${targets[@]:i:parallel}")
  for t in "${batch[@]}"; do
    echo "== fuzz_$t: ${seconds}s"
    run_target "$t" &
    pid_of[$t]=$!
  done
  for t in "${batch[@]}"; do
    if wait "${pid_of[$t]}"; then
      echo "fuzz_$t: $(grep -E 'stat::number_of_executed_units' "$build/fuzz-$t.log" | tail -1 | awk '{print $2}') executions," \
           "$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$build/fuzz-$t.log" | tail -1)"
    else
      tail -40 "$build/fuzz-$t.log"
      echo "fuzz_$t: FINDING (see $build/fuzz-findings)"
      status=1
    fi
  done
done
[ "$status" = 0 ] || exit 1
echo "fuzz.sh: every target ran ${seconds}s with no finding"
