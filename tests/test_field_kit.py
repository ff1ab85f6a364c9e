"""The field kit: the doctor (--check), captures (--capture/--from) and write
tracking (--clear-soft-dirty, --written, --watch), on fake trees."""

import json
import os

import pytest
from conftest import make_entry

import pagemap

PID = "4242"
PAGE = 4096
SELF_MAPS = "7f0000000000-7f0000004000 rw-p 00000000 00:00 0\n"


def argv(fake, *args):
    return ["--proc-root", fake.root, "--page-size", str(fake.page_size)] + list(args)


def doctor(run, fake):
    code, out, err = run(argv(fake, "--json", "--check"))
    assert (err == "") == (code == 0) and "Traceback" not in err
    if code:
        assert len(err.splitlines()) == 1 and "does not work here" in err
    doc = json.loads(out)
    return code, dict((c["name"], (c["status"], c["detail"])) for c in doc["checks"])


def test_doctor_healthy_tree(fake, run):
    fake.process("self", {0x7F0000000000: make_entry(present=True, pfn=0x42)}, maps=SELF_MAPS,
                 smaps="7f0000000000-7f0000004000 rw-p 00000000 00:00 0\nVmFlags: rd wr sd\n")
    fake.kpage("kpageflags", {0x42: 0x828}, pfns=0x100)
    fake.kpage("kpagecount", {0x42: 1}, pfns=0x100)
    fake.write("swaps", "Filename Type Size Used Priority\n/swapfile file 65532 0 -2\n")
    code, checks = doctor(run, fake)
    assert code == 0
    assert checks["pagemap"][0] == "ok" and checks["pfn"] == ("ok", "visible")
    assert checks["kpageflags"][0] == "ok" and checks["kpagecgroup"][0] == "warn"
    assert "CONFIG_MEMCG" in checks["kpagecgroup"][1]
    assert checks["soft-dirty"][0] == "ok"
    assert checks["pagemap_scan"][0] == "warn" and "Linux < 6.7" in checks["pagemap_scan"][1]
    assert "/swapfile" in checks["swap"][1]
    assert "guard 58" in checks["kernel"][1]


def test_doctor_says_why_huge_pages_are_missing(fake, run):
    fake.process("self", {0x7F0000000000: make_entry(present=True, pfn=0x42)}, maps=SELF_MAPS)
    code, checks = doctor(run, fake)
    assert checks["thp"][1] == "not available: kernel without CONFIG_TRANSPARENT_HUGEPAGE"
    assert checks["hugetlb"][1] == "no hugetlb pool: kernel without CONFIG_HUGETLBFS"
    # s390x under QEMU's TCG: the kernel has both, the CPU lacks EDAT-1.
    fake.write("cpuinfo", "vendor_id       : IBM/S390\nfeatures\t: esan3 zarch stfle msa "
               "ldisp eimm dfp etf3eh highgprs vx\n")
    code, checks = doctor(run, fake)
    assert checks["thp"] == ("info", "not available: the CPU lacks EDAT-1 (s390x), which "
                             "huge pages need")
    assert "EDAT-1" in checks["hugetlb"][1] and "CONFIG" not in checks["hugetlb"][1]
    fake.write("cpuinfo", "features\t: esan3 zarch stfle msa ldisp eimm dfp edat etf3eh\n")
    assert "CONFIG_HUGETLBFS" in doctor(run, fake)[1]["hugetlb"][1]


def test_doctor_explains_ksm_on_every_anonymous_page(fake, run):
    fake.process("self", {0x7F0000000000: make_entry(present=True, pfn=0x42)}, maps=SELF_MAPS)
    fake.kpage("kpageflags", {0x42: 0x5828}, pfns=0x100)       # ANON, no KSM: no finding
    assert "ksm" not in doctor(run, fake)[1]
    fake.kpage("kpageflags", {0x42: 0x205828}, pfns=0x100)     # ANON and KSM (Linux 6.12)
    status, detail = doctor(run, fake)[1]["ksm"]
    assert status == "warn" and "Linux 6.10+" in detail and "every anonymous page" in detail


def test_doctor_without_pagemap(fake, run):
    d = fake.process("self", {}, maps=SELF_MAPS)
    os.remove(os.path.join(d, "pagemap"))
    code, checks = doctor(run, fake)
    assert code == 5 and checks["pagemap"][0] == "fail"
    assert "CONFIG_PROC_PAGE_MONITOR" in checks["pagemap"][1]
    code, out, _ = run(argv(fake, "--check"))
    assert code == 5 and "result: the basic lookup does not work here" in out


