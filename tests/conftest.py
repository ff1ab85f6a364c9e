"""Shared fixtures: fake /proc trees and an independent pagemap entry builder.

The builder spells out bit positions from the kernel documentation
(Documentation/admin-guide/mm/pagemap.rst) on its own, so a wrong constant in
pagemap.py cannot hide behind the same wrong constant here.
"""

import io
import os
import struct
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import pagemap  # noqa: E402

try:
    # No deadlines: a timed test fails on a busy machine or an emulated CPU, and speed
    # is bench/'s to measure.
    from hypothesis import HealthCheck, settings
    settings.register_profile("pagemap", deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("pagemap")
except ImportError:
    pass


def bit(n):
    return 1 << n


def make_entry(present=False, pfn=0, swapped=False, swap_type=0, swap_offset=0,
               file_shared=False, exclusive=False, soft_dirty=False, uffd_wp=False,
               guard=False):
    """A raw u64 as the kernel (>= 6.15) writes it."""
    raw = 0
    if present:
        raw |= bit(63) | pfn
    if swapped or guard:
        raw |= bit(62) | swap_type | (swap_offset << 5)
    if file_shared:
        raw |= bit(61)
    if guard:
        raw |= bit(58)
    if uffd_wp:
        raw |= bit(57)
    if exclusive:
        raw |= bit(56)
    if soft_dirty:
        raw |= bit(55)
    return raw


# A process's maps as the kernel prints them (padding included).
DEFAULT_MAPS = """\
00400000-00401000 r-xp 00000000 08:02 1177367                            /usr/bin/cat
00600000-00603000 rw-p 00000000 00:00 0                                  [heap]
7f0000000000-7f0000010000 rw-p 00000000 00:00 0 
7f0000020000-7f0000021000 rw-s 00000000 00:05 4242                       /dev/zero (deleted)
7f0000030000-7f0000032000 rw-s 60b00000 00:0c 6804                       /dev/sprd jpg
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]
7ffc00100000-7ffc00102000 r--p 00000000 00:00 0                          [vvar]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
"""

SMAPS_TEMPLATE = """\
{line}
Size:                  8 kB
Rss:                   0 kB
VmFlags: {flags}
"""

ROOT_STATUS = "Name:\tpagemap\nCapEff:\t000001ffffffffff\n"
USER_STATUS = "Name:\tpagemap\nCapEff:\t0000000000000000\n"
INIT_UID_MAP = "         0          0 4294967295\n"


class FakeProc(object):
    """Builds a fake /proc tree under a temporary directory."""

    def __init__(self, root, page_size=4096, byteorder="=", task_size=0x7ffffffff000):
        self.root = str(root)
        self.page_size = page_size
        self.byteorder = byteorder
        self.task_size = task_size
        os.makedirs(os.path.join(self.root, "sys", "kernel"))
        self.write("sys/kernel/osrelease", "6.18.0-test\n")
        self.reader(privileged=True)
        self.write("swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")

    def write(self, rel, text):
        path = os.path.join(self.root, rel)
        if not os.path.isdir(os.path.dirname(path)):
            os.makedirs(os.path.dirname(path))
        with io.open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def reader(self, privileged=True, uid_map=INIT_UID_MAP):
        """The reader's own /proc/self: its capabilities and user namespace."""
        self.write("self/status", ROOT_STATUS if privileged else USER_STATUS)
        self.write("self/uid_map", uid_map)

    def kernel(self, release):
        self.write("sys/kernel/osrelease", release + "\n")

    def swaps(self, *paths):
        lines = ["Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority"]
        for i, p in enumerate(paths):
            lines.append("%-40s file\t\t65532\t\t1024\t\t%d" % (p, -2 - i))
        self.write("swaps", "\n".join(lines) + "\n")

    def kpage(self, name, values, pfns=1 << 24):
        """A sparse /proc/kpageflags (kpagecount, kpagecgroup): {pfn: value}, for
        PFNs below pfns (the rest read back as 0, like memory holes)."""
        path = os.path.join(self.root, name)
        with open(path, "r+b" if os.path.exists(path) else "wb") as f:
            for pfn, value in values.items():
                f.seek(pfn * 8)
                f.write(struct.pack(self.byteorder + "Q", value))
            f.seek(0, 2)
            if f.tell() < pfns * 8:
                f.truncate(pfns * 8)

    def sysfs(self, rel, text=None):
        """A file (or, with text None, a directory) in the sys tree beside /proc."""
        path = os.path.join(os.path.dirname(self.root), "sys", rel)
        if text is None:
            if not os.path.isdir(path):
                os.makedirs(path)
        else:
            if not os.path.isdir(os.path.dirname(path)):
                os.makedirs(os.path.dirname(path))
            with io.open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return path

    def process(self, pid, entries=None, maps=DEFAULT_MAPS, state="S", flags=0x400000,
                smaps=None, name="cat"):
        """A process directory; entries maps virtual address -> raw u64."""
        d = "%s" % pid
        self.write(d + "/maps", maps)
        self.write(d + "/stat", "%s (%s) %s 1 1 1 0 -1 %d 0 0 0 0\n" % (
            pid if pid != "self" else 4242, name, state, flags))
        if smaps is not None:
            self.write(d + "/smaps", smaps)
        path = os.path.join(self.root, d, "pagemap")
        with open(path, "wb") as f:
            fmt = self.byteorder + "Q"
            for vaddr, raw in sorted((entries or {}).items()):
                f.seek((vaddr // self.page_size) * 8)
                f.write(struct.pack(fmt, raw))
            # The file ends where the user address space ends: reads beyond return 0 bytes.
            f.truncate((self.task_size // self.page_size) * 8)
        return os.path.join(self.root, d)


@pytest.fixture
def fake(tmp_path):
    return FakeProc(tmp_path / "proc")


def run_main(argv, capsys):
    """Run pagemap.main in-process: (exit code, stdout, stderr)."""
    code = pagemap.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def run(capsys):
    return lambda argv: run_main(argv, capsys)


def call(argv):
    """pagemap.main with its output captured, outside pytest's capsys: [code, out, err]."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = pagemap.main(argv)
    finally:
        sys.stdout, sys.stderr = saved
    return [code, out.getvalue(), err.getvalue()]


class forked_child(object):
    """A forked copy of this process, paused until the block ends, then killed:
    its pages are shared with ours (copy on write) for the block's duration."""

    def __enter__(self):
        import signal
        r, w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(r)
            os.write(w, b"x")
            signal.pause()
            os._exit(0)
        os.close(w)
        os.read(r, 1)
        os.close(r)
        return self.pid

    def __exit__(self, *exc):
        import signal
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)


def fail_reads(monkeypatch, exc):
    """Make every pread of pagemap.py raise exc (a process gone, an I/O error)."""
    def failing(fd, n, off):
        raise exc
    monkeypatch.setattr(pagemap.os, "pread", failing)


def assert_one_error(code, err, expected_code, *fragments):
    """Exactly one 'pagemap: error:' line, the right exit code, no traceback."""
    assert code == expected_code, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pagemap: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
