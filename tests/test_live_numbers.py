"""Numbers a user can trust (issue 10), live: agreement with smaps, the observer
effect, unprivileged answers."""

import ctypes
import json
import mmap
import os
import subprocess
import sys
import time

import pytest
from conftest import ROOT, call, forked_child
from test_live import (  # noqa
    IS_ROOT,
    MADV_PAGEOUT,
    MAP_HUGETLB,
    as_nobody,
    reserved_hugetlb,
    smaps_block,
    swapfile,
)

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


# --- agreement with smaps ---------------------------------------------------------------

def own_row(start, *extra):
    code, out, err = call(["self", "--json"] + list(extra))
    assert code == 0, err
    return [m for m in json.loads(out)["mappings"] if m["start"] == start][0]


def smaps_sum(start, *keys):
    block = smaps_block(start)
    return sum(int(block.get(k, "0 kB").split()[0]) * 1024 for k in keys)


@pytest.fixture
def hugetlb_pages():
    yield from reserved_hugetlb(4)


def assert_hugetlb_row(row, start, size):
    assert row["huge"] == smaps_sum(start, "Private_Hugetlb", "Shared_Hugetlb") == size
    assert row["resident"] == smaps_sum(start, "Rss") == 0
    assert row["file"] == row["exclusive"] == 0


def test_hugetlb_agrees_with_smaps_also_after_fork(hugetlb_pages):
    m, addr, size = hugetlb_pages
    assert_hugetlb_row(own_row(addr), addr, size)
    row = own_row(addr, "--flags")
    assert (row["pss"], row["uss"], row["shared"]) == (smaps_sum(addr, "Pss"), 0, 0)
    assert row["hugetlb"] == size
    with forked_child():
        assert_hugetlb_row(own_row(addr), addr, size)
        row = own_row(addr, "--flags")
        assert (row["pss"], row["uss"], row["shared"]) == (smaps_sum(addr, "Pss"), 0, 0)
    code, out, _ = call(["self", "--picture"])
    strip = [line for line in out.splitlines() if line.startswith("%x-" % addr)][0]
    assert strip.split("|")[1] == "H" * 16 + "." * 48


def test_untouched_hugetlb_page_note(hugetlb_pages):
    m, addr, size = hugetlb_pages
    tr = pagemap.translate("self", addr + size)
    assert tr.status == "not-present" and "hugetlb" in tr.note and "cache" not in tr.note


