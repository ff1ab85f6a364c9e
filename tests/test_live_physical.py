"""Live: what the physical page is, on this machine (root for kpage* files)."""

import ctypes
import json
import mmap
import os
import struct

import pytest
from conftest import forked_child
from test_live import IS_ROOT, PAGE, hugetlb_page, private_anon  # noqa: F401
from test_live_ranges import thp_region

import pagemap

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not IS_ROOT or not os.path.exists("/proc/kpageflags"),
                       reason="needs root and /proc/kpageflags"),
]


def page_of(capsys, addr):
    assert pagemap.main(["self", "--flags", "--json", hex(addr)]) in (0, 1)
    return json.loads(capsys.readouterr().out)["results"][0]


def test_anon_page_written_once_then_forked(capsys):
    m, addr = private_anon(1)
    m[0:1] = b"a"
    before = page_of(capsys, addr)
    assert "ANON" in before["page"]["flags"] and before["page"]["mapcount"] == 1
    assert before["exclusive"] is True
    with forked_child():
        after = page_of(capsys, addr)
        assert after["pfn"] == before["pfn"]
        assert after["page"]["mapcount"] == 2 and after["exclusive"] is False
    m.close()


def test_read_fault_maps_the_zero_page(capsys):
    m = mmap.mmap(-1, 4 * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    assert m[PAGE] == 0                     # a read fault on untouched memory
    result = page_of(capsys, addr + PAGE)
    assert result["present"] and not result["exclusive"]
    assert "ZERO_PAGE" in result["page"]["flags"]
    assert pagemap.main(["self", hex(addr + PAGE)]) == 0    # without --flags it says so too
    assert "note: the shared zero page" in capsys.readouterr().out


def test_thp_flags_and_huge_page(capsys):
    m, aligned, size = thp_region()
    result = page_of(capsys, aligned + 3 * PAGE + 7)
    flags = result["page"]["flags"]
    if "THP" not in flags:
        pytest.skip("the kernel gave no THP here")
    assert "COMPOUND_TAIL" in flags
    huge = result["page"]["huge"]
    assert huge["kind"] == "THP" and huge["size"] == 2 << 20
    assert huge["virt_base"] == aligned and huge["offset"] == 3 * PAGE + 7
    assert huge["head_pfn"] == result["pfn"] - 3 and huge["phys_base"] % (2 << 20) == 0
    head = page_of(capsys, aligned)
    assert "COMPOUND_HEAD" in head["page"]["flags"] and head["pfn"] == huge["head_pfn"]
    m.close()


def test_hugetlb_page_is_huge(hugetlb_page, capsys):  # noqa: F811
    m, addr, size = hugetlb_page
    result = page_of(capsys, addr + PAGE + 1)
    assert "HUGE" in result["page"]["flags"]
    huge = result["page"]["huge"]
    assert huge["kind"] == "hugetlb" and huge["size"] == size
    assert huge["virt_base"] == addr and huge["offset"] == PAGE + 1


def phys_matches(capsys, paddr, *pids):
    code = pagemap.main(["--json", "--phys", hex(paddr)] + [str(p) for p in pids])
    return code, json.loads(capsys.readouterr().out)["matches"]


def test_phys_finds_own_page_then_parent_and_child(capsys):
    m, addr = private_anon(1)
    m[0:1] = b"p"
    paddr = pagemap.translate("self", addr + 0x40).paddr
    code, found = phys_matches(capsys, paddr, os.getpid())
    assert code == 0
    assert [(f["pid"], f["vaddr"]) for f in found] == [(os.getpid(), addr + 0x40)]
    # Scanning every process, pagemap leaves itself out (the observer effect).
    assert phys_matches(capsys, paddr) == (1, [])
    with forked_child() as child:
        code, found = phys_matches(capsys, paddr)
        assert [(f["pid"], f["vaddr"]) for f in found] == [(child, addr + 0x40)]
    m.close()


def test_physical_covers_every_pfn(capsys):
    assert pagemap.main(["--json", "--physical"]) == 0
    doc = json.loads(capsys.readouterr().out)
    fd = os.open("/proc/kpageflags", os.O_RDONLY)
    try:
        last = os.fstat(fd).st_size // 8 or doc["pfn_end"]
    finally:
        os.close(fd)
    assert doc["pfn_start"] == 0 and doc["pages"] == doc["pfn_end"] >= last
    assert any("ANON" in c["flags"] for c in doc["combinations"])
    assert sum(c["pages"] for c in doc["combinations"]) == doc["pages"]


def flags_row(capsys, start):
    assert pagemap.main(["self", "--json", "--flags"]) == 0
    return [m for m in json.loads(capsys.readouterr().out)["mappings"] if m["start"] == start][0]


def test_pss_and_uss_match_smaps(capsys):
    from test_live_ranges import isolate, region_start, smaps_kib
    m, addr = private_anon(32)
    for i in range(32):
        m[i * PAGE:i * PAGE + 1] = b"u"
    isolate(addr, 32 * PAGE)
    start = region_start(addr)
    row = flags_row(capsys, start)
    assert row["pss"] == smaps_kib(start, "Pss") and row["uss"] == 32 * PAGE
    with forked_child():
        row = flags_row(capsys, start)
        assert row["pss"] == smaps_kib(start, "Pss") == 16 * PAGE
        assert row["uss"] == 0 and row["shared"] == 32 * PAGE
    m.close()


def test_thp_region_with_flags_and_match(capsys):
    from test_live_ranges import region_start, smaps_kib
    m, aligned, size = thp_region()
    start = region_start(aligned)
    if not smaps_kib(start, "AnonHugePages"):
        pytest.skip("the kernel gave no THP here")
    row = flags_row(capsys, start)
    assert row["thp"] == smaps_kib(start, "AnonHugePages") == row["huge"]
    # 32-bit kernels show Pss 0 for a PMD-mapped THP: smaps_account() shifts the 2 MiB
    # size by PSS_SHIFT in an unsigned long (seen on 6.12). Ours alone: Pss is Rss.
    pss = smaps_kib(start, "Pss" if struct.calcsize("P") == 8 else "Rss")
    assert row["pss"] == pss
    assert pagemap.main(["self", "--json", "--match", "thp,head", "%x+%x" % (aligned, size)]) == 0
    runs = json.loads(capsys.readouterr().out)["ranges"][0]["runs"]
    assert [r["start"] for r in runs] == list(range(aligned, aligned + size, 2 << 20))
    assert all(r["pages"] == 1 for r in runs)
    m.close()


def test_lookup_reads_a_pages_flags_once(capsys, monkeypatch):
    # The flags shown are those the huge page was found from: one read, not two
    # that a page freed in between could make disagree.
    m, addr = private_anon(1)
    m[0:1] = b"a"
    reads = []
    value = pagemap.KPageReader.value
    monkeypatch.setattr(pagemap.KPageReader, "value",
                        lambda self, name, pfn: reads.append(name) or value(self, name, pfn))
    assert page_of(capsys, addr)["page"]["kpageflags"] is not None
    assert reads.count("kpageflags") == 1
    m.close()


def test_physical_of_this_process_counts_a_touched_mapping(capsys):
    # Flags may change between reads (LRU once the per-CPU batch drains, ACTIVE,
    # IDLE): the counts asserted are of ANON (bit 12) pages, which stay so.
    n = 16
    m, addr = private_anon(n)
    m[:] = b"x" * (n * PAGE)

    def anon_pages(*args):
        assert pagemap.main(["self", "--physical", "--json"] + list(args)) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["pid"] == os.getpid()
        return doc, sum(c["pages"] for c in doc["combinations"] if c["kpageflags"] & 1 << 12)

    doc, mine = anon_pages("%x+%x" % (addr, n * PAGE))
    assert doc["pages"] == mine == n and doc["swapped"] == 0
    doc, everything = anon_pages()
    assert everything >= n and doc["pages"] > everything
    m.close()
