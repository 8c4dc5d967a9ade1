"""A canary key, given to the package in every way a user can give one, inside a kernel.

The key comes from the kernel's environment (`CANARY`), never from a cell's source, so that any
copy of it found in outputs, the log or a saved notebook was put there by the package. The
loopback server the HTTP models talk to is `CANARY_SERVER`.
"""

from __future__ import annotations

import os

import llm_notebook

CANARY = os.environ.get("CANARY", "")
SERVER = os.environ.get("CANARY_SERVER", "")
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5"}
ENVIRONMENT = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
ENDPOINT_MODEL = "canary-model"
#: How a key reaches a model; the endpoint's own key exists for OpenAI-compatible servers only.
WAYS = ("environment variable", "set_key", "prompt(key=)", "model.key", "endpoint api_key")


def ways_for(api: str) -> tuple[str, ...]:
    return WAYS if api == "openai" else WAYS[:-1]


def point_at_the_server() -> None:
    os.environ["OPENAI_BASE_URL"] = SERVER + "/v1"
    os.environ["ANTHROPIC_BASE_URL"] = SERVER


def forget_keys() -> None:
    for api, variable in ENVIRONMENT.items():
        os.environ.pop(variable, None)
        llm_notebook.delete_key(api)
        llm_notebook.get_model(MODELS[api]).key = None
        llm_notebook.get_async_model(MODELS[api]).key = None


def supply(way: str, api: str) -> tuple[str, dict]:
    """Give the canary to `api`'s model `way` (and no other way); the model to ask, and the
    arguments of the prompt."""
    forget_keys()
    model = MODELS[api]
    if way == "environment variable":
        os.environ[ENVIRONMENT[api]] = CANARY
    elif way == "set_key":
        llm_notebook.set_key(api, CANARY)
    elif way == "prompt(key=)":
        return model, {"key": CANARY}
    elif way == "model.key":
        llm_notebook.get_model(model).key = CANARY
        llm_notebook.get_async_model(model).key = CANARY
    elif way == "endpoint api_key":
        llm_notebook.add_openai_endpoint(SERVER + "/v1", name="canary", models=[ENDPOINT_MODEL],
                                         api_key=CANARY)
        return ENDPOINT_MODEL, {}
    else:
        raise ValueError(f"no way {way!r}")
    return model, {}


def ask(way: str, api: str, **options):
    """A response of `api`'s sync model holding the canary `way` (not started). The caller's
    frame holds only the response: a failing cell's traceback shows the package's frames."""
    model, arguments = supply(way, api)
    return llm_notebook.get_model(model).prompt("Hi", **arguments, **options)


def ask_async(way: str, api: str, **options):
    """The same response from the async model, to await."""
    model, arguments = supply(way, api)
    return llm_notebook.get_async_model(model).prompt("Hi", **arguments, **options)


def supply_every_way() -> None:
    """The canary used once each way (each prompt its own, so none is answered from the cache),
    then given every way at once: for a notebook that then runs as its author wrote it."""
    point_at_the_server()
    for api in MODELS:
        for way in ways_for(api):
            model, arguments = supply(way, api)
            llm_notebook.get_model(model).prompt(f"Hi, by {way}", **arguments).text()
    for api, variable in ENVIRONMENT.items():  # then all of them together, as a user might
        os.environ[variable] = CANARY
        llm_notebook.set_key(api, CANARY)
        for model in (llm_notebook.get_model(MODELS[api]), llm_notebook.get_async_model(MODELS[api])):
            model.key = CANARY
