"""Execute the example notebooks in fresh kernels, as a newcomer would run them.

    python scripts/run_examples.py                      # every examples/*.ipynb, outputs saved in place
    python scripts/run_examples.py examples/plots.ipynb # just this one
    python scripts/run_examples.py --check              # execute only; exit 1 on any error output

Saving refreshes the outputs that GitHub shows; a notebook with an error output is never saved.
Cells tagged `skip-execution` (those that need a running server, say) are not executed and keep
no outputs. Each kernel runs this interpreter (so a virtualenv's script tests that virtualenv),
starts in examples/, has a fresh temporary user directory, no API keys in its environment and
the default answer cache mode, so neither the machine's keys, aliases and log nor a
key-dependent answer reach a saved notebook. The kernel is asked to stop, not killed, so the log
and the answer cache it wrote are whole.
The tests and `examples/demo.py` use `execute()` and `error_outputs()` from here.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SKIP_TAG = "skip-execution"
#: What a newcomer's environment does not have: keys, servers, plugin choices, a cache mode (the
#: examples run with the default one, so a second run replays the first one's answers).
KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL",
                 "LLM_NOTEBOOK_LOAD_PLUGINS", "LLM_NOTEBOOK_CACHE")


def example_paths() -> list[Path]:
    return sorted(EXAMPLES.glob("*.ipynb"))


def kernel_environment(user_path: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The kernel's environment: this one without keys, with its own user directory, and
    `extra`."""
    env = {name: value for name, value in os.environ.items() if name not in KEY_VARIABLES}
    env["LLM_NOTEBOOK_USER_PATH"] = user_path
    return {**env, **(extra or {})}


def _kernel_manager(spec_parent: str):
    """A manager whose `python3` kernel is this interpreter, whatever kernelspecs are installed."""
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    spec = Path(spec_parent) / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python"}))
    specs = KernelSpecManager(kernel_dirs=[str(spec.parent)])
    transport = "tcp" if os.name == "nt" else "ipc"  # ipc: no open port, no warning about one
    return KernelManager(kernel_name="python3", kernel_spec_manager=specs, transport=transport,
                         ip=str(Path(spec_parent) / "kernel") if transport == "ipc" else "127.0.0.1")


def execute(path: Path, *, timeout: int = 180, user_path: str | None = None,
            env: dict[str, str] | None = None, **hooks):
    """Run the notebook at `path` top to bottom in a fresh kernel; return it with its outputs.

    Errors do not stop the run (`error_outputs` lists them afterwards). `user_path`: the user
    directory to use (and keep: a second run replays the first one's answers from its cache),
    instead of a fresh one; `env`: more of the kernel's environment (LLM_NOTEBOOK_CACHE=only).
    `hooks` are nbclient's (`on_cell_start=`, `on_cell_executed=`, ...), called with `cell=`
    and `cell_index=`.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="llm_notebook-example-") as scratch:
        kernel = _kernel_manager(scratch)
        client = NotebookClient(
            notebook, km=kernel, timeout=timeout, allow_errors=True,
            skip_cells_with_tag=SKIP_TAG, record_timing=False,
            resources={"metadata": {"path": str(path.parent)}},
            **hooks)
        try:
            client.execute(env=kernel_environment(user_path or str(Path(scratch) / "user"), env))
        finally:  # nbclient leaves a kernel it was given running
            if kernel.has_kernel:
                kernel.shutdown_kernel()  # asked to stop: what it still writes is written
    refresh_widget_text(notebook)
    return notebook


def refresh_widget_text(notebook) -> None:
    """Give each widget output the text of the widget's final state.

    A widget output's `text/plain` is taken when it is first displayed (a progress bar at 0%);
    readers without a widget manager (GitHub, a terminal) see that text, so it is replaced by
    the text form of the state the run ended with, which nbclient saves in the metadata.
    """
    states = notebook.metadata.get("widgets", {}).get(
        "application/vnd.jupyter.widget-state+json", {}).get("state", {})
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if "llm_notebook" in output.get("metadata", {}):  # the package's widgets write their own
                continue
            view = output.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            if view and view.get("model_id") in states:
                output["data"]["text/plain"] = _widget_text(view["model_id"], states)


def _widget_text(model_id: str, states: dict) -> str:
    widget = states.get(model_id, {})
    state = widget.get("state", {})
    if "children" in state:
        return "".join(_widget_text(child.removeprefix("IPY_MODEL_"), states)
                       for child in state["children"])
    if widget.get("model_name", "").endswith("ProgressModel"):
        filled = round(10 * state.get("value", 0) / (state.get("max") or 1))
        return "|" + "█" * filled + " " * (10 - filled) + "|"
    return html.unescape(str(state.get("value", ""))).replace("\u2007", " ")


def error_outputs(notebook) -> list[str]:
    """One line per error output, or text written to stderr (a warning): where and what."""
    found = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
            elif output.get("output_type") == "stream" and output.get("name") == "stderr":
                found.append(f"cell {index}: stderr: {output.get('text', '').strip()[:300]}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every examples/*.ipynb")
    parser.add_argument("--check", action="store_true", help="execute only, save nothing")
    args = parser.parse_args(argv)
    import nbformat

    failed = False
    for path in args.notebooks or example_paths():
        notebook = execute(path)
        errors = error_outputs(notebook)
        for line in errors:
            print(f"{path.name}: {line}", file=sys.stderr)
        failed |= bool(errors)
        if not errors and not args.check:
            nbformat.write(notebook, path)
        shown = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
        print(f"{shown}: {'errors' if errors else 'ok'}{'' if args.check or errors else ', saved'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
