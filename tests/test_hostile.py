"""Hostile input and faults: numbers past every limit, hostile /proc trees,
ranges past the address space, and Pythons missing modules."""

import json
import os
import struct
import sys

import pytest
from conftest import assert_one_error, make_entry
from test_writes import spawns

import pagemap

PID = "4242"
HUGE = "1" * 5000       # past Python 3.11's 4300-digit int() limit


def argv(fake, *args):
    return ["--proc-root", fake.root, "--page-size", str(fake.page_size)] + list(args)


def assert_clean(code, err):
    """A documented exit code, no traceback, and one error line when it failed."""
    assert code in (0, 1, 2, 3, 4, 5, 6) and "Traceback" not in err
    if code >= 2:
        assert [x for x in err.splitlines() if not x.startswith("pagemap: warning:")] == [
            x for x in err.splitlines() if x.startswith("pagemap: error:")] != [], err
        assert len(err.splitlines()) - err.count("pagemap: warning:") == 1, err


# --- numbers: Python 3.11+ refuses int() of more than 4300 digits ---------------

@pytest.mark.parametrize("args,expected", [
    ([HUGE], "invalid PID"),
    (["5000000"], "invalid PID"),
    ([PID, "0+%sk" % HUGE], "larger than any 64-bit address space"),
    ([PID, HUGE], "larger than any 64-bit address"),
    (["--phys", HUGE], "larger than any 64-bit address"),
    (["--physical", "0+%sk" % HUGE], "larger than any 64-bit address space"),
    ([PID, "ffffffffffff0000+1M"], "ends beyond the 64-bit address space"),
    ([PID, "2000-1000"], "reversed range 2000-1000"),
    (["--decode", "0", "--kernel-version", HUGE + ".1"], "invalid kernel version"),
])
def test_huge_numbers_are_usage_errors(fake, run, args, expected):
    fake.process(PID, {})
    code, _, err = run(["--proc-root", fake.root] + args)
    assert_one_error(code, err, 2, expected)


def test_page_size_with_leading_zero(fake, run):
    fake.process(PID, {0x600000: make_entry(present=True, pfn=5)})
    code, out, err = run(["--proc-root", fake.root, "--page-size", "04096", PID, "600000"])
    assert code == 0 and "0x5000" in out, err


# --- hostile /proc trees -------------------------------------------------------------

def stat_flags_not_a_number(fake):
    fake.write(PID + "/stat", "4242 (cat) S 1 1 1 0 -1 zz 0 0 0 0\n")
    os.truncate(os.path.join(fake.root, PID, "pagemap"), 12)


def huge_kernel_page(fake):
    """smaps KernelPageSize of 5000 digits, read for a huge page a snapshot recorded."""
    fake.write(PID + "/smaps", "600000-603000 rw-p 00000000 00:00 0 [heap]\n"
               "KernelPageSize: %s kB\n" % HUGE)
    fake.write(PID + "/pagemap-huge", "")
    with open(os.path.join(fake.root, PID, "pagemap-huge"), "wb") as f:
        f.write(struct.pack("<QQ", 0x600, 1))


def thp_pmd_size(text):
    def setup(fake):
        fake.sysfs("kernel/mm/transparent_hugepage/enabled", "[always] madvise never\n")
        fake.sysfs("kernel/mm/transparent_hugepage/hpage_pmd_size", text)
    return setup


def pagemap_ending_mid_entry(fake):
    os.truncate(os.path.join(fake.root, PID, "pagemap"), 0x600 * 8 + 12)


def swaps_of_many_digits(fake):
    fake.write("swaps", "Filename Type Size Used Priority\n/swapfile file %s 0 -2\n" % HUGE)


def hugetlb_and_cgroups(fake):
    fake.write("meminfo", "Hugetlb: %s kB\n" % HUGE)
    fake.write("cgroup_paths", "\u00b2 /a\n%s /b\n" % HUGE)
    fake.kpage("kpageflags", {5: 0x828}, pfns=64)
    fake.kpage("kpagecgroup", {5: 7}, pfns=64)


