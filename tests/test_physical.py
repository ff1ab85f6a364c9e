"""What the physical page is: kpageflags, map counts, cgroups, NUMA, iomem and
huge pages, against fake /proc and /sys trees."""

import errno
import json
import os
import struct

import pytest
from conftest import make_entry

import pagemap

PID = "4242"
PAGE = 4096
ANON = 0x7F0000000000
B = pagemap.KPF_NAMES
BIT = dict((name, 1 << bit) for bit, name in B.items())
ANON_FLAGS = BIT["UPTODATE"] | BIT["LRU"] | BIT["MMAP"] | BIT["ANON"] | BIT["SWAPBACKED"]

IOMEM = """\
00000000-00000fff : Reserved
00001000-0009fbff : System RAM
00100000-bfffffff : System RAM
  01000000-0220bb07 : Kernel code
c0001000-eebfffff : PCI Bus 0000:00
100000000-63fffffff : System RAM
"""


def argv(fake, *args):
    return ["--proc-root", fake.root, "--page-size", str(fake.page_size)] + list(args)


@pytest.fixture
def machine(fake):
    """A fake machine: kpage files, two NUMA nodes of 128 MiB blocks, cgroups, iomem."""
    fake.write("iomem", IOMEM)
    fake.sysfs("devices/system/memory/block_size_bytes", "8000000\n")
    fake.sysfs("devices/system/node/node0/memory0")
    fake.sysfs("devices/system/node/node1/memory32")       # 4 GiB .. 4.125 GiB
    cg = fake.sysfs("fs/cgroup/system.slice/app.service")
    fake.cgroup_inode = os.stat(cg).st_ino
    fake.cgroup_path = cg
    return fake


def test_flags_on_a_present_page(machine, run):
    pfn = 0x100123                       # 0x100123000: node 1, System RAM
    machine.process(PID, {ANON: make_entry(present=True, pfn=pfn, exclusive=True)})
    machine.kpage("kpageflags", {pfn: ANON_FLAGS | (1 << 34) | (1 << 50)})
    machine.kpage("kpagecount", {pfn: 1})
    machine.kpage("kpagecgroup", {pfn: machine.cgroup_inode})
    code, out, err = run(argv(machine, "--flags", PID, hex(ANON + 5)))
    assert code == 0 and err == ""
    page = [line for line in out.splitlines() if line.startswith("  page: ")][0]
    assert "flags UPTODATE,LRU,MMAP,ANON,SWAPBACKED,ANON_EXCLUSIVE,BIT50" in page
    assert "map count 1" in page and "cgroup %s" % machine.cgroup_path in page
    assert "node 1" in page and "iomem System RAM" in page
    code, out, _ = run(argv(machine, "--flags", "--json", PID, hex(ANON + 5)))
    doc = json.loads(out)["results"][0]["page"]
    assert doc["mapcount"] == 1 and doc["node"] == 1 and doc["iomem"] == "System RAM"
    assert doc["cgroup"] == {"inode": machine.cgroup_inode, "path": machine.cgroup_path}
    assert doc["flags"][-2:] == ["ANON_EXCLUSIVE", "BIT50"] and doc["huge"] is None


def test_owner_2_of_an_anonymous_page_is_anon_exclusive():
    # PG_anon_exclusive is PG_owner_2 (once PG_mappedtodisk) on anonymous pages, 5.19+.
    assert pagemap.kpageflag_names(BIT["ANON"] | 1 << 34) == ["ANON", "ANON_EXCLUSIVE"]
    assert pagemap.kpageflag_names(BIT["LRU"] | 1 << 34) == ["LRU", "OWNER_2"]


def test_kernel_code_region_and_no_flags_without_option(machine, run):
    pfn = 0x1500                          # 0x1500000: inside Kernel code
    machine.process(PID, {ANON: make_entry(present=True, pfn=pfn)})
    machine.kpage("kpageflags", {pfn: BIT["RESERVED"]})
    _, out, _ = run(argv(machine, "--flags", PID, hex(ANON)))
    assert "iomem System RAM > Kernel code" in out and "node 0" in out
    _, out, _ = run(argv(machine, PID, hex(ANON)))
    assert "page:" not in out


def test_thp_found_from_its_compound_head(machine, run):
    head = 0x40000
    flags = {head: ANON_FLAGS | BIT["COMPOUND_HEAD"] | BIT["THP"]}
    flags.update({head + i: ANON_FLAGS | BIT["COMPOUND_TAIL"] | BIT["THP"] for i in range(1, 512)})
    machine.kpage("kpageflags", flags)
    va = 0x7E0000000000
    maps = "%x-%x rw-p 00000000 00:00 0\n" % (va, va + (2 << 20))
    machine.process(PID, {va + 5 * PAGE: make_entry(present=True, pfn=head + 5)}, maps=maps)
    code, out, _ = run(argv(machine, "--json", PID, hex(va + 5 * PAGE + 0x10)))
    huge = json.loads(out)["results"][0]["page"]["huge"]
    assert huge == {"kind": "THP", "size": 2 << 20, "head_pfn": head,
                    "phys_base": head * PAGE, "virt_base": va, "offset": 5 * PAGE + 0x10}
    _, out, _ = run(argv(machine, PID, hex(va + 5 * PAGE)))
    assert "huge: in a 2.0 MiB THP page: physical base 0x40000000 (head PFN 0x40000)" in out


def test_huge_zero_page_is_no_thp(machine, run):
    # A read fault on THP memory maps the huge zero page: THP and ZERO_PAGE, map count 0.
    head = 0x40000
    flags = {head: BIT["COMPOUND_HEAD"] | BIT["THP"] | BIT["ZERO_PAGE"]}
    flags.update({head + i: BIT["COMPOUND_TAIL"] | BIT["THP"] | BIT["ZERO_PAGE"]
                  for i in range(1, 512)})
    machine.kpage("kpageflags", flags)
    va = 0x7E0000000000
    maps = "%x-%x rw-p 00000000 00:00 0\n" % (va, va + (2 << 20))
    machine.process(PID, {va + 5 * PAGE: make_entry(present=True, file_shared=True, pfn=head + 5)},
                    maps=maps)
    _, out, _ = run(argv(machine, "--json", PID, hex(va + 5 * PAGE)))
    assert json.loads(out)["results"][0]["page"]["huge"]["kind"] == "huge zero"
    _, out, _ = run(argv(machine, PID, hex(va + 5 * PAGE)))
    assert "huge: in a 2.0 MiB huge zero page: physical base 0x40000000" in out


def test_gigantic_hugetlb_head_far_away(machine, run):
    head = 0x200000                       # a 1 GiB hugetlb page: 262144 PFNs
    tail = BIT["COMPOUND_TAIL"] | BIT["HUGE"]
    pfn = head + 1000
    flags = {head: BIT["COMPOUND_HEAD"] | BIT["HUGE"]}
    flags.update({head + i: tail for i in range(1, 262144)})
    machine.kpage("kpageflags", flags)
    va = 0x7D0000000000
    machine.process(PID, {va + 1000 * PAGE: make_entry(present=True, pfn=pfn)},
                    maps="%x-%x rw-p 00000000 00:0f 9 /anon_hugepage (deleted)\n" % (
                        va, va + (1 << 30)))
    _, out, _ = run(argv(machine, "--json", PID, hex(va + 1000 * PAGE)))
    huge = json.loads(out)["results"][0]["page"]["huge"]
    assert huge["kind"] == "hugetlb" and huge["size"] == 1 << 30 and huge["head_pfn"] == head


