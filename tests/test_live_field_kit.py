"""Live: the doctor on this machine, and snapshots of a stopped process."""

import io
import json
import os
import signal
import subprocess
import sys

import pytest
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


def call(argv):
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = pagemap.main(argv)
    finally:
        sys.stdout, sys.stderr = saved
    return code, out.getvalue(), err.getvalue()


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


def test_summary_of_capture_equals_live(stopped_target, tmp_path):
    pid = str(stopped_target)
    snap = str(tmp_path / "target.zip")
    views = [["--json"], ["--picture"], ["--json", "[heap]"]]
    if IS_ROOT:
        views.append(["--json", "--flags"])
    live = [call([pid] + view) for view in views]
    code, out, err = call([pid, "--capture", snap])
    assert code == 0 and "captured PID %s" % pid in out
    for view, expected in zip(views, live):
        assert call(["--from", snap] + view) == expected, view
    total = json.loads(live[0][1])["total"]
    assert total["resident"] > 20 << 20 and total["huge"] >= 0
