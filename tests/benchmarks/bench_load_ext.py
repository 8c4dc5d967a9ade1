"""How long `%load_ext llm_notebook` takes, against IPython's own start and jupyter-ai's magics.

Each sample is a fresh Python process (imports are the cost, so nothing may be warm) that times,
in-process: starting IPython (import + shell instance), then `%load_ext X`. Samples of the two
extensions alternate, side by side in one run; medians are printed with the ratios.
Target: llm_notebook's load_ext under 100 ms over IPython's start.

jupyter-ai's magics (`jupyter-ai-magics`) are installed in a separate virtualenv that this script
creates on first use (cached in ~/.cache/jupyter-llm-notebook/bench-jupyter-ai); if that install
fails, only llm_notebook is measured and the reason is printed.

Run: python tests/benchmarks/bench_load_ext.py [--repeats 15] [--jupyter-ai-venv PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VENV = Path.home() / ".cache" / "jupyter-llm-notebook" / "bench-jupyter-ai"

SAMPLE = """
import json, sys, time
start = time.perf_counter()
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
started = time.perf_counter()
shell.run_line_magic("load_ext", sys.argv[1])
loaded = time.perf_counter()
assert "ai" in shell.magics_manager.magics["cell"] or "llm" in shell.magics_manager.magics["cell"]
print(json.dumps({"ipython": started - start, "load_ext": loaded - started}))
"""


def jupyter_ai_python(venv: Path) -> tuple[Path | None, str]:
    """The venv's python with jupyter-ai-magics installed, or None and why not."""
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([python, "-c", "import jupyter_ai_magics"],
                                          capture_output=True).returncode == 0:
        return python, ""
    print(f"installing jupyter-ai-magics into {venv} (first run only) ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", venv], check=True, capture_output=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", "jupyter-ai-magics", "ipython"],
                       check=True, capture_output=True, text=True, timeout=1800)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        tail = (getattr(exc, "stderr", "") or "").strip().splitlines()[-1:]
        return None, f"install failed: {tail[0] if tail else exc}"
    return python, ""


def sample(python: Path, extension: str, env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run([python, "-c", SAMPLE, extension], capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--jupyter-ai-venv", type=Path, default=DEFAULT_VENV)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as user_dir:
        env = {**os.environ, "LLM_NOTEBOOK_USER_PATH": user_dir, "PYTHONPATH": str(ROOT)}
        contenders = {"llm_notebook": (Path(sys.executable), "llm_notebook")}
        ai_python, why_not = jupyter_ai_python(args.jupyter_ai_venv)
        if ai_python is not None:
            contenders["jupyter_ai_magics"] = (ai_python, "jupyter_ai_magics")
        results: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
        for name, (python, extension) in contenders.items():
            sample(python, extension, env)  # warm the file-system cache, not the interpreter
        for _ in range(args.repeats):
            for name, (python, extension) in contenders.items():
                results[name].append(sample(python, extension, env))

    medians = {name: {key: statistics.median(s[key] for s in samples) * 1000
                      for key in ("ipython", "load_ext")} for name, samples in results.items()}
    print(f"median of {args.repeats} fresh processes each (ms)")
    print(f"{'extension':<20}{'IPython start':>15}{'%load_ext':>12}{'load/start':>12}")
    for name, median in medians.items():
        print(f"{name:<20}{median['ipython']:>15.1f}{median['load_ext']:>12.1f}"
              f"{median['load_ext'] / median['ipython']:>12.2f}")
    ours = medians["llm_notebook"]["load_ext"]
    print(f"target: llm_notebook %load_ext under 100 ms: {'met' if ours < 100 else 'NOT met'} "
          f"({ours:.1f} ms)")
    if "jupyter_ai_magics" in medians:
        theirs = medians["jupyter_ai_magics"]["load_ext"]
        print(f"jupyter_ai_magics / llm_notebook %load_ext: {theirs / ours:.1f}x")
    else:
        print(f"jupyter_ai_magics: not measured ({why_not})")


if __name__ == "__main__":
    main()