@pytest.mark.parametrize("tails,head,pfn", [
    ((10, 11), None, 10),       # a tail after a plain page (a THP split as we read)
    ((0, 11), None, 10),        # tails all the way back to PFN 0
    ((100, 131), None, 120),    # tails further back than a PUD's worth (16 here)
    ((21, 60), 20, 21),         # a head whose tails run on past a PUD's worth
])
def test_compound_page_not_found_in_inconsistent_kpageflags(fake, tails, head, pfn):
    # A PMD of 4 pages, so a PUD's worth is 16: no compound page, and no error.
    flags = dict((i, BIT["COMPOUND_TAIL"]) for i in range(*tails))
    if head is not None:
        flags[head] = BIT["COMPOUND_HEAD"]
    fake.kpage("kpageflags", flags, pfns=256)
    kpage = pagemap.KPageReader(fake.root)
    assert pagemap.huge_page_of(kpage, pfn, flags[pfn], 0x7000, PAGE, 4) is None
    if head:    # its tails ending within reach: an 8-page compound page at PFN 20
        fake.kpage("kpageflags", {28: 0})
        assert pagemap.huge_page_of(kpage, 22, flags[22], 0x7123, PAGE, 4) == (
            "compound", 8 * PAGE, 20, 20 * PAGE, 0x5000, 0x2123)
    kpage.close()


def test_missing_kpage_files_are_named(fake, run):
    fake.process(PID, {ANON: make_entry(present=True, pfn=0x42)})
    code, out, err = run(argv(fake, "--flags", PID, hex(ANON)))
    assert code == 0 and "0x42000" in out
    warnings = err.splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("pagemap: warning: some page facts")
    assert "kpageflags missing" in err and "kpagecgroup missing: kernel without CONFIG_MEMCG" in err
    code, out, err = run(argv(fake, "--json", "--flags", PID))      # the summary: facts unknown
    row = [m for m in json.loads(out)["mappings"] if m["start"] == ANON][0]
    assert code == 0 and row["resident"] == PAGE and (row["uss"], row["ksm"]) == (None, None)
    assert "kpageflags missing" in err


@pytest.mark.parametrize("error, told", [
    (PermissionError(errno.EACCES, "Permission denied"), "kpageflags needs root"),
    (OSError(errno.EIO, "Input/output error"), "kpageflags Input/output error")])
def test_kpageflags_that_fails_to_open_says_why(machine, run, monkeypatch, error, told):
    machine.process(PID, {ANON: make_entry(present=True, pfn=0x42)})
    machine.kpage("kpagecount", {0x42: 3})
    real = pagemap._open

    def failing(path):
        if path.endswith("kpageflags"):
            raise error
        return real(path)
    monkeypatch.setattr(pagemap, "_open", failing)
    code, out, err = run(argv(machine, "--flags", PID, hex(ANON)))
    assert code == 0 and "map count 3" in out
    assert told in err and "Traceback" not in err


def test_iomem_hidden_for_users(machine, run):
    machine.write("iomem", "00000000-00000000 : System RAM\n00000000-00000000 : Reserved\n")
    machine.process(PID, {ANON: make_entry(present=True, pfn=0x42)})
    _, out, err = run(argv(machine, "--flags", PID, hex(ANON)))
    assert "iomem" not in out and "/proc/iomem shows addresses only to root" in err


def test_pure_helpers():
    assert pagemap.kpageflag_names(0) == []
    assert pagemap.kpageflag_names(BIT["KSM"] | (1 << 63)) == ["KSM", "BIT63"]
    regions = pagemap.parse_iomem(IOMEM)
    assert pagemap.iomem_region(regions, 0x1000000) == "System RAM > Kernel code"
    assert pagemap.iomem_region(regions, 0xC0000000) is None
    assert pagemap.iomem_hidden(pagemap.parse_iomem("00000000-00000000 : x\n"))
    h, t = BIT["COMPOUND_HEAD"], BIT["COMPOUND_TAIL"]
    import struct

    def lanes(*values):
        return struct.pack("<%dQ" % len(values), *values)
    assert pagemap.compound_head_in(lanes(0, h, t, t, 0), 3) == 1
    assert pagemap.compound_end_in(lanes(0, h, t, t, 0), 2) == 4
    assert pagemap.compound_head_in(lanes(t, t, t), 1) is None       # head further back
    assert pagemap.compound_end_in(lanes(t, t, t), 0) is None        # end further on
    assert pagemap.compound_head_in(lanes(0, 0), 1) == -1            # not compound
    assert pagemap.parse_kib("2048 kB") == 2 << 20 and pagemap.parse_kib(None) is None


# --- --physical ---------------------------------------------------------------------

def physical_tree(fake, order="="):
    flags = {pfn: BIT["BUDDY"] for pfn in range(0x100, 0x164)}
    flags.update({pfn: ANON_FLAGS for pfn in range(0x1000, 0x100A)})
    flags[0x1FFF] = BIT["SLAB"] | (1 << 50)
    fake.kpage("kpageflags", flags, pfns=0x2000)


def test_physical_summary(fake, run):
    physical_tree(fake)
    code, out, err = run(argv(fake, "--physical"))
    assert code == 0 and err == ""
    rows = [line.split() for line in out.splitlines()[1:-1]]
    assert [(r[0], r[3]) for r in rows] == [
        (str(0x2000 - 100 - 10 - 1), "(none:"), ("100", "BUDDY"),
        ("10", "UPTODATE,LRU,MMAP,ANON,SWAPBACKED"), ("1", "SLAB,BIT50")]
    assert out.splitlines()[-1].startswith("total: 8192 pages (32.0 MiB) in PFNs 0x0-0x2000")


def test_physical_range_and_json(fake, run):
    physical_tree(fake)
    code, out, _ = run(argv(fake, "--json", "--physical", "1000+8"))
    doc = json.loads(out)
    assert (doc["pfn_start"], doc["pfn_end"], doc["pages"]) == (0x1000, 0x1008, 8)
    assert doc["combinations"] == [{"kpageflags": ANON_FLAGS, "pages": 8,
                                    "bytes": 8 * PAGE,
                                    "flags": ["UPTODATE", "LRU", "MMAP", "ANON", "SWAPBACKED"]}]


def test_physical_past_the_last_pfn_names_one_range(fake, run):
    physical_tree(fake)     # PFNs 0-0x2000
    code, out, err = run(argv(fake, "--physical", "3000+10"))
    assert code == 1 and "it lies past the last PFN" in err
    assert "in PFNs 0x3000-0x3010," in out and "no page in PFNs 0x3000-0x3010:" in err


def test_physical_big_endian_tree(tmp_path, run):
    from conftest import FakeProc
    little, big = FakeProc(tmp_path / "l", byteorder="<"), FakeProc(tmp_path / "b", byteorder=">")
    physical_tree(little)
    physical_tree(big)
    a = run(argv(little, "--physical", "--byteorder", "little"))[1]
    b = run(argv(big, "--physical", "--byteorder", "big"))[1]
    assert a == b and "BUDDY" in a


def test_physical_errors(fake, run, monkeypatch):
    from conftest import assert_one_error
    code, _, err = run(argv(fake, "--physical"))
    assert_one_error(code, err, 5, "kpageflags", "CONFIG_PROC_PAGE_MONITOR")
    physical_tree(fake)
    real = pagemap._open
    monkeypatch.setattr(pagemap, "_open", lambda p: (_ for _ in ()).throw(
        PermissionError(errno.EACCES, "denied")) if p.endswith("kpageflags") else real(p))
    code, _, err = run(argv(fake, "--physical"))
    assert_one_error(code, err, 4, "needs root")
    code, _, err = run(argv(fake, "--physical", "zz"))
    assert_one_error(code, err, 2, "PFN range")
    code, _, err = run(argv(fake, "--physical", "1", PID))
    assert code == 2


