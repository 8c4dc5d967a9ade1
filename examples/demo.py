"""The quickstart notebook, run headless in a real kernel and shown as text in the terminal.

`bash scripts/demo.sh` runs this. Each cell's source is printed as it starts; an answer streams
into the terminal as the kernel sends it (the new text of each display update is printed as it
arrives); the cell's other outputs follow when it ends: usage tables as aligned text, images by
size. All on the offline models: no key, no network. Open the same notebook in JupyterLab to see
it rendered. `python examples/demo.py OTHER.ipynb` shows another notebook the same way.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import re
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"
WIDTH = min(shutil.get_terminal_size((100, 24)).columns, 100)
OUT = "  Out │ "
_HELD_BACK = re.compile(r"(?:\n[ \t>]*(?:```|~~~)[^\n]*|\S*)$")  # a fence that may be a closing
# added to a half-streamed answer, or a word that may grow: printed once the text moves past it


def _load_runner():
    spec = importlib.util.spec_from_file_location("run_examples", ROOT / "scripts" / "run_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _image_size(data: str) -> str:
    try:
        from PIL import Image

        width, height = Image.open(io.BytesIO(base64.b64decode(data))).size
        return f"{width}×{height} px"
    except Exception:  # an image we cannot measure is still worth naming
        return "unknown size"


def output_text(output) -> str:
    """What a reader takes from one output, as plain text."""
    kind = output.get("output_type")
    if kind == "stream":
        return output.get("text", "")
    if kind == "error":
        return f"{output.get('ename')}: {output.get('evalue')}"
    data = output.get("data", {})
    if "image/png" in data:
        return f"[image: PNG, {_image_size(data['image/png'])}]"
    return data.get("text/plain", "[output without a text form]")


class LiveAnswers:
    """Prints answers while they stream: each display update's new text, as it arrives.

    An answer's partial renders end in the live marker; what lies before it only grows, except
    for a fence closed for display and the word being written, which wait for the next update.
    """

    def __init__(self, marker: str, stream=None) -> None:
        self.live_suffix = f"\n\n_{marker}_"
        self.stream = stream or sys.stdout
        self.printed: dict[str, str] = {}
        self.shown_responses: set[str] = set()
        self.at_line_start = True

    def message(self, msg: dict) -> None:
        if msg["msg_type"] not in ("display_data", "update_display_data"):
            return
        content = msg["content"]
        display_id = (content.get("transient") or {}).get("display_id")
        markdown = content.get("data", {}).get("text/markdown")
        if display_id is None or not isinstance(markdown, str):
            return
        if markdown.endswith(self.live_suffix):
            text = markdown.removesuffix(self.live_suffix)
            self._grow(display_id, text[:_HELD_BACK.search(text).start()])
        elif display_id in self.printed:
            self._grow(display_id, markdown)
            self._end_line()
            response = (content.get("metadata", {}).get("llm_notebook") or {}).get("response_id")
            if response:
                self.shown_responses.add(response)
            del self.printed[display_id]

    def _grow(self, display_id: str, text: str) -> None:
        printed = self.printed.get(display_id, "")
        if text.startswith(printed):
            self._write(text[len(printed):])
            self.printed[display_id] = text
        else:  # the text changed behind what was printed: show it again from that line on
            self._end_line()
            shared = len(_common_prefix(printed, text))
            self._write(text[text.rfind("\n", 0, shared) + 1:])
            self.printed[display_id] = text

    def _write(self, text: str) -> None:
        for piece in text.splitlines(keepends=True):
            if self.at_line_start:
                self.stream.write(OUT)
            self.stream.write(piece)
            self.at_line_start = piece.endswith("\n")
        self.stream.flush()

    def _end_line(self) -> None:
        if not self.at_line_start:
            self._write("\n")

    def streamed(self, output: dict) -> bool:
        """Whether `output` is an answer already printed as it streamed."""
        provenance = output.get("metadata", {}).get("llm_notebook") or {}
        return provenance.get("response_id") in self.shown_responses


def _common_prefix(a: str, b: str) -> str:
    end = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return a[:end]


class Transcript:
    """Prints the notebook as it runs: Markdown and source when a cell starts, answers as they
    stream, the other outputs when it ends.

    nbclient calls back only for code cells it executes, so the Markdown (and any cell tagged
    to be skipped) before each one is printed when that cell starts.
    """

    def __init__(self, notebook_cells, live: LiveAnswers) -> None:
        self.cells = notebook_cells
        self.live = live
        self.printed = 0

    def cell_started(self, cell, cell_index: int, **_) -> None:
        if cell.cell_type != "code":
            self.catch_up(cell_index + 1)
            return
        self.catch_up(cell_index)
        print("─" * WIDTH)
        print(textwrap.indent(cell.source, "  In  │ ", lambda line: True), flush=True)
        self.printed = cell_index + 1

    def cell_executed(self, cell, cell_index: int, **_) -> None:
        if cell.cell_type != "code":
            return
        for output in cell.get("outputs", []):
            text = "" if self.live.streamed(output) else output_text(output).rstrip("\n")
            if text:
                print(textwrap.indent(text, OUT, lambda line: True))
        print(flush=True)

    def catch_up(self, upto: int) -> None:
        for cell in self.cells[self.printed:upto]:
            if cell.cell_type == "markdown":
                print(cell.source + "\n")
            elif cell.source.strip():
                print(textwrap.indent(cell.source, "  (not run here) │ ", lambda line: True) + "\n")
        self.printed = max(self.printed, upto)


def execute_live(path: Path, live: LiveAnswers, **hooks):
    """Run the notebook at `path` in a fresh kernel of this interpreter, telling `live` of every
    message the kernel sends while a cell runs."""
    import nbformat
    from nbclient import NotebookClient

    runner = _load_runner()

    class LiveClient(NotebookClient):
        def process_message(self, msg, cell, cell_index):
            live.message(msg)
            return super().process_message(msg, cell, cell_index)

    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="llm_notebook-demo-") as scratch:
        kernel = _kernel_manager(Path(scratch))
        client = LiveClient(notebook, km=kernel, timeout=180, allow_errors=True,
                            skip_cells_with_tag=runner.SKIP_TAG, record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}}, **hooks)
        try:
            client.execute(env=runner.kernel_environment(str(Path(scratch) / "user")))
        finally:  # nbclient leaves a kernel it was given running
            if kernel.has_kernel:
                kernel.shutdown_kernel(now=True)
    return notebook, runner.error_outputs(notebook)


def _kernel_manager(scratch: Path):
    """A `python3` kernel over local sockets where the system has them (no open port)."""
    import os

    from jupyter_client import KernelManager

    if os.name == "nt":
        return KernelManager(kernel_name="python3")
    return KernelManager(kernel_name="python3", transport="ipc", ip=str(scratch / "kernel"))


def main(argv: list[str] | None = None) -> int:
    import nbformat

    from llm_notebook.answers import STREAMING_MARKER

    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]).resolve() if args else NOTEBOOK
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    print(f"Running {shown} in a fresh IPython kernel "
          "(offline models: no key, no network)\n", flush=True)
    live = LiveAnswers(STREAMING_MARKER)
    transcript = Transcript(nbformat.read(path, as_version=4).cells, live)
    notebook, errors = execute_live(path, live, on_cell_start=transcript.cell_started,
                                    on_cell_executed=transcript.cell_executed)
    transcript.catch_up(len(notebook.cells))
    print("═" * WIDTH)
    if errors:
        print("The notebook reported errors:\n  " + "\n  ".join(errors))
        return 1
    print("Every cell ran. To see the same notebook rendered, with answers streaming in:\n\n"
          "    pip install jupyterlab\n"
          f"    jupyter lab {shown}\n\n"
          "More examples, one topic each, are in examples/.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
