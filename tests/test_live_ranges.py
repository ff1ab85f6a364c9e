"""Live checks of ranges and summaries against the kernel's own accounting."""

import ctypes
import io
import json
import mmap
import os
import struct
import subprocess
import sys

import pytest
from test_live import IS_ROOT, MADV_PAGEOUT, PAGE, private_anon, smaps_block, steady, swapfile  # noqa

import pagemap

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.path.exists("/proc/self/pagemap"),
                       reason="no /proc/self/pagemap on this system"),
]
MADV_HUGEPAGE = getattr(mmap, "MADV_HUGEPAGE", 14)


def isolate(addr, length):
    """mprotect the region read-only so it cannot merge with the interpreter's own
    anonymous memory, which changes between two readings."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    assert libc.mprotect(addr, length, 1) == 0, os.strerror(ctypes.get_errno())


def region_start(addr):
    return [r for r in pagemap.parse_maps(open("/proc/self/maps").read())
            if r.start <= addr < r.end][0].start


def summary_of_self(capsys):
    assert pagemap.main(["self", "--json"]) == 0
    return {m["start"]: m for m in json.loads(capsys.readouterr().out)["mappings"]}


def smaps_kib(start, key):
    return int(smaps_block(start)[key].split()[0]) * 1024


def test_summary_matches_smaps_for_touched_and_untouched(capsys):
    m, addr = private_anon(64)
    for i in range(0, 64, 3):
        m[i * PAGE:i * PAGE + 1] = b"t"
    isolate(addr, 64 * PAGE)
    start = region_start(addr)
    assert start == addr
    row, rss, swap = steady(lambda: (summary_of_self(capsys)[start], smaps_kib(start, "Rss"),
                                     smaps_kib(start, "Swap")))
    assert (row["resident"], row["swapped"]) == (rss, swap)
    assert rss + swap >= 22 * PAGE   # reclaim may have swapped some out
    m.close()


def test_summary_matches_smaps_after_pageout(swapfile, capsys):  # noqa: F811
    m, addr = private_anon(32)
    for i in range(32):
        m[i * PAGE:i * PAGE + 1] = b"s"
    isolate(addr, 32 * PAGE)
    m.madvise(MADV_PAGEOUT, 0, 16 * PAGE)
    start = region_start(addr)
    row, rss, swap = steady(lambda: (summary_of_self(capsys)[start], smaps_kib(start, "Rss"),
                                     smaps_kib(start, "Swap")))
    if not swap:
        pytest.skip("the kernel swapped none of our pages out (a cgroup without swap?)")
    assert (row["resident"], row["swapped"]) == (rss, swap)
    m.close()


def thp_region():
    """8 MiB of private anon memory with MADV_HUGEPAGE, touched; skip without THP."""
    enabled = "/sys/kernel/mm/transparent_hugepage/enabled"
    if not os.path.exists(enabled):
        pytest.skip("no THP: no %s (kernel option, or a CPU without huge pages)" % enabled)
    if "[never]" in open(enabled).read():
        pytest.skip("THP is disabled")
    size = 8 << 20
    m = mmap.mmap(-1, size + (2 << 20), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    base = ctypes.addressof(ctypes.c_char.from_buffer(m))
    aligned = (base + (2 << 20) - 1) & ~((2 << 20) - 1)
    off = aligned - base
    m.madvise(MADV_HUGEPAGE, off, size)
    for i in range(0, size, PAGE):
        m[off + i:off + i + 1] = b"h"
    isolate(aligned, size)
    # All huge, or khugepaged may collapse the rest while a test compares readings.
    if smaps_kib(aligned, "AnonHugePages") not in (0, size):
        pytest.skip("the kernel gave THP for part of the region only (fragmented memory?)")
    return m, aligned, size


def test_thp_region_counts_and_runs(capsys):
    m, aligned, size = thp_region()
    start = region_start(aligned)
    row, rss, anon_huge = steady(lambda: (summary_of_self(capsys)[start], smaps_kib(
        start, "Rss"), smaps_kib(start, "AnonHugePages")))
    if not anon_huge:
        pytest.skip("the kernel gave no THP here")
    assert row["resident"] == rss
    if IS_ROOT:
        assert row["huge"] == anon_huge
    # Each huge page is one physical run: runs start on 2 MiB boundaries.
    assert pagemap.main(["self", "--json", "%x+%x" % (aligned, size)]) == 0
    runs = json.loads(capsys.readouterr().out)["ranges"][0]["runs"]
    assert sum(r["pages"] for r in runs) == size // PAGE
    if IS_ROOT:
        assert all(r["start"] % (2 << 20) == 0 and r["pages"] % 512 == 0 for r in runs)
        assert len(runs) <= size // (2 << 20)
    m.close()


def test_scan_and_plain_reads_agree_live():
    m, addr = private_anon(4096)
    # No THP: Linux 6.12 splits mostly-zero THPs under pressure (the underused-THP
    # shrinker), which would change the pages between two readings.
    m.madvise(getattr(mmap, "MADV_NOHUGEPAGE", 15))
    for i in range(0, 4096, 7):
        m[i * PAGE:i * PAGE + 1] = b"x"
    reader = pagemap.ProcessReader("/proc", "self", PAGE)
    walker = pagemap.Walker(reader, pagemap.pmd_pages_for("/proc", PAGE))
    maps = [r for r in reader.maps() if r.start < pagemap.ADDRESS_MAX >> 1]
    v0, v1 = addr // PAGE, addr // PAGE + 4096

    def snapshot():
        return (walker.counts(v0, v1), list(walker.runs(v0, v1)),
                [walker.counts(r.start // PAGE, r.end // PAGE)[0].pages for r in maps])
    snapshot()
    scan = walker.scanner.works

    def look():   # with PAGEMAP_SCAN, without it, and plain reads
        walker.scanner.works = scan
        first = snapshot()
        walker.scanner.works = False
        with open("/proc/self/pagemap", "rb") as f:
            f.seek(v0 * 8)
            return first, snapshot(), struct.unpack("=%dQ" % (v1 - v0), f.read((v1 - v0) * 8))
    first, plain, raw = steady(look)   # reclaim may take pages between readings
    assert plain == first
    # Either way (before 6.7 the fallback alone) the answers are those of plain reads.
    present = [e >> 63 for e in raw]
    assert first[0][0].present == sum(present) == len(range(0, 4096, 7))
    assert first[0][0].exclusive == sum((e >> 56) & 1 for e in raw)
    assert [r[2] >> 63 for r in first[1] for _ in range(r[1])] == present
    reader.close()
    m.close()


@pytest.mark.skipif(sys.maxsize < 1 << 32, reason="16 GiB needs a 64-bit address space")
def test_untouched_16g_summary_is_fast():
    try:
        m = mmap.mmap(-1, 16 << 30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
                      | getattr(mmap, "MAP_NORESERVE", 0x4000))
    except OSError as exc:  # vm.overcommit_memory=2 ignores MAP_NORESERVE
        pytest.skip("no 16 GiB of address space here: %s" % exc)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    reader = pagemap.ProcessReader("/proc", "self", PAGE)
    walker = pagemap.Walker(reader, 512)
    counts, beyond = walker.counts(addr // PAGE, (addr + (16 << 30)) // PAGE)
    assert counts.pages == (16 << 30) // PAGE and counts.present == 0 and beyond is None
    assert walker.scanner.works in (True, False)
    reader.close()
    m.close()


RACER = r"""
import mmap, sys, time
end = time.time() + float(sys.argv[1])
print("ready", flush=True)
maps = []
while time.time() < end:
    m = mmap.mmap(-1, 1 << 20)
    m[0:1] = b"r"
    maps.append(m)
    if len(maps) > 8:
        maps.pop(0).close()
