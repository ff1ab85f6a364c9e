"""Pure decoding and parsing, against golden values worked out by hand."""

import pytest
from conftest import bit, make_entry

import pagemap
from pagemap import UsageError, decode_entry

# --- golden values from the seed post and its comments ---------------------

def test_seed_code_page_on_pre_311_kernel():
    # "Result: 0xa600000000036afb  PFN: 0x36afb" from a 3.x armhf board.
    e = decode_entry(0xA600000000036AFB, (3, 10))
    assert e.present and e.file_shared and not e.swapped
    assert e.pfn == 0x36AFB
    assert e.page_shift == 12          # bits 55-60 = 0b001100
    assert not (e.soft_dirty or e.exclusive or e.uffd_wp or e.guard)


def test_seed_stack_page_not_present_on_pre_311_kernel():
    # "Result: 0x600000000000000  Page not present": only the page shift is set.
    e = decode_entry(0x0600000000000000, (3, 4))
    assert not e.present and not e.swapped
    assert e.pfn is None and e.page_shift == 12


def test_same_value_on_current_kernel_reads_bits_as_flags():
    e = decode_entry(0xA600000000036AFB)
    assert e.page_shift is None
    assert e.uffd_wp and e.guard      # what a naive modern decoder would claim
    assert pagemap.looks_like_old_layout(0xA600000000036AFB)


def test_aarch64_16k_exclusive_page():
    # Comment 13 (aarch64, 16K pages): bytes 73 25 20 00 00 00 00 81.
    raw = 0x8100000000202573
    e = decode_entry(raw)
    assert e.present and e.exclusive and not e.file_shared and not e.soft_dirty
    assert e.pfn == 0x202573
    status, note, paddr = pagemap.entry_status(e, 16384, 0x2BDFC123, None)
    assert status == "present" and note == ""
    assert paddr == 0x8095CC123       # 0x202573 * 0x4000 + 0x123
    assert not pagemap.looks_like_old_layout(raw)


# --- the PFN mask is exactly 55 bits ---------------------------------------

def test_pfn_uses_all_55_bits():
    assert decode_entry(bit(63) | (bit(55) - 1)).pfn == 0x7FFFFFFFFFFFFF
    assert decode_entry(bit(63) | bit(54)).pfn == 0x40000000000000


def test_soft_dirty_is_not_part_of_the_pfn():
    e = decode_entry(bit(63) | bit(55) | 5)
    assert e.pfn == 5 and e.soft_dirty


def test_builder_agrees_with_literal_values():
    assert make_entry(present=True, pfn=0x1234, exclusive=True) == 0x8100000000001234
    assert make_entry(swapped=True, swap_type=1, swap_offset=2) == 0x4000000000000041


# --- swap, guard, markers ---------------------------------------------------

def test_swap_type_and_offset():
    e = decode_entry(bit(62) | 3 | (0x1234 << 5))
    assert e.swapped and not e.present
    assert (e.swap_type, e.swap_offset, e.pfn) == (3, 0x1234, None)


def test_guard_region_is_not_swapped():
    raw = make_entry(guard=True, swap_type=31, swap_offset=4)
    assert raw == 0x440000000000009F
    e = decode_entry(raw, (6, 15))
    assert e.guard and not e.swapped and e.swap_type is None
    status, note, _ = pagemap.entry_status(e, 4096, 0, [])
    assert status == "not-present" and "guard region" in note
    assert "6.13" in note       # MADV_GUARD_INSTALL's; 6.15 is bit 58's


def test_bit_58_before_615_is_not_guard():
    # 6.13-6.14 guard regions: a PTE marker (type 31) without bit 58, no swapped page.
    e = decode_entry(0x440000000000009F, (6, 14))
    assert not e.guard and not e.swapped and e.swap_type is None
    assert "PTE marker" in pagemap.entry_status(e, 4096, 0, [])[1]


def test_flags_before_their_kernel_are_ignored():
    raw = bit(63) | bit(57) | bit(56) | 9
    assert decode_entry(raw, (5, 13)).uffd_wp
    assert not decode_entry(raw, (5, 12)).uffd_wp
    assert decode_entry(raw, (5, 12)).exclusive


