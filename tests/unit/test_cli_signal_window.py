"""A signal at any moment of a `tritonstack` run: SIGINT is one line 'interrupted' and exit 130, SIGTERM
one line 'terminated' and exit 143, never a KeyboardInterrupt traceback -- also while the CLI is still
being imported (its first ~0.2-0.9 s). A signal that arrives once the command has returned is ignored:
the command's own exit code stands (a finished change is never reported as interrupted)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

_ROOT = Path(__file__).parents[2]

# Runs the console script's `main`; writes 'armed' once a SIGTERM handler is installed (the last step
# of entry.main's set-up), so the test signals only after that point (Python's own start-up, before
# any of our code runs, is out of our hands).
_ARMED_ENTRY = textwrap.dedent('''
    import os, signal, sys
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even if ignored here
    real = signal.signal

    def announcing(signum, handler):
        previous = real(signum, handler)
        if signum == signal.SIGTERM and not announcing.done:  # the first SIGTERM handler installed
            announcing.done = True
            os.write(1, b"armed\\n")
        return previous

    announcing.done = False
    signal.signal = announcing
    sys.argv = ["tritonstack", *sys.argv[1:]]
    from tritonstack.entry import main
    main()
''')

_SIGNAL_AFTER_RETURN = textwrap.dedent('''
    import os, signal, sys
    import typer
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from tritonstack import cli, entry
    SIGNUM = getattr(signal, sys.argv[1])

    @cli.app.command("finish-for-test")
    def finish_for_test(ctx: typer.Context) -> None:
        ctx.call_on_close(lambda: os.kill(os.getpid(), SIGNUM))  # while click tears down, after return
        print("change kept", flush=True)

    sys.argv = ["tritonstack", "finish-for-test"]
    entry.main()
''')

_EXPECTED = {signal.SIGINT: (130, "interrupted"), signal.SIGTERM: (143, "terminated")}


def _signal_after_armed(signum: signal.Signals, delay_s: float, repository: Path) -> tuple[int, str]:
    args = ["versions", "list", "mlp", "--repository", str(repository)]
    process = subprocess.Popen([sys.executable, "-c", _ARMED_ENTRY, *args], stdout=subprocess.PIPE,  # noqa: S603
                               stderr=subprocess.PIPE, text=True, cwd=_ROOT)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "armed"
        time.sleep(delay_s)
        if process.poll() is None:
            process.send_signal(signum)
        _out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, err


def test_a_signal_while_the_cli_loads_is_one_line_and_its_exit_code(tmp_path: Path) -> None:
    for signum, (code, line) in _EXPECTED.items():
        interrupted = 0
        for delay_s in (0.0, 0.05, 0.1, 0.2, 0.35, 0.6):
            returncode, err = _signal_after_armed(signum, delay_s, tmp_path / "none")
            print(f"{signum.name} {delay_s:.2f} s after main(): exit {returncode}, {err.strip()!r}")
            assert "Traceback" not in err, err
            if "no config.pbtxt" in err:  # the command had already ended on its own (no such repository):
                # exit 2, or, for a signal during the interpreter's own teardown (Python restores the
                # default handlers there), death by that signal after the one error line
                assert returncode in (2, -signum) and len(err.splitlines()) == 1, (returncode, err)
                continue
            assert (returncode, err) == (code, line + "\n"), (delay_s, returncode, err)
            interrupted += 1
        assert interrupted, f"no {signum.name} arrived before the command ended"


def test_a_signal_after_the_command_returned_keeps_its_exit_code() -> None:
    for signum in _EXPECTED:
        done = subprocess.run([sys.executable, "-c", _SIGNAL_AFTER_RETURN, signum.name],  # noqa: S603
                              capture_output=True, text=True, timeout=60, cwd=_ROOT)
        print(f"{signum.name} after the command returned: exit {done.returncode}, {done.stderr.strip()!r}")
        assert (done.returncode, done.stdout, done.stderr) == (0, "change kept\n", ""), done


def test_the_console_script_leaves_an_ignored_sigint_ignored() -> None:
    script = ("import signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); sys.argv = ['tritonstack']; "
              "from tritonstack import entry; import tritonstack.cli as cli; "
              "cli.main = lambda: print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN); entry.main()")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,  # noqa: S603
                          timeout=60, cwd=_ROOT)
    assert done.stdout.strip() == "True", done


_SIGNAL_AFTER_PROMOTE = textwrap.dedent('''
    import os, signal, sys
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from tritonstack import cli, entry
    from tritonstack.cli import versions
    SIGNUM = getattr(signal, sys.argv[1])

    class Promoted:
        def promote(self, model, version, keep=()):
            return [version]

    versions._manager = lambda *args: Promoted()
    real_print = cli.console.print

    def print_then_signal(*args, **kwargs):  # the signal lands after promote() returned
        real_print(*args, **kwargs)
        os.kill(os.getpid(), SIGNUM)

    cli.console.print = print_then_signal
    sys.argv = ["tritonstack", "versions", "promote", "m", "2", "--repository", sys.argv[2]]
    entry.main()
''')


def test_a_signal_after_a_promote_was_made_keeps_exit_0(tmp_path: Path) -> None:
    """Outsider 13c: a SIGTERM just after a promote had finished exited 143 although it was kept."""
    for signum in _EXPECTED:
        done = subprocess.run([sys.executable, "-c", _SIGNAL_AFTER_PROMOTE, signum.name, str(tmp_path)],  # noqa: S603
                              capture_output=True, text=True, timeout=60, cwd=_ROOT)
        print(f"{signum.name} after the promote: exit {done.returncode}, {done.stderr.strip()!r}")
        assert done.returncode == 0 and "serves versions [2]" in done.stdout and not done.stderr, done


_SIGNAL_IN_SET_NAME = textwrap.dedent('''
    import os, signal, sys
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from tritonstack import cli, entry
    SIGNUM = getattr(signal, sys.argv[1])

    class Lands:  # the signal lands while a class is created: Python 3.11 wraps it in a RuntimeError
        def __set_name__(self, owner, name):
            os.kill(os.getpid(), SIGNUM)

    @cli.app.command("import-for-test")
    def import_for_test() -> None:
        type("Plan", (), {"models": Lands()})

    sys.argv = ["tritonstack", "import-for-test"]
    entry.main()
''')


def test_a_signal_wrapped_by_python_while_a_module_imports_is_one_line() -> None:
    """CI of stop 18: a SIGTERM inside a dataclass field's __set_name__ (serve/plan.py importing) came
    out as 'RuntimeError: Error calling __set_name__' with a traceback."""
    for signum, (code, line) in _EXPECTED.items():
        done = subprocess.run([sys.executable, "-c", _SIGNAL_IN_SET_NAME, signum.name],  # noqa: S603
                              capture_output=True, text=True, timeout=60, cwd=_ROOT)
        print(f"{signum.name} in __set_name__: exit {done.returncode}, {done.stderr.strip()!r}")
        assert (done.returncode, done.stderr) == (code, line + "\n"), done


_SIGNAL_DURING_DEFERRED = textwrap.dedent('''
    import os, signal
    from tritonstack import entry
    signal.signal(signal.SIGTERM, entry.on_signal)
    entry.arm()
    try:
        with entry.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            print("block finished", flush=True)  # the import is never cut in the middle
    except KeyboardInterrupt:
        print("interrupted after the block", entry.signalled(), flush=True)
''')


def test_a_signal_during_imports_waits_for_their_end() -> None:
    """CI of stop 19: a SIGINT inside numpy's C import came out as numpy's printed traceback and
    'ImportError: numpy.core.multiarray failed to import'; the CLI now imports with signals deferred."""
    done = subprocess.run([sys.executable, "-c", _SIGNAL_DURING_DEFERRED], capture_output=True,  # noqa: S603
                          text=True, timeout=60, cwd=_ROOT)
    assert done.stdout == "block finished\ninterrupted after the block True\n", done


_SIGNAL_DURING_LAZY_IMPORT = textwrap.dedent('''
    import os, signal, sys, threading, time
    from tritonstack import entry
    sys.path.insert(0, sys.argv[1])
    signal.signal(signal.SIGTERM, entry.on_signal)
    entry.arm()
    threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM)).start()
    try:
        import slow_module_for_test  # sleeps 0.4 s at import
        print("import finished", flush=True)
        time.sleep(5)
        print("not interrupted", flush=True)
    except KeyboardInterrupt:
        print("interrupted after the import", flush=True)
''')


def test_a_signal_during_a_lazy_import_is_delivered_after_it(tmp_path: Path) -> None:
    """CI of stop 19: a SIGTERM during an import inside a command was swallowed by importlib
    ('Exception ignored in ... _get_module_lock') and the command went on. It now waits for the
    import to end and is delivered again."""
    (tmp_path / "slow_module_for_test.py").write_text("import time\ntime.sleep(0.4)\n")
    done = subprocess.run([sys.executable, "-c", _SIGNAL_DURING_LAZY_IMPORT, str(tmp_path)],  # noqa: S603
                          capture_output=True, text=True, timeout=60, cwd=_ROOT)
    assert done.stdout == "import finished\ninterrupted after the import\n", done
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done


def test_a_signal_python_drops_in_a_finalizer_is_delivered_again(monkeypatch) -> None:
    """CI 2026-12-03: SIGINT landed in a finalizer ("Exception ignored in: 'Path'"): Python printed the
    KeyboardInterrupt's traceback and dropped it, and the run went on. The hook sends it again, quietly."""
    from types import SimpleNamespace

    from tritonstack import entry

    sent: list[int] = []
    monkeypatch.setattr(entry, "_redeliver", sent.append)
    monkeypatch.setattr(entry, "_SIGNALLED", [signal.SIGINT])
    entry._quiet_half_built_clients(SimpleNamespace(object=None, exc_value=KeyboardInterrupt()))
    assert sent == [signal.SIGINT]