"""


def test_racing_process_never_crashes():
    child = subprocess.Popen([sys.executable, "-c", RACER, "3"], stdout=subprocess.PIPE,
                             universal_newlines=True)
    child.stdout.readline()
    codes = set()
    try:
        for args in ([], ["--picture"], ["[heap]"]):
            for _ in range(5):
                out, err = io.StringIO(), io.StringIO()
                saved = sys.stdout, sys.stderr
                sys.stdout, sys.stderr = out, err
                try:
                    codes.add(pagemap.main([str(child.pid)] + args))
                finally:
                    sys.stdout, sys.stderr = saved
                assert "Traceback" not in err.getvalue()
    finally:
        child.kill()
        child.wait()
    assert codes <= {0, 1, 3}
    # And once it has exited: one error line.
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = pagemap.main([str(child.pid)])
    finally:
        sys.stdout, sys.stderr = saved
    assert code == 3 and err.getvalue().startswith("pagemap: error: ")


def test_whole_self_summary_and_picture(capsys):
    assert pagemap.main(["self"]) == 0
    out = capsys.readouterr().out
    assert "resident" in out
    # [vsyscall] only where the kernel maps it (x86-64, not vsyscall=none as Debian 12's 6.1).
    if "[vsyscall]" in open("/proc/self/maps").read():
        assert "[vsyscall] (beyond-address-space)" in out
    assert pagemap.main(["self", "--picture"]) == 0
    assert "[stack]" in capsys.readouterr().out
