"""What the catalogue's kernel holds: models that fail on purpose, hostile values to attach or
fill in, and `fresh_case()`, which gives each case a user directory and settings of its own.

Imported inside the kernel (`from tests.support.catalogue_kernel import *`), so the cells of the
catalogue stay one line each.
"""

from __future__ import annotations

import dataclasses
import io
import os
import warnings
import zipfile

import numpy as np
from IPython import get_ipython

import llm_notebook
from llm_notebook.conversations import session_conversations
from llm_notebook.settings import Settings
from tests.support.awkward_values import BrokenText, EndlessText
from tests.support.catalogue_models import FailsEarly, FailsMidway
from tests.support.hostile_images import PPM_16_BYTES, bomb_png, real_png

KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")


def fresh_case(user_path: str, server_url: str) -> None:
    """Point the kernel at a new user directory and the loopback server, with every setting,
    conversation and key as a new session has them (and the answer cache off, so each case asks
    its model)."""
    os.environ["LLM_NOTEBOOK_USER_PATH"] = user_path
    os.environ["OPENAI_BASE_URL"] = server_url + "/v1"
    os.environ["ANTHROPIC_BASE_URL"] = server_url
    for name in KEY_VARIABLES:
        os.environ.pop(name, None)
    defaults = Settings()
    for field in dataclasses.fields(Settings):
        setattr(llm_notebook.settings, field.name, getattr(defaults, field.name))
    llm_notebook.settings.cache = "off"
    session_conversations.reset()
    magics = getattr(get_ipython(), "_llm_notebook_magics", None)
    if magics is not None:
        magics.default_model = ""
    warnings.simplefilter("always")  # each case sees its own warnings, however often one comes


llm_notebook.register(FailsEarly())
llm_notebook.register(FailsMidway())

loud, endless = BrokenText(), EndlessText()
cfg = {"lr": 0.1}
picture = real_png(4, 3)
huge_array = np.zeros((14000, 14000), dtype=np.uint8)  # never written to: no memory is touched
bomb = bomb_png(12000, 12000)
ppm16 = PPM_16_BYTES
archive = zipfile.ZipFile(io.BytesIO(), "w")
