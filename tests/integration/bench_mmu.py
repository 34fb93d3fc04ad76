#!/usr/bin/env python3
"""bench/mmu: the pause timeline and the minimum mutator utilisation uffdgc-bench reports.

usage: bench_mmu.py UFFDGC_BENCH JSON_OUT

Runs gcbench (one mutator) and mt (two) at --scale 1 on stw and copy, and checks from the
--json output:
- gcbench records one pause span per collection the workload caused (all but the
  driver's final one, which is outside the timeline), mt spans from both threads;
- every reported MMU value is the minimum utilisation over all windows of that width of
  the worst thread, recomputed here independently: no window sampled densely over the run
  has less mutator time, and the reported value is reached by some window (within 1e-6);
- the MMU never exceeds 1 - (the thread's paused fraction of the whole run) for windows as
  long as the run."""
import bisect
import json
import subprocess
import sys

TOLERANCE = 1e-6


def merged(spans, length):
    out = []
    for start, end in sorted(spans):
        start, end = max(0.0, start), min(end, length)
        if start >= end:
            continue
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return out


class Paused:
    """Paused time of one thread before a point: prefix sums over its merged spans."""

    def __init__(self, spans):
        self.starts = [s for s, _ in spans]
        self.spans = spans
        self.before = [0.0]
        for s, e in spans:
            self.before.append(self.before[-1] + e - s)

    def upto(self, x):
        i = bisect.bisect_left(self.starts, x)
        if i == 0:
            return 0.0
        s, e = self.spans[i - 1]
        return self.before[i - 1] + min(x, e) - s


def utilisation(paused, x, w, length):
    x = min(max(x, 0.0), length - w)
    return 1.0 - (paused.upto(x + w) - paused.upto(x)) / w


def check_row(row, problems):
    where = f"{row['workload']}/{row['backend']}"
    timeline = row["pause_timeline"]
    length = row["wall_s"]
    threads = {}
    for start, end, thread in timeline["spans_s"]:
        threads.setdefault(thread, []).append((start, end))
    # One span per stop the mutator saw, the final collection's excepted; a concurrently
    # marked cycle stops three times (initial, remark and compaction pause), unless the
    # mutator waited through them inside one explicit collection.
    low = row["gc_cycles"] - 1
    high = low + 2 * row.get("mark_concurrent_cycles", 0)
    if row["workload"] == "gcbench" and not low <= timeline["spans_seen"] <= high:
        problems.append(f"{where}: {timeline['spans_seen']} pause spans for "
                        f"{row['gc_cycles']} collections, "
                        f"{row.get('mark_concurrent_cycles', 0)} marked concurrently "
                        f"(expected {low} to {high})")
    if row["workload"] == "mt" and len(threads) < 2:
        problems.append(f"{where}: pause spans from {len(threads)} thread(s), expected 2")
    if timeline["truncated"]:
        return
    per_thread = {t: merged(s, length) for t, s in threads.items()}
    for point in timeline["mmu"]:
        w = point["window_ms"] / 1e3
        reported = point["mmu"]
        if w > length:
            problems.append(f"{where}: MMU reported for a {w} s window, longer than the run")
            continue
        worst_sampled, reached = 2.0, False
        for spans in per_thread.values():
            starts = [length * i / 400 for i in range(401)]
            for s, e in spans:
                starts += [s, e, s - w, e - w]
            prefix = Paused(spans)
            values = [utilisation(prefix, x, w, length) for x in starts]
            worst_sampled = min(worst_sampled, min(values))
            reached |= any(abs(v - reported) <= TOLERANCE for v in values)
        if worst_sampled < reported - TOLERANCE or not reached:
            problems.append(f"{where}: MMU({point['window_ms']:.3f} ms) reported {reported}, "
                            f"recomputed {worst_sampled}")


def main():
    exe, json_out = sys.argv[1], sys.argv[2]
    run = subprocess.run([exe, "--workload", "gcbench,mt", "--backend", "stw,copy",
                          "--scale", "1", "--json", json_out],
                         capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        sys.exit(f"FAIL: uffdgc-bench exited {run.returncode}:\n{run.stdout}\n{run.stderr}")
    problems = []
    checked = 0
    for row in json.load(open(json_out)):
        if "skipped" in row:
            continue
        check_row(row, problems)
        checked += 1
    if not checked:
        print("SKIP: no backend could run")
        sys.exit(77)
    for p in problems:
        print("FAIL:", p)
    if problems:
        sys.exit(1)
    print(f"pause timelines and MMU checked on {checked} runs")


main()
