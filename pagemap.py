#!/usr/bin/env python3
"""pagemap.py: where does this virtual address really live?

Reads /proc/PID/pagemap, decodes the entry for each address and prints the
physical address and the page's state, explaining every surprising answer
(hidden PFNs, untouched pages, swapped pages, device memory, the end of the
address space); lists ranges as runs, summarises whole processes, and, as
root, says what each physical page is.

    python3 pagemap.py self 0x400000           translate an address of this process
    python3 pagemap.py 1234 '[heap]' --flags   runs of a mapping, with page flags
    python3 pagemap.py 1234                    one row per mapping, like pmap -x
    python3 pagemap.py --phys 0x1bd75e000      which processes map a physical page
    python3 pagemap.py --decode 0xa600000000036afb --kernel-version 3.10

Python >= 3.5, standard library only: copy this file anywhere and run it.

The file, top to bottom: constants (the kernel's bits) -> errors (one class per
exit code) -> data types -> pure core (decode, parse, explain) -> ranges ->
whole-buffer core (runs and counts of a chunk in C, no loop per entry) ->
kpageflags, iomem, --match -> formatting -> /proc layer (the only code that
opens files) -> /proc/kpage*, NUMA -> walking ranges -> commands -> snapshots
-> command line. One lookup, 'self 0x400000': main -> run -> parse_arguments
(no argparse for a PID and addresses) -> cmd_process (ProcessReader, Context)
-> cmd_lookup -> translate_with (ProcessReader.entry_at, decode_entry, explain
-> entry_status) -> emit -> format_text -> Console.write.
"""
# SPDX-License-Identifier: MIT

import collections
import errno
import os
import re
import struct
import sys

if False:  # for mypy only: typing may be missing from a board's Python
    import array  # noqa: F401  (imported where used: loading it costs a lookup 0.3 ms)
    from argparse import Namespace  # noqa: F401
    from typing import Any, Dict, List, Optional, Tuple, Type  # noqa: F401

__version__ = "0.1.0"
__all__ = [
    "Counts", "Entry", "HugePage", "Mapping", "PageInfo", "PagemapError", "ProcessReader",
    "SwapArea", "Translation", "Walker", "count_entries", "decode_entry", "find_runs",
    "kpageflag_names", "main", "parse_address", "parse_kernel_version", "parse_maps",
    "parse_maps_line", "parse_match", "translate", "translate_many",
]

# --- constants --------------------------------------------------------------

PM_ENTRY_BYTES = 8                      # one u64 per virtual page, 2.6.25
PM_PFRAME_MASK = (1 << 55) - 1          # bits 0-54: PFN, 2.6.25
PM_SWAP_TYPE_BITS = 5                   # bits 0-4: swap type (MAX_SWAPFILES_SHIFT)
PM_SWAP_TYPE_MASK = 0x1f
SWAP_AREA_TYPES = 23                    # MAX_SWAPFILES: 32 less up to 9 special types by config
PM_SOFT_DIRTY = 1 << 55                 # 3.11
PM_MMAP_EXCLUSIVE = 1 << 56             # 4.2
PM_UFFD_WP = 1 << 57                    # 5.13
PM_GUARD_REGION = 1 << 58               # 6.15
PM_FILE = 1 << 61                       # file page or shared anon, 3.5
PM_SWAP = 1 << 62                       # 2.6.25
PM_PRESENT = 1 << 63                    # 2.6.25

# /proc/kpageflags bits (include/uapi/linux/kernel-page-flags.h), file since 2.6.25.
KPF_NAMES = dict(enumerate((
    "LOCKED ERROR REFERENCED UPTODATE DIRTY LRU ACTIVE SLAB WRITEBACK RECLAIM BUDDY MMAP ANON "
    "SWAPCACHE SWAPBACKED COMPOUND_HEAD COMPOUND_TAIL HUGE UNEVICTABLE HWPOISON NOPAGE KSM THP "
    "OFFLINE ZERO_PAGE IDLE PGTABLE").split()))
# Kernel-internal bits 32-42, "subject to change": named, never relied on.
KPF_NAMES.update(enumerate((
    "RESERVED MLOCKED OWNER_2 PRIVATE PRIVATE_2 OWNER_PRIVATE ARCH UNCACHED SOFTDIRTY ARCH_2 "
    "ARCH_3").split(), 32))
KPF_DIRTY = 1 << 4
KPF_ANON = 1 << 12
KPF_COMPOUND_HEAD = 1 << 15
KPF_COMPOUND_TAIL = 1 << 16
KPF_HUGE = 1 << 17                      # hugetlb, 2.6.28
KPF_UNEVICTABLE = 1 << 18
KPF_KSM = 1 << 21                       # 2.6.32
KPF_THP = 1 << 22                       # 2.6.38; any large folio, mTHP too, since 6.x
KPF_ZERO_PAGE = 1 << 24                 # 4.0
KPF_MLOCKED = 1 << 33                   # kernel-internal

PF_KTHREAD = 0x00200000                 # /proc/PID/stat flags: a kernel thread
PID_MAX_LIMIT = 1 << 22                 # the ceiling of kernel.pid_max, 2.5.34
SMAPS_KEPT = ("VmFlags", "KernelPageSize", "MMUPageSize", "Swap")  # smaps fields pagemap uses
CAP_SYS_ADMIN = 21
ADDRESS_MAX = (1 << 64) - 1             # the widest virtual address of any target

(EXIT_OK, EXIT_UNTRANSLATED, EXIT_USAGE, EXIT_NO_PROCESS, EXIT_PERMISSION, EXIT_UNSUPPORTED,
 EXIT_IO) = range(7)
EXIT_INTERRUPTED = 130

STATUSES = ("present", "swapped", "not-present", "unmapped",
            "beyond-address-space", "pfn-hidden", "no-page-tables")

# --- errors -----------------------------------------------------------------


class PagemapError(Exception):
    """An expected failure: one line for the user and an exit code."""

    exit_code = EXIT_IO


class UsageError(PagemapError):
    """Bad arguments."""

    exit_code = EXIT_USAGE


class NoProcessError(PagemapError):
    """The process does not exist, exited, or has no address space."""

    exit_code = EXIT_NO_PROCESS

    def __init__(self, message, kind="gone"):
        # type: (str, str) -> None
        PagemapError.__init__(self, message)
        self.kind = kind  # "gone", "zombie" or "kernel-thread"


class PermissionDeniedError(PagemapError):
    """The kernel refused access to the process."""

    exit_code = EXIT_PERMISSION


class UnsupportedError(PagemapError):
    """This kernel or Python lacks what the tool needs."""

    exit_code = EXIT_UNSUPPORTED


class ProcIOError(PagemapError):
    """Any other failure to read /proc."""

    exit_code = EXIT_IO


class SnapshotError(ProcIOError):
    """A snapshot that is damaged, truncated or not a snapshot at all."""


# --- data types -------------------------------------------------------------


class Entry(collections.namedtuple("Entry", "raw present swapped file_shared exclusive "
                                    "soft_dirty uffd_wp guard pfn swap_type swap_offset "
                                    "page_shift")):
    """One decoded pagemap entry; pfn/swap fields are None when not applicable.

    page_shift is set only for entries in the pre-3.11 layout, where bits
    55-60 hold the page shift instead of flags.
    """

    __slots__ = ()


NO_ENTRY = Entry(None, False, False, False, False, False, False, False, None, None, None, None)


class Mapping(collections.namedtuple("Mapping", "start end perms offset dev inode path")):
    """One line of /proc/PID/maps; path is '' for anonymous memory."""

    __slots__ = ()

    @property
    def shared(self):
        return self.perms.endswith("s")

    @property
    def anonymous(self):
        """Anonymous memory, private or shared (MAP_SHARED|MAP_ANONYMOUS shows as
        '/dev/zero (deleted)' with an inode, SysV shm as '/SYSV...')."""
        return self.path.startswith(("/dev/zero", "/SYSV", "[anon_shmem", "/anon_hugepage")) or (
            self.inode == 0 and self.path[:1] in ("", "["))


class SwapArea(collections.namedtuple("SwapArea", "path kind size_kib used_kib priority")):
    """One line of /proc/swaps."""

    __slots__ = ()


class Translation(collections.namedtuple("Translation", "pid vaddr entry paddr mapping status "
                                          "note page_size swap_area entry_offset "
                                          "entry_bytes page")):
    """The answer for one virtual address.

    entry is None where the kernel has no entry (beyond the address space);
    paddr is None unless the page is present with a visible PFN; page is a
    PageInfo for present pages where anything is known of the physical page.
    """

    __slots__ = ()


Translation.__new__.__defaults__ = (None,)  # page: the public type's 11-field form still works

# What the reader may see: each field True, False or None (unknown); captured:
# it is the reader that made a snapshot, not this one.
Privilege = collections.namedtuple("Privilege", "cap_sys_admin initial_userns captured")
Privilege.__new__.__defaults__ = (False,)


# --- pure core --------------------------------------------------------------

_MAPS_RE = re.compile(r"^([0-9a-fA-F]{1,16})-([0-9a-fA-F]{1,16})\s+(\S{4})\s+([0-9a-fA-F]{1,16})"
                      r"\s+(\S+)\s+([0-9]{1,20})(?: +(.*))?$")
_DECIMAL_RE = re.compile(r"^[0-9]{1,20}$")
_ADDRESS = r"^\s*(?:0[xX])?([0-9a-fA-F]+)\s*$"


def parse_decimal(text):
    # type: (Optional[str]) -> Optional[int]
    """ASCII decimal digits that fit a u64, else None: int() alone takes '٣' and
    '1_0', and refuses more than 4300 digits (Python 3.11+)."""
    return int(text) if text and _DECIMAL_RE.match(text) else None


def parse_hex_u64(pattern, text, invalid, too_big):
    # type: (str, str, str, str) -> int
    """The hex number group 1 of pattern catches in text, or UsageError: invalid %
    text when it does not match, too_big beyond 64 bits."""
    match = re.match(pattern, text)
    if not match:
        raise UsageError(invalid % (text,))
    value = int(match.group(1), 16)
    if value >> 64:
        raise UsageError(too_big)
    return value


def parse_address(text):
    # type: (str) -> int
    """Parse a virtual address: hex with or without 0x, as pasted from maps."""
    return parse_hex_u64(
        _ADDRESS, text,
        "invalid address %r: expected hex such as 0x7f3a1c000000 or 7f3a1c000000",
        "address %s is larger than any 64-bit address" % (text,))


def parse_entry_value(text):
    # type: (str) -> int
    """Parse a raw pagemap entry for --decode, also as a 'Result: 0x...' line."""
    return parse_hex_u64(
        r"^\s*(?:[A-Za-z_][A-Za-z_ ]*:\s*)?(?:0[xX])?([0-9a-fA-F]+)\s*$", text,
        "invalid entry value %r: expected a hex u64 such as 0xa600000000036afb",
        "entry value %s does not fit in 64 bits" % (text.strip(),))


def parse_pid(text):
    # type: (str) -> str
    """Validate a PID argument: a positive decimal number or 'self'."""
    if text == "self":
        return text
    pid = parse_decimal(text)
    if pid is None or not 0 < pid <= PID_MAX_LIMIT:
        raise UsageError("invalid PID %r: expected 'self' or a number from 1 to %d" % (
            text, PID_MAX_LIMIT))
    return str(pid)


def parse_kernel_version(text):
    # type: (str) -> Tuple[int, int]
    """'6.18.44-fc' or '3.10' -> (6, 18)."""
    match = re.match(r"^\s*([0-9]{1,9})\.([0-9]{1,9})(?![0-9])", text or "")
    if not match:
        raise UsageError("invalid kernel version %r: expected X.Y such as 3.10" % (text,))
    return int(match.group(1)), int(match.group(2))


# Flags of the current layout and the kernel that defined each.
_FLAGS_SINCE = ((PM_SOFT_DIRTY, (3, 11)), (PM_MMAP_EXCLUSIVE, (4, 2)), (PM_UFFD_WP, (5, 13)),
                (PM_GUARD_REGION, (6, 15)))


def old_page_shift(raw, kernel):
    # type: (int, Optional[Tuple[int, int]]) -> Optional[int]
    """The page shift in bits 55-60 of an entry of the pre-4.2 layout, else None.

    Before 3.11 bits 55-60 held the page shift, on every entry. On 3.11-4.1 an
    mm switched to the new layout (bit 55 soft-dirty, 56-60 zero) only after the
    first 'echo 4 > clear_refs', so there a non-zero field 56-60 tells: any real
    page shift (>= 12) sets one of those bits."""
    if kernel is not None and (kernel < (3, 11) or kernel < (4, 2) and raw >> 56 & 0x1f):
        return (raw >> 55) & 0x3f
    return None


_FLAGS_ONLY = bytes(b & 0xE0 for b in range(256))  # a top byte without bits 56-60


def without_page_shift(buf, kernel):
    # type: (bytes, Optional[Tuple[int, int]]) -> bytes
    """A little-endian buffer of entries with bits 55-60 cleared where they hold
    the page shift (old_page_shift), so that whole-buffer counts do not take it
    for flags (4K: bits 57-58, read as uffd-wp and guard; 16K: 56-58). An mm has
    one layout: on 3.11-4.1 one lane with bits 56-60 tells for all."""
    if kernel is None or kernel >= (4, 2):
        return buf
    top = buf[7::8]
    flags = top.translate(_FLAGS_ONLY)
    if kernel >= (3, 11) and flags == top:
        return buf
    out = bytearray(buf)
    out[7::8] = flags
    out[6::8] = buf[6::8].translate(bytes(range(128)) * 2)     # bit 55
    return bytes(out)


def decode_entry(raw, kernel=None):
    # type: (int, Optional[Tuple[int, int]]) -> Entry
    """Decode one pagemap u64 for a kernel version (None: the current layout)."""
    page_shift = old_page_shift(raw, kernel)
    flags = raw if page_shift is None else 0
    if kernel is not None:
        for bit, version in _FLAGS_SINCE:
            if kernel < version:
                flags &= ~bit
    present = bool(raw & PM_PRESENT)
    guard = bool(flags & PM_GUARD_REGION)
    frame = raw & PM_PFRAME_MASK
    # PTE markers (uffd-wp, poison, guard; 5.19+) take the highest swap type.
    swapped = bool(raw & PM_SWAP) and not guard and frame & PM_SWAP_TYPE_MASK != PM_SWAP_TYPE_MASK
    # Slot 0 of a swap area is its header, never a page's: type 0 offset 0 is the
    # location hidden (Linux 4.2+ without CAP_SYS_ADMIN), not a location.
    known = swapped and frame != 0
    return Entry(raw, present, swapped, bool(raw & PM_FILE), bool(flags & PM_MMAP_EXCLUSIVE),
                 bool(flags & PM_SOFT_DIRTY), bool(flags & PM_UFFD_WP), guard,
                 frame if present else None, frame & PM_SWAP_TYPE_MASK if known else None,
                 frame >> PM_SWAP_TYPE_BITS if known else None, page_shift)


def entry_flag_names(entry):
    # type: (Entry) -> List[str]
    """The set flags of an entry as short names, in bit order."""
    import itertools
    return list(itertools.compress(
        ("soft-dirty", "exclusive", "uffd-wp", "guard", "file"),
        (entry.soft_dirty, entry.exclusive, entry.uffd_wp, entry.guard, entry.file_shared)))


def looks_like_old_layout(raw):
    # type: (int) -> bool
    """True when bits 55-60 hold a plausible page shift (12-16) and no newer bit."""
    return 12 <= (raw >> 55) & 0x3f <= 16


def parse_maps_line(line):
    # type: (str) -> Mapping
    """Parse one /proc/PID/maps line; the path keeps its spaces and ' (deleted)'."""
    match = _MAPS_RE.match(line)
    if not match:
        raise ValueError("not a maps line: %r" % (line,))
    start, end, perms, offset, dev, inode, path = match.groups()
    if int(end, 16) < int(start, 16):
        raise ValueError("a maps line ending before it starts: %r" % (line,))
    return Mapping(int(start, 16), int(end, 16), perms, int(offset, 16), dev,
                   int(inode), path or "")


def parse_maps(text):
    # type: (str) -> List[Mapping]
    """Parse /proc/PID/maps text into mappings, sorted by start address."""
    import operator
    return sorted(map(parse_maps_line, filter(str.strip, text.splitlines())),
                  key=operator.itemgetter(0))     # by start


def find_mapping(maps, vaddr):
    # type: (List[Mapping], int) -> Tuple[Optional[Mapping], Optional[Mapping], Optional[Mapping]]
    """(mapping containing vaddr, the one before, the one after), by binary search."""
    lo, hi = 0, len(maps)
    while lo < hi:
        mid = (lo + hi) // 2
        if maps[mid].end <= vaddr:
            lo = mid + 1
        else:
            hi = mid
    # maps[lo] is the first mapping ending above vaddr: it holds vaddr or comes after it.
    before = maps[lo - 1] if lo else None
    first, after = (maps[lo:lo + 2] + [None, None])[:2]
    if first and first.start <= vaddr:
        return first, before, after
    return None, before, first


def parse_swaps(text):
    # type: (str) -> List[SwapArea]
    """Parse /proc/swaps: the areas in swap type order (see swap_areas_for)."""
    return [SwapArea(path.replace("\\040", " "), kind, int(size), int(used), int(prio))
            for path, kind, size, used, prio in re.findall(
                r"^(.*\S)\s+(\S+)\s+([0-9]{1,20})\s+([0-9]{1,20})\s+(-?[0-9]{1,20})\s*$",
                text.partition("\n")[2], re.M)]


def parse_privilege(status_text, uid_map_text):
    # type: (Optional[str], Optional[str]) -> Privilege
    """CAP_SYS_ADMIN in the effective set, and whether we are in the initial user ns."""
    caps = re.match(_ADDRESS, ("\n" + (status_text or "")).partition("\nCapEff:")[2]
                    .partition("\n")[0])  # the hex pattern an address lookup compiles anyway
    admin = bool(int(caps.group(1), 16) >> CAP_SYS_ADMIN & 1) if caps else None
    # The initial namespace maps all 2^32-1 ids onto themselves.
    initial = None if uid_map_text is None else uid_map_text.split() == ["0", "0", "4294967295"]
    return Privilege(admin, initial, False)


def pfns_hidden(priv):
    # type: (Privilege) -> bool
    """True when the kernel shows this reader (or a snapshot's capturer) PFN 0:
    no CAP_SYS_ADMIN in the initial user namespace (Linux 4.2+)."""
    return priv.cap_sys_admin is False or priv.initial_userns is False


def hidden_pfn_reason(priv):
    # type: (Privilege) -> str
    """Why PFNs read 0, as precisely as the reader's privileges tell."""
    if priv.captured:
        return ("the snapshot was captured without CAP_SYS_ADMIN in the initial user "
                "namespace, and since Linux 4.2 the kernel then reports PFN 0 (and swap "
                "location 0); capture it again as root on the host")
    if priv.cap_sys_admin is False:
        return ("this user lacks CAP_SYS_ADMIN, and since Linux 4.2 the kernel then "
                "reports PFN 0 (and swap location 0); run as root")
    if priv.initial_userns is False:
        return ("this reader is in a user namespace (a container or 'unshare -U'), where "
                "even root sees PFN 0; run from the host's initial namespace")
    if priv.cap_sys_admin is None and priv.initial_userns is None:
        return ("the reader lacked CAP_SYS_ADMIN in the initial user namespace "
                "(Linux 4.2+ then reports PFN 0)")
    return ("the kernel reported PFN 0 although this reader has CAP_SYS_ADMIN: the fd "
            "may have been opened by an unprivileged process, or the page really is PFN 0")


def mapping_label(mapping):
    # type: (Optional[Mapping]) -> str
    """A short description of a mapping for notes."""
    if mapping is None:
        return "-"
    return "%x-%x %s %s" % (mapping.start, mapping.end, mapping.perms,
                            mapping.path or "[anonymous]")


