"""Writing files so that a failed or interrupted run never leaves a half-written file under its final name, never
a temporary file, and never a file only its owner can read.

Each file is written next to its destination under a temporary name, given the permissions the umask allows
(``mkstemp`` makes ``-rw-------`` files), then renamed over the destination in one step. Every file written
this way is remembered (:func:`written`), so a command that fails half way can say which of its outputs were
kept; a folder of such files renamed or removed as a whole (a checkpoint written under a temporary name) updates
the record (:func:`moved_written`, :func:`removed_written`), so that it names only files that are there.
:func:`check_output_folder` tries a folder before any slow work starts.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import OutputError

_written: dict[Path, None] = {}  # an ordered set


def written() -> list[Path]:
    """Files written atomically since the last :func:`forget_written` and still in place, oldest first (a file
    written twice counts once, at its first writing)."""
    return list(_written)


def forget_written() -> None:
    """Start a new record of written files (each CLI command starts with one)."""
    _written.clear()


def remember_written(path: Path) -> None:
    """Add ``path``, put in place in one step by other means (a rename), to the record of written files."""
    _written.setdefault(path)


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def moved_written(src: Path, dest: Path) -> None:
    """The folder ``src`` was renamed to ``dest``: the record names its files under their new paths."""
    moved = [dest / p.relative_to(src) if _under(p, src) else p for p in _written]
    _written.clear()
    _written.update(dict.fromkeys(moved))


def removed_written(path: Path) -> None:
    """The file or folder ``path`` was removed: the record forgets it and whatever it held."""
    kept = [p for p in _written if not _under(p, path)]
    _written.clear()
    _written.update(dict.fromkeys(kept))


def umask() -> int:
    """The process's file-creation mask, read without changing it where /proc allows."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of ``data`` to the file descriptor ``fd`` (``os.write`` may write less than it is given)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _link_new(tmp: Path, dest: Path) -> None:
    """Give ``tmp`` the name ``dest`` unless that exists (FileExistsError): a hard link where the file system
    has them (atomic: a file appearing meanwhile is not replaced either), else an existence check and a rename."""
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "file exists", str(dest)) from None
    except OSError:  # a file system without hard links
        if dest.exists():
            raise FileExistsError(errno.EEXIST, "file exists", str(dest)) from None
        os.replace(tmp, dest)


@contextlib.contextmanager
def temporary_beside(dest: Path, replace: bool = True) -> Iterator[Path]:
    """A temporary file name next to ``dest`` (same file system, so the rename is atomic); whatever is written
    there replaces ``dest`` when the block ends without an error (with ``replace=False`` it takes the name only
    if ``dest`` does not exist, else FileExistsError), and is removed when it fails."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~umask())
        if replace:
            os.replace(tmp, dest)
        else:
            _link_new(tmp, dest)
        remember_written(dest)
    except OSError as exc:  # name the file the user asked for, not the temporary one (os.write names none)
        if exc.filename in (None, str(tmp), name):
            raise type(exc)(exc.errno, exc.strerror, str(dest)) from exc
        raise
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(dest: str | os.PathLike, data: bytes) -> Path:
    """Replace ``dest`` with ``data`` in one step; an unchanged file is left alone (idempotent re-runs)."""
    dest = Path(dest)
    if holds_bytes(dest, data):
        return dest
    with temporary_beside(dest) as tmp:
        _fill(tmp, data)
    return dest


def holds_bytes(path: Path, data: bytes) -> bool:
    """Whether the file ``path`` holds exactly ``data`` (its size compared first: a different file is rarely read)."""
    return path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data


def _fill(tmp: Path, data: bytes) -> None:
    """Write ``data`` into the (already created) temporary file ``tmp``."""
    fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def write_new(dest: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``dest`` in one step, never replacing a file: FileExistsError when ``dest`` exists."""
    dest = Path(dest)
    with temporary_beside(dest, replace=False) as tmp:
        _fill(tmp, data)
    return dest


