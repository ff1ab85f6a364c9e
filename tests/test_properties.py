"""Property tests: decoding is total and consistent; no argument string ever
produces a traceback."""

import os
import sys

import pytest

hypothesis = pytest.importorskip("hypothesis")
from conftest import FakeProc, make_entry  # noqa: E402
from hypothesis import HealthCheck, assume, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import pagemap  # noqa: E402

# Inside the emulated guests of tests/targets a CPU is 10-50 times slower.
settings.register_profile("emulated", deadline=None, suppress_health_check=[HealthCheck.too_slow])
if os.environ.get("PAGEMAP_EMULATED"):
    settings.load_profile("emulated")

U64 = st.integers(min_value=0, max_value=2 ** 64 - 1)
KERNELS = st.sampled_from([None, (2, 6), (3, 10), (3, 14), (4, 2), (5, 12), (5, 13),
                           (6, 14), (6, 15), (6, 18)])


@given(U64, KERNELS)
def test_decode_is_total_and_consistent(raw, kernel):
    e = pagemap.decode_entry(raw, kernel)
    assert e.raw == raw
    assert e.present == bool(raw >> 63)
    assert (e.pfn is not None) == e.present
    if e.present:
        assert 0 <= e.pfn < 2 ** 55 and e.pfn == raw & (2 ** 55 - 1)
    assert not (e.guard and e.swapped)
    if e.swapped and raw & (2 ** 55 - 1):
        assert 0 <= e.swap_type < 32 and (e.swap_offset << 5 | e.swap_type) == raw & (2 ** 55 - 1)
    elif e.swapped:
        assert e.swap_type is None and e.swap_offset is None    # hidden (4.2+)
    if e.page_shift is not None:
        assert not (e.soft_dirty or e.exclusive or e.uffd_wp or e.guard)
    status, note, paddr = pagemap.entry_status(e, 4096, 0x123, [])
    assert status in pagemap.STATUSES
    assert (paddr is not None) == (status == "present")


@given(st.integers(min_value=0, max_value=2 ** 55 - 1), st.booleans(), st.booleans(),
       st.booleans())
def test_present_round_trip(pfn, excl, sd, fs):
    e = pagemap.decode_entry(make_entry(present=True, pfn=pfn, exclusive=excl,
                                        soft_dirty=sd, file_shared=fs))
    assert (e.pfn, e.exclusive, e.soft_dirty, e.file_shared) == (pfn, excl, sd, fs)


@given(st.integers(min_value=0, max_value=30), st.integers(min_value=0, max_value=2 ** 50 - 1))
def test_swap_round_trip(swap_type, offset):
    e = pagemap.decode_entry(make_entry(swapped=True, swap_type=swap_type, swap_offset=offset))
    hidden = swap_type == offset == 0
    assert (e.swap_type, e.swap_offset) == ((None, None) if hidden else (swap_type, offset))


# Runs of lanes from a few values, each may differ from the next in any byte.
@given(st.lists(st.tuples(st.sampled_from([0, 1, 0x400, 0x400 << 8, 1 << 63, 0xFF00]) | U64,
                          st.integers(min_value=1, max_value=9)), max_size=20))
def test_add_flag_counts_counts_every_lane(runs):
    import collections
    import struct
    values = [value for value, length in runs for _ in range(length)] * 4  # groups recur
    buf = struct.pack("<%dQ" % len(values), *values)
    saved = pagemap.PHYSICAL_BLOCK, pagemap.PHYSICAL_GROUPS
    try:
        for block, most in ((2, 1), (3, 2), (8, 100), saved):
            pagemap.PHYSICAL_BLOCK, pagemap.PHYSICAL_GROUPS = block, most
            groups = collections.Counter()  # type: collections.Counter
            for size in (40, len(buf) or 1):   # as reads of 5 lanes, and as one read
                counts = collections.Counter()  # type: collections.Counter
                for part in range(0, len(buf), size):
                    pagemap.add_flag_counts(counts, groups, buf[part:part + size])
                pagemap.flush_groups(counts, groups)
                assert counts == collections.Counter(values)
    finally:
        pagemap.PHYSICAL_BLOCK, pagemap.PHYSICAL_GROUPS = saved


@given(st.text(max_size=40))
def test_parse_address_never_crashes(text):
    try:
        value = pagemap.parse_address(text)
    except pagemap.UsageError:
        return
    assert 0 <= value < 2 ** 64


HUGE = "1" * 5000      # past Python 3.11's 4300-digit int() limit


@given(st.text(max_size=30) | st.sampled_from([HUGE, HUGE + ".1", "6." + HUGE, "04096", "nan",
                                               "-inf", "1e999", "0x" + HUGE, "\u00b2"]))
