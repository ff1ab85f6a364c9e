"""Numbers a user can trust (issue 10), live: agreement with smaps, the observer
effect, unprivileged answers."""

import os
import subprocess
import sys

import pytest
from conftest import ROOT, call
from test_live import as_nobody

import pagemap

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.path.exists("/proc/self/pagemap"),
                       reason="no /proc/self/pagemap on this system"),
]

PAGE = os.sysconf("SC_PAGE_SIZE")
SCRIPT = os.path.join(ROOT, "pagemap.py")


def kernel_thread():
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/stat" % pid) as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2:].split()[6]) & pagemap.PF_KTHREAD:
                return pid
    pytest.skip("no kernel thread visible in this pid namespace")


def test_kernel_thread_same_answer_unprivileged():
    pid = kernel_thread()
    done = as_nobody(SCRIPT, pid, "400000")
    assert done.returncode == 3 and "kernel thread" in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_match_on_kpageflags_unprivileged_is_an_error():
    done = as_nobody(SCRIPT, "self", "--match", "anon")
    assert done.returncode == 4 and done.stdout == "", done.stderr
    assert "kpageflags" in done.stderr and len(done.stderr.splitlines()) == 1


def test_watch_of_a_zombie_stops():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.4)"])
    try:
        code, out, err = call([str(child.pid), "--watch", "0.2", "--times", "20"])
        assert code == 3 and "zombie" in err, (out, err)
    finally:
        child.wait()
