"""Numbers a user can trust (issue 10): fake trees and pure checks."""

import json
import os
import re

from conftest import ROOT, assert_one_error, make_entry

import pagemap

PID = "4242"
HUGETLB_MAPS = ("7f4000000000-7f4000400000 rw-p 00000000 00:10 77"
                "                         /anon_hugepage (deleted)\n")


def argv(fake, *args):
    return ["--proc-root", fake.root, "--page-size", str(fake.page_size)] + list(args)


def readme():
    with open(os.path.join(ROOT, "README.md")) as f:
        return f.read()


# --- 6: the note of an untouched hugetlb page ----------------------------------

def test_untouched_private_hugetlb_page_note(fake, run):
    fake.process(PID, {}, maps=HUGETLB_MAPS)
    code, out, _ = run(argv(fake, PID, "7f4000001000"))
    assert code == 1 and "not-present" in out
    assert "page cache" not in out and "hugetlb" in out and "zero page" not in out


# --- 9: a hidden PFN is null in every JSON view --------------------------------

def test_hidden_pfn_is_null_in_lookups_and_each(fake, run):
    fake.reader(privileged=False)
    fake.process(PID, {0x600000: make_entry(present=True, pfn=0, exclusive=True)})
    _, out, _ = run(argv(fake, "--json", PID, "600000"))
    assert json.loads(out)["results"][0]["pfn"] is None
    _, out, _ = run(argv(fake, "--json", "--each", PID, "600000+1000"))
    page = json.loads(out)["ranges"][0]["pages"][0]
    assert page["status"] == "pfn-hidden" and page["pfn"] is None
    _, out, _ = run(argv(fake, "--json", PID, "600000+1000"))
    assert json.loads(out)["ranges"][0]["runs"][0]["pfn"] is None


# --- 10: options that describe captured files, on the live system ---------------

def test_page_size_and_byteorder_refused_on_live_proc(run):
    other = "65536" if os.sysconf("SC_PAGE_SIZE") != 65536 else "4096"
    for args in (["self", "--page-size", other], ["--check", "--page-size", other],
                 ["self", "--byteorder", "big" if os.sys.byteorder == "little" else "little"]):
        code, out, err = run(args)
        assert_one_error(code, err, 2, "live", "--proc-root")
        assert out == ""


def test_same_page_size_on_live_proc_is_fine(run):
    code, _, err = run(["self", "--page-size", str(os.sysconf("SC_PAGE_SIZE")),
                        "--byteorder", "native", "0x10"])
    assert code == 1 and "error" not in err


def test_kernel_version_on_live_proc_warns_once(run):
    code, _, err = run(["self", "--kernel-version", "3.10", "0x10", "0x20"])
    warnings = [w for w in err.splitlines() if "--kernel-version" in w]
    assert len(warnings) == 1 and warnings[0].startswith("pagemap: warning:")


def test_decode_keeps_its_options(run):
    code, out, err = run(["--decode", "0x8100000000202573", "--page-size", "16384",
                          "--kernel-version", "3.10"])
    assert code == 0 and err == ""


# --- 15: options that mean nothing together ---------------------------------------

def test_meaningless_combinations_are_refused(run, tmp_path):
    snap = str(tmp_path / "nothing.zip")
    for args in (["--from", snap, "--phys", "0x1000"], ["--from", snap, "--check"],
                 ["--from", snap, "--physical", "1+1"], ["--from", snap, "--watch", "1"],
                 ["--from", snap, "--clear-soft-dirty"], ["self", "--each"],
                 ["self", "--times", "2"], ["self", "0x10", "--picture"],
                 ["self", "--watch", "1", "--match", "anon"], ["self", "--watch", "1", "--flags"],
                 ["self", "--clear-soft-dirty", "[heap]"], ["--physical", "--match", "anon"],
                 ["--decode", "1", "--each"], ["--phys", "0x1000", "--picture"],
                 ["--check", "--watch", "1"], ["--decode", "1", "--capture", snap],
                 ["self", "--match", ""], ["self", "--match", " , "],
                 ["--from", snap, "--page-size", "64k"], ["--from", snap, "--byteorder", "big"],
                 ["--from", snap, "--proc-root", str(tmp_path)], ["self", "--picture", "--match",
                                                                  "anon"],
                 ["self", "--picture", "--written"], ["self", "--each", "0x1000", "2000"],
                 ["self", "-v"], ["self", "-v", "[heap]"], ["self", "-v", "0x1000+4k"],
                 ["--phys", "0x1000", "-v"], ["self", "-v", "--watch", "1", "0x1000"]):
        code, out, err = run(args)
        assert_one_error(code, err, 2)
        assert out == "", args