def test_add_flag_counts_by_block_and_by_lane(monkeypatch):
    import collections
    import struct
    monkeypatch.setattr(pagemap, "PHYSICAL_BLOCK", 4)
    big = 0x0102030405060708
    values = [5, 7, 7, 7,  7, 7, 7, 7,  5, 7, 7, 7] + [1, 2, 2, 3] * 40 + [big, 7, 7, 4,  4, 4, 6]
    buf = struct.pack("<%dQ" % len(values), *values)
    counts, groups = collections.Counter({9: 1}), collections.Counter()
    pagemap.add_flag_counts(counts, groups, buf)
    pagemap.add_flag_counts(counts, groups, b"")
    # Blocks of 4: the first lane and three equal ones count at once; of the
    # other lanes, whole unpacks (1024 bytes here) by group of four, the rest
    # (8 more groups, the odd block, the 3-lane tail) one by one.
    assert counts == {9: 1, 5: 2, 7: 12, 1: 8, 2: 16, 3: 8, big: 1, 4: 3, 6: 1}
    assert groups == {struct.pack("<4Q", 1, 2, 2, 3): 32}
    pagemap.flush_groups(counts, groups)
    assert counts == collections.Counter(values + [9]) and not groups
    # Past PHYSICAL_GROUPS distinct groups, they go to counts at once.
    monkeypatch.setattr(pagemap, "PHYSICAL_GROUPS", 0)
    pagemap.add_flag_counts(counts, groups, buf)
    assert counts == collections.Counter(values * 2 + [9]) and not groups


def test_physical_counts_across_reads(fake, run, monkeypatch):
    # Reads of 7 PFNs: runs cross every read, and the last read is short.
    physical_tree(fake)
    whole = run(argv(fake, "--physical"))
    monkeypatch.setattr(pagemap, "PHYSICAL_CHUNK", 7)
    assert run(argv(fake, "--physical")) == whole
    assert "total: 96 pages" in run(argv(fake, "--physical", "fc-15c"))[1]


def process_physical_tree(fake):
    """physical_tree's PFNs mapped by PID: PFN 0x1000 twice, a page swapped, one
    past the last PFN (device memory: no flags), a BUDDY page in [heap]."""
    physical_tree(fake)
    entries = dict((ANON + i * PAGE, make_entry(present=True, pfn=0x1000 + i)) for i in range(4))
    entries.update({ANON + 4 * PAGE: make_entry(present=True, pfn=0x1000),
                    ANON + 5 * PAGE: make_entry(swapped=True, swap_offset=9),
                    ANON + 6 * PAGE: make_entry(present=True, pfn=0x1FFF),
                    ANON + 7 * PAGE: make_entry(present=True, pfn=0x5000),
                    0x600000 + PAGE: make_entry(present=True, pfn=0x100)})
    fake.process(PID, entries)


def test_physical_of_a_process(fake, run):
    process_physical_tree(fake)
    code, out, err = run(argv(fake, PID, "--physical"))
    assert code == 0 and err == ""
    assert out.splitlines() == [
        "         PAGES          MIB  KPAGEFLAGS          FLAGS",
        "             5          0.0  0x0000000000005828  UPTODATE,LRU,MMAP,ANON,SWAPBACKED",
        "             1          0.0  0x0000000000000400  BUDDY",
        "             1          0.0  0x0004000000000080  SLAB,BIT50",
        "total: 7 pages (28.0 KiB) in PID 4242's mappings (not counted: 1 swapped), "
        "3 flag combinations"]
    code, out, err = run(argv(fake, "--json", PID, "--physical", "[heap]", hex(ANON + 4 * PAGE)))
    assert code == 0 and err == ""
    assert json.loads(out) == {
        "pid": 4242, "page_size": PAGE, "kernel": "6.18", "pages": 2, "swapped": 0,
        "combinations": [
            {"kpageflags": 0x400, "flags": ["BUDDY"], "pages": 1, "bytes": PAGE},
            {"kpageflags": 0x5828, "flags": ["UPTODATE", "LRU", "MMAP", "ANON", "SWAPBACKED"],
             "pages": 1, "bytes": PAGE}]}
    code, out, err = run(argv(fake, PID, "nosuchlib", "--physical"))
    assert code == 1 and "'nosuchlib' matches no mapping" in err
    assert out.endswith("in PID 4242's nosuchlib, 0 flag combinations\n")


def test_physical_of_a_snapshot(fake, run, tmp_path):
    process_physical_tree(fake)
    snap = str(tmp_path / "snap.zip")
    assert run(argv(fake, PID, "--capture", snap))[0] == 0
    for view, pages in (([], 7), (["--json"], 7), (["[heap]", "%x+2000" % ANON], 3)):
        result = run(["--from", snap, "--physical"] + view)
        assert result == run(argv(fake, PID, "--physical", *view))
        assert result[0] == 0 and ("total: %d pages" % pages in result[1]
                                   or json.loads(result[1])["pages"] == pages)


def test_physical_of_a_process_refused(fake, run, tmp_path):
    from conftest import assert_one_error
    process_physical_tree(fake)
    for extra, fragment in ((["--physical", "100+4"], "PFN range"),
                            (["--match", "anon", "--physical"], "--match"),
                            (["--each", "--physical", "[heap]"], "--each")):
        code, _, err = run(argv(fake, PID, *extra))
        assert_one_error(code, err, 2, fragment)
    code, _, err = run(["--from", str(tmp_path / "s.zip"), "--physical", "1+1"])
    assert_one_error(code, err, 2, "PFN range")
    fake.reader(privileged=True, uid_map="0 100000 65536\n")
    code, _, err = run(argv(fake, PID, "--physical"))
    assert_one_error(code, err, 4, "--physical with a PID: it needs PFNs", "user namespace")
    fake.reader(privileged=False)
    code, _, err = run(argv(fake, PID, "--physical"))
    assert_one_error(code, err, 4, "CAP_SYS_ADMIN")
    os.remove(os.path.join(fake.root, "kpageflags"))
    code, _, err = run(argv(fake, PID, "--physical"))
    assert_one_error(code, err, 5, "kpageflags", "CONFIG_PROC_PAGE_MONITOR")


# --- --phys ---------------------------------------------------------------------------

def test_find_pfn_checks_alignment_and_present():
    import struct
    pfn = 0x1BF412
    lanes = [0, make_entry(present=True, pfn=pfn), make_entry(swapped=True, swap_offset=1),
             (0x1BF412 << 16) | 0x8000, make_entry(present=True, pfn=pfn | (1 << 50)),
             make_entry(present=True, pfn=pfn, exclusive=True)]
    buf = struct.pack("<%dQ" % len(lanes), *lanes)
    assert pagemap.find_pfn(buf, pfn) == [1, 5]


def phys_tree(fake):
    pfn = 0x4242
    fake.process("100", {ANON + 3 * PAGE: make_entry(present=True, pfn=pfn, exclusive=False)})
    fake.process("200", {0x600000: make_entry(present=True, pfn=pfn),
                         0x601000: make_entry(present=True, pfn=pfn + 1)}, name="other")
    d = fake.process("2", {}, maps="", flags=0x00208040, name="kthreadd")
    os.remove(os.path.join(d, "pagemap"))
    fake.process("300", {0x600000: make_entry(present=True, pfn=7)}, name="denied")
    return pfn