def test_shared_anonymous_memory_paged_out_counts_as_swap(swapfile):  # noqa: F811
    n = 128
    m = mmap.mmap(-1, n * PAGE, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    for i in range(n):
        m[i * PAGE:i * PAGE + 1] = b"s"
    for _ in range(5):
        m.madvise(MADV_PAGEOUT)
        if smaps_sum(addr, "Swap"):
            break
        time.sleep(0.2)
    if not smaps_sum(addr, "Swap"):
        pytest.skip("the kernel paged out no shared memory")
    assert_swap_agrees(addr)
    with forked_child():
        assert_swap_agrees(addr)
    del m


def assert_swap_agrees(addr):
    """The row and smaps, read while smaps stays the same: a test run beside this
    one may turn its swap area off, swapping some of these pages back in (areas of
    one priority share the writes)."""
    for _ in range(10):
        before = smaps_sum(addr, "Swap"), smaps_sum(addr, "Rss")
        row = own_row(addr)
        _, out, _ = call(["self"])
        if (smaps_sum(addr, "Swap"), smaps_sum(addr, "Rss")) == before:
            if not before[0]:
                pytest.skip("this mapping's pages were all swapped back in")
            assert (row["swapped"], row["resident"]) == before
            assert "shared memory swapped" in out.splitlines()[-1]
            return
    pytest.skip("this mapping's swap kept changing (another swap area going off?)")


def huge_pages_visible():
    """Without PFNs (unprivileged) and without PAGEMAP_SCAN (before 6.7) pagemap
    cannot tell a huge page from small ones (Debian 12's 6.1 as nobody)."""
    if IS_ROOT:
        return True
    reader = pagemap.ProcessReader("/proc", "self", PAGE)
    try:
        scan = pagemap.PageScanner(reader.open_pagemap(), PAGE)
        scan.regions(0, 1, pagemap.PAGE_IS_PRESENT, 0)
        return bool(scan.works)
    finally:
        reader.close()


def skip_unless_huge_pages_visible():
    if not huge_pages_visible():
        pytest.skip("unprivileged and no PAGEMAP_SCAN (Linux < 6.7): huge pages unseen")


def test_picture_draws_huge_pages_at_any_size():
    from test_live_ranges import region_start, smaps_kib, thp_region
    skip_unless_huge_pages_visible()
    m, aligned, size = thp_region()
    start = region_start(aligned)
    if smaps_kib(start, "AnonHugePages") != size:
        pytest.skip("the kernel gave no THP here")
    code, out, _ = call(["self", "--picture"])
    strip = [line for line in out.splitlines() if line.startswith("%x-" % start)][0]
    assert set(strip.split("|")[1]) == {"H"}
    m.close()


# --- the observer effect ------------------------------------------------------------------

SHARER = r"""
import mmap, sys
f = open(sys.argv[1], "r+b")
m = mmap.mmap(f.fileno(), 16 * 4096)
for i in range(0, 16 * 4096, 4096):
    m[i]
print([line.split("-")[0] for line in open("/proc/self/maps")
       if line.rstrip("\n").endswith(sys.argv[1])][0], flush=True)
sys.stdin.read()
"""


@pytest.mark.skipif(not IS_ROOT, reason="needs root (kpagecount)")
def test_pagemap_leaves_itself_out_of_map_counts(tmp_path):
    path = str(tmp_path / "shared-file")
    with open(path, "wb") as f:
        f.write(os.urandom(16 * 4096))
    with open(path, "r+b") as f:
        mine = mmap.mmap(f.fileno(), 16 * 4096)
    for i in range(0, 16 * 4096, 4096):
        mine[i]                      # the observer maps the same pages
    child = subprocess.Popen([sys.executable, "-c", SHARER, path], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, universal_newlines=True)
    try:
        addr = int(child.stdout.readline(), 16)
        pid = str(child.pid)
        code, out, err = call([pid, "--json", "--flags"])
        row = [m for m in json.loads(out)["mappings"] if m["start"] == addr][0]
        assert row["resident"] == 16 * 4096
        assert (row["shared"], row["uss"], row["pss"]) == (0, 16 * 4096, 16 * 4096)
        code, out, _ = call([pid, "--json", "--flags", hex(addr)])
        result = json.loads(out)["results"][0]
        assert result["page"]["mapcount"] == 1
        code, out, _ = call(["--phys", hex(result["paddr"]), "--json"])
        assert [m["pid"] for m in json.loads(out)["matches"]] == [child.pid]
        mine.close()                 # without the observer, smaps agrees
        with open("/proc/%s/smaps" % pid) as f:
            text = f.read()
        block = text[text.index("%x-" % addr):].split("VmFlags")[0]
        pss = [line for line in block.splitlines() if line.startswith("Pss:")][0]
        assert int(pss.split()[1]) * 1024 == row["pss"]
    finally:
        child.kill()
        child.wait()


def test_rss_less_zero_page_is_smaps_rss_also_after_fork():
    from test_live_ranges import isolate
    m = mmap.mmap(-1, 16 * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    for i in range(8):
        m[i * PAGE]                             # a read fault maps the zero page
    for i in range(8, 12):
        m[i * PAGE:i * PAGE + 1] = b"w"
    isolate(addr, 16 * PAGE)

    def check():
        row = own_row(addr, *(["--flags"] if IS_ROOT else []))
        assert row["swapped"] == smaps_sum(addr, "Swap") == 0
        if IS_ROOT:
            assert row["resident"] - row["zero"] == smaps_sum(addr, "Rss") == 4 * PAGE
            assert row["pss"] == smaps_sum(addr, "Pss")
        else:
            assert row["resident"] == 12 * PAGE and smaps_sum(addr, "Rss") == 4 * PAGE
    check()
    with forked_child():
        check()
    m.close()


def test_thp_agrees_with_smaps_also_after_fork():
    from test_live_ranges import region_start, smaps_kib, thp_region
    visible = huge_pages_visible()
    m, aligned, size = thp_region()
    start = region_start(aligned)
    if not smaps_kib(start, "AnonHugePages"):
        pytest.skip("the kernel gave no THP here")

    def check():
        row = own_row(start)
        assert row["resident"] == smaps_sum(start, "Rss")
        # Unseen huge pages are unknown (null), not 0.
        assert row["huge"] == (smaps_sum(start, "AnonHugePages") if visible else None)
    check()
    with forked_child():
        check()
    m.close()


def test_thp_at_the_top_of_the_address_space_is_huge():
    """PAGEMAP_SCAN refuses (EFAULT) a range past the address space end: the query
    ahead of a chunk near the top must stop there, or its huge pages go unseen."""
    from test_live_ranges import MADV_HUGEPAGE, region_start, thp_region
    if not huge_pages_visible():
        pytest.skip("unprivileged and no PAGEMAP_SCAN (Linux < 6.7): huge pages unseen")
    thp_region()[0].close()                        # skips without THP
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    reader = pagemap.ProcessReader("/proc", "self", PAGE)
    end = reader.address_space_end()
    reader.close()
    size, pmd = 8 << 20, 2 << 20
    for below in range(16 << 20, 64 << 20, 8 << 20):    # within HUGE_AHEAD of the end
        want = (end - below - size) & ~(pmd - 1)
        addr = libc.mmap(want, size, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE |
                         mmap.MAP_ANONYMOUS | 0x100000, -1, 0)  # MAP_FIXED_NOREPLACE, 4.17
        if addr == want:
            break
        if addr not in (None, ctypes.c_void_p(-1).value):
            libc.munmap(ctypes.c_void_p(addr), ctypes.c_size_t(size))
    else:
        pytest.skip("no free 8 MiB near the top of the address space")
    try:
        assert libc.madvise(ctypes.c_void_p(addr), ctypes.c_size_t(size), MADV_HUGEPAGE) == 0
        ctypes.memset(addr, 1, size)
        start = region_start(addr)
        if not smaps_sum(start, "AnonHugePages"):
            pytest.skip("the kernel gave no THP here")
        assert own_row(start)["huge"] == smaps_sum(start, "AnonHugePages")
    finally:
        libc.munmap(ctypes.c_void_p(addr), ctypes.c_size_t(size))


@pytest.mark.parametrize("scan", [True, False], ids=["scan", "no-scan"])
def test_huge_zero_page_is_no_huge_page(scan, monkeypatch):
    """A read fault on MADV_HUGEPAGE memory maps the huge zero page (use_zero_page):
    smaps counts it nowhere (AnonHugePages 0, Rss 0); HUGE and THP must not either,
    with PAGEMAP_SCAN or without (before 6.7: PFNs and kpageflags tell)."""
    from test_live_ranges import MADV_HUGEPAGE, isolate, region_start, thp_region
    thp_region()[0].close()                        # skips without THP
    size = 4 << 20
    m = mmap.mmap(-1, size + (2 << 20), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    base = ctypes.addressof(ctypes.c_char.from_buffer(m))
    aligned = (base + (2 << 20) - 1) & ~((2 << 20) - 1)
    m.madvise(MADV_HUGEPAGE, aligned - base, size)
    for i in range(0, size, PAGE):
        m[aligned - base + i]                      # read faults only
    isolate(aligned, size)
    start = region_start(aligned)
    if IS_ROOT:
        code, out, _ = call(["self", "--json", "--flags", hex(aligned)])
        page = json.loads(out)["results"][0]["page"]
        if not {"ZERO_PAGE", "THP"} <= set(page["flags"]):
            pytest.skip("the kernel mapped no huge zero page here (use_zero_page off?)")
        assert page["huge"]["kind"] == "huge zero"
    visible = huge_pages_visible() if scan else IS_ROOT
    if not scan:
        monkeypatch.setattr(pagemap.PageScanner, "regions", lambda *args, **kwargs: None)
    row = own_row(start, *(["--flags"] if IS_ROOT else []))
    assert smaps_sum(start, "Rss", "AnonHugePages") == 0
    if IS_ROOT:
        assert (row["thp"], row["resident"] - row["zero"]) == (0, 0)
    # Unprivileged, only PAGEMAP_SCAN tells, since 6.16 (PFNZERO); before, HUGE counts it.
    if IS_ROOT or pagemap.running_kernel("/proc") >= (6, 16) or not visible:
        assert row["huge"] == (0 if visible else None)
    m.close()


@pytest.mark.skipif(not IS_ROOT, reason="needs root (kpageflags)")
def test_mlocked_memory_is_smaps_locked():
    """LOCKED is pages reclaim cannot evict (mlocked, unevictable); alone in this
    process that is smaps' Locked (the PSS of an mlocked mapping's pages)."""
    from test_live_ranges import isolate, region_start
    n = 16
    m = mmap.mmap(-1, n * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    for i in range(n // 2):
        m[i * PAGE:i * PAGE + 1] = b"m"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mlock(ctypes.c_void_p(addr), ctypes.c_size_t(n * PAGE)):
        pytest.skip("mlock: %s" % os.strerror(ctypes.get_errno()))
    isolate(addr, n * PAGE)
    start = region_start(addr)
    row = own_row(start, "--flags")
    assert row["locked"] == smaps_sum(start, "Locked") == smaps_sum(start, "Rss") > 0
    m.close()


def test_match_counts_huge_pages_as_smaps():
    """With --match, HUGE is the passing pages in PMD-mapped huge pages, as without
    it: not 0, and (--flags) not every page of a large folio. A 4K hole punched in
    a THP splits its PMD; its folio, still large, is then mapped by PTEs."""
    from test_live_ranges import region_start, smaps_kib, thp_region
    skip_unless_huge_pages_visible()
    m, aligned, size = thp_region()
    start = region_start(aligned)
    if smaps_kib(start, "AnonHugePages") != size:
        pytest.skip("the kernel gave no THP here")
    base = ctypes.addressof(ctypes.c_char.from_buffer(m))
    m.madvise(mmap.MADV_DONTNEED, aligned - base + PAGE, PAGE)
    m.madvise(getattr(mmap, "MADV_NOHUGEPAGE", 15), aligned - base, size)  # no khugepaged
    want = smaps_sum(start, "AnonHugePages")
    assert want == size - (2 << 20)
    assert own_row(start)["huge"] == want
    for extra in [[]] + ([["--flags"]] if IS_ROOT else []):
        assert own_row(start, "--match", "present", *extra)["huge"] == want
    m.close()


@pytest.mark.skipif(not IS_ROOT, reason="needs root (ksm run, kpageflags)")
def test_ksm_pages_agree_with_smaps():
    """16 equal pages merged by KSM into one, mapped 16 times: KSM, SHARED, USS and
    PSS as smaps has them (Pss one page). ksmd is started if it was off, and
    stopped again (merged pages stay merged)."""
    knob = "/sys/kernel/mm/ksm/run"
    try:
        with open(knob) as f:
            before = f.read().strip()
    except OSError:
        pytest.skip("no KSM (CONFIG_KSM)")
    if before not in ("0", "1"):
        pytest.skip("KSM is unmerging (run = %s)" % before)
    from test_live_ranges import region_start
    n = 16
    m = mmap.mmap(-1, n * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    m.write(b"\x5a" * (n * PAGE))
    m.madvise(getattr(mmap, "MADV_MERGEABLE", 12))
    start = region_start(ctypes.addressof(ctypes.c_char.from_buffer(m)))
    try:
        if before == "0":
            with open(knob, "w") as f:
                f.write("1")
        for _ in range(100):
            if smaps_sum(start, "KSM") == n * PAGE:
                break
            time.sleep(0.1)
    finally:
        if before == "0":
            with open(knob, "w") as f:
                f.write("0")
    if smaps_sum(start, "KSM") != n * PAGE:
        pytest.skip("ksmd merged nothing in 10 s (or an older smaps without its KSM field)")
    row = own_row(start, "--flags")
    assert row["ksm"] == row["shared"] == smaps_sum(start, "Shared_Clean", "Shared_Dirty")
    assert (row["uss"], row["pss"]) == (smaps_sum(start, "Private_Clean", "Private_Dirty"),
                                        smaps_sum(start, "Pss")) == (0, PAGE)
    m.close()


@pytest.mark.skipif(not IS_ROOT, reason="needs root (kpageflags, kpagecount)")
@pytest.mark.parametrize("kind", ["file-clean", "file-dirty", "memfd-twice"])
def test_file_and_shared_memory_agree_with_smaps(kind, tmp_path):
    """File pages read or written through MAP_SHARED, and a memfd mapped twice
    (each page mapped twice: PSS halves): FILE is smaps' Rss less Anonymous,
    DIRTY its *_Dirty (page cache and shmem pages carry PG_dirty), SHARED, USS
    and PSS its Shared_*, Private_* and Pss."""
    n = 16
    if kind == "memfd-twice":
        if not hasattr(os, "memfd_create"):
            pytest.skip("no os.memfd_create (Python < 3.8)")
        fd = os.memfd_create("pagemap-test")
        os.ftruncate(fd, n * PAGE)
    else:
        path = str(tmp_path / "file")
        with open(path, "wb") as f:
            f.write(os.urandom(n * PAGE))
        fd = os.open(path, os.O_RDWR)
    maps = [mmap.mmap(fd, n * PAGE, flags=mmap.MAP_SHARED)
            for _ in range(2 if kind == "memfd-twice" else 1)]
    os.close(fd)
    for m in maps:
        for i in range(n):
            if kind == "file-clean":
                m[i * PAGE]
            else:
                m[i * PAGE:i * PAGE + 1] = b"w"
    for m in maps:
        start = region_start_of(m)
        row = own_row(start, "--flags")
        assert row["file"] == smaps_sum(start, "Rss") - smaps_sum(start, "Anonymous") == n * PAGE
        assert row["dirty"] == smaps_sum(start, "Shared_Dirty", "Private_Dirty")
        assert (row["shared"], row["uss"], row["pss"]) == (
            smaps_sum(start, "Shared_Clean", "Shared_Dirty"),
            smaps_sum(start, "Private_Clean", "Private_Dirty"), smaps_sum(start, "Pss"))
    assert row["pss"] == n * PAGE // len(maps)
    for m in maps:
        m.close()


def region_start_of(m):
    from test_live_ranges import region_start
    return region_start(ctypes.addressof(ctypes.c_char.from_buffer(m)))


ZERO_PAGE_SCRIPT = r"""
import mmap, sys
sys.path.insert(0, sys.argv[1])
import pagemap
size = 4 * mmap.PAGESIZE    # read-only, so no neighbour merges with it: maps finds it
m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, prot=mmap.PROT_READ)
m[mmap.PAGESIZE]                # a read fault maps the zero page
[addr] = [int(s, 16) for s, e, *rest in (line.replace("-", " ", 1).split()
                                          for line in open("/proc/self/maps"))
          if rest == ["r--p", "00000000", "00:00", "0"] and int(e, 16) - int(s, 16) == size]
print(pagemap.translate("self", addr + mmap.PAGESIZE).note)
sys.exit(pagemap.main(["self", hex(addr + mmap.PAGESIZE)]))
"""


def test_zero_page_explained_unprivileged():
    """Without kpageflags, PAGEMAP_SCAN (6.7+) marks the zero page PFNZERO: a read
    fault's page is the shared zero page to nobody too, not a bare hidden PFN."""
    reader = pagemap.ProcessReader("/proc", "self", PAGE)
    try:
        scan = pagemap.PageScanner(reader.open_pagemap(), PAGE)
        scan.regions(0, 1, pagemap.PAGE_IS_PRESENT, 0)
    finally:
        reader.close()
    if not scan.works:
        pytest.skip("no PAGEMAP_SCAN (Linux < 6.7)")
    done = as_nobody("-c", ZERO_PAGE_SCRIPT, ROOT)
    assert done.returncode == 1 and "pfn-hidden" in done.stdout, done.stderr
    assert "note: the shared zero page" in done.stdout
    # The API's note says what is hidden before why.
    assert "physical address is hidden: " in done.stdout.splitlines()[0]
