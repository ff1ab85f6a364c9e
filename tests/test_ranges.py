"""Ranges, selectors, runs, --each, whole-process summaries and pictures,
against fake /proc trees (and the whole-buffer core against naive loops)."""

import errno
import json
import os
import random
import shutil
import struct
import sys

import pytest
from conftest import SMAPS_TEMPLATE, FakeProc, assert_one_error, fail_reads, make_entry

import pagemap

PID = "4242"
ANON = 0x7F0000000000          # rw-p anonymous, 16 pages, in DEFAULT_MAPS
PAGE = 4096


def argv(fake, *args):
    return ["--proc-root", fake.root, "--page-size", str(fake.page_size)] + list(args)


def run_lines(out):
    """Run records of text output: lists of columns, headers and titles left out."""
    return [line.split() for line in out.splitlines()
            if line.startswith("0x") or line.startswith("-")]


def present(pfn, **kw):
    return make_entry(present=True, pfn=pfn, exclusive=True, **kw)


# --- naive references, one Python step per entry ---------------------------------

def runs_of(result):
    starts, lengths = result
    return list(starts), list(lengths)


def naive_runs(values):
    runs, start = [], 0
    for i in range(1, len(values) + 1):
        if i == len(values) or not pagemap.continues_run(values[i - 1], values[i]):
            runs.append((start, i - start))
            start = i
    return runs


def naive_counts(values):
    c = [0] * 6
    for v in values:
        p, s = v >> 63 & 1, (v >> 62 & 1) and not v >> 58 & 1
        c[0] += 1
        c[1] += p
        c[2] += s and v & 0x1F != 31    # swap type 31: a PTE marker, in no swap area
        c[3] += p and v >> 61 & 1
        c[4] += p and v >> 56 & 1
        c[5] += (p or s) and v >> 55 & 1
    return tuple(c)


def random_entries(rng, n):
    out, pfn = [], rng.randrange(1 << 30)
    for _ in range(n):
        r = rng.random()
        if r < 0.35:
            pfn += 1 if rng.random() < 0.8 else rng.randrange(2, 1 << 20)
            out.append(present(pfn, soft_dirty=rng.random() < 0.2, file_shared=rng.random() < .1))
        elif r < 0.45:
            out.append(make_entry(swapped=True, swap_type=rng.randrange(3),
                                  swap_offset=rng.randrange(1 << 30),
                                  soft_dirty=rng.random() < 0.5))
        elif r < 0.48:
            out.append(make_entry(guard=True, swap_type=31, swap_offset=4))
        elif r < 0.55:
            out.append(1 << 55)
        else:
            out.append(0)
    return out


@pytest.mark.parametrize("seed", range(12))
def test_core_matches_naive_loops(seed):
    rng = random.Random(seed)
    values = random_entries(rng, rng.choice([1, 2, 31, 64, 100, 1000, 4096]))
    buf = struct.pack("<%dQ" % len(values), *values)
    assert list(zip(*pagemap.find_runs(buf))) == naive_runs(values)
    assert tuple(pagemap.count_entries(buf))[:6] == naive_counts(values)


@pytest.mark.parametrize("seed", range(6))
def test_core_matches_naive_loops_present_and_absent_only(seed):
    # No swap entries, no soft-dirty bits: the run pass that skips normalising.
    rng = random.Random(100 + seed)
    values = [v & ~(1 << 55) if v >> 63 else 0 for v in random_entries(rng, 2048)]
    buf = struct.pack("<%dQ" % len(values), *values)
    assert list(zip(*pagemap.find_runs(buf))) == naive_runs(values)


def test_runs_of_contiguous_blocks_and_sparse_buffers():
    # Two 512-page physical blocks, not adjacent to each other: the block path.
    blocks = [present(0x10000 + i) for i in range(512)] + [present(0x30000 + i)
                                                           for i in range(512)]
    buf = struct.pack("<1024Q", *blocks)
    assert runs_of(pagemap.find_runs(buf, 512)) == ([0, 512], [512, 512])
    assert runs_of(pagemap.find_runs(buf, 512)) == runs_of(pagemap.find_runs(buf, 0))
    # Two blocks that continue each other physically are one run.
    adjacent = struct.pack("<1024Q", *[present(0x10000 + i) for i in range(1024)])
    assert runs_of(pagemap.find_runs(adjacent, 512)) == ([0], [1024])
    # Blocks PAGEMAP_SCAN called huge need no proof, but only where every lane is
    # populated: a block that lost pages since (a race) goes through the big-int pass.
    partial = blocks[:512] + [present(0x10200 + i) for i in range(256)] + [0] * 256
    buf = struct.pack("<1024Q", *partial)
    assert runs_of(pagemap.find_runs(buf, 512, {0, 512})) == ([0, 768], [768, 256])
    # A huge block's pages may differ in bit 56 (exclusive): since 6.10 it is set
    # page by page of a PMD-mapped THP that another process maps in part. Two runs.
    half = [make_entry(present=True, pfn=0x10000 + i, exclusive=i < 256) for i in range(512)]
    buf = struct.pack("<512Q", *half)
    assert runs_of(pagemap.find_runs(buf, 512, {0})) == ([0, 256], [256, 256])
    # A block that carries over 16 bits falls back to the big-int pass.
    carry = struct.pack("<512Q", *[present(0xFFF00 + i) for i in range(512)])
    assert runs_of(pagemap.find_runs(carry, 512)) == ([0], [512])
    # One present page in 4096: the sparse path.
    sparse = [0] * 4096
    sparse[100] = present(5)
    sparse[101] = present(6)
    buf = struct.pack("<4096Q", *sparse)
    assert list(zip(*pagemap.find_runs(buf))) == [(0, 100), (100, 2), (102, 3994)]
    # The last lanes present: the sparse pass ends on its run, not on a gap.
    sparse[4094:] = [present(9), present(10)]
    buf = struct.pack("<4096Q", *sparse)
    assert list(zip(*pagemap.find_runs(buf))) == [(0, 100), (100, 2), (102, 3992), (4094, 2)]
    assert pagemap.find_runs(b"") == ([], [])