def test_phys_finds_every_mapper(fake, run, monkeypatch):
    pfn = phys_tree(fake)
    real = pagemap._open

    def guarded(path):
        if path.endswith("/300/pagemap"):
            raise PermissionError(errno.EACCES, "denied")
        if path.endswith("/2/pagemap"):
            raise ProcessLookupError(errno.ESRCH, "kernel thread")
        return real(path)
    monkeypatch.setattr(pagemap, "_open", guarded)
    code, out, err = run(argv(fake, "--phys", hex(pfn * PAGE + 0x10)))
    assert code == 0
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [(r[0], r[2]) for r in rows] == [("100", "0x7f0000003010"), ("200", "0x600010")]
    assert err.count("pagemap: warning:") == 1
    assert "skipped 1 of 4 processes (1 permission denied)" in err   # not the kernel thread
    code, out, _ = run(argv(fake, "--json", "--phys", hex(pfn * PAGE), "200"))
    doc = json.loads(out)
    assert [(m["pid"], m["vaddr"]) for m in doc["matches"]] == [(200, 0x600000)]
    assert doc["processes"] == 1 and doc["pfn"] == pfn


def test_phys_counts_processes_gone_or_unreadable(fake, run, monkeypatch):
    pfn = phys_tree(fake)
    fake.process("400", {}, maps="not a maps line\n")
    code, out, err = run(argv(fake, "--phys", hex(pfn * PAGE), "100", "400"))
    assert code == 0 and [line.split()[0] for line in out.splitlines()[1:]] == ["100"]
    assert "skipped 1 of 2 processes (1 unreadable)" in err
    from conftest import assert_one_error
    # A named PID that is not there is the usual error, not '1 exited'.
    code, _, err = run(argv(fake, "--phys", hex(pfn * PAGE), "100", "999"))
    assert_one_error(code, err, 3, "no process with PID 999")

    def unlistable(path):
        raise PermissionError(errno.EACCES, "Permission denied")
    # The processes cannot be listed (none named): one error, exit 5.
    monkeypatch.setattr(os, "listdir", unlistable)
    code, _, err = run(argv(fake, "--phys", hex(pfn * PAGE)))
    assert_one_error(code, err, 5, "cannot list processes: Permission denied",
                     "name the PIDs")


def test_phys_no_match_and_hidden(fake, run):
    phys_tree(fake)
    code, out, err = run(argv(fake, "--phys", "0x9999000", "100", "200"))
    assert code == 1 and "no process maps physical address 0x9999000" in err
    fake.reader(privileged=False)
    from conftest import assert_one_error
    code, _, err = run(argv(fake, "--phys", "0x4242000"))
    assert_one_error(code, err, 4, "CAP_SYS_ADMIN")


def test_phys_of_device_memory_says_so(fake, run):
    # Nothing maps it through page tables: a driver's mapping of device memory is
    # VM_PFNMAP, without pagemap entries. "May be free or page cache" would mislead.
    phys_tree(fake)
    fake.write("iomem", IOMEM)
    code, out, err = run(argv(fake, "--phys", "0xc0002000"))
    assert code == 1 and "PCI Bus 0000:00, not System RAM" in err and "VM_PFNMAP" in err, err
    code, out, err = run(argv(fake, "--phys", "0x9999000"))
    assert code == 1 and "page cache" in err and "VM_PFNMAP" not in err, err


def test_zero_page_is_explained(fake, run):
    """Two pages, one physical address: a read fault maps the shared zero page
    (kpageflags bit 24, ZERO_PAGE), said with or without --flags."""
    fake.kpage("kpageflags", {0x3B34: 1 << 24})
    fake.process(PID, {ANON: make_entry(present=True, pfn=0x3B34),
                       ANON + PAGE: make_entry(present=True, pfn=0x3B34),
                       ANON + 2 * PAGE: make_entry(present=True, pfn=0x3B35, exclusive=True)})
    for extra in ([], ["--flags"]):
        code, out, _ = run(argv(fake, "--json", PID, "%x" % ANON, "%x" % (ANON + PAGE),
                                "%x" % (ANON + 2 * PAGE), *extra))
        notes = [r["note"] for r in json.loads(out)["results"]]
        assert code == 0 and [n and n.startswith("the shared zero page") for n in notes] == [
            True, True, None]


def test_page_facts_need_pfns_not_only_kpageflags(fake, run):
    """Root in a user namespace reads kpageflags, but its pagemap gives PFN 0:
    the summary's page facts are unknown, not zero, and a --match on them is
    refused, not answered 'none'."""
    from conftest import assert_one_error
    fake.reader(privileged=True, uid_map="0 100000 65536\n")
    fake.kpage("kpageflags", {0x42: 1 << 22})
    fake.kpage("kpagecount", {0x42: 1})
    fake.process(PID, {ANON: make_entry(present=True, pfn=0, exclusive=True)})
    code, out, err = run(argv(fake, "--json", "--flags", PID))
    total = json.loads(out)["total"]
    assert code == 0 and total["resident"] == PAGE
    assert total["thp"] is None and total["uss"] is None and total["pss"] is None
    assert "user namespace" in err and "Traceback" not in err
    code, out, err = run(argv(fake, "--match", "thp", PID))
    assert_one_error(code, err, 4, "--match thp", "user namespace")


# --- --match and summaries with --flags ------------------------------------------------

def match_tree(fake):
    """Six pages at ANON: PFNs 0x500-0x505; 0x502 is KSM, 0x503 shared (map count 2),
    0x504 the zero page; page 6 is swapped."""
    flags = {0x500 + i: ANON_FLAGS for i in range(6)}
    flags[0x502] |= BIT["KSM"]
    flags[0x504] = BIT["ZERO_PAGE"] | BIT["MMAP"]
    counts = {0x500 + i: 1 for i in range(6)}
    counts[0x503] = 2
    counts[0x504] = 57
    fake.kpage("kpageflags", flags)
    fake.kpage("kpagecount", counts)
    entries = {ANON + i * PAGE: make_entry(present=True, pfn=0x500 + i, exclusive=(i != 3))
               for i in range(6)}
    entries[ANON + 6 * PAGE] = make_entry(swapped=True, swap_offset=3)
    fake.process(PID, entries)


def match_runs(run, fake, spec, *extra):
    code, out, err = run(argv(fake, "--json", "--match", spec, PID, "%x+8000" % ANON) +
                         list(extra))
    assert code == 0, err
    return [(r["start"] - ANON) // PAGE for r in json.loads(out)["ranges"][0]["runs"]], [
        r["pages"] for r in json.loads(out)["ranges"][0]["runs"]]


def test_match_filters_runs(fake, run):
    match_tree(fake)
    assert match_runs(run, fake, "ksm") == ([2], [1])
    starts, lengths = match_runs(run, fake, "anon,~ksm")
    assert list(zip(starts, lengths)) == [(0, 2), (3, 1), (5, 1)]
    assert match_runs(run, fake, "shared") == ([3], [1])
    assert match_runs(run, fake, "swapped") == ([6], [1])
    assert match_runs(run, fake, "present,~exclusive") == ([3], [1])
    assert match_runs(run, fake, "zero") == ([4], [1])


@pytest.mark.parametrize("spec", ["anon,~ksm", "shared", "~shared", "zero", "present,~exclusive",
                                  "exclusive,anon", "swapped"])
def test_match_summary_counts_what_the_listing_shows(fake, run, spec):
    # The summary counts pages by pagemap flags without cutting runs; page 3 (not
    # exclusive) gives the batch two kinds of flags.
    match_tree(fake)
    fake.kpage("kpagecount", {0x500 + i: c for i, c in enumerate([1, 1, 1, 2])}, pfns=0x504)
    starts, lengths = match_runs(run, fake, spec)
    code, out, err = run(argv(fake, "--json", "--match", spec, PID))
    rows = {m["start"]: m for m in json.loads(out)["mappings"]}
    assert rows[ANON]["resident"] + rows[ANON]["swapped"] == sum(lengths) * PAGE


