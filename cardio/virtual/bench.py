"""Process control for the card bench: pcscd and virtual-card processes.

Used by the test fixtures and by ``python -m cardio.virtual start|stop|status`` (the future
``idsvc virtual-card``). Rules: pcscd is started only if none answers, in the foreground mode
without ``--auto-exit`` (which would leave the bench dead after a minute idle); we remember what
we started and only ever stop those processes, by PID. Readiness is observed by polling PC/SC
(``pcsclite``), never by sleeping a fixed time.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .pcsclite import PcscContext, PcscError, ReaderState, load_library

INSTALL_HINT = "apt-get install pcscd vsmartcard-vpcd"
PCSCD_PIDFILE = Path("/run/pcscd/pcscd.pid")
VPCD_DRIVER_GLOBS = (
    "/usr/lib/pcsc/drivers/serial/libifdvpcd.so*",
    "/usr/lib/*/pcsc/drivers/serial/libifdvpcd.so*",
    "/usr/local/lib/pcsc/drivers/serial/libifdvpcd.so*",
)
POLL = 0.05
LOCK_FILE = Path(tempfile.gettempdir()) / "idsvc-card-bench.lock"


class BenchError(RuntimeError):
    """The card bench cannot run; the message says what to install or do."""


def reader_name(reader: int) -> str:
    """PC/SC name of vpcd reader ``reader`` (0 or 1) as Debian's reader.conf declares it."""
    return f"Virtual PCD 00 {reader:02d}"


def pidfile_for(state_file: Path) -> Path:
    return state_file.with_name(state_file.name + ".pid")


def logfile_for(state_file: Path) -> Path:
    return state_file.with_name(state_file.name + ".log")


@contextlib.contextmanager
def bench_lock(timeout: float = 300.0, path: Path = LOCK_FILE) -> Iterator[None]:
    """Hold the machine-wide card bench: one pcscd and two readers are shared by everyone.

    Two test sessions at once would insert cards into each other's readers and stop each
    other's pcscd; the second one waits here instead (``BenchError`` after ``timeout``).
    """
    with open(path, "a+") as lock:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    lock.seek(0)
                    holder = lock.read().strip() or "unknown"
                    raise BenchError(
                        f"card bench busy for {timeout:.0f} s (held by pid {holder})"
                    ) from None
                time.sleep(0.2)
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# -- pcscd ---------------------------------------------------------------------------------


@dataclass
class PcscdHandle:
    pid: int | None
    started: bool  # True only if this process started pcscd: then stop_pcscd may stop it
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)


def _pcscd_binary() -> str | None:
    return shutil.which("pcscd") or next(
        (p for p in ("/usr/sbin/pcscd", "/usr/local/sbin/pcscd") if os.access(p, os.X_OK)), None
    )


def check_installed() -> str:
    """Return the pcscd path; ``BenchError`` naming the packages if anything is missing."""
    missing = []
    binary = _pcscd_binary()
    if binary is None:
        missing.append("pcscd")
    if not any(glob.glob(pattern) for pattern in VPCD_DRIVER_GLOBS):
        missing.append("the vpcd reader driver")
    try:
        load_library()
    except OSError:
        missing.append("libpcsclite")
    if missing or binary is None:
        raise BenchError(f"card bench needs {', '.join(missing)}: {INSTALL_HINT}")
    return binary


def pcscd_answers() -> bool:
    try:
        with PcscContext():
            return True
    except PcscError:
        return False


def _virtual_readers() -> list[str]:
    try:
        with PcscContext() as ctx:
            return [r for r in ctx.readers() if r.startswith("Virtual PCD")]
    except PcscError:
        return []


