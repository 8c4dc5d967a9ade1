"""The examples of the advanced model plugins reference, ported by changing only the import.

Each snippet below is the reference's code with `import llm` pointing at this package. The OpenAI
SDK client those snippets call is replaced by a small in-process stand-in with the same shape
(`client.chat.completions.create(...)`), because the snippets are about the plugin API, not about
HTTP; the HTTP plugins are tested against real servers elsewhere.
"""

import asyncio
import base64
import io
from types import SimpleNamespace
from typing import AsyncGenerator

import pytest

import llm_notebook as llm
from llm_notebook import hookimpl


class _Completions:
    """Records the messages it was sent and answers like the OpenAI SDK would."""

    def __init__(self):
        self.calls = []

    async def create(self, model, messages, stream):
        self.calls.append({"model": model, "messages": messages, "stream": stream})
        words = ["Hello", " from", " ", model]
        if stream:
            async def chunks():
                for word in words + [None]:
                    yield SimpleNamespace(choices=[SimpleNamespace(delta=SimpleNamespace(content=word))])
            return chunks()
        return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content="".join(words)))])


client = SimpleNamespace(chat=SimpleNamespace(completions=_Completions()))


# --- from the reference: attachments -------------------------------------------------------
def _attachment(attachment):
    url = attachment.url
    base64_content = ""
    if not url or attachment.resolve_type().startswith("audio/"):
        base64_content = attachment.base64_content()
        url = f"data:{attachment.resolve_type()};base64,{base64_content}"
    if attachment.resolve_type().startswith("image/"):
        return {"type": "image_url", "image_url": {"url": url}}
    else:
        format_ = "wav" if attachment.resolve_type() == "audio/wav" else "mp3"
        return {
            "type": "input_audio",
            "input_audio": {
                "data": base64_content,
                "format": format_,
            },
        }


def build_messages(prompt, conversation):
    messages = []
    if conversation is not None:
        # --- from the reference: attachments from previous conversations ----------------
        for prev_response in conversation.responses:
            if prev_response.attachments:
                attachment_message = []
                if prev_response.prompt.prompt:
                    attachment_message.append(
                        {"type": "text", "text": prev_response.prompt.prompt}
                    )
                for attachment in prev_response.attachments:
                    attachment_message.append(_attachment(attachment))
                messages.append({"role": "user", "content": attachment_message})
            else:
                messages.append(
                    {"role": "user", "content": prev_response.prompt.prompt}
                )
            messages.append({"role": "assistant", "content": prev_response.text_or_raise()})
    # --- from the reference: handling attachments ----------------------------------------
    if not prompt.attachments:
        messages.append({"role": "user", "content": prompt.prompt})
    else:
        attachment_message = []
        if prompt.prompt:
            attachment_message.append({"type": "text", "text": prompt.prompt})
        for attachment in prompt.attachments:
            attachment_message.append(_attachment(attachment))
        messages.append({"role": "user", "content": attachment_message})
    return messages


# --- from the reference: specifying attachment types ----------------------------------------
class NewModel(llm.Model):
    model_id = "new-model"
    attachment_types = {
        "image/png",
        "image/jpeg",
        "image/webp",
        "image/gif",
    }

    def execute(self, prompt, stream, response, conversation):
        self.sent = build_messages(prompt, conversation)
        yield f"{len(self.sent)} messages"
        # --- from the reference: tracking token usage --------------------------------------
        response.set_usage(input=15, output=340, details={"cached": 37})


# --- from the reference: async models --------------------------------------------------------
class MyModel(llm.Model):
    model_id = "my-model-id"

    def execute(self, prompt, stream, response, conversation=None):
        yield "sync answer"


class MyAsyncModel(llm.AsyncModel):
    # This cn duplicate the model_id of the sync model:
    model_id = "my-model-id"

    async def execute(
        self, prompt, stream, response, conversation=None
    ) -> AsyncGenerator[str, None]:
        messages = build_messages(prompt, conversation)
        if stream:
            completion = await client.chat.completions.create(
                model=self.model_id,
                messages=messages,
                stream=True,
            )
            async for chunk in completion:
                yield chunk.choices[0].delta.content
        else:
            completion = await client.chat.completions.create(
                model=self.model_name or self.model_id,
                messages=messages,
                stream=False,
            )
            yield completion.choices[0].message.content