def test_counts_of_many_kinds_of_entry():
    # Many distinct top bytes (a hostile snapshot's): each tallied apart.
    values = [v | 1 << 63 | 1 << 55 for v in range(12)] + [1 << 62 | (k << 56) for k in range(12)]
    values += [k << 56 | 1 << 55 for k in range(128)]
    buf = struct.pack("<%dQ" % len(values), *values)
    assert tuple(pagemap.count_entries(buf))[:6] == naive_counts(values)


def test_soft_dirty_counts_where_every_page_or_some_are_populated():
    # Bit 55 counts on present or swapped pages only; a fresh (VM_SOFTDIRTY)
    # mapping sets it in holes too. Bit 55 in every lane, every lane populated,
    # and neither are counted apart.
    rng = random.Random(7)
    every = [present(i, soft_dirty=rng.random() < 0.5) for i in range(1000)] + [
        make_entry(swapped=True, swap_offset=3, soft_dirty=True)] * 5
    holes = [1 << 55 if i % 3 else present(i, soft_dirty=True) for i in range(1000)] + [
        make_entry(swapped=True, swap_offset=3, soft_dirty=True)] * 5
    some = [1 << 55 if i % 3 else present(i, soft_dirty=i % 2) for i in range(1000)]
    for values in (every, holes, some):
        buf = struct.pack("<%dQ" % len(values), *values)
        assert tuple(pagemap.count_entries(buf))[:6] == naive_counts(values)


def test_pte_markers_are_not_swapped_pages():
    # uffd-wp and poison markers: swap bit, type 31 (5.19+); real swap entries
    # of types 0 and 30 around them.
    marker = make_entry(swapped=True, swap_type=31, uffd_wp=True)
    values = [marker, make_entry(swapped=True, swap_type=30, swap_offset=31), marker,
              make_entry(swapped=True, swap_offset=7, uffd_wp=True), present(5)] * 100
    buf = struct.pack("<%dQ" % len(values), *values)
    assert pagemap.count_entries(buf)[:3] == (500, 100, 200)
    assert tuple(pagemap.count_entries(buf))[:6] == naive_counts(values)


def test_top_histogram():
    assert pagemap.top_histogram(b"\x00\x81\x81\x00\xa0") == {0: 2, 0x81: 2, 0xA0: 1}
    assert pagemap.top_histogram(bytes(range(256)) * 2) == dict.fromkeys(range(256), 2)
    assert pagemap.top_histogram(b"") == {}
    # Interleaved values (sparse memory) are deleted by translate, rare ones by replace.
    assert pagemap.top_histogram(b"\x00\x81" * 500 + b"\xa0") == {0: 500, 0x81: 500, 0xA0: 1}


def test_split_by_mappings():
    maps = pagemap.parse_maps("1000-3000 r--p 0 00:00 0\n5000-6000 r--p 0 00:00 0\n")
    pieces = pagemap.split_by_mappings(maps, 0x2000, 0x7000)
    assert [(s, e, m and m.start) for s, e, m in pieces] == [
        (0x2000, 0x3000, 0x1000), (0x3000, 0x5000, None), (0x5000, 0x6000, 0x5000),
        (0x6000, 0x7000, None)]


@pytest.mark.parametrize("text,span", [
    ("7f00-8000", (0x7F00, 0x8000)), ("0x1000+4k", (0x1000, 0x2000)),
    ("1000+0x2000", (0x1000, 0x3000)), ("1000+2000", (0x1000, 0x3000)),
    ("0x0+2M", (0, 2 << 20)), ("10+1G", (0x10, 0x10 + (1 << 30))), ("5-5", (5, 5)),
])
def test_parse_range(text, span):
    assert pagemap.parse_range(text)[:2] == span


def test_selector_names():
    m = pagemap.parse_maps_line("1000-2000 r-xp 0 08:02 7 /usr/lib/libc.so.6 (deleted)")
    assert set(pagemap.mapping_names(m)) >= {"/usr/lib/libc.so.6", "libc.so.6",
                                             "/usr/lib/libc.so.6 (deleted)"}
    assert pagemap.is_selector("[heap]") and pagemap.is_selector("libc.so.6")
    assert not pagemap.is_selector("cafe") and not pagemap.is_selector("1000+4k")