@pytest.mark.parametrize("setup,args", [
    (hugetlb_and_cgroups, [PID]),
    (swaps_of_many_digits, [PID]),
    (pagemap_ending_mid_entry, [PID]),
    (pagemap_ending_mid_entry, [PID, "--picture"]),
    (pagemap_ending_mid_entry, [PID, "[heap]", "--each"]),
    (hugetlb_and_cgroups, [PID, "600000", "--flags"]),
    (stat_flags_not_a_number, [PID, "600000"]),
    (stat_flags_not_a_number, [PID, "0-ffffffffffffffff"]),
    (huge_kernel_page, [PID, "600000"]),
    (lambda fake: fake.kernel(HUGE + ".1"), [PID, "600000"]),
    (lambda fake: os.mkdir(os.path.join(fake.root, "\u00b2")), ["--phys", "5000"]),
    (thp_pmd_size("\u00b2"), ["--check"]),
    (thp_pmd_size(HUGE), ["--check"]),
])
def test_hostile_tree(fake, run, setup, args):
    fake.process(PID, {0x600000: make_entry(present=True, pfn=5)})
    fake.process("self", {0x400000: make_entry(present=True, pfn=6)})
    setup(fake)
    code, _, err = run(argv(fake, *args))
    assert_clean(code, err)


@pytest.mark.parametrize("line,args", [
    ("fffffffffffff000-10000000000000000 rw-p 00000000 00:00 0 [heap]", [PID, "[heap]"]),
    ("600000-400000 rw-p 00000000 00:00 0", [PID]),
])
def test_hostile_maps(fake, run, line, args):
    fake.process(PID, {}, maps=line + "\n")
    code, _, err = run(argv(fake, *args))
    assert_one_error(code, err, 6, "maps: unexpected content")


@pytest.mark.parametrize("name", ["maps", "pagemap"])
def test_a_device_planted_in_a_tree_is_not_read(fake, run, name):
    """/proc and /sys hold regular files. A FIFO would block the read for good,
    /dev/zero never end; /dev/null here, which ends at once, stands for both."""
    fake.process(PID, {0x600000: make_entry(present=True, pfn=5)})
    path = os.path.join(fake.root, PID, name)
    os.unlink(path)
    os.symlink(os.devnull, path)
    code, _, err = run(argv(fake, PID, "600000"))
    assert_one_error(code, err, 6, path, "not a regular file")


