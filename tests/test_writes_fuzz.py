"""Fuzz of snapshot contents: any snapshot is an answer or one error line, and
--from leaves nothing behind (hypothesis only: the rest of test_writes.py runs
where hypothesis is missing, as on the foreign Pythons)."""

import json
import os
import zipfile

import pytest
from conftest import assert_one_error
from test_field_kit import PID, argv, rich_tree
from test_writes import tree

import pagemap

# --- fuzz: any snapshot content is an answer or one error line, and leaves nothing -------

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

JSONS = st.recursive(st.none() | st.booleans() | st.integers(min_value=-(1 << 70),
                                                              max_value=1 << 70) |
                     st.text(max_size=12) | st.sampled_from([4096, 1 << 47, "BIG"]),
                     lambda inner: st.lists(inner, max_size=3) |
                     st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
HEADER_KEYS = st.sampled_from(["format", "version", "pid", "page_size", "task_size",
                               "entries", "pfns", "kernel", "comm", "scan", "soft_dirty"])
EXTENTS = st.lists(st.tuples(st.integers(0, (1 << 64) - 1), st.integers(0, (1 << 64) - 1)),
                   max_size=4).map(lambda xs: b"".join(pagemap._EXTENT.pack(*x) for x in xs))
NAMES = st.text(alphabet="0123456789./ab\\", min_size=1, max_size=24)
CHANGES = st.one_of(
    st.tuples(st.just("header"), st.dictionaries(HEADER_KEYS, JSONS, max_size=3)),
    st.tuples(st.sampled_from(["pagemap.idx", "kpage.idx", "huge.idx"]), EXTENTS),
    st.tuples(st.sampled_from(["pagemap.bin", "kpageflags.bin", "maps", "smaps", "stat",
                               "swaps", "iomem", "reader_status", "pagemap.idx"]),
              st.sampled_from([b"", b"\0" * 7, b"\xff" * 4096, b"x" * 100000])),
    st.tuples(st.just("numa.json"), st.dictionaries(NAMES, JSONS, max_size=3).map(
        lambda nodes: json.dumps({"block_size": 1 << 27, "nodes": nodes}).encode())),
    st.tuples(st.sampled_from(["maps", "header.json", "pagemap.bin"]), st.none()))

BASE = {}


def base_snapshot(tmp_path_factory):
    if "members" not in BASE:
        from conftest import FakeProc
        where = tmp_path_factory.mktemp("fuzzbase")
        fake = rich_tree(FakeProc(where / "proc"))
        snap = str(where / "base.zip")
        assert pagemap.main(argv(fake, PID, "--capture", snap)) == 0
        with zipfile.ZipFile(snap) as z:
            BASE["members"] = dict((n, z.read(n)) for n in z.namelist())
    return dict(BASE["members"])


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(CHANGES, min_size=1, max_size=3),
       view=st.sampled_from([[], ["--json", "--flags"], ["7f0000000000+10000"], ["--picture"]]))
def test_any_snapshot_is_an_answer_or_one_error(tmp_path_factory, capsys, changes, view):
    members = base_snapshot(tmp_path_factory)
    header = json.loads(members["header.json"].decode())
    for name, value in changes:
        if name == "header":
            header.update(value)
            # "BIG": a number past Python's 4,300-digit conversion limit.
            members["header.json"] = json.dumps(header).replace('"BIG"', "9" * 5000).encode()
        else:
            members[name] = value
    where = tmp_path_factory.mktemp("fuzz")
    snap = str(where / "snap.zip")
    rewrite_members(snap, members)
    temp = where / "tmp"
    temp.mkdir()
    before = tree(where.parent)
    saved = __import__("tempfile").tempdir
    __import__("tempfile").tempdir = str(temp)
    try:
        code = pagemap.main(["--from", snap] + view)
    finally:
        __import__("tempfile").tempdir = saved
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    if code == 6:
        assert_one_error(code, err, 6, "snap.zip")
    else:
        assert code in (0, 1), err
    assert os.listdir(str(temp)) == []
    assert tree(where.parent) == before


def rewrite_members(snap, members):
    with zipfile.ZipFile(snap, "w") as z:
        for name, data in sorted(members.items()):
            if data is not None:
                z.writestr(name, data)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)),
                      min_size=1, max_size=8))
def test_any_damaged_zip_is_an_answer_or_one_error(tmp_path_factory, capsys, flips):
    """Bytes changed in the zip's own structure (its directory and end record)."""
    where = tmp_path_factory.mktemp("flips")
    snap = str(where / "snap.zip")
    rewrite_members(snap, base_snapshot(tmp_path_factory))
    with open(snap, "rb") as f:
        data = bytearray(f.read())
    start = data.index(b"PK\x01\x02")
    for at, value in flips:
        data[start + at % (len(data) - start)] = value
    with open(snap, "wb") as f:
        f.write(bytes(data))
    temp = where / "tmp"
    temp.mkdir()
    saved = __import__("tempfile").tempdir
    __import__("tempfile").tempdir = str(temp)
    try:
        code = pagemap.main(["--from", snap, "--flags"])
    finally:
        __import__("tempfile").tempdir = saved
    out, err = capsys.readouterr()
    if code == 6:
        assert_one_error(code, err, 6, "snap.zip")
    else:
        assert code in (0, 1) and "Traceback" not in err, err
    assert os.listdir(str(temp)) == []