# --- ranges on fake trees ------------------------------------------------------------

def test_range_prints_runs(fake, run):
    entries = {ANON + i * PAGE: present(0x500 + i) for i in range(4)}
    entries[ANON + 4 * PAGE] = present(0x900)
    entries[ANON + 6 * PAGE] = make_entry(swapped=True, swap_type=0, swap_offset=0x10)
    entries[ANON + 7 * PAGE] = make_entry(swapped=True, swap_type=0, swap_offset=0x99)
    fake.process(PID, entries)
    code, out, err = run(argv(fake, PID, "%x-%x" % (ANON, ANON + 10 * PAGE)))
    assert code == 0 and err == ""
    lines = run_lines(out)
    assert [(line[0], line[2], line[3]) for line in lines] == [
        ("0x7f0000000000-0x7f0000004000", "4", "present"),
        ("0x7f0000004000-0x7f0000005000", "1", "present"),
        ("0x7f0000005000-0x7f0000006000", "1", "not-present"),
        ("0x7f0000006000-0x7f0000008000", "2", "swapped"),
        ("0x7f0000008000-0x7f000000a000", "2", "not-present"),
    ]
    assert lines[0][1] == "0x500000-0x504000"
    assert lines[3][1] == "swap:0:0x10"


def test_runs_merge_across_chunk_edges(fake, run, monkeypatch):
    monkeypatch.setattr(pagemap, "RUN_CHUNK", 4)
    fake.process(PID, {ANON + i * PAGE: present(0x700 + i) for i in range(11)})
    code, out, _ = run(argv(fake, "--json", PID, "%x+0x10000" % ANON))
    runs = json.loads(out)["ranges"][0]["runs"]
    assert [(r["pages"], r["status"], r["pfn"]) for r in runs] == [
        (11, "present", 0x700), (5, "not-present", None)]


def test_counts_across_chunk_edges(fake, run, monkeypatch):
    monkeypatch.setattr(pagemap, "COUNT_CHUNK", 4)
    fake.process(PID, {ANON + i * PAGE: present(0x700 + i) for i in range(11)})
    _, out, _ = run(argv(fake, "--json", PID))
    rows = {m["start"]: m for m in json.loads(out)["mappings"]}
    assert rows[ANON]["resident"] == 11 * PAGE and rows[ANON]["exclusive"] == 11 * PAGE


def test_range_mid_mapping_and_across_a_hole(fake, run):
    fake.process(PID, {ANON + 0xF000: present(0x42)})
    code, out, _ = run(argv(fake, "--json", PID, "7f000000f800-7f0000020800"))
    runs = json.loads(out)["ranges"][0]["runs"]
    assert [(r["start"], r["end"], r["status"]) for r in runs] == [
        (ANON + 0xF000, ANON + 0x10000, "present"),
        (ANON + 0x10000, ANON + 0x20000, "unmapped"),
        (ANON + 0x20000, ANON + 0x21000, "not-present"),
    ]
    assert runs[0]["mapping"]["start"] == ANON and runs[1]["mapping"] is None
    assert runs[2]["mapping"]["path"] == "/dev/zero (deleted)"


def test_each_lists_pages(fake, run):
    fake.process(PID, {ANON: present(0x42), ANON + PAGE: present(0x43)})
    code, out, _ = run(argv(fake, "--each", PID, "%x+3000" % ANON))
    recs = [line.split() for line in out.splitlines() if line.startswith("0x")]
    assert [(r[0], r[1], r[3]) for r in recs] == [
        ("0x7f0000000000", "0x42000", "present"), ("0x7f0000001000", "0x43000", "present"),
        ("0x7f0000002000", "-", "not-present")]


def test_each_json_swapped_pages_keep_their_slots(fake, run):
    fake.swaps("/swapfile")
    fake.process(PID, {ANON: make_entry(swapped=True, swap_offset=7),
                       ANON + PAGE: make_entry(swapped=True, swap_offset=9)})
    _, out, _ = run(argv(fake, "--json", "--each", PID, "%x+2000" % ANON))
    pages = json.loads(out)["ranges"][0]["pages"]
    assert [(p["swap_offset"], p["swap_area"]) for p in pages] == [(7, "/swapfile"),
                                                                   (9, "/swapfile")]


def test_each_json_swap_area_follows_each_offset(fake, run):
    # Type 1 in /small (16 pages) or /big: offset 0x11 rules /small out, 0x10 does not.
    fake.write("swaps", "Filename Type Size Used Priority\n/small file 64 0 -2\n"
                        "/big file 65532 0 -3\n")
    fake.process(PID, dict((ANON + i * PAGE, make_entry(swapped=True, swap_type=1,
                                                         swap_offset=off))
                           for i, off in enumerate((0x10, 0x11, 0x10))))
    _, out, _ = run(argv(fake, "--json", "--each", PID, "%x+3000" % ANON))
    pages = json.loads(out)["ranges"][0]["pages"]
    assert [p["swap_area"] for p in pages] == [None, "/big", None]
    assert [t.swap_area and t.swap_area.path for t in pagemap.translate_many(
        PID, [ANON, ANON + PAGE], proc_root=fake.root, page_size=PAGE)] == [None, "/big"]


