"""User files (keys, aliases, default model, endpoints, batch jobs) that never lose what they hold.

A write replaces its file atomically (a unique temporary file in the same folder, fsync,
`os.replace`) under a cross-process lock (`NAME.lock` beside the file), so two kernels storing keys
at once both keep theirs, and a crash leaves the old file or the new one, never half of either.
A file that cannot be read (bad JSON, bad UTF-8, a folder where the file belongs) is never
overwritten: reading warns and uses the empty value, and the next write first moves it aside to
`NAME.corrupt-YYYYmmddTHHMMSS`, bytes untouched. A symbolic link is never written through.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import stat
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from .paths import UserFileError, os_reason, user_dir

#: Seconds a write waits for another process's write of the same file before giving up.
LOCK_TIMEOUT = 30.0
PRIVATE_MODE = 0o600

T = TypeVar("T")
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "true or false",
               int: "a number", float: "a number", type(None): "null"}
#: (path, file identity, problem) already warned about: each broken state is reported once.
_warned: set[tuple[str, tuple, str]] = set()


class UserFileWarning(UserWarning):
    """A user file cannot be read (it is ignored), was moved aside, or had loose permissions."""


class Unreadable(ValueError):
    """Raised by `UserFile.parse`: why the text is not a valid file of its kind."""


class UserFile:
    """One file of the user directory, read as text; subclasses turn the text into a value.

    `private` files (keys) are kept at 0600: found readable by others, they are tightened with a
    warning.
    """

    def __init__(self, name: str, *, private: bool = False) -> None:
        self.name = name
        self.private = private

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    @property
    def path(self) -> Path:
        return user_dir(create=False) / self.name

    # -- what the text means: overridden by the kinds of file -------------------------------------
    def empty(self) -> Any:
        """The value of a missing (or unreadable) file."""
        return ""

    def parse(self, text: str) -> Any:
        return text

    def render(self, value: Any) -> str:
        return value

    # -- reading ---------------------------------------------------------------------------------
    def read(self) -> Any:
        """The file's value; the empty value (with one warning) when it cannot be read."""
        path = self.path
        value, problem = self._load(path)
        if problem:
            _warn_once(path, problem, f"{path} cannot be read: {problem}. It is ignored until you "
                       f"fix or delete it (the next change moves it aside to "
                       f"{self.name}.corrupt-<date>, keeping its bytes)")
        self._check_private(path)
        return value

    def _load(self, path: Path) -> tuple[Any, str | None]:
        """(value, None), or (empty value, why the file cannot be read)."""
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):  # no file, or no user directory yet
            return self.empty(), None
        except IsADirectoryError:
            return self.empty(), "it is a folder, not a file"
        except OSError as exc:
            return self.empty(), os_reason(exc)
        try:
            return self.parse(raw.decode("utf-8")), None
        except UnicodeDecodeError as exc:
            return self.empty(), f"it is not UTF-8 text (byte {exc.start} cannot be decoded)"
        except Unreadable as exc:
            return self.empty(), str(exc)

    def _check_private(self, path: Path) -> None:
        if not self.private:
            return
        try:
            info = path.stat()
        except OSError:
            return
        mode = stat.S_IMODE(info.st_mode)
        if not stat.S_ISREG(info.st_mode) or not mode & 0o077:  # a folder in its place stays as is
            return
        if path.is_symlink():  # its target is someone else's file: say so, change nothing
            _warn_once(path, "loose", f"{path} links to a file others can read (mode {mode:o}); "
                       f"run chmod 600 on its target")
            return
        path.chmod(PRIVATE_MODE)
        _warn_once(path, "loose", f"{path} was readable by others (mode {mode:o}); "
                   f"it is now readable by you only (600)")

    # -- writing ---------------------------------------------------------------------------------
    def write(self, value: Any) -> None:
        """Replace the file with `value` (a file that could not be read is moved aside first)."""
        with self._locked() as path:
            _, problem = self._load(path)
            self._write(path, value, problem)

    def update(self, change: Callable[[Any], T]) -> T:
        """Read, `change(value)` in place, write back, all under the lock; returns change's result.

        Nothing is written when the value did not change.
        """
        with self._locked() as path:
            value, problem = self._load(path)
            before = copy.deepcopy(value)
            result = change(value)
            if value != before:
                self._write(path, value, problem)
            elif problem:
                self.read()  # unchanged: the broken file stays, reported as a read reports it
            return result

    def remove(self) -> bool:
        """Delete the file (one that could not be read is moved aside instead); whether one was."""
        with self._locked() as path:
            _, problem = self._load(path)
            if problem:
                self._move_aside(path, problem, then="nothing written in its place")
                return True
            with _user_file_errors(path):
                try:
                    path.unlink()
                except FileNotFoundError:
                    return False
            return True

    def _write(self, path: Path, value: Any, problem: str | None) -> None:
        if problem:
            self._move_aside(path, problem, then=f"a new {self.name} written")
        with _user_file_errors(path):
            _replace(path, self.render(value).encode("utf-8"))

    def _move_aside(self, path: Path, problem: str, *, then: str) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = path.with_name(f"{self.name}.corrupt-{stamp}")
        number = 1
        while os.path.lexists(aside):  # several in one second: never replace an earlier one
            number += 1
            aside = path.with_name(f"{self.name}.corrupt-{stamp}-{number}")
        with _user_file_errors(path):
            os.rename(path, aside)
        warnings.warn(f"{path} could not be read: {problem}. It was moved to {aside.name}, its "
                      f"bytes untouched, and {then}", UserFileWarning, stacklevel=4)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[Path]:
        import filelock

        path = user_dir() / self.name
        if path.is_symlink():
            raise UserFileError(
                f"{path} is a symbolic link (to {os.readlink(path)}); llm_notebook does not "
                f"write through links. Replace it with a regular file, or set "
                f"LLM_NOTEBOOK_USER_PATH to the folder it points into")
        lock = filelock.FileLock(path.with_name(self.name + ".lock"), timeout=LOCK_TIMEOUT,
                                 mode=PRIVATE_MODE)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise UserFileError(
                f"{path} has been locked by another process for {LOCK_TIMEOUT:.0f} s; if no "
                f"other Python process is using llm_notebook, delete {lock.lock_file}") from None
        except OSError as exc:
            raise _write_error(path, exc) from None
        try:
            yield path
        finally:
            lock.release()


