"""Process-wide settings, changed by assignment (`llm_notebook.settings.log = False`)."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() not in {"0", "false", "no", "off"}


@dataclass
class Settings:
    """Knobs a user may turn; the notebook magics mirror them as traitlets."""

    #: Longest image edge in pixels; larger images are downscaled before sending. None = never.
    max_image_edge: int | None = 2048
    #: Most pixels (width × height) an attached image may have: one over it is refused, read from
    #: its header before any pixel is decoded, so a decompression bomb cannot fill memory.
    #: None = no limit.
    max_image_pixels: int | None = 100_000_000
    #: Write every finished response to the SQLite log (env: LLM_NOTEBOOK_LOG=0 turns it off).
    log: bool = _env_flag("LLM_NOTEBOOK_LOG", True)
    #: Seconds to wait for an HTTP connection to open.
    connect_timeout: float = 10.0
    #: Seconds to wait between two pieces of an HTTP answer.
    read_timeout: float = 300.0
    #: Times an HTTP model request is retried on 429 and 5xx answers, before any text has streamed.
    max_retries: int = 3
    #: Show images in model answers that load from a server (an answer could send notebook data
    #: out in an image's address); when False they are shown as links. data: images always show.
    remote_images: bool = False
    #: Seconds an HTTP model's whole answer may take, retries included; None = no limit.
    answer_timeout: float | None = None
    #: Largest attachment fetched from a URL, in bytes.
    max_attachment_bytes: int = 50_000_000
    #: Seconds fetching one attachment URL may take in all, redirects included.
    attachment_timeout: float = 30.0
    #: The answer cache: "replay" (an identical request is answered from the cache), "off",
    #: "refresh" (always ask, update the cache), "only" (never ask a model), or "auto": replay
    #: inside a Jupyter kernel, off elsewhere (env: LLM_NOTEBOOK_CACHE).
    cache: str = os.environ.get("LLM_NOTEBOOK_CACHE", "").strip().lower() or "auto"
    #: Dollars this session may spend on models; a request that would pass it is refused before
    #: it is sent. None = no limit.
    budget: float | None = None
    #: Offer the models of the `llm` library and its plugins, unported (needs
    #: `pip install 'jupyter-llm-notebook[llm]'`). None: as LLM_NOTEBOOK_LLM_BRIDGE=1 says.
    llm_bridge: bool | None = None


settings = Settings()
