"""One subprocess smoke test per entry point."""

import os
import subprocess
import sys
import sysconfig

import pytest
from conftest import ROOT

import pagemap


def _can_exec_interpreter():
    try:
        return subprocess.run([sys.executable, "-c", "pass"]).returncode == 0
    except OSError:
        return False


pytestmark = pytest.mark.skipif(
    not _can_exec_interpreter(),
    reason="this interpreter cannot start itself (qemu-user without binfmt_misc)")


def run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, cwd=ROOT)


ARGS = ["--decode", "0x8100000000202573", "--page-size", "16384"]


def check(done):
    assert done.returncode == 0, done.stderr
    assert "0x8095cc000" in done.stdout and "exclusive" in done.stdout


def test_script():
    check(run([sys.executable, os.path.join(ROOT, "pagemap.py")] + ARGS))


def test_module():
    check(run([sys.executable, "-m", "pagemap"] + ARGS))


def test_console_script():
    # The script pip installed for this interpreter, not whatever 'pagemap' is on PATH.
    exe = os.path.join(sysconfig.get_path("scripts"), "pagemap")
    if not os.path.exists(exe):
        pytest.skip("the 'pagemap' console script is not installed (pip install .)")
    check(run([exe] + ARGS))


def test_script_error_is_one_line():
    done = run([sys.executable, os.path.join(ROOT, "pagemap.py"), "self", "0xnothex"])
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("pagemap: error:")


def test_closed_pipe_is_quiet():
    script = os.path.join(ROOT, "pagemap.py")
    values = ["0x%x" % (0x8000000000000000 | i) for i in range(1, 20000)]
    p = subprocess.Popen([sys.executable, script, "--decode"] + values,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    p.wait()
    assert p.returncode == 0 and err == ""


@pytest.mark.parametrize("argv", [["self"], ["self", "0x400000", "[heap]", "7f00-7f10"],
                                  ["4242", "ffff", "x y"], ["--physical"]])
def test_plain_command_lines_skip_argparse_with_the_same_result(argv):
    # A command line of PID and addresses alone, or --physical alone, is parsed
    # without argparse; argparse would give the same options.
    parser = pagemap.build_parser()
    assert vars(pagemap.parse_arguments(argv)) == vars(parser.parse_args(argv))
    defaults = vars(parser.parse_args([]))
    defaults.update(pid="4242", addresses=[])
    assert vars(pagemap.PlainOptions(["4242"])) == defaults


def test_headline_command_does_not_import_argparse():
    code = ("import sys; sys.argv = ['pagemap', 'self', '0x400000']; import pagemap; "
            "pagemap.main(); print('argparse' in sys.modules)")
    out = subprocess.check_output([sys.executable, "-c", code], cwd=ROOT,
                                  universal_newlines=True)
    assert out.splitlines()[-1] == "False"


@pytest.mark.parametrize("redirect", ["full", "closed"])
def test_output_that_cannot_be_written_is_one_error(redirect):
    # A full disk (/dev/full) or no standard output at all: one line, exit 6.
    # The script leaves by os._exit, so what main flushed is all there is.
    if redirect == "full" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    script = os.path.join(ROOT, "pagemap.py")
    with open("/dev/full" if redirect == "full" else os.devnull, "w") as out:
        done = subprocess.run([sys.executable, script] + ARGS, stdout=out,
                              stderr=subprocess.PIPE, universal_newlines=True,
                              preexec_fn=(lambda: os.close(1)) if redirect == "closed" else None)
    assert done.returncode == pagemap.EXIT_IO
    assert done.stderr.startswith("pagemap: error: cannot write to standard output: ")
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize("stderr_buffered", [False, True])
def test_script_output_before_an_error_is_written(tmp_path, stderr_buffered):
    # Lines printed before an error still reach a pipe, and so does the error on
    # a block-buffered stderr (Python < 3.9), though the script skips the
    # interpreter's teardown (which used to flush them).
    script = tmp_path / "pm.py"
    script.write_text(open(os.path.join(ROOT, "pagemap.py")).read().replace(
        "\n    return cmd_process(opts, console)\n",
        "\n    console.write('before')\n    raise ProcIOError('after')\n"))
    code = ("import io, runpy, sys; sys.stderr = io.TextIOWrapper(open(2, 'wb', closefd=False))"
            "; sys.argv = ['pm', 'self']; runpy.run_path(%r, run_name='__main__')" % str(script))
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)   # stdout must hold the line in its buffer
    argv = ["-c", code] if stderr_buffered else [str(script), "self"]
    done = subprocess.run([sys.executable] + argv, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, env=env)
    assert done.stdout == "before\n" and done.stderr == "pagemap: error: after\n"
    assert done.returncode == pagemap.EXIT_IO


def test_script_started_without_stderr_keeps_its_exit_code():
    # Descriptor 2 closed at start: sys.stderr is None. The exit code is main's,
    # not 1 from flushing (or writing an error to) a stderr that is not there.
    script = os.path.join(ROOT, "pagemap.py")
    for args, code in ((ARGS, 0), (["self", "0xnothex"], 2)):
        done = subprocess.run([sys.executable, script] + args, stdout=subprocess.PIPE,
                              universal_newlines=True, preexec_fn=lambda: os.close(2))
        assert done.returncode == code and ("0x8095cc000" in done.stdout) == (code == 0)



def test_an_error_without_stdout_is_that_error():
    # Descriptor 1 closed and nothing written: the error that stopped the run, not
    # one about standard output.
    done = subprocess.run([sys.executable, os.path.join(ROOT, "pagemap.py"), "self", "0xnothex"],
                          stderr=subprocess.PIPE, universal_newlines=True,
                          preexec_fn=lambda: os.close(1))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "0xnothex" in done.stderr


def test_capture_to_stdout_closed_is_one_error():
    done = subprocess.run([sys.executable, os.path.join(ROOT, "pagemap.py"), "--capture", "-",
                           "self"], stderr=subprocess.PIPE, universal_newlines=True,
                          preexec_fn=lambda: os.close(1))
    assert done.returncode == pagemap.EXIT_IO and done.stderr.count("\n") == 1
    assert done.stderr.startswith("pagemap: error: cannot write to standard output: ")


def test_stderr_that_cannot_be_written_keeps_the_exit_code():
    # stderr on a full disk: the error line is lost, its exit code is not.
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, os.path.join(ROOT, "pagemap.py"), "self",
                               "0xnothex"], stdout=subprocess.PIPE, stderr=full)
    assert done.returncode == pagemap.EXIT_USAGE and done.stdout == b""


def test_a_profiler_still_reports_at_exit():
    # The script skips the interpreter's teardown, but not under cProfile,
    # which prints its figures then.
    done = run([sys.executable, "-m", "cProfile", os.path.join(ROOT, "pagemap.py")] + ARGS)
    check(done)
    assert "function calls" in done.stdout
