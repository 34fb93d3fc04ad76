#!/usr/bin/env bash
# The project's main job (`make run`): the benchmark comparison on this machine.
#
#   scripts/run-main.sh BUILD_DIR
#
# `make run` has already built BUILD_DIR. The comparison wants two optional packages:
# libgc-dev (the bdw rows) and gnuplot (the PNG charts). When one is missing and this runs
# as root with apt-get, it is installed and the build is brought up to date (the build
# notices a libgc-dev installed after configure by itself); otherwise the run goes on and
# says what it skipped.
#
# Environment: BENCH_ARGS adds or overrides uffdgc-bench options (e.g. "--scale 1").
set -euo pipefail

build=${1:?usage: scripts/run-main.sh BUILD_DIR}
bench="$build/tools/uffdgc-bench"
out_dir="$build/bench-results"

have_libgc() { [ -e /usr/include/gc.h ] || [ -e /usr/include/gc/gc.h ]; }
have_gnuplot() { command -v gnuplot > /dev/null; }

wanted=()
have_libgc || wanted+=(libgc-dev)
have_gnuplot || wanted+=(gnuplot-nox)
if [ "${#wanted[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "run-main: installing ${wanted[*]} for the comparison (apt-get)"
    if ! { apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${wanted[@]}"; } \
      > "$build/apt-install.log" 2>&1; then
      echo "run-main: could not install ${wanted[*]} (see $build/apt-install.log); continuing"
    fi
  else
    echo "run-main: ${wanted[*]} missing and not installable here (needs root and apt-get)"
  fi
fi
have_libgc || echo "run-main: without libgc-dev the bdw rows are skipped"
have_gnuplot || echo "run-main: without gnuplot the charts are not drawn (their data is written)"
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target uffdgc-bench > /dev/null

if [ ! -x "$bench" ]; then
  echo "run-main: $bench is missing: build first (make)" >&2
  exit 1
fi

mkdir -p "$out_dir"
echo "run-main: kernel $(uname -r), $(nproc) CPUs; results in $out_dir"
# The default --scale (3) keeps the whole run (compact's 1 GiB heap included) near 90 s on
# 2 CPUs with every backend; BENCH_ARGS="--repeat 3" (the documented table) about three times that.
# shellcheck disable=SC2086
status=0
"$bench" --workload all --backend all --compare bdw \
  --json "$out_dir/results.json" --plot "$out_dir/plots" ${BENCH_ARGS:-} || status=$?
echo "run-main: finished in ${SECONDS} s (exit status $status)"
exit "$status"
