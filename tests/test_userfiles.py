"""User files on a real disk: atomic, locked across real processes, never lost when unreadable."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import llm_notebook
from llm_notebook import keys, paths, userfiles
from llm_notebook.paths import UserFileError
from llm_notebook.userfiles import UserFileWarning

ROOT = Path(__file__).resolve().parent.parent
#: Bytes that no user file may hold: a trailing comma, bad UTF-8, a JSON array.
BROKEN = {
    "trailing comma": b'{\n  "old": "sk-old-key-0001",\n}\n',
    "bad utf-8": b'{"old": "sk-old-key-\xff\xfe"}',
    "not an object": b'["sk-old-key-0001"]',
}
WHY = {"trailing comma": "is not valid JSON", "bad utf-8": "is not UTF-8 text",
       "not an object": "holds an array, not an object"}


def corrupt_copies(folder: Path, name: str) -> list[Path]:
    return sorted(folder.glob(f"{name}.corrupt-*"))


def read(name: str):
    """What the package reads from the user file `name`."""
    if name == "keys.json":
        return llm_notebook.stored_key_names()
    return llm_notebook.plugins.registry.user_aliases()


def change(name: str) -> None:
    if name == "keys.json":
        llm_notebook.set_key("new", "sk-new-key-0002")
    else:
        llm_notebook.set_alias("new", "markov")


# -- the user directory --------------------------------------------------------------------------
def test_user_dir_is_where_it_always_was_on_each_platform(monkeypatch, tmp_path):
    monkeypatch.delenv("LLM_NOTEBOOK_USER_PATH")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert paths.user_dir() == tmp_path / "xdg" / "llm_notebook"
    assert (tmp_path / "xdg" / "llm_notebook").is_dir()
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert paths.user_dir(create=False) == tmp_path / "home" / ".config" / "llm_notebook"
    # The arguments user_dir passes give the same folders on macOS and Windows as before.
    from platformdirs.macos import MacOS
    from platformdirs.windows import Windows

    assert MacOS("llm_notebook", appauthor=False, roaming=True).user_config_dir == str(
        tmp_path / "home" / "Library" / "Application Support" / "llm_notebook")
    appdata = "C:\\Users\\ada\\AppData\\Roaming"  # what %APPDATA% holds
    monkeypatch.setenv("WIN_PD_OVERRIDE_APPDATA", appdata)
    assert Windows("llm_notebook", appauthor=False, roaming=True).user_config_dir == os.path.join(
        appdata, "llm_notebook")


def test_user_path_variable_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_NOTEBOOK_USER_PATH", str(tmp_path / "chosen"))
    assert paths.user_dir() == tmp_path / "chosen"


def test_a_user_dir_that_cannot_be_created_is_one_clear_error(tmp_path, monkeypatch):
    # chmod does not stop root, but no one can make a folder below a regular file
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("LLM_NOTEBOOK_USER_PATH", str(blocker / "user"))
    assert llm_notebook.stored_key_names() == []  # reading needs no folder
    assert llm_notebook.get_default_model() == "echo"
    for store in (lambda: llm_notebook.set_key("svc", "sk-never-stored-1"),
                  lambda: llm_notebook.set_alias("fast", "markov"),
                  lambda: llm_notebook.set_default_model("markov")):
        with pytest.raises(UserFileError) as error:
            store()
        assert isinstance(error.value, llm_notebook.LLMNotebookError)
        message = str(error.value)
        assert message == (f"Cannot create the llm_notebook user directory {blocker / 'user'}: a "
                           "file stands where a folder belongs. Set LLM_NOTEBOOK_USER_PATH to a "
                           "folder you can write, or fix that path")
        assert "\n" not in message and error.value.__cause__ is None
        assert error.value.__suppress_context__
    assert blocker.read_text() == "not a folder"


def test_a_file_that_cannot_be_written_is_one_clear_error(user_dir):
    llm_notebook.set_key("svc", "sk-first-key-0001")
    (user_dir / "keys.json.lock").unlink(missing_ok=True)
    (user_dir / "keys.json.lock").mkdir()  # the lock cannot be taken: a folder is in its place
    with pytest.raises(UserFileError, match=rf"^Cannot write {user_dir / 'keys.json'}: .*\. Make "
                                            rf"{user_dir} a folder you can write"):
        llm_notebook.set_key("other", "sk-second-key-02")
    assert keys.stored_key("svc") == "sk-first-key-0001"


# -- atomic, locked writes -------------------------------------------------------------------------
def test_writes_replace_the_file_whole_and_leave_no_temporary_file(user_dir):
    llm_notebook.set_key("svc", "sk-first-key-0001")
    before = os.stat(user_dir / "keys.json").st_ino
    llm_notebook.set_key("svc", "sk-second-key-02")
    assert os.stat(user_dir / "keys.json").st_ino != before  # a new file swapped in, not rewritten
    assert json.loads((user_dir / "keys.json").read_text()) == {"svc": "sk-second-key-02"}
    assert sorted(p.name for p in user_dir.iterdir() if ".tmp" in p.name) == []


WRITER = textwrap.dedent("""
    import sys
    import llm_notebook
    which, count = sys.argv[1], int(sys.argv[2])
    print("ready", flush=True)
    sys.stdin.readline()  # both processes start writing together
    for i in range(count):
        if sys.argv[3] == "key":
            llm_notebook.set_key(f"{which}-{i}", f"sk-{which}-{i:04d}-value")
        else:
            llm_notebook.set_alias(f"{which}-{i}", "markov" if i % 2 else "echo")
    print("done", flush=True)