def test_selectors(fake, run):
    fake.process(PID, {0x600000: present(1), 0x400000: present(2, file_shared=True)})
    code, out, _ = run(argv(fake, "--json", PID, "[heap]", "cat", "/dev/sprd jpg"))
    ranges = json.loads(out)["ranges"]
    assert [(r["label"], r["start"], r["end"]) for r in ranges] == [
        ("[heap]", 0x600000, 0x603000), ("/usr/bin/cat", 0x400000, 0x401000),
        ("/dev/sprd jpg", 0x7F0000030000, 0x7F0000032000)]
    assert ranges[0]["runs"][0]["pfn"] == 1 and ranges[1]["runs"][0]["flags"] == [
        "exclusive", "file"]


def test_selector_matching_every_mapping_of_a_file(fake, run):
    maps = ("00400000-00401000 r-xp 00000000 08:02 7 /usr/lib/libc.so.6\n"
            "00401000-00402000 r--p 00001000 08:02 7 /usr/lib/libc.so.6\n"
            "00500000-00501000 rw-p 00000000 00:00 0 [heap]\n")
    fake.process(PID, {}, maps=maps)
    _, out, _ = run(argv(fake, "--json", PID, "libc.so.6"))
    assert [r["start"] for r in json.loads(out)["ranges"]] == [0x400000, 0x401000]


def test_selector_matching_nothing(fake, run):
    fake.process(PID, {})
    code, out, err = run(argv(fake, PID, "libnothere.so"))
    assert code == 1 and "Traceback" not in err
    assert "'libnothere.so' matches no mapping of PID 4242" in err
    assert len(err.splitlines()) == 1


def test_overlapping_ranges_are_each_reported(fake, run):
    fake.process(PID, {ANON + PAGE: present(9)})
    _, out, _ = run(argv(fake, "--json", PID, "%x+2000" % ANON, "%x+2000" % (ANON + PAGE)))
    a, b = json.loads(out)["ranges"]
    assert [r["pages"] for r in a["runs"]] == [1, 1] and a["runs"][1]["pfn"] == 9
    assert b["runs"][0]["pfn"] == 9


def test_zero_byte_range(fake, run):
    fake.process(PID, {})
    code, out, err = run(argv(fake, PID, "%x-%x" % (ANON, ANON)))
    assert code == 1 and "is empty" in err and "Traceback" not in err
    code, out, err = run(argv(fake, "--json", "--each", PID, "%x-%x" % (ANON, ANON)))
    assert code == 1 and json.loads(out)["ranges"][0]["pages"] == [] and "is empty" in err


def test_range_into_the_end_of_the_address_space(fake, run):
    fake.process(PID, {})
    code, out, _ = run(argv(fake, "--json", PID, "7ffffffe0000-800000010000"))
    runs = json.loads(out)["ranges"][0]["runs"]
    assert runs[-1]["status"] == "beyond-address-space"
    assert runs[-1]["start"] == 0x7FFFFFFFF000 and runs[-1]["end"] == 0x800000010000


def test_hidden_pfn_runs(fake, run):
    # PFNs read 0: pages in one state make one run, not one run per page.
    fake.reader(privileged=False)
    fake.process(PID, {ANON + i * PAGE: present(0) for i in range(12)})
    code, out, err = run(argv(fake, PID, "%x+10000" % ANON))
    lines = run_lines(out)
    assert [(line[2], line[3]) for line in lines] == [("12", "pfn-hidden"), ("4", "not-present")]
    assert "physical addresses hidden" in err


@pytest.mark.parametrize("n", [40, 4096])
def test_hidden_pfn_buffers(n):
    # Both the sparse path (few pages) and the big-int pass (many pages).
    values = [present(0)] * 3 + [0] * (n - 6) + [present(0), present(0, soft_dirty=True), 0]
    buf = struct.pack("<%dQ" % n, *values)
    assert list(zip(*pagemap.find_runs(buf))) == naive_runs(values) == [
        (0, 3), (3, n - 6), (n - 3, 1), (n - 2, 1), (n - 1, 1)]
    dense = [present(0)] * n
    assert runs_of(pagemap.find_runs(struct.pack("<%dQ" % n, *dense), 512)) == ([0], [n])


@pytest.mark.parametrize("page_size", [4096, 16384, 65536])
def test_text_runs_column_by_column_as_line_by_line(page_size, monkeypatch):
    # A batch whose columns keep one width is written a digit position at a time;
    # it must read as the % a line does, here across PFN widths (0xfff... to
    # 0x1000...), PAGES of 1 to 5 digits and a name that is not ASCII.
    rng = random.Random(page_size)
    m = pagemap.parse_maps_line("7f0000000000-7f1000000000 rw-p 0 08:02 7 /tmp/d\u00e9j\u00e0 vu")
    vpn, runs = m.start // page_size, []
    for _ in range(600):
        n = rng.choice([1, 1, 2, 7, 512, 12345])
        runs.append((vpn, n, present(rng.choice([0xFFF00, 0x100000, 0xFFFFFF0, 1 << 40]) +
                                     rng.randrange(1 << 12), soft_dirty=True)))
        vpn += n

    def text(some):
        return "\n".join(pagemap.RunFormatter(m, page_size, None, None).lines(some))
    uniform = [run for run in runs if (run[2] & pagemap.PM_PFRAME_MASK) >> 20 == 1]
    assert len(pagemap.RunFormatter(m, page_size, None, None).lines(uniform)) == 1
    batches = [uniform[:33], uniform[7:], runs]
    fast = [text(batch) for batch in batches]
    monkeypatch.setattr(pagemap.RunFormatter, "_block", lambda *args: None)
    assert fast == [text(batch) for batch in batches]