def test_311_to_41_either_layout():
    # After clear_refs: bit 55 soft-dirty and 56-60 zero.
    new = decode_entry(bit(63) | bit(55) | 7, (3, 14))
    assert new.soft_dirty and new.page_shift is None and new.pfn == 7
    # Before it: the page shift, 12 << 55.
    old = decode_entry(0x8600000000000007, (3, 14))
    assert old.page_shift == 12 and not old.soft_dirty and old.pfn == 7


def test_flag_names_in_bit_order():
    e = decode_entry(make_entry(present=True, pfn=1, soft_dirty=True, exclusive=True,
                                file_shared=True))
    assert pagemap.entry_flag_names(e) == ["soft-dirty", "exclusive", "file"]


# --- status and notes --------------------------------------------------------

USER = pagemap.Privilege(False, True)
ROOT = pagemap.Privilege(True, True)
USERNS_ROOT = pagemap.Privilege(True, False)


@pytest.mark.parametrize("priv,fragment", [
    (USER, "lacks CAP_SYS_ADMIN"),
    (USERNS_ROOT, "user namespace"),
    (pagemap.Privilege(None, None), "lacked CAP_SYS_ADMIN"),
    (ROOT, "although this reader has CAP_SYS_ADMIN"),
])
def test_pfn_zero_is_hidden_with_the_reason(priv, fragment):
    e = decode_entry(make_entry(present=True, pfn=0, exclusive=True))
    status, note, paddr = pagemap.entry_status(e, 4096, 0x1000, None)
    assert status == "pfn-hidden" and paddr is None and fragment in pagemap.hidden_pfn_reason(priv)


def test_hidden_swap_location_is_not_attributed_to_area_zero():
    areas = [pagemap.SwapArea("/swapfile", "file", 1000, 0, -2)]
    e = decode_entry(make_entry(swapped=True))     # type 0 offset 0: zeroed
    status, note, _ = pagemap.entry_status(e, 4096, 0, areas)
    assert status == "swapped" and "hidden" in note and "/swapfile" not in note


def swap_note(swap_type, swap_offset, *sizes_kib):
    """The note of a swapped entry, /proc/swaps listing /a, /b, ... of these sizes."""
    areas = [pagemap.SwapArea("/" + chr(97 + i), "file", kib, 0, -2 - i)
             for i, kib in enumerate(sizes_kib)]
    e = decode_entry(make_entry(swapped=True, swap_type=swap_type, swap_offset=swap_offset))
    status, note, _ = pagemap.entry_status(e, 4096, 0, areas)
    assert status == "swapped" and "offset 0x%x" % swap_offset in note
    return note


@pytest.mark.parametrize("swap_type,offset,sizes,named", [
    (0, 0x99, (1024, 1024), "/a"),           # type 0 is listed first
    (2, 0x99, (1024,), "/a"),                # the one area listed holds every swap type
    (1, 0x99, (64, 1024), "/b"),             # /a has 16 pages: not offset 0x99
    (1, 0x101, (1024, 2048), "/b"),          # the last slot of /a (256 pages) is 0x100 ...
    (1, 0x101, (1024, 2048, 4096), "/b"),    # ... and /c is listed after type 1
])
def test_swapped_names_its_area_when_certain(swap_type, offset, sizes, named):
    note = swap_note(swap_type, offset, *sizes)
    assert note.startswith("page is swapped out to %s (" % named), note


def test_swap_type_after_a_free_one_is_not_guessed():
    """/proc/swaps leaves out a type switched off: type 1 is the second area
    listed, or the first with type 0 free."""
    note = swap_note(1, 0x100, 1024, 1024, 1024)
    assert "to /a or /b:" in note and "/c" not in note
    assert swap_note(1, 0x101, 1024, 1024, 4096).endswith("does not show")


def test_swap_type_without_area_is_migration_hwpoison_or_device():
    e = decode_entry(make_entry(swapped=True, swap_type=29, swap_offset=0x1000))
    note = pagemap.entry_status(e, 4096, 0, [])[1]
    # hwpoison is permanent: "look again" is for the migration entry alone.
    assert "migration entry (transient: look again)" in note and "hwpoison" in note
    assert "SIGBUS" in note and "device-private" in note and "swap type 29" in note


