"""The identity of a request: one hash of everything that decides what a model is asked.

Two prompts with the same key send the same request, so an answer stored under the key (the
answer cache) is an answer to either. In the key: the model id asked for, the options as given
(sorted), the system prompt, the whole message chain (earlier turns included), each attachment's
content hash (never its bytes, path or URL), the tools' definitions (`Tool.hash()`), the schema,
and whether reasoning is hidden. Not in it: the key, streaming, and the time.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .parts import AttachmentPart, Message, ToolResultPart

#: Bumped when what goes into the key changes, so old answers are no longer found by new keys.
KEY_VERSION = 1


def request_key(prompt: Any) -> str:
    """The sha256 hex digest of what `prompt` (a `Prompt`) would send."""
    request = {
        "v": KEY_VERSION,
        "model": prompt.model.model_id,
        "options": {name: getattr(prompt.options, name)  # as given; unset defaults left out
                    for name in prompt.options.model_fields_set},
        "system": prompt.system,
        "messages": [_message(message) for message in prompt.messages],
        "tools": [tool.hash() for tool in prompt.tools],
        "schema": prompt.schema,
        "hide_reasoning": bool(prompt.hide_reasoning),
    }
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _message(message: Message) -> dict[str, Any]:
    return {"role": message.role, "parts": [_part(part) for part in message.parts],
            "meta": message.provider_metadata}


def _part(part: Any) -> dict[str, Any]:
    """A part as data, attachments by content hash: a file's path or a URL's bytes may differ
    while the request stays the same, and the other way round."""
    if isinstance(part, AttachmentPart):
        return {"type": "attachment", "attachment": _attachment(part.attachment),
                "meta": part.provider_metadata}
    data = part.to_dict()
    if isinstance(part, ToolResultPart) and part.attachments:
        data["attachments"] = [_attachment(a) for a in part.attachments]
    return data


def _attachment(attachment: Any) -> dict[str, Any] | None:
    if attachment is None:
        return None
    return {"id": attachment.id(), "type": attachment.type}