def swap_areas_for(entry, areas, page_size):
    # type: (Entry, Optional[List[SwapArea]], int) -> List[SwapArea]
    """The /proc/swaps areas a swapped entry may be in. The kernel lists areas in
    swap type order but leaves out free types (mm/swapfile.c swap_start/swap_next),
    so type T is listed at index T or before it; an offset past an
    area's size rules it out (bad blocks aside). Types below SWAP_AREA_TYPES,
    or below the number of areas listed, are swap areas."""
    swap_type = entry.swap_type
    if not areas or swap_type is None or swap_type >= max(SWAP_AREA_TYPES, len(areas)):
        return []
    return [a for a in areas[:swap_type + 1]
            if entry.swap_offset <= a.size_kib * 1024 // page_size]


def swap_area_for(entry, areas, page_size):
    # type: (Entry, Optional[List[SwapArea]], int) -> Optional[SwapArea]
    """The /proc/swaps area a swapped entry is in, when that is certain."""
    found = swap_areas_for(entry, areas, page_size)
    return found[0] if len(found) == 1 else None


def entry_status(entry, page_size, vaddr, areas):
    # type: (Entry, int, int, Optional[List[SwapArea]]) -> Tuple[str, str, Optional[int]]
    """(status, note, physical address) from the entry alone; note '' when plain."""
    if entry.present:
        if entry.pfn == 0:
            # Why: the CLI warns once (emit, cmd_lookup); translate_many adds it to the note.
            return "pfn-hidden", "page is present but its physical address is hidden", None
        return "present", "", entry.pfn * page_size + vaddr % page_size
    if entry.guard:
        return ("not-present", "guard region (MADV_GUARD_INSTALL, Linux 6.13+): any access "
                "faults; this is not a swapped page", None)
    if entry.swapped:
        return "swapped", swapped_note(entry, areas, page_size), None
    if entry.raw & PM_SWAP:
        return ("not-present", "a PTE marker (swap type %d, Linux 5.19+): no page, and no swap "
                "area holds it; a mark in the page table for %s" % (PM_SWAP_TYPE_MASK, (
                    "userfaultfd write-protection" if entry.uffd_wp else "a poisoned page "
                    "(access raises SIGBUS) or a guard region (6.13-6.14)")), None)
    return "not-present", "", None


def explain(entry, mapping, neighbours, vaddr, page_size, pid_label, areas, no_page_tables):
    # type: (Entry, Optional[Mapping], Tuple[Optional[Mapping], Optional[Mapping]], int, int, str, Optional[List[SwapArea]], bool) -> Tuple[str, str, Optional[int]]
    """(status, note, physical address) for an entry in its mapping's context."""
    status, note, paddr = entry_status(entry, page_size, vaddr, areas)
    placed = placed_status(status, entry, mapping, no_page_tables)
    if placed == "unmapped":
        note = unmapped_note(vaddr, neighbours, pid_label)
    elif placed == "no-page-tables":
        note = ("this mapping is VM_PFNMAP/VM_IO (device memory, /dev/mem, [vvar]; "
                "smaps VmFlags 'pf'/'io'): the kernel never reports its pages in pagemap; "
                "ask the driver for the physical address")
    elif placed == "not-present" and mapping and not note:
        note = not_present_note(mapping)
    return placed, note, paddr


def placed_status(status, entry, mapping, no_page_tables):
    # type: (str, Entry, Optional[Mapping], bool) -> str
    """An entry's status given where it is: an absent page in no mapping is
    'unmapped', in a VM_PFNMAP/VM_IO mapping 'no-page-tables'."""
    if status != "not-present" or entry.raw & PM_SWAP:   # a guard region or PTE marker
        return status
    if mapping is None:
        return "unmapped"
    return "no-page-tables" if no_page_tables else status


def unmapped_note(vaddr, neighbours, pid_label):
    # type: (int, Tuple[Optional[Mapping], Optional[Mapping]], str) -> str
    """Where an address outside every mapping lies."""
    before, after = neighbours
    if before and after:
        where = "in the hole between %x-%x and %x-%x" % (before.start, before.end,
                                                         after.start, after.end)
    elif after:
        where = "below the first mapping, %x" % after.start
    elif before:
        where = "above the last mapping, which ends at %x" % before.end
    else:
        where = "it has no mappings at all"
    return "0x%x is in no mapping of %s (%s): nothing is there to translate" % (
        vaddr, pid_label, where)


def swapped_note(entry, areas, page_size):
    # type: (Entry, Optional[List[SwapArea]], int) -> str
    """Where a swapped page went, or why that cannot be told."""
    if entry.swap_type is None:
        # Why: the CLI warns once (emit, cmd_lookup); translate_many adds it to the note.
        return "page is swapped out, or a PTE marker; its swap location is hidden"
    location = "swap type %d, offset 0x%x" % (entry.swap_type, entry.swap_offset)
    found = swap_areas_for(entry, areas, page_size)
    if len(found) == 1:
        return "page is swapped out to %s (%s)" % (found[0].path, location)
    if found:
        return ("page is swapped out (%s) to %s: /proc/swaps leaves out the types of areas "
                "swapped off, so it cannot tell which" % (
                    location, " or ".join(a.path for a in found)))
    if entry.swap_type < SWAP_AREA_TYPES:
        return ("page is swapped out (%s) to an area /proc/swaps does not show" % location)
    return ("pagemap says swapped (bit 62), but %s is in no area /proc/swaps lists: a "
            "migration entry (transient: look again), a hwpoison entry (the page was lost: "
            "an access raises SIGBUS) or a device-private page" % location)


def not_present_note(mapping):
    # type: (Mapping) -> str
    """Why a page inside a mapping has no entry."""
    if mapping.shared:
        return ("page not present in this process's page tables: never touched by this "
                "process, or a shared page that was swapped out or reclaimed (the kernel "
                "clears such PTEs, so they look never allocated); other processes or the "
                "page cache may still hold it")
    if mapping.path.startswith("/anon_hugepage"):
        return ("page not present: this hugetlb memory (MAP_HUGETLB) was never touched; "
                "touching it takes a whole huge page from the hugetlb pool")
    if mapping.anonymous:
        return ("page not present: this anonymous memory was never touched (or was "
                "discarded with MADV_DONTNEED/MADV_FREE); reading it would map the zero "
                "page, writing it allocates a page")
    return ("page not present in this process's page tables: not accessed yet by this "
            "process, or reclaimed; the file's page may still be in the page cache")


def beyond_note(vaddr, limit, pid_label, mapping=None):
    # type: (int, Optional[int], str, Optional[Mapping]) -> str
    """The end of the user address space, instead of 'Reached end of the file'."""
    where = "" if limit is None else " (0x%x on this kernel)" % limit
    # A mapping there is x86-64's [vsyscall] or 32-bit ARM's [vectors].
    there = ("%s is the kernel's, with no page tables of its own" % mapping.path
             if mapping and mapping.path else "only kernel pages such as x86-64's [vsyscall] "
             "live there")
    return ("0x%x is at or beyond the end of the user address space%s of %s: the kernel has "
            "no pagemap entries there (%s)" % (vaddr, where, pid_label, there))


def old_layout_hint(raw):
    # type: (int) -> str
    """A hint for --decode when a value looks like it came from a pre-4.2 kernel."""
    shift = (raw >> 55) & 0x3f
    return ("bits 55-60 hold %d, a page shift (%d-byte pages): this entry probably comes "
            "from a kernel before 4.2; pass --kernel-version (e.g. 3.10)"
            % (shift, 1 << shift))


# --- ranges and selectors ------------------------------------------------------


# A virtual range asked for: [start, end) in bytes, and how the user named it.
Span = collections.namedtuple("Span", "start end label")


def parse_length(text):
    # type: (str) -> int
    """A range length: hex (0x1000 or 1000) or decimal with a unit (4k, 2M, 1G)."""
    match = re.match(r"^\s*(?:(?:0[xX])?([0-9a-fA-F]+)|0*([0-9]+)\s*([kKmMgGtT])(?:i?[bB])?)\s*$",
                     text)
    if not match:
        raise UsageError("invalid length %r: expected hex such as 0x2000 or a size such as "
                         "4k, 2M, 1G" % (text,))
    hex_digits, digits, unit = match.groups()
    if hex_digits is not None:
        return int(hex_digits, 16)
    if len(digits) > 20:    # int() refuses more than 4300 digits (Python 3.11+)
        raise UsageError("length %s is larger than any 64-bit address space" % (text,))
    return int(digits) * 1024 ** " kmgt".index(unit.lower())


def parse_range(text):
    # type: (str) -> Optional[Span]
    """'START-END' (end exclusive) or 'START+LENGTH'; None if text is no range."""
    match = re.match(r"^(?:0[xX])?([0-9a-fA-F]+)\s*([-+])\s*(.+)$", text.strip())
    if not match:
        return None
    first, sign, second = match.groups()
    start = parse_address(first)
    if sign == "-":
        end = parse_address(second)
        if end < start:
            raise UsageError("reversed range %s: the end must not be below the start"
                             % (text,))
    else:
        end = start + parse_length(second)
    if end > ADDRESS_MAX + 1:
        raise UsageError("range %s ends beyond the 64-bit address space" % (text,))
    return Span(start, end, "%x-%x" % (start, end))


def is_selector(text):
    # type: (str) -> bool
    """A mapping name ('[heap]', a path, a base name) rather than an address or
    range. Text that starts like a number is parsed as one, strictly."""
    text = text.strip()
    return bool(text) and not re.match(r"^(?:[-+]|0[xX]|[0-9a-fA-F]+(?:\s*[-+]|$))", text)


def mapping_names(mapping):
    # type: (Mapping) -> Tuple[str, ...]
    """The names a selector may use for a mapping: its path and its base name."""
    path = mapping.path
    if path[:1] in ("", "["):
        return (path,)
    live = re.sub(r" \(deleted\)$", "", path)
    return (path, live, os.path.basename(live), os.path.basename(path))


def select_mappings(maps, selector):
    # type: (List[Mapping], str) -> List[Span]
    """Every mapping whose path or base name is the selector, as spans."""
    return [Span(m.start, m.end, m.path) for m in maps if selector in mapping_names(m)]


def page_span(span, page_size):
    # type: (Any, int) -> Tuple[int, int]
    """[first vpn, end vpn) of the pages a byte range (a Span or Mapping) touches."""
    return span.start // page_size, -(-span.end // page_size)


# --- whole-buffer core: runs and counts without a Python loop per entry -------
# Buffers here are entries in little-endian order (the /proc layer byte-swaps
# others). A buffer becomes one big int whose 64-bit "lanes" are the entries,
# or, for counts, the slice of top bytes (bits 56-63) of every entry.

_MASKS = {}  # type: Dict[Tuple[int, int], int]
_NONZERO = bytes([0] + [1] * 255)
_PRESENT_OR_SWAP = bytes(0x40) + b"\x01" * 0xC0      # 1 from 0x40 on: bit 62 or 63
_BELOW_0X80 = bytes(range(0x80))
_SOFT_DIRTY_COUNTS = bytes(0x80 if b & 0x80 or b & 0x44 == 0x40 else 0 for b in range(256))
_NO_SWAP_BIT = bytes(range(0x40)) + bytes(range(0x80, 0xC0))    # bytes without 0x40
_SWAP_TYPE_LANES = bytes(PM_SWAP_TYPE_MASK if b & 0xC4 == 0x40 else 0 for b in range(256))
_RUN_KEEP_SWAP = ~PM_PFRAME_MASK & ((1 << 64) - 1) | PM_SWAP_TYPE_MASK


def lane_mask(value, lanes):
    # type: (int, int) -> int
    """An int repeating value in each of lanes little-endian u64 lanes."""
    key = (value, lanes)
    mask = _MASKS.get(key)
    if mask is None:
        if len(_MASKS) > 64:
            _MASKS.clear()
        mask = _MASKS[key] = int.from_bytes(value.to_bytes(8, "little") * lanes, "little")
    return mask


def lanes_of(buf, swap=sys.byteorder == "big"):
    # type: (bytes, bool) -> array.array
    """The u64 values of a little-endian buffer, as an array (C-level indexing);
    swap: each u64 byte-reversed (the default on a big-endian host)."""
    import array
    lanes = array.array("Q", buf[:len(buf) // 8 * 8])
    if swap:
        lanes.byteswap()
    return lanes


def little_endian(data, big):
    # type: (bytes, bool) -> bytes
    """u64s in a file's order (big-endian when big) as little-endian bytes: reversing
    each 8-byte group is the same work on any host."""
    return lanes_of(data, True).tobytes() if big else data


def popcount(value):
    # type: (int) -> int
    """Set bits in a non-negative int."""
    return bin(value).count("1")


popcount = getattr(int, "bit_count", popcount)  # C speed on Python 3.10+


Counts = collections.namedtuple("Counts",
                                "pages present swapped file exclusive soft_dirty huge")
Counts.__doc__ = ("Page counts of a range: resident, swapped, and the flags of those pages; "
                  "huge None where unknown (hidden PFNs without PAGEMAP_SCAN).")
ZERO_COUNTS = Counts(0, 0, 0, 0, 0, 0, 0)

PageCounts = collections.namedtuple("PageCounts",
                                    "thp hugetlb ksm zero shared dirty locked uss pss")
PageCounts.__doc__ = ("What resident pages are, from kpageflags and kpagecount: pages each, "
                      "pss a float number of pages.")
ZERO_PAGE_COUNTS = PageCounts(0, 0, 0, 0, 0, 0, 0, 0, 0.0)


def add_counts(a, b):
    # type: (Any, Any) -> Any
    """The fieldwise sum of two Counts or two PageCounts (unknown, None, stays so)."""
    return type(a)(*[None if x is None or y is None else x + y for x, y in zip(a, b)])


def flag_lanes(flags_buf, flag):
    # type: (bytes, int) -> bytes
    """One byte per lane of little-endian kpageflags: 1 where flag (one bit) is set;
    a strided slice of the flag's byte, translated."""
    bit = flag.bit_length() - 1
    run = 1 << bit % 8      # the table of b >> bit % 8 & 1: 0s and 1s in runs this long
    return flags_buf[bit // 8::8].translate((bytes(run) + b"\x01" * run) * (128 // run))


def flag_counts(flags_buf, flags):
    # type: (bytes, Tuple[int, ...]) -> List[int]
    """How many lanes of little-endian kpageflags have each of flags (one bit
    each) set: a histogram of each byte holding some, masked to their bits."""
    counts = [0] * len(flags)
    for shift in set(flag.bit_length() - 1 & ~7 for flag in flags):
        mask = sum(flag >> shift & 0xFF for flag in flags)
        table = _MASK_TABLES.get(mask)
        if table is None:
            table = _MASK_TABLES[mask] = bytes(b & mask for b in range(256))
        for value, lanes in top_histogram(flags_buf[shift // 8::8].translate(table)).items():
            for i, flag in enumerate(flags):
                if value << shift & flag:
                    counts[i] += lanes
    return counts


_MASK_TABLES = {}  # type: Dict[int, bytes]


def low_bytes(buf):
    # type: (bytes) -> Optional[bytes]
    """The low bytes of the u64 lanes of a little-endian buffer if each lane is
    below 256, else None: the lanes rebuilt from them compare equal."""
    low = buf[0::8]
    lanes = bytearray(len(low) * 8)
    lanes[0::8] = low
    return low if lanes == buf else None


def count_page_facts(flags_buf, counts_buf):
    # type: (bytes, bytes) -> PageCounts
    """Whole-buffer counts over the kpageflags and kpagecount of resident pages
    (little-endian, same order). Locked is MLOCKED or UNEVICTABLE (kpageflags'
    LOCKED is the page lock, held during I/O, not mlock); the zero page is
    neither shared nor private memory of anyone, so it stays out of shared,
    USS and PSS, as in smaps."""
    n = len(flags_buf) // 8
    locks = (KPF_UNEVICTABLE, KPF_MLOCKED)
    thp, hugetlb, ksm, zero, dirty, *held = flag_counts(flags_buf, (
        KPF_THP, KPF_HUGE, KPF_KSM, KPF_ZERO_PAGE, KPF_DIRTY) + locks)
    if thp and zero:    # the huge zero page (THP and ZERO_PAGE) is no one's THP
        thp -= popcount(int.from_bytes(flag_lanes(flags_buf, KPF_THP), "little")
                        & int.from_bytes(flag_lanes(flags_buf, KPF_ZERO_PAGE), "little"))
    locked = sum(held)
    if min(held):       # both kinds: a page may have the two, count it once
        unevictable, mlocked = [int.from_bytes(flag_lanes(flags_buf, bit), "little")
                                for bit in locks]
        locked = popcount(unevictable | mlocked)
    counts_buf = counts_buf[:n * 8]
    if zero:
        # Map counts of zero-page lanes as 0, taken back out of the count of 0s.
        spread = bytearray(n * 8)
        spread[0::8] = flag_lanes(flags_buf, KPF_ZERO_PAGE)
        counts_buf = (int.from_bytes(counts_buf, "little") & ~(int.from_bytes(
            spread, "little") * ((1 << 64) - 1))).to_bytes(n * 8, "little")
    low = low_bytes(counts_buf)
    # Map counts below 256 (the usual): a histogram of their low bytes, in C;
    # keys in order of first appearance, as a Counter of the lanes has them.
    histogram = (low is not None and top_histogram(low)
                 or collections.Counter(lanes_of(counts_buf)))  # type: Any
    if zero:
        histogram[0] -= zero
    private = histogram.get(0, 0) + histogram.get(1, 0)    # USS: mapped at most once
    pss = sum(float(v) / max(1, k) for k, v in histogram.items())
    return PageCounts(thp, hugetlb, ksm, zero, sum(histogram.values()) - private, dirty, locked,
                      private, pss)


def resident_runs(buf, block=0):
    # type: (bytes, int) -> List[Tuple[int, int]]
    """physical_runs of the find_runs of a little-endian buffer of entries."""
    starts, lengths = find_runs(buf, block)
    return physical_runs(zip(starts, lengths, map(lanes_of(buf).__getitem__, starts)))


def physical_runs(runs):
    # type: (Any) -> List[Tuple[int, int]]
    """[(pfn, pages)] of the runs (vpn, pages, first raw entry; None past the end)
    that are present with a PFN."""
    mask = PM_PFRAME_MASK
    return [(raw & mask, pages) for _, pages, raw in runs if raw and raw >> 63 and raw & mask]


def _lane(buf, index):
    # type: (bytes, int) -> int
    return struct.unpack_from("<Q", buf, index * 8)[0]


def populated_lanes(buf):
    # type: (bytes) -> bytes
    """One byte per entry of a little-endian buffer: 1 if present or swapped."""
    top = buf[7::8]
    if top[:1] and top[0] & 0xC0 and top == top[:1] * len(top):
        return b"\x01" * len(top)
    return top.translate(_PRESENT_OR_SWAP)


def count_entries(buf):
    # type: (bytes) -> Counts
    """Counts of one little-endian buffer of entries, on whole buffers.

    Only the top byte of each entry (bits 56-63) and bit 55 matter here, so
    the work is on a byte slice an eighth of the buffer. In a top byte: 0x80
    present, 0x40 swap, 0x20 file, 0x04 guard, 0x01 exclusive. Guard regions
    (6.15) and other PTE markers set the swap bit but are not swapped pages.
    Soft-dirty (bit 55, the top bit of byte 6) counts only on present or
    swapped pages.
    """
    n = len(buf) // PM_ENTRY_BYTES
    top = buf[7::8]
    present = swapped = file_pages = exclusive = 0
    for value, count in top_histogram(top).items():
        if value & 0x80:
            present += count
            file_pages += count if value & 0x20 else 0
            exclusive += count if value & 0x01 else 0
        elif value & 0x44 == 0x40:
            swapped += count
    soft = 0
    if present or swapped:
        low = buf[6::8]
        try:    # ASCII decoding is one fast C pass, and fails on a byte with bit 55
            low.decode("ascii")
        except UnicodeDecodeError:
            # Bit 55 of the lanes present or swapped: all of them if every lane
            # has it (a fresh, VM_SOFTDIRTY, mapping sets it in holes too) or every
            # lane is one; else through a mask made from the top bytes.
            if low == low[:1] * len(low):
                soft = present + swapped
            elif present + swapped == n:
                soft = len(low.translate(None, _BELOW_0X80))
            else:
                soft = popcount(int.from_bytes(top.translate(_SOFT_DIRTY_COUNTS), "little")
                                & int.from_bytes(low, "little"))
    if swapped:  # PTE markers (uffd-wp, poison: swap type 31) are in no swap area
        swapped -= (int.from_bytes(top.translate(_SWAP_TYPE_LANES), "little") & int.from_bytes(
            buf[0::8], "little")).to_bytes(n, "little").count(PM_SWAP_TYPE_MASK)
    return Counts(n, present, swapped, file_pages, exclusive, soft, 0)


def top_histogram(top):
    # type: (bytes) -> Dict[int, int]
    """{byte value: count} of the bytes of top.

    Each distinct value costs one C pass that deletes it; memory usually holds
    two or three (0x00 untouched, 0x81 private anon, 0xa0 file), a kernel's
    entries a dozen at most (a hostile snapshot's 256 cost ~7x a chunk).
    bytes.replace costs a step per occurrence, translate a step per byte: a
    value common in the first 256 bytes (interleaved, as in sparse memory)
    goes by translate.
    """
    hist = {}  # type: Dict[int, int]
    rest = top
    while rest:
        value = rest[0]
        if rest == rest[:1] * len(rest):
            hist[value] = len(rest)
            break
        if rest[:256].count(rest[:1]) > 16:
            shorter = rest.translate(None, rest[:1])
        else:
            shorter = rest.replace(rest[:1], b"")
        hist[value] = len(rest) - len(shorter)
        rest = shorter
    return hist


def continues_run(prev_raw, next_raw):
    # type: (int, int) -> bool
    """True if the page with next_raw extends the run that ends with prev_raw.

    Present pages need the next PFN (a run is entry, entry+1, ...); with PFNs
    hidden (all read 0, 4.2+ without CAP_SYS_ADMIN) the same entry, so a run
    is pages in one state. Swapped pages keep flags and swap type, not their
    slot. Other pages are one state, whatever bit 55 says (set in VM_SOFTDIRTY
    areas, 3.11+, meaningless there).
    """
    if prev_raw & PM_PRESENT:
        return next_raw == prev_raw + bool(prev_raw & PM_PFRAME_MASK)
    if next_raw & PM_PRESENT or (prev_raw ^ next_raw) & PM_SWAP:
        return False
    return not prev_raw & PM_SWAP or not (prev_raw ^ next_raw) & _RUN_KEEP_SWAP


def find_runs(buf, block=0, huge=()):
    # type: (bytes, int, Any) -> Tuple[Any, Any]
    """(starts, lengths) of the runs in a little-endian buffer of entries.

    Three ways, cheapest first: an empty or sparsely populated buffer is
    handled lane by lane over its populated lanes only; a buffer whose aligned
    blocks (PMD-sized, pass block) are each one physical run, as THP and hugetlb
    memory is, is proved so block by block (blocks whose first lane is in huge,
    known PMD-mapped, need no proof: the kernel writes those entries as one
    progression); anything else goes through one big-int pass. Run ends become
    runs with C-level loops (split, accumulate), not a Python loop per run.
    """
    n = len(buf) // PM_ENTRY_BYTES
    populated = populated_lanes(buf)
    count = populated.count(1)
    if count * 32 <= n:     # an empty buffer too: no runs
        return _sparse_runs(buf, n, populated)
    first = _lane(buf, populated.find(1))
    hidden = bool(first & PM_PRESENT) and not first & PM_PFRAME_MASK
    ends = _block_run_ends(buf, n, block, huge) if block and count == n and not hidden else None
    if ends is None:
        # Without swap entries or soft-dirty bits, absent lanes are all zero
        # already and need no normalising (the usual case).
        plain = not buf[7::8].translate(None, _NO_SWAP_BIT) and not buf[6::8].translate(
            None, _BELOW_0X80)
        ends = _run_ends(buf, n, plain, not hidden, plain and count == n)
    return runs_from_ends(ends, n)


def runs_from_ends(ends, n):
    # type: (bytes, int) -> Tuple[List[int], List[int]]
    """(starts, lengths) of the runs of n lanes from their run ends (one byte a
    lane, 1 after a lane where a run ends), with C-level loops."""
    import itertools
    lengths = [len(piece) + 1 for piece in ends[:n - 1].split(b"\x01")]
    return list(itertools.accumulate(itertools.chain((0,), lengths[:-1]))), lengths


_PRESENT_PFN = PM_PRESENT | PM_PFRAME_MASK


def find_pfn(buf, pfn):
    # type: (bytes, int) -> List[int]
    """Indexes of the present entries of a little-endian buffer that map pfn.

    bytes.find looks for the PFN's low six bytes at C speed; each hit is then
    checked for lane alignment, the present bit and the whole 55-bit PFN.
    """
    needle = struct.pack("<Q", pfn)[:6]
    hits = []
    pos = buf.find(needle)
    while pos >= 0:
        if pos % 8 == 0 and _lane(buf, pos // 8) & _PRESENT_PFN == PM_PRESENT | pfn:
            hits.append(pos // 8)
        pos = buf.find(needle, pos + 1)
    return hits


def lane_column(values, known, indexes):
    # type: (Optional[bytes], Optional[bytes], List[int]) -> List[Optional[int]]
    """The u64 lanes of little-endian values at indexes (any value at -1); None
    where values or known (one byte a lane) say the value is unknown. Picked
    by a C-level map: a --flags listing asks for one a piece."""
    if not values:      # None, or no lane (every index -1)
        return [None] * len(indexes)
    lanes = lanes_of(values)
    column = ([lanes[0]] * len(indexes) if values == values[:8] * len(lanes) else list(
        map(lanes.__getitem__, indexes)))  # type: List[Optional[int]]
    return column if known is None else [
        value if known[i] else None for value, i in zip(column, indexes)]


def lane_changes(buf):
    # type: (bytes) -> bytes
    """One byte per u64 lane of a little-endian buffer: 1 where the next lane
    differs (the last lane: where it is not 0). One big-int pass."""
    n = len(buf) // 8
    x = int.from_bytes(buf, "little")
    w = x ^ (x >> 64)
    w |= w >> 32
    w |= w >> 16
    w |= w >> 8
    return (w & lane_mask(0xFF, n)).to_bytes(n * 8, "little")[0::8].translate(_NONZERO)


def _sparse_runs(buf, n, populated):
    # type: (bytes, int, bytes) -> Tuple[Any, Any]
    """Runs when few lanes are present or swapped: visit just those lanes."""
    lanes = lanes_of(buf)
    starts, lengths = [], []  # type: (List[int], List[int])
    i = 0
    while i < n:
        j = populated.find(1, i)
        if j < 0:
            j = n
        if j > i:
            starts.append(i)
            lengths.append(j - i)
        if j == n:
            break
        k = j + 1
        while k < n and continues_run(lanes[k - 1], lanes[k]):
            k += 1
        starts.append(j)
        lengths.append(k - j)
        i = k
    return starts, lengths


def _block_run_ends(buf, n, block, huge=()):
    # type: (bytes, int, int, Any) -> Optional[bytes]
    """Run ends if every block of the buffer is one physical run, else None.
    Blocks in huge (known PMD-mapped) need only their top bytes alike: the
    kernel writes one progression but for bit 56 (exclusive), set page by page
    since 6.10 (a THP mapped in part elsewhere). Fragmented memory fails at its
    first block."""
    if n % block or not all(
            b in huge and buf[b * 8 + 7:(b + block) * 8:8] == buf[b * 8 + 7:b * 8 + 8] * block
            or contiguous_lanes(buf, b, block) for b in range(0, n, block)):
        return None
    firsts = strided_lanes(buf, 0, block)
    ends = bytearray(n)
    for k in range(1, len(firsts)):
        if firsts[k] != firsts[k - 1] + block:
            ends[k * block - 1] = 1
    return bytes(ends)


_LOW16 = None  # type: Optional[Tuple[bytes, bytes]]


def progression(first, count):
    # type: (int, int) -> Optional[bytearray]
    """count little-endian entries first, first+1, ... built from byte slices;
    None when the low 16 bits would carry (never for a PMD-aligned block)."""
    global _LOW16
    low = first & 0xFFFF
    if low + count > 0x10000:
        return None
    if _LOW16 is None:
        pairs = struct.pack("<65536H", *range(1 << 16))    # 0, 1, ... as little-endian u16s
        _LOW16 = pairs[0::2], pairs[1::2]
    out = bytearray(struct.pack("<Q", first) * count)
    out[0::8] = _LOW16[0][low:low + count]
    out[1::8] = _LOW16[1][low:low + count]
    return out


def _run_ends(buf, n, plain=False, step=True, all_present=False):
    # type: (bytes, int, bool, bool, bool) -> bytes
    """One byte per lane, 1 where a run ends after that lane: one big-int pass.

    Normalise each lane to its run key, add 1 to present lanes (not when PFNs
    are hidden: step False), compare each lane with the next (a shift by 64),
    and fold each lane's difference into its top bit: adding 2^63-1 to its
    low 63 bits carries into bit 63 exactly when they are not all zero.
    """
    ones = lane_mask(1, n)
    x = int.from_bytes(buf, "little")
    present = ones if all_present else (x >> 63) & ones
    if not plain:
        swap = (x >> 62) & ones & ~present
        x &= present * ((1 << 64) - 1) | swap * _RUN_KEEP_SWAP
    w = (x >> 64) ^ (x + present if step else x)
    low = lane_mask((1 << 63) - 1, n)
    w = (((w & low) + low) | w) & lane_mask(1 << 63, n)
    return w.to_bytes(n * 8, "little")[7::8].translate(_NONZERO)


def huge_candidates(buf, first_vpn, pmd_pages):
    # type: (bytes, int, int) -> List[int]
    """Indexes of PMD-aligned lanes that may start a huge page wholly in buf.

    A PMD-mapped huge page starts at a PMD-aligned address on a PMD-aligned
    PFN; a hidden PFN (0) might be one too. The aligned lanes are fetched with
    one strided memoryview, not a loop over the buffer.
    """
    first = (-first_vpn) % pmd_pages
    starts = range(first, len(buf) // 8 - pmd_pages + 1, pmd_pages)
    return [i for i, raw in zip(starts, strided_lanes(buf, first, pmd_pages))
            if raw & PM_PRESENT and (raw & PM_PFRAME_MASK) % pmd_pages == 0]


def strided_lanes(buf, start, step):
    # type: (bytes, int, int) -> List[int]
    """The values of lanes start, start+step, ... of a little-endian buffer, by one
    strided memoryview (no loop over the buffer)."""
    return lanes_of(memoryview(buf).cast("B").cast("Q")[start::step].tobytes()).tolist()


def contiguous_lanes(buf, index, count):
    # type: (bytes, int, int) -> bool
    """True if count lanes from index are entry, entry+1, ... of a present page
    with a PFN: one physical block."""
    first = _lane(buf, index) if (index + count) * 8 <= len(buf) else 0
    if not (first & PM_PRESENT and first & PM_PFRAME_MASK):
        return False
    block = buf[index * 8:(index + count) * 8]
    expected = progression(first, count)
    if expected is None:                # the low 16 bits carry: never a PMD-aligned block
        return lanes_of(block).tolist() == list(range(first, first + count))
    return block == expected


# --- physical pages: kpageflags, iomem, --match --------------------------------

def kpageflag_names(flags):
    # type: (int) -> List[str]
    """Names of the set kpageflags bits in bit order; unknown bits as BITn. On an
    anonymous page OWNER_2 is PG_anon_exclusive (5.19+), named so, as page-types -r."""
    names = [KPF_NAMES.get(bit, "BIT%d" % bit) for bit in range(flags.bit_length())
             if flags >> bit & 1]
    if flags & KPF_ANON and "OWNER_2" in names:
        names[names.index("OWNER_2")] = "ANON_EXCLUSIVE"
    return names


# One line of /proc/iomem: an inclusive physical range, nested by depth.
IomemRegion = collections.namedtuple("IomemRegion", "start end name depth")


def parse_iomem(text):
    # type: (str) -> List[IomemRegion]
    """Parse /proc/iomem; children follow their parent, indented two spaces a level."""
    return [IomemRegion(int(start, 16), int(end, 16), name.strip(), len(indent) // 2)
            for indent, start, end, name in re.findall(
                r"^( *)([0-9a-fA-F]+)-([0-9a-fA-F]+) : (.*)$", text, re.M)]


def iomem_hidden(regions):
    # type: (List[IomemRegion]) -> bool
    """True when /proc/iomem shows every range as 0 (read without CAP_SYS_ADMIN)."""
    return bool(regions) and not any(r.start or r.end for r in regions)


def iomem_region(regions, paddr):
    # type: (List[IomemRegion], int) -> Optional[str]
    """'System RAM > Kernel code': the nested regions holding paddr, or None."""
    chain = []  # type: List[str]
    for region in regions:
        if region.start <= paddr <= region.end and region.depth <= len(chain):
            chain = chain[:region.depth] + [region.name]
    return " > ".join(chain) or None


HugePage = collections.namedtuple("HugePage", "kind size head_pfn phys_base virt_base offset")
HugePage.__doc__ = ("The huge page (hugetlb, THP or large folio) holding an address; "
                    "head_pfn and phys_base are None when PFNs are hidden.")

PageInfo = collections.namedtuple("PageInfo",
                                  "kpageflags mapcount cgroup_inode cgroup_path node iomem huge")
PageInfo.__doc__ = "What the physical page is; each field None where the system hides it."


_TAIL_LANE = b"\0\x01" * 128   # b & 1: COMPOUND_TAIL, bit 16, is byte 2, bit 0


def compound_head_in(flags_buf, index):
    # type: (bytes, int) -> Optional[int]
    """The lane of the compound head for lane index of little-endian kpageflags:
    the last lane at or before it that is no tail. -1 if that lane is no head
    (not a compound page); None if the window holds only tails up to index."""
    lane = flags_buf[2::8].translate(_TAIL_LANE).rfind(0, 0, index + 1)
    if lane < 0:
        return None
    return lane if _lane(flags_buf, lane) & KPF_COMPOUND_HEAD else -1


def compound_end_in(flags_buf, start):
    # type: (bytes, int) -> Optional[int]
    """The first lane from start that is no compound tail, or None if all are."""
    lane = flags_buf[2::8].translate(_TAIL_LANE).find(0, start)
    return None if lane < 0 else lane


MATCH_PAGEMAP = {
    "present": PM_PRESENT, "swapped": PM_SWAP, "file": PM_FILE,
    "exclusive": PM_MMAP_EXCLUSIVE, "soft-dirty": PM_SOFT_DIRTY, "uffd-wp": PM_UFFD_WP,
    "guard": PM_GUARD_REGION,
}
MATCH_KPF = dict((name.lower(), 1 << bit) for bit, name in KPF_NAMES.items())
MATCH_KPF.update({"hugetlb": KPF_HUGE, "zero": KPF_ZERO_PAGE, "head": KPF_COMPOUND_HEAD,
                  "tail": KPF_COMPOUND_TAIL, "anonymous": KPF_ANON, "idle_page": 1 << 25})
# tools/mm/page-types' names (-b) too; its softdirty is bit 55 (the kernel never
# sets kpageflags' SOFTDIRTY, page-types does, from pagemap).
MATCH_PAGEMAP.update({"softdirty": PM_SOFT_DIRTY, "swap": PM_SWAP,
                      "mmap-exclusive": PM_MMAP_EXCLUSIVE})
MATCH_OTHER = ("shared",)               # map count above 1 (kpagecount)

# A --match filter: bits that must be set or clear; shared True/False/None;
# written: soft-dirty on a present or swapped page (--written).
MatchSpec = collections.namedtuple("MatchSpec",
                                   "pm_set pm_clear kpf_set kpf_clear shared written")


def parse_match(text, written=False):
    # type: (str, bool) -> MatchSpec
    """'thp', 'anon,~ksm', 'present,~exclusive,shared': all must hold; ~ negates."""
    masks = [0, 0, 0, 0]                # pagemap set, clear; kpageflags set, clear
    shared = None
    for word in filter(None, map(str.strip, (text or "").split(","))):
        negate = word.startswith("~")
        name = word.lstrip("~").lower().replace("_", "-")
        if name in MATCH_PAGEMAP:
            masks[negate] |= MATCH_PAGEMAP[name]
        elif name.replace("-", "_") in MATCH_KPF:
            masks[2 + negate] |= MATCH_KPF[name.replace("-", "_")]
        elif name in MATCH_OTHER:
            shared = not negate
        else:
            names = sorted(set(MATCH_PAGEMAP) | set(MATCH_KPF) | set(MATCH_OTHER))
            raise UsageError("unknown --match name %r; valid names (prefix ~ to negate, "
                             "join with commas): %s" % (word, ", ".join(names)))
    return MatchSpec(*masks + [shared, written])


def match_needs_kpage(spec):
    # type: (MatchSpec) -> bool
    return bool(spec.kpf_set or spec.kpf_clear or spec.shared is not None)


_MARKER_BITS = PM_PRESENT | PM_SWAP | PM_SWAP_TYPE_MASK


def run_states(runs):
    # type: (List[Tuple[int, int, Any]]) -> List[int]
    """Bits 55-63 of each run's first entry (-1 past the end), a PTE marker's
    swap bit cleared (see decode_entry): what --match and a summary by flags
    read of a run. Markers are looked for only where some run is swapped."""
    tops = [-1 if raw is None else raw >> 55 for _, _, raw in runs]
    if 1 in map((7).__rrshift__, set(tops)):    # swap bit without present bit
        tops = [-1 if raw is None else raw >> 55 ^ (
            raw & _MARKER_BITS == _MARKER_BITS ^ PM_PRESENT) << 7 for _, _, raw in runs]
    return tops


def entry_matches(spec, raw, kernel=None):
    # type: (MatchSpec, int, Optional[Tuple[int, int]]) -> bool
    """The pagemap part of a spec for an entry of a kernel version: the same
    for every page of a run."""
    if old_page_shift(raw, kernel) is not None:
        raw &= ~(0x3f << 55)
    return raw & spec.pm_set == spec.pm_set and not raw & spec.pm_clear and (
        not spec.written or bool(raw & PM_SOFT_DIRTY and raw & (PM_PRESENT | PM_SWAP)))


def lanes_matching(spec, n, flags, counts, known=None):
    # type: (MatchSpec, int, Optional[bytes], Optional[bytes], Optional[bytes]) -> bytes
    """The kpageflags and map count part of a spec, on whole buffers of n pages:
    one byte per page, 1 where its kpageflags and map count (little-endian
    buffers, same order; None: unknown, which never matches) pass spec, and
    known (one byte per page, if given) is 1. A map count above 1 is shared,
    except the zero page's (smaps agrees). Each byte of the lanes that matters
    is sliced out and translated to 0 or 1 (C passes over an eighth of the
    buffer); those answers combine as ints of one byte a page."""
    def lanes(buf, at, table):
        # type: (Optional[bytes], int, bytes) -> int
        return int.from_bytes((buf or b"")[at::8].translate(table), "little")
    ok = int.from_bytes(known or b"\x01" * n, "little")
    for at in range(8):     # no flags (None): no page passes a test of them
        need, deny = spec.kpf_set >> 8 * at & 0xFF, spec.kpf_clear >> 8 * at & 0xFF
        if need or deny:
            ok &= lanes(flags, at, bytes(b & need == need and not b & deny for b in range(256)))
    if spec.shared is not None:
        # Above 1: its low byte is, or another byte is not 0. The zero page's
        # map count says nothing of sharing (KPF_ZERO_PAGE: bit 24, bit 0 of byte 3).
        shared = lanes(counts, 0, b"\0\0" + _NONZERO[2:])
        for at in range(1, 8):
            shared |= lanes(counts, at, _NONZERO)
        shared &= ~lanes(flags, 3, _TAIL_LANE)
        # Not shared: only where a count was read (none if counts is None).
        ok &= shared if spec.shared else ~shared & lanes(counts, 0, b"\x01" * 256)
    return ok.to_bytes(n, "little")


# --- formatting -------------------------------------------------------------

TEXT_ROW = "%-18s %-18s %-14s %-20s %-22s %s"
TEXT_HEADER = TEXT_ROW % ("VADDR", "PADDR", "PFN", "STATE", "FLAGS", "MAPPING")


def hex_or_dash(value):
    # type: (Optional[int]) -> str
    return "-" if value is None else "0x%x" % value


def format_text(tr, verbose):
    # type: (Translation, bool) -> List[str]
    """The text lines for one translation: the record, then indented detail lines."""
    entry = tr.entry or NO_ENTRY
    # A hidden PFN reads 0: no real one (as in JSON).
    lines = [TEXT_ROW % (hex_or_dash(tr.vaddr), hex_or_dash(tr.paddr), hex_or_dash(
        None if tr.paddr is None else entry.pfn),
                         tr.status, ",".join(entry_flag_names(entry)) or "-",
                         mapping_label(tr.mapping))]
    if tr.note:
        lines.append("  note: " + tr.note)
    if tr.page:
        lines += format_page(tr.page)
    if verbose and tr.entry:
        # Offset and bytes of the entry, the way the seed's C tool showed them.
        line = "  entry: 0x%016x" % entry.raw
        if tr.vaddr is not None:  # --each leaves it to here
            line += ", file offset 0x%x" % (tr.vaddr // tr.page_size * 8)
        if tr.entry_bytes is not None:
            line += ", bytes " + " ".join(map("{:02x}".format, tr.entry_bytes))
        if entry.page_shift is not None:
            line += ", page shift %d (pre-3.11 layout)" % entry.page_shift
        lines.append(line)
    return lines


def format_page(page):
    # type: (PageInfo) -> List[str]
    """Detail lines for the physical page: 'huge:' and, with --flags, 'page:'."""
    flags, count, inode, path, node, iomem, huge = page
    lines = []
    if huge:
        where = ("physical base 0x%x (head PFN 0x%x)" % (huge.phys_base, huge.head_pfn)
                 if huge.phys_base is not None else "physical base hidden")
        lines.append("  huge: in a %s %s page: %s, offset 0x%x, virtual base 0x%x" % (
            human_size(huge.size), huge.kind, where, huge.offset, huge.virt_base))
    facts = ""
    if flags is not None:
        facts += "; flags %s (0x%x)" % (",".join(kpageflag_names(flags)) or "-", flags)
    if count is not None:
        facts += "; map count %d" % count
    if inode:
        facts += "; cgroup %s" % (path or "inode %d" % inode)
    if node is not None:
        facts += "; node %d" % node
    if iomem:
        facts += "; iomem " + iomem
    if facts:
        lines.append("  page:" + facts[1:])     # "; " before the first fact: " "
    return lines


def page_json(page):
    # type: (Optional[PageInfo]) -> Optional[Dict[str, Any]]
    """The 'page' object of a result: what the physical page is."""
    if page is None:
        return None
    flags, count, inode, path, node, iomem, huge = page
    return {"kpageflags": flags, "flags": None if flags is None else kpageflag_names(flags),
            "mapcount": count, "cgroup": inode and {"inode": inode, "path": path} or None,
            "node": node, "iomem": iomem, "huge": huge and huge._asdict()}


def mapping_json(mapping):
    # type: (Optional[Mapping]) -> Optional[Dict[str, object]]
    if mapping is None:
        return None
    return {"start": mapping.start, "end": mapping.end, "perms": mapping.perms,
            "offset": mapping.offset, "path": mapping.path or None}


def translation_json(tr):
    # type: (Translation) -> Dict[str, object]
    """The documented JSON keys for one translated address."""
    entry = tr.entry or NO_ENTRY
    doc = dict(zip(Entry._fields[1:11], entry[1:11]),  # present ... swap_offset
               pid=tr.pid, vaddr=tr.vaddr, entry=entry.raw, page_size=tr.page_size,
               paddr=tr.paddr, mapping=mapping_json(tr.mapping), status=tr.status,
               note=tr.note or None, page=page_json(tr.page),
               swap_area=tr.swap_area and tr.swap_area.path)
    if tr.paddr is None:
        doc["pfn"] = None                # a hidden PFN reads 0: not a real one
    return doc


def split_by_mappings(maps, start, end):
    # type: (List[Mapping], int, int) -> List[Tuple[int, int, Optional[Mapping]]]
    """Cut [start, end) at mapping edges: (start, end, mapping or None for a hole)."""
    pieces = []  # type: List[Tuple[int, int, Optional[Mapping]]]
    pos = start
    for m in maps:
        if m.end <= pos:
            continue
        if m.start >= end:
            break
        if m.start > pos:
            pieces.append((pos, m.start, None))
        pieces.append((max(pos, m.start), min(end, m.end), m))
        pos = min(end, m.end)
    if pos < end:
        pieces.append((pos, end, None))
    return pieces


RUN_HEADER = "%-35s %-35s %9s %-20s %-22s %s" % (
    "VRANGE", "PRANGE", "PAGES", "STATE", "FLAGS", "MAPPING")


def json_template(doc, varying, texts=()):
    # type: (Dict[str, Any], Tuple[str, ...], Tuple[str, ...]) -> str
    """doc as json.dumps(doc, sort_keys=True) writes it, with a %d for the value
    of each key in varying and a %s (JSON text) for each in texts: filled in
    key order, one % a record."""
    import json
    return "{%s}" % ", ".join("%s: %s" % (json.dumps(key), "%d" if key in varying else "%s" if (
        key in texts) else json.dumps(doc[key], sort_keys=True).replace("%", "%%"))
        for key in sorted(doc))


def shape_key(raw):
    # type: (Optional[int]) -> int
    """What decides how a run prints, besides its addresses: its flags (bits
    55-63), the swap type of a swapped entry, whether a present or swapped one
    shows its PFN or swap location; -1 for the part beyond the address space
    (raw None)."""
    if raw is None:
        return -1
    if not raw & PM_PFRAME_MASK and raw & (PM_PRESENT | PM_SWAP):
        return -2 - (raw >> 55)         # hidden (4.2+ without CAP_SYS_ADMIN)
    return raw & _RUN_KEEP_SWAP if raw & PM_SWAP and not raw & PM_PRESENT else raw >> 55


def vary_of(entry, paddr):
    # type: (Optional[Entry], Optional[int]) -> str
    """What changes along a run of entries like this one, besides addresses:
    'paddr' (PFN and entry), 'swap' (slot and entry), 'entry' or ''."""
    if entry is None:
        return ""
    if paddr is not None:
        return "paddr"
    return "swap" if entry.swap_type is not None else "entry"


VARYING = {"": (), "entry": ("entry",), "paddr": ("entry", "paddr", "pfn"),
           "swap": ("entry", "swap_offset", "swap_type")}


class RunFormatter(object):
    """Text lines or JSON objects for the runs (vpn, pages, first raw entry) of
    one mapping or hole, a batch at a time.

    What follows from a run's flags (state, flag names, the mapping) is
    formatted once per distinct flags into a template; each run then costs one
    % with its addresses and counts: no object per run."""

    def __init__(self, mapping, page_size, kernel, no_page_tables, as_json=False):
        # type: (Optional[Mapping], int, Optional[Tuple[int, int]], Any, bool) -> None
        self.mapping = mapping
        self.page_size = page_size
        self.kernel = kernel
        self.no_page_tables = no_page_tables
        self.as_json = as_json
        # What runs so far hid, in order: 'hidden' (PFNs), 'swap-hidden' (swap locations).
        self.hidden = []  # type: List[str]
        self._shapes = {}  # type: Dict[int, Tuple[str, str]]
        self._pages = {}  # type: Dict[Optional[PageInfo], str]

    def _shape(self, key, raw):
        # type: (int, Optional[int]) -> Tuple[str, str]
        """(template, what varies: 'paddr', 'swap', 'entry' or '') for runs like raw."""
        status, entry = "beyond-address-space", None
        if raw is not None:
            entry = decode_entry(raw, self.kernel)
            status = placed_status(entry_status(entry, self.page_size, 0, None)[0], entry,
                                   self.mapping, not raw & (PM_PRESENT | PM_SWAP)
                                   and self.no_page_tables())
        paddr = entry.pfn * self.page_size if entry and status == "present" else None
        vary = vary_of(entry, paddr)
        entry = entry or NO_ENTRY
        hidden = hidden_key(status, entry)
        if hidden and hidden not in self.hidden:
            self.hidden.append(hidden)
        if self.as_json:
            # start, end and pages are filled per run, and the page with --flags.
            template = "      " + json_template({
                "start": 0, "end": 0, "pages": 0, "status": status, "entry": entry.raw,
                "pfn": None if paddr is None else entry.pfn, "paddr": paddr,
                "flags": entry_flag_names(entry), "swap_type": entry.swap_type,
                "swap_offset": entry.swap_offset, "mapping": mapping_json(self.mapping),
                "page": None}, VARYING[vary] + ("start", "end", "pages"),
                ("page",) if vary == "paddr" else ())
        else:
            # After VRANGE (see _format); PRANGE: the physical run or swap slot,
            # filled per run, else fixed here.
            template = " %s %%9d %-20s %-22s %s" % (
                "%-35s" if vary in ("paddr", "swap") else
                "%-35s" % ("swap:hidden" if hidden == "swap-hidden" else "-"), status,
                ",".join(entry_flag_names(entry)) or "-",
                mapping_label(self.mapping).replace("%", "%%"))
        self._shapes[key] = template, vary
        return template, vary

    def lines(self, runs, infos=None):
        # type: (List[Tuple[int, int, Any]], Optional[List[Optional[PageInfo]]]) -> List[str]
        """One text line (or JSON object) per run; with infos, the PageInfo of
        each run (--flags), its 'page:' lines after the run's (or its "page").

        Runs come in stretches of one shape and VRANGE width, each formatted by
        one comprehension. A batch is usually one stretch: then its first and
        last entries in order of value (found at C speed) share their shape and
        flags, and with them every entry between (swapped ones differ in swap
        type); addresses grow, so the first and last VRANGE bound the rest."""
        import itertools
        raws = [raw for _, _, raw in runs]
        lo, hi = (min(raws), max(raws)) if raws[-1] is not None else (None, 0)  # None: last
        # A block costs some 30 C loops over the batch: more than a % a line below ~24
        # runs. Only runs of one flags byte can be one (not sparse memory's: try none).
        block = (lo is not None and lo >> 55 == hi >> 55 and not self.as_json
                 and len(runs) > 32 and self._block(runs, lo, hi))
        if block and infos is None:
            return [block]
        infos = infos or [None] * len(runs)
        if block:
            out = block.split("\n")
        elif lo is not None and lo >> 55 == hi >> 55 and lo >> 62 != 1 and shape_key(
                lo) == shape_key(hi) and len(self._vrange(runs[0])) == len(self._vrange(runs[-1])):
            out = self._format(lo, runs, infos)
        else:
            out = []
            for _, stretch in itertools.groupby(zip(runs, infos), lambda pair: (
                    shape_key(pair[0][2]), len(self._vrange(pair[0])))):
                some_runs, some_infos = zip(*stretch)
                out += self._format(some_runs[0][2], some_runs, some_infos)
        if self.as_json or not any(infos):
            return out
        # --flags: each line's 'page:' lines after it where it has any, interleaved
        # by slices and filtered in C (no string made a line).
        both = out * 2
        both[1::2] = self._page_texts(infos)
        both[0::2] = out
        return list(filter(None, both))

    def _format(self, raw, runs, infos):
        # type: (Optional[int], Any, Any) -> List[str]
        """The lines of runs of the shape of raw: values in the template's order
        (for JSON, its keys')."""
        key = shape_key(raw)
        template, vary = self._shapes.get(key) or self._shape(key, raw)
        ps, mask = self.page_size, PM_PFRAME_MASK
        if self.as_json:
            if vary == "paddr":
                return [template % ((vpn + n) * ps, raw, (raw & mask) * ps, page, n, raw & mask,
                                    vpn * ps) for (vpn, n, raw), page in zip(
                                        runs, self._page_texts(infos))]
            if vary == "swap":
                return [template % ((vpn + n) * ps, raw, n, vpn * ps, (raw & mask) >> (
                    PM_SWAP_TYPE_BITS), raw & PM_SWAP_TYPE_MASK) for vpn, n, raw in runs]
            if vary:
                return [template % ((vpn + n) * ps, raw, n, vpn * ps) for vpn, n, raw in runs]
            return [template % ((vpn + n) * ps, n, vpn * ps) for vpn, n, raw in runs]
        # VRANGE is one width here: its padding goes into the template.
        template = "0x%%x-0x%%x%s%s" % (" " * (35 - len(self._vrange(runs[0]))), template)
        if vary == "paddr":
            out = [template % (vpn * ps, (vpn + n) * ps, "0x%x-0x%x" % (
                (raw & mask) * ps, ((raw & mask) + n) * ps), n) for vpn, n, raw in runs]
        elif vary == "swap":
            out = [template % (vpn * ps, (vpn + n) * ps, "swap:%d:0x%x" % (
                raw & PM_SWAP_TYPE_MASK, (raw & mask) >> PM_SWAP_TYPE_BITS), n)
                for vpn, n, raw in runs]
        else:
            out = [template % (vpn * ps, (vpn + n) * ps, n) for vpn, n, raw in runs]
        return out

    def _block(self, runs, lo, hi):
        # type: (Any, int, int) -> Optional[str]
        """The text lines of runs as one text, if they are present runs of one
        shape whose numbers keep one width in each column: then each line is
        a line of those widths with other digits, and each digit position of
        all lines goes in by one strided slice assignment (a C loop), not a %
        a line (lo and hi: its least and greatest entries, of one flags byte).
        None otherwise."""
        ps, k = self.page_size, len(runs)
        vpns, counts, raws = zip(*runs)
        template, vary = self._shapes.get(shape_key(lo)) or self._shape(shape_key(lo), lo)
        texts = dict((n, b"%9d" % n) for n in set(counts))
        top = max(texts)
        ends = [vpns[0] * ps, (vpns[-1] + counts[-1]) * ps, (lo & PM_PFRAME_MASK) * ps,
                ((hi & PM_PFRAME_MASK) + top) * ps]
        hexes = list(map("{:x}".format, ends))
        v, v_last, p, p_last = map(len, hexes)
        if vary != "paddr" or v != v_last or p != p_last or p > 16 or top >= 10 ** 9:
            return None
        import array

        def lanes(values):  # reversed: the int's big-endian bytes are then in order
            return int.from_bytes(little_endian(array.array("Q", values[::-1]).tobytes(),
                                                sys.byteorder == "big"), "little")
        starts, pages = lanes(vpns), lanes(counts)
        pfns = lanes(raws) & lane_mask(PM_PFRAME_MASK, k)
        line = "%-35s" % ("0x%x-0x%x" % (ends[0], ends[1])) + template % (
            "0x%x-0x%x" % (ends[2], ends[3]), top)
        out = bytearray((line + "\n").encode("utf-8", "surrogatepass") * k)
        width = len(out) // k
        prange = max(35, 5 + 2 * v) + 1     # where PRANGE starts
        # Digits that change: not those all share with the first and last of
        # their range, nor the page offset's 0s. (digits, digits a line, first
        # and end of those to copy, where the field ends)
        zeros = (ps.bit_length() - 1) // 4
        vsame, psame = len(os.path.commonprefix(hexes[:2])), len(os.path.commonprefix(hexes[2:]))
        columns = [(column.to_bytes(8 * k, "big").hex().encode(), 16, 16 - used + same,
                    16 - zeros, end) for column, used, same, end in [
                        (starts * ps, v, vsame, 2 + v),
                        ((starts + pages) * ps, v, vsame, 5 + 2 * v),
                        (pfns * ps, p, psame, prange + 2 + p),
                        ((pfns + pages) * ps, p, psame, prange + 5 + 2 * p)]]
        columns.append((b"".join(map(texts.__getitem__, counts)), 9, 9 - len(str(top)), 9,
                        prange + max(35, 5 + 2 * p) + 10))
        for text, size, first, stop, end in columns:
            for j in range(first, stop):
                out[end - size + j::width] = text[j::size]
        del out[-1]
        return out.decode("utf-8", "surrogatepass")

    def _vrange(self, run):
        # type: (Tuple[int, int, Any]) -> str
        return "0x%x-0x%x" % (run[0] * self.page_size, (run[0] + run[1]) * self.page_size)

    def _page_texts(self, infos):
        # type: (Any) -> List[str]
        """Each PageInfo's 'page:' lines, or its JSON text: made once a distinct
        info (a listing's pieces share a few), the rest looked up by a C-level map."""
        if len(self._pages) > 4096:
            self._pages.clear()
        for info in set(infos).difference(self._pages):
            if self.as_json:
                import json  # here: a text listing does without (~2.5 ms)
                self._pages[info] = json.dumps(page_json(info), sort_keys=True)
            else:
                self._pages[info] = "\n".join(format_page(info) if info else ())
        return list(map(self._pages.__getitem__, infos))


def human_size(nbytes):
    # type: (int) -> str
    """1536 -> '1.5 KiB'."""
    if nbytes < 1024:
        return "%d B" % nbytes
    power = min(4, (nbytes.bit_length() - 1) // 10)     # KiB to TiB
    return "%.1f %siB" % (nbytes / 1024.0 ** power, "KMGT"[power - 1])


# A summary's byte counts in JSON key order; the text shows the first six
# columns, with --flags all of them.
SUMMARY_KEYS = ("resident", "swapped", "file", "exclusive", "soft_dirty",
                "huge") + PageCounts._fields
SUMMARY_ROW = "%-16s %-16s %-4s %12s %s  %s"
COLUMN_TITLES = "RSS SWAP FILE EXCL SDIRTY HUGE THP HUGETLB KSM ZERO SHARED DIRTY LOCKED USS PSS"

# One mapping's page counts; status 'ok', or why it has none; facts the
# PageCounts of its resident pages, with --flags.
MappingSummary = collections.namedtuple("MappingSummary", "mapping counts status facts")


def summary_values(counts, facts, page_size):
    # type: (Counts, Optional[PageCounts], int) -> List[Optional[int]]
    """Bytes for SUMMARY_KEYS; None where unknown (facts None: all of them)."""
    return [None if v is None else int(round(page_size * v))
            for v in counts[1:] + (facts or (None,) * len(PageCounts._fields))]


def summary_header(with_facts):
    # type: (bool) -> str
    titles = COLUMN_TITLES.split()[:len(SUMMARY_KEYS) if with_facts else 6]
    return SUMMARY_ROW % ("START", "END", "PERM", "SIZE_KIB", " ".join(
        map("{:>7}_KIB".format, titles)), "MAPPING")


def summary_line(start, end, perms, size, values, label):
    # type: (str, str, str, int, List[Optional[int]], str) -> str
    return SUMMARY_ROW % (start, end, perms, size // 1024, " ".join(
        "%11s" % ("-" if v is None else v // 1024) for v in values), label)


PICTURE_PLAIN = {"full": "#", "some": "+", "swapped": "s", "none": ".", "huge": "H",
                 "beyond": " ", "no-page-tables": "!"}
PICTURE_FANCY = dict(PICTURE_PLAIN, full="\u2588", some="\u2584", none="\u00b7")
PICTURE_LEGEND = ("all present", "full"), ("some present", "some"), ("huge", "huge"), \
    ("swapped", "swapped"), ("none", "none"), ("no page tables", "no-page-tables")


def block_kind(counts, status):
    # type: (Counts, str) -> str
    """The picture class of one block of pages."""
    if status != "ok":
        return "beyond" if status == "beyond-address-space" else "no-page-tables"
    if counts.huge:
        return "huge"
    if counts.present:
        return "full" if counts.present == counts.pages else "some"
    return "swapped" if counts.swapped else "none"


def picture_blocks(start_vpn, end_vpn, width):
    # type: (int, int, int) -> List[Tuple[int, int]]
    """Split pages into at most width blocks of equal size (the last may be short)."""
    per = max(1, -(-(end_vpn - start_vpn) // width))
    return [(v, min(v + per, end_vpn)) for v in range(start_vpn, end_vpn, per)]


# --- /proc layer ------------------------------------------------------------


def _open(path, flags=os.O_RDONLY):
    # type: (str, int) -> int
    """The one place that opens files: an fd, or OSError. Regular files only, as
    /proc's and /sys's are: a FIFO or device a --proc-root tree planted would
    block the read, or never end it (/dev/zero)."""
    fd = os.open(path, flags | os.O_NONBLOCK)
    if os.fstat(fd).st_mode & 0o170000 != 0o100000:  # S_ISREG
        os.close(fd)
        raise OSError(errno.ENODEV, "not a regular file", path)
    return fd


def system_page_size():
    # type: () -> int
    return os.sysconf("SC_PAGE_SIZE")


def _read_text(path):
    # type: (str) -> str
    with os.fdopen(_open(path), "rb") as f:
        return f.read().decode("utf-8", "backslashreplace")


def read_text_optional(path):
    # type: (str) -> Optional[str]
    """A small text file, or None if it cannot be read (for best-effort context)."""
    try:
        return _read_text(path)
    except OSError:
        return None


def pread_full(fd, size, offset):
    # type: (int, int, int) -> bytes
    """size bytes of fd at offset; fewer only at the end (a pread may stop short)."""
    data = b""
    while len(data) < size:
        chunk = os.pread(fd, size - len(data), offset + len(data))
        if not chunk:
            break
        data += chunk
    return data


def big_endian_format(fmt):
    # type: (str) -> bool
    """Whether entries of struct format fmt ('=Q', '<Q', '>Q') are big-endian:
    such a 1 has its low byte last."""
    return struct.pack(fmt, 1)[-1] == 1


def running_kernel(proc_root):
    # type: (str) -> Optional[Tuple[int, int]]
    """The kernel version behind proc_root (its sys/kernel/osrelease), else uname."""
    text = read_text_optional(os.path.join(proc_root, "sys", "kernel", "osrelease"))
    if text is None and proc_root == "/proc":
        text = os.uname()[2]
    try:
        return parse_kernel_version(text) if text else None
    except UsageError:
        return None


def read_privilege(proc_root):
    # type: (str) -> Privilege
    """This reader's privileges, from proc_root/self (status, uid_map)."""
    own = os.path.join(proc_root, "self")
    return parse_privilege(read_text_optional(os.path.join(own, "status")),
                           read_text_optional(os.path.join(own, "uid_map")))


class ProcessReader(object):
    """Reads one process's /proc files; the one place OSError becomes PagemapError."""

    def __init__(self, proc_root, pid, page_size, entry_format="=Q"):
        # type: (str, str, int, str) -> None
        self.proc_root = proc_root
        self.pid = pid
        self.page_size = page_size
        self.entry_struct = struct.Struct(entry_format)
        self.big_endian = big_endian_format(entry_format)
        self.dir = os.path.join(proc_root, pid)
        self.fd = None  # type: Optional[int]
        self._end = None  # type: Optional[int]
        self._wraps = None  # type: Optional[bool]
        self._scanner = None  # type: Any
        self._pmd_pages = None  # type: Optional[int]
        self.forget_maps()
        try:    # the numeric PID: 'self' resolved through its symlink; None if unknown
            self.number = int(pid if pid.isdigit() else os.readlink(self.dir))  # type: Optional[int]
        except (OSError, ValueError):
            self.number = None
        self.label = "PID %s" % (pid if self.number is None else self.number)

    # errors
    def gone_error(self):
        # type: () -> PagemapError
        root = self.proc_root
        if not os.path.isdir(root) or not os.listdir(root):
            return UnsupportedError("%s is empty or missing: /proc is not mounted (mount it "
                                    "with 'mount -t proc proc %s')" % (root, root))
        if self.pid == "self":  # every /proc has it
            return UnsupportedError("%s has no 'self': no /proc tree (give --proc-root the "
                                    "directory that holds one)" % root)
        return NoProcessError("no process with PID %s (it may have exited); list "
                              "processes with 'ps'" % self.pid)

    def _io(self, name, action, function, *args):
        # type: (str, str, Any, *Any) -> Any
        """function(*args), done on this process's file name: its OSError becomes
        a PagemapError."""
        try:
            return function(*args)
        except OSError as exc:
            code = exc.errno
            path = os.path.join(self.dir, name)
            if code == errno.ESRCH or (code == errno.ENOENT and not os.path.isdir(self.dir)):
                # Opening a kernel thread's or a zombie's pagemap fails with ESRCH: they
                # have no mm (proc_mem_open). Say which, rather than "no such process".
                error = self.address_space_problem() or self.gone_error()
            elif code in (errno.EACCES, errno.EPERM):
                # stat is world-readable: a kernel thread or zombie says so to anyone.
                error = self.address_space_problem() or PermissionDeniedError(
                    "%s: permission denied (another user's process, or a non-dumpable one "
                    "such as a setuid program, needs root; a security module may refuse even "
                    "root; Linux 4.0-4.1 allow only CAP_SYS_ADMIN)" % path)
            elif code == errno.ENOENT and name == "pagemap":
                error = UnsupportedError(
                    "%s: no such file: this kernel was built without CONFIG_PROC_PAGE_MONITOR "
                    "(common on minimal embedded kernels); rebuild it with that option" % path)
            else:
                error = ProcIOError("%s: cannot %s: %s (an error from the kernel, not a "
                                    "missing right: try again; the kernel log may say more)" % (
                                        path, action, exc.strerror or exc))
            raise error from exc

    def address_space_problem(self):
        # type: () -> Optional[PagemapError]
        """An error if the process is gone, a zombie or a kernel thread, else None."""
        try:
            stat = _read_text(os.path.join(self.dir, "stat"))
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ESRCH) and not os.path.isdir(self.dir):
                return self.gone_error()
            return None
        head, _, tail = stat.rpartition(")")
        name = head.partition("(")[2]
        fields = tail.split()
        if len(fields) < 7:
            return None
        if fields[0] in ("Z", "X"):
            return NoProcessError("%s (%s) is a zombie: it has exited and has no address "
                                  "space left; its parent has not reaped it" % (self.label, name),
                                  "zombie")
        if (parse_decimal(fields[6]) or 0) & PF_KTHREAD:
            return NoProcessError("%s (%s) is a kernel thread: it has no user address space "
                                  "to translate; pick a user process" % (self.label, name),
                                  "kernel-thread")
        return None

    def forget_maps(self):
        # type: () -> None
        """Read maps and smaps afresh next time: for watching a changing process.
        Dropping the smaps reader closes its file (CPython frees it at once)."""
        self._maps = None  # type: Optional[List[Mapping]]
        self._smaps = {}  # type: Dict[int, Dict[str, str]]
        self._smaps_blocks = None  # type: Any
        self._smaps_at = 0  # type: Optional[int]

    def maps(self):
        # type: () -> List[Mapping]
        if self._maps is None:
            path = os.path.join(self.dir, "maps")
            try:
                self._maps = parse_maps(self._io("maps", "read", _read_text, path))
            except ValueError as exc:
                raise ProcIOError("%s: unexpected content: %s (is --proc-root a /proc "
                                  "tree?)" % (path, exc)) from exc
        return self._maps

    def smaps_fields(self, mapping):
        # type: (Mapping) -> Optional[Dict[str, str]]
        """The smaps fields pagemap uses (SMAPS_KEPT) of one mapping, or None.

        smaps walks page tables as it is read, so it is read only as far as
        needed, and resumed: asking for mappings in address order (as a
        summary does) costs at most one pass, whatever the number of asks."""
        start = mapping.start
        if start not in self._smaps and self._smaps_at is not None:
            if self._smaps_blocks is None or start < self._smaps_at:
                self._smaps_blocks = self._read_smaps()     # (again) from the top
            for at in self._smaps_blocks:
                self._smaps_at = at
                if at is None or at >= start:
                    break
        return self._smaps.get(start)

    def _read_smaps(self):
        # type: () -> Any
        """Reads smaps into the cache, yielding each block's start once the block
        is complete (first -1: no block), and None at the end of the file or on
        an error."""
        start, fields = -1, {}  # type: Tuple[int, Dict[str, str]]
        try:                    # (lines before the first block are kept nowhere)
            with os.fdopen(_open(os.path.join(self.dir, "smaps")), "r",
                           errors="backslashreplace") as stream:
                for line in stream:
                    match = _MAPS_RE.match(line)
                    if match:
                        yield start
                        start = int(match.group(1), 16)
                        fields = self._smaps.setdefault(start, {})
                    else:
                        key, _, value = line.partition(":")
                        if key in SMAPS_KEPT:
                            fields[key] = value.strip()
        except OSError:
            pass
        yield None

    # pagemap
    def open_pagemap(self):
        # type: () -> int
        """The pagemap fd, opened once."""
        if self.fd is None:
            self.fd = self._io("pagemap", "open", _open, os.path.join(self.dir, "pagemap"))
        return self.fd

    def close(self):
        # type: () -> None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self._smaps_blocks = None

    def read_raw(self, vpn, count):
        # type: (int, int) -> bytes
        """Bytes of up to count entries from virtual page vpn; fewer only at EOF.

        A 32-bit kernel keeps the entry index in an unsigned long: from 2^32
        pages on it wraps round to page 0. Where the page below 4 GiB has no
        entry (TASK_SIZE at most 4 GiB), nothing is read from 2^32 pages on."""
        if vpn + count > 1 << 32:
            if self._wraps is None:
                self._wraps = not self.read_raw((1 << 32) // self.page_size - 1, 1)
            count = max(0, (1 << 32) - vpn) if self._wraps else count
        data = self._io("pagemap", "read", pread_full, self.open_pagemap(),
                        count * PM_ENTRY_BYTES, vpn * PM_ENTRY_BYTES)
        # Whole entries: a tree's file may end within one.
        return data[:len(data) & -PM_ENTRY_BYTES] if len(data) % PM_ENTRY_BYTES else data

    def next_data(self, vpn, end_vpn):
        # type: (int, int) -> int
        """The first page in [vpn, end_vpn) whose entry a regular file (a snapshot's
        rebuilt pagemap) may hold, end_vpn if none: its holes read as entries of 0.
        vpn if unknown (procfs has no SEEK_DATA: EINVAL)."""
        try:
            return min(os.lseek(self.open_pagemap(), vpn * PM_ENTRY_BYTES, os.SEEK_DATA)
                       // PM_ENTRY_BYTES, end_vpn)
        except OSError as exc:
            return end_vpn if exc.errno == errno.ENXIO else vpn

    def entry_at(self, vaddr):
        # type: (int) -> Optional[Tuple[int, bytes, int]]
        """(raw value, raw bytes, file offset) for vaddr, or None at EOF."""
        vpn = vaddr // self.page_size
        data = self.read_raw(vpn, 1)
        if len(data) < PM_ENTRY_BYTES:
            return None
        return self.entry_struct.unpack(data)[0], data, vpn * PM_ENTRY_BYTES

    def address_space_end(self):
        # type: () -> Optional[int]
        """The first virtual address the kernel reports no entry for (TASK_SIZE).

        Found by bisection on the entry index: pagemap_read returns 0 bytes at
        and beyond TASK_SIZE (the seed's "Reached end of the file"). Kept once
        found: it does not change while the process lives.
        """
        if self._end is None and self.read_raw(0, 1):
            # Past 4 GiB look only if the last page below 4 GiB reads (see read_raw).
            lo, hi = 0, (1 << 32) // self.page_size
            if self.read_raw(hi - 1, 1):
                lo, hi = hi - 1, (ADDRESS_MAX + 1) // self.page_size
            # Past 4 GiB TASK_SIZE is mostly a power of two (arm64: 2^39 to 2^52) or a
            # page below one (x86-64: 2^47 - 4K; 2^56 - 4K with 5-level tables): bisect
            # on the power first, try those two, then on pages. ~10 reads, not ~50.
            guesses = 2 if lo else 0
            while hi - lo > 1:
                if guesses and hi.bit_length() - lo.bit_length() > 1:
                    mid = (1 << (lo.bit_length() + hi.bit_length()) // 2) - 1
                elif guesses:
                    mid, guesses = (lo + 1, hi - 1)[guesses - 1], guesses - 1
                else:
                    mid = (lo + hi) // 2
                if self.read_raw(mid, 1):
                    lo = mid
                else:
                    hi = mid
            self._end = hi * self.page_size
        return self._end

    @property
    def pmd_pages(self):
        # type: () -> int
        """Pages in a PMD-sized huge page of this system (or captured one), read
        once: every page of --each --flags asks."""
        if not self._pmd_pages:
            self._pmd_pages = pmd_pages_for(self.proc_root, self.page_size)
        return self._pmd_pages

    def scanner(self):
        # type: () -> Any
        """The PAGEMAP_SCAN helper for this process, made once: on the live fd, or
        its answers recorded in a snapshot tree (<pid>/pagemap-huge)."""
        if self._scanner is None:
            try:
                with os.fdopen(_open(os.path.join(self.dir, "pagemap-huge")), "rb") as f:
                    data = f.read()
            except OSError:             # none: a live process
                self._scanner = PageScanner(self.open_pagemap(), self.page_size)
            else:
                self._scanner = RecordedScanner(data[:len(data) - len(data) % _EXTENT.size])
        return self._scanner


def read_swaps(proc_root):
    # type: (str) -> Optional[List[SwapArea]]
    text = read_text_optional(os.path.join(proc_root, "swaps"))
    return None if text is None else parse_swaps(text)


def vm_without_page_tables(reader, mapping):
    # type: (ProcessReader, Mapping) -> bool
    """True for VM_PFNMAP/VM_IO mappings, which the kernel's page walk skips."""
    if mapping.inode == 0 and (mapping.path in ("", "[heap]", "[stack]")
                               or mapping.path.startswith("[anon:")):
        # mmap(MAP_ANONYMOUS) memory never is; asking smaps would walk the whole
        # VMA (27 ms for an untouched 16 GiB one).
        return False
    flags = (reader.smaps_fields(mapping) or {}).get("VmFlags")
    if flags is not None:  # smaps has VmFlags since 3.8
        return not {"pf", "io"}.isdisjoint(flags.split())
    return mapping.path in ("[vvar]", "[vvar_vclock]") or mapping.path.startswith("/dev/mem")


def file_pages(reader, mapping):
    # type: (ProcessReader, Mapping) -> Optional[int]
    """Pages the mapped regular file has now (a device's size means nothing), None
    if it cannot be stat'ed: through map_files (root), else through its path if
    that still is the mapped inode (live /proc only: a snapshot's paths name
    another machine's files)."""
    for path in (os.path.join(reader.dir, "map_files", "%x-%x" % mapping[:2]),
                 mapping.path if reader.proc_root == "/proc" else ""):
        try:
            st = os.stat(path)
        except OSError:
            continue
        if st.st_ino == mapping.inode and st.st_mode & 0o170000 == 0o100000:  # S_ISREG
            return -(-st.st_size // reader.page_size)
    return None


class Context(object):
    """What every translation of one run shares: kernel, privileges, swap areas,
    and the readers of physical-page facts (used only where asked or needed):
    of a live or fake tree, or (captured) of a rebuilt snapshot."""

    def __init__(self, proc_root, kernel=None, flags=False, entry_format="=Q", captured=False):
        # type: (str, Optional[Tuple[int, int]], bool, str, bool) -> None
        priv = read_privilege(proc_root)
        # Only an unprivileged capture left things out; a root one missed what was missing.
        self.priv = priv._replace(captured=captured and not (priv.cap_sys_admin and
                                                             priv.initial_userns))
        self.kernel = kernel or running_kernel(proc_root)
        self.proc_root = proc_root
        self._swaps = ()  # type: Any
        self.flags = flags
        self.kpage = KPageReader(proc_root, entry_format, self.priv.captured)
        self.facts = SystemFacts(proc_root)

    @property
    def swaps(self):
        # type: () -> Optional[List[SwapArea]]
        """/proc/swaps, read when first asked for: few lookups meet a swapped page."""
        if self._swaps == ():
            self._swaps = read_swaps(self.proc_root)
        return self._swaps

    def close(self):
        # type: () -> None
        self.kpage.close()


def translate_with(reader, ctx, vaddr):
    # type: (ProcessReader, Context, int) -> Translation
    """Translate one address with an open reader."""
    found = reader.entry_at(vaddr)
    mapping, before, after = find_mapping(reader.maps(), vaddr)
    if found is None:
        limit = reader.address_space_end()
        problem = reader.address_space_problem()
        if problem is not None:
            raise problem
        if limit is None:
            # No entry at all, even at address 0, for a live process: its mm is gone.
            raise NoProcessError("%s has no address space (it exited while being read)"
                                 % reader.label)
        return Translation(reader.number, vaddr, None, None, mapping, "beyond-address-space",
                           beyond_note(vaddr, limit, reader.label, mapping), reader.page_size,
                           None, None, None, None)
    raw, data, offset = found
    entry = decode_entry(raw, ctx.kernel)
    no_tables = (mapping is not None and not entry.present and not entry.swapped
                 and vm_without_page_tables(reader, mapping))
    areas = ctx.swaps if entry.swapped else None
    status, note, paddr = explain(entry, mapping, (before, after), vaddr, reader.page_size,
                                  reader.label, areas, no_tables)
    ps = reader.page_size
    if status == "not-present" and mapping and mapping.inode and not mapping.anonymous:
        pages = file_pages(reader, mapping)
        if pages is not None and (mapping.offset + vaddr - mapping.start) // ps >= pages:
            # Mapped longer than the file, or the file shrank since: no page to fault in.
            note = ("page not present and past the end of the file (%d pages now): any access "
                    "raises SIGBUS" % pages)
    flags = ctx.kpage.value("kpageflags", entry.pfn) if paddr is not None else None
    page = describe_page(reader, ctx, vaddr, entry, mapping, flags) if entry.present else None
    # Without kpageflags (unprivileged): PAGEMAP_SCAN (6.7+) marks the zero page
    # PFNZERO (the huge one since 6.16); present but no other page: the zero page.
    if (flags or 0) & KPF_ZERO_PAGE or flags is None and entry.present and reader.scanner(
            ).regions(vaddr // ps, vaddr // ps + 1, PAGE_IS_PRESENT | PAGE_IS_PFNZERO, 0) == []:
        note = ("the shared zero page: this private memory was read but never written, so "
                "it maps the kernel's one zero-filled page (THP: its huge zero page)" + (
                    "; its physical address is hidden" if status == "pfn-hidden" else ""))
    return Translation(reader.number, vaddr, entry, paddr, mapping, status, note, reader.page_size,
                       swap_area_for(entry, areas, reader.page_size), offset, data, page)


def describe_page(reader, ctx, vaddr, entry, mapping, flags=None):
    # type: (ProcessReader, Context, int, Entry, Optional[Mapping], Optional[int]) -> Optional[PageInfo]
    """What the physical page under a present entry is.

    kpageflags is read right after the pagemap entry, but the page can still
    be freed and reused in between: the answer is a snapshot, not a lock.
    Flags, map count, cgroup, node and iomem only with --flags; the huge page
    always, from kpageflags (root; flags, if already read), else from
    PAGEMAP_SCAN and smaps.
    """
    pfn = entry.pfn
    ps = reader.page_size
    if flags is None and pfn:
        flags = ctx.kpage.value("kpageflags", pfn)
    huge = None  # type: Optional[HugePage]
    if flags is not None:
        huge = huge_page_of(ctx.kpage, pfn, flags, vaddr, ps, reader.pmd_pages)
    elif reader.scanner().regions(vaddr // ps, vaddr // ps + 1, HUGE_PRESENT, 0):
        # Without kpageflags: PAGEMAP_SCAN's HUGE category (6.7+) says PMD-mapped
        # THP or hugetlb; smaps KernelPageSize gives hugetlb's size.
        fields = mapping and reader.smaps_fields(mapping) or {}
        kernel_page = parse_kib(fields.get("KernelPageSize")) or ps
        kind, size = (("hugetlb", kernel_page) if kernel_page > ps else
                      ("THP", reader.pmd_pages * ps))
        offset = vaddr % size
        head = pfn - offset // ps if pfn else None
        huge = HugePage(kind, size, head, head and head * ps, vaddr - offset, offset)
    if ctx.flags and pfn:
        paddr = pfn * ps + vaddr % ps
        # The flags huge was found from, not a second read that may disagree.
        return physical_page_info(ctx, pfn, paddr, flags)._replace(huge=huge)
    if ctx.flags or huge is not None:
        return PageInfo(None, None, None, None, None, None, huge)
    return None


def parse_kib(text):
    # type: (Optional[str]) -> Optional[int]
    """'2048 kB' -> 2097152."""
    match = re.match(r"^\s*([0-9]{1,20})\s*kB", text or "")
    return int(match.group(1)) * 1024 if match else None


def translate_many(pid, addresses, proc_root="/proc", page_size=None, byteorder=None,
                   kernel=None):
    # type: (object, List[int], str, Optional[int], Optional[str], Optional[Tuple[int, int]]) -> List[Translation]
    """Translate virtual addresses of a process (a number or 'self')."""
    addresses = list(addresses)
    for vaddr in addresses:
        if not 0 <= vaddr < 1 << 64:
            raise UsageError("address %d is no 64-bit address" % vaddr)
    reader = ProcessReader(proc_root, parse_pid(str(pid)), page_size or system_page_size(),
                           entry_format(byteorder))
    ctx = Context(proc_root, kernel)
    try:
        found = [translate_with(reader, ctx, vaddr) for vaddr in addresses]
    finally:
        reader.close()
        ctx.close()
    # The CLI says why once, in a warning; a caller here has only the note.
    return [tr._replace(note=tr.note + ": " + hidden_pfn_reason(ctx.priv))
            if hidden_key(tr.status, tr.entry) else tr for tr in found]


def translate(pid, vaddr, proc_root="/proc", page_size=None, byteorder=None, kernel=None):
    # type: (object, int, str, Optional[int], Optional[str], Optional[Tuple[int, int]]) -> Translation
    """Translate one virtual address of a process: pagemap.translate('self', addr)."""
    return translate_many(pid, [vaddr], proc_root, page_size, byteorder, kernel)[0]


def entry_format(byteorder):
    # type: (Optional[str]) -> str
    """struct format of an entry: native unless a captured file says otherwise."""
    return {None: "=Q", "native": "=Q", "little": "<Q", "big": ">Q"}[byteorder]


# --- physical pages: /proc/kpage*, NUMA, cgroups ----------------------------------

KPAGE_FILES = ("kpageflags", "kpagecount", "kpagecgroup")


class KPageReader(object):
    """/proc/kpageflags, kpagecount and kpagecgroup: one u64 per PFN.

    Each file is opened on first use; a file that cannot be opened is
    remembered with the reason, so the pagemap view goes on without it.
    """

    def __init__(self, proc_root, entry_format="=Q", captured=False):
        # type: (str, str, bool) -> None
        self.proc_root = proc_root
        self.big_endian = big_endian_format(entry_format)
        self.fds = {}  # type: Dict[str, int]
        self.problems = {}  # type: Dict[str, str]
        self.captured = captured   # a rebuilt snapshot: what is missing was not captured
        # (page size, entry format) of this reader's own pagemap, to leave its own
        # mappings out of map counts; None when pagemap is the target itself.
        self.observer = None  # type: Optional[Tuple[int, str]]
        self._own = None  # type: Any

    def _fd(self, name):
        # type: (str) -> Optional[int]
        if name not in self.fds and name not in self.problems:
            path = os.path.join(self.proc_root, name)
            try:
                self.fds[name] = _open(path)
            except OSError as exc:
                if exc.errno in (errno.EACCES, errno.EPERM):
                    why = "needs root (the file is mode 0400)"
                elif exc.errno != errno.ENOENT:
                    why = exc.strerror or str(exc)
                elif self.captured:
                    why = ("not in the snapshot: its capture could not read it; capture it "
                           "again as root")
                else:
                    why = "missing: kernel without " + (
                        "CONFIG_MEMCG" if name == "kpagecgroup" else "CONFIG_PROC_PAGE_MONITOR")
                self.problems[name] = "%s %s" % (path, why)
        return self.fds.get(name)

    def available(self, name):
        # type: (str) -> bool
        return self._fd(name) is not None

    def _without_observer(self, data, runs):
        # type: (bytes, List[Tuple[int, int]]) -> bytes
        """Map counts less pagemap's own mappings of the same pages (its interpreter
        maps libc, libpython, ...): the counts of the system without the observer.
        data: the little-endian counts of the PFN runs [(pfn, count)] one after another."""
        import bisect
        import itertools
        low = low_bytes(data)
        if low is not None and not low.translate(None, b"\0\1"):
            return data     # every count 0 or 1 (the usual): no page the target maps is its too
        if self._own is None:
            own = own_page_counts(self.proc_root, *self.observer or (0, ""))
            pfns = sorted(own)
            self._own = pfns, list(map(own.__getitem__, pfns)), set(p >> 6 for p in pfns)
        pfns, counts, blocks = self._own
        # The runs near one of its PFNs (in one of its 64-page blocks: a few
        # thousand, clustered, of millions) by set lookups; these searched.
        near = [pfn >> 6 in blocks or (pfn + count - 1) >> 6 in blocks or count > 64
                for pfn, count in runs]
        if True not in near:
            return data
        out = bytearray(data)
        lanes = itertools.accumulate([0] + [count for _, count in runs])
        for (pfn, count), lane in itertools.compress(zip(runs, lanes), near):
            for i in range(bisect.bisect_left(pfns, pfn), bisect.bisect_left(pfns, pfn + count)):
                offset = (pfns[i] - pfn + lane) * 8
                struct.pack_into("<Q", out, offset,
                                 max(0, struct.unpack_from("<Q", out, offset)[0] - counts[i]))
        return bytes(out)

    def read_lanes(self, name, pfn, count):
        # type: (str, int, int) -> Optional[bytes]
        """Values for count PFNs from pfn as little-endian bytes; b"" past the end."""
        values, known = self._gather(name, [(pfn, count)])
        if values is None or known is None:
            return values
        return values[:known.count(1) * 8]

    def gather(self, runs, *names):
        # type: (List[Tuple[int, int]], *str) -> List[Tuple[Optional[bytes], Optional[bytes]]]
        """For each file named, the values of PFN runs [(pfn, count)] as
        little-endian bytes in the runs' order: (values, None), or, where a run
        reaches past the last PFN, (values with zeros there, one byte per PFN:
        1 where known); (None, None) if the file is unreadable."""
        return [self._gather(name, runs) for name in names]

    def _gather(self, name, runs):
        # type: (str, List[Tuple[int, int]]) -> Tuple[Optional[bytes], Optional[bytes]]
        # One pread a run in a comprehension: the kernel's ~0.5 us a read costs
        # less than any Python that sorts and merges scattered runs into fewer.
        fd = self._fd(name)
        if fd is None:
            return None, None
        import operator
        pread = os.pread
        known = None
        try:
            values = b"".join([pread(fd, count * 8, pfn * 8) for pfn, count in runs])
            if len(values) != 8 * sum(map(operator.itemgetter(1), runs)):
                # Past the last PFN (or a short read): run by run, with care.
                whole, got = bytearray(), bytearray()
                for pfn, count in runs:
                    part = pread_full(fd, count * 8, pfn * 8)
                    whole += part[:len(part) // 8 * 8].ljust(8 * count, b"\0")
                    got += (b"\x01" * (len(part) // 8)).ljust(count, b"\0")
                values, known = bytes(whole), bytes(got)
        except OSError as exc:
            self.problems[name] = "%s: %s" % (os.path.join(self.proc_root, name),
                                              exc.strerror or exc)
            return None, None
        values = little_endian(values, self.big_endian)
        if name == "kpagecount" and self.observer is not None:
            values = self._without_observer(values, runs)
        return values, known

    def value(self, name, pfn):
        # type: (str, int) -> Optional[int]
        data = self.read_lanes(name, pfn, 1)
        return _lane(data, 0) if data else None

    def close(self):
        # type: () -> None
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


class SystemFacts(object):
    """NUMA nodes, /proc/iomem and cgroup paths, read once and only when needed.

    sys_root sits beside proc_root ('/sys' for '/proc'), so a fake tree can
    carry both.
    """

    def __init__(self, proc_root):
        # type: (str) -> None
        self.proc_root = proc_root
        self.sys_root = os.path.join(os.path.dirname(proc_root.rstrip("/")) or "/", "sys")
        self._places = None  # type: Optional[Dict[Any, Tuple[Optional[int], Optional[str]]]]
        self._cgroups = None  # type: Optional[Dict[int, str]]
        self.iomem_problem = None  # type: Optional[str]

    def place_of(self, paddr):
        # type: (int) -> Tuple[Optional[int], Optional[str]]
        """(NUMA node, 'System RAM > Kernel code': the /proc/iomem regions holding
        it, or None) of a physical address. Kept for its memory block (2 MiB
        without NUMA blocks), or, in a block an iomem edge splits, for its
        stretch between edges: a --flags listing asks for every piece."""
        if self._places is None:
            self._places = {}
            self._block, self._nodes = self._read_nodes()
            text = read_text_optional(os.path.join(self.proc_root, "iomem"))
            regions = self._iomem = parse_iomem(text or "")
            if text is None:
                self.iomem_problem = "/proc/iomem unreadable"
            elif iomem_hidden(regions):
                self.iomem_problem = "/proc/iomem shows addresses only to root"
            cuts = set()  # type: set
            for r in regions:
                cuts.update((r.start, r.end + 1))
            self._edges = sorted(cuts)
        size = self._block or 1 << 21
        key = paddr // size         # type: Any
        place = self._places.get(key)
        if place is None:
            import bisect  # here, not per call: an import statement costs ~0.1 us
            edges, start = self._edges, paddr - paddr % size
            if bisect.bisect_right(edges, start) != bisect.bisect_right(edges, start + size - 1):
                key = (key, bisect.bisect_right(edges, paddr))
                place = self._places.get(key)
            if place is None:
                if len(self._places) > 1 << 16:     # 2 MiB blocks of a big server's RAM
                    self._places.clear()
                place = self._places[key] = (
                    self._nodes.get(paddr // self._block) if self._block else None,
                    None if self.iomem_problem else iomem_region(self._iomem, paddr))
        return place

    def _read_nodes(self):
        # type: () -> Tuple[int, Dict[int, int]]
        """(memory block size, {block: NUMA node}) from sysfs; (0, {}) without."""
        base = os.path.join(self.sys_root, "devices", "system")
        nodes = {}  # type: Dict[int, int]
        try:
            block = int(read_text_optional(os.path.join(base, "memory", "block_size_bytes"))
                        or "0", 16)
            for node in os.listdir(os.path.join(base, "node")):
                if re.match(r"^node\d+$", node):
                    for entry in os.listdir(os.path.join(base, "node", node)):
                        if re.match(r"^memory\d+$", entry):
                            nodes[int(entry[6:])] = int(node[4:])
        except (OSError, ValueError):
            return 0, {}
        return block, nodes

    def cgroup_path(self, inode):
        # type: (int) -> Optional[str]
        """The cgroup directory with this inode number under sys/fs/cgroup."""
        if self._cgroups is None:
            recorded = read_text_optional(os.path.join(self.proc_root, "cgroup_paths"))
            self._cgroups = {}
            if recorded is not None:     # a snapshot's: the paths its capture resolved
                for line in recorded.splitlines():
                    ino, _, path = line.partition(" ")
                    if _DECIMAL_RE.match(ino):
                        self._cgroups[int(ino)] = path
            else:
                import itertools
                # At most 50000 directories: a bound for machines with huge cgroup trees.
                for path, _dirs, _files in itertools.islice(
                        os.walk(os.path.join(self.sys_root, "fs", "cgroup")), 50000):
                    try:
                        self._cgroups.setdefault(os.stat(path).st_ino, path)
                    except OSError:
                        pass
        return self._cgroups.get(inode)


def huge_page_of(kpage, pfn, flags, vaddr, page_size, pmd_pages):
    # type: (KPageReader, int, int, int, int, int) -> Optional[HugePage]
    """The compound page holding pfn, found from its head in kpageflags.

    kpageflags is searched a PMD's worth of pages at a time, back for the head
    and on for the end, up to a PUD's worth (1 GiB on 4K pages): gigantic
    hugetlb pages are found too, and memory stays one window.
    """
    if not flags & (KPF_HUGE | KPF_THP | KPF_COMPOUND_HEAD | KPF_COMPOUND_TAIL):
        return None
    limit = pmd_pages * pmd_pages
    for hi in range(pfn + 1, max(0, pfn - limit), -pmd_pages):
        lo = max(0, hi - pmd_pages)
        window = kpage.read_lanes("kpageflags", lo, hi - lo)
        found = compound_head_in(window, hi - lo - 1) if window else -1
        if found is not None:
            break
    else:
        return None
    if found < 0:
        return None
    head = lo + found
    for start in range(head + 1, head + limit + 1, pmd_pages):
        window = kpage.read_lanes("kpageflags", start, pmd_pages) or b""
        found = compound_end_in(window, 0)
        if found is not None or len(window) < pmd_pages * 8:
            break
    else:
        return None
    end = start + (len(window) // 8 if found is None else found)
    # The huge zero page (a read fault on THP memory) is flagged THP too: no one's THP.
    kind = ("hugetlb" if flags & KPF_HUGE else "huge zero" if flags & KPF_ZERO_PAGE
            else "THP" if flags & KPF_THP else "compound")
    offset = (pfn - head) * page_size + vaddr % page_size
    return HugePage(kind, (end - head) * page_size, head, head * page_size, vaddr - offset,
                    offset)


def own_page_counts(proc_root, page_size, fmt):
    # type: (str, int, str) -> Dict[int, int]
    """{PFN: how often pagemap itself maps it}, from its own pagemap, read once
    a map count above 1 is first seen: pages it maps only later are not left out."""
    pfns = []  # type: List[int]
    reader = ProcessReader(proc_root, "self", page_size, fmt)
    try:
        walker = Walker(reader)
        for m in reader.maps():     # a few thousand pages, most runs of one: page by page
            for _, buf in walker.chunks(*page_span(m, page_size)):
                pfns += [raw & PM_PFRAME_MASK for raw in lanes_of(buf)
                         if raw >> 63 and raw & PM_PFRAME_MASK]
    except PagemapError:
        pass                    # no pagemap of its own (a snapshot's tree): nothing to leave out
    finally:
        reader.close()
    return collections.Counter(pfns)


def own_pid(proc_root):
    # type: (str) -> Optional[int]
    """pagemap's own PID as proc_root sees it (None in a tree without a self link)."""
    try:
        return int(os.readlink(os.path.join(proc_root, "self")))
    except (OSError, ValueError):
        return None


# --- walking ranges ------------------------------------------------------------

COUNT_CHUNK = 32768     # entries per read for counts: 256 KiB, a multiple of every PMD
RUN_CHUNK = 8192        # entries per read for runs: its big ints stay near 64 KiB
RUN_BATCH = 1024        # runs formatted and written at a time: bounds memory (~1 MiB of lines)
PAGEMAP_SCAN = 0xC0606610           # _IOWR('f', 16, struct pm_scan_arg), 6.7
PAGE_IS_PRESENT = 1 << 3
PAGE_IS_SWAPPED = 1 << 4
PAGE_IS_PFNZERO = 1 << 5            # in a mask: NOT the (huge) zero page, see regions()
PAGE_IS_HUGE = 1 << 6               # PMD-mapped THP or hugetlb
# HUGE alone also matches hugetlb pages never touched (6.7+): ask for present ones.
# The huge zero page (a read fault on THP memory) is no huge page of anyone's:
# smaps counts it nowhere. Kernels that do not mark it PFNZERO count it.
HUGE_PRESENT = PAGE_IS_HUGE | PAGE_IS_PRESENT | PAGE_IS_PFNZERO
SCAN_VEC_LEN = 512                  # at most 512 regions a call: avoids the stale walk_end


class PageScanner(object):
    """PAGEMAP_SCAN (Linux 6.7+) on a pagemap fd, with a one-time probe.

    Asks the kernel which pages are populated without reading entries, so
    untouched spans are skipped in microseconds. Where it fails the callers
    read entries instead: both paths give the same answers.
    """

    def __init__(self, fd, page_size):
        # type: (int, int) -> None
        self.fd = fd
        self.page_size = page_size
        self.works = None  # type: Optional[bool]
        self._vec = None  # type: Any

    def regions(self, start_vpn, end_vpn, mask, anyof, max_pages=0):
        # type: (int, int, int, int, int) -> Optional[List[Tuple[int, int]]]
        """[(first vpn, end vpn)] of matching pages, or None if the ioctl fails.
        PAGE_IS_PFNZERO in mask is inverted: pages other than the zero page."""
        ps = self.page_size
        start, end = start_vpn * ps, end_vpn * ps
        found = []  # type: List[Tuple[int, int]]
        if self.works is False or end > ADDRESS_MAX:
            return None
        try:
            import array
            import fcntl  # not in a minimal Python: entries are read instead
            vec = self._vec = self._vec or array.array("Q", bytes(24 * SCAN_VEC_LEN))
            while start < end and not (max_pages and found):
                arg = array.array("Q", (96, 0, start, end, 0, vec.buffer_info()[0], SCAN_VEC_LEN,
                                        max_pages, mask & PAGE_IS_PFNZERO, mask, anyof,
                                        mask | anyof))
                n = fcntl.ioctl(self.fd, PAGEMAP_SCAN, arg)
                self.works = True
                found.extend((vec[i] // ps, vec[i + 1] // ps) for i in range(0, 3 * n, 3))
                # Resume at walk_end, or after the last region of a full vector: its
                # walk_end may be stale (KERNEL-ABI.md). No progress: done.
                resume = max(arg[4], vec[3 * n - 2] if n == SCAN_VEC_LEN else 0)
                start = resume if resume > start else end
        except (ImportError, OSError, OverflowError) as exc:
            # ENOTTY/EINVAL before 6.7, or a captured tree's regular file: off for
            # good. EFAULT (a range past the address space end: [vsyscall]) is
            # local, and so is any failure once it has worked.
            if not self.works and getattr(exc, "errno", None) != errno.EFAULT:
                self.works = False
            return None
        return found

    def next_populated(self, start_vpn, end_vpn):
        # type: (int, int) -> Optional[int]
        """The first present or swapped page in [start, end), end if none; None if unknown."""
        found = self.regions(start_vpn, end_vpn, 0, PAGE_IS_PRESENT | PAGE_IS_SWAPPED, 1)
        if found is None:
            return None
        return found[0][0] if found else end_vpn      # regions start within the range


class RecordedScanner(PageScanner):
    """PAGEMAP_SCAN's huge-page answers as recorded in a snapshot (the
    <pid>/pagemap-huge file of a rebuilt tree); other questions go to reads."""

    works = True

    def __init__(self, data):
        # type: (bytes) -> None
        """data: (first vpn, pages) as little-endian u64 pairs, ascending and apart
        (read_extents checks); kept as arrays, 16 bytes a region, not ~150 as tuples."""
        import array
        import operator
        lanes = lanes_of(data)
        self.starts = lanes[0::2]
        self.ends = array.array("Q", map(operator.add, self.starts, lanes[1::2]))

    def regions(self, start_vpn, end_vpn, mask, anyof, max_pages=0):
        # type: (int, int, int, int, int) -> Optional[List[Tuple[int, int]]]
        if mask != HUGE_PRESENT or anyof:
            return None
        # A walk asks once a chunk: look up, among maybe a million regions.
        import bisect
        first = max(bisect.bisect_right(self.starts, start_vpn) - 1, 0)
        last = bisect.bisect_left(self.starts, end_vpn)
        return [(max(s, start_vpn), min(e, end_vpn)) for s, e in zip(
            self.starts[first:last], self.ends[first:last]) if e > start_vpn]


class PageFacts(object):
    """Collects PageCounts for the resident pages of the chunks a walk reads.

    Present pages are grouped into physical runs, so kpageflags and kpagecount
    are read once per run, right after the pagemap chunk that named them.
    """

    def __init__(self, kpage, pmd_pages=0):
        # type: (KPageReader, int) -> None
        self.kpage = kpage
        self.pmd_pages = pmd_pages      # THP memory's runs proved block by block (find_runs)
        self.usable = kpage.available("kpageflags") and kpage.available("kpagecount")
        self.total = ZERO_PAGE_COUNTS

    def reset(self):
        # type: () -> PageCounts
        total, self.total = self.total, ZERO_PAGE_COUNTS
        return total

    def __call__(self, buf):
        # type: (bytes) -> None
        """Add the facts of the resident pages of a chunk (little-endian entries)."""
        self.add(resident_runs(buf, self.pmd_pages))

    def add(self, runs):
        # type: (List[Tuple[int, int]]) -> None
        """Add the facts of physical runs [(pfn, count)] of resident pages; pages
        past the end of either file (no facts) are left out."""
        if not self.usable or not runs:
            return
        (flags, known_flags), (counts, known_counts) = self.kpage.gather(
            runs, "kpageflags", "kpagecount")
        if flags is None or counts is None:     # a read failed: unknown, not zero
            self.usable = False
            return
        if known_flags is not None or known_counts is not None:
            import array
            import itertools
            every = b"\x01" * (len(flags) // 8)
            known = bytes(map(min, known_flags or every, known_counts or every))
            flags, counts = [array.array("Q", itertools.compress(array.array("Q", values), known))
                             .tobytes() for values in (flags, counts)]
        self.total = add_counts(self.total, count_page_facts(flags, counts))


Piece = collections.namedtuple("Piece", ("vpn", "pages", "data", "beyond"))
Piece.__doc__ = ("A stretch of a walk: entries read (data), a span known empty (data None), "
                 "or the part beyond the end of the address space (beyond).")


_ZERO_CHUNK = bytes(COUNT_CHUNK * PM_ENTRY_BYTES)   # as long as the longest chunk read


class Walker(object):
    """Walks page ranges of one process in bounded chunks."""

    def __init__(self, reader, pmd_pages=None, kernel=None):
        # type: (ProcessReader, Optional[int], Optional[Tuple[int, int]]) -> None
        self.reader = reader
        self.pmd_pages = pmd_pages or reader.pmd_pages
        self.kernel = kernel            # the layout counts() reads (decode_entry's)
        self.scanner = reader.scanner()
        self.kpage = None  # type: Optional[KPageReader]  # where PFNs show: see _huge

    def _skip_empty(self, vpn, end_vpn):
        # type: (int, int) -> int
        """Where the next page with an entry may be; vpn itself if unknown.

        PAGEMAP_SCAN says, asked up to the address space end (past it: EFAULT,
        or for a task smaller than TASK_SIZE_MAX no end at all); without it
        (before 6.7, snapshots, fake trees), maps does for holes: the kernel
        reports no entries outside mappings; and so do a regular file's holes."""
        reader = self.reader
        ps = reader.page_size
        stop = min(end_vpn, (reader.address_space_end() or 0) // ps)     # 0: no entry at all
        if vpn >= stop:
            return vpn                  # a read finds the end and says why
        nxt = self.scanner.next_populated(vpn, stop)
        if nxt is not None:
            return nxt
        mapping, _, after = find_mapping(reader.maps(), vpn * ps)
        return max(vpn if mapping else min(stop, after.start // ps) if after else stop,
                   reader.next_data(vpn, stop))

    def chunks(self, vpn, end_vpn):
        """Yield (first vpn, little-endian entries) of each chunk read over
        [vpn, end_vpn); empty spans skipped, the end of the address space too."""
        for piece in self.pieces(vpn, end_vpn):
            if piece.data is not None:
                yield piece.vpn, piece.data

    def _huge_blocks(self, buf, vpn, candidates=None):
        # type: (bytes, int, Optional[List[int]]) -> Any
        """Lane indexes of the PMD blocks PAGEMAP_SCAN reports as huge pages in
        a chunk read (so not past the address space end: there it fails); none
        unless some lane is a candidate (huge_candidates, if not given)."""
        pmd = self.pmd_pages
        if candidates is None:
            candidates = huge_candidates(buf, vpn, pmd)
        if not candidates:
            return set()
        # Both scanners give regions within the range asked (None once SCAN failed).
        return {b - vpn for s, e in self.scanner.regions(
            vpn, vpn + len(buf) // 8, HUGE_PRESENT, 0) or ()
            for b in range(-(-s // pmd) * pmd, e - pmd + 1, pmd)}

    def _huge(self, buf, vpn):
        # type: (bytes, int) -> Optional[List[int]]
        """Lane indexes of a chunk's PMD blocks in PMD-mapped huge pages:
        PAGEMAP_SCAN's word, else blocks that start aligned and are one physical
        run (no SCAN: < 6.7); None if a block wholly present could be one but
        its PFNs are hidden."""
        pmd = self.pmd_pages
        candidates = huge_candidates(buf, vpn, pmd)
        blocks = self._huge_blocks(buf, vpn, candidates)
        if self.scanner.works:
            # Present blocks only, also for snapshots that recorded HUGE alone.
            blocks &= set(candidates)
            return sorted(i for i in blocks if (self.kernel or (0, 0)) >= (6, 16)
                          or not self._huge_zero(_lane(buf, i)))
        # A block wholly present is a huge page or not: without PFNs, no telling.
        if any(not _lane(buf, i) & PM_PFRAME_MASK and min(buf[i * 8 + 7:(i + pmd) * 8:8]) >> 7
               for i in candidates):
            return None
        return [i for i in candidates if contiguous_lanes(buf, i, pmd)
                and not self._huge_zero(_lane(buf, i))]

    def _huge_zero(self, raw):
        # type: (int) -> bool
        """Whether a huge page's first entry is the huge zero page (a read fault on
        THP memory), which smaps counts nowhere: kpageflags says, asked only of
        blocks not exclusive (its map count is 0). PAGEMAP_SCAN marks it PFNZERO
        since 6.16 (HUGE_PRESENT); before, and without it, this tells."""
        pfn = raw & PM_PFRAME_MASK
        return bool(self.kpage and pfn and not raw & PM_MMAP_EXCLUSIVE
                    and (self.kpage.value("kpageflags", pfn) or 0) & KPF_ZERO_PAGE)

    def huge_spans(self, vpn, end_vpn):
        # type: (int, int) -> Optional[List[Tuple[int, int]]]
        """[(first vpn, end vpn)] of the PMD blocks of [vpn, end_vpn) in huge
        pages, as counts() finds them (PAGEMAP_SCAN's spans may also hold some
        not present); None if unknown (hidden PFNs)."""
        spans = self.scanner.regions(vpn, end_vpn, HUGE_PRESENT, 0)
        # Before 6.16 its spans hold the huge zero page: _huge leaves it out.
        if spans is not None and ((self.kernel or (0, 0)) >= (6, 16) or not self.kpage):
            return spans
        spans = []
        for base, buf in self.chunks(vpn, end_vpn):
            lanes = self._huge(buf, base)
            if lanes is None:
                return None
            spans.extend((base + i, base + i + self.pmd_pages) for i in lanes)
        return spans

    def pieces(self, vpn, end_vpn, chunk=COUNT_CHUNK):
        """Yield Pieces covering [vpn, end_vpn) in order: chunks read (data: their
        entries, little-endian), spans PAGEMAP_SCAN found empty (data None), and,
        should the address space end first, the rest (beyond). Raises if the
        process went away instead. Every walk goes through here."""
        reader = self.reader
        empty = True
        while vpn < end_vpn:
            if empty:
                nxt = self._skip_empty(vpn, end_vpn)
                if nxt > vpn:
                    yield Piece(vpn, nxt - vpn, None, False)
                    vpn = nxt       # perhaps end_vpn: then nothing is read
            want = min(chunk - vpn % chunk, end_vpn - vpn)
            buf = little_endian(reader.read_raw(vpn, want), reader.big_endian)
            got = len(buf) // 8
            if got:
                yield Piece(vpn, got, buf, False)
            # Only an all-zero chunk makes it worth asking PAGEMAP_SCAN where
            # the next page is; comparing stops at the first non-zero byte.
            empty = _ZERO_CHUNK.startswith(buf)
            vpn += got
            if got < want:
                # The end of the address space, unless the process is gone.
                problem = reader.address_space_problem()
                if problem:
                    raise problem
                yield Piece(vpn, end_vpn - vpn, None, True)
                return

    def counts(self, vpn, end_vpn, facts=None):
        # type: (int, int, Optional[PageFacts]) -> Tuple[Counts, Optional[int]]
        """Counts for [vpn, end_vpn), and the vpn where the address space ended, if it did."""
        total = ZERO_COUNTS
        for piece in self.pieces(vpn, end_vpn):
            if piece.beyond:
                return total, piece.vpn
            if piece.data is None:
                total = total._replace(pages=total.pages + piece.pages)
                continue
            c = count_entries(without_page_shift(piece.data, self.kernel))
            if c.present:
                lanes = self._huge(piece.data, piece.vpn)
                c = c._replace(huge=None if lanes is None else len(lanes) * self.pmd_pages)
                if facts:
                    facts(piece.data)
            total = add_counts(total, c)
        return total, None

    def runs(self, vpn, end_vpn):
        """Iterate (first vpn, pages, first raw entry) runs over [vpn, end_vpn).

        raw is None for the part beyond the end of the address space. Runs
        found chunk by chunk are joined where a chunk edge split one; the rest
        flow from C-level iterators, so Python works per chunk, not per run.
        """
        import itertools
        return itertools.chain.from_iterable(self._run_pieces(vpn, end_vpn))

    def chunk_runs(self, base, buf):
        # type: (int, bytes) -> Tuple[Any, Any]
        """find_runs of a chunk read at vpn base, its aligned PMD blocks proved
        one run each where it is aligned to them."""
        pmd = self.pmd_pages
        aligned = base % pmd == 0 and len(buf) // 8 % pmd == 0
        return find_runs(buf, pmd if aligned else 0,
                         self._huge_blocks(buf, base) if aligned else ())

    def _run_pieces(self, vpn, end_vpn):
        """Iterables of runs, in order: each chunk's runs but its last, which
        waits to see whether the next chunk continues it (adjacent pages, same
        state, next PFN). A span skipped has one run of entry 0, the part
        beyond the end one of entry None."""
        import itertools
        import operator
        pending = None
        for piece in self.pieces(vpn, end_vpn, RUN_CHUNK):
            base, buf = piece.vpn, piece.data
            if buf is None:
                starts, lengths, lanes = [0], [piece.pages], [None if piece.beyond else 0]
            else:
                starts, lengths = self.chunk_runs(base, buf)
                lanes = lanes_of(buf)
            k = len(starts)
            first = (base + starts[0], lengths[0], lanes[starts[0]])
            if pending is not None:     # never the part beyond the end: that comes last
                last = pending[2]
                if last & PM_PRESENT and last & PM_PFRAME_MASK:
                    last += pending[1] - 1  # the entry of its last page
                if (first[2] is not None and first[0] == pending[0] + pending[1]
                        and continues_run(last, first[2])):
                    first = (pending[0], pending[1] + first[1], pending[2])
                else:
                    yield (pending,)
            if k == 1:
                pending = first
                continue
            yield (first,)
            # Their first entries by one itemgetter (given two more indexes, so
            # that it returns a tuple however few there are), vpns by running sums.
            yield zip(itertools.accumulate(itertools.chain((base + starts[1],), lengths[1:k - 2])),
                      lengths[1:k - 1], operator.itemgetter(0, 0, *starts[1:k - 1])(lanes)[2:])
            pending = (base + starts[-1], lengths[-1], lanes[starts[-1]])
        if pending is not None:
            yield (pending,)


# --- commands ---------------------------------------------------------------


# Control characters as \x1b: a file name in maps (anyone's, or a snapshot's) must
# not drive the terminal (clear it, retitle it, set its clipboard with OSC 52).
CONTROLS = dict((c, "\\x%02x" % c) for c in list(range(32)) + list(range(127, 160))
                if c not in (9, 10))
CONTROLS.update({0x2028: "\\u2028", 0x2029: "\\u2029"})  # line breaks to str.splitlines


def is_terminal(stream):
    # type: (Any) -> bool
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no such method, or closed
        return False


class Console(object):
    """Output and once-per-run warnings."""

    def __init__(self, out, err, what="standard output"):
        self.out = out
        self.err = err
        self.what = what
        self.warned = set()  # type: set
        self.aliases = []  # type: List[Tuple[str, str]]
        self.tty = is_terminal(out)

    def name(self, text):
        # type: (str) -> str
        """A message with temporary paths shown as what they stand for, on one line."""
        for path, alias in self.aliases:
            text = text.replace(path, alias)
        return text.translate(CONTROLS).replace("\n", "\\n")

    def error(self, message):
        # type: (str) -> None
        self.say("error", message)

    def say(self, kind, message):
        # type: (str, str) -> None
        """'pagemap: KIND: message' on stderr. Should stderr itself fail (a full
        disk), there is nowhere to say so: the exit code still tells."""
        try:
            self.err.write("pagemap: %s: %s\n" % (kind, self.name(message)))
        except OSError:
            pass

    def write(self, text):
        # type: (str) -> None
        if self.tty:  # a file or pipe gets the names as they are
            text = text.translate(CONTROLS)
        try:
            self.put(text + "\n")
        except UnicodeEncodeError:
            enc = getattr(self.out, "encoding", None) or "ascii"
            self.put(text.encode(enc, "backslashreplace").decode(enc) + "\n")

    def put(self, text=None):
        # type: (Optional[str]) -> None
        """Write text as it is, or with None flush: a failure (a full disk, a
        closed descriptor) is an error of its own; a closed pipe is main's."""
        try:
            if self.out is None:  # started with descriptor 1 closed
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
            if text is None:
                self.out.flush()
            else:
                self.out.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise ProcIOError("cannot write to %s: %s (write it elsewhere)"
                              % (self.what, exc.strerror)) from exc

    def json(self, doc):
        # type: (Any) -> None
        """Write doc as one indented JSON document."""
        import json
        self.write(json.dumps(doc, indent=2, sort_keys=True))

    def warn(self, key, message):
        # type: (str, str) -> None
        if key not in self.warned:
            self.warned.add(key)
            self.say("warning", message)


def silence_stdout():
    # type: () -> None
    """After a broken pipe: what is left in stdout's buffer goes nowhere, quietly."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def json_head(pid, page_size, kernel):
    # type: (Optional[int], int, Optional[Tuple[int, int]]) -> Dict[str, Any]
    """The keys every JSON document of translations starts with."""
    return {"pid": pid, "page_size": page_size,
            "kernel": "%d.%d" % kernel if kernel else None}


def emit(console, translations, verbose, header=None, priv=None):
    # type: (Console, Any, bool, Optional[Dict[str, Any]], Optional[Privilege]) -> None
    """Print translations as text lines, or given the keys before them (header)
    as one JSON document; given priv, warn why PFNs are hidden."""
    if header:
        console.json(dict(header, results=list(map(translation_json, translations))))
        return
    console.write(TEXT_HEADER)
    for tr in translations:
        if priv:
            warn_hidden(console, priv, hidden_key(tr.status, tr.entry))
        console.write("\n".join(format_text(tr, verbose)))


def hidden_key(status, entry):
    # type: (str, Entry) -> str
    """'hidden' (a PFN), 'swap-hidden' (a swap location) or '': what an entry of
    that status hides."""
    return "hidden" if status == "pfn-hidden" else "swap-hidden" if (
        status == "swapped" and entry.swap_type is None) else ""


def warn_hidden(console, priv, key="hidden"):
    # type: (Console, Privilege, str) -> None
    if key:
        console.warn(key, "%s: %s" % (
            "physical addresses hidden" if key == "hidden" else "swap locations hidden (a PTE "
            "marker's type too: uffd-wp and poison marks read as swapped)",
            hidden_pfn_reason(priv)))


def pmd_pages_for(proc_root, page_size):
    # type: (str, int) -> int
    """Pages in a PMD-sized huge page: from sysfs on a live system, else the
    page-table fan-out (page_size / 8 entries: 2 MiB on 4K, 32 MiB on 16K)."""
    size = parse_decimal((read_text_optional(
        "/sys/kernel/mm/transparent_hugepage/hpage_pmd_size") or "").strip()
        ) if proc_root == "/proc" else None
    return size // page_size if size and size >= page_size else page_size // PM_ENTRY_BYTES


def resolve_arguments(args, reader):
    # type: (List[str], ProcessReader) -> Tuple[List[int], List[Span], List[str]]
    """Split arguments into addresses, spans (ranges and selected mappings) and
    selectors that matched nothing."""
    addresses, spans, unmatched = [], [], []  # type: (List[int], List[Span], List[str])
    for arg in args:
        # A plain address (the usual) needs neither the selector's nor the range's pattern.
        found = [None] if re.match(_ADDRESS, arg) else select_mappings(
            reader.maps(), arg.strip()) if is_selector(arg) else [parse_range(arg)]
        if found == [None]:
            addresses.append(parse_address(arg))
        elif not found:
            unmatched.append(arg)
        spans.extend(filter(None, found))
    return addresses, spans, unmatched


def byte_changes(data):
    # type: (bytes) -> bytes
    """One byte per byte of data (each 0 or 1): 1 where the next byte differs
    (the last byte: where it is 1). One big-int pass."""
    x = int.from_bytes(data, "little")
    return (x ^ (x >> 8)).to_bytes(len(data), "little")


def cut_runs(runs, physical, cuts):
    # type: (List[Tuple[int, int, Any]], List[Tuple[int, int]], List[bytes]) -> Tuple[List[Tuple[int, int, Any]], List[int]]
    """Runs (vpn, pages, first raw entry) cut after each page of the present
    ones (physical: their PFN runs) that has a 1 in one of cuts (one byte a
    page of those runs, one after another); and the lane there of each
    piece's first page, -1 for a run not present, which stays whole."""
    import itertools
    import operator
    lanes = [0] + list(itertools.accumulate(map(operator.itemgetter(1), physical)))
    ends = bytearray(lanes[-1])
    for end in lanes[1:]:
        ends[end - 1] = 1
    union = int.from_bytes(ends, "little")    # each cut ORed in as one big int
    for cut in cuts:
        union |= int.from_bytes(cut, "little")
    ends = bytearray(union.to_bytes(len(ends), "little"))
    if len(physical) == len(runs) and ends.count(1) == len(runs):
        # Every run present and cut nowhere inside (the usual): as they are.
        return runs, lanes[:-1]
    pieces, firsts = [], []  # type: (List[Tuple[int, int, Any]], List[int])
    pos = 0                  # the lane of the run's first page
    find = ends.find
    for run in runs:
        vpn, pages, raw = run
        if raw is None or not raw >> 63 or not raw & PM_PFRAME_MASK:
            pieces.append(run)
            firsts.append(-1)
            continue
        i = 0
        while i < pages:
            j = find(1, pos + i) - pos + 1
            pieces.append((vpn + i, j - i, raw + i))
            firsts.append(pos + i)
            i = j
        pos += pages
    return pieces, firsts


class RangeView(object):
    """Runs (or single pages) of the spans asked for, in their mappings' context."""

    def __init__(self, reader, ctx, spec):
        # type: (ProcessReader, Context, Optional[MatchSpec]) -> None
        self.reader = reader
        self.ctx = ctx
        self.walker = Walker(reader, None, ctx.kernel)
        if not pfns_hidden(ctx.priv):
            self.walker.kpage = ctx.kpage
        self.spec = spec
        self._no_tables = {}  # type: Dict[int, bool]

    def flag_pieces(self, runs):
        # type: (List[Tuple[int, int, Any]]) -> Tuple[List[Tuple[int, int, Any]], List[Optional[PageInfo]]]
        """Runs split where the physical pages' kpageflags, map count or cgroup
        change, and the PageInfo each piece's pages share (None where not
        present). The kpage values of all the runs are gathered at once and
        compared on whole buffers."""
        physical, files = self.gathered(runs, KPAGE_FILES)
        # A file of one value throughout (map counts, cgroups, often) cuts nowhere.
        pieces, firsts = cut_runs(runs, physical, [
            lane_changes(values) for values, _ in files
            if values and values != values[:8] * (len(values) // 8)] + [
            byte_changes(known) for _, known in files if known is not None])
        facts = self.ctx.facts
        ps, mask = self.reader.page_size, PM_PFRAME_MASK
        # One PageInfo for the pieces alike (the formatter makes its text once).
        seen = {}  # type: Dict[Any, PageInfo]
        infos = []  # type: List[Optional[PageInfo]]
        for first, (_, _, raw), flags, count, inode in zip(
                firsts, pieces, *[lane_column(values, known, firsts) for values, known in files]):
            if first < 0:
                infos.append(None)
                continue
            key = (flags, count, inode) + facts.place_of((raw & mask) * ps)
            info = seen.get(key)
            if info is None:
                info = seen[key] = PageInfo(flags, count, inode or None, facts.cgroup_path(
                    inode) if inode else None, key[3], key[4], None)
            infos.append(info)
        return pieces, infos

    def gathered(self, runs, names):
        # type: (List[Tuple[int, int, Any]], Tuple[str, ...]) -> Tuple[List[Tuple[int, int]], Any]
        """The PFN runs of the present runs, and the kpage files' values over them."""
        physical = physical_runs(runs)
        return physical, self.ctx.kpage.gather(physical, *names)

    def no_page_tables(self, mapping):
        # type: (Optional[Mapping]) -> bool
        if not mapping:
            return False
        if mapping.start not in self._no_tables:
            self._no_tables[mapping.start] = vm_without_page_tables(self.reader, mapping)
        return self._no_tables[mapping.start]

    def shown_batches(self, span):
        """Yield (mapping, runs) covering a span in order: runs a list of at most
        RUN_BATCH (first vpn, pages, first raw entry) in one mapping (or hole),
        with --match only the runs, or parts of runs, that pass (pages outside
        mappings never do)."""
        import itertools
        ps = self.reader.page_size
        vpn0, vpn1 = page_span(span, ps)
        for start, end, mapping in split_by_mappings(self.reader.maps(), vpn0 * ps, vpn1 * ps):
            if self.spec and not mapping:
                continue
            runs = self.walker.runs(start // ps, end // ps)
            batch = list(itertools.islice(runs, RUN_BATCH))
            while batch:
                shown = self.matching(batch, self.spec) if self.spec else batch
                if shown:
                    yield mapping, shown
                batch = list(itertools.islice(runs, RUN_BATCH))

    def formatted_runs(self, span, as_json=False):
        """Yield (lines, any PFN hidden so far) for batches of a span's runs: text
        lines or JSON objects, as RunFormatter makes them."""
        formatter = None
        for mapping, runs in self.shown_batches(span):
            if formatter is None or formatter.mapping is not mapping:
                formatter = RunFormatter(mapping, self.reader.page_size, self.ctx.kernel,
                                         lambda m=mapping: self.no_page_tables(m), as_json)
            infos = None
            if self.ctx.flags:
                runs, infos = self.flag_pieces(runs)
            yield formatter.lines(runs, infos), formatter.hidden

    def matching(self, runs, spec):
        # type: (List[Tuple[int, int, Any]], MatchSpec) -> List[Tuple[int, int, int]]
        """The parts of runs (vpn, pages, first raw entry) of one mapping whose
        pages pass a --match spec, as runs. The pages of a run share their
        pagemap flags, so that part is decided once per distinct flags."""
        import itertools
        tops = run_states(runs)
        passing = set(t for t in set(tops) if t >= 0 and entry_matches(
            spec, t << 55, self.ctx.kernel))
        runs = list(itertools.compress(runs, map(passing.__contains__, tops)))
        if not match_needs_kpage(spec):
            return runs
        # No PFN, no facts: such pages cannot match.
        runs = [run for run in runs if run[2] >> 63 and run[2] & PM_PFRAME_MASK]
        physical, runs, ok = self.kpage_passing(spec, physical_runs(runs), runs)
        pieces, firsts = cut_runs(runs, physical, [byte_changes(ok)])
        return list(itertools.compress(pieces, map(ok.__getitem__, firsts)))

    def kpage_passing(self, spec, physical, tags):
        # type: (MatchSpec, List[Tuple[int, int]], List[Any]) -> Tuple[List[Tuple[int, int]], List[Any], bytes]
        """(physical, tags, ok): of PFN runs [(pfn, pages)] and a column of one
        tag a run, those that may hold pages passing the kpageflags and map count
        part of spec, and one byte a page of them, 1 where it passes. The kpage
        values of all the runs are gathered at once and tested on whole buffers."""
        import itertools
        import operator
        kpage = self.ctx.kpage
        if spec.shared and not spec.kpf_set | spec.kpf_clear:
            # Only a page mapped more than once passes: kpageflags (for the zero
            # page's, which does not) read with its count again for just the
            # runs holding one, found by jumps between them. Map counts as the
            # kernel has them find those: leaving pagemap's own mappings out
            # (a search over every run) only lowers counts, and the second read
            # does it for the runs found.
            import bisect
            kpage.observer, observer = None, kpage.observer
            try:
                [(counts, _)] = kpage.gather(physical, "kpagecount")
            finally:
                kpage.observer = observer
            ends = list(itertools.accumulate(map(operator.itemgetter(1), physical)))
            # Unreadable counts (None): no page passes, no run is chosen.
            many = lanes_matching(spec, ends[-1] if ends else 0, None, counts)
            chosen = []  # type: List[int]
            lane = many.find(1)
            while lane >= 0:
                chosen.append(bisect.bisect_right(ends, lane))
                lane = many.find(1, ends[chosen[-1]])
            physical = list(map(physical.__getitem__, chosen))
            tags = list(map(tags.__getitem__, chosen))
        files = kpage.gather(physical, *KPAGE_FILES[:1 if spec.shared is None else 2])
        known = None
        for _, part in files:       # a page is known where each file reaches it
            if part is not None:
                known = part if known is None else bytes(map(min, known, part))
        flags, counts = (list(map(operator.itemgetter(0), files)) + [None])[:2]
        return physical, tags, lanes_matching(
            spec, sum(map(operator.itemgetter(1), physical)), flags, counts, known)

    def count_matching(self, spec, vpn, end_vpn, tally):
        # type: (MatchSpec, int, int, Any) -> None
        """Add the pages of [vpn, end_vpn) (one mapping) that pass a spec needing
        kpage values to tally (a Counter) by their pagemap flags (bits
        55-63). Each chunk's runs go as columns through C-level passes (map,
        compress), not as tuples, and are not joined across chunks: a run cut
        in two costs one more read, not a wrong count."""
        import itertools
        import operator
        for base, buf in self.walker.chunks(vpn, end_vpn):
            starts, lengths = self.walker.chunk_runs(base, buf)
            # The first entries by one itemgetter (given two more indexes, so
            # that it returns a tuple however few there are).
            firsts = operator.itemgetter(0, 0, *starts)(lanes_of(buf))[2:]
            tops = list(map(operator.rshift, firsts, itertools.repeat(55)))
            pfns = list(map(PM_PFRAME_MASK.__and__, firsts))
            # A run's pages share their pagemap flags: decided once per distinct
            # flags, of present pages only (swapped pages have no kpage values).
            for top in set(tops):
                if top >> 8 and entry_matches(spec, top << 55, self.ctx.kernel):
                    runs = list(itertools.compress(zip(pfns, lengths), map(top.__eq__, tops)))
                    if runs and not min(runs)[0]:   # no PFN, no facts: cannot match
                        runs = [run for run in runs if run[0]]
                    tally[top] += self.kpage_passing(spec, runs, runs)[2].count(1)

    def pages(self, span):
        """Yield a Translation per page of a span (--each)."""
        import itertools
        ps = self.reader.page_size
        for mapping, runs in self.shown_batches(span):
            for vpn, pages, raw in runs:  # a hole's run may be 2**52 pages: no list
                raws = (itertools.repeat(None, pages) if raw is None else
                        self.page_entries(vpn, pages, raw))
                for i, page_raw in enumerate(raws):
                    yield self.page_translation(mapping, (vpn + i) * ps, page_raw)

    def page_entries(self, vpn, pages, raw):
        # type: (int, int, int) -> Any
        """The raw entries of the pages of a run whose first is raw: a present
        run's count up (PFN hidden: all alike); a swapped run (or guard region)
        shares its state, not its slots: read the pages' own."""
        import itertools
        if raw & PM_SWAP:
            return lanes_of(little_endian(self.reader.read_raw(vpn, pages),
                                          self.reader.big_endian))
        return range(raw, raw + pages) if raw & PM_PRESENT and raw & PM_PFRAME_MASK else (
            itertools.repeat(raw, pages))

    def page_translation(self, mapping, vaddr, raw):
        # type: (Optional[Mapping], int, Optional[int]) -> Translation
        """The Translation of one page, its entry raw (None: beyond the address space)."""
        ps = self.reader.page_size
        pid = self.reader.number
        if raw is None:
            return Translation(pid, vaddr, None, None, mapping, "beyond-address-space", "", ps,
                               None, None, None, None)
        entry = decode_entry(raw, self.ctx.kernel)
        areas = self.ctx.swaps if entry.swapped else None
        status, _, paddr = entry_status(entry, ps, vaddr, areas)
        status = placed_status(status, entry, mapping,
                               status == "not-present" and self.no_page_tables(mapping))
        page = (describe_page(self.reader, self.ctx, vaddr, entry, mapping)
                if self.ctx.flags and entry.present else None)
        return Translation(pid, vaddr, entry, paddr, mapping, status, "", ps,
                           swap_area_for(entry, areas, ps), None, None, page)

    def each_json(self, span):
        """Yield lists of the --each JSON objects of a span's pages (not with
        --flags): a template per mapping and shape_key, made from its first
        page's Translation, then one % a page, at most RUN_BATCH pages a list.
        The pages of runs of one shape flow from C-level iterators: Python
        works per page and per stretch, not per run."""
        import itertools
        import json
        ps = self.reader.page_size
        shapes = {}  # type: Dict[Tuple[int, int], Tuple[str, str]]
        out = []  # type: List[str]
        for mapping, runs in self.shown_batches(span):
            for key, stretch in itertools.groupby(runs, lambda run: shape_key(run[2])):
                stretch = list(stretch)
                key = (mapping.start if mapping else -1, key)
                if key not in shapes:
                    tr = self.page_translation(mapping, stretch[0][0] * ps, stretch[0][2])
                    vary = vary_of(tr.entry, tr.paddr)
                    # With areas to choose from, the offset may decide (swap_areas_for).
                    area = vary == "swap" and len(self.ctx.swaps or ()) > 1
                    shapes[key] = "      " + json_template(
                        translation_json(tr), VARYING[vary] + ("vaddr",),
                        ("swap_area",) if area else ()), "swap-area" if area else vary
                template, vary = shapes[key]
                pages = zip(itertools.chain.from_iterable(
                    itertools.repeat(raw, n) if vary in ("", "entry") else self.page_entries(
                        vpn, n, raw) for vpn, n, raw in stretch), itertools.chain.from_iterable(
                    range(vpn * ps, (vpn + n) * ps, ps) for vpn, n, _ in stretch))
                while True:
                    some = itertools.islice(pages, RUN_BATCH - len(out))
                    if vary == "paddr":     # values in the order of their keys
                        out.extend(template % (e, (e & PM_PFRAME_MASK) * ps, e & PM_PFRAME_MASK, v)
                                   for e, v in some)
                    elif vary == "swap":
                        out.extend(template % (e, (e & PM_PFRAME_MASK) >> PM_SWAP_TYPE_BITS,
                                               e & PM_SWAP_TYPE_MASK, v) for e, v in some)
                    elif vary == "swap-area":
                        out.extend(template % (e, json.dumps(getattr(swap_area_for(decode_entry(
                            e, self.ctx.kernel), self.ctx.swaps, ps), "path", None)),
                            (e & PM_PFRAME_MASK) >> PM_SWAP_TYPE_BITS, e & PM_SWAP_TYPE_MASK, v)
                            for e, v in some)
                    elif vary:
                        out.extend(template % pair for pair in some)
                    else:
                        out.extend(template % (v,) for _, v in some)
                    if len(out) < RUN_BATCH:
                        break
                    yield out
                    out = []
        if out:
            yield out


def print_ranges(console, opts, view, spans):
    # type: (Console, Namespace, RangeView, List[Span]) -> None
    """Print each span's runs (or its pages with --each) as text."""
    for span in spans:
        console.write("range %s (%s):" % (span.label, human_size(span.end - span.start)))
        if opts.each:
            emit(console, view.pages(span), opts.verbose, priv=view.ctx.priv)
            continue
        console.write(RUN_HEADER)
        for lines, hidden in view.formatted_runs(span):
            for key in hidden:
                warn_hidden(console, view.ctx.priv, key)
            console.write("\n".join(lines))


def write_json_lookup(console, opts, view, translations, spans):
    # type: (Console, Namespace, RangeView, List[Translation], List[Span]) -> None
    """The --json document for addresses and ranges, written as it is made:
    a range's runs stream out one per line, so memory stays bounded."""
    import json
    # The document whole but for its ranges, which stream in where "ranges": 0 stands
    # (no string can hold that text: JSON escapes the quotes in one).
    before, _, after = json.dumps(dict(json_head(
        view.reader.number, view.reader.page_size, view.ctx.kernel), ranges=0,
        results=list(map(translation_json, translations))), indent=2, sort_keys=True).partition(
        '"ranges": 0')
    console.write(before + '"ranges": [')
    for i, span in enumerate(spans):
        console.write("    %s, %s: [" % (json.dumps(span._asdict(), sort_keys=True)[:-1],
                                          '"pages"' if opts.each else '"runs"'))
        if opts.each and view.ctx.flags:
            batches = (["      " + json.dumps(translation_json(tr), sort_keys=True)]
                       for tr in view.pages(span))
        elif opts.each:
            batches = view.each_json(span)
        else:
            batches = (lines for lines, _ in view.formatted_runs(span, as_json=True))
        previous = None
        for batch in batches:   # never empty
            if previous:
                console.write(previous + ",")
            previous = ",\n".join(batch)
        if previous:
            console.write(previous)
        console.write("    ]}" + ("," if i + 1 < len(spans) else ""))
    console.write("  ]" + after)


def whole_or_nothing(console, write, *args):
    # type: (Console, Any, *Any) -> None
    """Run write(*args) into a spool (memory, a temp file past 8 MiB) and copy it to the
    output only once complete: a target that exits midway leaves no half document."""
    try:
        import tempfile
        spool = tempfile.SpooledTemporaryFile(8 << 20, "w+")  # type: Any
    except ImportError:  # a minimal Python (Yocto splits tempfile out): memory only
        import io
        spool = io.StringIO()
    out, console.out = console.out, spool
    try:
        try:
            write(*args)
        except ProcIOError as exc:  # a full disk: the spool's writes, not a read
            cause = exc.__cause__  # type: Any
            if getattr(cause, "errno", None) not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise ProcIOError("no room for the JSON document in the temporary directory: %s "
                              "(free space there or set TMPDIR)" % cause.strerror) from exc
        spool.seek(0)
        console.out = out
        for chunk in iter(lambda: spool.read(65536), ""):
            console.put(chunk)
    finally:
        spool.close()
        console.out = out


def cmd_lookup(opts, console, view):
    # type: (Namespace, Console, RangeView) -> int
    """Translate addresses, and list the runs of ranges and named mappings."""
    addresses, spans, unmatched = resolve_arguments(opts.addresses, view.reader)
    translations = [translate_with(view.reader, view.ctx, vaddr) for vaddr in addresses]
    for key in sorted({hidden_key(tr.status, tr.entry) for tr in translations}):
        warn_hidden(console, view.ctx.priv, key)
    if opts.json:
        whole_or_nothing(console, write_json_lookup, console, opts, view, translations, spans)
    else:
        if translations:
            emit(console, translations, opts.verbose)
        print_ranges(console, opts, view, spans)
    if warn_unresolved(console, view.reader, unmatched, spans) or any(
            tr.paddr is None for tr in translations):
        return EXIT_UNTRANSLATED
    return EXIT_OK


def warn_unresolved(console, reader, unmatched, spans):
    # type: (Console, ProcessReader, List[str], List[Span]) -> bool
    """Warn of mapping names that matched nothing and of empty ranges; True if any."""
    for arg in unmatched:
        console.warn("unmatched:" + arg, "%r matches no mapping of %s: name a path, a file's "
                     "base name, [heap], [stack] or [anon:NAME] from /proc/%s/maps"
                     % (arg, reader.label, reader.pid))
    empty = [s for s in spans if s.start == s.end]
    for span in empty:
        console.warn("empty:" + span.label, "range %s is empty: it covers no page" % span.label)
    return bool(unmatched or empty)


def passing_pages(view, spec, vpn, end_vpn, facts=None):
    # type: (RangeView, MatchSpec, int, int, Optional[PageFacts]) -> Dict[int, int]
    """The pages of [vpn, end_vpn) in one mapping that pass spec (the view's),
    counted by their flags (bits 55-63); facts, if given, gathered of them."""
    by_flags = collections.Counter()  # type: Dict[int, int]
    if match_needs_kpage(spec) and not facts:
        view.count_matching(spec, vpn, end_vpn, by_flags)
    else:
        ps = view.reader.page_size
        for _, runs in view.shown_batches(Span(vpn * ps, end_vpn * ps, "")):
            for (_, pages, _), top in zip(runs, run_states(runs)):
                by_flags[top] += pages
            if facts:
                facts.add(physical_runs(runs))
    return by_flags


def summarize_mapping(view, mapping, facts, hugetlb, swap):
    # type: (RangeView, Mapping, Optional[PageFacts], bool, bool) -> MappingSummary
    """Count one mapping's pages, with --match those that pass (and their facts,
    with --flags), or say why it has no pagemap entries: it lies beyond the end
    of the address space ([vsyscall]), it is [vvar], which the kernel maps
    VM_PFNMAP, or it is a device mapping with no pages that smaps marks
    VM_PFNMAP/VM_IO (asked only then: smaps costs a walk).

    The counts are as smaps accounts them, where the entries alone differ:
    hugetlb pages count in HUGE, not in RSS, FILE, EXCL, SHARED, USS or PSS
    (smaps: *_Hugetlb, not Rss or Pss); a shared mapping's swapped pages leave
    no swap entry (the kernel clears the PTEs), so its SWAP is smaps' Swap
    (shmem's own count). smaps (a page-table walk of its own) is read only
    where hugetlb pages may be (hugetlb: any in the system, the mapping a
    file's; with --flags, any in it) or shared memory swapped (swap: any swap
    area)."""
    reader = view.reader
    ps = reader.page_size
    vpn0, vpn1 = page_span(mapping, ps)
    counts = ZERO_COUNTS._replace(pages=vpn1 - vpn0)
    end = reader.address_space_end()
    if end is not None and mapping.start >= end:
        return MappingSummary(mapping, counts, "beyond-address-space", None)
    if mapping.path in ("[vvar]", "[vvar_vclock]"):
        return MappingSummary(mapping, counts, "no-page-tables", None)
    if not view.spec:
        counts = view.walker.counts(vpn0, vpn1, facts)[0]
    else:
        # Of the present pages that pass (bit 63: 8 of the flags), those in
        # PMD-mapped huge pages, as without --match (a large folio mapped by
        # PTEs is in none): the huge spans walked apart, in the same one pass.
        spans = view.walker.huge_spans(vpn0, vpn1)
        by_flags, huge, at = collections.Counter(), 0, vpn0  # type: (Dict[int, int], Any, int)
        for first, stop in (spans or []) + [(vpn1, vpn1)]:
            if at < first:
                by_flags.update(passing_pages(view, view.spec, at, first, facts))
            if first < stop:
                passed = passing_pages(view, view.spec, first, stop, facts)
                huge += sum(n for flags, n in passed.items() if flags >> 8)
                by_flags.update(passed)
            at = stop
        huge = None if spans is None else huge
        for flags, n in by_flags.items():
            e = decode_entry(flags << 55, view.ctx.kernel)
            counts = add_counts(counts, Counts(0, *[n * fact for fact in (
                e.present, e.swapped, e.present and e.file_shared, e.present and e.exclusive,
                (e.present or e.swapped) and e.soft_dirty, 0)]))
        counts = counts._replace(huge=huge)
    found = facts.reset() if facts and facts.usable else None
    if (not (counts.present or counts.swapped) and mapping.path.startswith("/dev/")
            and not mapping.anonymous and vm_without_page_tables(reader, mapping)):
        return MappingSummary(mapping, counts, "no-page-tables", None)
    anon_hugetlb = mapping.path.startswith("/anon_hugepage")
    # hugetlb memory is a file's (hugetlbfs; MAP_HUGETLB's /anon_hugepage): with no
    # file (inode 0), none; with --flags, kpageflags name the hugetlb pages (KPF_HUGE).
    hugetlb = hugetlb and mapping.inode != 0 and (found is None or found.hugetlb > 0)
    fields = {}  # type: Dict[str, str]
    if (hugetlb and counts.huge != 0) or (swap and mapping.shared) or anon_hugetlb:
        fields = reader.smaps_fields(mapping) or {}
        if anon_hugetlb or "ht" in fields.get("VmFlags", "").split():
            counts = counts._replace(present=0, file=0, exclusive=0, huge=counts.present)
            if found:
                found = found._replace(shared=0, uss=0, pss=0.0)
    if mapping.shared:  # its swap entries are PTE markers or migrations (hidden: any type)
        counts = counts._replace(swapped=(swap and parse_kib(fields.get("Swap")) or 0) // ps)
    return MappingSummary(mapping, counts, "ok", found)


def read_meminfo(proc_root):
    # type: (str) -> Dict[str, int]
    """The numbers of /proc/meminfo by name; {} if it cannot be read."""
    return dict((key, int(value)) for key, value in re.findall(
        r"^(\w+):\s*([0-9]{1,20})", read_text_optional(os.path.join(proc_root, "meminfo")) or "",
        re.M))


def picture_strip(walker, row, width, chars):
    # type: (Walker, MappingSummary, int, Dict[str, str]) -> Any
    """Yield one character per block of pages of a mapping."""
    ps = walker.reader.page_size
    for b0, b1 in picture_blocks(*page_span(row.mapping, ps), width):
        # Not "ok": the block's kind is the status, whatever its counts.
        counts = walker.counts(b0, b1)[0] if row.status == "ok" else ZERO_COUNTS
        if row.mapping.shared:      # no swapped page has an entry there (summarize_mapping)
            counts = counts._replace(swapped=0)
        if row.counts.huge and not counts.huge:
            # A block smaller than a huge page, or not aligned to one, sees none:
            # ask the PMD-aligned span around it.
            pmd = walker.pmd_pages
            counts = counts._replace(huge=walker.counts(b0 - b0 % pmd,
                                                        -(-b1 // pmd) * pmd)[0].huge)
        yield chars[block_kind(counts, row.status)]


def picture_style(out):
    # type: (Any) -> Tuple[Dict[str, str], int]
    """Block characters and strip width: Unicode and the terminal's width on a
    terminal that can show it, plain ASCII and 64 columns otherwise."""
    if not is_terminal(out):
        return PICTURE_PLAIN, 64
    try:
        width = max(16, min(128, os.get_terminal_size(out.fileno()).columns - 50))
    except (AttributeError, ValueError, OSError):
        width = 30      # 80 columns
    try:
        "".join(PICTURE_FANCY.values()).encode(getattr(out, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return PICTURE_PLAIN, width
    return PICTURE_FANCY, width


def cmd_summary(opts, console, view):
    # type: (Namespace, Console, RangeView) -> int
    """One row per mapping and a total, like pmap -x, or a picture per mapping."""
    if opts.json:
        whole_or_nothing(console, write_summary, opts, console, view)
    else:
        write_summary(opts, console, view)
    return EXIT_OK


def write_summary(opts, console, view):
    # type: (Namespace, Console, RangeView) -> None
    """cmd_summary's output, a mapping's row (or JSON object) written as it is
    made: memory stays bounded however many mappings (a JVM may have 260,000)."""
    reader, ctx = view.reader, view.ctx
    ps = reader.page_size
    facts = None
    if opts.flags and pfns_hidden(ctx.priv):
        console.warn("hidden", "page facts unknown: physical addresses hidden: "
                     + hidden_pfn_reason(ctx.priv))
    elif opts.flags:
        facts = PageFacts(ctx.kpage, reader.pmd_pages)
    chars, width = picture_style(console.out)
    # No hugetlb page in use, says meminfo (Hugetlb, all sizes, 4.8+; else
    # HugePages_Total): then no mapping needs smaps to tell hugetlb from THP.
    meminfo = read_meminfo(reader.proc_root)
    hugetlb = meminfo.get("Hugetlb", meminfo.get("HugePages_Total", 1)) > 0
    swap = not view.spec and ctx.swaps != []
    columns = len(SUMMARY_KEYS) if opts.flags else 6
    if opts.json:
        import json  # here: a text summary does without
        # The document streams: its head, then a mapping at a time where "mappings": 0
        # stands (no string can hold that text: JSON escapes the quotes in one).
        head, dumps = json_head(reader.number, ps, ctx.kernel), json.JSONEncoder(
            indent=2, sort_keys=True).encode    # one encoder: made per call, it costs 10 us
        before = dumps(dict(head, mappings=0)).partition('"mappings": 0')[0] + '"mappings": ['
    else:
        console.write("legend: " + "  ".join("%s %s" % (chars[k], name) for name, k in
                                            PICTURE_LEGEND) if opts.picture else
                      summary_header(opts.flags))
    mappings, previous = 0, None
    total, total_facts, size, shmem = ZERO_COUNTS, None, 0, 0
    for m in reader.maps():
        row = summarize_mapping(view, m, facts, hugetlb, swap)
        if row.counts.huge is None:
            console.warn("huge", "huge pages unknown: without PAGEMAP_SCAN (Linux 6.7+) only "
                         "PFNs show them, hidden here: " + hidden_pfn_reason(ctx.priv))
        values = summary_values(row.counts, row.facts, ps)
        doc = {"picture": "".join(picture_strip(view.walker, row, width, chars))
               } if opts.picture else {}  # type: Dict[str, Any]
        mappings += 1
        label = m.path or "[anonymous]"
        length = m.end - m.start
        if opts.json:
            doc.update(zip(SUMMARY_KEYS, values), size=length, status=row.status,
                       **(mapping_json(m) or {}))
            console.write(previous + "," if previous else before)
            previous = "    " + dumps(doc).replace("\n", "\n    ")
        elif opts.picture:
            console.write("%-33s %s |%s| %s" % ("%x-%x" % (m.start, m.end), m.perms,
                                                doc["picture"], label))
        else:
            if row.status != "ok":
                values, label = [None] * columns, "%s (%s)" % (label, row.status)
            console.write(summary_line("%x" % m.start, "%x" % m.end, m.perms, length,
                                       values[:columns], label))
        total = add_counts(total, row.counts)
        if row.facts is not None:
            total_facts = add_counts(total_facts or ZERO_PAGE_COUNTS, row.facts)
        size += length
        shmem += row.counts.swapped if m.shared else 0
    if facts is not None and not facts.usable:     # a kpage read failed: no total
        total_facts = None
    if total.swapped and pfns_hidden(ctx.priv):
        warn_hidden(console, ctx.priv, "swap-hidden")
    values = summary_values(total, total_facts, ps)
    if opts.json:
        after = dumps(dict(head, mappings=0, total=dict(
            zip(SUMMARY_KEYS, values), size=size, mappings=mappings))).partition(
            '"mappings": 0')[2]
        console.write((previous + "\n  ]" if previous else before + "]") + after)
    elif not opts.picture:
        resident, swapped, shared, exclusive = [human_size(v or 0) for v in values[:4]]
        console.write(summary_line("total", "", "", size, values[:columns],
                                   "%d mappings" % mappings))
        console.write("%s mapped, %s resident (%s file or shared, %s exclusive), %s swapped, %s" % (
            human_size(size), resident, shared, exclusive, swapped, "huge pages unknown"
            if values[5] is None else human_size(values[5]) + " in huge pages"))
        if opts.flags and total_facts is not None:
            console.write("USS %s, PSS %s (from map counts of resident pages; the zero page "
                          "counts in neither)" % (human_size(int(total_facts.uss * ps)),
                                                  human_size(int(total_facts.pss * ps))))
        if shmem:
            console.write("%s of shared memory swapped (from smaps: the kernel keeps no swap "
                          "entries for shared pages in page tables)" % human_size(shmem * ps))


def require_soft_dirty(opts, reader):
    # type: (Namespace, ProcessReader) -> None
    """Refuse --written and --clear-soft-dirty where the kernel cannot track writes,
    with the doctor's reason (it tries clear_refs and a write on its own memory)."""
    finding = check_soft_dirty(opts.proc_root, reader.page_size)
    if finding.status != "ok":
        raise UnsupportedError("cannot track writes here: " + finding.detail)


def watch_rounds(before, after):
    # type: (List[Tuple[Any, str, Tuple[int, int, int]]], List[Tuple[Any, str, Tuple[int, int, int]]]) -> Any
    """Yield the change lines between two rounds of (key, label, (present,
    swapped, written))."""
    gone = dict((key, counts) for key, _, counts in before)   # until seen again
    for key, label, counts in after:
        old = gone.pop(key, None)
        if old is None:
            yield "%s: new mapping, %d present" % (label, counts[0])
            continue
        changes = ["%+d %s (now %d)" % (now - then, word, now) for word, now, then in zip(
            ("present", "swapped", "written"), counts, old) if now != then]
        if changes:
            yield "%s: %s" % (label, ", ".join(changes))
    for key, label, _ in before:
        if key in gone:
            yield "%s: gone" % label


def cmd_watch(opts, console, walker):
    # type: (Namespace, Console, Walker) -> int
    """Repeat a summary (or ranges) every interval and print what changed."""
    import itertools
    import operator
    import time
    reader = walker.reader
    spans = None
    if opts.addresses:
        addresses, spans, unmatched = resolve_arguments(opts.addresses, reader)
        if warn_unresolved(console, reader, unmatched, spans) and not (spans or addresses):
            return EXIT_UNTRANSLATED         # nothing left to watch
        spans = spans + [Span(a, a + 1, "0x%x" % a) for a in addresses]

    def round_counts():
        reader.forget_maps()  # mappings come and go (walks skip holes by them)
        watched, shared = list(enumerate(spans or ())), set()  # type: Any, Any
        if spans is None:
            # A zombie (or exited) process has no mappings: that is no "all gone".
            problem = None if reader.maps() else reader.address_space_problem()
            if problem:
                raise problem
            watched = [((m.start, m.path), Span(m.start, m.end, "%x-%x %s" % (
                m.start, m.end, m.path or "[anonymous]"))) for m in reader.maps()]
            # A shared mapping's swap entries are no swapped pages (summarize_mapping).
            shared = set((m.start, m.path) for m in reader.maps() if m.shared)
        for key, span in watched:
            counts = walker.counts(*page_span(span, reader.page_size))[0]
            yield key, span.label, (counts.present, 0 if key in shared else counts.swapped,
                                    counts.soft_dirty)
    previous = list(round_counts())
    finding = check_soft_dirty(opts.proc_root, reader.page_size)
    if finding.status != "ok":
        console.warn("soft-dirty", "writes are not tracked, 'written' shows nothing: "
                     + finding.detail)
    totals = list(map(sum, zip((0, 0, 0), *map(operator.itemgetter(2), previous))))
    if opts.json:  # JSON lines, the headline too
        import json
        console.write(json.dumps(dict(zip(("pid", "interval", "present", "swapped", "written"),
                                          [reader.number, opts.watch] + totals)), sort_keys=True))
    else:
        console.write("watching %s every %gs: %d present, %d swapped, %d written (Ctrl-C stops)"
                      % tuple([reader.label, opts.watch] + totals))
    console.put()  # now, not with the first change: a pipe's reader waits for it
    for _ in itertools.count() if opts.times is None else range(opts.times):
        time.sleep(opts.watch)
        current = list(round_counts())
        stamp = time.strftime("%H:%M:%S")
        lines = list(watch_rounds(previous, current))
        if opts.json:
            console.write(json.dumps({"time": stamp, "changes": lines}))
        else:
            for line in lines or ["no change"]:
                console.write("%s  %s" % (stamp, line))
        console.put()
        previous = current
    return EXIT_OK


def open_process(opts, flags, captured=False):
    # type: (Namespace, bool, bool) -> Tuple[ProcessReader, Context]
    """The reader of the process opts name, and the Context of its translations;
    pagemap's own mappings left out of map counts, unless it is the target."""
    fmt = entry_format(opts.byteorder)
    reader = ProcessReader(opts.proc_root, parse_pid(opts.pid), opts.page_size, fmt)
    ctx = Context(opts.proc_root, opts.kernel_version, flags, fmt, captured)
    if reader.number != own_pid(opts.proc_root):     # ('self' is: both read its link)
        ctx.kpage.observer = (opts.page_size, fmt)
    return reader, ctx


def cmd_process(opts, console):
    # type: (Namespace, Console) -> int
    """Everything that reads one process: lookups, ranges, the summary."""
    reader, ctx = open_process(opts, opts.flags, opts.source is not None)
    try:
        reader.open_pagemap()
        if opts.written or opts.clear_soft_dirty:
            require_soft_dirty(opts, reader)
        if opts.clear_soft_dirty:
            clear_soft_dirty(opts.proc_root, reader.pid)
            console.write("cleared the soft-dirty bits of %s (4 > %s): pages written from now "
                          "on show with --written" % (reader.label,
                                                      os.path.join(reader.dir, "clear_refs")))
            return EXIT_OK
        # The page filter of --match and --written, or None for every page.
        spec = parse_match(opts.match or "", opts.written) if opts.match or opts.written else None
        # Without the kpage files no page could pass or fail: an error, not nothing.
        what = ("--physical with a PID: " if opts.physical is not None else "--match %s cannot "
                "be decided: " % opts.match if spec and match_needs_kpage(spec) else "")
        if what:
            open_kpageflags(ctx.kpage, KPAGE_FILES[:1 if not spec or spec.shared is None else 2],
                            what)
            if pfns_hidden(ctx.priv):   # kpageflags readable (root in a user namespace)
                raise PermissionDeniedError(what + "it needs PFNs, which the kernel hides "
                                            "from this reader: " + hidden_pfn_reason(ctx.priv))
        if opts.physical is not None:
            return cmd_process_physical(opts, console, reader, ctx)
        if opts.watch is not None:
            return cmd_watch(opts, console, Walker(reader, None, ctx.kernel))
        code = (cmd_lookup if opts.addresses else cmd_summary)(opts, console,
                                                               RangeView(reader, ctx, spec))
        if opts.flags:
            warn_kpage_problems(console, ctx)
        return code
    finally:
        reader.close()
        ctx.close()


def warn_kpage_problems(console, ctx):
    # type: (Console, Context) -> None
    """Once: which physical-page facts were missing, and why."""
    problems = list(filter(None, list(map(ctx.kpage.problems.get, KPAGE_FILES)) + [
        ctx.facts.iomem_problem]))
    if problems:
        console.warn("kpage", "some page facts unavailable (the pagemap view is complete): "
                     + "; ".join(problems))


PHYSICAL_CHUNK = 65536  # kpageflags entries per read: 512 KiB


def open_kpageflags(kpage, names=("kpageflags",), what=""):
    # type: (KPageReader, Any, str) -> None
    """Fail with one line if a kpage file cannot be read: root, or a kernel option."""
    for name in names:
        if not kpage.available(name):
            problem = what + kpage.problems.get(name, "/proc/%s unreadable" % name)
            if "needs root" in problem:
                raise PermissionDeniedError(problem + "; run as root")
            raise UnsupportedError(problem)


PHYSICAL_BLOCK = 512  # lanes: free memory comes in buddy blocks of up to 1024 pages
PHYSICAL_GROUPS = 65536  # distinct groups of four lanes held at most (about 10 MiB)
# Groups of four lanes (32 bytes), 16 an unpack: bytes straight from C, no tuple each.
_GROUPS_OF_FOUR = struct.Struct("32s" * 16)


def add_flag_counts(counts, groups, buf):
    # type: (Any, Any, bytes) -> None
    """Add the u64 lanes of a little-endian buffer to counts and groups (Counters).
    A block of PHYSICAL_BLOCK lanes whose lanes after the first are equal (free
    memory: the buddy allocator marks the first page of a free block apart) is
    known by its first two lanes: such blocks count in two steps a distinct pair.
    The other lanes go to groups, counted in C by group of four, for used memory
    repeats itself (see flush_groups)."""
    import itertools
    step = 8 * PHYSICAL_BLOCK
    heads, mixed = [], []
    for off in range(0, len(buf), step):
        block = buf[off:off + step]
        if len(block) == step and block[16:] == block[8:-8]:
            heads.append(block[:16])
        else:
            mixed.append(block)
    for head, times in collections.Counter(heads).items():
        counts[_lane(head, 0)] += times
        counts[_lane(head, 1)] += times * (PHYSICAL_BLOCK - 1)
    rest = b"".join(mixed)
    cut = len(rest) // _GROUPS_OF_FOUR.size * _GROUPS_OF_FOUR.size
    groups.update(itertools.chain.from_iterable(
        _GROUPS_OF_FOUR.iter_unpack(memoryview(rest)[:cut])))
    counts.update(lanes_of(rest[cut:]))
    if len(groups) > PHYSICAL_GROUPS:
        flush_groups(counts, groups)


def flush_groups(counts, groups):
    # type: (Any, Any) -> None
    """Move the lanes of groups into counts, the groups seen equally often
    together: their lanes count in C, then a value a step (in 25 GiB here 19k
    distinct groups, seen 195 distinct numbers of times)."""
    alike = collections.defaultdict(list)  # type: Dict[int, List[bytes]]
    for group, times in groups.items():
        alike[times].append(group)
    for times, same in alike.items():
        for value, n in collections.Counter(lanes_of(b"".join(same))).items():
            counts[value] += n * times
    groups.clear()


def physical_flag_counts(kpage, first, end):
    # type: (KPageReader, int, Optional[int]) -> Tuple[Dict[int, int], int]
    """{kpageflags value: pages} over PFNs [first, end) (end None: to the last
    PFN), and the PFN where reading stopped. Bounded reads."""
    counts, groups = collections.Counter(), collections.Counter()  # type: Any, Any
    pfn, last = first, ADDRESS_MAX if end is None else end
    while pfn < last:
        want = min(PHYSICAL_CHUNK, last - pfn)
        data = kpage.read_lanes("kpageflags", pfn, want) or b""
        add_flag_counts(counts, groups, data)
        pfn += len(data) // 8
        if len(data) < want * 8:
            break
    flush_groups(counts, groups)
    return counts, pfn


def process_flag_counts(walker, kpage, spans):
    # type: (Walker, KPageReader, List[Any]) -> Tuple[Dict[int, int], int]
    """{kpageflags value: pages} of the resident pages of spans (or mappings), one
    count a virtual page (as page-types -p), and the pages swapped (no PFN)."""
    counts, groups = collections.Counter(), collections.Counter()  # type: Any, Any
    swapped = beyond = 0
    for span in spans:
        for _, buf in walker.chunks(*page_span(span, walker.reader.page_size)):
            [(flags, known)] = kpage.gather(resident_runs(buf, walker.pmd_pages), "kpageflags")
            if flags is None:
                raise ProcIOError(kpage.problems["kpageflags"])
            add_flag_counts(counts, groups, flags)
            swapped += count_entries(without_page_shift(buf, walker.kernel)).swapped
            beyond += (known or b"").count(0)  # past the last PFN (device memory): read as 0
    flush_groups(counts, groups)
    return counts - collections.Counter({0: beyond}), swapped


def cmd_process_physical(opts, console, reader, ctx):
    # type: (Namespace, Console, ProcessReader, Context) -> int
    """PID --physical: the process's resident pages by kpageflags combination."""
    addresses, spans, unmatched = resolve_arguments(opts.addresses, reader)
    counts, swapped = process_flag_counts(Walker(reader, None, ctx.kernel), ctx.kpage, spans + [
        Span(a, a + 1, "") for a in addresses] if opts.addresses else reader.maps())
    write_flag_counts(console, opts.json, reader.page_size, counts, "%s's %s%s" % (
        reader.label, " ".join(opts.addresses) or "mappings",
        " (not counted: %d swapped)" % swapped if swapped else ""),
        dict(json_head(reader.number, reader.page_size, ctx.kernel), swapped=swapped))
    return EXIT_UNTRANSLATED if warn_unresolved(console, reader, unmatched, spans) else EXIT_OK


def parse_pfn_range(text):
    # type: (str) -> Tuple[int, Optional[int]]
    """--physical's PFN range: '' for all, 'START-END' or 'START+COUNT' (hex)."""
    if not text:
        return 0, None
    span = parse_range(text)
    if not span:
        raise UsageError("invalid PFN range %r: expected START-END or START+COUNT in hex, "
                         "such as 100000-140000" % (text,))
    return span.start, span.end


def cmd_physical(opts, console):
    # type: (Namespace, Console) -> int
    """System-wide physical memory by kpageflags combination (page-types' default)."""
    page_size = opts.page_size
    first, end = parse_pfn_range(opts.physical)
    kpage = KPageReader(opts.proc_root, entry_format(opts.byteorder))
    try:
        open_kpageflags(kpage)
        counts, stop = physical_flag_counts(kpage, first, end)
    finally:
        kpage.close()
    shown = stop if counts else end or first  # nothing read: the range asked for
    if write_flag_counts(console, opts.json, page_size, counts, "PFNs 0x%x-0x%x" % (
            first, shown), {"pfn_start": first, "pfn_end": stop}):
        return EXIT_OK
    console.warn("nopfn", "no page in PFNs 0x%x-0x%x: %s" % (
        first, shown, "the range is empty" if end == first else
        "it lies past the last PFN"))
    return EXIT_UNTRANSLATED


def write_flag_counts(console, as_json, page_size, counts, where, doc):
    # type: (Console, bool, int, Dict[int, int], str, Dict[str, Any]) -> int
    """Print {kpageflags value: pages}, most pages first, as a table and a total
    line over where, or as doc with the totals; returns the pages."""
    rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    total = sum(counts.values())
    if as_json:
        console.json(dict(doc, page_size=page_size, pages=total, combinations=[
            {"kpageflags": flags, "flags": kpageflag_names(flags), "pages": pages,
             "bytes": pages * page_size} for flags, pages in rows]))
    else:
        console.write("         PAGES          MIB  KPAGEFLAGS          FLAGS")
        for flags, pages in rows:
            console.write("%14d %12.1f  0x%016x  %s" % (
                pages, pages * page_size / 1048576.0, flags,
                ",".join(kpageflag_names(flags)) or "(none: free, hole or unused)"))
        console.write("total: %d pages (%s) in %s, %d flag combinations" % (
            total, human_size(total * page_size), where, len(rows)))
    return total


def physical_page_info(ctx, pfn, paddr, flags=None):
    # type: (Context, int, int, Optional[int]) -> PageInfo
    """What a physical page is, with no process: the kpage files (flags when
    already read), node, iomem."""
    kpage = ctx.kpage
    inode = kpage.value("kpagecgroup", pfn)
    return PageInfo(kpage.value("kpageflags", pfn) if flags is None else flags,
                    kpage.value("kpagecount", pfn), inode,
                    ctx.facts.cgroup_path(inode) if inode else None, *ctx.facts.place_of(paddr),
                    None)


def list_pids(proc_root):
    # type: (str) -> List[str]
    """Every numeric entry of proc_root but pagemap's own PID (reading every pagemap,
    it is no mapper of interest), in numeric order."""
    try:
        names = os.listdir(proc_root)
    except OSError as exc:
        raise UnsupportedError("%s: cannot list processes: %s (name the PIDs to search "
                               "instead)" % (proc_root, exc.strerror)) from exc
    return sorted(set(filter(_DECIMAL_RE.match, names)) - {str(own_pid(proc_root))}, key=int)


def progress_line(err, delay=1.0):
    # type: (Any, float) -> Any
    """A function showing its text as the progress line on stderr, only on a
    terminal and only once a scan is slow; "" clears the line."""
    import time
    after = time.time() + delay if is_terminal(err) else float("inf")

    def update(text):
        # type: (str) -> None
        if time.time() > after:
            err.write("\r\x1b[K" + text)
            err.flush()
    return update


def cmd_phys(opts, console):
    # type: (Namespace, Console) -> int
    """Reverse lookup: every process and virtual address mapping a physical address."""
    page_size = opts.page_size
    paddr = parse_address(opts.phys)
    pfn = paddr // page_size
    ctx = Context(opts.proc_root, opts.kernel_version)
    if pfns_hidden(ctx.priv):
        raise PermissionDeniedError("--phys needs PFNs, which the kernel hides from this "
                                    "reader: " + hidden_pfn_reason(ctx.priv))
    fmt = entry_format(opts.byteorder)
    ctx.kpage.observer = (page_size, fmt)
    pids = list(map(parse_pid, ([opts.pid] if opts.pid else []) + opts.addresses))
    for pid in pids:  # a named PID that is not there is an error, not a skipped process
        if not os.path.isdir(os.path.join(opts.proc_root, pid)):
            raise ProcessReader(opts.proc_root, pid, page_size).gone_error()
    pids = pids or list_pids(opts.proc_root)    # pagemap itself too, only if named
    pmd_pages = pmd_pages_for(opts.proc_root, page_size)  # read once, not once a process
    progress = progress_line(console.err)
    matches = []  # type: List[Dict[str, Any]]
    skipped = collections.Counter()  # type: collections.Counter
    for i, pid in enumerate(pids):
        progress("pagemap: scanning PID %s (%d of %d), %d found"
                 % (pid, i + 1, len(pids), len(matches)))
        reader = ProcessReader(opts.proc_root, pid, page_size, fmt)
        try:
            walker = Walker(reader, pmd_pages)
            for mapping in reader.maps():
                for first, buf in walker.chunks(*page_span(mapping, page_size)):
                    for index in find_pfn(buf, pfn):
                        raw = _lane(buf, index)
                        comm = read_text_optional(os.path.join(reader.dir, "comm"))
                        matches.append({"pid": int(pid), "comm": (comm or "?").strip(), "vaddr": (
                            first + index) * page_size + paddr % page_size, "entry": raw,
                            "flags": entry_flag_names(decode_entry(raw, ctx.kernel)),
                            "mapping": mapping})
        except PermissionDeniedError:
            skipped["permission denied"] += 1
        except NoProcessError as exc:
            if exc.kind == "gone":       # kernel threads and zombies map no user pages
                skipped["exited"] += 1
        except PagemapError:
            skipped["unreadable"] += 1
        finally:
            reader.close()
    progress("")
    page = physical_page_info(ctx, pfn, paddr) if opts.flags else None
    if opts.json:
        console.json({
            "paddr": paddr, "pfn": pfn, "page_size": page_size, "processes": len(pids),
            "page": page_json(page), "skipped": skipped,
            "matches": [dict(m, mapping=mapping_json(m["mapping"])) for m in matches]})
    else:
        for line in format_page(page) if page else ():
            console.write("physical 0x%x (PFN 0x%x)%s" % (paddr, pfn, line[1:]))
        row = "%-8s %-16s %-18s %-22s %s"
        console.write(row % ("PID", "COMM", "VADDR", "FLAGS", "MAPPING"))
        for m in matches:
            console.write(row % (m["pid"], m["comm"][:16], "0x%x" % m["vaddr"],
                                 ",".join(m["flags"]) or "-", mapping_label(m["mapping"])))
    if skipped:
        console.warn("skipped", "skipped %d of %d processes (%s); the page may also be "
                     "mapped there" % (sum(skipped.values()), len(pids), ", ".join(
                         "%d %s" % (n, why) for why, n in sorted(skipped.items()))))
    if opts.flags:
        warn_kpage_problems(console, ctx)
    if matches:
        return EXIT_OK
    region = ctx.facts.place_of(paddr)[1]
    if ctx.facts.iomem_problem or (region or "").startswith("System RAM"):
        console.warn("nomatch", "no process maps physical address 0x%x (PFN 0x%x): it may be "
                     "free, page cache not mapped by anyone, or kernel memory; "
                     "see --physical 0x%x+1" % (paddr, pfn, pfn))
    else:
        console.warn("nomatch", "no process maps physical address 0x%x: %s" % (paddr, (
            "/proc/iomem places it in %s, not System RAM; a driver's mapping of device "
            "memory (VM_PFNMAP) has no pagemap entries" % region) if region else
            "/proc/iomem has no memory or device there"))
    return EXIT_UNTRANSLATED


# One line of --check: status 'ok', 'warn', 'fail' or 'info'.
Finding = collections.namedtuple("Finding", "name status detail")

PAGEMAP_BITS = (((2, 6), "present 63, swapped 62, PFN 0-54"), ((3, 5), "file 61"),
                ((3, 11), "soft-dirty 55"), ((4, 2), "exclusive 56"), ((5, 13), "uffd-wp 57"),
                ((6, 15), "guard 58"))


def pagemap_bits_for(kernel):
    # type: (Optional[Tuple[int, int]]) -> str
    """The pagemap bits a kernel version defines, for the doctor."""
    if not kernel:
        return "unknown kernel version: decoding as the newest layout"
    bits = [text for since, text in PAGEMAP_BITS if kernel >= since]
    if kernel < (3, 11):
        bits.append("page shift in 55-60")
    elif kernel < (4, 2):
        bits.append("page shift in 55-60 until the first clear_refs")
    return ", ".join(bits)


def check_soft_dirty(proc_root, page_size):
    # type: (str, int) -> Finding
    """Prove soft-dirty tracking: clear our own bits, write, and look at bit 55.

    Without CONFIG_MEM_SOFT_DIRTY, 'echo 4 > clear_refs' is accepted and does
    nothing, and bit 55 never shows; a captured or fake tree can only show its
    smaps VmFlags ('sd')."""
    if proc_root != "/proc":
        smaps = read_text_optional(os.path.join(proc_root, "self", "smaps"))
        if re.search(r"^VmFlags:.*\bsd\b", smaps or "", re.M):
            return Finding("soft-dirty", "ok", "smaps VmFlags show 'sd' (CONFIG_MEM_SOFT_DIRTY)")
        return Finding("soft-dirty", "warn", "no 'sd' in smaps VmFlags: cannot tell from "
                       "this tree whether the kernel tracks writes")
    try:
        clear_soft_dirty(proc_root, "self")
    except PagemapError as exc:
        return Finding("soft-dirty", "warn", str(exc))
    probe = bytearray(b"written after clear_refs")
    reader = ProcessReader(proc_root, "self", page_size)
    try:
        found = reader.entry_at(id(probe))
    finally:
        reader.close()
    if found and found[0] & PM_SOFT_DIRTY:
        return Finding("soft-dirty", "ok", "a page written after 'echo 4 > clear_refs' shows "
                       "bit 55: --clear-soft-dirty and --written work")
    return Finding("soft-dirty", "warn", "bit 55 stays clear after a write: kernel without "
                   "CONFIG_MEM_SOFT_DIRTY, so --written cannot see writes")


def check_system(proc_root):
    # type: (str) -> Any
    """Yield THP mode, the hugetlb pool and swap areas: facts, not failures. Where
    the kernel offers no huge pages, why: an s390x CPU without EDAT-1 (QEMU's TCG
    lacks it), where the kernel leaves THP's sysfs and the hugetlb pool out, else
    the kernel's configuration."""
    features = re.search(r"^features\s*:(.*)$", read_text_optional(os.path.join(
        proc_root, "cpuinfo")) or "", re.M)  # s390x's line
    no_edat = ("the CPU lacks EDAT-1 (s390x), which huge pages need" if features
               and "edat" not in features.group(1).split() else None)
    thp_dir = os.path.join(SystemFacts(proc_root).sys_root, "kernel", "mm", "transparent_hugepage")
    mode = re.search(r"\[(\w+)\]", read_text_optional(os.path.join(thp_dir, "enabled")) or "")
    pmd = parse_decimal((read_text_optional(os.path.join(thp_dir, "hpage_pmd_size")) or "")
                        .strip())
    yield "thp", "info", ("mode %s%s" % (mode.group(1), ", PMD size %s" % human_size(pmd)
                                         if pmd else "") if mode else "not available: " + (
        no_edat or "kernel without CONFIG_TRANSPARENT_HUGEPAGE"))
    pool = read_meminfo(proc_root)
    yield "hugetlb", "info", ("%s of %s pages free, %s KiB each" % (
        pool.get("HugePages_Free", "?"), pool["HugePages_Total"], pool.get("Hugepagesize", "?"))
        if "HugePages_Total" in pool else "no hugetlb pool: " + (
            no_edat or "kernel without CONFIG_HUGETLBFS"))
    areas = read_swaps(proc_root)
    yield "swap", "info", ("/proc/swaps unreadable" if areas is None else "; ".join(
        "%s (%s, %s)" % (a.path, a.kind, human_size(a.size_kib * 1024)) for a in areas)
        or "none enabled")


def run_checks(proc_root, page_size):
    # type: (str, int) -> Any
    """Yield every doctor finding (name, status, detail); the basic lookup works
    unless one is 'fail'."""
    kernel = running_kernel(proc_root)
    yield "python", "ok", "%s, %d-bit, %s-endian" % (
        sys.version.split()[0], struct.calcsize("P") * 8, sys.byteorder)
    yield "kernel", "ok" if kernel else "warn", "%s: pagemap bits %s" % (
        "%d.%d" % kernel if kernel else "unknown", pagemap_bits_for(kernel))
    yield "page size", "ok", "%d bytes" % page_size
    reader = ProcessReader(proc_root, "self", page_size)
    kpage = KPageReader(proc_root)
    # An address of ours surely present. Live: a fresh object's own (CPython's id()
    # is the address, creating the object just wrote its page, and keep holds it).
    # In a captured or fake tree: the first page of the tree's self's first mapping.
    keep = bytearray(b"pagemap-probe")
    address = id(keep)  # type: Optional[int]
    if proc_root != "/proc":
        try:
            maps = parse_maps(read_text_optional(os.path.join(proc_root, "self", "maps")) or "")
        except ValueError:
            maps = []
        address = maps[0].start if maps else None
    vpn = (address or 0) // page_size
    try:
        try:
            found = reader.entry_at(address) if address is not None else None
        except PagemapError as exc:
            yield "pagemap", "fail", str(exc)
            return
        raw = found[0] if found else 0
        entry = decode_entry(raw, kernel) if raw & PM_PRESENT else None  # type: Optional[Entry]
        if not entry:
            yield "pagemap", "fail", ("%s/self/pagemap opens, but a page of ours at 0x%x "
                                      "does not read as present" % (proc_root, address or 0))
        else:
            yield "pagemap", "ok", ("%s/self/pagemap reads: our page at 0x%x is present"
                                    % (proc_root, address or 0))
            yield ("pfn", "ok", "visible") if entry.pfn else (
                "pfn", "warn", "hidden: " + hidden_pfn_reason(read_privilege(proc_root)))
            if entry.page_shift is not None:
                yield "layout", "info", ("entries carry the page shift (%d) in bits 55-60, as "
                                         "before 4.2: decoded by kernel version"
                                         % entry.page_shift)
        scan = PageScanner(reader.open_pagemap(), page_size)
        scan.regions(vpn, vpn + 1, PAGE_IS_PRESENT, 0)
        yield ("pagemap_scan", "ok", "PAGEMAP_SCAN works: untouched memory is skipped"
               ) if scan.works else ("pagemap_scan", "warn", "PAGEMAP_SCAN unavailable "
                                     "(Linux < 6.7, or a captured file): mappings are read "
                                     "whole instead, holes skipped by maps, same answers")
        pfn = entry and entry.pfn
        for name in KPAGE_FILES:    # each read at our page's PFN
            values = kpage.read_lanes(name, pfn or 0, 1)
            yield (name, "warn", kpage.problems.get(name, "unreadable")) if values is None else (
                name, "ok", "readable" if name != "kpageflags" else
                "readable: --flags, --phys and --physical work" if pfn else
                "readable, but with PFNs hidden (see pfn) only --physical works")
            if name == "kpageflags" and pfn and values and _lane(values, 0) & KPF_KSM:
                # Linux 6.10's rewrite of stable_page_flags() tests the mapping's KSM
                # bits with '&', true for any anonymous page, until the fix 'fs/proc:
                # fix KPF_KSM reported for all anonymous pages' (7.2, and stable).
                yield ("ksm", "warn", "kpageflags marks our own, never merged page KSM: a "
                       "known bug of Linux 6.10+ that sets KSM on every anonymous page; its "
                       "KSM flags and counts mean nothing on this kernel")
        if entry:
            yield check_soft_dirty(proc_root, page_size)
    finally:
        reader.close()
        kpage.close()
    yield from check_system(proc_root)


def cmd_check(opts, console):
    # type: (Namespace, Console) -> int
    """The doctor: what this system offers, each claim tried on our own memory."""
    findings = list(map(Finding._make, run_checks(opts.proc_root, opts.page_size)))
    failed = [f.detail for f in findings if f.status == "fail"]
    if opts.json:
        console.json({"ok": not failed, "checks": list(map(Finding._asdict, findings))})
    else:
        console.write("pagemap %s --check on %s" % (__version__, opts.proc_root))
        for f in findings:
            console.write("  %-5s %-13s %s" % (f.status, f.name, f.detail))
        console.write("result: the basic lookup " + ("does not work here (see 'fail')"
                                                     if failed else "works"))
    if not failed:
        return EXIT_OK
    console.put()
    console.error("the basic lookup does not work here: " + "; ".join(failed))
    return EXIT_UNSUPPORTED


def clear_soft_dirty(proc_root, pid):
    # type: (str, str) -> None
    """'echo 4 > /proc/PID/clear_refs' (3.11+): clear the soft-dirty bits."""
    path = os.path.join(proc_root, pid, "clear_refs")
    try:
        fd = _open(path, os.O_WRONLY | os.O_NOFOLLOW)  # never through a link
        try:
            os.write(fd, b"4")
        finally:
            os.close(fd)
    except OSError as exc:
        if exc.errno == errno.ENOENT and not os.path.isdir(os.path.join(proc_root, pid)):
            raise NoProcessError("no process with PID %s (it may have exited)" % pid) from exc
        denied = (PermissionDeniedError, "permission denied (clearing soft-dirty bits needs "
                  "root or the process's owner)")
        errors = {
            errno.EACCES: denied, errno.EPERM: denied,
            errno.ENOENT: (UnsupportedError, "no such file: kernel without "
                           "CONFIG_PROC_PAGE_MONITOR"),
            errno.EINVAL: (UnsupportedError, "the kernel refused '4': soft-dirty needs "
                           "Linux 3.11+"),
        }  # type: Dict[Optional[int], Tuple[Any, str]]
        error, why = errors.get(exc.errno, (ProcIOError, "cannot write: %s" % (
            exc.strerror or exc)))
        raise error("%s: %s" % (path, why)) from exc


def cmd_decode(opts, console):
    # type: (Namespace, Console) -> int
    """Decode raw entry values with no process at all."""
    page_size = opts.page_size
    kernel = opts.kernel_version or running_kernel(opts.proc_root)
    results = []
    code = EXIT_OK
    priv = Privilege(None, None, False)  # whoever read the value
    for raw in map(parse_entry_value, opts.decode):
        entry = decode_entry(raw, kernel)
        status, note, paddr = entry_status(entry, page_size, 0, None)
        if not opts.kernel_version and looks_like_old_layout(raw):
            note = (note + "; " if note else "") + old_layout_hint(raw)
        if entry.page_shift is not None and 1 << entry.page_shift != page_size:
            note = (note + "; " if note else "") + (
                "bits 55-60 hold page shift %d (%d-byte pages), not the %d bytes used here: "
                "give the right --page-size" % (entry.page_shift, 1 << entry.page_shift,
                                                page_size))
        if raw & PM_PRESENT and raw & PM_SWAP:
            note = ("present and swapped bits (63, 62) both set: no kernel writes that, "
                    "so this is no pagemap entry")
            code = EXIT_UNTRANSLATED
        results.append(Translation(None, None, entry, paddr, None, status, note, page_size,
                                   None, None, struct.pack(entry_format(opts.byteorder), raw),
                                   None))
    for key in sorted({hidden_key(tr.status, tr.entry) for tr in results}):
        warn_hidden(console, priv, key)
    emit(console, results, opts.verbose, json_head(None, page_size, kernel) if opts.json else None)
    return code


# --- snapshots: --capture on the board, --from on the desk --------------------------
# A snapshot is a zip: header.json, the process's text files, and pagemap entries
# and kpage values as little-endian u64 runs with "<QQ" (first, count) indexes.
# --from rebuilds a sparse /proc tree from it, so every view runs unchanged.

SNAPSHOT_FORMAT = "pagemap-snapshot"
SNAPSHOT_VERSION = 1
SNAPSHOT_BLOCK = 512    # entries stored per block: untouched blocks are left out
_EXTENT = struct.Struct("<QQ")
# The text members: where --capture reads each (under the process's /proc directory,
# /proc or /sys) and --from puts it back, and the most it may hold there: a snapshot
# is untrusted input, and a zip member can inflate a thousandfold. smaps is bounded
# by maps instead: 20 KiB a line of maps (a path of PATH_MAX newlines, each \012 in
# maps, and its fields). cgroup_paths is made by --capture.
SNAPSHOT_TEXTS = {
    "maps": ("pid", "maps", 64 << 20), "smaps": ("pid", "smaps", None),
    "stat": ("pid", "stat", 64 << 10), "comm": ("pid", "comm", 64 << 10),
    "status": ("pid", "status", 64 << 10), "swaps": ("proc", "swaps", 1 << 20),
    "iomem": ("proc", "iomem", 4 << 20), "meminfo": ("proc", "meminfo", 64 << 10),
    "reader_status": ("proc", "self/status", 64 << 10),
    "reader_uid_map": ("proc", "self/uid_map", 64 << 10),
    "cgroup_paths": ("proc", "cgroup_paths", 4 << 20),
    "thp_enabled": ("sys", "kernel/mm/transparent_hugepage/enabled", 4096),
    "hpage_pmd_size": ("sys", "kernel/mm/transparent_hugepage/hpage_pmd_size", 4096),
}
SNAPSHOT_JSON_LIMIT = 16 << 20     # header.json, numa.json
COPY_CHUNK = 1 << 20


class SnapshotWriter(object):
    """Stages the big members in unlinked temp files (a zip is written one member
    at a time), so nothing stays behind on disk however the run ends."""

    def __init__(self):
        # type: () -> None
        self.dir = None  # type: Optional[str]
        self.files = {}  # type: Dict[str, Any]

    def append(self, name, data):
        # type: (str, bytes) -> None
        if name not in self.files:
            import tempfile
            self.files[name] = tempfile.TemporaryFile(dir=self.dir)
        self.files[name].write(data)

    def zip_into(self, out, texts):
        # type: (Any, Dict[str, Optional[str]]) -> None
        """Write the zip to out: the texts, then the staged members."""
        import shutil
        import zipfile
        try:
            import zlib  # noqa: F401
            archive = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED)
        except ImportError:  # a Python without zlib stores the members
            archive = zipfile.ZipFile(out, "w")
        try:
            for name, text in sorted(texts.items()):
                if text is not None:
                    archive.writestr(name, text)
            for name, f in sorted(self.files.items()):
                f.flush()
                if sys.version_info < (3, 6):
                    # 3.5's zipfile reads a member from a path only (no ZipFile.open "w"):
                    # /proc/self/fd reopens the unlinked file (not on 9p: ENOENT).
                    archive.write("/proc/self/fd/%d" % f.fileno(), name)
                    continue
                with archive.open(name, "w", force_zip64=f.tell() > 1 << 30) as member:
                    f.seek(0)
                    shutil.copyfileobj(f, member, COPY_CHUNK)
        except BaseException:
            archive.fp = None  # abandoned: closing with a member half written raises (3.6+)
            raise
        archive.close()  # which flushes out

    def close(self):
        # type: () -> None
        for f in self.files.values():
            try:
                f.close()
            except OSError:
                pass  # a full disk, already reported: the file is gone with its fd


def capture_process(opts, reader, ctx, writer):
    # type: (Namespace, ProcessReader, Context, SnapshotWriter) -> Tuple[Dict[str, Optional[str]], Dict[str, Any]]
    """Read one process for a snapshot: (the text members, header.json among them,
    and the header). Its entries (the blocks of SNAPSHOT_BLOCK entries holding any
    non-zero one) and the kpage values of the pages they map go to the writer."""
    import json
    import time
    roots = {"pid": reader.dir, "proc": opts.proc_root, "sys": ctx.facts.sys_root}
    # maps is read again by the walk, which says why when it cannot be.
    texts = {}  # type: Dict[str, Optional[str]]
    for name, (root, place, _) in SNAPSHOT_TEXTS.items():
        texts[name] = read_text_optional(os.path.join(roots[root], place))
    ps, block = reader.page_size, SNAPSHOT_BLOCK * 8
    walker = Walker(reader)
    scanner = walker.scanner
    entries = pfns = 0
    huge = None  # True once a huge region is stored
    cgroups = set()  # type: set
    for name in ("pagemap.idx", "pagemap.bin"):
        writer.append(name, b"")  # also with no entry at all (a kernel thread)
    if scanner.next_populated(0, 1) is not None:
        writer.append("huge.idx", b"")  # SCAN works: no huge region is an answer too
    last = (reader.address_space_end() or 1 << 64) // ps
    for mapping in reader.maps():
        vpn, end = page_span(mapping, ps)
        end = min(end, last)
        for first, buf in walker.chunks(vpn, end):
            used = bytes(bool(buf[at:at + block].lstrip(b"\0"))
                         for at in range(0, len(buf), block))
            for stored in re.finditer(b"\x01+", used):  # adjacent blocks join
                at, upto = stored.start() * block, min(stored.end() * block, len(buf))
                count = (upto - at) // 8
                writer.append("pagemap.idx", _EXTENT.pack(first + at // 8, count))
                writer.append("pagemap.bin", buf[at:upto])
                entries += count
            for pfn, length in resident_runs(buf):
                read = {}  # type: Dict[str, bytes]
                for name in KPAGE_FILES:
                    data = ctx.kpage.read_lanes(name, pfn, length)
                    if data is not None:
                        read[name] = data
                got = min(map(len, read.values()), default=0) // 8
                if got:
                    writer.append("kpage.idx", _EXTENT.pack(pfn, got))
                    for name, data in read.items():
                        writer.append(name + ".bin", data[:got * 8])
                    cgroups.update(lanes_of(read.get("kpagecgroup", b"")[:got * 8]))
                    pfns += got
        if scanner.works and vpn < end:
            for start, stop in scanner.regions(vpn, end, HUGE_PRESENT, 0) or ():
                writer.append("huge.idx", _EXTENT.pack(start, stop - start))
                huge = True
    # 'inode path' lines, so the desk shows the paths the board resolved.
    lines = []
    for inode in sorted(cgroups - {0}):
        path = ctx.facts.cgroup_path(inode)
        if path:
            lines.append("%d %s\n" % (inode, path))
    texts["cgroup_paths"] = "".join(lines) or None
    block_size, nodes = ctx.facts._read_nodes()
    if block_size:
        texts["numa.json"] = json.dumps({"block_size": block_size, "nodes": nodes})
    try:
        require_soft_dirty(opts, reader)
        soft_dirty = True
    except UnsupportedError:
        soft_dirty = False
    release = read_text_optional(os.path.join(opts.proc_root, "sys", "kernel", "osrelease"))
    header = {
        "format": SNAPSHOT_FORMAT, "version": SNAPSHOT_VERSION,
        "pagemap_version": __version__, "pid": reader.number,
        "comm": (texts["comm"] or "").strip(),
        "kernel": (release or (os.uname()[2] if opts.proc_root == "/proc" else "")).strip(),
        "page_size": ps, "captured_byteorder": sys.byteorder,
        "task_size": reader.address_space_end(), "time": int(time.time()),
        "entries": entries, "pfns": pfns, "scan": huge, "soft_dirty": soft_dirty,
    }
    texts["header.json"] = json.dumps(header, indent=1, sort_keys=True)
    return texts, header


def raise_on_termination():
    # type: () -> Any
    """Let SIGTERM and SIGHUP unwind like Ctrl-C, so the files a command is
    making are removed on the way out. Returns finish(cleanup): it runs cleanup
    with these signals and Ctrl-C held back (one arriving then would cut the
    removal short), then restores them and lets a held one in."""
    import signal
    saved = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            saved[sig] = signal.signal(sig, signal.default_int_handler)
    except ValueError:  # not the main thread: nothing to restore
        pass

    def finish(cleanup):
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, set(saved) | {signal.SIGINT})
        try:
            cleanup()
        finally:
            try:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            finally:
                for sig, old in saved.items():
                    signal.signal(sig, old)
    return finish


def capture_target(path, name):
    # type: (str, str) -> Optional[Tuple[int, int]]
    """What --capture may replace: nothing (None), or a regular file, (device,
    inode). Never a device, FIFO, directory or symlink: as root, renaming over
    /dev/null replaces it."""
    import stat
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise UsageError("%s exists and is not a regular file: --capture writes a new file or "
                         "replaces a regular one ('-' for standard output)" % name)
    return st.st_dev, st.st_ino


def cmd_capture(opts, console):
    # type: (Namespace, Console) -> int
    """Write a self-contained snapshot of one process: atomically into a file, or
    to standard output with '-' (ssh board python3 - PID --capture - < pagemap.py)."""
    import json  # noqa: F401  (capture_process's: a Python without it fails first)
    import tempfile
    import types
    import zipfile  # noqa: F401  (zip_into's)
    to_stdout = opts.capture == "-"
    if to_stdout and console.tty:
        raise UsageError("--capture - writes a zip to standard output: redirect it to a file")
    where = "standard output" if to_stdout else opts.capture
    directory, name = os.path.split(os.path.abspath(opts.capture))
    reader, ctx = open_process(opts, True)
    writer = SnapshotWriter()
    partial = held = None  # type: Any
    finish = raise_on_termination()
    try:
        if not to_stdout:
            # Held open and named through /proc/self/fd: a directory swapped for a
            # link mid-capture cannot send the snapshot elsewhere.
            held = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            target = "/proc/self/fd/%d/%s" % (held, name)
            writer.dir = "/proc/self/fd/%d/." % held  # ".": O_TMPFILE opens it O_NOFOLLOW
            before = capture_target(target, opts.capture)
        reader.open_pagemap()
        texts, header = capture_process(opts, reader, ctx, writer)
        if to_stdout:
            console.put()
            # zipfile must see a stream (no tell, no seek): with a file opened with >>
            # its rewrite of each member's header would go to the end instead.
            out = console.out.buffer
            writer.zip_into(types.SimpleNamespace(write=out.write, flush=out.flush), texts)
        else:
            # A fresh name nobody can guess or plant a link at: O_CREAT|O_EXCL|O_NOFOLLOW,
            # mode 0600 (a snapshot holds physical addresses). Within NAME_MAX (255
            # bytes) whatever the target's name: 32 characters are 128 bytes at most.
            fd, partial = tempfile.mkstemp(prefix="." + name[:32] + ".", suffix=".partial",
                                           dir=writer.dir)
            with os.fdopen(fd, "wb") as out:
                writer.zip_into(out, texts)
                os.fsync(out.fileno())
                size = out.tell()
            if before != capture_target(target, opts.capture):
                raise UsageError("%s changed while the snapshot was taken: not replaced"
                                 % opts.capture)
            os.replace(partial, target)
            partial = None
            where += " (%s)" % human_size(size)
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            silence_stdout()
        hint = ("the file system is full: free space or capture elsewhere" + (
            ", or set TMPDIR: members are staged there" if to_stdout else "")
                if exc.errno in (errno.ENOSPC, errno.EDQUOT) else
                "its reader went away" if exc.errno == errno.EPIPE else
                "the directory must exist and be writable")
        raise ProcIOError("%s: cannot write the snapshot: %s (%s)" % (
            where, exc.strerror or exc, hint)) from exc
    finally:
        def cleanup():
            writer.close()
            if partial:
                try:
                    os.remove(partial)
                except OSError:
                    pass
            if held is not None:
                os.close(held)
            reader.close()
            ctx.close()
        finish(cleanup)
    # With '-' standard output carries the zip: the report goes to stderr.
    (Console(console.err, None, "standard error") if to_stdout else console).write(
        "captured %s (%s): %d mappings, %d entries stored, page flags of %d pages, into %s"
        % (reader.label, header["comm"] or "?", len(reader.maps()), header["entries"],
           header["pfns"], where))
    return EXIT_OK


def new_file(path):
    # type: (str) -> Any
    """Create a file of the rebuilt tree, and the directories it needs."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return open(path, "xb")


def read_json_member(archive, name):
    # type: (Any, str) -> Any
    size = archive.getinfo(name).file_size
    if size > SNAPSHOT_JSON_LIMIT:
        raise SnapshotError("%s claims more than %s" % (name, human_size(SNAPSHOT_JSON_LIMIT)))
    import json
    with archive.open(name) as f:
        # read(size): a read() of all inflates each chunk whole before cutting it at size.
        return json.loads(f.read(size).decode("utf-8"))


def read_extents(archive, name, claimed, end, ascending=True):
    # type: (Any, str, int, int, bool) -> Any
    """(first, count) pairs of an index member, streamed and checked: inside
    [0, end), ascending if asked, holding exactly the claimed number of values
    (or, claimed negative, at most that many extents of 16 bytes)."""
    if archive.getinfo(name).file_size > 16 * abs(claimed):
        raise SnapshotError("%s claims more extents than the header allows (%d)" % (
            name, abs(claimed)))
    total = last = 0
    with archive.open(name) as f:
        for data in iter(lambda: f.read(1 << 16), b""):
            if len(data) % 16:
                raise SnapshotError("%s is truncated" % name)
            for first, count in _EXTENT.iter_unpack(data):
                if (ascending and first < last) or not 0 < count <= end - first:
                    raise SnapshotError("%s has an extent out of order or range" % name)
                total, last = total + count, first + count
                yield first, count
    if total != claimed and claimed >= 0:
        raise SnapshotError("%s indexes %d values, the header says %d" % (name, total, claimed))


def write_sparse(archive, member, entries, extents, path, size=None):
    # type: (Any, str, int, Any, str, Optional[int]) -> None
    """A new sparse file of the u64s of member, which the header says holds
    entries of them: extents of (first index, count), the rest holes, the whole
    size bytes long (beyond it reads are EOF)."""
    claimed = archive.getinfo(member).file_size
    if claimed != entries * 8:  # so the extents' total (read_extents checks it) is all
        raise SnapshotError("%s is %s than its index says" % (
            member, "longer" if claimed > entries * 8 else "shorter"))
    with archive.open(member) as stream, open(path, "xb") as f:
        for first, count in extents:
            try:
                f.seek(first * 8)
            except OSError as exc:  # EINVAL past the largest file it allows (ext4: 16 TiB)
                raise SnapshotError("%s needs a file of %s, more than the temporary file "
                                    "system allows (set TMPDIR to a tmpfs)" % (
                                        member, human_size(first * 8))) from exc
            left = count * 8
            while left:
                data = stream.read(min(left, COPY_CHUNK))
                if not data:
                    raise SnapshotError("%s is shorter than its index says" % member)
                f.write(data)
                left -= len(data)
        if size:
            try:
                f.truncate(size)  # extents end inside it: read_extents checks
            except OSError:
                pass  # a file system that cannot hold it sparse: EOF comes earlier


def _count(value, below=1 << 64, least=0):
    # type: (Any, int, int) -> bool
    """A whole number in [least, below): JSON's true and false are not counts."""
    return type(value) is int and least <= value < below


def snapshot_header_problem(header):
    # type: (Any) -> Optional[str]
    """What is wrong with a snapshot header, or None."""
    if not isinstance(header, dict) or header.get("format") != SNAPSHOT_FORMAT:
        return "has no pagemap-snapshot format"
    for key, below in (("version", 1 << 16), ("pid", PID_MAX_LIMIT + 1),
                       ("page_size", 1 << 21)):
        if not _count(header.get(key), below, 1):
            return "has no valid %s" % key
    page_size = header["page_size"]
    if page_size < 1024 or page_size & (page_size - 1):
        return "has page size %d, not a power of two of at least 1024" % page_size
    task = header.get("task_size")
    if task is not None and not _count(task, (1 << 64) + 1, page_size):
        return "has no valid task_size"
    for key in ("entries", "pfns"):
        if not _count(header.get(key), (task or 1 << 64) // page_size + 1):
            return "has no valid %s" % key
    for key in ("kernel", "comm"):
        text = header.get(key, "")
        if not isinstance(text, str) or len(text) > 256:
            return "has no valid %s" % key
    return None


def open_snapshot(path, tmp):
    # type: (str, str) -> Tuple[str, Dict[str, Any]]
    """Rebuild a snapshot as a /proc tree in the temp directory tmp (its caller
    removes it): (proc root, header). Raise SnapshotError naming what is wrong
    with a damaged file."""
    import json  # noqa: F401  (read_json_member's: a Python without it fails first)
    import zipfile
    # What opening a damaged zip or reading its members can raise (RuntimeError: an
    # encrypted member; zlib.error where zipfile found zlib).
    damage = (zipfile.BadZipFile, ValueError, KeyError, TypeError, EOFError, OSError,
              NotImplementedError, RuntimeError,
              getattr(getattr(zipfile, "zlib", None), "error", OSError))
    f = None
    try:
        # A FIFO must not block the open, and zipfile reads anything but a regular file
        # to its end looking for the directory (/dev/zero: until memory runs out).
        f = os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb")
        if (os.fstat(f.fileno()).st_mode & 0o170000) != 0o100000:  # S_ISREG
            raise zipfile.BadZipFile("not a regular file, which a zip must be: save it to one")
        # zipfile holds a zip's whole directory in memory, 7 times its size: look at the
        # size its end record claims first (_EndRecData: private, the same from 2.6 to
        # 3.13; a Python without it skips the check).
        end = None
        if hasattr(zipfile, "_EndRecData"):
            end = zipfile._EndRecData(f)  # type: ignore
        if end and end[zipfile._ECD_SIZE] > 1 << 20:  # type: ignore
            raise zipfile.BadZipFile("a directory of %s, far more members than a snapshot "
                                     "has" % human_size(end[zipfile._ECD_SIZE]))  # type: ignore
        archive = zipfile.ZipFile(f)
    except damage as exc:  # a name not UTF-8, a zip version from the future
        if f:
            f.close()
        raise SnapshotError("%s: not a readable snapshot: %s (make one with 'pagemap PID "
                            "--capture FILE')" % (path, getattr(exc, "strerror", None) or exc)
                            ) from exc
    methods = set(info.compress_type for info in archive.infolist())
    if methods - {zipfile.ZIP_STORED}:
        import zlib  # noqa: F401  (deflated members need it: main says so if missing)
    try:
        with f, archive:
            if methods - {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}:
                # zipfile inflates a bzip2 or LZMA chunk whole, and only then cuts it
                # at the size its member claims: 2.5 KiB made 700 MiB.
                raise SnapshotError("%s: a member is compressed otherwise than --capture "
                                    "does (stored or deflated)" % path)
            try:
                header = read_json_member(archive, "header.json")
            except (KeyError, ValueError, UnicodeDecodeError) as exc:
                raise SnapshotError("%s: no valid header.json: not a pagemap snapshot" % path
                                    ) from exc
            if isinstance(header, dict) and _count(header.get("version"),
                                                   least=SNAPSHOT_VERSION + 1):
                raise SnapshotError("%s: snapshot format %s is newer than this pagemap.py "
                                    "reads (%d)" % (path, header["version"], SNAPSHOT_VERSION))
            problem = snapshot_header_problem(header)
            if problem:
                raise SnapshotError("%s: header.json %s: not a snapshot made by 'pagemap PID "
                                    "--capture FILE'" % (path, problem))
            # Refuse up front a snapshot that would fill the temp file system: no
            # damage, so no "capture it again".
            need = sum(info.file_size for info in archive.infolist() if info.filename in
                       SNAPSHOT_TEXTS or info.filename.endswith((".bin", ".idx", ".json")))
            st = os.statvfs(tmp)
            if need > st.f_bavail * st.f_frsize:
                raise SnapshotError("%s expands to %s, more than the %s free in %s (set "
                                    "TMPDIR)" % (path, human_size(need), human_size(
                                        st.f_bavail * st.f_frsize), os.path.dirname(tmp)))
            _rebuild(archive, header, tmp)
    except damage as exc:
        raise SnapshotError("%s is damaged (%s: %s); capture it again" % (
            path, type(exc).__name__, exc)) from exc
    except SnapshotError as exc:
        if str(exc).startswith(path):
            raise
        raise SnapshotError("%s: %s; capture it again" % (path, exc)) from exc
    return os.path.join(tmp, "proc"), header


def _rebuild(archive, header, tmp):
    """The files of a snapshot, back where /proc and /sys keep them: the texts,
    and pagemap and the kpage files sparse, from their indexes and runs."""
    names = set(archive.namelist())
    if "maps" not in names:
        raise SnapshotError("the snapshot has no maps")
    join = os.path.join
    proc = join(tmp, "proc")
    piddir = join(proc, str(header["pid"]))
    roots = {"pid": piddir, "proc": proc, "sys": join(tmp, "sys")}
    mappings = 0
    for name in sorted(names.intersection(SNAPSHOT_TEXTS)):  # maps before smaps
        root, place, limit = SNAPSHOT_TEXTS[name]
        limit = limit or (20 << 10) * (mappings + 1)
        claimed = archive.getinfo(name).file_size
        if claimed > limit:  # streamed: zipfile stops a member at the size it claims
            raise SnapshotError("%s claims %s, more than it can hold (%s)" % (
                name, human_size(claimed), human_size(limit)))
        lines = 0
        with archive.open(name) as src, new_file(join(roots[root], place)) as dst:
            for data in iter(lambda: src.read(COPY_CHUNK), b""):
                dst.write(data)
                lines += data.count(b"\n")
        if name == "maps":  # smaps' bound: the mappings maps really lists
            mappings = lines
    with new_file(join(proc, "sys", "kernel", "osrelease")) as f:
        f.write((header.get("kernel", "") + "\n").encode("utf-8"))
    if header.get("soft_dirty"):
        # The capturing kernel tracked writes: say so the way a tree can (VmFlags sd).
        with new_file(join(proc, "self", "smaps")) as f:
            f.write(b"VmFlags: sd\n")
    if "numa.json" in names:
        numa = read_json_member(archive, "numa.json")
        nodes = numa.get("nodes") if isinstance(numa, dict) else None
        # Each name becomes a directory: digits only, or it could climb out of tmp;
        # 2^18 at most (32 TiB in 128 MiB blocks), or making them takes minutes.
        if not (isinstance(nodes, dict) and len(nodes) <= 1 << 18 and
                _count(numa.get("block_size")) and all(
                re.match(r"^\d{1,12}$", k) and _count(v, 1 << 16) for k, v in nodes.items())):
            raise SnapshotError("numa.json names no valid memory blocks and nodes")
        system = join(tmp, "sys", "devices", "system")
        with new_file(join(system, "memory", "block_size_bytes")) as f:
            f.write(b"%x\n" % numa["block_size"])
        for block, node in nodes.items():
            os.makedirs(join(system, "node", "node%d" % node, "memory" + block))
    missing = {"pagemap.idx", "pagemap.bin"} - names
    if missing:
        raise SnapshotError("%s is missing" % max(missing))
    task, entries = header.get("task_size"), header["entries"]
    end = (task or 1 << 64) // header["page_size"]
    write_sparse(archive, "pagemap.bin", entries, read_extents(
        archive, "pagemap.idx", entries, end), join(piddir, "pagemap"),
        end * 8 if task else None)
    if "huge.idx" in names:  # huge regions: of stored entries, or a hugetlb mapping each
        most = entries + archive.getinfo("maps").file_size // 20 + 1
        with open(join(piddir, "pagemap-huge"), "xb") as f:
            for extent in read_extents(archive, "huge.idx", -most, end):
                f.write(_EXTENT.pack(*extent))
    for name in KPAGE_FILES:
        if {"kpage.idx", name + ".bin"} <= names:
            write_sparse(archive, name + ".bin", header["pfns"], read_extents(
                archive, "kpage.idx", header["pfns"], 1 << 55, False),
                join(proc, name))


def with_snapshot(opts, console):
    # type: (Namespace, Console) -> int
    """Run cmd_process on a snapshot as if on the live process it was taken of."""
    import shutil
    import tempfile
    try:
        tmp = tempfile.mkdtemp(prefix="pagemap-from-")
    except OSError as exc:  # ENOSPC, EACCES; ENOENT: no usable temporary directory
        raise ProcIOError("%s: no temporary directory to unpack it in: %s (set TMPDIR)" % (
            opts.source, exc.strerror or exc)) from exc
    finish = raise_on_termination()
    try:
        root, header = open_snapshot(opts.source, tmp)
        console.aliases.append((root, opts.source + ":/proc"))
        opts.pid, opts.proc_root = str(header["pid"]), root
        opts.page_size, opts.byteorder = header["page_size"], "little"
        return cmd_process(opts, console)
    finally:
        finish(lambda: shutil.rmtree(tmp, ignore_errors=True))


# --- command line -----------------------------------------------------------

EXIT_CODES_HELP = """exit codes:
  0    every address translated to a physical address; ranges and mappings listed
  1    ran, but some address could not be translated (see its state and note),
       a mapping name matched nothing, a range was empty, or (--phys) nothing
       maps the address
  2    usage error
  3    no such process (or it exited, is a zombie or a kernel thread)
  4    permission denied (--phys and --physical need root)
  5    unsupported kernel, system or Python (no pagemap, /proc not mounted, no
       soft-dirty for --written, a module missing); --check: the basic lookup
       does not work
  6    other I/O error, a damaged snapshot, or output that cannot be written
  130  interrupted (Ctrl-C; SIGTERM and SIGHUP too in --capture and --from)
"""


def build_parser():
    """The argparse parser; argparse is imported here, not at module level."""
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message):
            raise UsageError("%s (see 'pagemap --help')" % message)

    parser = Parser(
        prog="pagemap",
        description="Translate virtual addresses of a Linux process to physical addresses "
                    "through /proc/PID/pagemap, and explain the page's state.",
        epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pid", nargs="?", metavar="PID",
                        help="a process ID, or 'self' for pagemap itself")
    parser.add_argument("addresses", nargs="*", metavar="ADDRESS",
                        help="virtual address in hex, with or without 0x; a range START-END "
                             "or START+LENGTH (4k, 2M, 1G); or a mapping: [heap], [stack], "
                             "[anon:NAME], a path or a file's base name. None: a summary "
                             "of every mapping")
    for flags, text, settings in OPTIONS:
        parser.add_argument(*flags.split(), help=text, **(settings or {"action": "store_true"}))
    parser.add_argument("--version", action="version", version="pagemap " + __version__)
    return parser


class PlainOptions(object):
    """The options of a command line of PID and addresses alone, as build_parser
    sets them (a test holds the two equal): the commonest command needs no
    argparse, whose import costs a sixth of the interpreter's start-up."""

    def __init__(self, args):
        # type: (List[str]) -> None
        for flags, _, settings in OPTIONS:
            setattr(self, settings.get("dest", flags.split()[-1][2:].replace("-", "_")),
                    settings.get("default") if settings else False)
        self.pid, self.addresses = args[0], args[1:]


def parse_arguments(argv):
    # type: (Optional[List[str]]) -> Namespace
    """Parse argv, allowing options between positionals ('self --json 0x1').

    argparse before 3.7 has no parse_intermixed_args: positionals that follow
    an option come back as extras, and are put back in order here.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    if args and not any(arg.startswith("-") for arg in args):
        return PlainOptions(args)  # type: ignore
    if args == ["--physical"]:      # the whole machine's page flags: no parser either
        opts = PlainOptions([""])  # type: Any
        opts.pid, opts.physical = None, ""
        return opts
    parser = build_parser()
    opts, extras = parser.parse_known_args(args)
    for extra in extras:
        if extra.startswith("-") and extra != "-":
            parser.error("unrecognized argument: %s" % extra)
    words = ([] if opts.pid is None else [opts.pid]) + opts.addresses + extras
    # The first is the PID, but with --from (the snapshot's) every word is an address.
    opts.pid = words.pop(0) if words and not opts.source else None
    if (opts.pid or opts.source) and opts.physical and is_selector(opts.physical):
        words, opts.physical = words + [opts.physical], ""  # 'PID --physical [heap]'
    opts.addresses = words
    return opts


def parse_path(text):
    # type: (str) -> str
    """A file or directory argument: anything the kernel accepts as a path."""
    if not text or "\0" in text:
        raise UsageError("invalid path %r: empty or with a NUL byte" % (text,))
    return text


def parse_interval(text):
    # type: (str) -> float
    """--watch SECONDS: a positive number."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 86400:
        raise UsageError("invalid interval %r: expected seconds such as 1 or 0.5" % (text,))
    return value


def parse_times(text):
    # type: (str) -> int
    """--times N: a positive whole number."""
    times = parse_decimal(text)
    if not times:
        raise UsageError("invalid --times %r: expected a whole number of rounds" % (text,))
    return times


def parse_page_size(text):
    # type: (str) -> int
    """--page-size: a power of two of at least 1024, in decimal, hex or with k suffix."""
    match = re.match(r"^(0x[0-9a-fA-F]{1,16}|[0-9]{1,20})([kK]?)$", text)
    size = 0
    if match:  # int() of base 16 takes the 0x
        size = int(match.group(1), 16 if "x" in text else 10) << 10 * len(match.group(2))
    if size < 1024 or size & (size - 1):
        raise UsageError("invalid page size %r: expected a power of two such as 4096, "
                         "16k or 65536" % (text,))
    return size


# The options but --version, in --help's order: (flags separated by spaces, help,
# argparse settings). One without settings is a switch; one not given is False if
# a switch, else its default or None.
OPTIONS = (  # type: Tuple[Tuple[str, str, Dict[str, Any]], ...]
    ("-v --verbose", "also show the raw entry, its file offset and its bytes", {}),
    ("--json", "print one JSON document", {}),
    ("--flags", "also say what each physical page is: kpageflags, map count, cgroup, NUMA "
     "node, /proc/iomem region (root)", {}),
    ("--match", "only pages with these flags, comma-separated, ~ to negate: pagemap's "
     "(present, swapped, file, exclusive, soft-dirty, ...) and kpageflags' (anon, thp, ksm, "
     "zero, dirty, ...), shared", {"metavar": "FLAGS"}),
    ("--written", "only pages written since --clear-soft-dirty (soft-dirty, present or "
     "swapped)", {}),
    ("--clear-soft-dirty", "clear the process's soft-dirty bits (writes 4 to "
     "/proc/PID/clear_refs), to see later writes with --written", {}),
    ("--watch", "repeat the summary (or the ranges) every SECONDS and print what changed: "
     "pages present, swapped, written", {"metavar": "SECONDS", "type": parse_interval}),
    ("--times", "with --watch: stop after N rounds", {"metavar": "N", "type": parse_times}),
    ("--each", "list ranges page by page instead of as runs", {}),
    ("--picture", "with no ADDRESS: draw a strip per mapping, a character per block of "
     "pages", {}),
    ("--decode", "decode raw pagemap entry values (hex) with no process",
     {"nargs": "+", "metavar": "VALUE"}),
    ("--phys", "reverse lookup: which processes and virtual addresses map this physical "
     "address (all processes, or the PIDs given; root)", {"metavar": "PADDR"}),
    ("--physical", "summarise physical memory by /proc/kpageflags: pages per flag "
     "combination (all PFNs, or START-END / START+COUNT in hex; root); with a PID, "
     "its resident pages (or those of its ADDRESS...), one count a virtual page",
     {"nargs": "?", "const": "", "metavar": "PFN-RANGE"}),
    ("--capture", "write a snapshot of the process to FILE (zip): maps, smaps, pagemap "
     "entries, page flags; read it anywhere with --from",
     {"metavar": "FILE", "type": parse_path}),
    ("--from", "read a snapshot made by --capture instead of a live process: every "
     "lookup, range, summary and picture works on it",
     {"dest": "source", "metavar": "FILE", "type": parse_path}),
    ("--check", "the doctor: what this system offers and why something is missing, each "
     "claim tried on pagemap's own memory", {}),
    ("--kernel-version", "decode entries as this kernel version lays them out (default: "
     "the running kernel)", {"metavar": "X.Y", "type": parse_kernel_version}),
    ("--page-size", "page size of the captured system (default: this system's)",
     {"metavar": "BYTES", "type": parse_page_size}),
    ("--byteorder", "byte order of a captured pagemap (default: native)",
     {"choices": ("native", "little", "big")}),
    ("--proc-root", "read a captured or fake /proc tree instead of /proc",
     {"metavar": "DIR", "default": "/proc", "type": parse_path}),
)


def given(opts, *names):
    # type: (Namespace, *str) -> Optional[str]
    """The first of the options named that the command line gives (not None,
    False or the default /proc)."""
    for name in names:
        if getattr(opts, name[2:].replace("-", "_")) not in (None, False, "/proc"):
            return name
    return None


def refuse_meaningless(opts):
    # type: (Namespace) -> None
    """Options that mean nothing together are an error, not silently ignored.
    (--from, --watch and --times are never empty or zero when given.)"""
    if opts.match is not None and not opts.match.replace(",", "").strip():
        raise UsageError("--match names no flag: give one or more, such as anon,~thp")
    live = given(opts, "--phys", "--check", "--decode", "--physical")
    if opts.physical and (opts.pid or opts.source):
        raise UsageError("--physical %s: a PFN range is the whole machine's, not a process's; "
                         "give a process's ADDRESS... before --physical" % opts.physical)
    if opts.source:
        told = given(opts, "--page-size", "--byteorder", "--proc-root")
        if told:
            raise UsageError("--from takes the page size, byte order and tree from the "
                             "snapshot: %s means nothing with it" % told)
        live = live or given(opts, "--watch", "--clear-soft-dirty", "--capture")
        if live not in (None, "--physical"):  # a snapshot never changes, nor is cleared
            raise UsageError("--from reads a snapshot; %s works on the live system: not both"
                             % live)
    addresses = list(filter(re.compile(_ADDRESS).match, opts.addresses))  # not ranges, names
    shows_entries = opts.decode or not (live or opts.watch) and (opts.each or addresses)
    if opts.verbose and not shows_entries:
        raise UsageError("-v shows the raw entry of each address: give an ADDRESS, --each "
                         "or --decode")
    if live:
        shaping = given(opts, "--match", "--written", "--each", "--picture", "--watch",
                        "--clear-soft-dirty", "--capture")
        if shaping:
            raise UsageError("%s is a command of its own: %s means nothing with it"
                             % (live, shaping))
        return
    targets = opts.addresses
    if opts.each and len(addresses) == len(targets):
        raise UsageError("--each lists ranges page by page: name a range or mapping")
    if opts.picture and targets:
        raise UsageError("--picture draws whole mappings: give no ADDRESS")
    drawn = opts.picture and given(opts, "--match", "--written")
    if drawn:
        raise UsageError("--picture draws every page: %s means nothing with it" % drawn)
    if opts.times and not opts.watch:
        raise UsageError("--times counts the rounds of --watch: give --watch SECONDS")
    ignored = given(opts, "--match", "--written", "--flags", "--picture", "--each")
    if opts.watch and ignored:
        raise UsageError("--watch counts pages present, swapped and written: %s means nothing "
                         "there" % ignored)
    if opts.clear_soft_dirty and (targets or opts.watch or ignored):
        raise UsageError("--clear-soft-dirty only clears: run the view on its own afterwards")


def check_live_overrides(opts, console):
    # type: (Namespace, Console) -> None
    """--page-size and --byteorder describe captured files: on the live /proc only
    the kernel's own values are right. --kernel-version is a deliberate override."""
    if opts.source or opts.decode or os.path.realpath(opts.proc_root) != "/proc":
        return
    hint = "this is the live system; those options describe a captured tree (--proc-root DIR)"
    size = system_page_size()
    if opts.page_size not in (None, size):
        raise UsageError("--page-size %d: the kernel's page size is %d; %s"
                         % (opts.page_size, size, hint))
    if opts.byteorder not in (None, "native", sys.byteorder):
        raise UsageError("--byteorder %s: the kernel writes %s-endian entries; %s"
                         % (opts.byteorder, sys.byteorder, hint))
    kernel = opts.kernel_version and running_kernel(opts.proc_root)
    if kernel and opts.kernel_version != kernel:
        console.warn("kernel-version", "--kernel-version %d.%d overrides the running kernel "
                     "(%d.%d): entries are decoded in that kernel's layout" % (
                         opts.kernel_version + kernel))


def run(argv, console):
    # type: (Optional[List[str]], Console) -> int
    try:
        opts = parse_arguments(argv)
    except SystemExit:  # --help and --version
        return EXIT_OK
    refuse_meaningless(opts)
    check_live_overrides(opts, console)
    opts.page_size = opts.page_size or system_page_size()  # --from: the snapshot's instead
    if opts.json:
        import json  # noqa: F401  (a Python without it fails now, not after the work)
    if opts.decode:
        if opts.pid is not None:
            raise UsageError("--decode takes entry values, not a PID")
        return cmd_decode(opts, console)
    if opts.check:
        return cmd_check(opts, console)
    if opts.phys is not None:
        return cmd_phys(opts, console)
    if opts.physical is not None and opts.pid is None and not opts.source:
        return cmd_physical(opts, console)
    if opts.source:
        return with_snapshot(opts, console)
    if opts.pid is None:
        raise UsageError("no PID given: try 'pagemap self ADDRESS' (see 'pagemap --help')")
    if opts.capture:
        if opts.addresses:
            raise UsageError("--capture takes the whole process: no ADDRESS")
        return cmd_capture(opts, console)
    return cmd_process(opts, console)


def main(argv=None):
    # type: (Optional[List[str]]) -> int
    """Run the command line; returns the exit code, the output flushed."""
    console = Console(sys.stdout, sys.stderr or open(os.devnull, "w"))  # None: fd 2 closed
    try:
        try:
            return run(argv, console)
        finally:
            if console.out:     # None (descriptor 1 closed): nothing was written either
                console.put()   # after an error too: the lines before it stand
    except PagemapError as exc:
        console.error(str(exc))
        return exc.exit_code
    except ImportError as exc:
        # Minimal Pythons (Yocto's python3-core) leave out json, tempfile, zipfile, zlib.
        console.error("this Python lacks the %s module, which this command needs (a "
                      "minimal build): install it, or use a fuller Python" % (exc.name or exc))
        return EXIT_UNSUPPORTED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (| head): say nothing.
        silence_stdout()
        return EXIT_OK


if __name__ == "__main__":
    # Leave without the interpreter's teardown (~8 ms of freeing objects on every
    # run): main flushed the output; stderr (buffered before Python 3.9 when not a
    # terminal) is flushed here, and the kernel closes the files. Not under a
    # profiler or coverage (python3 -m cProfile pagemap.py): they report at exit.
    code = main()
    try:
        sys.stderr.flush()
    except (AttributeError, OSError):   # no stderr, or a full disk: see Console.say
        pass
    monitoring = getattr(sys, "monitoring", None)  # 3.12+: cProfile and coverage are tools
    if sys.getprofile() or sys.gettrace() or monitoring and any(
            map(monitoring.get_tool, range(6))):
        sys.exit(code)
    os._exit(code)