@pytest.mark.parametrize("seed", range(3))
def test_match_summary_against_page_by_page(fake, run, seed):
    # Runs of every kind over a chunk read, then a chunk of two PMD blocks each one
    # physical run (found by the block proof), kpage values random, some PFNs past
    # the files' end: the summary counts what a page-by-page reference passes.
    import random
    rng = random.Random(seed)
    pages, pfns = pagemap.COUNT_CHUNK, 3000
    entries = dict((ANON + (pages + i) * PAGE, make_entry(
        present=True, pfn=512 + i + 1024 * (i >= 512), exclusive=True)) for i in range(1024))
    vpn = 0
    while vpn < pages:
        n = rng.randrange(1, 40)
        kind = rng.choice(["hole", "present", "present", "present", "swapped", "pfn0"])
        bits = dict((k, rng.random() < 0.5) for k in ("exclusive", "soft_dirty", "file_shared"))
        pfn = rng.randrange(1, pfns + 50)
        for i in range(min(n, pages - vpn)):
            if kind != "hole":
                entries[ANON + (vpn + i) * PAGE] = make_entry(
                    present=kind != "swapped", pfn=0 if kind == "pfn0" else pfn + i,
                    swapped=kind == "swapped", swap_offset=vpn + i, **bits)
        vpn += n
    flags = dict((p, rng.choice([0, ANON_FLAGS, ANON_FLAGS | BIT["KSM"], BIT["ZERO_PAGE"],
                                 BIT["THP"] | ANON_FLAGS])) for p in range(pfns))
    counts = dict((p, rng.choice([0, 1, 1, 2, 3])) for p in range(pfns))
    fake.kpage("kpageflags", flags, pfns=pfns)
    fake.kpage("kpagecount", counts, pfns=pfns)
    maps = "%x-%x rw-p 00000000 00:00 0 \n" % (ANON, ANON + (pages + 1024) * PAGE)
    fake.process(PID, entries, maps=maps)
    for text in ["anon", "shared", "anon,~ksm,exclusive", "~shared,soft-dirty", "zero",
                 "thp,shared,~exclusive"]:
        spec = pagemap.parse_match(text)
        want = dict.fromkeys(("resident", "exclusive", "file", "soft_dirty"), 0)
        for raw in entries.values():
            pfn = raw & pagemap.PM_PFRAME_MASK
            if raw >> 63 and pfn and pagemap.entry_matches(spec, raw) and naive_facts_match(
                    spec, flags.get(pfn), counts.get(pfn)):
                for key, bit in (("resident", 63), ("exclusive", 56), ("file", 61),
                                 ("soft_dirty", 55)):
                    want[key] += PAGE * (raw >> bit & 1)
        code, out, err = run(argv(fake, "--json", "--match", text, PID))
        assert code == 0, err
        row = json.loads(out)["mappings"][0]
        assert dict((key, row[key]) for key in want) == want, text
        assert row["swapped"] == 0


def test_match_each_and_typo(fake, run):
    match_tree(fake)
    code, out, _ = run(argv(fake, "--each", "--match", "ksm", PID, "%x+8000" % ANON))
    assert [line.split()[0] for line in out.splitlines() if line.startswith("0x")] == [
        "0x7f0000002000"]
    from conftest import assert_one_error
    code, _, err = run(argv(fake, "--match", "anon,thpp", PID, "%x+8000" % ANON))
    assert_one_error(code, err, 2, "'thpp'", "valid names", "anon", "ksm")


def test_match_takes_page_types_names():
    """tools/mm/page-types' -b names mean the same here; its softdirty is pagemap's
    bit 55 (it sets kpageflags bit 40 itself: the kernel never does)."""
    for theirs, ours in (("softdirty", "soft-dirty"), ("anonymous", "anon"),
                         ("swap", "swapped"), ("mmap_exclusive", "exclusive"),
                         ("idle_page", "idle"), ("~anonymous,swap", "~anon,swapped")):
        assert pagemap.parse_match(theirs) == pagemap.parse_match(ours), theirs


def test_each_json_with_flags_gives_each_page_its_facts(fake, run):
    match_tree(fake)
    code, out, _ = run(argv(fake, "--json", "--each", "--flags", PID, "%x+4000" % ANON))
    pages = json.loads(out)["ranges"][0]["pages"]
    assert code == 0 and [p["pfn"] for p in pages] == [0x500, 0x501, 0x502, 0x503]
    assert [(p["page"]["mapcount"], "KSM" in p["page"]["flags"]) for p in pages] == [
        (1, False), (1, False), (1, True), (2, False)]


def test_summary_with_flags(fake, run):
    match_tree(fake)
    code, out, _ = run(argv(fake, "--json", "--flags", PID))
    row = [m for m in json.loads(out)["mappings"] if m["start"] == ANON][0]
    assert (row["ksm"], row["zero"], row["shared"]) == (PAGE, PAGE, PAGE)
    assert row["uss"] == 4 * PAGE                     # 5 private-ish, minus the shared one
    assert row["pss"] == 4 * PAGE + PAGE // 2         # the zero page counts in neither
    assert row["resident"] == 6 * PAGE and row["swapped"] == PAGE
    code, out, _ = run(argv(fake, "--flags", PID))
    assert "USS_KIB" in out.splitlines()[0] and "USS 16.0 KiB, PSS 18.0 KiB" in out
    code, out, _ = run(argv(fake, "--json", PID))
    row = [m for m in json.loads(out)["mappings"] if m["start"] == ANON][0]
    assert row["uss"] is None and row["pss"] is None


def kpagecount_reads_fail(monkeypatch):
    """kpagecount opens, but each read of it fails (EIO)."""
    real = os.pread

    def pread(fd, size, offset):
        if os.readlink("/proc/self/fd/%d" % fd).endswith("kpagecount"):
            raise OSError(errno.EIO, "Input/output error")
        return real(fd, size, offset)
    monkeypatch.setattr(os, "pread", pread)


def test_summary_with_flags_when_kpagecount_fails_to_read(fake, run, monkeypatch):
    # kpagecount opened but failing to read (EIO): USS and PSS unknown, not 0.
    match_tree(fake)
    kpagecount_reads_fail(monkeypatch)
    code, out, err = run(argv(fake, "--json", "--flags", PID))
    doc = json.loads(out)
    row = [m for m in doc["mappings"] if m["start"] == ANON][0]
    assert code == 0 and row["resident"] == 6 * PAGE
    assert (row["uss"], row["pss"], doc["total"]["uss"], doc["total"]["pss"]) == (None,) * 4
    assert "kpagecount: Input/output error" in err
    code, out, _ = run(argv(fake, "--flags", PID))
    assert code == 0 and "USS" not in out.replace("USS_KIB", "")


def test_summary_with_match(fake, run):
    match_tree(fake)
    code, out, _ = run(argv(fake, "--json", "--match", "anon,~ksm", PID))
    rows = {m["start"]: m for m in json.loads(out)["mappings"]}
    assert rows[ANON]["resident"] == 4 * PAGE and rows[ANON]["swapped"] == 0
    assert rows[0x600000]["resident"] == 0
    assert rows[0xFFFFFFFFFF600000]["status"] == "beyond-address-space"


def test_count_page_facts():
    import struct
    flags = [BIT["THP"], BIT["HUGE"] | BIT["DIRTY"], BIT["UNEVICTABLE"], 1 << 33, BIT["LOCKED"],
             BIT["THP"] | BIT["ZERO_PAGE"]]           # the huge zero page: no THP
    counts = [1, 2, 4, 1, 0, 0]
    facts = pagemap.count_page_facts(struct.pack("<6Q", *flags), struct.pack("<6Q", *counts))
    assert facts[:7] == (1, 1, 0, 1, 2, 1, 2)    # LOCKED is the page lock (I/O), no mlock
    assert facts.uss == 3 and facts.pss == 1 + 0.5 + 0.25 + 1 + 1
    # One kind of lock only (no union needed); a zero page with a map count.
    flags = [BIT["UNEVICTABLE"], 0, BIT["UNEVICTABLE"] | BIT["DIRTY"] | BIT["ZERO_PAGE"]]
    facts = pagemap.count_page_facts(struct.pack("<3Q", *flags), struct.pack("<3Q", 1, 1, 9))
    assert facts[:8] == (0, 0, 0, 1, 0, 1, 2, 2)