def _running_pcscd_pid() -> int | None:
    try:
        return int(PCSCD_PIDFILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def ensure_pcscd(timeout: float = 10.0) -> PcscdHandle:
    """Make sure pcscd answers and lists the vpcd readers; start it if nothing answers."""
    binary = check_installed()
    handle = PcscdHandle(pid=_running_pcscd_pid(), started=False)
    if not pcscd_answers():
        log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - read back on failure
        process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [binary, "--foreground"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not killed by the caller's Ctrl-C / process group
        )
        handle = PcscdHandle(pid=process.pid, started=True, process=process)
        deadline = time.monotonic() + timeout
        while not pcscd_answers():
            if process.poll() is not None:
                log.seek(0)
                output = log.read().decode(errors="replace").strip()
                raise BenchError(f"pcscd exited with status {process.returncode}: {output}")
            if time.monotonic() > deadline:
                stop_pcscd(handle)
                raise BenchError(f"pcscd did not answer within {timeout:.0f} s")
            time.sleep(POLL)
        log.close()
    deadline = time.monotonic() + timeout
    while not _virtual_readers():
        if time.monotonic() > deadline:
            raise BenchError(
                "pcscd runs but shows no 'Virtual PCD' reader: install the vpcd driver "
                f"({INSTALL_HINT}) and restart pcscd"
            )
        time.sleep(POLL)
    return handle


def stop_pcscd(handle: PcscdHandle, timeout: float = 5.0) -> None:
    """Stop pcscd if (and only if) ``ensure_pcscd`` started it."""
    if not handle.started or handle.pid is None:
        return
    if handle.process is not None:
        handle.process.terminate()
        try:
            handle.process.wait(timeout)
        except subprocess.TimeoutExpired:
            handle.process.kill()
            handle.process.wait(timeout)
    else:
        _terminate_pid(handle.pid, timeout)
    handle.started = False


# -- card processes ------------------------------------------------------------------------


@dataclass
class CardProcess:
    reader: int
    state_file: Path
    pid: int
    pidfile: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def reader_name(self) -> str:
        return reader_name(self.reader)

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return is_card_process(self.pid)


def _child_env() -> dict[str, str]:
    # The child must import this very cardio, installed or not.
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def start_card(
    reader: int,
    state_file: Path,
    *,
    fail_after: int | None = None,
    pidfile: Path | None = None,
    detach: bool = False,
    attestation_ca: Path | None = None,
) -> CardProcess:
    """Spawn ``python -m cardio.virtual run`` for ``state_file`` in vpcd reader ``reader``.

    Returns at once; use ``wait_card_present`` to wait for pcscd to see the card. ``detach``
    puts the card in its own session so it outlives the caller (the CLI ``start``);
    ``attestation_ca`` (a directory) gives a card without one an attestation key from that
    test maker CA (``attestation.AttestationCa``).
    """
    state_file = Path(state_file).resolve()
    pidfile = Path(pidfile) if pidfile is not None else pidfile_for(state_file)
    argv = [
        sys.executable, "-m", "cardio.virtual", "run",
        "--reader", str(reader), "--state", str(state_file), "--pidfile", str(pidfile),
    ]  # fmt: skip
    if fail_after is not None:
        argv += ["--fail-after", str(fail_after)]
    if attestation_ca is not None:
        argv += ["--attestation-ca", str(attestation_ca)]
    if not detach:
        # A test run that dies must not leave its cards in the readers.
        argv += ["--exit-with-parent", str(os.getpid())]
    with open(logfile_for(state_file), "ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_child_env(),
            start_new_session=detach,
        )
    return CardProcess(reader, state_file, process.pid, pidfile, process)


def read_pidfile(pidfile: Path) -> int | None:
    try:
        return int(Path(pidfile).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def is_card_process(pid: int) -> bool:
    """True if ``pid`` is alive and is a ``cardio.virtual run`` (not a recycled PID)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"cardio.virtual" in argv and b"run" in argv


def _terminate_pid(pid: int, timeout: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(POLL)


def _pid_alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child: reap it
            return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # An orphan that exited stays a zombie until init reaps it (seconds, in some containers).
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def stop_card(card: CardProcess, timeout: float = 5.0) -> None:
    """Pull the card: stop its process (ours, by PID) and drop its pidfile."""
    if card.process is not None:
        if card.process.poll() is None:
            card.process.terminate()
            try:
                card.process.wait(timeout)
            except subprocess.TimeoutExpired:
                card.process.kill()
                card.process.wait(timeout)
    elif is_card_process(card.pid):
        _terminate_pid(card.pid, timeout)
    if read_pidfile(card.pidfile) == card.pid:
        card.pidfile.unlink(missing_ok=True)


def card_from_pidfile(reader: int, state_file: Path) -> CardProcess | None:
    """The running card process recorded next to ``state_file``, if it is still alive."""
    state_file = Path(state_file).resolve()
    pidfile = pidfile_for(state_file)
    pid = read_pidfile(pidfile)
    if pid is None or not is_card_process(pid):
        return None
    return CardProcess(reader, state_file, pid, pidfile)


def reader_state(name: str) -> ReaderState | None:
    """What pcscd publishes for reader ``name``; None when pcscd does not answer."""
    try:
        with PcscContext() as ctx:
            return ctx.reader_state(name)
    except PcscError:
        return None


def card_present(name: str) -> bool:
    state = reader_state(name)
    return state is not None and state.present


def wait_card_present(name: str, present: bool = True, timeout: float = 5.0) -> ReaderState | None:
    """Poll PC/SC until reader ``name`` shows a card (or none); ``TimeoutError`` otherwise.

    Returns the state seen (None: no pcscd, hence no card). Before inserting a card where one
    was just pulled, "no card" is not enough: see ``wait_card_removed``.
    """
    deadline = time.monotonic() + timeout
    while True:
        state = reader_state(name)
        if (state is not None and state.present) == present:
            return state
        if time.monotonic() > deadline:
            what = "a card" if present else "no card"
            raise TimeoutError(f"reader {name!r} did not show {what} within {timeout:.1f} s")
        time.sleep(POLL)


def wait_card_removed(name: str, inserted: ReaderState, timeout: float = 5.0) -> None:
    """Wait until pcscd's reader thread has seen the card go that was ``inserted`` (the state
    ``wait_card_present`` returned for it); ``TimeoutError`` otherwise.

    Only then may a card go back into that reader. "No card" alone is not enough: when an
    application disconnects with SCARD_RESET_CARD (every cardio session does) from a card that
    was pulled, pcscd publishes the reader empty at once, while its reader thread, which polls
    vpcd every 400 ms, has not seen the removal yet. A card inserted before that poll looks to
    the thread like the card it already knew, so pcscd never reports it: the reader stays
    "empty" until that card is pulled again (issue 16: the remote desk test re-inserted its card
    0.27 s after the pull). The thread alone counts insertions and removals, so a changed count
    means it has seen this card go.
    """
    deadline = time.monotonic() + timeout
    while True:
        state = reader_state(name)
        if state is None or (not state.present and state.events != inserted.events):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"pcscd did not see the card leave reader {name!r} within {timeout:.1f} s"
            )
        time.sleep(POLL)
