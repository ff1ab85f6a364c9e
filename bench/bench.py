#!/usr/bin/env python3
"""Benchmark pagemap.py against the C limit (../shared/bench-kit).

Starts the bench-kit target with gigabytes mapped in several patterns, then,
for each region, times inside this process (median of REPS):

  summary  Walker.counts over the region        vs  pmlimit count
  runs     every run of Walker.runs              vs  pmlimit runs

and prints entries/s and the ratio to C (lower is better; 1.00 = C speed).
It also times an untouched region with and without PAGEMAP_SCAN, --physical
against reading /proc/kpageflags, the headline command and compile() against
the bare interpreter and the baseline file, listings and summaries end to end
(pagemap.main, output to /dev/null) against `pmlimit list` or the plain
command, the summaries' CPU time against the file at BASELINE, and the peak RSS
of whole commands against the interpreter's floor.

Usage (as root, from the project root):
    python3 bench/bench.py [--reps N] [--physical | --summaries]
Needs gcc for the bench-kit programs; without them only pagemap.py is timed.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import pagemap  # noqa: E402

KIT = os.path.join(ROOT, "..", "shared", "bench-kit")
REGIONS = ["full:1024:full", "sparse:1024:sparse", "every256:1024:every256",
           "thp:1024:thp", "untouched:16384:none"]


def build_kit(tmp):
    """Compile target and pmlimit; return their paths (pmlimit None if impossible)."""
    if not shutil.which("gcc") or not os.path.isdir(KIT):
        return None, None
    out = []
    for name in ("target", "pmlimit"):
        exe = os.path.join(tmp, name)
        subprocess.check_call(["gcc", "-O2", "-o", exe, os.path.join(KIT, name + ".c")])
        out.append(exe)
    return out


def build_kpread(tmp):
    """Compile bench/kpread.c (the kernel's cost of kpage reads); None without gcc."""
    exe = os.path.join(tmp, "kpread")
    if not shutil.which("gcc"):
        return None
    subprocess.check_call(["gcc", "-O2", "-o", exe, os.path.join(HERE, "kpread.c")])
    return exe


def kpage_cpu(kpread, runs, names, reps):
    """CPU seconds the kernel takes to read the kpage files NAMES at the PFN runs
    RUNS, one pread a run in address order or sorted with neighbours joined,
    whichever is less: what any tool that needs those values pays."""
    import struct
    joined = []
    for pfn, pages in sorted(runs):
        if joined and joined[-1][0] + joined[-1][1] == pfn:
            joined[-1][1] += pages
        else:
            joined.append([pfn, pages])
    costs = []
    for order in (runs, joined):
        with tempfile.NamedTemporaryFile() as f:
            f.write(b"".join(struct.pack("=QQ", pfn, pages) for pfn, pages in order))
            f.flush()
            costs.append(sum(float(subprocess.check_output(
                [kpread, "/proc/" + name, f.name, str(reps)])) for name in names))
    return min(costs)


def resident_pfn_runs(walker, spans):
    """The PFN runs of the resident pages of spans [(start vpn, end vpn)]."""
    runs = []
    for vpn, end in spans:
        runs += pagemap.physical_runs(list(walker.runs(vpn, end)))
    return runs


def start_target(exe, specs):
    proc = subprocess.Popen([exe] + specs, stdout=subprocess.PIPE, universal_newlines=True)
    regions = {}
    for line in proc.stdout:
        words = line.split()
        if words[0] == "region":
            regions[words[1]] = (int(words[2], 16), int(words[3], 16))
        elif words[0] == "ready":
            return proc, regions
    raise SystemExit("target did not start")


def median_time(fn, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def pmlimit(exe, pid, mode, reps, rng):
    if exe is None:
        return None
    with open(os.devnull, "w") as devnull:
        proc = subprocess.run([exe, str(pid), mode, str(reps), "65536", rng],
                              stdout=devnull if mode == "list" else subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, check=True)
    out = proc.stderr if mode == "list" else proc.stdout
    fields = dict(kv.split("=") for kv in out.split())
    return float(fields["median_s"])


def cpu_per_rep(fn, reps):
    """CPU time (user + system) of a call of fn, the mean of reps. On a machine
    others share, wall time counts their turns too, most in long pagemap reads
    (the kernel yields there): 1 GiB of 4K pages read in 3 to 14 ms."""
    t0 = time.process_time()
    for _ in range(reps):
        fn()
    return (time.process_time() - t0) / reps


def pmlimit_cpu(exe, pid, mode, reps, rng):
    """CPU time of a repetition of pmlimit MODE over rng: a run over rng less a
    run over its first page (start-up, opening the file)."""
    import resource

    def run(r):
        t0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        pmlimit(exe, pid, mode, reps, r)
        t1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return t1.ru_utime + t1.ru_stime - t0.ru_utime - t0.ru_stime
    start = int(rng.split("-")[0], 16)
    return (run(rng) - run("%x-%x" % (start, start + 4096))) / reps


def ratios(fn, floor, rounds):
    """Median and range of fn() / floor() over rounds, each pair timed back to back."""
    got = sorted(fn() / floor() for _ in range(rounds))
    return got[len(got) // 2], got[0], got[-1]


def show_ratio(what, floor_name, r):
    print("%-44s %5.2fx (%.2f-%.2f)  vs %s" % (what, r[0], r[1], r[2], floor_name))


def command_time(argv):
    """Wall time of one run of a command, output to /dev/null."""
    with open(os.devnull, "w") as devnull:
        t0 = time.perf_counter()
        subprocess.call(argv, stdout=devnull, stderr=devnull)
        return time.perf_counter() - t0


def child_cpu(argv):
    """CPU time (user + system) of one run of a command, output to /dev/null, from
    getrusage: os.times() counts children in clock ticks (10 ms here)."""
    import resource
    t0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    command_time(argv)
    t1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return t1.ru_utime + t1.ru_stime - t0.ru_utime - t0.ru_stime


def command_cpu(args):
    """CPU time (user + system) of python3 ARGS, output to /dev/null: steadier than
    wall time on a loaded machine."""
    return child_cpu([sys.executable] + args)


def main_time(argv):
    """Time of pagemap.main(argv) in this process, output written to /dev/null:
    the command's whole work, interpreter start-up aside."""
    import contextlib
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        t0 = time.perf_counter()
        pagemap.main(argv)
        return time.perf_counter() - t0


BASELINE = "b20a5f3"    # pagemap.py before the start-up work of issue 9


def baseline_file():
    """BASELINE's pagemap.py in a temporary file (removed at exit), or None."""
    import atexit
    try:
        text = subprocess.check_output(["git", "-C", ROOT, "show", BASELINE + ":pagemap.py"],
                                       stderr=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError):
        return None
    fd, path = tempfile.mkstemp(suffix=".py")
    with os.fdopen(fd, "wb") as f:
        f.write(text)
    atexit.register(os.unlink, path)
    return path


def bench_startup(rounds):
    """The headline command against the bare interpreter, and compile() of the
    file against the baseline's (git show BASELINE:pagemap.py)."""
    script = os.path.join(ROOT, "pagemap.py")
    with open(script) as f:
        source = f.read()
    try:
        old = subprocess.check_output(["git", "-C", ROOT, "show", BASELINE + ":pagemap.py"],
                                      stderr=subprocess.DEVNULL, universal_newlines=True)
    except (OSError, subprocess.CalledProcessError):
        old = None

    def compile_time(text):
        """The least CPU time of 5 compiles: what others running take is not ours."""
        times = []
        for _ in range(5):
            t0 = time.process_time()
            compile(text, "pagemap.py", "exec")
            times.append(time.process_time() - t0)
        return min(times)
    t = compile_time(source)
    print("compile(): %.1f ms for %d KB" % (t * 1e3, len(source) // 1000))
    if old is not None:
        show_ratio("compile() of pagemap.py", "the file at %s (%d KB)" % (
            BASELINE, len(old) // 1000),
            ratios(lambda: compile_time(source), lambda: compile_time(old), rounds))
    headline = [sys.executable, script, "self", "0x400000"]
    bare = [sys.executable, "-c", "pass"]
    show_ratio("python3 pagemap.py self 0x400000", "python3 -c pass",
               ratios(lambda: command_time(headline), lambda: command_time(bare), rounds))
    show_ratio("CPU of python3 pagemap.py self 0x400000", "CPU of python3 -c pass",
               ratios(lambda: command_cpu(headline[1:]), lambda: command_cpu(bare[1:]), rounds))
    startup_parts(script, rounds)
    if peak_rss_kib(bare[1:]) is None:
        print("peak RSS: needs GNU time (/usr/bin/time), skipped")
        return
    rss = sorted(peak_rss_kib(headline[1:]) - peak_rss_kib(bare[1:]) for _ in range(rounds))
    print("%-44s +%.1f MiB (%.1f-%.1f) peak RSS over python3 -c pass" % (
        "python3 pagemap.py self 0x400000", rss[len(rss) // 2] / 1024.0, rss[0] / 1024.0,
        rss[-1] / 1024.0))


# The headline's steps in a fresh interpreter, CPU seconds each.
PARTS = """import os, sys, time
clock = time.process_time
t0 = clock()
code = compile(open(sys.argv[1]).read(), sys.argv[1], "exec")
t1 = clock()
names = {"__name__": "pagemap"}
exec(code, names)
t2 = clock()
out = os.dup(1)
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
names["main"](["self", "0x400000"])
sys.stdout.flush()
t3 = clock()
os.write(out, ("%f %f %f" % (t1 - t0, t2 - t1, t3 - t2)).encode())
"""


def startup_parts(script, rounds):
    """Where the headline's CPU time goes past the interpreter's start: compiling
    the file, the module body and the lookup (medians over fresh interpreters)."""
    steps = [[float(x) for x in subprocess.check_output(
        [sys.executable, "-c", PARTS, script]).split()] for _ in range(rounds)]
    print("headline in a fresh interpreter: compile %.1f ms, module body %.1f ms, lookup "
          "%.1f ms" % tuple(sorted(column)[len(column) // 2] * 1e3 for column in zip(*steps)))


def page_span(rng, ps):
    return rng[0] // ps, -(-rng[1] // ps)


def bench_outputs(rounds, pid, regions, limit, walker, kpread):
    """Listings and summaries as the user asks for them (pagemap.main, output
    to /dev/null), each against its floor timed in the same round."""
    full = "%x-%x" % regions["full"]
    p = str(pid)
    if limit is not None:
        c_list = lambda: pmlimit(limit, pid, "list", 1, full)  # noqa: E731
        show_ratio("listing of 1 GiB full, text", "pmlimit list",
                   ratios(lambda: main_time([p, full]), c_list, rounds))
        show_ratio("listing of 1 GiB full, --json", "pmlimit list",
                   ratios(lambda: main_time([p, full, "--json"]), c_list, rounds))
        for extra in ([], ["--json"]):   # CPU time: steadier on a busy machine
            show_ratio("CPU of the listing of 1 GiB full, %s" % " ".join(extra or ["text"]),
                       "CPU of pmlimit list", ratios(
                           lambda e=extra: cpu_per_rep(lambda: main_time([p, full] + e), 1),
                           lambda: pmlimit_cpu(limit, pid, "list", 1, full), rounds))
    # CPU time, and the floor: the plain command plus the kernel's reads of the
    # kpage values the option needs (bench/kpread.c), whatever reads them.
    cpu = lambda argv: cpu_per_rep(lambda: main_time(argv), 1)  # noqa: E731
    ps = pagemap.system_page_size()
    whole = [(m.start // ps, -(-m.end // ps)) for m in walker.reader.maps()]
    for extra, plain, spans, names in (
            (["--flags"], [p, full], [page_span(regions["full"], ps)], pagemap.KPAGE_FILES),
            (["--flags"], [p], whole, pagemap.KPAGE_FILES[:2]),
            (["--match", "anon"], [p], whole, pagemap.KPAGE_FILES[:1]),
            (["--match", "shared"], [p], whole, pagemap.KPAGE_FILES[1:2])):
        what = "%s, %s" % ("listing of 1 GiB full" if len(plain) > 1 else "summary",
                           " ".join(extra))
        r = ratios(lambda a=plain + extra: cpu(a), lambda a=plain: cpu(a), rounds)
        floor = ""
        if kpread:
            runs = resident_pfn_runs(walker, spans)
            kernel = kpage_cpu(kpread, runs, names, rounds)
            base = sorted(cpu(plain) for _ in range(rounds))[rounds // 2]
            # The cost follows the PFN runs, which the machine's free memory decides.
            floor = "; C floor %.2fx, %d PFN runs" % ((base + kernel) / base, len(runs))
        show_ratio("CPU of the " + what, "CPU without it" + floor, r)
    old = baseline_file()
    for extra in ([], ["--flags"], ["--match", "anon"], ["--match", "shared"]) if old else ():
        argv = [p] + extra
        show_ratio("CPU of the summary %s" % " ".join(extra), "the file at %s" % BASELINE,
                   ratios(lambda a=argv: command_cpu([os.path.join(ROOT, "pagemap.py")] + a),
                          lambda a=argv: command_cpu([old] + a), rounds))
    start = regions["full"][0]
    mib64 = "%x-%x" % (start, start + (64 << 20))
    pages = (64 << 20) // pagemap.system_page_size()
    t = median_time(lambda: main_time([p, mib64, "--each", "--json"]), rounds)
    print("%-44s %.2f us a page (%d pages in %.2f s)" % ("--each --json of 64 MiB", t / pages * 1e6,
                                                       pages, t))
    bench_physical_end_to_end(rounds)
    untouched = regions["untouched"]
    show_ratio("listing of untouched 16 GiB", "a lookup of one of its pages",
               ratios(lambda: main_time([p, "%x-%x" % untouched]),
                      lambda: main_time([p, "%x" % (untouched[0] + (1 << 20))]), rounds))


def peak_rss_kib(argv):
    """Peak RSS of one run of python3 ARGV, as GNU time reports it (None without
    it). Not from wait4 here: a child forked from this process starts with its
    size, which the kernel keeps as the child's peak across exec."""
    if not os.path.exists("/usr/bin/time"):
        return None
    with open(os.devnull, "w") as devnull:
        err = subprocess.run(["/usr/bin/time", "-f", "rss=%M", sys.executable] + argv,
                             stdout=devnull, stderr=subprocess.PIPE,
                             universal_newlines=True).stderr
    return int(err.rsplit("rss=", 1)[1].split()[0])


def bench_physical(reps):
    """--physical over all of /proc/kpageflags, against reading the file alone."""
    kpage = pagemap.KPageReader("/proc")
    if not kpage.available("kpageflags"):
        print("--physical: /proc/kpageflags unreadable, skipped")
        return
    fd = kpage.fds["kpageflags"]

    def read_all():
        off = 0
        while True:
            data = os.pread(fd, pagemap.PHYSICAL_CHUNK * 8, off)
            if not data:
                return off // 8
            off += len(data)
    pfns = read_all()
    full = median_time(lambda: pagemap.physical_flag_counts(kpage, 0, None), reps)
    r = ratios(lambda: cpu_per_rep(lambda: pagemap.physical_flag_counts(kpage, 0, None), 1),
               lambda: cpu_per_rep(read_all, 1), reps)
    kpage.close()
    print("--physical: %d PFNs (%s) counted in %.3f s (%.1f M PFN/s), CPU %.2fx (%.2f-%.2f) "
          "reading kpageflags alone" % (pfns, pagemap.human_size(
              pfns * pagemap.system_page_size()), full, pfns / full / 1e6, r[0], r[1], r[2]))


def bench_physical_end_to_end(rounds):
    """--physical in this process and as a command, against dd reading the file."""
    dd = ["dd", "if=/proc/kpageflags", "of=/dev/null", "bs=1M"]
    if not shutil.which("dd"):
        return
    show_ratio("--physical (in process)", " ".join(dd),
               ratios(lambda: main_time(["--physical"]), lambda: command_time(dd), rounds))
    command = [sys.executable, os.path.join(ROOT, "pagemap.py"), "--physical"]
    show_ratio("python3 pagemap.py --physical", " ".join(dd),
               ratios(lambda: command_time(command), lambda: command_time(dd), rounds))
    show_ratio("CPU of python3 pagemap.py --physical", "CPU of " + " ".join(dd),
               ratios(lambda: child_cpu(command), lambda: child_cpu(dd), rounds))


def bench_reverse(reps, reader, regions):
    """--phys over every process, for a page of the target's full region."""
    import io
    ps = pagemap.system_page_size()
    start = regions["full"][0] + 12345 * ps
    paddr = pagemap.translate(reader.pid, start).paddr
    pids = pagemap.list_pids("/proc")
    mapped = 0
    for pid in pids:
        try:
            r = pagemap.ProcessReader("/proc", pid, ps)
            mapped += sum((m.end - m.start) // ps for m in r.maps())
        except pagemap.PagemapError:
            continue

    def run():
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = io.StringIO()
        try:
            pagemap.main(["--phys", hex(paddr)])
        finally:
            sys.stdout, sys.stderr = saved
    t = median_time(run, reps)
    print("--phys: %d processes, %d pages mapped (%s), whole machine in %.3f s "
          "(%.1f M mapped pages/s)" % (len(pids), mapped, pagemap.human_size(mapped * ps), t,
                                       mapped / t / 1e6))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--physical", action="store_true",
                        help="time only --physical (needs no target)")
    parser.add_argument("--summaries", action="store_true",
                        help="time only the summaries of each region")
    opts = parser.parse_args()
    if opts.physical:
        bench_physical(opts.reps)
        bench_physical_end_to_end(opts.reps)
        return
    tmp = tempfile.mkdtemp()
    target, limit = build_kit(tmp)
    kpread = build_kpread(tmp)
    if target is None:
        raise SystemExit("needs gcc and ../shared/bench-kit to start a target")
    proc, regions = start_target(target, REGIONS)
    try:
        run(opts, proc.pid, regions, limit, kpread)
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(tmp)


def run(opts, pid, regions, limit, kpread):
    ps = pagemap.system_page_size()
    reader = pagemap.ProcessReader("/proc", str(pid), ps)
    reader.open_pagemap()
    walker = pagemap.Walker(reader, pagemap.pmd_pages_for("/proc", ps))
    print("pagemap.py %s, Python %s, kernel %s, page size %d" % (
        pagemap.__version__, sys.version.split()[0], os.uname()[2], ps))
    print("%-11s %-7s %10s %12s %10s  %s" % ("region", "mode", "entries", "M entries/s",
                                             "C M/s", "CPU ratio: median (range)"))
    for name, (start, end) in sorted(regions.items()):
        v0, v1 = start // ps, end // ps
        rng = "%x-%x" % (start, end)
        n = v1 - v0
        for mode, fn in (("summary", lambda a=v0, b=v1: walker.counts(a, b)),
                         ("runs", lambda a=v0, b=v1: deque(walker.runs(a, b), maxlen=0))
                         )[:1 if opts.summaries else 2]:
            t = median_time(fn, opts.reps)
            kind = "count" if mode == "summary" else "runs"
            c = pmlimit(limit, pid, kind, opts.reps, rng)
            # The ratio of CPU times, each round's pair timed back to back.
            r = c and ratios(lambda f=fn: cpu_per_rep(f, opts.reps),
                             lambda k=kind, g=rng: pmlimit_cpu(limit, pid, k, opts.reps, g),
                             opts.reps)
            print("%-11s %-7s %10d %12.1f %10s  %s" % (
                name, mode, n, n / t / 1e6, "-" if c is None else "%.1f" % (n / c / 1e6),
                "%.2f (%.2f-%.2f)" % r if r else "-"))
    if opts.summaries:
        return
    # The whole process, as the command line sees it.
    maps = reader.maps()
    total = sum(-(-m.end // ps) - m.start // ps for m in maps)
    t = median_time(lambda: [walker.counts(m.start // ps, -(-m.end // ps)) for m in maps],
                    opts.reps)
    c = pmlimit(limit, pid, "count", opts.reps, "maps")
    print("%-11s %-7s %10d %12.1f %10s %8s" % (
        "maps", "summary", total, total / t / 1e6,
        "-" if c is None else "%.1f" % (total / c / 1e6), "-" if c is None else "%.2f" % (t / c)))
    # Untouched memory: PAGEMAP_SCAN against plain reads.
    start, end = regions["untouched"]
    with_scan = median_time(lambda: walker.counts(start // ps, end // ps), opts.reps)
    saved = walker.scanner.works
    walker.scanner.works = False
    plain = median_time(lambda: walker.counts(start // ps, end // ps), opts.reps)
    walker.scanner.works = saved
    print("untouched %d GiB summary: %.2f ms with PAGEMAP_SCAN (%s), %.2f ms with reads" % (
        (end - start) >> 30, with_scan * 1e3, "used" if saved else "unavailable", plain * 1e3))
    bench_physical(opts.reps)
    bench_reverse(opts.reps, reader, regions)
    print("End to end (median ratio of %d rounds, range in brackets):" % opts.reps)
    bench_startup(opts.reps)
    bench_outputs(opts.reps, pid, regions, limit, walker, kpread)
    reader.close()
    script = os.path.join(ROOT, "pagemap.py")
    floor = peak_rss_kib(["-c", "pass"])
    if floor is None:
        return
    started = peak_rss_kib([script, "--version"])
    summary = peak_rss_kib([script, str(pid)])
    listing = peak_rss_kib([script, str(pid), "%x-%x" % regions["full"]])
    print("peak RSS: python3 -c pass %d KiB; pagemap --version +%d KiB; over that, "
          "whole-process summary +%d KiB, run listing of 1 GiB +%d KiB" % (
              floor, started - floor, summary - started, listing - started))


if __name__ == "__main__":
    main()
