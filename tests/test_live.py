"""Live tests against this machine's real /proc/self (marker: live).

Each answer is checked against an independent reading: a second raw read of
pagemap done here with plain file I/O, smaps accounting, or a property the
kernel guarantees (consecutive PFNs inside a huge page).
"""

import contextlib
import ctypes
import json
import mmap
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import pytest
from conftest import ROOT

import pagemap

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.path.exists("/proc/self/pagemap"),
                       reason="no /proc/self/pagemap on this system"),
]

PAGE = os.sysconf("SC_PAGE_SIZE")
IS_ROOT = os.geteuid() == 0
MADV_PAGEOUT = getattr(mmap, "MADV_PAGEOUT", 21)
MAP_HUGETLB = 0x40000


def private_anon(npages, flags=0):
    m = mmap.mmap(-1, npages * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | flags)
    return m, ctypes.addressof(ctypes.c_char.from_buffer(m))


def raw_entry(vaddr):
    """An independent read of /proc/self/pagemap: plain open/seek/read."""
    with open("/proc/self/pagemap", "rb") as f:
        f.seek(vaddr // PAGE * 8)
        return struct.unpack("=Q", f.read(8))[0]


def smaps_block(start):
    with open("/proc/self/smaps") as f:
        text = f.read()
    head = "%x-" % start
    blocks = text.split("\n")
    out, on = {}, False
    for line in blocks:
        if pagemap._MAPS_RE.match(line):
            on = line.startswith(head)
        elif on and ":" in line:
            key, value = line.split(":", 1)
            out[key] = value.strip()
    return out


needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root (PFNs, swap, hugetlb)")


@needs_root
def test_touched_page_present_and_agrees_with_second_read():
    m, addr = private_anon(4)
    m[0:1] = b"x"
    m[PAGE + 7:PAGE + 8] = b"y"
    tr = pagemap.translate("self", addr + 0x123)
    assert tr.status == "present", tr.note
    assert tr.entry.exclusive and not tr.entry.file_shared
    raw = raw_entry(addr)
    assert raw >> 63 == 1 and raw & ((1 << 55) - 1) == tr.entry.pfn
    assert tr.paddr == tr.entry.pfn * PAGE + 0x123
    assert tr.mapping.start <= addr < tr.mapping.end and tr.mapping.perms == "rw-p"
    two = pagemap.translate_many("self", [addr, addr + PAGE])
    assert two[1].entry.pfn == raw_entry(addr + PAGE) & ((1 << 55) - 1)
    m.close()


def test_untouched_page_not_present():
    m, addr = private_anon(4)
    m[0:1] = b"x"
    tr = pagemap.translate("self", addr + 2 * PAGE)
    assert tr.status == "not-present" and "never touched" in tr.note
    assert raw_entry(addr + 2 * PAGE) >> 63 == 0
    m.close()


@pytest.mark.parametrize("flags", [mmap.MAP_SHARED, mmap.MAP_PRIVATE])
def test_page_past_a_truncated_file_raises_sigbus(tmp_path, flags):
    with open(str(tmp_path / "f"), "w+b") as f:
        f.write(b"x" * 3 * PAGE)
        f.flush()
        m = mmap.mmap(f.fileno(), 3 * PAGE, flags=flags)
        f.truncate(PAGE + 1)                   # its second page still holds a byte
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    inside, past = (pagemap.translate("self", addr + i * PAGE) for i in (1, 2))
    assert inside.status == past.status == "not-present"
    assert "SIGBUS" not in inside.note and "SIGBUS" in past.note and "2 pages" in past.note
    del inside, past
    m.close()


def test_cli_on_own_stack_page(capsys):
    code = pagemap.main(["self", "--json", hex(id(object()) & ~(PAGE - 1))])
    doc = json.loads(capsys.readouterr().out)
    assert doc["pid"] == os.getpid()
    assert doc["results"][0]["status"] in ("present", "pfn-hidden")
    assert code == (0 if IS_ROOT else 1)


def test_vsyscall_is_beyond_the_address_space():
    tr = pagemap.translate("self", 0xFFFFFFFFFF600000)
    with open("/proc/self/pagemap", "rb") as f:
        f.seek(0xFFFFFFFFFF600000 // PAGE * 8)
        inside = f.read(8) != b""
    if inside:  # s390x: user space reaches up to 2**64 - PAGE
        assert tr.status == "unmapped"
        return
    assert tr.status == "beyond-address-space" and tr.entry is None
    # The limit the tool found is TASK_SIZE: the last user page reads, the next does not.
    limit = int(tr.note.split("(0x")[1].split(" ")[0], 16)
    fd = os.open("/proc/self/pagemap", os.O_RDONLY)
    try:
        assert len(os.pread(fd, 8, (limit // PAGE - 1) * 8)) == 8
        assert os.pread(fd, 8, (limit // PAGE) * 8) == b""
    finally:
        os.close(fd)


def test_vvar_has_no_page_tables():
    maps = pagemap.parse_maps(open("/proc/self/maps").read())
    vvar = [m for m in maps if m.path == "[vvar]"]
    if not vvar:
        pytest.skip("no [vvar] mapping on this kernel")
    tr = pagemap.translate("self", vvar[0].start)
    if raw_entry(vvar[0].start) >> 63:  # arm: the data page is mapped like any other
        assert tr.status in ("present", "pfn-hidden")
    else:
        assert tr.status == "no-page-tables"


def test_kernel_thread_is_explained(capsys):
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                stat = open("/proc/%s/stat" % pid).read()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2:].split()[6]) & pagemap.PF_KTHREAD:
                break
    else:
        pytest.skip("no kernel thread visible in this pid namespace")
    code = pagemap.main([pid, "400000"])
    err = capsys.readouterr().err
    assert code == 3 and "kernel thread" in err and "Traceback" not in err


def test_exited_process(capsys):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    code = pagemap.main([str(child.pid), "400000"])
    assert code == 3 and "no process" in capsys.readouterr().err


# --- swap -------------------------------------------------------------------


SWAP_PRIORITY = 32767


@contextlib.contextmanager
def machine_lock(name):
    """Hold an exclusive lock shared by every run of this suite on the machine
    (CI, a colleague): one at a time changes the swap areas or the hugetlb pool."""
    import fcntl
    lock = os.open(os.path.join(tempfile.gettempdir(), "pagemap-tests-%s.lock" % name),
                   os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock)


def listed_swaps():
    """(path, size) of the swap areas /proc/swaps lists; not their use, which
    other processes change."""
    with open("/proc/swaps") as f:
        return [(a.path, a.size_kib) for a in pagemap.parse_swaps(f.read())]


def own_swap_area(path, priority=SWAP_PRIORITY):
    """A small swap file, enabled for the test and removed after, unless
    something else (swapoff -a) turned it off first."""
    with open(path, "wb") as f:
        f.write(b"\0" * (64 << 20))
    os.chmod(path, 0o600)
    for argv in (["mkswap", path], ["swapon", "-p", str(priority), path]):
        # The highest priority: the kernel fills this area before the machine's own.
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if done.returncode != 0:  # a container, tmpfs, no free swap type
            pytest.skip("%s refused here: %s" % (argv[0], done.stderr.decode().strip()))
    try:
        yield path
    finally:
        if path in dict(listed_swaps()):
            subprocess.run(["swapoff", path], check=True)


@pytest.fixture
def swapfile(tmp_path):
    """Our swap area, one test run at a time on this machine: a run beside this
    one would share the writes at the same priority."""
    if not IS_ROOT or not shutil.which("mkswap") or not shutil.which("swapon"):
        pytest.skip("needs root with mkswap/swapon")
    with machine_lock("swap"):
        yield from own_swap_area(str(tmp_path / "pagemap-test.swap"))


@pytest.fixture
def swapfile_above_a_free_type(tmp_path):
    """Our swap area enabled after another that is then switched off: /proc/swaps
    lists ours below its type (it leaves the free type out)."""
    if not IS_ROOT or not shutil.which("mkswap") or not shutil.which("swapon"):
        pytest.skip("needs root with mkswap/swapon")
    with machine_lock("swap"):
        first = own_swap_area(str(tmp_path / "first.swap"), SWAP_PRIORITY - 1)
        next(first)
        ours = own_swap_area(str(tmp_path / "pagemap-test.swap"))
        try:
            path = next(ours)
        finally:
            first.close()
        try:
            yield path
        finally:
            ours.close()


def steady(look, tries=10):
    """look()'s answer once two calls in a row agree: what reclaim or another
    process's swapoff did not change while we looked."""
    last = look()
    for _ in range(tries):
        now = look()
        if now == last:
            return now
        last = now
    pytest.skip("the pages kept changing under the machine's other work")


def test_paged_out_page_is_swapped_to_our_area(swapfile):
    assert_paged_out_to(swapfile)


def test_paged_out_page_is_found_in_an_area_above_a_free_type(swapfile_above_a_free_type):
    assert_paged_out_to(swapfile_above_a_free_type)


def assert_paged_out_to(swapfile):
    n = 16
    m, addr = private_anon(n)
    vaddrs = [addr + i * PAGE for i in range(n)]
    for v in vaddrs:
        m[v - addr:v - addr + 1] = b"z"
    for _ in range(5):
        m.madvise(MADV_PAGEOUT)
        if all(raw_entry(v) >> 62 & 1 for v in vaddrs):
            break
        time.sleep(0.2)

    def look():
        raws = [raw_entry(v) for v in vaddrs]
        trs = [(t.entry.raw, t.status, t.swap_area and t.swap_area[:3:2], t.note)
               for t in pagemap.translate_many("self", vaddrs)]
        return raws, trs, smaps_block(addr)["Swap"], listed_swaps()
    raws, trs, swap, areas = steady(look)
    if swapfile not in dict(areas):
        pytest.skip("something else turned our swap area off")
    swapped = [t for r, t in zip(raws, trs) if r >> 62 & 1]
    if not swapped:
        pytest.skip("the kernel swapped none of our pages out (a cgroup without swap?)")
    assert [t[0] for t in trs] == raws
    assert [t[1] for t in trs] == ["swapped" if r >> 62 & 1 else "present" for r in raws]
    assert int(swap.split()[0]) * 1024 == len(swapped) * PAGE    # the kernel's accounting
    for raw, _, area, note in swapped:
        # Any area the tool names is listed and long enough; with ours the only
        # one it must be ours. Other areas may take writes (equal priority, or
        # a CPU's cached cluster of a lower one).
        if area is not None:
            assert area in areas and raw >> 5 & ((1 << 50) - 1) <= area[1] * 1024 // PAGE
            assert area[0] in note
        if len(areas) == 1:
            assert area is not None and area[0] == swapfile
    m.close()


# --- hugetlb -----------------------------------------------------------------


def reserved_hugetlb(count):
    """count more hugetlb pages in the pool, given back after (the pool is the
    machine's: only what we added); a private MAP_HUGETLB mapping of all of them
    with only the first touched: (mmap, address, page size)."""
    knob = "/proc/sys/vm/nr_hugepages"
    if not IS_ROOT or not os.path.exists(knob):
        pytest.skip("needs root and hugetlb")
    with machine_lock("hugetlb"):
        yield from grown_hugetlb_pool(knob, count)


def grown_hugetlb_pool(knob, count):
    def pool(grow=0):
        with open(knob, "r+") as f:
            size = int(f.read())
            if grow:
                f.seek(0)
                f.write(str(max(size + grow, 0)))
        return size
    try:
        before = pool(count)
    except OSError as exc:  # EOPNOTSUPP: a CPU without huge pages (s390x without EDAT-1)
        pytest.skip("cannot grow the hugetlb pool: %s" % exc)
    added = pool() - before  # the kernel may find fewer free huge pages than asked
    try:
        size = [int(line.split()[1]) * 1024 for line in open("/proc/meminfo")
                if line.startswith("Hugepagesize:")][0]
        try:
            m = mmap.mmap(-1, count * size,
                          flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | MAP_HUGETLB)
        except OSError as exc:  # too few added, or others took the free ones
            pytest.skip("no hugetlb pages could be mapped: %s" % exc)
        m[0:1] = b"h"
        yield m, ctypes.addressof(ctypes.c_char.from_buffer(m)), size
        m.close()
    finally:
        pool(-added)


@pytest.fixture
def hugetlb_page():
    yield from reserved_hugetlb(1)


def test_hugetlb_page_has_consecutive_pfns(hugetlb_page):
    m, addr, size = hugetlb_page
    offsets = [0, PAGE, 2 * PAGE, size - PAGE]
    trs = pagemap.translate_many("self", [addr + o for o in offsets])
    assert all(t.status == "present" for t in trs)
    base = trs[0].entry.pfn
    assert base % (size // PAGE) == 0                     # head PFN is size-aligned
    assert [t.entry.pfn - base for t in trs] == [o // PAGE for o in offsets]
    # Each sub-page entry already carries its own PFN: no huge offset added twice.
    assert trs[1].paddr == trs[0].paddr + PAGE


# --- unprivileged reader ------------------------------------------------------

NOBODY_SCRIPT = r"""
import sys
sys.path.insert(0, sys.argv[1])
import pagemap
first = open("/proc/self/maps").readline().split("-")[0]
sys.exit(pagemap.main(["self", first]))
"""


def as_nobody(*args):
    setpriv = shutil.which("setpriv")
    if not IS_ROOT or not setpriv:
        pytest.skip("needs root and setpriv to become nobody")
    return subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                           sys.executable] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, cwd="/")


def test_nobody_sees_hidden_pfn_explained():
    done = as_nobody("-c", NOBODY_SCRIPT, ROOT)
    assert done.returncode == 1, done.stderr
    assert "pfn-hidden" in done.stdout
    assert "physical addresses hidden" in done.stderr and "CAP_SYS_ADMIN" in done.stderr
    assert "Traceback" not in done.stderr


def test_nobody_library_call_says_why_pfn_is_hidden():
    script = NOBODY_SCRIPT.replace('sys.exit(pagemap.main(["self", first]))',
                                   "print(pagemap.translate('self', int(first, 16)))")
    done = as_nobody("-c", script, ROOT)
    assert done.returncode == 0 and "pfn-hidden" in done.stdout, done.stderr
    assert done.stdout.count("CAP_SYS_ADMIN") == 1 and done.stderr == ""


def test_nobody_cannot_read_root_process():
    done = as_nobody(os.path.join(ROOT, "pagemap.py"), str(os.getpid()), "400000")
    assert done.returncode == 4, done.stderr
    assert done.stderr.startswith("pagemap: error: ") and "permission denied" in done.stderr
    assert len(done.stderr.splitlines()) == 1
