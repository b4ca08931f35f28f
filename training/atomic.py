"""Writing files so that an interrupted run never leaves a half-written one under its final name (see
:mod:`nopaingan_core.atomic`), and staging a run's files in their folder until the run completes."""

from __future__ import annotations

import contextlib
import filecmp
import json
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import psutil

from nopaingan_core.atomic import holds_bytes, remember_written, save_safetensors, write_all, write_bytes, write_text

__all__ = [
    "StagedFiles",
    "check_not_being_written",
    "folder_lock",
    "remove_stale_staging",
    "save_safetensors",
    "staging_folders",
    "write_bytes",
    "write_text",
]

STAGING_PREFIX = ".nopaingan-staging-"
STAGING_MARK = ".nopaingan-run.json"  # in each staging folder: the process writing it (pid, host, start)
LOCK_SUFFIX = ".nopaingan-lock"  # beside a folder a run writes: .DATA.nopaingan-lock, held while it runs


class StagedFiles:
    """Files a run puts into ``folder`` (names relative to it), held back until :meth:`move_in`, so that a run
    that stops on the way leaves ``folder`` exactly as it was: no file added, replaced or removed.

    Staged files wait in a temporary folder inside ``folder`` (``.nopaingan-staging-*``), made, with ``folder``
    itself when it is new, when the first file is staged: moving them in is a rename of each, on one file system
    even where ``folder`` is a mount point, and only ``folder`` need be writable, not the folder it is in.
    :meth:`discard` removes the staging folder, and ``folder`` too when this run made it and nothing went in. The
    staging folder names the process writing it (:data:`STAGING_MARK`), so that one a killed run left is known as
    such and removed by the next run (:func:`remove_stale_staging`). A file whose bytes ``folder`` holds already
    is not staged at all: a repeated run changes nothing there.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._staging: Path | None = None
        self._made_folder = False
        self._names: set[str] = set()

    def place(self, src: Path, name: str, link: bool = True) -> None:
        """Stage a copy of ``src`` as ``name``: a hard link when ``link`` and the file system allow it (no extra
        space), else a byte copy."""
        dest = self.folder / name
        if dest.is_file() and (os.path.samefile(src, dest) or filecmp.cmp(src, dest, shallow=False)):
            self._unstage(name)
            return
        with self._writing(name) as staged:
            if link:
                try:
                    os.link(src, staged)
                    return
                except OSError:
                    pass  # another device or a file system without hard links: copy instead
            with open(src, "rb") as source:
                _write_new(staged, iter(lambda: source.read(1 << 20), b""))

    def write(self, name: str, data: bytes) -> None:
        """Stage ``data`` as the file ``name``."""
        if holds_bytes(self.folder / name, data):
            self._unstage(name)
            return
        with self._writing(name) as staged:
            _write_new(staged, [data])

    def path(self, name: str) -> Path:
        """Where the file ``name`` is now: staged, or in ``folder`` when the run did not change it."""
        return self._staging / name if self._staging is not None and name in self._names else self.folder / name

    def move_in(self) -> list[Path]:
        """Move every staged file into ``folder``, replacing files of the same name; returns their new paths."""
        moved = []
        for name in sorted(self._names):
            dest = self.folder / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.path(name), dest)
            remember_written(dest)
            moved.append(dest)
        self._names.clear()
        return moved

    def discard(self) -> None:
        """Remove the staging folder and whatever is still in it, and ``folder`` when staging made it and it is
        empty (a run into a new folder that stops before anything moved in leaves no folder)."""
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
        if self._made_folder:
            with contextlib.suppress(OSError):  # not empty: the run's files moved in
                self.folder.rmdir()
            self._made_folder = False
        self._names.clear()

    def _unstage(self, name: str) -> None:
        if name in self._names:
            self.path(name).unlink()
            self._names.remove(name)

    @contextlib.contextmanager
    def _writing(self, name: str) -> Iterator[Path]:
        """The staged path to write ``name`` to; an OSError there names the file in ``folder`` the user knows."""
        if self._staging is None:
            self._start()
        self._unstage(name)
        staged = self._staging / name
        staged.parent.mkdir(parents=True, exist_ok=True)
        self._names.add(name)
        try:
            yield staged
        except OSError as exc:
            if exc.filename in (None, str(staged)):
                raise type(exc)(exc.errno, exc.strerror, str(self.folder / name)) from exc
            raise

    def _start(self) -> None:
        """Make ``folder`` (when new) and the staging folder in it, marked with this process; an OSError names
        ``folder``, not the temporary name the user never chose."""
        try:
            try:
                self.folder.mkdir(parents=True)
                self._made_folder = True
            except FileExistsError:
                pass
            self._staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.folder))
            _write_new(self._staging / STAGING_MARK, [json.dumps(_this_process()).encode()])
        except OSError as exc:
            raise type(exc)(exc.errno, exc.strerror, str(self.folder)) from exc


@contextlib.contextmanager
def folder_lock(folder: Path, option: str = "--out") -> Iterator[Path]:
    """Hold the folder ``folder`` for this run: :class:`~training.errors.DatasetError` naming ``option`` at once
    while another live process holds it, so that two runs into one folder never both report success with one's
    albums lost. The lock is the ``filelock`` package's (the system's ``flock`` on POSIX, ``msvcrt.locking`` on
    Windows) on ``.NAME.nopaingan-lock`` beside the folder (which may not exist yet), or inside it where its
    parent is not writable (a mount point); the system releases it when its process ends however it ends, so a
    killed run's lock is simply taken over. ``.NAME.nopaingan-lock.json`` names the holder (:func:`_this_process`)
    for the message; both files are removed when the run ends."""
    from filelock import FileLock, Timeout

    from .errors import DatasetError

    real = folder.expanduser().resolve()
    real.parent.mkdir(parents=True, exist_ok=True)  # as the run would make it; the lock waits there
    path = _lock_path(real)
    owner = path.with_name(path.name + ".json")
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise DatasetError(
            f"{option}: expected a folder no other run is writing, found {folder} being written by another "
            f"run ({_process_text(_read_owner(owner))}lock {path}); wait for it to end, or choose another {option}"
        ) from None
    try:
        owner.write_text(json.dumps(_this_process()), encoding="utf-8")  # not a file of the run's: not recorded
        yield path
    finally:
        for done in (owner, path):
            with contextlib.suppress(OSError):
                done.unlink()  # before the release: a run that waited on this file tries again on a new one
        lock.release()


def _lock_path(real: Path) -> Path:
    """The lock file of the folder ``real`` (resolved): beside it, or inside it where its parent is not writable."""
    if not os.access(real.parent, os.W_OK) and real.is_dir():
        return real / LOCK_SUFFIX  # a mount point
    return real.parent / f".{real.name}{LOCK_SUFFIX}"


def check_not_being_written(folder: Path, option: str) -> None:
    """Refuse to read ``folder`` while another run writes it (holds :func:`folder_lock`): a
    :class:`~training.errors.DatasetError` naming ``option``, the run and the lock file; an import still running
    would leave albums out of what is read. The lock is only tried, never taken or made: its file exists only while
    a run holds it or after a killed one (whose lock the system has freed)."""
    from filelock import FileLock, Timeout

    from .errors import DatasetError

    path = _lock_path(folder.expanduser().resolve())
    if not path.is_file():
        return
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        owner = _read_owner(path.with_name(path.name + ".json"))
        raise DatasetError(
            f"{option}: expected a folder no run is writing, found {folder} being written by another run "
            f"({_process_text(owner)}lock {path}); wait for it to end"
        ) from None
    lock.release()


def _read_owner(path: Path) -> dict:
    """The process a lock's owner file names (:func:`_this_process`), {} when it names none (not yet written)."""
    try:
        owner = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def _process_text(owner: dict) -> str:
    """``pid 123 on host, `` as far as ``owner`` (a lock file's :func:`_this_process`) tells, else ""."""
    pid, host = owner.get("pid"), owner.get("host")
    said = " ".join(part for part in (f"pid {pid}" if pid else "", f"on {host}" if host else "") if part)
    return f"{said}, " if said else ""


