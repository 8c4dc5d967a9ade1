"""`import llm_notebook` must stay light: heavy libraries load only when first needed."""

import json
import subprocess
import sys

HEAVY = ["IPython", "ipywidgets", "httpx", "pydantic", "PIL", "numpy", "matplotlib"]


def test_import_loads_no_heavy_library():
    code = ("import sys, json, llm_notebook; "
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_public_names_resolve():
    import llm_notebook

    for name in llm_notebook.__all__:
        assert getattr(llm_notebook, name) is not None
