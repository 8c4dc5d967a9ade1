"""The quickstart notebook, run headless in a real kernel and shown as text in the terminal.

`bash scripts/demo.sh` runs this. Each cell's source is printed, then its outputs as a reader
would see them: answers as their Markdown, usage tables as aligned text, images by size. All on
the offline models: no key, no network. Open the same notebook in JupyterLab to see it rendered.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import shutil
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"
WIDTH = min(shutil.get_terminal_size((100, 24)).columns, 100)


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


class Transcript:
    """Prints the notebook as it runs: Markdown and source when a cell starts, outputs when it ends.

    nbclient calls back only for code cells it executes, so the Markdown (and any cell tagged
    to be skipped) before each one is printed when that cell starts.
    """

    def __init__(self, notebook_cells) -> None:
        self.cells = notebook_cells
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
            text = output_text(output).rstrip("\n")
            if text:
                print(textwrap.indent(text, "  Out │ ", lambda line: True))
        print(flush=True)

    def catch_up(self, upto: int) -> None:
        for cell in self.cells[self.printed:upto]:
            if cell.cell_type == "markdown":
                print(cell.source + "\n")
            elif cell.source.strip():
                print(textwrap.indent(cell.source, "  (not run here) │ ", lambda line: True) + "\n")
        self.printed = max(self.printed, upto)


def main() -> int:
    import nbformat

    runner = _load_runner()
    print(f"Running {NOTEBOOK.relative_to(ROOT)} in a fresh IPython kernel "
          "(offline models: no key, no network)\n", flush=True)
    transcript = Transcript(nbformat.read(NOTEBOOK, as_version=4).cells)
    notebook = runner.execute(NOTEBOOK, on_cell_start=transcript.cell_started,
                              on_cell_executed=transcript.cell_executed)
    transcript.catch_up(len(notebook.cells))
    errors = runner.error_outputs(notebook)
    print("═" * WIDTH)
    if errors:
        print("The notebook reported errors:\n  " + "\n  ".join(errors))
        return 1
    print("Every cell ran. To see the same notebook rendered, with answers streaming in:\n\n"
          "    pip install jupyterlab\n"
          f"    jupyter lab {NOTEBOOK.relative_to(ROOT)}\n\n"
          "More examples, one topic each, are in examples/.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
