#!/usr/bin/env python3
"""tools/probe_output: uffdgc-probe's backend list and auto pick agree with each other.

usage: probe_output.py UFFDGC_PROBE

Runs the probe (table and --json, without the mremap timing) as it is, and once more with
UFFDGC_DISABLE masking the backend auto picks, and checks:
- each backend line says either "implemented" or "not implemented yet", never a backend
  that is "available" and "not implemented" at once;
- the table and the JSON name the same pick;
- "auto would pick: X" is followed by the order auto tries backends in, and every backend
  tried before X is listed as passed over with a reason that matches the JSON (not
  implemented, or what the kernel lacks);
- masking the pick makes the probe pick a later backend and say why the first was passed
  over."""
import json
import os
import re
import subprocess
import sys


def run(probe, extra_env, *args):
    env = dict(os.environ)
    env.pop("UFFDGC_BACKEND", None)
    env.update(extra_env)
    out = subprocess.run([probe, "--no-measure", *args], env=env, capture_output=True,
                         text=True, timeout=60)
    if out.returncode != 0:
        sys.exit(f"FAIL: {probe} {' '.join(args)} exited {out.returncode}: {out.stderr}")
    return out.stdout


def check(probe, extra_env):
    table = run(probe, extra_env)
    report = json.loads(run(probe, extra_env, "--json"))
    problems = []
    backends = {b["name"]: b for b in report["backends"]}
    lines = table.splitlines()
    start = lines.index("backends")
    for line in lines[start + 1:start + 1 + len(backends)]:
        name = line.split()[0]
        b = backends[name]
        if "available" in line and "not implemented" in line:
            problems.append(f"contradiction: {line.strip()!r}")
        said = "not implemented yet;" in line
        if said == b["implemented"] or (not said and "implemented;" not in line):
            problems.append(f"implementation state wrong: {line.strip()!r} vs {b}")
        if not b["available"] and b["reason"] not in line:
            problems.append(f"reason missing: {line.strip()!r} vs {b['reason']!r}")

    pick = report["auto"]
    m = re.search(r"^auto would pick: (\S+)", table, re.M)
    if not m or m.group(1) != pick:
        problems.append(f"table pick {m and m.group(1)!r} != JSON pick {pick!r}")
    order = report["auto_order"]
    if f"auto tries {', '.join(order)} in that order" not in table:
        problems.append(f"the order auto tries ({order}) is not printed")
    passed = {p["name"]: p["why"] for p in report["auto_passed_over"]}
    for name in order[:order.index(pick)]:
        b = backends[name]
        why = "not implemented yet" if not b["implemented"] else b["reason"]
        if passed.get(name) != why:
            problems.append(f"{name}: JSON says passed over because {passed.get(name)!r}, "
                            f"expected {why!r}")
        if not re.search(rf"^\s+{name}\s+passed over: .*{re.escape(why)}", table, re.M):
            problems.append(f"{name}: no 'passed over' line with {why!r}")
    if not re.search(rf"^\s+{pick}\s+picked: ", table, re.M):
        problems.append(f"no 'picked' line for {pick}")
    if not backends[pick]["implemented"] or not backends[pick]["available"]:
        problems.append(f"picked {pick}, which cannot run: {backends[pick]}")
    return pick, problems


def main():
    probe = sys.argv[1]
    pick, problems = check(probe, {})
    if pick != "stw" and not problems:
        # Mask the pick: auto must move on and say why it passed over the masked one.
        masked, more = check(probe, {"UFFDGC_DISABLE": pick})
        problems += more
        if masked == pick:
            problems.append(f"UFFDGC_DISABLE={pick} did not change the pick")
    for p in problems:
        print("FAIL:", p)
    if problems:
        sys.exit(1)
    print(f"probe output consistent (auto picks {pick})")


main()
