"""Port a plugin written for `llm` to llm_notebook with the minimal rewrite, and install plugins
(ported or not) once into a cached folder that a fresh interpreter puts on its path.

The rewrite is the same for every plugin, nothing plugin-specific:
  - `import llm` -> `import llm_notebook as llm` (and `import llm.sub` likewise: the package
    reaches its submodules as attributes);
  - `from llm import X` / `from llm.sub import X` -> `from llm_notebook[.sub] import X`;
  - the entry-point group `llm` -> `llm_notebook`;
  - the dependency on `llm` dropped.

    python -m tests.support.port_plugin UNPACKED_PLUGIN_DIR OUT_DIR

Installing: the plugins' source releases are downloaded once from the package index into
`~/.cache/jupyter-llm-notebook/plugins/` (JUPYTER_LLM_NOTEBOOK_CACHE moves it), unpacked, rewritten
(or not), and installed with `pip --target` into a folder named after what went into it, with only
the packages this virtualenv lacks (their SDKs: ollama, groq, anthropic, mistralai, ...).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

#: The plugins the tests port, at the versions they were written against.
PLUGINS = {
    "llm-echo": "0.5",
    "llm-mistral": "0.16",
    "llm-ollama": "0.19.1",
    "llm-anthropic": "0.30",
    "llm-gemini": "0.35",
    "llm-groq": "0.9",
    "llm-gguf": "0.2",
    "llm-llamafile": "0.1",
}

_IMPORT_LLM = re.compile(r"^(?P<indent>[ \t]*)import llm(?:\.[\w.]+)?(?P<alias>[ \t]+as[ \t]+\w+)?"
                         r"(?P<rest>[ \t]*(?:#.*)?)$", re.MULTILINE)
_FROM_LLM = re.compile(r"^(?P<indent>[ \t]*)from llm(?P<sub>(?:\.\w+)*)[ \t]+import\b", re.MULTILINE)
_ENTRY_POINT_TABLE = re.compile(r"^\[project\.entry-points\.(?:llm|\"llm\")\][ \t]*$", re.MULTILINE)
_SETUP_ENTRY_POINT = re.compile(r"""(["'])llm\1(\s*:)""")
#: A dependency on llm itself (not llm-something): "llm", "llm>=0.36", "llm ==0.19", ...
_LLM_DEPENDENCY = re.compile(r"""[ \t]*(["'])llm(?:\s*[<>=!~][^"']*)?\1[ \t]*,?[ \t]*\n?""")


def rewrite_python(text: str) -> str:
    """A module's source with its imports of llm pointed at llm_notebook."""
    def import_line(match: re.Match) -> str:
        alias = match.group("alias") or " as llm"
        return f"{match.group('indent')}import llm_notebook{alias}{match.group('rest')}"

    text = _IMPORT_LLM.sub(import_line, text)
    return _FROM_LLM.sub(lambda m: f"{m.group('indent')}from llm_notebook{m.group('sub')} import",
                         text)


def rewrite_metadata(text: str) -> str:
    """pyproject.toml or setup.py with the entry-point group renamed and llm no longer required."""
    text = _ENTRY_POINT_TABLE.sub("[project.entry-points.llm_notebook]", text)
    text = _SETUP_ENTRY_POINT.sub(r"\1llm_notebook\1\2", text)
    return _LLM_DEPENDENCY.sub("", text)


def port_tree(source: Path, target: Path) -> Path:
    """Copy an unpacked plugin to `target`, rewritten; returns `target`."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    for path in target.rglob("*"):
        if path.suffix == ".py" and path.name != "setup.py":
            path.write_text(rewrite_python(path.read_text(encoding="utf-8")), encoding="utf-8")
    for name in ("pyproject.toml", "setup.py", "setup.cfg"):
        path = target / name
        if path.exists():
            path.write_text(rewrite_metadata(path.read_text(encoding="utf-8")), encoding="utf-8")
    return target


# -- downloading and installing -------------------------------------------------------------------
def cache_dir() -> Path:
    root = os.environ.get("JUPYTER_LLM_NOTEBOOK_CACHE") or Path.home() / ".cache/jupyter-llm-notebook"
    return Path(root) / "plugins"


def _pip(python: str, *args: str) -> None:
    subprocess.run([python, "-m", "pip", "--disable-pip-version-check", "--quiet", *args],
                   check=True, stdin=subprocess.DEVNULL)


def source_release(name: str, version: str, python: str = sys.executable) -> Path:
    """The plugin's source release, downloaded once."""
    folder = cache_dir() / "sdists"
    stem = f"{name.replace('-', '_')}-{version}"
    found = sorted(folder.glob(f"{stem}.tar.gz")) if folder.exists() else []
    if not found:
        folder.mkdir(parents=True, exist_ok=True)
        _pip(python, "download", "--no-deps", "--no-binary", ":all:", f"{name}=={version}",
             "-d", str(folder))
        found = sorted(folder.glob(f"{stem}.tar.gz"))
    return found[0]


def _unpack(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    [top] = [p for p in into.iterdir() if p.is_dir()]
    return top


def _missing_requirements(python: str, projects: list[Path], report: Path) -> list[str]:
    """What pip would install into this virtualenv for `projects`: each pinned, the projects'
    own folders as paths."""
    _pip(python, "install", "--dry-run", "--ignore-requires-python", "--report", str(report),
         *map(str, projects))
    wanted = []
    for item in json.loads(report.read_text())["install"]:
        url = item["download_info"]["url"]
        if url.startswith("file://"):
            wanted.append(url[len("file://"):])
        else:
            wanted.append(f"{item['metadata']['name']}=={item['metadata']['version']}")
    return wanted


def installed_plugins(*, ported: bool, plugins: dict[str, str] = PLUGINS,
                      python: str = sys.executable) -> Path:
    """A folder holding the plugins (rewritten when `ported`) and what they need that this
    virtualenv lacks; put it first on PYTHONPATH. Made once, under a lock, for what goes in."""
    from filelock import FileLock

    recipe = json.dumps({"plugins": plugins, "ported": ported, "python": sys.version,
                         "rewrite": Path(__file__).read_text(encoding="utf-8")}, sort_keys=True)
    key = hashlib.sha256(recipe.encode()).hexdigest()[:16]
    site = cache_dir() / f"{'ported' if ported else 'unported'}-{key}"
    done = site / ".complete"
    cache_dir().mkdir(parents=True, exist_ok=True)
    with FileLock(str(site) + ".lock"):
        if done.exists():
            return site
        if site.exists():
            shutil.rmtree(site)
        with tempfile.TemporaryDirectory() as work:
            work = Path(work)
            projects = []
            for name, version in plugins.items():
                unpacked = _unpack(source_release(name, version, python), work / "src" / name)
                projects.append(port_tree(unpacked, work / "ported" / name) if ported else unpacked)
            wanted = _missing_requirements(python, projects, work / "report.json")
            _pip(python, "install", "--no-deps", "--ignore-requires-python", "--target", str(site),
                 *wanted)
        done.write_text(recipe)
    return site


def main() -> None:
    parser = argparse.ArgumentParser(description="Port an unpacked llm plugin to llm_notebook")
    parser.add_argument("source", type=Path, help="the unpacked plugin (with its pyproject.toml)")
    parser.add_argument("target", type=Path, help="where to write the ported copy")
    args = parser.parse_args()
    print(port_tree(args.source, args.target))


if __name__ == "__main__":
    main()
