"""Run listings byte for byte: text and --json, with PFNs visible and hidden,
over every run state, a hole, a device mapping and the end of the address
space. The golden files were written by the per-record code that the batch
formatter replaced; PAGEMAP_REGEN_GOLDEN=1 rewrites them (review the diff)."""

import io
import os

import pytest
from conftest import SMAPS_TEMPLATE, FakeProc, call, make_entry

import pagemap

HERE = os.path.dirname(os.path.abspath(__file__))
ANON = 0x7F0000000000
PAGE = 4096
MAPS = """\
00400000-00401000 r-xp 00000000 08:02 1177367                            /usr/bin/100% cat
7f0000000000-7f0000010000 rw-p 00000000 00:00 0
7f0000020000-7f0000021000 rw-s 00000000 00:05 4242                       /dev/zero (deleted)
7f0000030000-7f0000032000 rw-s 60b00000 00:0c 6804                       /dev/sprd jpg
7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0                          [stack]
"""
DEVICE = "7f0000030000-7f0000032000 rw-s 60b00000 00:0c 6804                       /dev/sprd jpg"


def listing_tree(root, privileged):
    fake = FakeProc(root)
    fake.reader(privileged=privileged)
    fake.swaps("/swapfile")

    def pfn(n):
        return n if privileged else 0
    e = {0x400000: make_entry(present=True, pfn=pfn(0x1234), file_shared=True)}
    for i in range(4):
        e[ANON + i * PAGE] = make_entry(present=True, pfn=pfn(0x500 + i), exclusive=True)
    e[ANON + 4 * PAGE] = make_entry(present=True, pfn=pfn(0x123456789), soft_dirty=True)
    e[ANON + 6 * PAGE] = make_entry(swapped=True, swap_offset=pfn(0x10), exclusive=True)
    e[ANON + 7 * PAGE] = make_entry(swapped=True, swap_offset=pfn(0x99), exclusive=True)
    e[ANON + 8 * PAGE] = make_entry(swapped=True, swap_type=pfn(3), swap_offset=pfn(0x5))
    e[ANON + 9 * PAGE] = make_entry(guard=True, swap_type=31, swap_offset=4)
    e[ANON + 10 * PAGE] = make_entry(present=True, pfn=pfn(0x600), uffd_wp=True)
    e[ANON + 11 * PAGE] = make_entry(present=True, pfn=pfn(0x601), uffd_wp=True)
    e[ANON + 0x20000] = make_entry(present=True, pfn=pfn(0x700), file_shared=True)
    smaps = SMAPS_TEMPLATE.format(line=DEVICE, flags="rd wr sh mr mw me ms io pf dd")
    fake.process("4242", e, maps=MAPS, smaps=smaps)
    return fake


def facts_tree(root):
    """listing_tree with kpage files: the PFN 0x123456789 lies past their end."""
    fake = listing_tree(root, True)
    anon = (1 << 3) | (1 << 5) | (1 << 11) | (1 << 12) | (1 << 14)
    flags = {0x500: anon, 0x501: anon, 0x502: anon | (1 << 21), 0x503: anon | (1 << 4),
             0x600: anon | (1 << 22), 0x601: anon | (1 << 22), 0x700: (1 << 11) | (1 << 3),
             0x1234: (1 << 11) | (1 << 5)}
    counts = {0x500: 1, 0x501: 1, 0x502: 3, 0x503: 2, 0x600: 1, 0x601: 1, 0x700: 2, 0x1234: 9}
    fake.kpage("kpageflags", flags)
    fake.kpage("kpagecount", counts)
    return fake