def test_doctor_hidden_pfns(fake, run):
    fake.reader(privileged=False)
    fake.process("self", {0x7F0000000000: make_entry(present=True, pfn=0)}, maps=SELF_MAPS)
    code, checks = doctor(run, fake)
    assert code == 0 and checks["pfn"][0] == "warn" and "CAP_SYS_ADMIN" in checks["pfn"][1]
    assert "kpageflags missing" in checks["kpageflags"][1]
    assert checks["soft-dirty"][0] == "warn"


def test_doctor_kpageflags_without_pfns(fake, run):
    """Root in a user namespace reads kpageflags, but its pagemap shows no PFN to
    look up: only --physical works, not --flags or --phys."""
    fake.reader(privileged=True, uid_map="0 100000 65536\n")
    fake.process("self", {0x7F0000000000: make_entry(present=True, pfn=0)}, maps=SELF_MAPS)
    fake.kpage("kpageflags", {0x42: 0x828}, pfns=0x100)
    code, checks = doctor(run, fake)
    assert code == 0 and checks["kpageflags"][0] == "ok"
    assert "--phys " not in checks["kpageflags"][1] and "--flags" not in checks["kpageflags"][1]
    assert "--physical" in checks["kpageflags"][1]


def test_doctor_old_kernel_page_shift(fake, run):
    fake.kernel("3.10.0-1160.el7.x86_64")
    fake.process("self", {0x7F0000000000: 0xA600000000036AFB}, maps=SELF_MAPS)
    code, checks = doctor(run, fake)
    assert code == 0 and checks["layout"][0] == "info" and "(12)" in checks["layout"][1]
    assert "page shift in 55-60" in checks["kernel"][1] and "guard" not in checks["kernel"][1]


@pytest.mark.parametrize("maps", [SELF_MAPS, "garbage\n"])
def test_doctor_page_not_present(fake, run, maps):
    fake.process("self", {}, maps=maps)
    code, checks = doctor(run, fake)
    assert code == 5 and "does not read as present" in checks["pagemap"][1]


def test_doctor_soft_dirty_when_clear_refs_is_refused(monkeypatch):
    def refused(proc_root, pid):
        raise pagemap.PermissionDeniedError("/proc/self/clear_refs: permission denied")
    monkeypatch.setattr(pagemap, "clear_soft_dirty", refused)
    assert pagemap.check_soft_dirty("/proc", PAGE) == (
        "soft-dirty", "warn", "/proc/self/clear_refs: permission denied")


def test_pagemap_bits_for():
    assert pagemap.pagemap_bits_for((4, 1)).endswith("until the first clear_refs")
    assert "exclusive 56" in pagemap.pagemap_bits_for((4, 2))
    assert "unknown" in pagemap.pagemap_bits_for(None)


# --- --capture / --from ------------------------------------------------------------

ANON = 0x7F0000000000


def rich_tree(fake):
    """A process with present, swapped, file and huge pages, kpage values and swaps."""
    fake.swaps("/swapfile")
    entries = {ANON + i * PAGE: make_entry(present=True, pfn=0x500 + i, exclusive=True)
               for i in range(5)}
    entries[ANON + 9 * PAGE] = make_entry(swapped=True, swap_offset=0x33, soft_dirty=True)
    entries[0x400000] = make_entry(present=True, pfn=0x77, file_shared=True)
    entries[0x600000] = make_entry(present=True, pfn=0x90)
    fake.process(PID, entries)
    fake.kpage("kpageflags", dict((0x500 + i, 0x5828) for i in range(5)), pfns=0x1000)
    fake.kpage("kpagecount", dict((0x500 + i, 1 + i % 2) for i in range(5)), pfns=0x1000)
    return fake


VIEWS = [["--json"], ["--json", "--flags"], ["--json", "%x+10000" % ANON],
         ["--json", "--flags", "[heap]", "cat"], ["--json", "--each", "%x+3000" % ANON],
         ["--picture"], [], ["--json", hex(ANON + 5), "0x10", "ffffffffff600000"]]


def test_capture_then_from_is_identical(fake, run, tmp_path):
    rich_tree(fake)
    snap = str(tmp_path / "snap.zip")
    code, out, err = run(argv(fake, PID, "--capture", snap))
    assert code == 0 and err == "" and "captured PID 4242" in out
    assert os.path.exists(snap) and not os.path.exists(snap + ".partial")
    for view in VIEWS:
        code, out, err = run(argv(fake, PID, *view))
        assert run(["--from", snap] + view) == (code, out, err.replace(fake.root, snap + ":/proc"))


