"""Property tests: decoding is total and consistent; no argument string ever
produces a traceback."""

import os

import pytest

hypothesis = pytest.importorskip("hypothesis")
from conftest import FakeProc, make_entry  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import pagemap  # noqa: E402

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
    status, note, paddr = pagemap.entry_status(e, 4096, 0x123, pagemap.Privilege(None, None), [])
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


@given(st.text(max_size=40))
def test_parse_address_never_crashes(text):
    try:
        value = pagemap.parse_address(text)
    except pagemap.UsageError:
        return
    assert 0 <= value < 2 ** 64


ARG = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["self", "4242", "0", "-1", "--json", "-v", "--decode", "0x", "0x600000",
                     "ffffffffff600000", "--page-size", "16k", "--kernel-version", "3.10",
                     "--byteorder", "big", "1" * 30, "--flags", "--match", "anon,~ksm",
                     "thpp", "--phys", "--physical", "--each", "--picture", "[heap]",
                     "0x600000+4k", "600000-500000", "cat", "10+1G", "1000-2000", "--check",
                     "--capture", "snap.zip", "--from", "--written", "--clear-soft-dirty",
                     "--times", "2"]),
)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    fake = FakeProc(tmp_path_factory.mktemp("p") / "proc")
    fake.process("4242", {0x600000: make_entry(present=True, pfn=5)})
    fake.process("self", {0x600000: make_entry(present=True, pfn=6)})
    fake.kpage("kpageflags", {5: 0x828, 6: 1 << 22}, pfns=64)
    fake.kpage("kpagecount", {5: 1, 6: 2}, pfns=64)
    return fake


@settings(max_examples=400, deadline=None)
@given(st.lists(ARG, max_size=6))
def test_no_argument_string_gives_a_traceback(tree, args):
    import io
    import sys
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdout, sys.stderr
    cwd = os.getcwd()
    sys.stdout, sys.stderr = out, err
    os.chdir(os.path.dirname(tree.root))          # where --capture may write
    try:
        code = pagemap.main(["--proc-root", tree.root] + args)
    finally:
        sys.stdout, sys.stderr = saved
        os.chdir(cwd)
    assert code in (0, 1, 2, 3, 4, 5, 6)
    assert "Traceback" not in err.getvalue()
    if code >= 2:
        errors = [x for x in err.getvalue().splitlines() if x.startswith("pagemap: error:")]
        assert len(errors) == 1