def write_text(dest: str | os.PathLike, text: str) -> Path:
    return write_bytes(dest, text.encode("utf-8"))


def save_safetensors(
    tensors: dict, dest: str | os.PathLike, metadata: dict[str, str] | None = None, replace: bool = True
) -> Path:
    """``safetensors.torch.save_file``, atomically and with ``OSError`` (not ``SafetensorError``) on a full or
    read-only disk: the file is serialised in memory, then written with :func:`write_bytes`, or with
    :func:`write_new` when not ``replace`` (FileExistsError when ``dest`` exists by then)."""
    from safetensors.torch import save

    return (write_bytes if replace else write_new)(dest, save(tensors, metadata=metadata))


def write_unique(dest: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` under ``dest``, or ``name-1.ext``, ``name-2.ext``... the first free name (see
    :func:`unique_path`), in one step that never replaces a file: a name another process takes between the
    choice and the write (two runs into one folder) is skipped for the next. Returns the name written."""
    dest = Path(dest)
    candidate = unique_path(dest)
    while True:
        try:
            return write_new(candidate, data)
        except FileExistsError:
            candidate = unique_path(dest, after=candidate)


def save_png(image, dest: str | os.PathLike, text: dict[str, str] | None = None, overwrite: bool = True) -> Path:
    """A PIL image as PNG, atomically, with ``text`` chunks; without ``overwrite`` under the first free name of
    :func:`write_unique` (returned)."""
    import io

    from PIL.PngImagePlugin import PngInfo

    meta = PngInfo()
    for key, value in (text or {}).items():
        meta.add_text(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=meta)
    return (write_bytes if overwrite else write_unique)(dest, buffer.getvalue())


def unique_path(path: Path, after: Path | None = None, taken: Callable[[Path], bool] = Path.exists) -> Path:
    """``path``, or ``name-1.ext``, ``name-2.ext``... the first that is not ``taken`` (by default: that does not
    exist yet), coming after ``after``, one of these names, when given. Another process may take it before it is
    written: :func:`write_unique` writes without that race."""

    def numbered(n: int) -> Path:
        return path if n == 0 else path.with_name(f"{path.stem}-{n}{path.suffix}")

    n = 0 if after is None else 1 if after == path else int(after.stem.rpartition("-")[2]) + 1
    while taken(numbered(n)):
        n += 1
    return numbered(n)


_OUTPUT_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "a file where a folder is expected",
    errno.EISDIR: "a folder where a file is expected",
    errno.ENAMETOOLONG: "file name too long",
}


def describe_os_error(exc: OSError) -> str | None:
    """A short reason for an ``OSError`` a user's disk, files or folders cause, None for any other (a bug)."""
    return _OUTPUT_ERRNOS.get(exc.errno or 0)


def made_path(folder: Path) -> Path:
    """``folder`` as making it names it. ``mkdir -p a/x/../y`` makes ``a/x``, then ``a/y``; until ``a/x`` exists,
    ``a/x/../y`` names nothing to any other call (``exists()`` is False however ``a/y`` is), so a folder checked
    as given and then made would be checked as absent, made elsewhere and leave ``a/x`` behind. Here each ``..``
    after a folder that does not exist yet goes with that folder (a folder about to be made is no symbolic link):
    ``a/y``. Where every ``..`` follows an existing folder, ``folder`` is returned as it is. A file's path is
    named the same way (its folder is made, then the file written in it)."""
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    return existing / os.path.normpath(folder.relative_to(existing))


def dangling_link(path: Path) -> Path | None:
    """The first symbolic link on ``path`` (a folder on its way, or ``path`` itself) whose target does not exist
    (or that loops), None when there is none. Nothing can be made through such a link (``mkdir -p`` says "File
    exists"), and a file renamed onto it would replace the link, not make its target."""
    parts = path.parts
    step = Path(parts[0]) if path.anchor else Path()
    for part in parts[1:] if path.anchor else parts:
        step = step / part
        if not os.path.lexists(step):
            return None  # nothing further down exists: no link either
        if step.is_symlink() and not step.exists():
            return step
    return None


def link_text(link: Path) -> str:
    """What the dangling symbolic link ``link`` points to, for a message: ``a symbolic link to a missing target
    (TARGET)``, or one that loops."""
    target = os.readlink(link)
    try:
        os.stat(link)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"a symbolic link that loops ({link} -> {target})"
    return f"a symbolic link to a missing target ({link} -> {target})"


def _made_path_checked(given: Path, option: str, label: str, expected: str) -> Path:
    """:func:`made_path` of ``given``, or :class:`OutputError` when a symbolic link on its way leads nowhere
    (:func:`dangling_link`), as spelled (``link/../y``: ``mkdir -p`` stops at ``link``) or as made (``a/x/../link``
    with no ``a/x`` is ``a/link``)."""
    made = made_path(given)
    for path in (given, made):
        link = dangling_link(path)
        if link is not None:
            where = "" if link == path else " on its path"
            raise OutputError(f"{option} {label}: expected {expected}, found {link_text(link)}{where}")
    return made


def check_output_folder(folder: str | os.PathLike, option: str, label: str | None = None) -> Path:
    """Raise :class:`OutputError` unless ``folder`` is (or can be made as) a folder this process can write in;
    returns it as making it names it (:func:`made_path`): write there, not through the path as given.

    Nothing is created: the nearest existing ancestor is tried by creating and removing a temporary file there,
    which tells a read-only mount (EROFS) from a folder without permission (EACCES), as ``os.access`` does not.
    A symbolic link on the way to a missing target is refused (:func:`dangling_link`). ``label`` is what the
    message names (default: the folder as given)."""
    given = Path(folder).expanduser()
    label = label or str(given)
    folder = _made_path_checked(given, option, label, "a folder")
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        kind = "an existing file" if existing == folder else f"the file {existing} on its path"
        raise OutputError(f"{option} {label}: expected a folder, found {kind}")
    try:
        fd, name = tempfile.mkstemp(prefix=".nopaingan-probe-", dir=existing)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        reason = describe_os_error(exc) or exc.strerror or str(exc)
        if exc.errno == errno.ENOENT:  # the folder exists, yet a file cannot be made in it: /proc, /sys, ...
            reason = "its file system does not take new files"
        where = f"in {existing}" if existing != folder or label != str(folder) else "there"
        raise OutputError(f"{option} {label}: cannot write {where}: {reason}") from exc
    return folder


def check_output_file(path: str | os.PathLike, option: str, overwrite: bool = False, suffix: str | None = None) -> Path:
    """Like :func:`check_output_folder` for a file's folder; an existing ``path`` is refused unless ``overwrite``,
    and with ``suffix`` (e.g. ``".safetensors"``) a name that does not end in it (any case). Returns the file as
    making its folder names it (:func:`made_path`: ``a/x/../f`` with no ``a/x`` is ``a/f``), the name to write
    and the one checked, so that an existing ``a/f`` is not replaced through another spelling."""
    given = Path(path).expanduser()
    path = _made_path_checked(given, option, str(given), "a file name")
    named = str(given) if path == given else f"{given} (that is {path})"
    if path.is_dir():
        raise OutputError(f"{option} {named}: expected a file name, found a folder")
    if suffix is not None and path.suffix.lower() != suffix:
        found = f"'{path.suffix}'" if path.suffix else "no extension"
        raise OutputError(f"{option} {named}: expected a {suffix} file name, found {found}")
    if path.exists() and not overwrite:
        raise OutputError(f"{option} {named}: file exists; choose another name or pass --overwrite")
    check_output_folder(path.parent, option, label=str(given))
    return path
