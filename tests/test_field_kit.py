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
    assert err == "" and "Traceback" not in err
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


def test_doctor_old_kernel_page_shift(fake, run):
    fake.kernel("3.10.0-1160.el7.x86_64")
    fake.process("self", {0x7F0000000000: 0xA600000000036AFB}, maps=SELF_MAPS)
    code, checks = doctor(run, fake)
    assert code == 0 and checks["layout"][0] == "info" and "(12)" in checks["layout"][1]
    assert "page shift in 55-60" in checks["kernel"][1] and "guard" not in checks["kernel"][1]


def test_doctor_page_not_present(fake, run):
    fake.process("self", {}, maps=SELF_MAPS)
    code, checks = doctor(run, fake)
    assert code == 5 and "does not read as present" in checks["pagemap"][1]


def test_pagemap_bits_for():
    assert pagemap.pagemap_bits_for((4, 1)).endswith("until the first clear_refs")
    assert "exclusive 56" in pagemap.pagemap_bits_for((4, 2))
    assert "unknown" in pagemap.pagemap_bits_for(None)
