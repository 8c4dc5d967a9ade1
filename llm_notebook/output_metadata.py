"""The metadata key under which the package's outputs say what they are (an answer's provenance,
a comparison's timings, an attachment's thumbnail), read back from displays and saved notebooks."""

from __future__ import annotations

from typing import Any

METADATA_KEY = "llm_notebook"


def package_metadata(metadata: Any) -> dict[str, Any]:
    """What an output's metadata says under METADATA_KEY ({} for anything else)."""
    if not isinstance(metadata, dict):
        return {}
    found = metadata.get(METADATA_KEY)
    return found if isinstance(found, dict) else {}
