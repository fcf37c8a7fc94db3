#!/usr/bin/env bash
# Sets up, builds and runs every Ember test: natively; natively again under
# AddressSanitizer + UndefinedBehaviorSanitizer (clang-16), with every libFuzzer target run
# briefly on that build, and the thread and server tests under ThreadSanitizer; then
# cross-built for aarch64 and run under qemu-user with three CPU models (cortex-a72: NEON
# only, cortex-a76: +dotprod, max: +i8mm/SVE), so every kernel dispatch path is exercised.
#   scripts/test.sh [--native-only | --arm-only] [--no-sanitize] [--jobs N] [--target T]...
#   --target T builds only T (repeatable; default: every target) and ctest then skips
#   the tests of executables that are not built (for working on one module).
#   --no-sanitize skips the sanitizer, fuzz and TSan stage (on by default with the native run).
# Steps: scripts/setup.sh --cross --fuzz (apt packages; sudo when not root; no-op when done),
#        native:  cmake build/ (Release) + build all + ctest
#                 + scripts/test-install.sh (install, examples/ against the package)
#        sanitize: cmake build-sanitize/ (clang-16, -DEMBER_SANITIZE=ON -DEMBER_FUZZ=ON)
#                 + build + ctest (EMBER_TEST_TIMEOUT_SCALE=4; not the accuracy
#                 sweeps LoraAccuracy, Octopus.SampleAccuracy*) + scripts/fuzz.sh
#                 $EMBER_FUZZ_SECONDS (default 30) over every fuzz target
#                 + scripts/tsan.sh (build-tsan/: ThreadSanitizer, the thread and server tests)
#        arm64:   scripts/arm64-sysroot.sh build-arm64 + cmake with
#                 cmake/aarch64-linux-gnu.cmake + build all + ctest under qemu with
#                 QEMU_CPU=cortex-a76 (every test but the command-line and server suites
#                 that start `ember` many times; `Cli.*` stays), cortex-a72 and max (the
#                 tests labelled `kernels`, whose results go through the kernel tables,
#                 without the *Cli suites, LoRA's accuracy/auto-blend sweeps and the
#                 invariance suites that cortex-a76 ran)
#                 + scripts/test-install.sh
#                 (the example cross-built against the installed package, run under qemu)
# Environment: EMBER_FIXTURES (default <repo>/../shared; must hold models/ and
#   tokenizer/, else this FAILS), EMBER_BUILD_DIR (default <repo>/build),
#   EMBER_SANITIZE_BUILD_DIR (default <repo>/build-sanitize), EMBER_TSAN_BUILD (default
#   <repo>/build-tsan), EMBER_ARM64_BUILD_DIR (default <repo>/build-arm64),
#   EMBER_SKIP_SETUP=1 skips apt,
#   EMBER_CMAKE_ARGS (extra configure arguments for all builds, split on spaces),
#   EMBER_CTEST_TIME_LIMIT (seconds per ctest run, default 900: a hung test fails the
#   run instead of eating CI's time), EMBER_FUZZ_SECONDS (per fuzz target, default 30).
# Exit status is non-zero if any step fails; a summary line per configuration is
# printed last.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { sed -n '2,37p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

do_native=1
do_arm=1
do_sanitize=1
jobs=$(nproc 2>/dev/null || echo 2)
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --native-only) do_arm=0 ;;
    --arm-only) do_native=0 ;;
    --no-sanitize) do_sanitize=0 ;;
    --jobs|-j) [ $# -ge 2 ] || { echo "test.sh: $1 needs a number" >&2; exit 2; }
               jobs=$2; shift ;;
    --jobs=*) jobs=${1#--jobs=} ;;
    --target) [ $# -ge 2 ] || { echo "test.sh: --target needs a name" >&2; exit 2; }
              targets+=("$2"); shift ;;
    --target=*) targets+=("${1#--target=}") ;;
    -j*) jobs=${1#-j} ;;
    -h|--help) usage; exit 0 ;;
    *) echo "test.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
