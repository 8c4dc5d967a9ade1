"""User directories in the states a hostile machine leaves them: junk files, folders where files
belong, read-only folders, folders that cannot be made; and checks that nothing in them was lost.

A preparation takes the case's user directory and is a context manager giving the path the
package is pointed at (another one when the case is about a directory that cannot exist).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

Preparation = Callable[[Path], AbstractContextManager[Path]]
Check = Callable[[Path], None]
FOLDER = object()  # in `holding()`: a folder (with a file in it) where a file belongs


def _put(user: Path, files: dict[str, bytes | object]) -> None:
    user.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if content is FOLDER:
            (user / name).mkdir()
            (user / name / "inside.txt").write_text("kept")
        else:
            (user / name).write_bytes(content)


def holding(files: dict[str, bytes | object]) -> Preparation:
    """A user directory holding `files` (name -> bytes, or FOLDER)."""
    @contextlib.contextmanager
    def prepare(user: Path) -> Iterator[Path]:
        _put(user, files)
        yield user
    return prepare


def _writable(folder: Path) -> bool:
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def read_only_folder(folder: Path) -> Iterator[None]:
    """`folder` cannot be written while inside: mode 555, and for root (whom modes do not stop)
    the immutable attribute as well; both are undone afterwards."""
    folder.chmod(0o555)
    immutable = False
    try:
        if _writable(folder):
            subprocess.run(["chattr", "+i", str(folder)], check=True, capture_output=True)
            immutable = True
        if _writable(folder):
            raise RuntimeError(f"{folder} cannot be made read-only on this machine")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True, capture_output=True)
        folder.chmod(0o755)


def read_only(files: dict[str, bytes | object]) -> Preparation:
    """A user directory holding `files` that nobody can write."""
    @contextlib.contextmanager
    def prepare(user: Path) -> Iterator[Path]:
        with holding(files)(user), read_only_folder(user):
            yield user
    return prepare


def linked(name: str, target: str, content: bytes) -> Preparation:
    """A user directory where `name` is a symbolic link to the file `target` holding `content`."""
    @contextlib.contextmanager
    def prepare(user: Path) -> Iterator[Path]:
        _put(user, {target: content})
        (user / name).symlink_to(user / target)
        yield user
    return prepare


@contextlib.contextmanager
def under_a_file(user: Path) -> Iterator[Path]:
    """A user directory whose path runs through a file: it can never be created."""
    user.mkdir(parents=True, exist_ok=True)
    blocker = user / "a-file"
    blocker.write_text("a file, not a folder")
    yield blocker / "user"


@contextlib.contextmanager
def as_it_is(user: Path) -> Iterator[Path]:
    yield user


# -- nothing lost ---------------------------------------------------------------------------------
def unchanged(name: str, content: bytes) -> Check:
    def check(user: Path) -> None:
        assert (user / name).read_bytes() == content, f"{name} changed"
    return check


def absent(name: str) -> Check:
    def check(user: Path) -> None:
        assert not os.path.lexists(user / name), f"{name} was written"
    return check


def moved_aside(name: str, content: bytes | object) -> Check:
    """The unreadable `name` now lies beside the new one as `name.corrupt-...`, as it was."""
    def check(user: Path) -> None:
        [aside] = user.glob(f"{name}.corrupt-*")
        if content is FOLDER:
            assert (aside / "inside.txt").read_text() == "kept"
        else:
            assert aside.read_bytes() == content
    return check


def holds(name: str, text: str) -> Check:
    def check(user: Path) -> None:
        assert text in (user / name).read_text(), f"{name} does not hold {text!r}"
    return check


def all_of(*checks: Check) -> Check:
    def check(user: Path) -> None:
        for each in checks:
            each(user)
    return check