# --- 16: smaller ones ----------------------------------------------------------------

def test_decode_impossible_value_says_so(run):
    code, out, _ = run(["--decode", "0xffffffffffffffff"])
    assert "note:" in out and "present and swapped" in out


def test_physical_past_the_last_pfn_warns(fake, run):
    fake.kpage("kpageflags", {0: 0x20}, pfns=16)
    code, out, err = run(argv(fake, "--physical", "100+10"))
    assert code == 1 and "warning" in err and "0x10" in err


def test_readme_summary_header_is_the_real_one():
    lines = readme().splitlines()
    shown = [line for line in lines if line.startswith("START ") and "SIZE_KIB" in line]
    assert shown and all(line == pagemap.summary_header(False) for line in shown)


# --- 17, 18: newcomers ---------------------------------------------------------------

def test_readme_test_command_leaves_the_system_python_alone():
    text = readme()
    match = re.search(r"^\$ (python3 -m venv .*pytest -q)$", text, re.M)
    assert match, "no virtual-environment test command in the README"
    command = match.group(1)
    assert "python3 -m pip" not in command
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        assert command in f.read()


def test_distribution_name_is_not_the_other_pypi_project():
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        text = f.read()
    name = re.search(r'^name = "([^"]+)"', text, re.M).group(1)
    assert re.sub(r"[-_.]+", "-", name).lower() != "pagemap"
    assert re.search(r'^pagemap = "pagemap:main"', text, re.M)
    assert "pip install %s" % name in readme()


# --- 7: a hidden swap location is no location ------------------------------------------

def test_hidden_swap_location_is_null_and_said(fake, run):
    fake.reader(privileged=False)
    fake.swaps("/swapfile")
    raw = make_entry(swapped=True, swap_type=0, swap_offset=0, exclusive=True)
    fake.process(PID, {0x600000: raw, 0x601000: raw})
    code, out, err = run(argv(fake, PID, "600000+2000"))
    assert "swap:0:0x0" not in out and "swap:hidden" in out
    assert "swap locations hidden" in err and "CAP_SYS_ADMIN" in err
    _, out, _ = run(argv(fake, "--json", PID, "600000", "600000+2000"))
    doc = json.loads(out)
    res, runs = doc["results"][0], doc["ranges"][0]["runs"]
    assert (res["swap_type"], res["swap_offset"], res["swap_area"]) == (None, None, None)
    assert res["status"] == "swapped" and "hidden" in res["note"]
    assert (runs[0]["swap_type"], runs[0]["swap_offset"]) == (None, None)
    _, out, _ = run(argv(fake, "--json", "--each", PID, "600000+1000"))
    assert json.loads(out)["ranges"][0]["pages"][0]["swap_type"] is None
    # Said once in every text view, with what else reads so: a PTE marker's type 31 is
    # hidden too. The Python API has no warnings: its note says why.
    for args in (["600000", "601000"], ["600000+2000"], ["600000+2000", "--each"]):
        code, out, err = run(argv(fake, PID, *args))
        assert (err + out).count("CAP_SYS_ADMIN") == 1 and "PTE marker" in err, args
    _, out, err = run(argv(fake, PID))      # the summary's SWAP may hold markers too
    assert "8.0 KiB swapped" in out and err.count("PTE marker") == 1
    tr = pagemap.translate(PID, 0x600000, proc_root=fake.root)
    assert "PTE marker" in tr.note and "CAP_SYS_ADMIN" in tr.note


# --- 8: a filter that cannot be decided is an error ------------------------------------

def test_match_on_kpageflags_without_them_is_an_error(fake, run, monkeypatch):
    fake.process(PID, {0x600000: make_entry(present=True, pfn=0x42)})
    for match in ("anon", "~anon", "shared"):
        code, out, err = run(argv(fake, PID, "--match", match))
        assert_one_error(code, err, 5, "kpage", "--match")
        assert out == ""
    code, out, err = run(argv(fake, PID, "--match", "present"))
    assert code == 0 and err == ""
    real = pagemap._open

    def denied(path, flags=os.O_RDONLY):
        if path.endswith("kpageflags"):
            raise PermissionError(13, "Permission denied")
        return real(path, flags)
    monkeypatch.setattr(pagemap, "_open", denied)
    code, out, err = run(argv(fake, PID, "600000+1000", "--match", "anon"))
    assert_one_error(code, err, 4, "kpageflags", "root")


