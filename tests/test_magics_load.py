"""`%load_ext llm_notebook` stays light: no plugin, no httpx, no pillow until a prompt needs them."""

import json
import os
import subprocess
import sys

CODE = """
import json, sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
before = set(sys.modules)
shell.run_line_magic("load_ext", "llm_notebook")
loaded = set(sys.modules) - before
print(json.dumps(sorted(m for m in loaded if m.split(".")[0] in ("httpx", "PIL", "pydantic", "numpy")
                        or m.startswith("llm_notebook.default_plugins"))))
print(json.dumps("llm" in shell.magics_manager.magics["cell"]))
"""


def test_load_ext_imports_no_plugin_httpx_or_pillow(tmp_path):
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True,
                         env={**os.environ, "LLM_NOTEBOOK_USER_PATH": str(tmp_path)})
    heavy, registered = (json.loads(line) for line in out.stdout.splitlines()[-2:])
    assert heavy == [] and registered is True
