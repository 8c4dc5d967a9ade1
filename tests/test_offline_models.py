"""echo and markov: offline, sync and async, streaming, with usage."""

import asyncio

import numpy as np
import pytest

import llm_notebook


def test_echo_streams_readable_markdown_of_everything_it_received():
    conversation = llm_notebook.get_model("echo").conversation()
    conversation.prompt("first question").text()
    response = conversation.prompt("second", system="be kind", delay=0,
                                   attachments=[np.zeros((3, 5), dtype=np.uint8)])
    chunks = list(response)
    assert len(chunks) > 10  # streamed word by word
    text = "".join(chunks)
    assert "**Prompt**\n\n> ```text\n> second\n> ```" in text
    assert "**System**\n\n> ```text\n> be kind\n> ```" in text
    assert "- `delay`: `0.0`" in text
    assert "1. `image/png`" in text and "5×3 px" in text
    assert "**Earlier turns** (1)" in text and "**user:** first question" in text
    usage = response.usage()
    assert usage.input == 1 + 2 + 2 + len(conversation.responses[0].text().split())
    assert usage.output == len(text.split())


def test_markov_is_deterministic_with_a_seed_and_uses_the_conversation():
    model = llm_notebook.get_model("markov")
    first = model.prompt("alpha beta gamma delta alpha gamma", seed=5, length=20).text()
    assert first == model.prompt("alpha beta gamma delta alpha gamma", seed=5, length=20).text()
    assert len(first.split()) == 20
    assert set(first.split()) <= {"alpha", "beta", "gamma", "delta"}
    conversation = model.conversation()
    conversation.prompt("zebra yak", seed=1, length=5).text()
    later = conversation.prompt("xylophone", seed=2, length=200).text()
    assert "zebra" in later.split() or "yak" in later.split()


def test_markov_rejects_attachments_and_bad_options():
    model = llm_notebook.get_model("markov")
    with pytest.raises(llm_notebook.AttachmentError, match="it accepts: none"):
        model.prompt("x", attachments=[b"%PDF-1.4"])
    with pytest.raises(llm_notebook.OptionsError) as error:
        model.prompt("x", length=0)
    assert str(error.value) == ("Invalid options for model 'markov': option 'length': Input should be "
                                "greater than or equal to 1 (got 0)")
    with pytest.raises(llm_notebook.OptionsError, match=r"unknown option 'temperature' \(options of 'markov': delay, length, seed\)"):
        model.prompt("x", temperature=1)


def test_async_models_stream_and_report_usage():
    async def run():
        model = llm_notebook.get_async_model("echo")
        chunks = [c async for c in model.prompt("async hello")]
        response = await model.prompt("again")
        conversation = model.conversation()
        await conversation.prompt("one")
        second = await conversation.prompt("two").text()
        return chunks, response, second

    chunks, response, second = asyncio.run(run())
    assert "".join(chunks).startswith("**Prompt**\n\n> ```text\n> async hello\n")
    assert response.text_or_raise().startswith("**Prompt**\n\n> ```text\n> again\n")
    assert "**user:** one" in second


def test_async_usage_duration_and_datetime():
    async def run():
        response = llm_notebook.get_async_model("markov").prompt("a b c", seed=1, length=4)
        return await response.usage(), await response.duration_ms(), await response.datetime_utc()

    usage, duration, when = asyncio.run(run())
    assert usage == llm_notebook.Usage(input=3, output=4)
    assert duration >= 0 and when.endswith("+00:00")


def test_response_displays_as_markdown_without_raw_html():
    from markdown_it import MarkdownIt

    response = llm_notebook.get_model("echo").prompt("<script>alert(1)</script> <b>x</b>")
    markdown = response._repr_markdown_()
    tokens = MarkdownIt("commonmark").parse(markdown)
    kinds = {t.type for t in tokens} | {c.type for t in tokens for c in t.children or ()}
    assert not kinds & {"html_block", "html_inline"}
    assert "<script>alert(1)</script> <b>x</b>" in markdown  # shown as written, in code
    assert str(response) == response.text()


def test_time_to_first_chunk_is_recorded():
    response = llm_notebook.get_model("echo").prompt("slow start", delay=0.05)
    response.text()
    first, total = response.first_chunk_ms(), response.duration_ms()
    assert 40 <= first <= total and total >= 40 * len(list(response)) * 0.9
    assert response.to_dict()["first_chunk_ms"] == first
    assert llm_notebook.get_model("markov").prompt("").first_chunk_ms() is None