if ! [[ "$jobs" =~ ^[1-9][0-9]*$ ]]; then echo "test.sh: --jobs wants a positive number, got '$jobs'" >&2; exit 2; fi
if [ "$do_native" = 0 ] && [ "$do_arm" = 0 ]; then
  echo "test.sh: --native-only and --arm-only exclude each other" >&2; exit 2
fi

host=$(uname -m)
if [ "$do_arm" = 1 ] && [ "$host" != x86_64 ]; then
  # The cross configuration targets x86-64 hosts; on an arm64 host the native run is
  # the arm64 run (QEMU_CPU has no effect there).
  echo "test.sh: host is $host: no cross/qemu run (the native run covers this host)" >&2
  do_arm=0
  [ "$do_native" = 1 ] || { echo "test.sh: --arm-only needs an x86-64 host" >&2; exit 2; }
fi
# The sanitizer stage runs natively only (the issue's time budget), and not for a
# partial build (--target): it builds everything itself.
[ "$do_native" = 1 ] && [ "${#targets[@]}" -eq 0 ] || do_sanitize=0

# ---- fixtures: a missing fixture is a failure, never a skip ----------------------
fixtures=${EMBER_FIXTURES:-$root/../shared}
if [ ! -d "$fixtures/models" ] || [ ! -d "$fixtures/tokenizer" ]; then
  echo "test.sh: FAIL: test fixtures not found: '$fixtures' must contain models/ and tokenizer/" >&2
  echo "test.sh: put the fixtures beside the repository (../shared) or set EMBER_FIXTURES" >&2
  exit 1
fi
fixtures=$(cd "$fixtures" && pwd)
export EMBER_FIXTURES=$fixtures

native_dir=${EMBER_BUILD_DIR:-$root/build}
arm_dir=${EMBER_ARM64_BUILD_DIR:-$root/build-arm64}
san_dir=${EMBER_SANITIZE_BUILD_DIR:-$root/build-sanitize}
fuzz_seconds=${EMBER_FUZZ_SECONDS:-30}  # seeded targets; the 1 M-run table in docs/TESTING.md is where depth comes from
[[ "$fuzz_seconds" =~ ^[1-9][0-9]*$ ]] || { echo "test.sh: EMBER_FUZZ_SECONDS must be seconds, got '$fuzz_seconds'" >&2; exit 2; }
# What each qemu CPU model runs (ctest -L label, -E exclusions; one -E: the last wins).
# cortex-a76 (the Pi 5's core, dotprod) runs every test but the command-line and server
# suites that start `ember` many times (slow under qemu, and their logic is the same C++ as
# natively, where they run twice: Release and ASan); `Cli.*`, the command's own suite, stays.
# LoRA's accuracy and automatic-blend sweeps are left out too (3.7 min of qemu CPU): they
# measure the adapters' effect over hundreds of queries, natively; their kernel paths run
# here in LoraApply and LoraGolden.
# cortex-a72 and max run what can differ between CPU models: the tests labelled `kernels`
# (results computed through the kernel tables), minus every *Cli suite and LoRA's accuracy
# and automatic-blend sweeps (the adapters' kernel paths are LoraApply's and LoraGolden's),
# and minus the invariance suites: same bits whatever the threads, batches, rings, prefix
# reuse, saved state or context shift. Those hold for any table whose kernels equal the
# reference bit for bit, which test_kernels checks on every model; they run under
# cortex-a76 (5.5 min of qemu CPU saved on the other two). The allocation counts
# (MemoryDecode*) stay: a table's scratch needs can differ.
qemu_cpus=(cortex-a76 cortex-a72 max)
declare -A qemu_label=([cortex-a76]="" [cortex-a72]=kernels [max]=kernels)
a76_exclude='(^|/)(ChatCli|LoraAutoCli|CliBench|EvalCallsCli|CallCli|CliTemplate|PromptCacheCli|Serve|ServeForward|Router[A-Za-z]*)[.]|^Lora(Accuracy|Auto)[.]|_NOT_BUILT$'
invariance='^Attention[.]ThreadsBatches|(^|/)(PrefixReuse|StateRoundTrip|ContextShift|ApiThreads|ApiNullCalls)[.]'
repeat_exclude="(^|/)[A-Za-z]*Cli[A-Za-z]*[.]|^Lora(Accuracy|Auto)[.]|$invariance|_NOT_BUILT\$"
# Under ASan the accuracy sweeps (hundreds of queries through paths other tests take)
# cost 2.7 min of CPU; they run in the Release build.
sanitize_exclude='^LoraAccuracy[.]|^Octopus[.]SampleAccuracy|_NOT_BUILT$'
declare -A qemu_exclude=([cortex-a76]="$a76_exclude" [cortex-a72]="$repeat_exclude" [max]="$repeat_exclude")