def test_sparse_runs_try_no_block(monkeypatch):
    # Sparse memory alternates present and absent runs: no batch of it can be one
    # block, and trying (the batch unpacked, its least and greatest entries found)
    # made a sparse listing ~4% slower than line by line alone.
    m = pagemap.parse_maps_line("7f0000000000-7f1000000000 rw-p 0 00:00 0")
    vpn, runs = m.start // PAGE, []
    for i in range(100):
        runs.append((vpn, 1, present(0x1000 + 7 * i)) if i % 2 else (vpn, 3, 0))
        vpn += runs[-1][1]
    tried = []
    real = pagemap.RunFormatter._block
    monkeypatch.setattr(pagemap.RunFormatter, "_block",
                        lambda self, *args: tried.append(1) or real(self, *args))
    lines = pagemap.RunFormatter(m, PAGE, None, lambda: False).lines(runs)
    assert len(lines) == 100 and not tried
    pagemap.RunFormatter(m, PAGE, None, lambda: False).lines(runs[1::2])
    assert tried        # present runs of one flags byte are tried


def test_big_endian_tree_gives_the_same_runs(tmp_path, run):
    entries = {ANON + i * PAGE: present(0x500 + i) for i in range(3)}
    entries[ANON + 5 * PAGE] = make_entry(swapped=True, swap_type=1, swap_offset=3)
    outs = []
    for order, name in (("<", "little"), (">", "big")):
        fake = FakeProc(tmp_path / name, byteorder=order)
        fake.process(PID, entries)
        outs.append(run(argv(fake, "--byteorder", name, "--json", PID, "%x+8000" % ANON))[1])
        outs.append(run(argv(fake, "--byteorder", name, "--json", PID))[1])
    assert outs[0] == outs[2] and outs[1] == outs[3]


def test_process_exits_mid_walk(fake, run, monkeypatch):
    d = fake.process(PID, {})
    calls = []
    real = os.pread

    def vanish(fd, n, off):
        calls.append(off)
        if len(calls) > 1:
            shutil.rmtree(d)
            return b""
        return real(fd, n, off)
    monkeypatch.setattr(pagemap.os, "pread", vanish)
    code, _, err = run(argv(fake, PID))
    assert_one_error(code, err, 3, "4242")


def test_read_error_mid_walk(fake, run, monkeypatch):
    fake.process(PID, {})
    fail_reads(monkeypatch, OSError(errno.EIO, "Input/output error"))
    code, _, err = run(argv(fake, PID, "%x+2000" % ANON))
    assert_one_error(code, err, 6, "pagemap", "Input/output error")
    # In JSON the document is spooled: the read error, and no half document.
    code, out, err = run(argv(fake, "--json", PID, "%x+2000" % ANON))
    assert_one_error(code, err, 6, "pagemap", "Input/output error")
    assert out == ""


@pytest.mark.parametrize("maps", [None, "garbage\n"])
def test_range_of_a_process_whose_maps_cannot_be_read(fake, run, maps):
    d = fake.process(PID, {ANON: present(5)})
    os.remove(os.path.join(d, "maps"))
    if maps:
        fake.write(PID + "/maps", maps)
    code, _, err = run(argv(fake, PID, "%x+3000" % ANON))
    assert_one_error(code, err, 6, "/%s/maps: " % PID, "garbage" if maps else "cannot read")


# --- whole-process summary ------------------------------------------------------------

def test_summary_rows_and_total(fake, run):
    line = "7f0000030000-7f0000032000 rw-s 60b00000 00:0c 6804                       /dev/sprd jpg"
    fake.swaps("/swapfile")
    fake.process(PID, {
        0x400000: present(1, file_shared=True),
        0x600000: present(2), 0x601000: present(3, soft_dirty=True),
        ANON: make_entry(swapped=True, swap_offset=1, soft_dirty=True),
        ANON + PAGE: make_entry(guard=True, swap_type=31, swap_offset=4),
    }, smaps=SMAPS_TEMPLATE.format(line=line, flags="rd wr sh io pf"))
    code, out, err = run(argv(fake, "--json", PID))
    assert code == 0 and err == ""
    doc = json.loads(out)
    rows = {m["start"]: m for m in doc["mappings"]}
    cat, heap, anon = rows[0x400000], rows[0x600000], rows[ANON]
    assert (cat["resident"], cat["file"], cat["exclusive"]) == (PAGE, PAGE, PAGE)
    assert (heap["resident"], heap["soft_dirty"], heap["size"]) == (2 * PAGE, PAGE, 3 * PAGE)
    assert (anon["resident"], anon["swapped"], anon["soft_dirty"]) == (0, PAGE, PAGE)
    assert rows[0xFFFFFFFFFF600000]["status"] == "beyond-address-space"
    assert rows[0x7FFC00100000]["status"] == "no-page-tables"          # [vvar]
    assert rows[0x7F0000030000]["status"] == "no-page-tables"          # VmFlags io pf
    assert rows[ANON]["status"] == "ok"
    total = doc["total"]
    assert total["resident"] == 3 * PAGE and total["swapped"] == PAGE
    assert total["mappings"] == 8
    assert set(heap) >= {"start", "end", "perms", "offset", "path", "size", "resident",
                         "swapped", "file", "exclusive", "soft_dirty", "huge", "status"}


