#!/usr/bin/env bash
# Runs a fork stress test many times in each delivery mode and counts hangs and failures.
#
#   scripts/fork-stress.sh BUILD_DIR [RUNS] [TEST]
#
# RUNS defaults to 1000, TEST to test_compaction_threads (test_fork_loop also works). Each
# run gets 60 s before it counts as a hang (a normal run takes about a second). DELIVERIES
# (default "sigbus thread") chooses the delivery modes. Prints a progress line every 100
# runs and one summary line per delivery mode; exits 1 if any run hung or failed. Run it
# with `nice` on a shared machine.
set -uo pipefail

build=${1:?usage: scripts/fork-stress.sh BUILD_DIR [RUNS] [TEST]}
runs=${2:-1000}
test=${3:-test_compaction_threads}
exe="$build/tests/$test"
[ -x "$exe" ] || { echo "no $exe: build first" >&2; exit 2; }

status=0
for delivery in ${DELIVERIES:-sigbus thread}; do
  ok=0 hung=0 failed=0 skipped=0
  for ((i = 0; i < runs; i++)); do
    UFFDGC_BACKEND=copy UFFDGC_DELIVERY=$delivery timeout -s KILL 60 "$exe" > /dev/null 2>&1
    rc=$?
    case $rc in
      0) ok=$((ok + 1)) ;;
      77) skipped=$((skipped + 1)) ;;
      137) hung=$((hung + 1)) ;;
      *) failed=$((failed + 1)) ;;
    esac
    if (((i + 1) % 100 == 0)); then
      echo "  $delivery: $((i + 1)) runs, $hung hung, $failed failed"
    fi
  done
  echo "$test delivery=$delivery runs=$runs ok=$ok hung=$hung failed=$failed skipped=$skipped"
  [ $((hung + failed)) -eq 0 ] || status=1
done
exit $status