def test_swap_type_past_the_listed_areas_is_still_swapped():
    """/proc/swaps lists areas in type order but leaves out those swapped off:
    type 2 with one area listed is a page in a swap area (types below 23 are
    areas on every kernel: MAX_SWAPFILES is 32 less at most 9 special types)."""
    e = decode_entry(make_entry(swapped=True, swap_type=2, swap_offset=0x10))
    note = pagemap.entry_status(e, 4096, 0, [pagemap.SwapArea("/a", "file", 1, 0, -2)])[1]
    assert "swapped out" in note and "not a swapped page" not in note and "/a" not in note


def test_pte_marker():
    # Bit 57 says which marker: uffd-wp's; without it, poison or an old guard region.
    e = decode_entry(make_entry(swapped=True, swap_type=31, swap_offset=1, uffd_wp=True))
    note = pagemap.entry_status(e, 4096, 0, [])[1]
    assert "PTE marker" in note and "userfaultfd" in note and "poison" not in note
    e = decode_entry(make_entry(swapped=True, swap_type=31, swap_offset=2))
    note = pagemap.entry_status(e, 4096, 0, [])[1]
    assert "poison" in note and "guard" in note and "userfaultfd" not in note


def test_unmapped_note_names_the_hole():
    a = pagemap.parse_maps_line("1000-2000 r--p 00000000 00:00 0")
    b = pagemap.parse_maps_line("5000-6000 r--p 00000000 00:00 0")
    note = pagemap.unmapped_note(0x3000, (a, b), "PID 7")
    assert "between 1000-2000 and 5000-6000" in note and "PID 7" in note
    assert "(below the first mapping, 1000)" in pagemap.unmapped_note(0x10, (None, a), "P")
    assert "(above the last mapping, which ends at 6000)" in pagemap.unmapped_note(
        0x7000, (b, None), "P")
    assert "(it has no mappings at all)" in pagemap.unmapped_note(0x7000, (None, None), "P")


# --- parsing -------------------------------------------------------------------

@pytest.mark.parametrize("text,value", [
    ("0x400000", 0x400000), ("400000", 0x400000), ("0X7F3A1C000000", 0x7F3A1C000000),
    ("7fe7e15e1000", 0x7FE7E15E1000), ("ffffffffffffffff", 2 ** 64 - 1), (" 10 ", 0x10),
    ("0", 0),
])
def test_parse_address(text, value):
    assert pagemap.parse_address(text) == value


@pytest.mark.parametrize("text", ["", "0x", "-1", "g00", "0x-5", "1" + "0" * 16, "12 34",
                                  "0x1.5", "\u0661"])
def test_parse_address_rejects(text):
    with pytest.raises(UsageError):
        pagemap.parse_address(text)


@pytest.mark.parametrize("text,value", [
    ("0xa600000000036afb", 0xA600000000036AFB), ("Result: 0x600000000000000", 0x0600000000000000),
    ("0a60000000008c445", 0xA60000000008C445),
])
def test_parse_entry_value(text, value):
    assert pagemap.parse_entry_value(text) == value


@pytest.mark.parametrize("text", ["", "0x", "1" + "0" * 16, "zz"])
def test_parse_entry_value_rejects(text):
    with pytest.raises(UsageError):
        pagemap.parse_entry_value(text)


@pytest.mark.parametrize("text", ["0", "-1", "abc", "", "1.5", "+3", "self2"])
def test_parse_pid_rejects(text):
    with pytest.raises(UsageError):
        pagemap.parse_pid(text)


def test_parse_pid():
    assert pagemap.parse_pid("self") == "self"
    assert pagemap.parse_pid("0042") == "42"


def test_parse_kernel_version():
    assert pagemap.parse_kernel_version("6.18.44-fc-v669") == (6, 18)
    assert pagemap.parse_kernel_version("3.10") == (3, 10)
    with pytest.raises(UsageError):
        pagemap.parse_kernel_version("six")


@pytest.mark.parametrize("text,size", [("4096", 4096), ("16k", 16384), ("0x10000", 65536)])
def test_parse_page_size(text, size):
    assert pagemap.parse_page_size(text) == size


