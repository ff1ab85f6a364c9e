"""The command line against fake /proc trees: every state, every error."""

import errno
import io
import json
import os
import struct
import sys

import pytest
from conftest import (
    DEFAULT_MAPS,
    SMAPS_TEMPLATE,
    FakeProc,
    assert_one_error,
    bit,
    fail_reads,
    make_entry,
)

import pagemap

PID = "4242"


def argv(fake, *args):
    return ["--proc-root", fake.root, "--page-size", str(fake.page_size)] + list(args)


def records(out):
    """The record lines of text output (no header, no detail lines)."""
    return [line.split() for line in out.splitlines()[1:] if not line.startswith("  ")]


# --- states ---------------------------------------------------------------------

def test_present_page_gives_physical_address(fake, run):
    fake.process(PID, {0x600000: make_entry(present=True, pfn=0x8C445, exclusive=True,
                                            soft_dirty=True)})
    code, out, err = run(argv(fake, PID, "0x600123"))
    assert code == 0 and err == ""
    assert out.splitlines()[0].split() == ["VADDR", "PADDR", "PFN", "STATE", "FLAGS", "MAPPING"]
    rec = records(out)[0]
    assert rec[:5] == ["0x600123", "0x8c445123", "0x8c445", "present", "soft-dirty,exclusive"]
    assert rec[5:] == ["600000-603000", "rw-p", "[heap]"]


def test_address_without_0x_as_pasted_from_maps(fake, run):
    fake.process(PID, {0x400000: make_entry(present=True, pfn=0x10, file_shared=True)})
    code, out, _ = run(argv(fake, PID, "00400000"))
    assert code == 0 and records(out)[0][1] == "0x10000"


@pytest.mark.parametrize("page_size,vaddr,pfn,paddr", [
    (16384, 0x2BDFC123, 0x202573, 0x8095CC123),
    (65536, 0x7F0000012345, 0x1234, 0x12342345),
])
def test_large_page_sizes(tmp_path, run, page_size, vaddr, pfn, paddr):
    fake = FakeProc(tmp_path / "proc", page_size=page_size)
    maps = "%x-%x rw-p 00000000 00:00 0\n" % (vaddr - vaddr % page_size,
                                              vaddr - vaddr % page_size + page_size)
    fake.process(PID, {vaddr: make_entry(present=True, pfn=pfn)}, maps=maps)
    code, out, _ = run(argv(fake, PID, hex(vaddr)))
    assert code == 0 and records(out)[0][1] == "0x%x" % paddr


def test_big_endian_capture_with_byteorder(tmp_path, run):
    fake = FakeProc(tmp_path / "proc", byteorder=">")
    fake.process(PID, {0x600000: make_entry(present=True, pfn=0xABCDE)})
    code, out, _ = run(argv(fake, "--byteorder", "big", PID, "600000"))
    assert code == 0 and records(out)[0][2] == "0xabcde"
    # Read with the wrong byte order, the same bytes are nonsense, not a crash.
    code, out, _ = run(argv(fake, "--byteorder", "little", PID, "600000"))
    assert records(out)[0][2] != "0xabcde"


def test_physical_address_above_4g_on_32bit_layout(fake, run):
    # LPAE: a 32-bit virtual address mapped above 4 GiB physical.
    maps = "b6e54000-b6e5c000 rw-p 00000000 00:00 0\n"
    fake.process(PID, {0xB6E55000: make_entry(present=True, pfn=0x123456)}, maps=maps)
    code, out, _ = run(argv(fake, PID, "b6e55abc"))
    assert code == 0 and records(out)[0][1] == "0x123456abc"
    # JSON, and a range's run: exact integers past 32 bits (CI runs this on armhf).
    code, out, _ = run(argv(fake, PID, "--json", "b6e55abc", "b6e55000+1000"))
    doc = json.loads(out)
    assert code == 0 and doc["results"][0]["paddr"] == 0x123456ABC == 0x123456 * 4096 + 0xABC
    assert doc["results"][0]["pfn"] == 0x123456
    assert doc["ranges"][0]["runs"][0]["paddr"] == 0x123456000


def test_address_beyond_32bit_user_space(tmp_path, run):
    fake = FakeProc(tmp_path / "proc", task_size=0xC0000000)
    fake.process(PID, {}, maps="00010000-00011000 r-xp 00000000 00:15 69 /tmp/t\n"
                 "ffff0000-ffff1000 r-xp 00000000 00:00 0 [vectors]\n")
    code, out, _ = run(argv(fake, PID, "0xffff0000"))
    assert code == 1
    assert "beyond-address-space" in out and "0xc0000000 on this kernel" in out
    # ARM's [vectors] page is named, not x86-64's [vsyscall], which this process has not.
    assert "([vectors] is the kernel's" in out and "vsyscall" not in out


