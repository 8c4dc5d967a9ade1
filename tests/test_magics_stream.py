"""Streaming in a real kernel: display traffic stays bounded, first text comes at once, and an
interrupt keeps the partial answer and leaves the kernel ready."""

from __future__ import annotations

import json
from datetime import datetime


from tests.magics_kernel import offline_kernel, table_rows

LIVE = "\n\n_▍ streaming_"  # the last line of every partial render, gone from the final one


PARROT = '''
%load_ext llm_notebook
import re, time
import llm_notebook


class Parrot(llm_notebook.Model):
    """Says the prompt back word by word, unquoted, so the answer's Markdown is the prompt's."""
    model_id = "parrot"

    class Options(llm_notebook.Options):
        delay: float = 0.0

    def execute(self, prompt, stream, response, conversation):
        for piece in re.findall(r"\\s*\\S+", prompt.prompt):
            time.sleep(prompt.options.delay)
            yield piece


class Burst(llm_notebook.Model):
    """Two quick chunks, then a pause before the last: the slow model a throttle can leave stale."""
    model_id = "burst"

    def execute(self, prompt, stream, response, conversation):
        yield "one "
        yield "two "
        time.sleep(1.0)
        yield "three"


class Late(llm_notebook.Model):
    """Says nothing for a long while (an interrupt lands before its first word)."""
    model_id = "late"

    def execute(self, prompt, stream, response, conversation):
        for _ in range(300):
            time.sleep(0.1)
        yield "too late"


llm_notebook.register(Parrot())
llm_notebook.register(Burst())
llm_notebook.register(Late())
'''


kernel = offline_kernel(PARROT)


def answer_messages(run) -> list[dict]:
    """The display messages of the answer (not the usage table), in order."""
    [answer_id] = {m["content"]["transient"]["display_id"] for m in run.display_messages()
                   if "response_id" in m["content"].get("metadata", {}).get("llm_notebook", {})}
    return [m for m in run.display_messages()
            if (m["content"].get("transient") or {}).get("display_id") == answer_id]


def test_long_answer_display_traffic_is_a_small_multiple_of_its_size(kernel):
    kernel.run("%config LLMMagics.display_interval = 0")  # only the byte budget throttles
    words = " ".join(f"word{i}" for i in range(6000))
    run = kernel.run(f"%%llm -m echo --no-usage\n{words}")
    messages = answer_messages(run)
    final = messages[-1]["content"]["data"]["text/markdown"]
    assert words in final
    sent = sum(len(json.dumps(m["content"]["data"])) for m in run.display_messages())
    assert len(messages) >= 15, "the answer did not stream"
    assert sent <= 8 * len(final), f"{sent} bytes sent for a {len(final)}-byte answer"
    assert messages[0]["msg_type"] == "display_data"
    assert messages[0]["content"]["data"]["text/markdown"] == "**Prompt**" + LIVE
    assert all(m["msg_type"] == "update_display_data" for m in messages[1:])
    assert all(m["content"]["data"]["text/markdown"].endswith(LIVE) for m in messages[:-1])
    assert "streaming" not in final
    [output] = [o for o in run.displays()]
    assert output["data"]["text/markdown"] == final  # the notebook keeps the exact final text


def test_first_text_shows_at_once_and_partial_code_fences_are_closed(kernel):
    kernel.run("%config LLMMagics.display_interval = 0.1")
    run = kernel.run("%%llm -m parrot -o delay 0.1 --no-usage\nCode:\n```python\nx = 1\ny = 2\nz = 3\n```")
    messages = answer_messages(run)

    def at(message):
        return datetime.fromisoformat(str(message["header"]["date"]).replace("Z", "+00:00"))

    started = at(next(m for m in run.messages if m["msg_type"] == "execute_input"))
    assert messages[0]["content"]["data"]["text/markdown"] == "Code:" + LIVE  # before the next word
    assert (at(messages[-1]) - started).total_seconds() > 1.0
    partial = [m["content"]["data"]["text/markdown"].removesuffix(LIVE) for m in messages[1:-1]]
    opened = [text for text in partial if text.count("```") == 2]
    assert len(opened) >= 3 and all(text.endswith("\n```") for text in opened)
    assert messages[-1]["content"]["data"]["text/markdown"] == "Code:\n```python\nx = 1\ny = 2\nz = 3\n```"


def test_interrupt_keeps_the_partial_answer_with_one_short_line_and_the_kernel_stays_usable(kernel):
    prompt = " ".join(f"w{i}" for i in range(200))
    run = kernel.run(f"%llm -m echo -o delay 0.05 --out partial {prompt}",
                     interrupt_after_displays=6)
    assert run.error is None, "an interrupt is no error: no red traceback"
    assert run.stream() == "Interrupted: the partial answer above is kept\n"
    [answer, usage] = run.displays()
    assert answer["metadata"]["llm_notebook"]["status"] == "interrupted"
    shown = answer["data"]["text/markdown"]
    assert shown.startswith("**Prompt**\n\n> ```text\n> w0 ") and "w199" not in shown
    assert shown.endswith("_[interrupted: the answer above is partial]_") and "streaming" not in shown
    # the model reports its counts at the end: an interrupted answer has none, and says so
    assert table_rows(usage["data"]["text/markdown"])["echo"][:2] == [
        "—", "— (interrupted; the model sent no counts)"]
    after = kernel.run("import llm_notebook\n"
                       "print(1 + 1, llm_notebook.logs(1)[0]['status'], partial.startswith('**Prompt**'),"
                       " _.status)")
    assert after.stream() == "2 interrupted True interrupted\n"
    again = kernel.run("%llm -m echo still here")
    assert "> still here" in again.displays()[0]["data"]["text/markdown"]


def test_an_interrupt_before_any_text_shows_one_line_and_nothing_else(kernel):
    kernel.run("kept = 'before'")
    run = kernel.run("%llm -m late --out kept go", interrupt_after_seconds=0.5)
    assert run.error is None
    assert run.stream() == "Interrupted before the model sent any text\n"
    assert run.displays() == [], "no empty answer, no marker over nothing, no usage row"
    assert kernel.run("print(kept, llm_notebook.logs(1)[0]['status'])").stream() == \
        "before interrupted\n"


def test_text_before_a_pause_is_shown_during_the_pause(kernel):
    kernel.run("%config LLMMagics.display_interval = 0.1")
    for line in ("%llm -m burst --no-usage go", "%llm -m burst -m parrot --no-usage go"):
        run = kernel.run(line)
        shown = [m["content"]["data"].get("text/markdown", "") for m in run.display_messages()
                 if "llm_notebook" not in m["content"].get("metadata", {})]
        # "two" came too soon after "one" to be rendered with it; it must not wait for "three"
        assert any("one two" in text and "three" not in text for text in shown), (line, shown)