@pytest.mark.parametrize("text", ["4095", "0", "512", "abc", ""])
def test_parse_page_size_rejects(text):
    with pytest.raises(UsageError):
        pagemap.parse_page_size(text)


def test_parse_maps_line_32bit_device():
    m = pagemap.parse_maps_line(
        "b6e54000-b6e5c000 rw-s 60b00000 00:0c 6804 /dev/sprd_jpg\n")
    assert (m.start, m.end, m.perms, m.offset, m.inode, m.path) == (
        0xB6E54000, 0xB6E5C000, "rw-s", 0x60B00000, 6804, "/dev/sprd_jpg")
    assert m.shared and not m.anonymous


def test_parse_maps_line_path_with_spaces_and_deleted():
    m = pagemap.parse_maps_line(
        "7f00-8f00 r--p 00001000 fd:01 99                         /tmp/my file (deleted)")
    assert m.path == "/tmp/my file (deleted)"


def test_parse_maps_line_anonymous_kinds():
    anon = pagemap.parse_maps_line("7f0000000000-7f0000010000 rw-p 00000000 00:00 0 ")
    assert anon.path == "" and anon.anonymous and not anon.shared
    named = pagemap.parse_maps_line(
        "b6400000-b6c00000 rw-p 00000000 00:00 0          [anon:libc_malloc]")
    assert named.path == "[anon:libc_malloc]" and named.anonymous
    shm = pagemap.parse_maps_line(
        "7f0000020000-7f0000021000 rw-s 00000000 00:05 4242   /dev/zero (deleted)")
    assert shm.anonymous and shm.shared


def test_parse_maps_rejects_garbage():
    with pytest.raises(ValueError):
        pagemap.parse_maps("not a maps line\n")


def test_find_mapping():
    maps = pagemap.parse_maps("3000-4000 r--p 0 00:00 0\n1000-2000 r--p 0 00:00 0\n")
    assert pagemap.find_mapping(maps, 0x1000)[0].start == 0x1000
    assert pagemap.find_mapping(maps, 0x1FFF)[0].start == 0x1000
    inside, before, after = pagemap.find_mapping(maps, 0x2000)
    assert inside is None and before.start == 0x1000 and after.start == 0x3000
    assert pagemap.find_mapping(maps, 0x500)[1:] == (None, maps[0])
    assert pagemap.find_mapping(maps, 0x9000)[1:] == (maps[1], None)
    assert pagemap.find_mapping([], 0x9000) == (None, None, None)


def test_parse_swaps_in_type_order():
    text = ("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
            "/swap\\040file                          file\t\t32764\t\t0\t\t-2\n"
            "/dev/sda2                               partition\t1000\t\t5\t\t10\n")
    areas = pagemap.parse_swaps(text)
    assert [a.path for a in areas] == ["/swap file", "/dev/sda2"]
    assert areas[1] == pagemap.SwapArea("/dev/sda2", "partition", 1000, 5, 10)


def test_parse_privilege():
    p = pagemap.parse_privilege("CapEff:\t0000000000200000\n", "0 0 4294967295\n")
    assert p == pagemap.Privilege(True, True)
    p = pagemap.parse_privilege("CapEff:\t00000000001fffff\n", "0 1000 1\n")
    assert p == pagemap.Privilege(False, False)
    assert pagemap.parse_privilege(None, None) == pagemap.Privilege(None, None)
    # Found on any line; a hostile or damaged value is unknown, not a guess.
    status = "Name:\tx\nCapInh:\t0000000000200000\nCapEff:\t%s\nCapBnd:\t1\n"
    assert pagemap.parse_privilege(status % "0000000000200000", None).cap_sys_admin is True
    assert pagemap.parse_privilege(status % "0000000000000001", None).cap_sys_admin is False
    for bad in ("", "zz", "12 34", "-1"):
        assert pagemap.parse_privilege(status % bad, None).cap_sys_admin is None, bad
    assert pagemap.parse_privilege("Name:\tx\nCapInh:\t0000000000200000\n",
                                   None).cap_sys_admin is None


def test_translation_keeps_its_eleven_field_form():
    # Translation is public (__all__): code that built one before `page` existed still works.
    tr = pagemap.Translation(1, 0x1000, None, None, None, "unmapped", None, 4096, None, 0, 8)
    assert tr.page is None