def test_summary_text(fake, run):
    fake.process(PID, {0x600000: present(2), 0x601000: present(3)})
    code, out, _ = run(argv(fake, PID))
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["START", "END", "PERM", "SIZE_KIB", "RSS_KIB"]
    heap = [line for line in lines if line.endswith("[heap]")][0].split()
    assert heap[:5] == ["600000", "603000", "rw-p", "12", "8"]
    assert "[vsyscall] (beyond-address-space)" in out
    assert lines[-2].startswith("total") and "8 mappings" in lines[-2]
    assert "8.0 KiB resident" in lines[-1]


def test_huge_pages_without_scan_by_contiguity(tmp_path, run):
    fake = FakeProc(tmp_path / "proc")
    base = 0x7E0000000000
    maps = "%x-%x rw-p 00000000 00:00 0\n" % (base, base + (4 << 20))
    entries = {base + i * PAGE: present(0x40000 + i) for i in range(512)}       # one THP
    entries.update({base + (2 << 20) + i * PAGE: present(0x90000 + 2 * i) for i in range(512)})
    fake.process(PID, entries, maps=maps)
    _, out, _ = run(argv(fake, "--json", PID))
    assert json.loads(out)["mappings"][0]["huge"] == 2 << 20


def test_summary_of_hugetlb_and_of_shared_memory_in_swap(fake, run):
    # hugetlb pages are huge, not resident (MAP_HUGETLB's /anon_hugepage; a hugetlbfs
    # file by VmFlags 'ht'); swapped shared memory is told by smaps only.
    fake.swaps("/swapfile")
    hugetlb, shm, hugefile = 0x7E0000000000, 0x7F0000000000, 0x7F0000200000
    maps = ("%x-%x rw-s 00000000 00:0f 9 /anon_hugepage (deleted)\n"
            "%x-%x rw-s 00000000 00:19 12 /dev/shm/ring\n"
            "%x-%x rw-s 00000000 00:2c 77 /mnt/huge/buf\n" % (
                hugetlb, hugetlb + (4 << 20), shm, shm + 4 * PAGE, hugefile, hugefile + (2 << 20)))
    smaps = "".join("%sSwap: %d kB\nVmFlags: rd wr sh%s\n" % (line, swap, flags) for line, swap,
                    flags in zip(maps.splitlines(True), (0, 8, 0), (" ht", "", " ht")))
    entries = {hugetlb + i * PAGE: present(0x40000 + i) for i in range(512)}
    entries.update({hugefile + i * PAGE: present(0x80000 + i, file_shared=True)
                    for i in range(512)})
    entries[shm] = present(0x10, file_shared=True)
    fake.process(PID, entries, maps=maps, smaps=smaps)
    _, out, _ = run(argv(fake, "--json", PID))
    rows = [(m["resident"], m["huge"], m["swapped"]) for m in json.loads(out)["mappings"]]
    assert rows == [(0, 2 << 20, 0), (PAGE, 0, 2 * PAGE), (0, 2 << 20, 0)]
    # Like smaps' Pss, USS and PSS leave hugetlb pages out.
    fake.kpage("kpageflags", {0x40000 + i: 1 << 17 for i in range(512)})    # KPF_HUGE
    fake.kpage("kpagecount", {0x40000 + i: 1 for i in range(512)})
    _, out, _ = run(argv(fake, "--json", "--flags", PID))
    assert [(m["uss"], m["pss"]) for m in json.loads(out)["mappings"]][0] == (0, 0)
    _, out, _ = run(argv(fake, PID))
    assert out.splitlines()[-1] == ("8.0 KiB of shared memory swapped (from smaps: the kernel "
                                    "keeps no swap entries for shared pages in page tables)")
    _, out, _ = run(argv(fake, "--picture", PID))
    strips = [line.split("|")[1] for line in out.splitlines()[1:]]
    assert strips[0] == "H" * 32 + "." * 32 and strips[2] == "H" * 64