""")


def run_two_writers(user_dir: Path, what: str, count: int = 100) -> None:
    """Two real processes, each making `count` changes of its own, released at the same moment."""
    env = {**os.environ, "LLM_NOTEBOOK_USER_PATH": str(user_dir), "LLM_NOTEBOOK_LOAD_PLUGINS": "",
           "PYTHONPATH": str(ROOT)}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, name, str(count), what], env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for name in ("a", "b")]
    try:
        for writer in writers:
            assert writer.stdout.readline() == "ready\n"
        for writer in writers:
            writer.stdin.write("go\n")
            writer.stdin.flush()
        for writer in writers:
            out, _ = writer.communicate(timeout=120)
            assert writer.returncode == 0 and out == "done\n"
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()


def test_two_processes_storing_keys_at_once_keep_every_key(user_dir):
    run_two_writers(user_dir, "key")
    stored = json.loads((user_dir / "keys.json").read_text())
    assert len(stored) == 200
    assert stored["a-7"] == "sk-a-0007-value" and stored["b-99"] == "sk-b-0099-value"
    assert stat.S_IMODE(os.stat(user_dir / "keys.json").st_mode) == 0o600


def test_two_processes_storing_aliases_at_once_keep_every_alias(user_dir):
    run_two_writers(user_dir, "alias")
    stored = json.loads((user_dir / "aliases.json").read_text())
    assert len(stored) == 200
    assert stored["a-3"] == "markov" and stored["b-98"] == "echo"
    assert llm_notebook.get_model("b-41").model_id == "markov"


HOLDER = textwrap.dedent("""
    import sys, filelock
    with filelock.FileLock(sys.argv[1]):
        print("holding", flush=True)
        sys.stdin.readline()
