"""Live tests against this machine's real /proc/self (marker: live).

Each answer is checked against an independent reading: a second raw read of
pagemap done here with plain file I/O, smaps accounting, or a property the
kernel guarantees (consecutive PFNs inside a huge page).
"""

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


def own_swap_area(tmp_path):
    """A small swap file, enabled for the test and removed after."""
    path = str(tmp_path / "pagemap-test.swap")
    with open(path, "wb") as f:
        f.write(b"\0" * (64 << 20))
    os.chmod(path, 0o600)
    subprocess.run(["mkswap", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # The highest priority, so the kernel fills this area before any other the
    # machine has (an area of equal priority shares the writes: checked below).
    on = subprocess.run(["swapon", "-p", str(SWAP_PRIORITY), path],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if on.returncode != 0:
        pytest.skip("swapon refused here: %s" % on.stderr.decode().strip())
    try:
        yield path
    finally:
        subprocess.run(["swapoff", path])


@pytest.fixture
def swapfile(tmp_path):
    """Our swap area, one test run at a time on this machine: a run beside this
    one (CI, a colleague) would share the writes at the same priority, and its
    swapoff would swap our pages back in while we count them."""
    if not IS_ROOT or not shutil.which("mkswap") or not shutil.which("swapon"):
        pytest.skip("needs root with mkswap/swapon")
    import fcntl
    lock = os.open(os.path.join(tempfile.gettempdir(), "pagemap-tests-swap.lock"),
                   os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield from own_swap_area(tmp_path)
    finally:
        os.close(lock)


def test_paged_out_page_is_swapped_to_our_area(swapfile):
    n = 16
    m, addr = private_anon(n)
    for i in range(n):
        m[i * PAGE:i * PAGE + 1] = b"z"
    for _ in range(5):
        m.madvise(MADV_PAGEOUT)
        trs = pagemap.translate_many("self", [addr + i * PAGE for i in range(n)])
        if all(t.status == "swapped" for t in trs):
            break
        time.sleep(0.2)
    swapped = [t for t in trs if t.status == "swapped"]
    assert swapped, [t.status for t in trs]
    # Ours, unless another area of the same top priority took some of the writes.
    rivals = [a.path for a in pagemap.parse_swaps(open("/proc/swaps").read())
              if a.priority >= SWAP_PRIORITY]
    for t in swapped:
        area = t.swap_area
        assert area is not None and area.path in rivals and area.path in t.note
        assert t.entry.swap_offset < area.size_kib * 1024 // PAGE
    assert swapfile in [t.swap_area.path for t in swapped] or len(rivals) > 1
    # Cross-check with the kernel's own accounting.
    kib = int(smaps_block(trs[0].mapping.start)["Swap"].split()[0])
    assert kib * 1024 == len(swapped) * PAGE
    m.close()


# --- hugetlb -----------------------------------------------------------------


def reserved_hugetlb(count):
    """count more hugetlb pages in the pool, restored after; a private MAP_HUGETLB
    mapping of all of them with only the first touched: (mmap, address, page size)."""
    knob = "/proc/sys/vm/nr_hugepages"
    if not IS_ROOT or not os.path.exists(knob):
        pytest.skip("needs root and hugetlb")
    try:
        with open(knob) as f:
            before = int(f.read())
    except OSError as exc:  # EOPNOTSUPP: a CPU without huge pages (s390x without EDAT-1)
        pytest.skip("no hugetlb pages here: %s" % exc)
    try:
        with open(knob, "w") as f:
            f.write(str(before + count))
    except OSError as exc:
        pytest.skip("cannot reserve hugetlb pages: %s" % exc)
    try:
        size = [int(line.split()[1]) * 1024 for line in open("/proc/meminfo")
                if line.startswith("Hugepagesize:")][0]
        try:
            m = mmap.mmap(-1, count * size,
                          flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | MAP_HUGETLB)
        except OSError as exc:
            pytest.skip("no hugetlb pages could be mapped: %s" % exc)
        m[0:1] = b"h"
        yield m, ctypes.addressof(ctypes.c_char.from_buffer(m)), size
        m.close()
    finally:
        with open(knob, "w") as f:
            f.write(str(before))


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


def test_nobody_cannot_read_root_process():
    done = as_nobody(os.path.join(ROOT, "pagemap.py"), str(os.getpid()), "400000")
    assert done.returncode == 4, done.stderr
    assert done.stderr.startswith("pagemap: error: ") and "permission denied" in done.stderr
    assert len(done.stderr.splitlines()) == 1