@pytest.mark.parametrize("batch", [None, 3], ids=["", "batch3"])
@pytest.mark.parametrize("privileged", [True, False], ids=["root", "user"])
@pytest.mark.parametrize("mode", ["text", "json", "each", "each-json"])
def test_listing_golden(tmp_path, privileged, mode, batch, monkeypatch):
    # Batches of 3 runs (or pages) end inside runs, stretches and mappings: same output.
    if batch:
        monkeypatch.setattr(pagemap, "RUN_BATCH", batch)
    fake = listing_tree(tmp_path / "proc", privileged)
    args = ["--proc-root", fake.root, "--page-size", str(PAGE), "4242", "/usr/bin/100% cat",
            "7f0000000000-7f0000040000", "7ffffffef000-800000003000"]
    code, out, err = call({"text": [], "json": ["--json"], "each": ["--each"],
                           "each-json": ["--each", "--json"]}[mode] + args)
    got = ("%d\n%s---\n%s" % (code, out, err)).replace(fake.root, "PROC")
    path = os.path.join(HERE, "golden", "listing-%s%s.%s" % (
        "root" if privileged else "user", "-each" if "each" in mode else "",
        "json" if "json" in mode else "txt"))
    if os.environ.get("PAGEMAP_REGEN_GOLDEN") and not batch:
        with io.open(path, "w", encoding="utf-8") as f:
            f.write(got)
    with io.open(path, encoding="utf-8") as f:
        assert got == f.read()


FACT_VIEWS = {
    "match-list": ["--match", "anon,~ksm", "7f0000000000-7f0000040000"],
    "match-shared-list": ["--match", "shared", "7f0000000000-7f0000040000", "/usr/bin/100% cat"],
    "match-clean-list": ["--match", "~dirty", "7f0000000000-7f0000040000"],
    "flags-list": ["--flags", "7f0000000000-7f0000040000", "/usr/bin/100% cat"],
    "flags-summary": ["--flags"],
    "match-summary": ["--match", "anon"],
    "match-shared-summary": ["--match", "shared"],
    "match-flags-summary": ["--match", "~ksm", "--flags"],
}


@pytest.mark.parametrize("name", sorted(FACT_VIEWS))
@pytest.mark.parametrize("mode", ["text", "json"])
def test_page_facts_golden(tmp_path, name, mode):
    fake = facts_tree(tmp_path / "proc")
    args = ["--proc-root", fake.root, "--page-size", str(PAGE), "4242"] + FACT_VIEWS[name]
    code, out, err = call((["--json"] if mode == "json" else []) + args)
    got = ("%d\n%s---\n%s" % (code, out, err)).replace(fake.root, "PROC")
    path = os.path.join(HERE, "golden", "facts-%s.%s" % (name, "json" if mode == "json" else "txt"))
    if os.environ.get("PAGEMAP_REGEN_GOLDEN"):
        with io.open(path, "w", encoding="utf-8") as f:
            f.write(got)
    with io.open(path, encoding="utf-8") as f:
        assert got == f.read()


def test_listing_pads_vrange_across_a_hex_digit(tmp_path):
    """A batch whose addresses gain a hex digit midway (0xffff000 -> 0x10000000)
    keeps every column in place: VRANGE is padded per run, not per batch."""
    fake = FakeProc(tmp_path / "proc")
    fake.reader(privileged=True)
    start = 0x10000000 - 2 * PAGE
    entries = dict((start + i * PAGE, make_entry(present=True, pfn=0x10 * (i + 1), exclusive=True))
                   for i in range(4))
    fake.process("4242", entries, maps="0fffe000-10002000 rw-p 00000000 00:00 0\n")
    code, out, err = call(["--proc-root", fake.root, "--page-size", str(PAGE), "4242",
                           "fffe000-10002000"])
    assert code == 0, err
    rows = out.splitlines()[2:]
    vranges = ["0xfffe000-0xffff000", "0xffff000-0x10000000", "0x10000000-0x10001000",
               "0x10001000-0x10002000"]
    assert rows == ["%-35s %-35s %9d %-20s %-22s %s" % (
        vr, "0x%x-0x%x" % (0x10000 * (i + 1), 0x10000 * (i + 1) + 0x1000), 1, "present",
        "exclusive", "fffe000-10002000 rw-p [anonymous]") for i, vr in enumerate(vranges)]