def test_snapshot_of_an_unprivileged_capture_says_what_it_lacks(fake, run, tmp_path):
    rich_tree(fake)
    fake.reader(privileged=False)
    os.remove(os.path.join(fake.root, "kpageflags"))
    snap = str(tmp_path / "snap.zip")
    assert run(argv(fake, PID, "--capture", snap))[0] == 0
    code, out, err = run(["--from", snap, "--flags", hex(ANON)])
    assert code == 0 and "map count 1" in out and len(err.splitlines()) == 1
    assert (snap + ":/proc/kpageflags not in the snapshot: its capture could not read it; "
            "capture it again as root") in err


def test_snapshot_keeps_the_numa_nodes_of_its_machine(fake, run, tmp_path):
    rich_tree(fake)
    fake.sysfs("devices/system/memory/block_size_bytes", "8000000\n")    # 128 MiB blocks
    fake.sysfs("devices/system/node/node1/memory0")
    snap = str(tmp_path / "snap.zip")
    assert run(argv(fake, PID, "--capture", snap))[0] == 0
    code, out, _ = run(["--from", snap, "--json", "--flags", hex(ANON)])
    assert json.loads(out)["results"][0]["page"]["node"] == 1


def test_snapshot_keeps_the_cgroup_paths_its_capture_found(fake, run, tmp_path):
    # The board resolves each page's cgroup inode; one it cannot (a removed cgroup) stays bare.
    rich_tree(fake)
    cgroup = fake.sysfs("fs/cgroup/app.slice")
    inode = os.stat(cgroup).st_ino
    gone = (1 << 40) + 7                          # no directory of the tree has it
    fake.kpage("kpagecgroup", {0x500: inode, 0x501: gone}, pfns=0x1000)
    snap = str(tmp_path / "snap.zip")
    assert run(argv(fake, PID, "--capture", snap))[0] == 0
    code, out, _ = run(["--from", snap, "--json", "--flags", hex(ANON), hex(ANON + PAGE)])
    assert [r["page"]["cgroup"] for r in json.loads(out)["results"]] == [
        {"inode": inode, "path": cgroup}, {"inode": gone, "path": None}]


def test_capture_of_a_process_without_entries(fake, run, tmp_path):
    fake.process("2", {}, maps="", name="kthreadd")   # a kernel thread: no mappings
    snap = str(tmp_path / "snap.zip")
    code, out, err = run(argv(fake, "2", "--capture", snap))
    assert code == 0 and "0 entries stored" in out
    for view in ([], ["--json"]):
        code, out, err = run(argv(fake, "2", *view))
        assert run(["--from", snap] + view) == (code, out, err)


def test_snapshot_is_compact(fake, run, tmp_path):
    rich_tree(fake)
    snap = str(tmp_path / "snap.zip")
    run(argv(fake, PID, "--capture", snap))
    import zipfile
    with zipfile.ZipFile(snap) as z:
        header = json.loads(z.read("header.json").decode())
        assert header["format"] == "pagemap-snapshot" and header["page_size"] == PAGE
        # Blocks with data, cut by the mappings: [anon] 16 pages, cat 1, [heap] 3.
        assert header["entries"] == 16 + 1 + 3
        assert z.getinfo("pagemap.bin").file_size == 20 * 8
    assert os.path.getsize(snap) < 16384


def test_capture_failure_leaves_nothing(fake, run, tmp_path, monkeypatch):
    rich_tree(fake)
    snap = str(tmp_path / "snap.zip")

    def broken(*args):
        raise pagemap.ProcIOError("simulated read failure")
    monkeypatch.setattr(pagemap, "capture_process", broken)
    code, _, err = run(argv(fake, PID, "--capture", snap))
    assert code == 6 and "simulated" in err
    assert sorted(os.listdir(str(tmp_path))) == ["proc"]