@pytest.mark.parametrize("swap_on", [False, True])
def test_shared_mapping_swap_entries_are_no_swapped_pages(fake, run, swap_on):
    # The kernel keeps no swap entry for a shared page (it clears the PTE): an
    # entry with bit 62 there is a PTE marker (uffd-wp, poison) or a migration,
    # whose type the kernel hides without CAP_SYS_ADMIN. Its SWAP is smaps' alone.
    if swap_on:
        fake.swaps("/swapfile")
    fake.reader(privileged=False)
    shm = 0x7F0000000000
    maps = "%x-%x rw-s 00000000 00:19 12 /dev/shm/ring\n" % (shm, shm + 4 * PAGE)
    smaps = maps + "Swap: 0 kB\nVmFlags: rd wr sh mr mw me ms\n"
    marker = make_entry(swapped=True, uffd_wp=True)      # its location hidden
    fake.process(PID, {shm: marker, shm + PAGE: marker}, maps=maps, smaps=smaps)
    _, out, _ = run(argv(fake, "--json", PID))
    assert json.loads(out)["mappings"][0]["swapped"] == 0
    _, out, _ = run(argv(fake, PID))
    assert "shared memory swapped" not in out
    _, out, _ = run(argv(fake, "--picture", PID))
    assert out.splitlines()[1].split("|")[1] == "...."
    _, out, _ = run(argv(fake, "--json", "--watch", "0.01", "--times", "1", PID))
    assert json.loads(out.splitlines()[0])["swapped"] == 0


def test_summary_asks_smaps_only_where_hugetlb_pages_may_be(fake, run, monkeypatch):
    # hugetlb in the system (meminfo); huge pages in anonymous memory (no file:
    # never hugetlb, which is always a hugetlbfs file's), in a shmem file and in
    # a hugetlbfs file. smaps (VmFlags 'ht') is asked for the files only; with
    # --flags, KPF_HUGE tells them apart: for the hugetlbfs file only.
    thp, shm, hugefile = 0x7E0000000000, 0x7F0000000000, 0x7F0000200000
    maps = ("%x-%x rw-p 00000000 00:00 0\n%x-%x rw-s 00000000 00:19 5 /dev/shm/big\n"
            "%x-%x rw-s 00000000 00:2c 77 /mnt/huge/buf\n" % (
                thp, thp + (2 << 20), shm, shm + (2 << 20), hugefile, hugefile + (2 << 20)))
    smaps = "".join("%sVmFlags: rd wr%s\n" % (line, flags)
                    for line, flags in zip(maps.splitlines(True), ("", "", " ht")))
    entries = {thp + i * PAGE: present(0x40000 + i) for i in range(512)}
    entries.update({shm + i * PAGE: present(0x60000 + i, file_shared=True) for i in range(512)})
    entries.update({hugefile + i * PAGE: present(0x80000 + i, file_shared=True)
                    for i in range(512)})
    fake.process(PID, entries, maps=maps, smaps=smaps)
    fake.write("meminfo", "Hugetlb: 2048 kB\n")
    fake.kpage("kpageflags", dict([(0x40000 + i, 1 << 22) for i in range(512)] +     # KPF_THP
                                  [(0x60000 + i, 1 << 22) for i in range(512)] +
                                  [(0x80000 + i, 1 << 17) for i in range(512)]))    # KPF_HUGE
    fake.kpage("kpagecount", {})
    asked = []
    real = pagemap.ProcessReader.smaps_fields
    monkeypatch.setattr(pagemap.ProcessReader, "smaps_fields",
                        lambda self, m: asked.append(m.start) or real(self, m))
    for args, smaps_asked in (([], [shm, hugefile]), (["--flags"], [hugefile])):
        del asked[:]
        docs = json.loads(run(argv(fake, "--json", PID, *args))[1])["mappings"]
        assert [(m["resident"], m["huge"]) for m in docs] == [
            (2 << 20, 2 << 20), (2 << 20, 2 << 20), (0, 2 << 20)]
        assert asked == smaps_asked