def staging_folders(folder: Path) -> list[Path]:
    """The staging folders of runs into ``folder``, in it: folders named ``.nopaingan-staging-*`` that hold
    :data:`STAGING_MARK` (no link, no other name, nothing unmarked)."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.name.startswith(STAGING_PREFIX) and not p.is_symlink() and p.is_dir() and (p / STAGING_MARK).is_file()
    )


def remove_stale_staging(folder: Path) -> list[Path]:
    """Remove the staging folders in ``folder`` of runs into it that ended without removing them (killed, or
    the machine went down) and return them. Only provably stale ones go: marked by a process of this host
    that is gone (its pid unused, a zombie's, or a process's started at another time). A run still in progress,
    a run of another host (a shared disk), a marker that cannot be read or a folder without one is left alone."""
    removed = []
    for path in staging_folders(folder):
        if _ended(_owner(path)):
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                removed.append(path)
    return removed


def _this_process() -> dict[str, object]:
    """What names this process beyond its pid, which the system gives to another once it ended."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": _start_of(os.getpid())}


def _start_of(pid: int) -> str | None:
    """When the process ``pid`` started, in a form that stays the same while it runs, whatever the clock does,
    and that a later process given the same pid does not have; None when no process has the pid (or a zombie).

    On Linux: the boot's id and the start in clock ticks since boot (/proc), as psutil's create time there is
    boot time plus ticks, and the boot time moves with the wall clock (NTP steps). Elsewhere psutil's create
    time, kept as the system recorded it. Raises OSError or psutil.Error where it cannot tell (a process of
    another user that /proc hides from this one)."""
    if sys.platform.startswith("linux"):
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            if psutil.pid_exists(pid):  # hidden (/proc mounted with hidepid), yet there
                raise
            return None
        state, *fields = stat.rpartition(")")[2].split()
        return None if state in ("Z", "X") else f"{boot} {fields[18]}"
    try:
        process = psutil.Process(pid)
        return None if process.status() == psutil.STATUS_ZOMBIE else repr(process.create_time())
    except psutil.NoSuchProcess:
        return None


def _owner(staging: Path) -> dict:
    """What a staging folder's marker says (the process writing it), {} when there is none to read."""
    try:
        owner = json.loads((staging / STAGING_MARK).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def _ended(owner: dict) -> bool:
    """Whether the process ``owner`` names (:func:`_this_process`) has certainly ended: it ran on this host and
    no process has its pid now, or a zombie, or one that started at another time (:func:`_start_of`)."""
    if owner.get("host") != socket.gethostname():
        return False
    pid, started = owner.get("pid"), owner.get("started")
    if type(pid) is not int or pid <= 0 or type(started) is not str:
        return False
    try:
        return _start_of(pid) != started
    except (OSError, psutil.Error, OverflowError, ValueError, IndexError):  # cannot tell: it may be running
        return False


def _write_new(path: Path, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to the new file ``path`` (permissions as the umask allows)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        for chunk in chunks:
            write_all(fd, chunk)
    finally:
        os.close(fd)
