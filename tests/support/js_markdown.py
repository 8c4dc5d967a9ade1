"""Markdown rendered as JupyterLab renders it: LaTeX cut out by JupyterLab's code, then `marked`.

JupyterLab 4 turns Markdown output into HTML with the `marked` library, after lifting math out with
`removeMath` from @jupyterlab/rendermime (put back HTML-escaped afterwards), and it writes a fenced
block's language into its class attribute unescaped. `render_markdown` runs that pipeline in one
node process for a batch of texts; `html_problems` lists what in the HTML Markdown cannot make.

The npm packages are installed on first use into ~/.cache/jupyter-llm-notebook/node: `marked` 17
(the major JupyterLab 4.6 depends on) with `npm install`, and lib/latex.js, which imports nothing,
from `npm pack @jupyterlab/rendermime` at the installed JupyterLab's version. node and npm come from
apt-get (as root, or through `sudo -n`) when the machine has none.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from html.parser import HTMLParser
from pathlib import Path

from filelock import FileLock

MARKED = "marked@17"
CACHE = (Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
         / "jupyter-llm-notebook" / "node")
INSTALL_TIMEOUT_S = 300
RENDER_TIMEOUT_S = 120

_RENDER_SCRIPT = r"""
import { marked, Renderer } from "marked";
import { removeMath, replaceMath } from "./latex.mjs";

// latex.mjs reads navigator, which node 20 does not have
if (typeof navigator === "undefined") globalThis.navigator = { appName: "node" };

const escapeHtml = (text) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const renderer = new Renderer();
const plainCode = renderer.code.bind(renderer);
// As JupyterLab does for a block it highlights: the language goes into the class as written.
renderer.code = (token) => token.lang
  ? `<pre><code class="language-${token.lang}">${escapeHtml(token.text)}</code></pre>\n`
  : plainCode(token);

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const { texts, math } = JSON.parse(input);
  const render = (text) => marked.parse(text, { gfm: true, async: false, renderer });
  const html = texts.map((text) => {
    if (!math) return render(text);
    const parts = removeMath(text);
    return replaceMath(render(parts.text), parts.math);
  });
  process.stdout.write(JSON.stringify(html));
});
"""


def _jupyterlab_version() -> str:
    from jupyterlab import __version__

    return __version__


def _run(command: list[str], cwd: Path | None = None) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                            timeout=INSTALL_TIMEOUT_S)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()[-2000:]}")


def _ensure_node() -> None:
    if shutil.which("node") and shutil.which("npm"):
        return
    if not shutil.which("apt-get"):
        raise RuntimeError("node and npm are missing and apt-get is not available: install "
                           "Node.js 18 or newer with npm, then rerun")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if sudo and not shutil.which("sudo"):
        raise RuntimeError("node and npm are missing and installing them needs root: run "
                           "'sudo apt-get install -y nodejs npm', then rerun")
    env_prefix = ["env", "DEBIAN_FRONTEND=noninteractive"]
    try:
        _run(sudo + env_prefix + ["apt-get", "install", "-y", "-qq", "nodejs", "npm"])
    except RuntimeError:
        _run(sudo + ["apt-get", "update", "-qq"])
        _run(sudo + env_prefix + ["apt-get", "install", "-y", "-qq", "nodejs", "npm"])


def install() -> Path:
    """The directory holding render.mjs with marked and JupyterLab's latex module beside it."""
    rendermime = f"@jupyterlab/rendermime@{_jupyterlab_version()}"
    stamp_text = f"{MARKED} {rendermime}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(str(CACHE / ".install.lock")):
        stamp = CACHE / "installed.txt"
        if not (stamp.exists() and stamp.read_text() == stamp_text):
            _ensure_node()
            _run(["npm", "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", MARKED])
            _run(["npm", "pack", rendermime, "--pack-destination", str(CACHE)], cwd=CACHE)
            archive = max(CACHE.glob("jupyterlab-rendermime-*.tgz"), key=os.path.getmtime)
            with tarfile.open(archive) as tar:
                latex = tar.extractfile("package/lib/latex.js")
                (CACHE / "latex.mjs").write_bytes(latex.read())
            archive.unlink()
            stamp.write_text(stamp_text)
        (CACHE / "render.mjs").write_text(_RENDER_SCRIPT)
    return CACHE


def render_markdown(texts: list[str], *, math: bool = True,
                    directory: Path | None = None) -> list[str]:
    """The HTML JupyterLab makes of each Markdown text (`math=False`: marked alone)."""
    directory = directory or install()
    result = subprocess.run(["node", "render.mjs"], cwd=directory, capture_output=True, text=True,
                            input=json.dumps({"texts": texts, "math": math}),
                            timeout=RENDER_TIMEOUT_S)
    if result.returncode != 0:
        raise RuntimeError(f"node render.mjs failed: {result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout)


# The elements Markdown makes (input: marked's disabled checkbox for a GFM task list item) and
# the attributes each may have.
MARKDOWN_ELEMENTS = {
    **{tag: set() for tag in ("p", "pre", "em", "strong", "ul", "li", "blockquote", "h1", "h2",
                              "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "hr", "br",
                              "del")},
    "a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}, "th": {"align"},
    "td": {"align"}, "code": {"class"}, "input": {"type", "disabled", "checked"},
}
_LANGUAGE_CLASS = re.compile(r"language-[A-Za-z0-9_+#.\-]+")
_LINK_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*):")


class _Checker(HTMLParser):
    def __init__(self, attributes: dict[str, set[str]]) -> None:
        super().__init__(convert_charrefs=True)
        self.attributes = attributes
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.attributes:
            self.problems.append(f"element <{tag}>")
            return
        values = dict(attrs)
        for name in values:
            if name.startswith("on") or name not in self.attributes[tag]:
                self.problems.append(f"attribute {name} on <{tag}>")
        src = values.get("src") or ""
        if tag == "img" and not src.startswith("data:image/"):
            self.problems.append(f"image from {src!r}")
        scheme = _LINK_SCHEME.match(values.get("href") or "")
        if tag == "a" and scheme and scheme[1].lower() not in ("http", "https", "mailto"):
            self.problems.append(f"link to {values['href']!r}")
        language = values.get("class")
        if tag == "code" and "class" in values and not _LANGUAGE_CLASS.fullmatch(language or ""):
            self.problems.append(f"class {values['class']!r} on <code>")
        if tag == "input" and (values.get("type") != "checkbox" or "disabled" not in values):
            self.problems.append("an input that is not a disabled checkbox")

    handle_startendtag = handle_starttag

    def handle_comment(self, data: str) -> None:
        self.problems.append(f"comment <!--{data}-->")

    def handle_pi(self, data: str) -> None:
        self.problems.append(f"processing instruction <?{data}>")

    def handle_decl(self, decl: str) -> None:
        self.problems.append(f"declaration <!{decl}>")

    def unknown_decl(self, data: str) -> None:
        self.problems.append(f"declaration <![{data}]>")


_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)?")


def html_problems(html: str, *, also: dict[str, set[str]] | None = None) -> list[str]:
    """What in `html` Markdown does not make: other elements or attributes, event handlers,
    images not from data: URIs, links to other schemes, comments and declarations. `also` allows
    more elements (with their attributes)."""
    attributes = {**MARKDOWN_ELEMENTS, **(also or {})}
    checker = _Checker(attributes)
    checker.feed(html)
    checker.close()
    for match in _TAG.finditer(html):  # every `<` left in marked's HTML opens a tag
        if match[2] is None or match[2].lower() not in attributes:
            checker.problems.append(f"markup {html[match.start():match.start() + 20]!r}")
    return checker.problems