def test_la57_addresses(fake, run, monkeypatch):
    # 57-bit addresses put entries ~128 TiB into pagemap, more than ext4 can hold
    # even sparsely: serve that one read from memory, everything else from the tree.
    va = 0x00FF00000000A000
    fake.process(PID, {}, maps="%x-%x rw-p 00000000 00:00 0\n" % (va, va + 0x1000))
    wanted = (va // 4096) * 8
    real = os.pread

    def pread(fd, n, off):
        if off == wanted:
            return struct.pack("=Q", make_entry(present=True, pfn=0x42))
        return real(fd, n, off)
    monkeypatch.setattr(pagemap.os, "pread", pread)
    code, out, _ = run(argv(fake, PID, hex(va + 5)))
    assert code == 0 and records(out)[0][1] == "0x42005"


def test_swapped_page_of_type_1_in_one_of_two_areas(fake, run):
    # Type 1 is /dev/sdb2, or /swapfile if type 0 was swapped off (not listed).
    fake.swaps("/swapfile", "/dev/sdb2")
    fake.process(PID, {0x7F0000001000: make_entry(swapped=True, swap_type=1,
                                                  swap_offset=0x2A)})
    code, out, _ = run(argv(fake, PID, "7f0000001000"))
    assert code == 1
    assert records(out)[0][3] == "swapped"
    assert "(swap type 1, offset 0x2a) to /swapfile or /dev/sdb2" in out
    code, out, _ = run(argv(fake, "--json", PID, "7f0000001000"))
    assert json.loads(out)["results"][0]["swap_area"] is None


def test_swapped_json(fake, run):
    fake.swaps("/swapfile")
    fake.process(PID, {0x7F0000001000: make_entry(swapped=True, swap_type=0,
                                                  swap_offset=0x2A)})
    code, out, _ = run(argv(fake, "--json", PID, "7f0000001000"))
    r = json.loads(out)["results"][0]
    assert (r["status"], r["swap_type"], r["swap_offset"], r["swap_area"]) == (
        "swapped", 0, 0x2A, "/swapfile")
    assert r["pfn"] is None and r["paddr"] is None and r["swapped"] is True


def test_hidden_pfn_warns_once(fake, run):
    fake.reader(privileged=False)
    raw = make_entry(present=True, pfn=0, exclusive=True)
    fake.process(PID, {0x600000: raw, 0x601000: raw})
    code, out, err = run(argv(fake, PID, "600000", "601000"))
    assert code == 1
    assert [r[3] for r in records(out)] == ["pfn-hidden", "pfn-hidden"]
    assert [r[1:3] for r in records(out)] == [["-", "-"]] * 2   # no PADDR, no "PFN 0x0"
    warnings = [line for line in err.splitlines() if line.startswith("pagemap: warning:")]
    assert len(warnings) == 1 and "CAP_SYS_ADMIN" in warnings[0] and "run as root" in warnings[0]
    assert (out + err).count("CAP_SYS_ADMIN") == 1     # the notes do not repeat why
    code, out, err = run(argv(fake, "--each", PID, "600000+8k"))
    assert "pfn-hidden" in out and (out + err).count("CAP_SYS_ADMIN") == 1


def test_hidden_pfn_in_user_namespace(fake, run):
    fake.reader(privileged=True, uid_map="0 1000 1\n")
    fake.process(PID, {0x600000: make_entry(present=True, pfn=0)})
    code, out, err = run(argv(fake, PID, "600000"))
    assert code == 1 and "user namespace" in err


def test_not_present_in_anonymous_memory(fake, run):
    fake.process(PID, {})
    code, out, _ = run(argv(fake, PID, "7f0000005000"))
    assert code == 1 and records(out)[0][3] == "not-present"
    assert "never touched" in out


def test_not_present_past_the_end_of_a_file_is_sigbus(fake, tmp_path, run):
    # The file is stat'ed through map_files; a device's size (0) means nothing.
    small = tmp_path / "small"
    small.write_bytes(b"x")                   # one page
    files = ((0x10000000, str(small)), (0x20000000, "/dev/null"))
    d = fake.process(PID, {}, maps="".join(
        "%x-%x rw-s 00001000 08:02 %d %s\n" % (start, start + 0x2000, os.stat(path).st_ino,
                                               path) for start, path in files))
    os.mkdir(os.path.join(d, "map_files"))
    for start, path in files:
        os.symlink(path, os.path.join(d, "map_files", "%x-%x" % (start, start + 0x2000)))
    code, out, _ = run(argv(fake, PID, "10000000", "20000000"))
    notes = [line for line in out.splitlines() if "note:" in line]
    assert "1 pages now" in notes[0] and "SIGBUS" in notes[0] and "SIGBUS" not in notes[1]


def test_not_present_in_shared_memory_mentions_swap(fake, run):
    fake.process(PID, {})
    code, out, _ = run(argv(fake, PID, "7f0000020000"))
    assert "shared page that was swapped out" in out


def test_not_present_in_file_mapping(fake, run):
    fake.process(PID, {})
    code, out, _ = run(argv(fake, PID, "400000"))
    assert "page cache" in out


def test_unmapped_hole(fake, run):
    fake.process(PID, {})
    code, out, _ = run(argv(fake, PID, "7f0000015000"))
    assert code == 1 and records(out)[0][3] == "unmapped"
    assert "hole between 7f0000000000-7f0000010000 and 7f0000020000-7f0000021000" in out


def test_vsyscall_beyond_address_space(fake, run):
    fake.process(PID, {})
    code, out, err = run(argv(fake, PID, "ffffffffff600000"))
    assert code == 1 and err == ""
    assert records(out)[0][3] == "beyond-address-space"
    assert "0x7ffffffff000 on this kernel" in out and "Reached end" not in out
    assert "[vsyscall]" in out


def test_device_memory_without_page_tables(fake, run):
    line = "7f0000030000-7f0000032000 rw-s 60b00000 00:0c 6804                       /dev/sprd jpg"
    flags = "rd wr sh mr mw me ms io pf dd"
    fake.process(PID, {}, smaps=SMAPS_TEMPLATE.format(line=line, flags=flags))
    code, out, _ = run(argv(fake, PID, "7f0000031000"))
    assert code == 1 and records(out)[0][3] == "no-page-tables"
    assert "VM_PFNMAP" in out and "/dev/sprd jpg" in out


def test_vvar_without_smaps_falls_back_to_name(fake, run):
    fake.process(PID, {})
    code, out, _ = run(argv(fake, PID, "7ffc00100000"))
    assert records(out)[0][3] == "no-page-tables"


def test_guard_region(fake, run):
    fake.process(PID, {0x7F0000002000: make_entry(guard=True, swap_type=31, swap_offset=4)})
    code, out, _ = run(argv(fake, PID, "--json", "7f0000002000"))
    r = json.loads(out)["results"][0]
    assert (r["status"], r["guard"], r["swapped"]) == ("not-present", True, False)


def test_pte_marker_is_no_swapped_page_in_any_view(fake, run):
    """A uffd-wp marker (swap type 31, offset 1; 5.19+) beside a swapped page:
    a lookup, listings, --each, --match and the summaries agree it is none."""
    anon, page = 0x7F0000000000, fake.page_size
    fake.swaps("/swapfile")
    fake.process(PID, {anon: make_entry(swapped=True, swap_type=31, swap_offset=1, uffd_wp=True),
                       anon + page: make_entry(swapped=True, swap_offset=7)})
    span = "%x+%x" % (anon, 2 * page)
    _, out, _ = run(argv(fake, "--json", PID, hex(anon), span))
    doc = json.loads(out)
    r = doc["results"][0]
    assert (r["status"], r["swapped"], r["swap_area"]) == ("not-present", False, None)
    assert "PTE marker" in r["note"] and "swap area" in r["note"]
    assert [x["status"] for x in doc["ranges"][0]["runs"]] == ["not-present", "swapped"]
    _, out, _ = run(argv(fake, "--json", "--each", PID, span))
    assert [x["status"] for x in json.loads(out)["ranges"][0]["pages"]] == [
        "not-present", "swapped"]
    _, out, _ = run(argv(fake, "--json", "--match", "swapped", PID, span))
    assert [x["start"] for x in json.loads(out)["ranges"][0]["runs"]] == [anon + page]
    for match in ([], ["--match", "swapped"], ["--match", "uffd-wp"]):
        _, out, _ = run(argv(fake, "--json", PID) + match)
        assert json.loads(out)["total"]["swapped"] == (0 if "uffd-wp" in match else page)


def test_pre_311_kernel_page_shift(fake, run):
    fake.kernel("3.10.0-1160.el7.x86_64")
    fake.process(PID, {0x400000: 0xA600000000036AFB, 0x401000: 0x0600000000000000},
                 maps="00400000-00402000 r-xp 00000000 08:02 1177367 /bin/cat\n")
    code, out, _ = run(argv(fake, "--json", PID, "400000", "401000"))
    res = json.loads(out)["results"]
    assert json.loads(out)["kernel"] == "3.10"
    assert res[0]["paddr"] == 0x36AFB000 and not res[0]["uffd_wp"] and not res[0]["guard"]
    assert res[1]["status"] == "not-present" and not res[1]["guard"]


@pytest.mark.parametrize("release,page_size", [("3.10.0-1160.el7.x86_64", 4096),
                                               ("3.10.0", 16384), ("4.1.52", 4096)])
def test_pre_311_summary_and_match_ignore_the_page_shift(tmp_path, run, release, page_size):
    """Before 3.11 (on 3.11-4.1 until clear_refs) bits 55-60 hold the page shift
    (12: bits 57, 58; 14: 56-58), on holes and swapped pages too: the summary,
    --watch and --match read them as flags no more than a lookup does (a swapped
    page is swapped, no page is exclusive or guard)."""
    fake = FakeProc(tmp_path / "proc", page_size=page_size)
    fake.kernel(release)
    shift = (page_size.bit_length() - 1) << 55
    fake.process(PID, {0x600000: bit(63) | shift | 0x1234,
                       0x600000 + page_size: bit(62) | shift | 5 << 5 | 1,
                       0x600000 + 2 * page_size: shift},
                 maps="600000-%x rw-p 00000000 00:00 0 [heap]\n" % (0x600000 + 3 * page_size))
    _, out, _ = run(argv(fake, "--json", PID))
    total = json.loads(out)["total"]
    assert [total[k] for k in ("resident", "swapped", "exclusive", "soft_dirty")] == [
        page_size, page_size, 0, 0]
    for match, pages in (("exclusive", 0), ("guard", 0), ("uffd-wp", 0), ("swapped", 1)):
        _, out, _ = run(argv(fake, "--json", PID, "--match", match))
        assert json.loads(out)["total"]["size"] == 3 * page_size
        _, out, _ = run(argv(fake, "--json", PID, "[heap]", "--match", match))
        assert sum(r["pages"] for r in json.loads(out)["ranges"][0]["runs"]) == pages, match
    _, out, _ = run(argv(fake, PID, "--watch", "0.01", "--times", "1"))
    assert ": 1 present, 1 swapped, 0 written" in out


def test_311_to_41_after_clear_refs_counts_soft_dirty(fake, run):
    """On 3.11-4.1 an mm whose entries have bits 56-60 clear is in the new layout
    (after the first clear_refs): bit 55 is soft-dirty there, not a page shift's."""
    fake.kernel("4.1.52")
    fake.process(PID, {0x600000: bit(63) | bit(55) | 0x1234, 0x601000: bit(63) | 0x1235},
                 maps="600000-602000 rw-p 00000000 00:00 0 [heap]\n")
    _, out, _ = run(argv(fake, "--json", PID))
    total = json.loads(out)["total"]
    assert (total["resident"], total["soft_dirty"]) == (2 * 4096, 4096)


def test_kernel_version_without_osrelease(fake, monkeypatch):
    # CONFIG_PROC_SYSCTL=n: no /proc/sys. The live system still has uname; a tree has nothing.
    os.remove(os.path.join(fake.root, "sys", "kernel", "osrelease"))
    assert pagemap.running_kernel(fake.root) is None
    monkeypatch.setattr(pagemap, "read_text_optional", lambda path: None)
    monkeypatch.setattr(os, "uname", lambda: ("Linux", "board", "4.9.337-yocto", "#1", "armv7l"))
    assert pagemap.running_kernel("/proc") == (4, 9)


def test_kernel_version_option_overrides(fake, run):
    fake.process(PID, {0x400000: 0xA600000000036AFB})
    _, out, _ = run(argv(fake, "--json", "--kernel-version", "3.2", PID, "400000"))
    assert json.loads(out)["results"][0]["uffd_wp"] is False


def test_mixed_results_exit_1_but_print_all(fake, run):
    fake.process(PID, {0x600000: make_entry(present=True, pfn=7)})
    code, out, _ = run(argv(fake, PID, "600000", "601000"))
    assert code == 1 and [r[3] for r in records(out)] == ["present", "not-present"]


def test_names_an_ascii_stdout_cannot_hold_are_escaped(fake, monkeypatch):
    # LANG=C on Python < 3.7: stdout is ASCII; a file name in maps is anything.
    fake.process(PID, {0x400000: make_entry(present=True, pfn=7)},
                 maps="00400000-00401000 r-xp 00000000 08:02 7 /opt/caf\u00e9\n")
    out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    monkeypatch.setattr(sys, "stdout", out)
    assert pagemap.main(argv(fake, PID, "400000")) == 0
    out.flush()
    assert out.buffer.getvalue().decode("ascii").splitlines()[1].endswith(" /opt/caf\\xe9")


def test_verbose_shows_raw_entry_and_bytes(fake, run):
    fake.process(PID, {0x600000: 0x8100000000202573})
    code, out, _ = run(argv(fake, "-v", PID, "600000"))
    assert "entry: 0x8100000000202573" in out
    assert "file offset 0x3000" in out          # 0x600000 / 4096 * 8
    # Bytes in file order: native byte order (little-endian on x86, big on s390x).
    native = " ".join("%02x" % b for b in bytearray(struct.pack("=Q", 0x8100000000202573)))
    assert "bytes " + native in out
    if sys.byteorder == "little":
        assert "bytes 73 25 20 00 00 00 00 81" in out


JSON_KEYS = {"pid", "vaddr", "entry", "present", "swapped", "file_shared", "exclusive",
             "soft_dirty", "uffd_wp", "guard", "pfn", "paddr", "swap_type", "swap_offset",
             "page_size", "mapping", "status", "note", "swap_area", "page"}


def test_json_document(fake, run):
    fake.process(PID, {0x600000: make_entry(present=True, pfn=0x8C445)})
    code, out, _ = run(argv(fake, "--json", PID, "600010", "0x10", "ffffffffff600000"))
    doc = json.loads(out)
    assert code == 1 and doc["pid"] == 4242 and doc["page_size"] == 4096
    present, hole, beyond = doc["results"]
    assert set(present) == JSON_KEYS
    assert present["vaddr"] == 0x600010 and present["paddr"] == 0x8C445010
    assert present["entry"] == make_entry(present=True, pfn=0x8C445)
    assert present["mapping"] == {"start": 0x600000, "end": 0x603000, "perms": "rw-p",
                                  "offset": 0, "path": "[heap]"}
    assert present["note"] is None
    assert hole["status"] == "unmapped" and hole["mapping"] is None
    assert beyond["status"] == "beyond-address-space" and beyond["entry"] is None


def test_every_status_is_documented():
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    for status in pagemap.STATUSES:
        assert "`%s`" % status in readme
    for key in JSON_KEYS:
        assert "`%s`" % key in readme


# --- --decode --------------------------------------------------------------------

def test_decode_values(run):
    code, out, _ = run(["--decode", "0x8100000000202573", "Result: 0x600000000000000",
                        "--page-size", "16384", "--kernel-version", "6.6"])
    assert code == 0
    recs = records(out)
    assert recs[0][:5] == ["-", "0x8095cc000", "0x202573", "present", "exclusive"]
    assert recs[1][3] == "not-present"


def test_decode_of_a_hidden_pfn_says_why_once(run):
    for extra in ([], ["--json"]):
        code, out, err = run(["--decode", "0x8100000000000000", "0x8100000000000000"] + extra)
        assert "pfn-hidden" in out and (out + err).count("CAP_SYS_ADMIN") == 1, extra


def test_decode_hints_at_old_kernel(run):
    code, out, _ = run(["--decode", "0xa600000000036afb"])
    assert code == 0 and "--kernel-version" in out


def test_decode_verbose_on_the_pre_311_layout(run):
    # No file behind a decoded value, so no offset; bits 55-60 read as the page shift.
    code, out, _ = run(["--decode", "a600000000036afb", "--kernel-version", "3.10", "-v",
                        "--byteorder", "big", "--page-size", "4096"])  # as its shift says
    assert code == 0 and out.splitlines()[2] == ("  entry: 0xa600000000036afb, bytes a6 00 00 "
                                                 "00 00 03 6a fb, page shift 12 (pre-3.11 layout)")


def test_decode_says_when_the_page_shift_disagrees(run):
    # Before 3.11 an entry carries its page shift: 12 (4096-byte pages) here, so the
    # physical address made with --page-size 64k is not the one the kernel meant.
    code, out, _ = run(["--decode", "0xa600000000036afb", "--kernel-version", "3.10",
                        "--page-size", "64k"])
    assert "note: bits 55-60 hold page shift 12 (4096-byte pages)" in out, out
    code, out, _ = run(["--decode", "0xa600000000036afb", "--kernel-version", "3.10",
                        "--page-size", "4096"])
    assert "note:" not in out, out


def test_decode_json(run):
    code, out, _ = run(["--decode", "a600000000036afb", "--kernel-version", "3.10", "--json"])
    r = json.loads(out)["results"][0]
    assert r["pfn"] == 0x36AFB and r["file_shared"] and r["vaddr"] is None


# --- errors: exactly one line, its own exit code, no traceback -------------------

def test_no_such_process(fake, run):
    code, out, err = run(argv(fake, "31337", "400000"))
    assert_one_error(code, err, 3, "31337", "ps")


def test_proc_not_mounted(tmp_path, run):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(["--proc-root", str(empty), "1", "400000"])
    assert_one_error(code, err, 5, "not mounted", "mount -t proc")


def test_a_directory_that_is_no_proc_tree(tmp_path, run):
    # A mistyped --proc-root: a real /proc always has self, so it is no process
    # that is missing there ("no process with PID self" misled).
    (tmp_path / "notes.txt").write_text("")
    code, _, err = run(["--proc-root", str(tmp_path), "self", "400000"])
    assert_one_error(code, err, 5, str(tmp_path), "no /proc tree")


def test_kernel_without_proc_page_monitor(fake, run):
    os.remove(os.path.join(fake.process(PID, {}), "pagemap"))
    code, _, err = run(argv(fake, PID, "400000"))
    assert_one_error(code, err, 5, "CONFIG_PROC_PAGE_MONITOR")


def test_kernel_thread(fake, run):
    d = fake.process("2", {}, maps="", flags=0x00208040, name="kthreadd")
    with open(os.path.join(d, "pagemap"), "wb"):
        pass                                    # a kernel thread's pagemap reads EOF
    code, _, err = run(argv(fake, "2", "400000"))
    assert_one_error(code, err, 3, "kernel thread", "kthreadd")


def test_kernel_thread_to_an_unprivileged_user(fake, run, monkeypatch):
    fake.process("2", {}, maps="", flags=0x00208040, name="kthreadd")
    raise_for(monkeypatch, "/pagemap", PermissionError(errno.EACCES, "Permission denied"))
    code, _, err = run(argv(fake, "2", "400000"))
    assert_one_error(code, err, 3, "kernel thread", "kthreadd")


def test_zombie(fake, run):
    d = fake.process("77", {}, maps="", state="Z")
    open(os.path.join(d, "pagemap"), "wb").close()
    code, _, err = run(argv(fake, "77", "400000"))
    assert_one_error(code, err, 3, "zombie")


def test_process_without_any_entries(fake, run):
    d = fake.process("78", {}, maps="")
    open(os.path.join(d, "pagemap"), "wb").close()
    code, _, err = run(argv(fake, "78", "400000"))
    assert_one_error(code, err, 3, "no address space")


@pytest.mark.parametrize("stat", [None, "78 (cat) Z\n"])
def test_process_without_entries_or_a_readable_stat(fake, run, stat):
    # A snapshot without stat, or a stat cut short: no zombie or kernel-thread
    # verdict, the plain one.
    d = fake.process("78", {}, maps="")
    open(os.path.join(d, "pagemap"), "wb").close()
    os.remove(os.path.join(d, "stat"))
    if stat is not None:
        fake.write("78/stat", stat)
    code, _, err = run(argv(fake, "78", "400000"))
    assert_one_error(code, err, 3, "no address space")


def raise_for(monkeypatch, suffix, exc):
    real = pagemap._open

    def fake_open(path):
        if path.endswith(suffix):
            raise exc
        return real(path)
    monkeypatch.setattr(pagemap, "_open", fake_open)


def test_permission_denied(fake, run, monkeypatch):
    fake.process(PID, {})
    raise_for(monkeypatch, "/pagemap", PermissionError(errno.EACCES, "Permission denied"))
    code, _, err = run(argv(fake, PID, "400000"))
    assert_one_error(code, err, 4, "%s/pagemap" % PID, "permission denied", "root",
                     "non-dumpable")
    # Yama's ptrace_scope restricts attaching only, never a read of pagemap.
    assert "yama" not in err


def test_eperm_is_permission_denied(fake, run, monkeypatch):
    fake.process(PID, {})
    raise_for(monkeypatch, "/pagemap", PermissionError(errno.EPERM, "Operation not permitted"))
    code, _, err = run(argv(fake, PID, "400000"))
    assert_one_error(code, err, 4, "4.0-4.1")


def test_esrch_is_no_process(fake, run, monkeypatch):
    fake.process(PID, {})
    raise_for(monkeypatch, "/pagemap", ProcessLookupError(errno.ESRCH, "No such process"))
    code, _, err = run(argv(fake, PID, "400000"))
    assert_one_error(code, err, 3)


def test_other_io_error(fake, run, monkeypatch):
    fake.process(PID, {})
    raise_for(monkeypatch, "/pagemap", OSError(errno.EIO, "Input/output error"))
    code, _, err = run(argv(fake, PID, "400000"))
    assert_one_error(code, err, 6, "Input/output error")


def test_maps_unreadable(fake, run, monkeypatch):
    fake.process(PID, {})
    raise_for(monkeypatch, "/maps", PermissionError(errno.EACCES, "Permission denied"))
    code, _, err = run(argv(fake, PID, "400000"))
    assert_one_error(code, err, 4, "maps")


def test_process_exits_mid_read(fake, run, monkeypatch):
    fake.process(PID, {})
    fail_reads(monkeypatch, ProcessLookupError(errno.ESRCH, "No such process"))
    code, _, err = run(argv(fake, PID, "400000"))
    assert_one_error(code, err, 3)


def test_corrupt_maps(fake, run):
    fake.process(PID, {}, maps="garbage\n")
    code, _, err = run(argv(fake, PID, "400000"))
    assert_one_error(code, err, 6, "maps", "unexpected content")


@pytest.mark.parametrize("args", [
    ["self", "0xzz"], ["self", ""], ["self", "0x"], ["self", "10-5"], ["self", "1000+"],
    ["self", "0x1000+zz"], ["self", "0-1" + "0" * 17], ["self", "-1"], ["0", "400000"],
    ["-5", "400000"], ["abc", "400000"], ["self", "1" + "0" * 20], [],
    ["self", "1", "--page-size", "1000"], ["--decode"], ["--decode", "zz"],
    ["1", "--decode", "0x1"], ["--kernel-version", "x", "self", "1"],
    ["--byteorder", "middle", "self", "1"], ["--bogus"], ["--from", "a\0b"],
    ["self", "--capture", "\0"], ["--proc-root", "/p\0", "self", "1"], ["--proc-root", ""],
])
def test_usage_errors(run, args):
    code, out, err = run(args)
    assert_one_error(code, err, 2)
    assert out == ""


def test_help_lists_exit_codes(run):
    code, out, err = run(["--help"])
    assert code == 0
    for fragment in ("exit codes:", "130", "--decode", "--proc-root", "--byteorder"):
        assert fragment in out


def test_version(run):
    code, out, _ = run(["--version"])
    assert code == 0 and pagemap.__version__ in out


def test_broken_pipe_is_quiet(fake, monkeypatch, capsys):
    fake.process(PID, {0x600000: make_entry(present=True, pfn=1)})

    class Closed(object):
        encoding = "utf-8"

        def write(self, text):
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

        def flush(self):
            pass

        def fileno(self):
            return os.open(os.devnull, os.O_WRONLY)
    monkeypatch.setattr(pagemap.sys, "stdout", Closed())
    code = pagemap.main(argv(fake, PID, "600000"))
    assert code == 0 and capsys.readouterr().err == ""


def test_interrupt_is_130(fake, monkeypatch, capsys):
    fake.process(PID, {})

    def interrupted(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(pagemap, "translate_with", interrupted)
    assert pagemap.main(argv(fake, PID, "600000")) == 130
    assert "Traceback" not in capsys.readouterr().err


def test_api_translate(fake):
    fake.process(PID, {0x600000: make_entry(present=True, pfn=0x99)})
    tr = pagemap.translate(4242, 0x600008, proc_root=fake.root, page_size=4096)
    assert tr.status == "present" and tr.paddr == 0x99008 and tr.mapping.path == "[heap]"
    assert tr.entry.pfn == 0x99


def test_api_hidden_pfn_says_why(fake):
    # The CLI says why in one warning; a library caller has only the note.
    fake.reader(privileged=False)
    fake.process(PID, {0x600000: make_entry(present=True, pfn=0)})
    for tr in pagemap.translate_many(4242, [0x600000, 0x600008], proc_root=fake.root,
                                     page_size=4096):
        assert tr.status == "pfn-hidden" and tr.note.count("CAP_SYS_ADMIN") == 1, tr.note


def test_each_verbose_shows_each_entry(fake, run):
    # -v was silently dropped by --each, the one listing in the address format.
    present = make_entry(present=True, pfn=0x99)
    fake.process(PID, {0x600000: present})
    code, out, err = run(argv(fake, PID, "--each", "-v", "600000+2000"))
    assert [line for line in out.splitlines() if line.startswith("  entry:")] == [
        "  entry: 0x%016x, file offset 0x3000" % present,
        "  entry: 0x0000000000000000, file offset 0x3008"], out


@pytest.mark.parametrize("vaddr", [-1, 1 << 64])
def test_api_refuses_what_is_no_64_bit_address(fake, vaddr):
    # -1 reached pread as a negative offset ("an error from the kernel"); 2**64 was
    # "beyond the address space" as if it were an address.
    fake.process(PID, {})
    with pytest.raises(pagemap.UsageError):
        pagemap.translate(4242, vaddr, proc_root=fake.root, page_size=4096)


def test_maps_path_is_kept_whole(fake, run):
    fake.process(PID, {}, maps=DEFAULT_MAPS)
    code, out, _ = run(argv(fake, PID, "7f0000030000"))
    assert "/dev/sprd jpg" in out


def test_smaps_is_read_once_in_address_order(fake, monkeypatch):
    blocks = []
    for i, flags in enumerate(["rd wr", "rd io pf", "rd wr ht"]):
        start = 0x00400000 + i * 0x1000
        blocks.append("%08x-%08x rw-p 00000000 00:00 0\nSize: 4 kB\nKernelPageSize: %d kB\n"
                      "VmFlags: %s\n" % (start, start + 0x1000, 4 << i, flags))
    maps = "".join(b.splitlines()[0] + "\n" for b in blocks)
    fake.process(PID, {}, maps=maps, smaps="".join(blocks))
    opened = []
    real = pagemap._open
    monkeypatch.setattr(pagemap, "_open", lambda p, *a: opened.append(p) or real(p, *a))
    reader = pagemap.ProcessReader(fake.root, PID, 4096)
    first, second, third = reader.maps()
    earlier = pagemap.Mapping(0x300000, 0x301000, "r--p", 0, "", 0, "")

    def opens():
        return len([p for p in opened if p.endswith("smaps")])
    assert reader.smaps_fields(second)["VmFlags"] == "rd io pf" and opens() == 1
    assert reader.smaps_fields(earlier) is None and opens() == 2    # behind: from the top
    assert reader.smaps_fields(first)["VmFlags"] == "rd wr"
    assert reader.smaps_fields(third)["KernelPageSize"] == "16 kB" and opens() == 2
    assert reader.smaps_fields(earlier) is None and opens() == 2    # all read: known absent
    reader.close()


def test_address_space_end_of_a_32_bit_kernel(fake, monkeypatch):
    """pagemap_read on a 32-bit kernel keeps the entry index in an unsigned long
    (svpfn): an offset past 4 GiB of addresses wraps to index 0 and reads again.
    The end found must still be TASK_SIZE (armhf: 0xbf000000), not past [vectors]."""
    task = 0xBF000000
    fake.process(PID, {0x400000: make_entry(present=True, pfn=0x77)})
    reader = pagemap.ProcessReader(fake.root, PID, fake.page_size)

    def read_raw_32(vpn, count):
        svpfn = vpn % (1 << 32)             # the index, truncated to 32 bits
        if svpfn > 0xFFFFF or svpfn * 4096 >= task:
            return b""
        return b"\0" * 8 * min(count, task // 4096 - svpfn)
    monkeypatch.setattr(reader, "read_raw", read_raw_32)
    assert reader.address_space_end() == task


@pytest.mark.parametrize("page_size, task, most", [
    (4096, 0x7FFFFFFFF000, 10), (4096, 0xFFFFFFFFFFF000, 10), (4096, 1 << 48, 10),
    (65536, 1 << 42, 10), (16384, 1 << 47, 10), (4096, 0xC0000000, 22),
    (4096, 0xBF000000, 22), (4096, 0x5678A000, 22), (4096, 0x123456789000, 60)])
def test_address_space_end_in_few_reads(fake, page_size, task, most):
    """TASK_SIZE found exactly whatever it is; a power of two, or a page below
    one (x86-64, arm64), in a few reads, not one per bit of the address."""
    reader = pagemap.ProcessReader(fake.root, PID, page_size)
    reads = []

    def read_raw(vpn, count):
        reads.append(vpn)
        return b"\0" * 8 * max(0, min(count, task // page_size - vpn))
    reader.read_raw = read_raw
    assert reader.address_space_end() == task
    assert len(reads) <= most


def test_a_32_bit_kernel_never_wraps_an_address_round(tmp_path, run, monkeypatch):
    """From 2^32 pages on (2^44 with 4K pages) a 32-bit kernel's truncated index
    reads the entries of page 0 on again: such an address is beyond the address
    space, not the page 2^44 below it (armhf: TASK_SIZE 0xbf000000)."""
    fake = FakeProc(tmp_path / "proc", task_size=0xBF000000)
    fake.process(PID, {0x400000: make_entry(present=True, pfn=0x77)},
                 maps="00400000-00402000 rw-p 00000000 00:00 0\n")
    real = pagemap.pread_full

    def pread_32(fd, size, offset):
        svpfn = offset // 8 % (1 << 32)     # the index, truncated to 32 bits
        return b"" if svpfn > 0xFFFFF else real(fd, size, svpfn * 8)
    monkeypatch.setattr(pagemap, "pread_full", pread_32)
    code, out, _ = run(argv(fake, "--json", PID, "400000", "100000400000", "100000400000+2000"))
    doc = json.loads(out)
    assert [r["status"] for r in doc["results"]] == ["present", "beyond-address-space"]
    assert [r["status"] for r in doc["ranges"][0]["runs"]] == ["beyond-address-space"]


@pytest.mark.parametrize("maps", ["", DEFAULT_MAPS])
def test_summary_json_streams_the_document_json_would_write(fake, run, maps):
    # A mapping at a time (bounded memory), yet the very text of one json.dumps.
    fake.process(PID, {0x600000: make_entry(present=True, pfn=0x8C445)}, maps=maps)
    code, out, _ = run(argv(fake, PID, "--json"))
    doc = json.loads(out)
    assert code == 0 and out == json.dumps(doc, indent=2, sort_keys=True) + "\n"
    assert doc["total"]["mappings"] == len(doc["mappings"]) == len(maps.splitlines())