class JsonFile(UserFile):
    """A JSON file whose top-level value is one of `holds` (an object, by default)."""

    def __init__(self, name: str, *, holds: tuple[type, ...] = (dict,), private: bool = False):
        super().__init__(name, private=private)
        self.holds = holds

    def empty(self) -> Any:
        return self.holds[0]()

    def parse(self, text: str) -> Any:
        if not text.strip():
            return self.empty()
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise Unreadable(f"it is not valid JSON ({exc})") from None
        if not isinstance(value, self.holds):
            wanted = " or ".join(_JSON_TYPES[kind] for kind in self.holds)
            raise Unreadable(f"it holds {_JSON_TYPES.get(type(value), 'a value')}, not {wanted}")
        return value

    def render(self, value: Any) -> str:
        return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def _warn_once(path: Path, problem: str, message: str) -> None:
    try:
        info = path.lstat()
        identity = (info.st_ino, info.st_size, info.st_mtime_ns)
    except OSError:
        identity = ()
    seen = (str(path), identity, problem)
    if seen not in _warned:
        _warned.add(seen)
        warnings.warn(message, UserFileWarning, stacklevel=4)


@contextlib.contextmanager
def _user_file_errors(path: Path) -> Iterator[None]:
    """An OSError while writing `path` becomes one line naming the file and what to do."""
    try:
        yield
    except UserFileError:
        raise
    except OSError as exc:
        raise _write_error(path, exc) from None


def _write_error(path: Path, exc: OSError) -> UserFileError:
    return UserFileError(
        f"Cannot write {path}: {os_reason(exc)}. Make {path.parent} a folder you can write, or "
        f"set LLM_NOTEBOOK_USER_PATH to one")


def _replace(path: Path, data: bytes) -> None:
    """Write `data` to a new file beside `path`, flush it to disk, then swap it in (0600)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; Windows cannot open a folder for this)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
