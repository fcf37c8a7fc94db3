#!/usr/bin/env bash
# Builds Ember with ThreadSanitizer (clang-16, -DEMBER_SANITIZE=thread) and runs the tests
# that use threads: the thread pool (ThreadPool.*), contexts of one model on several
# threads (ApiThreads.*), the threaded matmuls (MatmulThreads.*, QMatmulThreads.*),
# `ember serve` with its slots, queue and
# cancellation (Serve.*, ServeForward.*: bin/ember is TSan-built too), and the router
# against a fake server thread (Router*.*).
#   scripts/tsan.sh [--jobs N]
# Environment: EMBER_TSAN_BUILD (build directory, default <repo>/build-tsan),
#   EMBER_FIXTURES (default <repo>/../shared), EMBER_CMAKE_ARGS (extra configure
#   arguments, split on spaces), EMBER_CTEST_TIME_LIMIT (seconds for the ctest run,
#   default 1800).
# Every report is fatal (halt_on_error=1) and is also written to
# $EMBER_TSAN_BUILD/tsan-reports/ (log_path: reports of the spawned `ember` processes
# included); the script fails when a test fails or any report file exists.
# Suppressions: tests/tsan.supp (third-party false positives only, each with its reason).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=2
while [ $# -gt 0 ]; do
  case "$1" in
    --jobs|-j) [ $# -ge 2 ] || { echo "tsan.sh: $1 needs a number" >&2; exit 2; }
               jobs=$2; shift ;;
    --jobs=*) jobs=${1#--jobs=} ;;
    -j*) jobs=${1#-j} ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "tsan.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
if ! [[ "$jobs" =~ ^[1-9][0-9]*$ ]]; then echo "tsan.sh: --jobs wants a positive number, got '$jobs'" >&2; exit 2; fi

build=${EMBER_TSAN_BUILD:-$root/build-tsan}
fixtures=${EMBER_FIXTURES:-$root/../shared}
if [ ! -d "$fixtures/models" ]; then
  echo "tsan.sh: no fixtures at $fixtures (set EMBER_FIXTURES)" >&2; exit 1
fi
fixtures=$(cd "$fixtures" && pwd)
for tool in clang-16 clang++-16; do
  command -v "$tool" >/dev/null || { echo "tsan.sh: $tool not found (scripts/setup.sh --fuzz installs it)" >&2; exit 1; }
done
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
# shellcheck disable=SC2206
extra=(${EMBER_CMAKE_ARGS:-})

start=$(date +%s)
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang-16 \
  -DCMAKE_CXX_COMPILER=clang++-16 -DEMBER_SANITIZE=thread -DEMBER_BUILD_BENCH=OFF \
  -DEMBER_FIXTURES="$fixtures" "${launcher[@]}" "${extra[@]}"
cmake --build "$build" -j"$jobs" --target ember_cli test_core test_api test_kernels test_serve test_router
built=$(date +%s)

# The tests of threads and of the server; the other tests of these executables run in the
# normal and ASan builds. (`ember quantize -t N`, QuantThreads in test_cli, runs on the same
# pool; test_cli is left out to keep CI's TSan build short.)
tests='^(ThreadPool|ApiThreads|MatmulThreads|QMatmulThreads|Serve|ServeForward|Router[A-Za-z]*)\.'
reports=$build/tsan-reports
rm -rf "$reports"
mkdir -p "$reports"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$root/tests/tsan.supp log_path=$reports/tsan"
# A sanitized `ember` runs several times slower: the tests' waits on it are scaled.
export EMBER_TEST_TIMEOUT_SCALE=${EMBER_TEST_TIMEOUT_SCALE:-8}
status=0
time_limit=${EMBER_CTEST_TIME_LIMIT:-1800}
[[ "$time_limit" =~ ^[1-9][0-9]*$ ]] || { echo "tsan.sh: EMBER_CTEST_TIME_LIMIT must be seconds, got '$time_limit'" >&2; exit 2; }
(cd "$build" && timeout -k 10 "$time_limit" ctest -R "$tests" -j"$jobs" --output-on-failure) || status=$?
ran=$(date +%s)
# A test halted by a report leaves the `ember serve` it started running: stop those
# (this build's binary only).
if [ "$status" != 0 ]; then
  for pid in $(pgrep -f "^$build/bin/ember serve " || true); do kill "$pid" 2>/dev/null || true; done
fi

if compgen -G "$reports/tsan*" >/dev/null; then
  echo "tsan.sh: ThreadSanitizer reports:" >&2
  cat "$reports"/tsan* >&2
  status=1
fi
echo "tsan.sh: build $((built - start)) s, tests $((ran - built)) s: $([ "$status" = 0 ] && echo 'no report, all passed' || echo FAILED)"
exit "$status"