@spawns
def test_recorded_huge_regions_from_a_device_are_none(fake, tmp_path):
    # Read whole: /dev/zero was read until memory ran out (here 1 GiB of address space).
    import resource
    import subprocess
    fake.process(PID, {0x600000: make_entry(present=True, pfn=5)})
    os.symlink("/dev/zero", os.path.join(fake.root, PID, "pagemap-huge"))

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    if subprocess.run([sys.executable, "-c", "pass"], preexec_fn=limit).returncode:
        pytest.skip("Python does not start in 1 GiB of address space here (qemu-user)")
    done = subprocess.run([sys.executable, pagemap.__file__] + argv(fake, PID, "[heap]"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=limit,
                          timeout=120)
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()[-300:]


def test_empty_mapping_between_holes(fake, run):
    # No kernel prints a VMA of no pages, a hostile tree may: an empty walk.
    maps = ("7f0000000000-7f0000001000 rw-p 00000000 00:00 0\n"
            "7f0000002000-7f0000002000 rw-p 00000000 00:00 0 /empty\n"
            "7f0000003000-7f0000004000 rw-p 00000000 00:00 0\n")
    fake.process(PID, {0x7F0000000000: make_entry(present=True, pfn=5),
                       0x7F0000003000: make_entry(present=True, pfn=6)}, maps=maps)
    code, out, err = run(argv(fake, PID, "7f0000000000+4000"))
    assert code == 0 and err == ""
    assert [line.split()[1] for line in out.splitlines() if " present " in line] == [
        "0x5000-0x6000", "0x6000-0x7000"]
    code, out, err = run(argv(fake, PID, "--json", "7f0000000000+4000"))
    runs = json.loads(out)["ranges"][0]["runs"]
    assert code == 0 and sum(r["pages"] for r in runs) == 4
    assert [r["pfn"] for r in runs if r["status"] == "present"] == [5, 6]


# --- ranges past the address space; holes skipped without reading ---------------------

def count_reads(monkeypatch, limit):
    """Count the entries read; fail at once past limit (an unskipped hole)."""
    seen = [0]
    real = pagemap.ProcessReader.read_raw

    def read_raw(self, vpn, count):
        seen[0] += count
        assert seen[0] <= limit, "read %d entries: a hole was read" % seen[0]
        return real(self, vpn, count)
    monkeypatch.setattr(pagemap.ProcessReader, "read_raw", read_raw)
    return seen


@pytest.mark.parametrize("args", [
    ["0-ffffffffffffffff"],
    ["0-7fffffffffff", "--json"],
    ["0+128T", "--match", "present"],
    ["0-7fffffffffff", "--watch", "0.001", "--times", "1"],
])
def test_holes_are_not_read(fake, run, monkeypatch, args):
    """DEFAULT_MAPS has terabyte holes: the fake tree has no PAGEMAP_SCAN, and
    maps says where nothing is."""
    fake.process(PID, {0x600000: make_entry(present=True, pfn=5)})
    seen = count_reads(monkeypatch, 1 << 20)
    code, out, err = run(argv(fake, PID, *args))
    assert code in (0, 1) and "Traceback" not in err, err
    assert seen[0] < 1 << 20
    if "--watch" not in args and "--match" not in args:
        assert "0x603000-0x7f0000000000" in out or "6303744, \"entry\": 0" in out
    if args[0] == "0-ffffffffffffffff":
        last = out.splitlines()[-1].split()
        assert last[0] == "0xffffffffff601000-0x10000000000000000", out
        assert last[3] == "beyond-address-space"


@pytest.mark.parametrize("source", ["tree", "snapshot"])
def test_a_vast_mapping_is_walked_by_its_data(fake, run, monkeypatch, tmp_path, source):
    """126 TiB reserved (ASan's shadow, a Go arena, a JVM heap), one page touched.
    Without PAGEMAP_SCAN (a snapshot, a copied tree) the holes of the file say where
    no entry is, as maps does between mappings: 2^35 entries were read, a snapshot
    of 10 KiB took hours."""
    top = 0x7E0000000000
    fake.process(PID, {top - fake.page_size: make_entry(present=True, pfn=5)},
                 maps="10000000-%x rw-p 00000000 00:00 0 \n" % top)
    seen = count_reads(monkeypatch, 1 << 20)
    args = argv(fake, PID)
    if source == "snapshot":
        snap = str(tmp_path / "snap.zip")
        assert run(argv(fake, PID, "--capture", snap))[0] == 0
        args = ["--from", snap]
    code, out, err = run(args + ["--json"])
    assert code == 0 and json.loads(out)["total"]["resident"] == fake.page_size, err
    code, out, err = run(args + ["10000000-%x" % top])
    assert code == 0 and out.splitlines()[-1].split()[1] == "0x5000-0x6000", out
    assert seen[0] < 1 << 20


def test_recorded_huge_regions_are_looked_up_not_scanned():
    """A snapshot's huge.idx may hold a million regions, and its maps as many
    mappings: each chunk walked went through every region (16,000 of each: 10 s;
    a snapshot of a few MiB: hours)."""
    n = 4096
    scanner = pagemap.RecordedScanner(b"".join(struct.pack("<QQ", 8 * i, 4) for i in range(n)))
    # Kept compact: a region is two u64s, not a tuple of two ints (~150 bytes).
    assert sum(sys.getsizeof(v) for v in vars(scanner).values()) < 20 * n
    looked = [0]

    class Counting(list):
        def __getitem__(self, i):
            looked[0] += 1
            return list.__getitem__(self, i)
    scanner.starts, scanner.ends = Counting(scanner.starts), Counting(scanner.ends)
    found = [scanner.regions(8 * i + 2, 8 * i + 10, pagemap.HUGE_PRESENT, 0) for i in range(n)]
    assert 2 * n <= looked[0] < 40 * n      # bisected: ~30 a lookup, not n
    assert found[:-1] == [[(8 * i + 2, 8 * i + 4), (8 * i + 8, 8 * i + 10)] for i in range(n - 1)]
    assert found[-1] == [(8 * n - 6, 8 * n - 4)]
    assert scanner.regions(0, 8 * n, pagemap.HUGE_PRESENT, 0) == [(8 * i, 8 * i + 4)
                                                                  for i in range(n)]
    assert scanner.regions(8 * n, 9 * n, pagemap.HUGE_PRESENT, 0) == []


def test_scanner_refuses_ranges_past_64_bits(tmp_path):
    with open(str(tmp_path / "f"), "wb") as f:
        scanner = pagemap.PageScanner(f.fileno(), 4096)
        assert scanner.regions(0, (1 << 64) // 4096, 0, pagemap.PAGE_IS_PRESENT) is None
        assert scanner.works is None


@pytest.mark.live
def test_efault_past_the_address_space_leaves_the_scanner_on():
    """'[vsyscall]' first used to switch PAGEMAP_SCAN off for the whole run."""
    ps = pagemap.system_page_size()
    keep = bytearray(b"present")
    own = id(keep) // ps
    fd = os.open("/proc/self/pagemap", os.O_RDONLY)
    try:
        if pagemap.PageScanner(fd, ps).regions(own, own + 1, 0, pagemap.PAGE_IS_PRESENT) is None:
            pytest.skip("no PAGEMAP_SCAN (Linux < 6.7)")
        reader = pagemap.ProcessReader("/proc", "self", ps)
        try:
            end = reader.address_space_end() // ps
        finally:
            reader.close()
        if end + 1 > (1 << 64) // ps:
            pytest.skip("the address space reaches 2**64 here (s390x): nothing lies past it")
        scanner = pagemap.PageScanner(fd, ps)
        assert scanner.regions(end, end + 1, 0, pagemap.PAGE_IS_PRESENT) is None  # EFAULT
        assert scanner.regions(own, own + 1, 0, pagemap.PAGE_IS_PRESENT) == [(own, own + 1)]
        assert scanner.works
    finally:
        os.close(fd)
        del keep


@pytest.mark.live
def test_whole_64_bit_range_of_self(run):
    code, out, err = run(["self", "0-ffffffffffffffff"])
    assert code == 0, err
    # Unprivileged, the one warning that physical addresses are hidden.
    assert err == "" or (os.geteuid() and err.startswith("pagemap: warning: physical "
                                                         "addresses hidden") and
                         len(err.splitlines()) == 1), err
    assert out.splitlines()[-1].split()[0].endswith("-0x10000000000000000")


@pytest.mark.live
def test_each_of_the_whole_64_bit_range_streams():
    # 2**52 pages, most in holes: the pages of a run come one at a time (a list of
    # them was a MemoryError). The first lines, then the reader goes: quiet, exit 0.
    import subprocess
    p = subprocess.Popen([sys.executable, pagemap.__file__, "self", "--each",
                          "0-ffffffffffffffff"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = [p.stdout.readline() for _ in range(3)]
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait() == 0 and err == "", err
    assert lines[2].startswith(b"0x0 ") and b" unmapped " in lines[2], lines


# --- Pythons without json, zipfile, tempfile, zlib or fcntl (Yocto splits them out) --

SNAPSHOT_MODULES = ("json", "zipfile", "tempfile")


@pytest.mark.parametrize("module", ["json", "zipfile", "tempfile", "zlib", "fcntl"])
def test_python_without_a_module(fake, run, tmp_path, monkeypatch, module):
    fake.process(PID, {0x600000: make_entry(present=True, pfn=5)})
    fake.process("self", {0x400000: make_entry(present=True, pfn=6)})
    deflated, own = str(tmp_path / "deflated.zip"), str(tmp_path / "own.zip")
    assert run(argv(fake, PID, "--capture", deflated))[0] == 0
    monkeypatch.setitem(sys.modules, module, None)      # 'import module' fails now
    for command, needs in [  # (arguments, the modules they need)
            ([PID, "600000"], ()), ([PID], ()), ([PID, "[heap]", "--json"], ("json",)),
            (["--check"], ()), (["--decode", "0x8600000000036afb"], ()),
            ([PID, "--capture", own], SNAPSHOT_MODULES),
            (["--from", own, "600000"], SNAPSHOT_MODULES),
            (["--from", deflated, "[heap]"], SNAPSHOT_MODULES + ("zlib",))]:
        code, _, err = run(command if command[0] == "--from" else argv(fake, *command))
        if module in needs:
            assert_one_error(code, err, 5, "lacks the %s module" % module)
        else:
            assert code == 0 and err == "", (command, err)
    left = sorted(os.listdir(str(tmp_path)))
    assert left == ["deflated.zip", "proc"] if module in SNAPSHOT_MODULES else [
        "deflated.zip", "own.zip", "proc"]
