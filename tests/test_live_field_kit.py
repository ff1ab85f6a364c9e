"""Live: the doctor on this machine, and snapshots of a stopped process."""

import json
import os
import signal
import subprocess
import sys

import pytest
from conftest import ROOT, call
from test_live import IS_ROOT

import pagemap

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.path.exists("/proc/self/pagemap"),
                       reason="no /proc/self/pagemap on this system"),
]

TARGET = r"""
import mmap, sys
m = mmap.mmap(-1, 64 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range(0, 64 << 20, 3 * 4096):
    m[i] = 1
big = bytearray(8 << 20)
thp = mmap.mmap(-1, 8 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
try:
    thp.madvise(getattr(mmap, "MADV_HUGEPAGE", 14))
except OSError:
    pass
for i in range(0, 8 << 20, 4096):
    thp[i] = 1
print("ready", flush=True)
sys.stdin.read()
"""


def test_doctor_live():
    code, out, err = call(["--json", "--check"])
    assert code == 0 and err == ""
    checks = dict((c["name"], c) for c in json.loads(out)["checks"])
    assert checks["pagemap"]["status"] == "ok"
    assert checks["pfn"]["status"] == ("ok" if IS_ROOT else "warn")
    assert checks["soft-dirty"]["status"] in ("ok", "warn")


@pytest.fixture
def stopped_target():
    child = subprocess.Popen([sys.executable, "-c", TARGET], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, universal_newlines=True)
    assert child.stdout.readline().strip() == "ready"
    os.kill(child.pid, signal.SIGSTOP)
    try:
        yield child.pid
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()


# What the stopped target alone decides: its private anonymous memory. A file or
# [vdso] page's map count, PSS and exclusive bit change whenever another process
# maps or unmaps it, page cache may be reclaimed, and compaction may move any page
# (so PFN runs split differently): for the rest, only the layout is the target's.
OWN_LABELS = ("[anonymous]", "[heap]", "[stack]")
LAYOUT = ("start", "end", "perms", "offset", "path", "size", "status")


def own_view(out):
    """The part of a view's output that depends on the stopped target alone."""
    if not out.startswith("{"):      # --picture: private anonymous strips whole
        return [line if line.split()[1].endswith("p") and line.endswith(OWN_LABELS)
                else line.split("|")[0] for line in out.splitlines()[1:]]
    doc = json.loads(out)
    if "ranges" in doc:              # a range: pages per state, not PFN runs
        pages = {}
        for span in doc["ranges"]:
            for run in span["runs"]:
                pages[run["status"]] = pages.get(run["status"], 0) + run["pages"]
        return pages
    # The kernel sets and clears a page's DIRTY flag on its own (LRU batches, reclaim):
    # it is the snapshot's moment, not the target's.
    return [dict((k, v) for k, v in row.items() if k != "dirty")
            if row["path"] in (None, "[heap]", "[stack]") and row["perms"].endswith("p")
            else dict((k, row[k]) for k in LAYOUT) for row in doc["mappings"]]


def test_summary_of_capture_equals_live(stopped_target, tmp_path):
    pid = str(stopped_target)
    snap = str(tmp_path / "target.zip")
    views = [["--json"], ["--picture"], ["--json", "[heap]"]]
    if IS_ROOT:
        views.append(["--json", "--flags"])
    live = [call([pid] + view) for view in views]
    code, out, err = call([pid, "--capture", snap])
    assert code == 0 and "captured PID %s" % pid in out
    # Why PFNs are hidden (huge pages unknown, 6.1 as nobody) names the snapshot there.
    reasons = [pagemap.hidden_pfn_reason(pagemap.Privilege(*p)) for p in ((False, None),
                                                                        (None, None, True))]
    for view, (code, out, err) in zip(views, live):
        again = call(["--from", snap] + view)
        assert (again[0], again[2]) == (code, err.replace(*reasons)), view
        assert own_view(again[1]) == own_view(out), view
    anon = [row for row in json.loads(live[0][1])["mappings"] if row["path"] is None]
    assert sum(row["resident"] for row in anon) > 20 << 20
    heap = own_view(live[2][1])
    assert heap.get("present" if IS_ROOT else "pfn-hidden"), heap


GROWER = r"""
import mmap, sys, time
m = mmap.mmap(-1, 256 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
print("ready", flush=True)
for i in range(0, 256 << 20, 4096):
    m[i] = 1
    if i % (1 << 20) == 0:
        time.sleep(0.01)
sys.stdin.read()
"""