@hookimpl
def register_models(register):
    register(
        MyModel(), MyAsyncModel(), aliases=("my-model-aliases",)
    )


# --- the behaviours the reference describes ---------------------------------------------------
def _png(color="red", size=(8, 4)):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def _wav():
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(8000)
        handle.writeframes(b"\0\0" * 80)
    return buffer.getvalue()


@pytest.fixture
def plugin_registered():
    llm.plugins.registry.register_plugin(__import__(__name__, fromlist=["x"]), name="reference-example")
    yield
    llm.plugins.registry.pm.unregister(name="reference-example")
    llm.plugins.registry.unregister("my-model-id")


def test_async_model_from_plugin_hook_streams_and_awaits(plugin_registered):
    model = llm.get_async_model("my-model-aliases")
    assert isinstance(model, MyAsyncModel)
    assert llm.get_model("my-model-id").prompt("hi").text() == "sync answer"

    async def run():
        chunks = [chunk async for chunk in model.prompt("hi")]
        response = await model.prompt("hi", stream=False)
        return chunks, response

    chunks, response = asyncio.run(run())
    assert chunks == ["Hello", " from", " ", "my-model-id"]  # the None delta is dropped
    assert response.text_or_raise() == "Hello from my-model-id"
    assert client.chat.completions.calls[-1]["stream"] is False


def test_async_text_or_raise_raises_until_finished():
    async def run():
        response = MyAsyncModel().prompt("hi")
        with pytest.raises(ValueError, match="has not finished"):
            response.text_or_raise()
        await response
        return response.text_or_raise()

    assert asyncio.run(run()) == "Hello from my-model-id"


def test_attachment_types_validated_before_request():
    model = NewModel()
    with pytest.raises(llm.AttachmentError) as error:
        model.prompt("listen", attachments=[llm.Attachment(content=_wav())])
    assert str(error.value) == ("Model 'new-model' does not accept attachments of type audio/wav; "
                                "it accepts: image/gif, image/jpeg, image/png, image/webp")
    assert not hasattr(model, "sent")


def test_attachments_only_prompt_has_none_prompt_and_image_becomes_data_uri():
    model = NewModel()
    png = _png()
    model.prompt(attachments=[llm.Attachment(content=png)]).text()
    assert model.sent == [{"role": "user", "content": [
        {"type": "image_url",
         "image_url": {"url": "data:image/png;base64," + base64.b64encode(png).decode()}}]}]


def test_url_attachment_is_sent_as_url_without_fetching():
    model = NewModel()
    model.prompt("what is this", attachments=[llm.Attachment(url="https://example.com/cat.png")]).text()
    assert model.sent[0]["content"][1] == {"type": "image_url",
                                           "image_url": {"url": "https://example.com/cat.png"}}


def test_conversation_rebuild_keeps_previous_attachments():
    model = NewModel()
    conversation = model.conversation()
    png = _png("blue")
    conversation.prompt("describe", attachments=[llm.Attachment(content=png)]).text()
    conversation.prompt("and now?").text()
    first_turn = conversation.responses[0]
    assert first_turn.attachments and first_turn.attachments[0].content == png
    assert model.sent == [
        {"role": "user", "content": [
            {"type": "text", "text": "describe"},
            {"type": "image_url",
             "image_url": {"url": "data:image/png;base64," + base64.b64encode(png).decode()}}]},
        {"role": "assistant", "content": "1 messages"},
        {"role": "user", "content": "and now?"},
    ]


def test_set_usage_is_reported_and_logged():
    response = NewModel().prompt("count")
    assert response.usage() == llm.Usage(input=15, output=340, details={"cached": 37})
    row = llm.logs(1)[0]
    assert (row["input_tokens"], row["output_tokens"], row["usage_details"]) == (15, 340, {"cached": 37})


def test_mp3_is_audio_mpeg_and_wav_is_audio_wav():
    mp3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + b"\0" * 400
    assert llm.Attachment(content=mp3).resolve_type() == "audio/mpeg"
    assert llm.Attachment(content=_wav()).resolve_type() == "audio/wav"
    audio = _attachment(llm.Attachment(content=_wav()))
    assert audio["input_audio"]["format"] == "wav"
    assert base64.b64decode(audio["input_audio"]["data"]) == _wav()