""")


def test_a_lock_held_too_long_by_another_process_is_a_clear_error(user_dir, monkeypatch):
    llm_notebook.set_key("svc", "sk-first-key-0001")
    lock = user_dir / "keys.json.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "holding\n"
        monkeypatch.setattr(userfiles, "LOCK_TIMEOUT", 0.2)
        with pytest.raises(UserFileError, match=r"has been locked by another process for 0 s; if "
                                                r"no other Python process is using llm_notebook, "
                                                r"delete .*keys\.json\.lock"):
            llm_notebook.set_key("other", "sk-second-key-02")
    finally:
        holder.communicate("done\n", timeout=30)
    llm_notebook.set_key("other", "sk-second-key-02")
    assert llm_notebook.stored_key_names() == ["other", "svc"]


# -- files that cannot be read -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["keys.json", "aliases.json"])
@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_an_unreadable_file_warns_once_and_is_moved_aside_before_a_write(user_dir, name, kind):
    user_dir.mkdir()
    path = user_dir / name
    path.write_bytes(BROKEN[kind])
    with pytest.warns(UserFileWarning) as caught:
        assert not read(name)
    [warning] = [w for w in caught if "cannot be read" in str(w.message)]
    assert str(warning.message).startswith(f"{path} cannot be read: it {WHY[kind]}")
    assert "fix or delete it" in str(warning.message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second read: no second warning
        read(name)
    assert path.read_bytes() == BROKEN[kind]  # reading never rewrites it

    with pytest.warns(UserFileWarning, match=r"could not be read: .*It was moved to "
                                             rf"{name}\.corrupt-\d{{8}}T\d{{6}}, its bytes untouched"):
        change(name)
    [aside] = corrupt_copies(user_dir, name)
    assert aside.read_bytes() == BROKEN[kind]
    assert json.loads(path.read_text()) == {"new": "sk-new-key-0002" if name == "keys.json" else "markov"}


def test_a_folder_where_the_keys_file_belongs_is_moved_aside_with_its_contents(user_dir):
    folder = user_dir / "keys.json"
    folder.mkdir(parents=True)
    folder.chmod(0o755)
    (folder / "note.txt").write_text("mine")
    with pytest.warns(UserFileWarning, match="keys.json cannot be read: it is a folder, not a file"):
        assert keys.stored_key("svc") is None
    with pytest.warns(UserFileWarning, match="moved to keys.json.corrupt-"):
        llm_notebook.set_key("svc", "sk-after-folder-01")
    [aside] = corrupt_copies(user_dir, "keys.json")
    assert (aside / "note.txt").read_text() == "mine"
    assert stat.S_IMODE(aside.stat().st_mode) == 0o755
    assert keys.stored_key("svc") == "sk-after-folder-01"


def test_two_corrupt_files_in_one_second_are_both_kept(user_dir):
    user_dir.mkdir()
    for number in (1, 2):
        (user_dir / "keys.json").write_bytes(b"{broken %d" % number)
        with pytest.warns(UserFileWarning):
            llm_notebook.set_key(f"k{number}", f"sk-key-number-{number}")
    kept = {p.read_bytes() for p in corrupt_copies(user_dir, "keys.json")}
    assert kept == {b"{broken 1", b"{broken 2"}


def test_deleting_from_an_unreadable_file_changes_nothing(user_dir):
    user_dir.mkdir()
    (user_dir / "keys.json").write_bytes(BROKEN["trailing comma"])
    with pytest.warns(UserFileWarning, match="cannot be read"):
        assert llm_notebook.delete_key("old") is False
    assert (user_dir / "keys.json").read_bytes() == BROKEN["trailing comma"]
    assert corrupt_copies(user_dir, "keys.json") == []


def test_an_empty_file_is_an_empty_file_not_a_corrupt_one(user_dir):
    user_dir.mkdir()
    (user_dir / "aliases.json").write_text("\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert llm_notebook.plugins.registry.user_aliases() == {}
        llm_notebook.set_alias("fast", "markov")
    assert corrupt_copies(user_dir, "aliases.json") == []


# -- links and permissions ---------------------------------------------------------------------------
def test_a_symlinked_keys_file_is_not_written_through(user_dir, tmp_path):
    user_dir.mkdir()
    target = tmp_path / "elsewhere.json"
    target.write_text('{"theirs": "sk-their-key-0001"}')
    target.chmod(0o644)
    (user_dir / "keys.json").symlink_to(target)
    with pytest.raises(UserFileError, match=r"keys\.json is a symbolic link \(to .*elsewhere\.json\);"
                                            r" llm_notebook does not write through links"):
        llm_notebook.set_key("svc", "sk-never-written-1")
    with pytest.raises(UserFileError, match="symbolic link"):
        llm_notebook.delete_key("theirs")
    assert target.read_text() == '{"theirs": "sk-their-key-0001"}'
    assert (user_dir / "keys.json").is_symlink()
    with pytest.warns(UserFileWarning, match="links to a file others can read"):
        assert llm_notebook.stored_key_names() == ["theirs"]  # reading through it is fine
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # and changes nothing there


def test_a_keys_file_readable_by_others_is_tightened_with_a_warning(user_dir):
    llm_notebook.set_key("svc", "sk-first-key-0001")
    path = user_dir / "keys.json"
    path.chmod(0o644)
    with pytest.warns(UserFileWarning, match=r"keys\.json was readable by others \(mode 644\); it "
                                             r"is now readable by you only \(600\)"):
        assert keys.stored_key("svc") == "sk-first-key-0001"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_key_values_never_appear_in_user_file_warnings(user_dir):
    user_dir.mkdir()
    (user_dir / "keys.json").write_bytes(b'{"svc": "sk-secret-in-a-broken-file",}')
    (user_dir / "keys.json").chmod(0o644)
    with pytest.warns(UserFileWarning) as caught:
        llm_notebook.stored_key_names()
        llm_notebook.set_key("new", "sk-new-key-0002")
    assert len(caught) == 3
    assert all("sk-" not in str(w.message) for w in caught)
