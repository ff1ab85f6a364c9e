"""Live: the doctor on this machine, and snapshots of a stopped process."""

import json
import os
import signal
import subprocess
import sys

import pytest
from conftest import call
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
    for view, (code, out, err) in zip(views, live):
        again = call(["--from", snap] + view)
        assert (again[0], again[2]) == (code, err), view
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
        assert code == 0 and err == ""
        import re
        assert re.search(r"\[anonymous\]: \+\d+ present \(now \d+\)", out), out
    finally:
        child.kill()
        child.wait()


def soft_dirty_or_skip():
    reader = pagemap.ProcessReader("/proc", "self", pagemap.system_page_size())
    try:
        finding = pagemap.check_soft_dirty("/proc", reader)
    finally:
        reader.close()
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
    reader = pagemap.ProcessReader("/proc", "self", pagemap.system_page_size())
    try:
        finding = pagemap.check_soft_dirty("/proc", reader)
    finally:
        reader.close()
    if finding.status == "ok":
        pytest.skip("this kernel tracks writes")
    code, _, err = call([str(stopped_target), "--written"])
    assert code == 5 and "CONFIG_MEM_SOFT_DIRTY" in err