@pytest.mark.parametrize("seed", range(4))
def test_count_page_facts_against_page_by_page(seed):
    # Map counts above 255 (a slower histogram), zero pages with any map count.
    import random
    import struct
    rng = random.Random(seed)
    bits = [BIT[name] for name in ("THP", "HUGE", "KSM", "ZERO_PAGE", "DIRTY", "LOCKED",
                                   "UNEVICTABLE")] + [1 << 33, 0]
    n = rng.randrange(1, 400)
    flags = [rng.choice(bits) | rng.choice(bits) for _ in range(n)]
    counts = [rng.choice([0, 1, 1, 2, 3, 7] + ([300, 1 << 40] if seed % 2 else []))
              for _ in range(n)]
    got = pagemap.count_page_facts(struct.pack("<%dQ" % n, *flags),
                                   struct.pack("<%dQ" % n, *counts))
    kept = [c for f, c in zip(flags, counts) if not f & BIT["ZERO_PAGE"]]
    want = [sum(1 for f in flags if f & BIT["THP"] and not f & BIT["ZERO_PAGE"])] + [
        sum(1 for f in flags if f & BIT[name]) for name in ("HUGE", "KSM", "ZERO_PAGE")] + [
        sum(1 for c in kept if c > 1), sum(1 for f in flags if f & BIT["DIRTY"]),
        sum(1 for f in flags if f & (BIT["UNEVICTABLE"] | 1 << 33)),
        sum(1 for c in kept if c <= 1)]
    assert list(got[:8]) == want
    assert got.pss == pytest.approx(sum(1.0 / max(1, c) for c in kept))


