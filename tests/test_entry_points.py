"""Plugins installed as separate packages, found through the `llm_notebook` entry-point group.

The packages are really built and installed (pip --target) into a temporary directory; each check
runs in a fresh interpreter with that directory on its path, as a user's kernel would.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

PLUGINS = {
    "llmnb-good-plugin": """
        import llm_notebook

        class Good(llm_notebook.Model):
            model_id = "good-model"
            def execute(self, prompt, stream, response, conversation):
                yield "good:" + (prompt.prompt or "")

        @llm_notebook.hookimpl
        def register_models(register):
            register(Good(), aliases=("goodie",))
    """,
    "llmnb-broken-import": """
        raise ImportError("this plugin is broken on purpose")
    """,
    "llmnb-broken-hook": """
        import llm_notebook

        @llm_notebook.hookimpl
        def register_models(register):
            raise RuntimeError("cannot register today")
    """,
}

PROBE = """
import json, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import llm_notebook
    ids = sorted(e.model_id for e in llm_notebook.get_models_with_aliases())
    text = llm_notebook.get_model("goodie").prompt("x").text() if "good-model" in ids else None
print(json.dumps({"ids": ids, "text": text, "warnings": [str(w.message) for w in caught]}))
"""


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugins")
    target = root / "site"
    for dist, source in PLUGINS.items():
        module = dist.replace("-", "_")
        package = root / dist
        (package / module).mkdir(parents=True)
        (package / module / "__init__.py").write_text(textwrap.dedent(source))
        (package / "pyproject.toml").write_text(textwrap.dedent(f"""
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"
            [project]
            name = "{dist}"
            version = "1.0"
            [project.entry-points.llm_notebook]
            {module} = "{module}"
            [tool.setuptools]
            packages = ["{module}"]
        """))
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                        "--no-build-isolation", "--target", str(target), str(package)],
                       check=True, capture_output=True)
    return target


def probe(plugin_dir, user_dir, load=None):
    env = {**os.environ, "PYTHONPATH": str(plugin_dir), "LLM_NOTEBOOK_USER_PATH": str(user_dir)}
    env.pop("LLM_NOTEBOOK_LOAD_PLUGINS", None)
    if load is not None:
        env["LLM_NOTEBOOK_LOAD_PLUGINS"] = load
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def test_installed_plugin_is_discovered_and_broken_ones_are_reported(plugin_dir, user_dir):
    result = probe(plugin_dir, user_dir)
    assert "good-model" in result["ids"] and "echo" in result["ids"]
    assert result["text"] == "good:x"
    assert any("'llmnb-broken-import' failed to load: ImportError: this plugin is broken on purpose"
               in w for w in result["warnings"])
    assert any("'llmnb-broken-hook' failed to register its models: RuntimeError: cannot register today"
               in w for w in result["warnings"])


def test_load_plugins_env_selects_distributions(plugin_dir, user_dir):
    only_good = probe(plugin_dir, user_dir, load="llmnb-good-plugin")
    assert "good-model" in only_good["ids"] and only_good["warnings"] == []
    none = probe(plugin_dir, user_dir, load="")
    assert "good-model" not in none["ids"] and "echo" in none["ids"] and none["warnings"] == []
    normalized = probe(plugin_dir, user_dir, load=" LLMNB_Good_Plugin , other")
    assert "good-model" in normalized["ids"]