def test_option_values_are_parsed_or_explained(text):
    """No type= function lets argparse say 'invalid parse_x value'."""
    for action in pagemap.build_parser()._actions:
        if action.type is not None:
            try:
                action.type(text)
            except pagemap.UsageError as exc:
                assert str(exc).startswith("invalid ")
ARG = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["self", "4242", "0", "-1", "--json", "-v", "--decode", "0x", "0x600000",
                     "ffffffffff600000", "--page-size", "16k", "--kernel-version", "3.10",
                     "--byteorder", "big", "1" * 30, "--flags", "--match", "anon,~ksm",
                     "thpp", "--phys", "--physical", "--each", "--picture", "[heap]",
                     "0x600000+4k", "600000-500000", "cat", "10+1G", "1000-2000", "--check",
                     "--capture", "snap.zip", "--from", "--written", "--clear-soft-dirty",
                     "--times", "2", "-", "from.zip", "0-ffffffffffffffff", "0+128T", HUGE,
                     "0+%sk" % HUGE, HUGE + ".1", "04096", "\u00b2", "0x10000000000000000"]),
)
WRITES = ("open", "os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.symlink", "os.link",
          "os.truncate", "os.chmod", "os.chown", "os.mknod", "os.mkfifo", "shutil.rmtree")
SANDBOX = []        # (directory, violations) while the fuzz runs


def confine(event, args):
    """An audit hook: stop and record any write outside the sandbox."""
    if not SANDBOX or event not in WRITES or (event == "open" and not args[2] & (
            os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND)):
        return
    top, violations = SANDBOX[0]
    for path in args[:2] if event == "os.rename" else args[:1]:
        if isinstance(path, (str, bytes)):
            full = os.path.realpath(os.fsdecode(path))     # /proc/self/fd/N: the held dir
            if not full.startswith(os.path.realpath(top) + os.sep) and full != os.devnull:
                violations.append((event, full))
                raise RuntimeError("write outside the sandbox: %s %s" % (event, full))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    top = tmp_path_factory.mktemp("grammar")
    fake = FakeProc(top / "proc")
    fake.process("4242", {0x600000: make_entry(present=True, pfn=5)})
    fake.process("self", {0x600000: make_entry(present=True, pfn=6)})
    fake.kpage("kpageflags", {5: 0x828, 6: 1 << 22}, pfns=64)
    fake.kpage("kpagecount", {5: 1, 6: 2}, pfns=64)
    for name in ("cwd", "tmp"):
        (top / name).mkdir()
    assert pagemap.main(["--proc-root", fake.root, "4242", "--capture",
                         str(top / "cwd" / "from.zip")]) == 0
    if hasattr(sys, "addaudithook"):          # Python 3.8+
        sys.addaudithook(confine)
    return fake


def files(top):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(top) for f in fs)


@settings(max_examples=200, deadline=None)
@given(st.lists(ARG, max_size=6))
@example(["--capture", "0", "self"])      # written through /proc/self/fd/N/. (held dir)
def test_any_arguments_give_an_answer_or_one_error_and_write_nowhere_else(tree, args):
    """Every argument string: a documented exit code, no traceback, one error line;
    files only where named (--capture), temp files only in TMPDIR and removed."""
    import io
    import tempfile
    assume("--each" not in args or not {"10+1G", "0+128T", "0-ffffffffffffffff"} & set(args))
    top = os.path.dirname(tree.root)
    before = files(top)
    out, err = io.TextIOWrapper(io.BytesIO()), io.StringIO()
    saved = sys.stdout, sys.stderr, tempfile.tempdir, os.getcwd()
    sys.stdout, sys.stderr, tempfile.tempdir = out, err, os.path.join(top, "tmp")
    os.chdir(os.path.join(top, "cwd"))        # where --capture may write
    SANDBOX.append((top, []))
    try:
        code = pagemap.main(["--proc-root", tree.root] + args)
    finally:
        sys.stdout, sys.stderr, tempfile.tempdir = saved[:3]
        os.chdir(saved[3])
        violations = SANDBOX.pop()[1]
    assert violations == []
    assert code in (0, 1, 2, 3, 4, 5, 6)
    lines = err.getvalue().splitlines()
    assert "Traceback" not in err.getvalue() and all(x.startswith("pagemap: ") for x in lines)
    if code >= 2:
        assert len([x for x in lines if x.startswith("pagemap: error:")]) == 1, lines
    assert os.listdir(os.path.join(top, "tmp")) == []
    made = set(os.path.normpath(os.path.join(top, "cwd", name))
               for option, name in zip(args, args[1:]) if option == "--capture")
    assert set(files(top)) - set(before) <= made | {
        os.path.join(top, "proc", "4242", "clear_refs"),
        os.path.join(top, "proc", "self", "clear_refs")}
    for path in made - set(before):
        if os.path.isfile(path):
            os.remove(path)