def test_ranges_with_flags_split_by_page_facts(fake, run):
    match_tree(fake)
    code, out, _ = run(argv(fake, "--json", "--flags", PID, "%x+8000" % ANON))
    runs = json.loads(out)["ranges"][0]["runs"]
    got = [((r["start"] - ANON) // PAGE, r["pages"], r["page"] and r["page"]["flags"])
           for r in runs]
    anon = ["UPTODATE", "LRU", "MMAP", "ANON", "SWAPBACKED"]
    assert got == [(0, 2, anon), (2, 1, anon[:4] + ["SWAPBACKED", "KSM"]), (3, 1, anon),
                   (4, 1, ["MMAP", "ZERO_PAGE"]), (5, 1, anon), (6, 1, None), (7, 1, None)]
    assert runs[3]["page"]["mapcount"] == 57 and runs[2]["page"]["mapcount"] == 2
    code, out, _ = run(argv(fake, "--flags", "--each", PID, "%x+1000" % ANON))
    assert "  page: flags UPTODATE,LRU,MMAP,ANON,SWAPBACKED" in out


def reference_flag_pieces(runs, files, system):
    """flag_pieces page by page: each present run cut where a page's kpage values
    (files: {name: (values, PFNs the file holds)}) differ from the page before."""
    pieces, infos = [], []
    for vpn, pages, raw in runs:
        pfn = raw & pagemap.PM_PFRAME_MASK if raw is not None and raw >> 63 else 0
        if not pfn:
            pieces.append((vpn, pages, raw))
            infos.append(None)
            continue
        before = None
        for i in range(pages):
            here = tuple(values.get(pfn + i, 0) if pfn + i < held else None
                         for values, held in (files[name] for name in pagemap.KPAGE_FILES))
            if here != before:
                flags, count, inode = before = here
                pieces.append((vpn + i, 0, raw + i))
                infos.append(pagemap.PageInfo(flags, count, inode or None, system.cgroup_path(
                    inode) if inode else None, *system.place_of((pfn + i) * PAGE) + (None,)))
            pieces[-1] = pieces[-1][:1] + (pieces[-1][1] + 1,) + pieces[-1][2:]
    return pieces, infos


def test_flag_pieces_and_their_lines_match_a_page_by_page_reference(machine):
    # Random runs over PFNs by iomem edges (0x9fc00, 0x100000, Kernel code at
    # 0x1000000: memory block 0, split) and across blocks 32 (node 1) and 33 (no
    # node) at 0x108000, kpage files ending inside them, values changing now and
    # then; the listing's lines as run by run (odd seeds: present runs of one
    # width, which make one block of text).
    import random
    maps = "7f0000000000-7f0000400000 rw-p 00000000 00:00 0 \n"
    bases = [[0x98, 0xF0, 0x100, 0xFF8, 0x107FF0], [0x107FC0, 0x107FF0], [0x100, 0x110]]
    for seed in range(24):
        rng = random.Random(seed)
        entries, files, vaddr = {}, {}, ANON
        for _ in range(rng.randrange(1, 120)):
            kind, pages = rng.random(), rng.randrange(1, 12)
            pfn = rng.choice(bases[seed % 2 and 1 + seed // 2 % 2]) + rng.randrange(0x40)
            for i in range(pages):
                entries[vaddr] = (make_entry(present=True, pfn=pfn + i, exclusive=True)
                                  if kind < 0.85 or seed % 2 else
                                  make_entry(swapped=True, swap_offset=i)
                                  if kind < 0.95 else 0)
                vaddr += PAGE
        for name, choices in (("kpageflags", [ANON_FLAGS, ANON_FLAGS | 1 << 25]),
                              ("kpagecount", [1, 2]), ("kpagecgroup", [0, machine.cgroup_inode])):
            path = os.path.join(machine.root, name)
            if os.path.exists(path):
                os.remove(path)
            held = rng.choice([0x120, 0x1000, 0x108010, 0x200000])
            value, values = choices[0], {}
            for pfn in sorted(set(p for base in sum(bases, []) for p in range(base, base + 0x50))):
                value = rng.choice(choices) if rng.random() < 0.1 else value
                values.update({pfn: value} if pfn < held else {})
            machine.kpage(name, values, held)
            files[name] = values, held
        machine.process(PID, entries, maps=maps)
        reader = pagemap.ProcessReader(machine.root, PID, PAGE)
        reader.open_pagemap()
        ctx = pagemap.Context(machine.root, None, True)
        view = pagemap.RangeView(reader, ctx, None)
        runs = list(view.walker.runs(ANON // PAGE, vaddr // PAGE))
        pieces, infos = view.flag_pieces(runs)
        assert (pieces, infos) == reference_flag_pieces(runs, files, ctx.facts), seed
        mapping = reader.maps()[0]
        want = []
        for piece, info in zip(pieces, infos):
            want += pagemap.RunFormatter(mapping, PAGE, ctx.kernel, bool).lines([piece])
            want += ["\n".join(pagemap.format_page(info))] if info else []
        got = pagemap.RunFormatter(mapping, PAGE, ctx.kernel, bool).lines(pieces, infos)
        assert "\n".join(got) == "\n".join(want), seed
        reader.close()
        ctx.close()


def test_pmd_size_read_once_a_run_not_once_a_page(fake, run, monkeypatch):
    # Each present page of --each --flags (and each address looked up) asks for its
    # huge page, which needs the PMD size: sysfs is read once a reader, not per page
    # (the second: pagemap's own, read once a map count above 1 is seen).
    match_tree(fake)
    calls = []
    real = pagemap.pmd_pages_for
    monkeypatch.setattr(pagemap, "pmd_pages_for", lambda *a: calls.append(a) or real(*a))
    asked = []
    for pages in (1, 6):
        del calls[:]
        code, out, _ = run(argv(fake, "--flags", "--each", PID, "%x+%x" % (ANON, pages * PAGE)))
        assert code == 0 and out.count("  page: flags ") == pages
        asked.append(len(calls))
    assert asked[0] <= asked[1] <= 2


def test_progress_only_on_a_slow_terminal():
    import io

    class Tty(io.StringIO):
        def isatty(self):
            return True
    err = Tty()
    progress = pagemap.progress_line(err, delay=0)
    progress("pagemap: scanning PID 1 (1 of 9)")
    progress("")
    assert "scanning PID 1" in err.getvalue() and err.getvalue().endswith("\r\x1b[K")
    quiet = io.StringIO()
    progress = pagemap.progress_line(quiet, delay=0)
    progress("x")
    progress("")
    assert quiet.getvalue() == ""


def test_phys_with_flags_says_what_the_page_is(machine, run):
    pfn = phys_tree(machine)
    machine.kpage("kpageflags", {pfn: ANON_FLAGS})
    machine.kpage("kpagecount", {pfn: 2})
    code, out, _ = run(argv(machine, "--flags", "--phys", hex(pfn * PAGE), "100", "200"))
    assert code == 0
    assert out.splitlines()[0].startswith(
        "physical 0x4242000 (PFN 0x4242) page: flags UPTODATE,LRU,MMAP,ANON,SWAPBACKED")
    assert "map count 2" in out.splitlines()[0]
    code, out, _ = run(argv(machine, "--json", "--flags", "--phys", hex(pfn * PAGE), "100"))
    assert json.loads(out)["page"]["mapcount"] == 2
    code, out, _ = run(argv(machine, "--json", "--phys", hex(pfn * PAGE), "100"))
    assert json.loads(out)["page"] is None


def naive_facts_match(spec, kpageflags, mapcount):
    """The kpageflags and map count part of a --match spec, page by page."""
    if spec.kpf_set or spec.kpf_clear:
        if kpageflags is None or kpageflags & spec.kpf_set != spec.kpf_set or (
                kpageflags & spec.kpf_clear):
            return False
    if spec.shared is not None:
        zero = kpageflags is not None and kpageflags & BIT["ZERO_PAGE"]
        if mapcount is None or (mapcount > 1 and not zero) != spec.shared:
            return False
    return True


@pytest.mark.parametrize("text", ["anon", "anon,~ksm", "shared", "~shared", "thp,shared",
                                  "zero", "~dirty,~shared", "present"])
def test_lanes_matching_against_page_by_page(text):
    import random
    import struct
    rng = random.Random(text)
    spec = pagemap.parse_match(text)
    choices = [0, ANON_FLAGS, ANON_FLAGS | BIT["KSM"], BIT["ZERO_PAGE"], BIT["THP"] | ANON_FLAGS,
               BIT["DIRTY"], (1 << 63) | BIT["ANON"]]
    flags = [rng.choice(choices) for _ in range(300)]
    counts = [rng.choice([0, 1, 2, 3, 57, 1 << 40, (1 << 64) - 1]) for _ in range(300)]
    known = bytes(rng.choice([0, 1, 1, 1]) for _ in range(300))
    fbuf, cbuf = struct.pack("<300Q", *flags), struct.pack("<300Q", *counts)
    for f, c, k in ((fbuf, cbuf, None), (fbuf, cbuf, known), (None, cbuf, None),
                    (fbuf, None, None)):
        got = pagemap.lanes_matching(spec, 300, f, c, k)
        assert list(bytearray(got)) == [
            int(naive_facts_match(spec, None if f is None else flags[i],
                                  None if c is None else counts[i]) and (k is None or k[i] == 1))
            for i in range(300)]


def test_gather_reads_close_runs_together(fake, monkeypatch):
    import random
    import struct
    fake.kpage("kpageflags", {pfn: 1000 + pfn for pfn in range(600)}, pfns=600)
    kpage = pagemap.KPageReader(fake.root)
    reads = []
    real = kpage.read_lanes

    def watching(name, pfn, count, *own):
        reads.append((pfn, count))
        return real(name, pfn, count, *own)
    monkeypatch.setattr(kpage, "read_lanes", watching)
    rng = random.Random(7)
    for _ in range(200):
        runs = [(rng.randrange(0, 620), rng.randrange(1, 70)) for _ in range(rng.randrange(1, 30))]
        del reads[:]
        [(values, known)] = kpage.gather(runs, "kpageflags")
        want = [(1000 + p if p < 600 else 0, p < 600)
                for pfn, n in runs for p in range(pfn, pfn + n)]
        assert list(struct.unpack("<%dQ" % len(want), values)) == [v for v, _ in want]
        assert known is None if all(k for _, k in want) else list(bytearray(known)) == [
            int(k) for _, k in want]
        assert len(reads) <= len(runs)
    kpage.close()
    assert pagemap.KPageReader(fake.root).gather([], "kpageflags") == [(b"", None)]


def test_match_shared_reads_kpageflags_only_for_the_runs_holding_a_shared_page(
        fake, run, monkeypatch):
    # kpageflags is read only for the runs holding a page of map count above 1
    # (page 3, and the zero page 4 beside 5); a PFN past the file's end is
    # unknown and never passes (page 5, mapped twice).
    match_tree(fake)
    fake.kpage("kpagecount", {0x505: 2})
    with open(os.path.join(fake.root, "kpageflags"), "r+b") as f:
        f.truncate(0x505 * 8)
    reads = []
    real = pagemap.KPageReader._gather
    monkeypatch.setattr(pagemap.KPageReader, "_gather",
                        lambda self, name, runs: reads.append((name, runs))
                        or real(self, name, runs))
    assert match_runs(run, fake, "shared") == ([3], [1])
    assert [runs for name, runs in reads if name == "kpageflags"] == [[(0x503, 1), (0x504, 2)]]


def test_match_shared_when_kpagecount_fails_to_read(fake, run, monkeypatch):
    # kpagecount opened but failing to read (EIO): no page passes, and --flags
    # names the file and the error.
    match_tree(fake)
    kpagecount_reads_fail(monkeypatch)
    for extra in (["--flags"], ["%x+8000" % ANON]):
        code, out, err = run(argv(fake, "--json", "--match", "shared", PID, *extra))
        assert code == 0
        doc = json.loads(out)
        assert sum(m["resident"] for m in doc.get("mappings", [])) == 0
        assert [r["runs"] for r in doc.get("ranges", [])] in ([], [[]])
    assert "kpagecount: Input/output error" in run(argv(fake, "--match", "shared", "--flags",
                                                        PID))[2]


def test_gather_leaves_the_observer_out_of_each_run(fake, monkeypatch):
    # pagemap's own pages, in whichever runs they fall, in any order, leave their
    # map counts once each (never below 0); read_lanes of one span agrees.
    import struct
    fake.kpage("kpagecount", {pfn: 3 for pfn in range(64)}, pfns=64)
    kpage = pagemap.KPageReader(fake.root)
    kpage.observer = (4096, "=Q")
    monkeypatch.setattr(pagemap, "own_page_counts", lambda *_: {5: 1, 6: 2, 20: 1, 40: 5})
    runs = [(38, 4), (0, 8), (19, 3), (10, 2)]
    [(values, known)] = kpage.gather(runs, "kpagecount")
    want = {5: 2, 6: 1, 20: 2, 40: 0}
    assert struct.unpack("<%dQ" % (len(values) // 8), values) == tuple(
        want.get(p, 3) for pfn, n in runs for p in range(pfn, pfn + n))
    assert known is None
    assert struct.unpack("<64Q", kpage.read_lanes("kpagecount", 0, 64)) == tuple(
        want.get(p, 3) for p in range(64))
    kpage.close()


def test_gather_reads_its_own_pages_only_for_map_counts_above_1(fake, monkeypatch):
    # A page the target maps once is not pagemap's too: its own pagemap is read
    # only once a count above 1 (here 256: in its second byte) is seen.
    import struct
    fake.kpage("kpagecount", {pfn: pfn % 2 for pfn in range(64)}, pfns=64)
    kpage = pagemap.KPageReader(fake.root)
    kpage.observer = (4096, "=Q")
    asked = []
    monkeypatch.setattr(pagemap, "own_page_counts", lambda *_: asked.append(1) or {5: 1})
    [(values, _)] = kpage.gather([(0, 64)], "kpagecount")
    assert values == struct.pack("<64Q", *[pfn % 2 for pfn in range(64)]) and not asked
    fake.kpage("kpagecount", {6: 256})
    [(values, _)] = kpage.gather([(0, 64)], "kpagecount")
    assert asked and struct.unpack_from("<2Q", values, 5 * 8) == (0, 256)
    kpage.close()


def test_gather_finds_the_observer_in_runs_of_any_length(fake, monkeypatch):
    # Runs short and long, next to its pages or holding them, at block edges.
    import random
    import struct
    rng = random.Random(5)
    fake.kpage("kpagecount", {pfn: 4 for pfn in range(2048)}, pfns=2048)
    own = dict((rng.randrange(2048), rng.randrange(1, 3)) for _ in range(8))
    monkeypatch.setattr(pagemap, "own_page_counts", lambda *_: own)
    kpage = pagemap.KPageReader(fake.root)
    kpage.observer = (4096, "=Q")
    runs = [(rng.randrange(2048 - n), n) for n in (
        rng.choice([1, 2, 7, 8, 9, 30, 63, 64, 65, 100, 127, 130]) for _ in range(400))]
    [(values, _)] = kpage.gather(runs, "kpagecount")
    assert struct.unpack("<%dQ" % (len(values) // 8), values) == tuple(
        4 - own.get(p, 0) for pfn, n in runs for p in range(pfn, pfn + n))
    kpage.close()


def test_iomem_lookups_between_region_edges(machine):
    # One search per stretch between region edges: answers stay those of a full search.
    facts = pagemap.SystemFacts(machine.root)
    regions = pagemap.parse_iomem(IOMEM)
    edges = [r.start for r in regions] + [r.end + 1 for r in regions]
    for paddr in sorted(set(e + d for e in edges for d in (-1, 0, 1) if e + d >= 0),
                        key=lambda a: (a * 7919) % 1000003):
        assert facts.place_of(paddr)[1] == pagemap.iomem_region(regions, paddr), hex(paddr)
        # Kept per memory block only where no edge splits the block.
        fresh = pagemap.SystemFacts(machine.root)
        assert facts.place_of(paddr) == fresh.place_of(paddr), hex(paddr)
    assert facts.place_of(0x1100000)[1] == "System RAM > Kernel code"


def test_cgroup_removed_while_the_tree_is_walked(machine, monkeypatch):
    # A cgroup gone between listing and stat (services come and go): the rest are found.
    slice_dir = os.path.dirname(machine.cgroup_path)
    slice_inode = os.stat(slice_dir).st_ino
    real = os.stat

    def racing(path, *args, **kwargs):
        if path == slice_dir:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")
        return real(path, *args, **kwargs)
    monkeypatch.setattr(os, "stat", racing)
    facts = pagemap.SystemFacts(machine.root)
    assert facts.cgroup_path(machine.cgroup_inode) == machine.cgroup_path
    assert facts.cgroup_path(slice_inode) is None


def test_place_and_page_text_caches_stay_bounded(machine):
    # A big server's RAM has more blocks than the caches keep: full, they start over.
    facts = pagemap.SystemFacts(machine.root)
    facts.place_of(0)
    facts._places.update(((i, None), (None, None)) for i in range(1 << 16))
    assert facts.place_of(0x1100000) == (0, "System RAM > Kernel code")     # node0, block 0
    assert len(facts._places) == 1
    formatter = pagemap.RunFormatter(None, PAGE, None, None)
    infos = [pagemap.PageInfo(i, 1, None, None, None, None, None) for i in range(4097)]
    formatter._page_texts(infos)
    info = pagemap.PageInfo(0x800, 2, None, None, None, None, None)
    assert formatter._page_texts([info]) == ["  page: flags MMAP (0x800); map count 2"]
    assert len(formatter._pages) == 1


def test_match_summary_of_a_thp_exclusive_in_part(fake, run, monkeypatch):
    # A PMD-mapped THP (PAGEMAP_SCAN says so) whose second half another process
    # also maps: since 6.10 only the first half is marked exclusive.
    entries = dict((ANON + i * PAGE, make_entry(present=True, pfn=0x200000 + i, exclusive=i < 256))
                   for i in range(512))
    fake.process(PID, entries, maps="%x-%x rw-p 00000000 00:00 0 \n" % (ANON, ANON + 512 * PAGE))
    fake.kpage("kpageflags", dict((0x200000 + i, ANON_FLAGS | BIT["THP"]) for i in range(512)),
               pfns=0x200400)
    fake.kpage("kpagecount", dict((0x200000 + i, 1 + (i >= 256)) for i in range(512)),
               pfns=0x200400)
    monkeypatch.setattr(pagemap.Walker, "_huge_blocks", lambda self, buf, vpn, *_: {0})
    for spec, pages in (("thp,exclusive", 256), ("thp,~exclusive", 256), ("thp", 512)):
        code, out, err = run(argv(fake, "--json", "--match", spec, PID))
        assert code == 0 and json.loads(out)["total"]["resident"] == pages * PAGE, (spec, err)


def test_physical_of_a_process_counts_no_pte_marker_as_swapped(fake, run):
    # A guard region and a uffd-wp marker (swap type 31) set the swap bit, but are
    # no swapped pages (decode_entry): only the one real swap entry is not counted.
    fake.process(PID, {ANON: make_entry(present=True, pfn=0x1000),
                       ANON + PAGE: make_entry(guard=True, swap_type=31),
                       ANON + 2 * PAGE: make_entry(swapped=True, swap_type=31, uffd_wp=True),
                       ANON + 3 * PAGE: make_entry(swapped=True, swap_type=0, swap_offset=9)})
    fake.kpage("kpageflags", {0x1000: ANON_FLAGS}, pfns=0x2000)
    code, out, err = run(argv(fake, "--json", PID, "--physical"))
    doc = json.loads(out)
    assert code == 0 and (doc["pages"], doc["swapped"]) == (1, 1), err


def test_huge_zero_page_no_huge_page_with_match_either(machine, run):
    # Before 6.16 PAGEMAP_SCAN (here a snapshot's record of it) calls the huge zero
    # page HUGE: kpageflags tell, with --match as without (Walker.huge_spans).
    head, va = 0x40000, 0x7E0000000000
    flags = {head: BIT["COMPOUND_HEAD"] | BIT["THP"] | BIT["ZERO_PAGE"]}
    flags.update({head + i: BIT["COMPOUND_TAIL"] | BIT["THP"] | BIT["ZERO_PAGE"]
                  for i in range(1, 512)})
    machine.kpage("kpageflags", flags)
    machine.kernel("6.8.0")
    machine.process(PID, {va + i * PAGE: make_entry(present=True, pfn=head + i)
                          for i in range(512)},
                    maps="%x-%x rw-p 00000000 00:00 0\n" % (va, va + (2 << 20)))
    with open(os.path.join(machine.root, PID, "pagemap-huge"), "wb") as f:
        f.write(struct.pack("<QQ", va // PAGE, 512))
    for match in ([], ["--match", "present"]):
        code, out, err = run(argv(machine, "--json", PID, *match))
        row = json.loads(out)["mappings"][0]
        assert (code, row["resident"], row["huge"]) == (0, 2 << 20, 0), (match, err)