@pytest.mark.parametrize("damage,fragment", [
    (lambda b: b[:len(b) // 2], "damaged"),
    (lambda b: b"not a zip at all", "not a readable snapshot"),
    (lambda b: b[:-10] + b"\0" * 10, "damaged"),
])
def test_damaged_snapshot(fake, run, tmp_path, damage, fragment):
    from conftest import assert_one_error
    rich_tree(fake)
    snap = str(tmp_path / "snap.zip")
    run(argv(fake, PID, "--capture", snap))
    with open(snap, "rb") as f:
        data = f.read()
    with open(snap, "wb") as f:
        f.write(damage(data))
    code, out, err = run(["--from", snap])
    assert_one_error(code, err, 6, "snap.zip")
    assert fragment in err or "not a readable snapshot" in err


def rewrite(snap, changes):
    import zipfile
    with zipfile.ZipFile(snap) as z:
        members = dict((n, z.read(n)) for n in z.namelist())
    members.update(changes)
    for name in [n for n, v in members.items() if v is None]:
        del members[name]
    with zipfile.ZipFile(snap, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


@pytest.mark.parametrize("changes,fragment", [
    ({"pagemap.bin": b"\0" * 8}, "pagemap.bin is shorter than its index says"),
    ({"pagemap.idx": b"\0" * 5}, "pagemap.idx is truncated"),
    ({"header.json": None}, "no valid header.json"),
    ({"header.json": b'{"format": "pagemap-snapshot", "version": 99, "pid": 1, '
                     b'"page_size": 4096}'}, "newer than this pagemap.py reads"),
    ({"maps": None}, "has no maps"),
    ({"numa.json": b"{garbage"}, "is damaged (JSONDecodeError"),
    ({"header.json": b'{"format": "pagemap-snapshot", "version": 1, "pid": 1, '
                     b'"page_size": 0}'}, "no valid page_size"),
    ({"header.json": b'{"format": "pagemap-snapshot", "version": 1, "pid": "../x", '
                     b'"page_size": 4096}'}, "no valid pid"),
    ({"header.json": b'{"format": "pagemap-snapshot", "version": 1, "pid": 1, '
                     b'"page_size": 4096, "task_size": "big"}'}, "no valid task_size"),
])
def test_snapshot_contents_checked(fake, run, tmp_path, changes, fragment):
    from conftest import assert_one_error
    rich_tree(fake)
    snap = str(tmp_path / "snap.zip")
    run(argv(fake, PID, "--capture", snap))
    rewrite(snap, changes)
    code, _, err = run(["--from", snap])
    assert_one_error(code, err, 6, fragment)


def test_capture_into_a_missing_directory(fake, run, tmp_path):
    from conftest import assert_one_error
    rich_tree(fake)
    code, _, err = run(argv(fake, PID, "--capture", str(tmp_path / "no" / "such" / "x.zip")))
    assert_one_error(code, err, 6, "cannot write the snapshot", "must exist")


def test_capture_usage(fake, run, tmp_path):
    rich_tree(fake)
    assert run(argv(fake, PID, "600000", "--capture", str(tmp_path / "x.zip")))[0] == 2
    assert run(argv(fake, "--from", "a.zip", "--capture", "b.zip"))[0] == 2


def test_from_with_capture_is_refused(run):
    # (argv's --page-size is refused first, above.)
    code, _, err = run(["--from", "a.zip", "--capture", "b.zip"])
    assert code == 2 and "--from reads a snapshot; --capture works on the live system" in err


# --- write tracking ------------------------------------------------------------------

SOFT_DIRTY_SMAPS = "7f0000000000-7f0000004000 rw-p 00000000 00:00 0\nVmFlags: rd wr sd\n"


def written_tree(fake, soft_dirty=True):
    fake.process("self", {0x7F0000000000: make_entry(present=True, pfn=1)}, maps=SELF_MAPS,
                 smaps=SOFT_DIRTY_SMAPS if soft_dirty else None)
    entries = {ANON + i * PAGE: make_entry(present=True, pfn=0x500 + i, soft_dirty=i in (1, 2))
               for i in range(5)}
    entries[ANON + 7 * PAGE] = make_entry(swapped=True, swap_offset=9, soft_dirty=True)
    entries[ANON + 8 * PAGE] = 1 << 55          # soft-dirty hole: not a written page
    fake.process(PID, entries)
    fake.write(PID + "/clear_refs", "")         # the kernel's is write-only; ours a file


def test_written_ranges_and_summary(fake, run):
    written_tree(fake)
    code, out, err = run(argv(fake, "--json", "--written", PID, "%x+10000" % ANON))
    assert code == 0, err
    runs = json.loads(out)["ranges"][0]["runs"]
    assert [((r["start"] - ANON) // PAGE, r["pages"], r["status"]) for r in runs] == [
        (1, 2, "present"), (7, 1, "swapped")]
    code, out, _ = run(argv(fake, "--json", "--written", PID))
    row = [m for m in json.loads(out)["mappings"] if m["start"] == ANON][0]
    assert (row["resident"], row["swapped"], row["soft_dirty"]) == (2 * PAGE, PAGE, 3 * PAGE)


def test_written_refused_without_soft_dirty(fake, run):
    from conftest import assert_one_error
    written_tree(fake, soft_dirty=False)
    code, _, err = run(argv(fake, "--written", PID))
    assert_one_error(code, err, 5, "cannot track writes here")
    code, _, err = run(argv(fake, "--clear-soft-dirty", PID))
    assert_one_error(code, err, 5, "cannot track writes here")


@pytest.mark.parametrize("soft_dirty", [True, False])
def test_written_on_a_snapshot_follows_the_capturing_kernel(fake, run, tmp_path, soft_dirty):
    """The snapshot says whether its kernel tracked writes; --written on the desk
    believes it, not the desk's own kernel."""
    from conftest import assert_one_error
    written_tree(fake, soft_dirty)
    snap = str(tmp_path / "snap.zip")
    assert run(argv(fake, PID, "--capture", snap))[0] == 0
    code, out, err = run(["--json", "--written", "--from", snap, "%x+10000" % ANON])
    if not soft_dirty:
        assert_one_error(code, err, 5, "cannot track writes here")
        return
    assert code == 0, err
    runs = json.loads(out)["ranges"][0]["runs"]
    assert [((r["start"] - ANON) // PAGE, r["pages"]) for r in runs] == [(1, 2), (7, 1)]


def test_clear_soft_dirty_writes_clear_refs(fake, run):
    written_tree(fake)
    code, out, err = run(argv(fake, "--clear-soft-dirty", PID))
    assert code == 0 and err == ""
    assert "cleared the soft-dirty bits of PID 4242" in out
    with open(os.path.join(fake.root, PID, "clear_refs")) as f:
        assert f.read() == "4"


def test_clear_soft_dirty_permission(fake, run, monkeypatch):
    import errno

    from conftest import assert_one_error
    written_tree(fake)
    real = pagemap._open

    def guarded(path, flags=os.O_RDONLY):
        if path.endswith("clear_refs") and "4242" in path:
            raise PermissionError(errno.EACCES, "denied")
        return real(path, flags)
    monkeypatch.setattr(pagemap, "_open", guarded)
    code, _, err = run(argv(fake, "--clear-soft-dirty", PID))
    assert_one_error(code, err, 4, "clear_refs", "permission denied")


@pytest.mark.parametrize("code, pid_dir, error, message", [
    ("EPERM", True, "PermissionDeniedError", "permission denied (clearing soft-dirty bits "
     "needs root or the process's owner)"),
    ("ENOENT", True, "UnsupportedError", "no such file: kernel without "
     "CONFIG_PROC_PAGE_MONITOR"),
    ("EINVAL", True, "UnsupportedError", "the kernel refused '4': soft-dirty needs Linux 3.11+"),
    ("EIO", True, "ProcIOError", "cannot write: boom"),
    ("ENOENT", False, "NoProcessError", None),
])
def test_clear_soft_dirty_errors(fake, monkeypatch, code, pid_dir, error, message):
    import errno
    if pid_dir:
        written_tree(fake)

    def refuse(path, flags=os.O_RDONLY):
        raise OSError(getattr(errno, code), "boom")
    monkeypatch.setattr(pagemap, "_open", refuse)
    with pytest.raises(pagemap.PagemapError) as caught:
        pagemap.clear_soft_dirty(fake.root, PID)
    assert type(caught.value).__name__ == error
    path = os.path.join(fake.root, PID, "clear_refs")
    assert str(caught.value) == ("%s: %s" % (path, message) if message else
                                 "no process with PID 4242 (it may have exited)")


def test_watch_prints_what_changed(fake, run, monkeypatch):
    import time
    written_tree(fake)
    rounds = []

    def sleep(seconds):
        rounds.append(seconds)
        if len(rounds) == 1:            # between the first two rounds the process works
            written_tree(fake)
            fake.process(PID, {ANON + i * PAGE: make_entry(present=True, pfn=0x600 + i,
                                                           soft_dirty=True) for i in range(9)})
    monkeypatch.setattr(time, "sleep", sleep)
    code, out, err = run(argv(fake, "--watch", "0.5", "--times", "2", PID))
    assert code == 0 and err == "" and rounds == [0.5, 0.5]
    lines = out.splitlines()
    assert lines[0].startswith("watching PID 4242 every 0.5s: 5 present, 1 swapped, 3 written")
    assert "7f0000000000-7f0000010000 [anonymous]: +4 present (now 9), -1 swapped (now 0), " \
           "+6 written (now 9)" in lines[1]
    assert lines[2].endswith("no change")


def test_watch_rounds_name_new_and_gone_mappings():
    before = [(1, "heap", (1, 0, 0)), (2, "libc", (2, 0, 0)), (3, "stack", (5, 1, 1))]
    after = [(1, "heap", (3, 0, 1)), (3, "stack", (5, 1, 1)), (4, "mmap", (4, 0, 0))]
    assert list(pagemap.watch_rounds(before, after)) == [
        "heap: +2 present (now 3), +1 written (now 1)", "mmap: new mapping, 4 present",
        "libc: gone"]


def test_watch_ranges_json(fake, run, monkeypatch):
    import time
    written_tree(fake)
    monkeypatch.setattr(time, "sleep", lambda s: None)
    code, out, _ = run(argv(fake, "--json", "--watch", "1", "--times", "1", PID,
                            "%x+2000" % ANON))
    head, first = map(json.loads, out.splitlines())     # JSON lines, the headline too
    assert code == 0 and first["changes"] == []
    assert head == {"pid": 4242, "interval": 1, "present": 2, "swapped": 0, "written": 1}


def test_watch_of_a_process_that_became_a_zombie(fake, run, monkeypatch):
    import time

    from conftest import assert_one_error
    written_tree(fake)
    monkeypatch.setattr(time, "sleep", lambda s: fake.process(PID, {}, maps="", state="Z"))
    code, out, err = run(argv(fake, "--watch", "1", "--times", "1", PID))
    assert_one_error(code, err, 3, "4242", "zombie")
    assert out.startswith("watching PID 4242 every 1s: 5 present")


@pytest.mark.parametrize("args", [["--watch", "0"], ["--watch", "x"], ["--watch", "1",
                                                                       "--times", "0"]])
def test_watch_usage(fake, run, args):
    written_tree(fake)
    assert run(argv(fake, PID, *args))[0] == 2


def test_capture_of_a_process_that_exits_midway(fake, run, tmp_path, monkeypatch):
    import shutil

    from conftest import assert_one_error
    rich_tree(fake)
    d = os.path.join(fake.root, PID)
    snap = str(tmp_path / "snap.zip")
    real = os.pread

    def vanish(fd, n, off):
        if off == ANON // PAGE * 8 and n > 8:     # the walk reaching [anonymous]
            if os.path.isdir(d):
                shutil.rmtree(d)
            return b""
        return real(fd, n, off)
    monkeypatch.setattr(pagemap.os, "pread", vanish)
    code, _, err = run(argv(fake, PID, "--capture", snap))
    assert_one_error(code, err, 3, "4242")
    assert not os.path.exists(snap) and not os.path.exists(snap + ".partial")


def test_watch_says_written_is_not_tracked(fake, run, monkeypatch):
    # Without soft-dirty tracking (--written refuses there) "0 written" would be no answer.
    import time
    written_tree(fake, soft_dirty=False)
    monkeypatch.setattr(time, "sleep", lambda s: None)
    code, out, err = run(argv(fake, "--watch", "1", "--times", "1", PID))
    assert code == 0 and out.startswith("watching PID 4242"), err
    assert err.startswith("pagemap: warning: writes are not tracked") and "'sd'" in err, err
    assert len(err.splitlines()) == 1


def test_watch_names_a_selector_that_matches_nothing(fake, run, monkeypatch):
    import time
    written_tree(fake)
    monkeypatch.setattr(time, "sleep", lambda s: None)
    code, out, err = run(argv(fake, "--watch", "1", "--times", "1", PID, "libnothere.so"))
    assert code == 1 and "'libnothere.so' matches no mapping" in err and out == ""


@pytest.mark.parametrize("kind,fragment", [
    ("fifo", "not a regular file"), ("device", "not a regular file"),
    ("directory", "Is a directory")])
def test_a_snapshot_that_is_no_regular_file_is_one_error(run, tmp_path, kind, fragment):
    # zipfile reads a file without an end to find its directory (/dev/zero: until
    # memory runs out) and blocks on a FIFO with no writer.
    from conftest import assert_one_error
    path = str(tmp_path / "snap")
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path = "/dev/zero"
    else:
        os.mkdir(path)
    code, _, err = run(["--from", path])
    assert_one_error(code, err, 6, path, fragment)