def test_scan_and_reads_agree(fake, monkeypatch):
    """PAGEMAP_SCAN answers emulated from the file itself: both paths, same output."""
    entries = {ANON + i * PAGE: present(0x500 + i) for i in range(3)}
    entries[ANON + 9 * PAGE] = make_entry(swapped=True, swap_offset=5)
    fake.process(PID, entries)
    reader = pagemap.ProcessReader(fake.root, PID, PAGE)
    walker = pagemap.Walker(reader, 512)
    plain = (walker.counts(ANON // PAGE, ANON // PAGE + 16), list(walker.runs(
        ANON // PAGE, ANON // PAGE + 16)))
    asked = []

    def regions(self, start, end, mask, anyof, max_pages=0):
        asked.append((start, end))
        found = [v for v in range(start, end)
                 if reader.entry_at(v * PAGE)[0] >> 62]   # present or swap bit
        return [(found[0], found[0] + 1)] if found else []
    monkeypatch.setattr(pagemap.PageScanner, "regions", regions)
    walker = pagemap.Walker(reader, 512)
    scanned = (walker.counts(ANON // PAGE, ANON // PAGE + 16), list(walker.runs(
        ANON // PAGE, ANON // PAGE + 16)))
    assert asked and scanned == plain


def test_picture_plain_when_not_a_terminal(fake, run):
    entries = {ANON + i * PAGE: present(0x500 + i) for i in range(8)}
    fake.process(PID, entries)
    code, out, _ = run(argv(fake, "--picture", PID))
    assert out.splitlines()[0].startswith("legend: # all present")
    anon = [line for line in out.splitlines() if "[anonymous]" in line][0]
    strip = anon.split("|")[1]
    assert strip == "#" * 8 + "." * 8
    vsys = [line for line in out.splitlines() if "[vsyscall]" in line][0]
    assert vsys.split("|")[1] == " "
    assert all(ord(c) < 128 for c in out)


def test_picture_blocks():
    assert pagemap.picture_blocks(0, 10, 4) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert pagemap.picture_blocks(5, 7, 64) == [(5, 6), (6, 7)]
    assert pagemap.block_kind(pagemap.Counts(4, 2, 0, 0, 0, 0, 0), "ok") == "some"
    assert pagemap.block_kind(pagemap.Counts(4, 0, 1, 0, 0, 0, 0), "ok") == "swapped"


def test_human_size():
    assert pagemap.human_size(0) == "0 B"
    assert pagemap.human_size(1536) == "1.5 KiB"
    assert pagemap.human_size(3 << 30) == "3.0 GiB"


def test_picture_style_on_a_terminal():
    class Tty(object):
        encoding = "utf-8"

        def isatty(self):
            return True

        def fileno(self):
            raise OSError(errno.ENOTTY, "not a terminal")
    chars, width = pagemap.picture_style(Tty())
    assert chars["full"] == "\u2588" and 16 <= width <= 128
    Tty.encoding = "ascii"
    chars, _ = pagemap.picture_style(Tty())
    assert chars["full"] == "#"


@pytest.mark.parametrize("args", [["%x+10000" % ANON], ["%x" % (ANON + 0x5000)]],
                         ids=["range", "lookup"])
def test_untouched_anonymous_memory_reads_no_smaps(fake, run, monkeypatch, args):
    # smaps walks the whole VMA (27 ms for an untouched 16 GiB one); memory from
    # mmap(MAP_ANONYMOUS) is never VM_PFNMAP/VM_IO, so its VmFlags are not needed.
    fake.process(PID, {ANON: present(0x42)})
    opened = []
    real_open = pagemap._open

    def watching(path, *rest):
        opened.append(os.path.basename(path))
        return real_open(path, *rest)
    monkeypatch.setattr(pagemap, "_open", watching)
    code, out, _ = run(argv(fake, PID, *args))
    assert "not-present" in out and "smaps" not in opened


def test_huge_pages_unknown_without_scan_and_pfns(tmp_path, run):
    """Before 6.7 (no PAGEMAP_SCAN) an unprivileged reader sees PFN 0 everywhere:
    whether 2 MiB blocks are huge pages cannot be known, so HUGE is not 0."""
    fake = FakeProc(tmp_path / "proc")
    fake.reader(privileged=False)
    fake.kernel("6.1.0-50-amd64")
    base, anon = 0x7E0000000000, 0x7F0000000000
    maps = ("00600000-00603000 rw-p 00000000 00:00 0 [heap]\n%x-%x rw-p 00000000 00:00 0\n"
            "%x-%x rw-p 00000000 00:00 0\n" % (base, base + (4 << 20), anon, anon + (4 << 20)))
    entries = {base + i * PAGE: present(0) for i in range(1024)}
    entries[0x600000] = present(0)            # [heap]: 3 pages, no room for a huge page
    # anon: 2 MiB blocks partly present, so none is a huge page
    entries.update((anon + i * PAGE, present(0)) for i in range(0, 1024, 7))
    fake.process(PID, entries, maps=maps)
    code, out, err = run(argv(fake, "--json", PID))
    doc = json.loads(out)
    rows = {m["start"]: m for m in doc["mappings"]}
    assert code == 0 and rows[base]["resident"] == 4 << 20
    assert rows[base]["huge"] is None and doc["total"]["huge"] is None
    assert rows[0x600000]["huge"] == rows[anon]["huge"] == 0
    warnings = err.splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("pagemap: warning: huge pages unknown")
    assert "PAGEMAP_SCAN" in warnings[0] and "run as root" in warnings[0]
    code, out, err = run(argv(fake, PID))
    row = [line.split() for line in out.splitlines() if line.startswith("%x " % base)][0]
    assert row[4] == "4096" and row[-2] == "-"            # RSS_KIB, HUGE_KIB
    assert out.splitlines()[-1].endswith("huge pages unknown") and len(err.splitlines()) == 1
    code, out, err = run(argv(fake, "--picture", PID))
    assert "huge pages unknown" in err
    fake.reader(privileged=True)             # PFNs shown, none in a huge page: 0
    entries.update((base + i * PAGE, present(0x1000 + 2 * i)) for i in range(1024))
    fake.process(PID, entries, maps=maps)
    code, out, err = run(argv(fake, "--json", PID))
    assert json.loads(out)["total"]["huge"] == 0 and err == ""


def test_flags_text_lines_need_no_json(monkeypatch):
    # A --flags listing in text imports no json (~2.5 ms here, more on a board).
    m = pagemap.parse_maps_line("7f0000000000-7f1000000000 rw-p 0 00:00 0")
    info = pagemap.PageInfo(0x828, 1, None, None, 0, "System RAM", None)
    monkeypatch.setitem(sys.modules, "json", None)     # import json now fails
    lines = pagemap.RunFormatter(m, PAGE, None, lambda: False).lines(
        [(m.start // PAGE, 2, present(0x1000)), (m.start // PAGE + 5, 1, 0)], [info, None])
    assert len(lines) == 3 and lines[1].startswith("  page: flags ")