def test_watch_sees_pages_arrive():
    child = subprocess.Popen([sys.executable, "-c", GROWER], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, universal_newlines=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        code, out, err = call([str(child.pid), "--watch", "0.3", "--times", "2"])
        finding = pagemap.check_soft_dirty("/proc", pagemap.system_page_size())
        assert code == 0 and err == ("" if finding.status == "ok" else "pagemap: warning: writes"
                                     " are not tracked, 'written' shows nothing: %s\n"
                                     % finding.detail), err
        import re
        assert re.search(r"\[anonymous\]: \+\d+ present \(now \d+\)", out), out
    finally:
        child.kill()
        child.wait()


def soft_dirty_or_skip():
    finding = pagemap.check_soft_dirty("/proc", pagemap.system_page_size())
    if finding.status != "ok":
        pytest.skip("the doctor says: " + finding.detail)


def test_written_after_clearing(stopped_target):
    soft_dirty_or_skip()
    pid = str(stopped_target)
    code, out, _ = call([pid, "--clear-soft-dirty"])
    assert code == 0 and "cleared the soft-dirty bits" in out
    code, out, _ = call([pid, "--json", "--written"])
    assert json.loads(out)["total"]["resident"] == 0     # stopped: nothing written since
    os.kill(stopped_target, signal.SIGCONT)


def test_written_refused_where_the_kernel_cannot(stopped_target):
    finding = pagemap.check_soft_dirty("/proc", pagemap.system_page_size())
    if finding.status == "ok":
        pytest.skip("this kernel tracks writes")
    code, _, err = call([str(stopped_target), "--written"])
    assert code == 5 and "CONFIG_MEM_SOFT_DIRTY" in err


WRITER = r"""
import ctypes, mmap, os, sys
page = os.sysconf("SC_PAGE_SIZE")
m = mmap.mmap(-1, 32 * page, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
try:  # one soft-dirty bit per page: no huge page may cover the region
    m.madvise(getattr(mmap, "MADV_NOHUGEPAGE", 15))
except (AttributeError, OSError):
    pass
for i in range(32):
    m[i * page] = 1
print("%x" % ctypes.addressof(ctypes.c_char.from_buffer(m)), flush=True)
for line in sys.stdin:
    for i in line.split():
        m[int(i) * page] = 2
    print("ok", flush=True)
"""


@pytest.fixture
def writer():
    """A process with 32 resident pages that writes the pages it is told to."""
    soft_dirty_or_skip()  # first: a Python without ctypes (bullseye's) is no reason to fail
    child = subprocess.Popen([sys.executable, "-c", WRITER], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, universal_newlines=True)
    try:
        start = int(child.stdout.readline(), 16)

        def write(*pages):
            child.stdin.write(" ".join(str(i) for i in pages) + "\n")
            child.stdin.flush()
            assert child.stdout.readline().strip() == "ok"
        page = pagemap.system_page_size()
        yield child.pid, start, start + 32 * page, page, write
    finally:
        child.kill()
        child.wait()


def written_pages(pid, start, end, page):
    code, out, err = call([str(pid), "--json", "--written", "--each", "%x-%x" % (start, end)])
    assert code == 0, err
    return sorted((p["vaddr"] - start) // page for r in json.loads(out)["ranges"]
                  for p in r["pages"])


def test_written_shows_exactly_the_pages_written(writer):
    pid, start, end, page, write = writer
    code, out, _ = call([str(pid), "--clear-soft-dirty"])
    assert code == 0 and "cleared the soft-dirty bits" in out
    assert written_pages(pid, start, end, page) == []
    write(3, 4, 17)
    assert written_pages(pid, start, end, page) == [3, 4, 17]
    write(31)
    assert written_pages(pid, start, end, page) == [3, 4, 17, 31]
    assert call([str(pid), "--clear-soft-dirty"])[0] == 0
    write(0)
    assert written_pages(pid, start, end, page) == [0]


def test_watch_counts_the_pages_written(writer):
    pid, start, end, page, write = writer
    assert call([str(pid), "--clear-soft-dirty"])[0] == 0
    watch = subprocess.Popen([sys.executable, os.path.join(ROOT, "pagemap.py"), str(pid),
                              "%x-%x" % (start, end), "--watch", "2", "--times", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True)
    head = watch.stdout.readline()
    assert ": 32 present, 0 swapped, 0 written" in head, head
    write(5, 6, 7, 30)
    out, err = watch.stdout.read(), watch.stderr.read()   # not communicate(): its own
    assert watch.wait(timeout=60) == 0 and err == ""      # reads lose what readline buffered
    assert out.endswith("  %x-%x: +4 written (now 4)\n" % (start, end)), (head, out)


def test_watch_headline_reaches_a_pipe_at_once():
    import select
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)                        # a pipe: block-buffered
    watch = subprocess.Popen([sys.executable, os.path.join(ROOT, "pagemap.py"), str(os.getpid()),
                              "--watch", "60", "--times", "1"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, env=env)
    try:
        ready = select.select([watch.stdout], [], [], 30)[0]   # long before the first round
        assert ready and watch.stdout.readline().startswith(b"watching PID ")
    finally:
        watch.kill()
        watch.wait()