# ---- bookkeeping -------------------------------------------------------------------
t_start=$SECONDS
summary=()   # one line per configuration
failed=0
fmt() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
banner() { printf '\n==== %s ====\n' "$*"; }
# phase NAME CMD...: runs CMD, prints its elapsed time; returns CMD's status.
last_elapsed=0
phase() {
  local name=$1; shift
  banner "$name"
  local t0=$SECONDS rc=0
  "$@" || rc=$?
  last_elapsed=$((SECONDS - t0))
  if [ $rc -eq 0 ]; then
    echo "---- $name: ok ($(fmt $last_elapsed))"
  else
    echo "---- $name: FAILED, exit $rc ($(fmt $last_elapsed))"
  fi
  return $rc
}
read -r -a extra_cmake_args <<<"${EMBER_CMAKE_ARGS:-}"
ctest_args=(--output-on-failure --no-tests=error -j "$jobs")
build_args=(-j "$jobs")
if [ "${#targets[@]}" -gt 0 ]; then
  build_args+=(--target "${targets[@]}")
  ctest_args+=(-E '_NOT_BUILT$')  # gtest_discover_tests' placeholder for unbuilt executables
fi
time_limit=${EMBER_CTEST_TIME_LIMIT:-900}
[[ "$time_limit" =~ ^[1-9][0-9]*$ ]] || { echo "test.sh: EMBER_CTEST_TIME_LIMIT must be seconds, got '$time_limit'" >&2; exit 2; }
# run_ctest BUILD_DIR LOG: ctest (killed after $time_limit s with every test it started),
# output also in LOG (for the summary's counts).
# Extra ctest arguments after LOG (e.g. -L kernels).
run_ctest() {
  local rc=0 dir=$1 log=$2
  shift 2
  (cd "$dir" && timeout -k 10 "$time_limit" ctest "${ctest_args[@]}" "$@") 2>&1 | tee "$log" || rc=$?
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    {
      echo "test.sh: ctest exceeded EMBER_CTEST_TIME_LIMIT=${time_limit}s and was killed; unfinished tests:"
      # "Start N: name" lines without a "Test #N: ..." result line.
      awk 'match($0, /^ *Start +[0-9]+: /) { n = $2; sub(/:$/, "", n); name[n] = substr($0, RLENGTH + 1) }
           match($0, / Test +#[0-9]+: /) { t = substr($0, RSTART, RLENGTH); gsub(/[^0-9]/, "", t); done[t] = 1 }
           END { for (n in name) if (!(n in done)) print "  " name[n] }' "$log"
    } | tee -a "$log"
  fi
  return $rc
}
# counts LOG: "N/M tests passed" from ctest's output, or "no test results".
counts() {
  local line
  line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$1" 2>/dev/null | tail -1) || true
  if [[ "$line" =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
    echo "$((BASH_REMATCH[2] - BASH_REMATCH[1]))/${BASH_REMATCH[2]} tests passed"
  elif grep -q 'exceeded EMBER_CTEST_TIME_LIMIT' "$1" 2>/dev/null; then
    echo "TIMEOUT after ${time_limit}s, $(grep -cE ' Test +#[0-9]+: .* (Passed|\*\*\*)' "$1") tests finished"
  else
    echo "no test results"
  fi
}
record() {  # record NAME STATUS DETAIL
  summary+=("$(printf '%-22s %-4s  %s' "$1" "$2" "$3")")
  [ "$2" = PASS ] || failed=1
}

echo "test.sh: repo $root, fixtures $fixtures, jobs $jobs, host $host"
echo "test.sh: native=$do_native ($native_dir) arm64=$do_arm ($arm_dir) targets: ${targets[*]:-all}"

# ---- setup (fatal on failure: nothing else can work) -------------------------------
if [ "${EMBER_SKIP_SETUP:-0}" = 1 ]; then
  echo "test.sh: EMBER_SKIP_SETUP=1: not running scripts/setup.sh"
else
  setup_args=()
  [ "$do_arm" = 1 ] && setup_args+=(--cross)
  [ "$do_sanitize" = 1 ] && setup_args+=(--fuzz)
  if ! phase "setup: scripts/setup.sh ${setup_args[*]:-}" "$root/scripts/setup.sh" "${setup_args[@]}" </dev/null; then
    echo "test.sh: FAIL: scripts/setup.sh failed" >&2
    exit 1
  fi
fi

# ---- native -----------------------------------------------------------------------
if [ "$do_native" = 1 ]; then
  t_cfg=$SECONDS
  if phase "native: configure ($native_dir)" \
       cmake -S "$root" -B "$native_dir" -DCMAKE_BUILD_TYPE=Release -DEMBER_FIXTURES="$fixtures" "${extra_cmake_args[@]}" &&
     phase "native: build (-j$jobs)" cmake --build "$native_dir" "${build_args[@]}"; then
    t_build=$((SECONDS - t_cfg))
    if phase "native: ctest" run_ctest "$native_dir" "$native_dir/ctest-native.log"; then
      record native PASS "$(counts "$native_dir/ctest-native.log"); build $(fmt $t_build), tests $(fmt $last_elapsed)"
    else
      record native FAIL "$(counts "$native_dir/ctest-native.log"); build $(fmt $t_build), tests $(fmt $last_elapsed)"
    fi
    if [ "${#targets[@]}" -eq 0 ]; then  # the install needs every target built
      if phase "native: install + embedding example" "$root/scripts/test-install.sh" "$native_dir"; then
        record "native install" PASS "example via find_package and pkg-config ($(fmt $last_elapsed))"
      else
        record "native install" FAIL "scripts/test-install.sh $native_dir"
      fi
    fi
  else
    record native FAIL "configure/build failed (tests not run)"
  fi
fi

# ---- sanitizers + fuzzing (native only) ----------------------------------------------
# One clang-16 tree serves both: ASan + UBSan on every object (findings fatal), libFuzzer's
# coverage hooks too (-DEMBER_FUZZ=ON). test_memory and test_capi_failure replace the
# allocator and are not built there (cmake/sanitize.cmake); they ran in the native build.
run_fuzz() {  # every fuzz target on the sanitizer tree, output also in fuzz.log
  EMBER_FUZZ_BUILD=$san_dir "$root/scripts/fuzz.sh" "$fuzz_seconds" 2>&1 | tee "$san_dir/fuzz.log"
  return "${PIPESTATUS[0]}"
}
if [ "$do_sanitize" = 1 ]; then
  t_cfg=$SECONDS
  if phase "sanitize: configure ($san_dir, clang-16, ASan+UBSan, fuzz targets)" \
       cmake -S "$root" -B "$san_dir" -DCMAKE_BUILD_TYPE=Release -DEMBER_FIXTURES="$fixtures" \
             -DCMAKE_C_COMPILER=clang-16 -DCMAKE_CXX_COMPILER=clang++-16 \
             -DEMBER_SANITIZE=ON -DEMBER_FUZZ=ON -DEMBER_BUILD_BENCH=OFF "${extra_cmake_args[@]}" &&
     phase "sanitize: build (-j$jobs)" cmake --build "$san_dir" "${build_args[@]}"; then
    t_build=$((SECONDS - t_cfg))
    # A sanitized command runs 2-5x slower: the tests' waits on it are scaled.
    export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-16/bin/llvm-symbolizer  # reports with names
    if EMBER_TEST_TIMEOUT_SCALE=4 phase "sanitize: ctest under ASan+UBSan" \
         run_ctest "$san_dir" "$san_dir/ctest-sanitize.log" -E "$sanitize_exclude"; then
      record "native ASan+UBSan" PASS "$(counts "$san_dir/ctest-sanitize.log"); build $(fmt $t_build), tests $(fmt $last_elapsed)"
    else
      record "native ASan+UBSan" FAIL "$(counts "$san_dir/ctest-sanitize.log"); build $(fmt $t_build), tests $(fmt $last_elapsed)"
    fi
    if phase "fuzz: every target ${fuzz_seconds}s" run_fuzz; then
      record "fuzz" PASS "$(grep -c '^== fuzz_' "$san_dir/fuzz.log") targets x ${fuzz_seconds}s, no finding ($(fmt $last_elapsed))"
    else
      record "fuzz" FAIL "see $san_dir/fuzz.log and $san_dir/fuzz-findings/"
    fi
  else
    record "native ASan+UBSan" FAIL "configure/build failed (tests not run)"
  fi
  # ThreadSanitizer: its own tree (build-tsan), the thread and server tests only.
  if phase "tsan: scripts/tsan.sh (thread pool, contexts on threads, threaded matmuls, server, router)" \
       "$root/scripts/tsan.sh" --jobs "$jobs"; then
    record "native TSan" PASS "thread and server tests, no report ($(fmt $last_elapsed) with its build)"
  else
    record "native TSan" FAIL "scripts/tsan.sh (reports in build-tsan/tsan-reports)"
  fi
fi

# ---- arm64 cross + qemu ------------------------------------------------------------
if [ "$do_arm" = 1 ]; then
  sysroot="$arm_dir/arm64-sysroot"
  t_cfg=$SECONDS
  if phase "arm64: sentencepiece sysroot" "$root/scripts/arm64-sysroot.sh" "$arm_dir" &&
     phase "arm64: configure ($arm_dir)" \
       cmake -S "$root" -B "$arm_dir" -DCMAKE_BUILD_TYPE=Release -DEMBER_FIXTURES="$fixtures" \
             -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-linux-gnu.cmake" \
             -DEMBER_ARM64_SYSROOT="$sysroot" "${extra_cmake_args[@]}" &&
     phase "arm64: build (-j$jobs; test discovery under qemu)" cmake --build "$arm_dir" "${build_args[@]}"; then
    t_build=$((SECONDS - t_cfg))
    for cpu in "${qemu_cpus[@]}"; do
      log="$arm_dir/ctest-qemu-$cpu.log"
      export QEMU_CPU=$cpu  # qemu-user reads the CPU model from here
      filter=(-E "${qemu_exclude[$cpu]}")
      [ -z "${qemu_label[$cpu]}" ] || filter+=(-L "${qemu_label[$cpu]}")
      if phase "arm64: ctest under qemu-aarch64, QEMU_CPU=$cpu ${filter[*]}" run_ctest "$arm_dir" "$log" "${filter[@]}"; then
        record "arm64 qemu $cpu" PASS "$(counts "$log"); tests $(fmt $last_elapsed) (build $(fmt $t_build))"
      else
        record "arm64 qemu $cpu" FAIL "$(counts "$log"); tests $(fmt $last_elapsed) (build $(fmt $t_build))"
      fi
    done
    unset QEMU_CPU
    if [ "${#targets[@]}" -eq 0 ]; then
      if phase "arm64: install + embedding example under qemu" "$root/scripts/test-install.sh" "$arm_dir" \
           -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-linux-gnu.cmake" -DEMBER_ARM64_SYSROOT="$sysroot"; then
        record "arm64 install" PASS "example via find_package, run under qemu ($(fmt $last_elapsed))"
      else
        record "arm64 install" FAIL "scripts/test-install.sh $arm_dir"
      fi
    fi
  else
    for cpu in "${qemu_cpus[@]}"; do
      record "arm64 qemu $cpu" FAIL "sysroot/configure/build failed (tests not run)"
    done
  fi
fi

# ---- summary ------------------------------------------------------------------------
banner "summary (total $(fmt $((SECONDS - t_start))))"
for l in "${summary[@]}"; do echo "$l"; done
if [ "$failed" = 0 ]; then
  echo "test.sh: ALL PASSED"
else
  echo "test.sh: FAILED" >&2
fi
exit $failed
