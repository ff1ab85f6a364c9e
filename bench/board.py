#!/usr/bin/env python3
"""The headline command on a small board, against the interpreter's floor.

Runs, alternately and REPS times each, from the project root:

  lookup  python3 pagemap.py self 0x400000
  floor   python3 -c pass

and prints the median wall time and the median peak RSS (the child's
ru_maxrss) of each, and their ratio. Made for the armhf guest with 256 MiB and
one vCPU:

  PAGEMAP_TARGET_MEM=256 PAGEMAP_TARGET_CPUS=1 \\
      sh tests/targets/boot.sh armhf python3 bench/board.py
"""

import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
COMMANDS = (("lookup", [sys.executable, os.path.join(ROOT, "pagemap.py"), "self", "0x400000"]),
            ("floor", [sys.executable, "-c", "pass"]))


def run_once(argv):
    """(wall seconds, peak RSS KiB, exit status) of one run."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status) if hasattr(
        os, "waitstatus_to_exitcode") else status >> 8
    return wall, usage.ru_maxrss, child.returncode


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    results = dict((name, []) for name, _ in COMMANDS)
    for _name, argv in COMMANDS:        # warm the page cache once
        run_once(argv)
    for _ in range(reps):
        for name, argv in COMMANDS:
            results[name].append(run_once(argv))
    uname = os.uname()
    print("board: %s %s, Python %s, %d CPU(s), %d runs each" % (
        uname.release, uname.machine, sys.version.split()[0], os.cpu_count() or 0, reps))
    wall = dict((n, median([r[0] for r in rs])) for n, rs in results.items())
    rss = dict((n, median([r[1] for r in rs])) for n, rs in results.items())
    for name, argv in COMMANDS:
        print("  %-6s %-40s wall %6.3f s  peak RSS %6d KiB  exit %s" % (
            name, " ".join(["python3"] + argv[1:]).replace(ROOT + os.sep, ""), wall[name],
            rss[name], sorted(set(r[2] for r in results[name]))))
    print("  lookup / floor: wall %.2fx (+%.3f s), peak RSS %.2fx (+%d KiB)" % (
        wall["lookup"] / wall["floor"], wall["lookup"] - wall["floor"],
        rss["lookup"] / rss["floor"], rss["lookup"] - rss["floor"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
