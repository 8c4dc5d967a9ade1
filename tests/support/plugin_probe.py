"""Uses installed plugins through llm_notebook as a user would, in a fresh interpreter, and prints
what came back as one JSON line: `python -m tests.support.plugin_probe 'STEPS_AS_JSON'`.

Steps (each gives one result, in order):
  {"do": "models"}                         ids and aliases, embedding models, tools, warnings
  {"do": "prompt", "model": ID, "prompt": TEXT, "stream": true, "async": false,
   "image": false, "options": {}, "key": null}
  {"do": "conversation", "model": ID, "prompts": [TEXT, ...], "async": false}
  {"do": "set", "model": ID, "attribute": NAME, "value": VALUE}  (on the sync and async model;
                                           a dotted NAME reaches an attribute's attribute)
  {"do": "logs"}                           the logged responses' model, status and text
  {"do": "imported", "module": NAME}      whether that module has been imported so far

A prompt's result has its chunks, text, usage, resolved model, parts and status, or the error it
raised (its type and message).
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import warnings
from typing import Any


def png() -> bytes:
    """A small real image (4 by 4 pixels)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _record(response, chunks: list[Any]) -> dict[str, Any]:
    usage = response.recorded_usage()
    return {"chunks": [c if isinstance(c, str) else repr(c) for c in chunks],
            "text": response.text_so_far(), "status": str(response.status),
            "usage": {"input": usage.input, "output": usage.output, "details": usage.details},
            "resolved_model": response.resolved_model,
            "parts": [part.to_dict() for part in response.parts_so_far()],
            "tool_calls": [call.name for call in response.tool_calls_so_far()]}


def _failure(exc: BaseException) -> dict[str, Any]:
    return {"error_type": type(exc).__name__, "error": str(exc)}


def _arguments(step: dict[str, Any]) -> dict[str, Any]:
    from llm_notebook import Attachment

    arguments = dict(step.get("options") or {})
    arguments["stream"] = step.get("stream", True)
    if step.get("key"):
        arguments["key"] = step["key"]
    if step.get("system"):
        arguments["system"] = step["system"]
    if step.get("image"):
        arguments["attachments"] = [Attachment(content=png())]
    return arguments


def _sync(target, step: dict[str, Any]) -> dict[str, Any]:
    response = target.prompt(step.get("prompt"), **_arguments(step))
    chunks = list(response)
    return _record(response, chunks)


def _async(target, step: dict[str, Any]) -> dict[str, Any]:
    async def run():
        response = target.prompt(step.get("prompt"), **_arguments(step))
        chunks = [chunk async for chunk in response]
        return _record(response, chunks)

    return asyncio.run(run())


def prompt(step: dict[str, Any]) -> dict[str, Any]:
    import llm_notebook

    model = (llm_notebook.get_async_model if step.get("async") else
             llm_notebook.get_model)(step["model"])
    return (_async if step.get("async") else _sync)(model, step)


def conversation(step: dict[str, Any]) -> list[dict[str, Any]]:
    import llm_notebook

    if step.get("async"):
        async def run():
            talk = llm_notebook.get_async_model(step["model"]).conversation()
            results = []
            for text in step["prompts"]:
                response = talk.prompt(text, **_arguments(step))
                results.append(_record(response, [c async for c in response]))
            return results

        return asyncio.run(run())
    talk = llm_notebook.get_model(step["model"]).conversation()
    results = []
    for text in step["prompts"]:
        response = talk.prompt(text, **_arguments(step))
        results.append(_record(response, list(response)))
    return results


def models(step: dict[str, Any]) -> dict[str, Any]:
    import llm_notebook

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entries = llm_notebook.get_models_with_aliases()
        embedding = llm_notebook.get_embedding_models_with_aliases()
    return {"models": {e.model_id: e.aliases for e in entries},
            "async": [e.model_id for e in entries if e.async_model is not None],
            "sync": [e.model_id for e in entries if e.model is not None],
            "embedding_models": {e.model.model_id: e.aliases for e in embedding},
            "tools": sorted(llm_notebook.get_tools()),
            "failed": llm_notebook.plugins.registry.failed_plugins,
            "warnings": [str(w.message) for w in caught]}


def set_attribute(step: dict[str, Any]) -> dict[str, Any]:
    from llm_notebook.plugins import registry

    entry = registry.entry(step["model"])
    *path, name = step["attribute"].split(".")
    for model in (entry.model, entry.async_model):
        if model is not None:
            for attribute in path:
                model = getattr(model, attribute)
            setattr(model, name, step["value"])
    return {}


def logged(step: dict[str, Any]) -> list[dict[str, Any]]:
    import llm_notebook
    from llm_notebook.log import flush

    flush()
    return [{"model": row["model"], "status": row["status"], "text": row["text"]}
            for row in llm_notebook.logs(None)]


def imported(step: dict[str, Any]) -> bool:
    return step["module"] in sys.modules


STEPS = {"models": models, "prompt": prompt, "conversation": conversation, "set": set_attribute,
         "logs": logged, "imported": imported}


def main() -> None:
    results = []
    for step in json.loads(sys.argv[1]):
        try:
            results.append(STEPS[step["do"]](step))
        except Exception as exc:  # the test reads what went wrong, as a user would see it
            results.append(_failure(exc))
    print(json.dumps(results, default=repr))


if __name__ == "__main__":
    main()


def run_probe(site, steps: list[dict[str, Any]], *, user_dir, load: str | None = None,
              env: dict[str, str] | None = None) -> list[Any]:
    """The results of `steps` in a fresh interpreter that has `site` (installed plugins) first on
    its path and `user_dir` as its user directory; `load` limits the plugins to those named."""
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(root)]),
                   "LLM_NOTEBOOK_USER_PATH": str(user_dir), "LLM_NOTEBOOK_LOG": "1",
                   "PYTHONBREAKPOINT": "0", **(env or {})}
    if load is not None:
        environment["LLM_NOTEBOOK_LOAD_PLUGINS"] = load
    done = subprocess.run([sys.executable, "-m", "tests.support.plugin_probe", json.dumps(steps)],
                          cwd=root, capture_output=True, text=True, timeout=180, env=environment,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0 or not done.stdout.strip():
        raise AssertionError(f"the probe failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])