# --- 13: one whole JSON document or nothing ---------------------------------------------

def test_json_of_a_process_that_exits_is_nothing(fake, run, monkeypatch):
    fake.process(PID, {0x600000: make_entry(present=True, pfn=0x42)})
    real = os.pread
    calls = []

    def pread(fd, n, off):
        calls.append(off)
        if len(calls) > 1:
            raise ProcessLookupError(3, "No such process")
        return real(fd, n, off)
    monkeypatch.setattr(pagemap.os, "pread", pread)
    code, out, err = run(argv(fake, "--json", PID, "600000", "[heap]", "7f0000000000+10000"))
    assert code == 3 and out == "" and "Traceback" not in err


# --- 14: a snapshot taken unprivileged --------------------------------------------------

def test_unprivileged_snapshot_advises_capturing_as_root(fake, run, tmp_path):
    fake.reader(privileged=False)
    fake.process(PID, {0x600000: make_entry(present=True, pfn=0, exclusive=True),
                       0x601000: make_entry(swapped=True)})
    snap = str(tmp_path / "user.zip")
    assert run(argv(fake, PID, "--capture", snap))[0] == 0
    code, out, err = run(["--from", snap, "600000", "601000", "--flags"])
    text = out + err
    assert "capture" in text and "as root" in text, text
    assert "run as root" not in text and "CONFIG_PROC_PAGE_MONITOR" not in text


# --- 2: the observer effect, on a fake tree ---------------------------------------------

def test_own_mappings_left_out_of_map_counts(fake, run):
    shared = make_entry(present=True, pfn=0x500, file_shared=True)
    fake.process("self", {0x400000: shared}, maps="00400000-00401000 r-xp 00000000 08:02 "
                 "1177367 /usr/bin/cat\n")
    fake.process(PID, {0x400000: shared})
    fake.kpage("kpageflags", {0x500: 0x828}, pfns=0x1000)
    fake.kpage("kpagecount", {0x500: 2}, pfns=0x1000)
    _, out, _ = run(argv(fake, "--json", "--flags", PID, "400000"))
    assert json.loads(out)["results"][0]["page"]["mapcount"] == 1
    _, out, _ = run(argv(fake, "--json", "--flags", PID))
    row = json.loads(out)["mappings"][0]
    assert (row["shared"], row["uss"], row["pss"]) == (0, 4096, 4096)
    _, out, _ = run(argv(fake, "--json", "--flags", "self", "400000"))
    assert json.loads(out)["results"][0]["page"]["mapcount"] == 2    # pagemap is the target


def test_match_shared_leaves_own_mappings_out(fake, run):
    # Both pages have map count 2; pagemap itself maps the first: only the second
    # is shared, in the summary and the listing.
    fake.process("self", {0x400000: make_entry(present=True, pfn=0x500)},
                 maps="00400000-00401000 r-xp 00000000 08:02 1177367 /usr/bin/cat\n")
    fake.process(PID, {0x600000 + i * 4096: make_entry(present=True, pfn=0x500 + 5 * i)
                       for i in range(2)})
    fake.kpage("kpageflags", {0x500: 0x828, 0x505: 0x828}, pfns=0x1000)
    fake.kpage("kpagecount", {0x500: 2, 0x505: 2}, pfns=0x1000)
    _, out, _ = run(argv(fake, "--json", "--match", "shared", PID))
    assert [m["resident"] for m in json.loads(out)["mappings"] if m["start"] == 0x600000] == [
        4096]
    _, out, _ = run(argv(fake, "--json", "--match", "shared", PID, "600000-602000"))
    assert [r["start"] for r in json.loads(out)["ranges"][0]["runs"]] == [0x601000]


# --- 16: the cgroup of a snapshot's page is the path the board showed ---------------------

def test_snapshot_keeps_cgroup_paths(fake, run, tmp_path):
    group = fake.sysfs("fs/cgroup/app.slice")
    fake.process(PID, {0x600000: make_entry(present=True, pfn=0x42, exclusive=True)})
    fake.kpage("kpageflags", {0x42: 0x5828}, pfns=0x100)
    fake.kpage("kpagecount", {0x42: 1}, pfns=0x100)
    fake.kpage("kpagecgroup", {0x42: os.stat(group).st_ino}, pfns=0x100)
    live = run(argv(fake, PID, "--flags", "600000"))
    assert "cgroup %s\n" % group in live[1]
    snap = str(tmp_path / "s.zip")
    assert run(argv(fake, PID, "--capture", snap))[0] == 0
    assert run(["--from", snap, "--flags", "600000"]) == live
