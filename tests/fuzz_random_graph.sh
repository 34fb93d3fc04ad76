#!/usr/bin/env bash
# The random-graph fuzzer (tests/integration/test_random_graph.c) over every backend and
# fault-delivery mode, one and two mutator threads, with the library's verifier on
# (UFFDGC_VERIFY=1: concurrent compactions are not finished in the pause). Prints one line
# per run and the totals; fails on any mismatch, on a run with fewer checked collections
# than asked, and when mutators built no page during the checked collections of a
# concurrent backend (the test itself checks that too).
#
#   tests/fuzz_random_graph.sh [--build DIR] [--collections N] [--seed-base N]
#                              [--backends LIST]
#
# --collections: checked collections per run (default 5000). Each run covers
# fresh seeds from --seed-base on. --backends: comma-separated subset of stw, copy, move, sigsegv,
# minor
# (default all). A backend this kernel cannot run is listed as skipped. Each run is bounded by
# UGC_FUZZ_RUN_TIMEOUT seconds (default 600): a run that hangs fails with its last lines
# instead of stalling whoever called the script.
set -euo pipefail
RUN_TIMEOUT=${UGC_FUZZ_RUN_TIMEOUT:-600}
BUILD=build
COLLECTIONS=5000
SEED_BASE=0
BACKENDS=stw,copy,move,sigsegv,minor
while [ $# -gt 0 ]; do
  case "$1" in
  --build) BUILD=$2; shift 2 ;;
  --collections) COLLECTIONS=$2; shift 2 ;;
  --seed-base) SEED_BASE=$2; shift 2 ;;
  --backends) BACKENDS=$2; shift 2 ;;
  *) echo "usage: $0 [--build DIR] [--collections N] [--seed-base N] [--backends LIST]" >&2
     exit 2 ;;
  esac
done
TEST="$BUILD/tests/test_random_graph"
[ -x "$TEST" ] || { echo "$TEST not built (make first)" >&2; exit 2; }
# Seeds per thread: each seed gives 5 checked collections, and with N threads each round
# is one collection for all of them.
SEEDS_PER_THREAD=$(( (COLLECTIONS + 4) / 5 ))
LOG=$(mktemp /tmp/uffdgc-fuzz.XXXXXX)
trap 'rm -f "$LOG"' EXIT

total_runs=0 total_collections=0 concurrent_collections=0 total_pages=0 total_windows=0
total_mismatches=0 failed=0 skipped=()
start=$(date +%s)
for config in stw:- copy:sigbus copy:thread move:sigbus move:thread sigsegv:- minor:sigbus \
  minor:thread; do
  backend=${config%%:*} delivery=${config#*:}
  case ",$BACKENDS," in *",$backend,"*) ;; *) continue ;; esac
  for threads in 1 2; do
    SEEDS=$((SEEDS_PER_THREAD * threads))
    status=0
    UFFDGC_BACKEND=$backend UFFDGC_DELIVERY=${delivery#-} UFFDGC_VERIFY=1 \
      UGC_TEST_THREADS=$threads UGC_TEST_SEEDS=$SEEDS UGC_TEST_SEED_BASE=$SEED_BASE \
      UGC_TEST_MIN_COLLECTIONS=$COLLECTIONS timeout -k 10 "$RUN_TIMEOUT" "$TEST" >"$LOG" 2>&1 ||
      status=$?
    SEED_BASE=$((SEED_BASE + SEEDS))
    if [ "$status" = 124 ] || [ "$status" = 137 ]; then
      echo "fuzz: $backend/$delivery, $threads thread(s): did not finish within ${RUN_TIMEOUT}s (seeds from $((SEED_BASE - SEEDS))):" >&2
      tail -20 "$LOG" >&2
      failed=1
      continue
    fi
    if [ "$status" = 77 ]; then
      skipped+=("$backend/$delivery: $(grep -m1 '^SKIP' "$LOG")")
      break
    fi
    # "N checked collections (...), D digest mismatches, V verify failures, S shadow
    # mismatches, R library verifier runs with P problems"; "... M of them while checked
    # collections were compacting (in W of them)".
    read -r collections digest verify shadow problems < <(sed -n \
      's/.* \([0-9]*\) checked collections (.*), \([0-9]*\) digest mismatches, \([0-9]*\) verify failures, \([0-9]*\) shadow mismatches, [0-9]* library verifier runs with \([0-9]*\) problems.*/\1 \2 \3 \4 \5/p' \
      "$LOG") || true
    read -r pages windows < <(sed -n \
      's/.* \([0-9]*\) of them while checked collections were compacting (in \([0-9]*\) of them).*/\1 \2/p' \
      "$LOG") || true
    in_place=$(sed -n 's/.* pages compacted in all, \([0-9]*\) of them in place.*/\1/p' "$LOG")
    if [ -z "${collections:-}" ] || [ -z "${pages:-}" ]; then
      echo "$backend/$delivery, $threads thread(s): no summary (exit $status):" >&2
      tail -20 "$LOG" >&2
      failed=1
      continue
    fi
    mismatches=$((digest + verify + shadow + problems))
    printf 'fuzz: %-5s %-6s %d thread(s): %7d checked collections, %7d pages built by mutators during them (in %d), %s pages in place, %d mismatches, exit %d\n' \
      "$backend" "$delivery" "$threads" "$collections" "$pages" "$windows" "${in_place:-?}" "$mismatches" "$status"
    total_runs=$((total_runs + 1))
    total_collections=$((total_collections + collections))
    total_pages=$((total_pages + pages))
    total_windows=$((total_windows + windows))
    total_mismatches=$((total_mismatches + mismatches))
    [ "$backend" = stw ] || concurrent_collections=$((concurrent_collections + collections))
    if [ "$status" != 0 ] || [ "$mismatches" != 0 ]; then
      tail -20 "$LOG" >&2
      failed=1
    fi
    if [ "$backend" != stw ] && [ "$pages" = 0 ]; then
      echo "fuzz: $backend/$delivery: mutators built no page during checked collections" >&2
      failed=1
    fi
  done
done
for s in "${skipped[@]}"; do echo "fuzz: skipped $s"; done
echo "fuzz: total $total_runs runs, $total_collections checked collections ($concurrent_collections on concurrent backends), $total_pages pages built by mutators during them (in $total_windows collections), $total_mismatches mismatches, $(( $(date +%s) - start ))s"
exit "$failed"
