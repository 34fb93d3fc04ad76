#!/usr/bin/env python3
"""The include graph of src/ follows the layer list of docs/design.md.

A file of layer L includes headers of its own layer and of layers below L only. The one
exception is for .c files of mark/, compact/ and backend/: they may read the runtime headers
named in SOURCE_EXTRA (the heap structure every layer works on, the stall histogram, the
thread signals). Headers have no exception, so no header of a lower layer pulls in a higher
one and the header graph has no cycle between layers.

Usage: layers.py SRC_DIR
"""
import pathlib
import re
import sys

# Lower rank = lower layer. Layers of equal rank do not include each other.
RANK = {"os": 0, "uffd": 1, "heap": 2, "mark": 3, "compact": 3, "backend": 4, "runtime": 5}
SOURCE_EXTRA = {
    "mark": {"runtime/heap.h"},
    "compact": {"runtime/histogram.h"},
    "backend": {"runtime/heap.h", "runtime/thread_signals.h"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/([a-z_]+\.h)"', re.M)


def main():
    src = pathlib.Path(sys.argv[1])
    bad = []
    for path in sorted(src.glob("*/*.[ch]")):
        layer = path.parent.name
        if layer not in RANK:
            bad.append(f"{path}: directory not in the layer table")
            continue
        for dep, name in INCLUDE.findall(path.read_text()):
            header = f"{dep}/{name}"
            if dep not in RANK:
                bad.append(f"{path}: includes {header} of no known layer")
            elif dep == layer or RANK[dep] < RANK[layer]:
                continue
            elif path.suffix == ".c" and header in SOURCE_EXTRA.get(layer, set()):
                continue
            else:
                bad.append(f"{path}: {layer}/ may not include {header}")
    for line in bad:
        print(line)
    if bad:
        print(f"{len(bad)} include(s) against the layer list (docs/design.md, Layers)")
        return 1
    print(f"layers ok ({len(list(src.glob('*/*.[ch]')))} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
