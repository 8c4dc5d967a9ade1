"""One transcript in a real kernel: after a stop, an interrupt or a cancel, what the cell shows,
`--out`, the log row and the response's text are one string; `%llm wait` waits for (and cancels)
only `--background` answers; conversations follow a model registered again."""

from __future__ import annotations

import json

import nbformat

from tests.magics_kernel import offline_kernel

SETUP = '''
%load_ext llm_notebook
import json, time
import llm_notebook
from llm_notebook import Model


class Paced(llm_notebook.Options):
    delay: float = 0.0


class Blocky(Model):
    """Sync-only; sleeps inside each chunk (blocking its thread), so a stop lands mid-chunk."""
    model_id = "blocky"
    Options = Paced

    def execute(self, prompt, stream, response, conversation):
        for word in prompt.prompt.split():
            time.sleep(prompt.options.delay)
            yield word.upper() + " "


class Versioned(Model):
    model_id = "versioned"
    version = "v1"

    def execute(self, prompt, stream, response, conversation):
        earlier = [r.text() for r in conversation.responses] if conversation else []
        yield f"{self.version} heard {prompt.prompt!r} after {earlier}"


llm_notebook.register(Blocky())
llm_notebook.register(Versioned())
'''

WORDS = " ".join(f"w{i}" for i in range(60))
MARKER = "\n\n_[interrupted: the answer above is partial]_"


kernel = offline_kernel(SETUP)


def _answer(outputs) -> dict:
    [output] = [o for o in outputs if "llm_notebook" in o.get("metadata", {})
                and "response_id" in o["metadata"]["llm_notebook"]]
    return output


def _saved(kernel, run) -> list[dict]:
    saved = nbformat.reads(nbformat.writes(kernel.nb), as_version=4)
    [cell] = [c for c in saved.cells if c.source == run.source]
    return [dict(o) for o in cell.outputs]


def _logged(kernel, response_id: str) -> dict:
    run = kernel.run(f"row = [r for r in llm_notebook.logs(None) if r['id'] == {response_id!r}][0]\n"
                     "print(json.dumps({'text': row['text'], 'status': row['status']}))")
    return json.loads(run.stream())


def test_an_interrupted_cell_shows_stores_and_logs_one_string(kernel):
    for attempt in range(3):
        run = kernel.run(f"%%llm -m blocky -o delay 0.05 --out kept --no-usage\n{WORDS} {attempt}",
                         interrupt_after_displays=3 + attempt)
        assert run.stream() == "Interrupted: the partial answer above is kept\n"
        answer = _answer(run.outputs)
        shown = answer["data"]["text/markdown"]
        assert shown.endswith(MARKER)
        shown = shown.removesuffix(MARKER)
        kept = kernel.run("print(json.dumps(kept))").stream()
        logged = _logged(kernel, answer["metadata"]["llm_notebook"]["response_id"])
        assert logged["status"] == "interrupted"
        assert json.loads(kept) == logged["text"] == shown
        assert shown.startswith("W0 ") and "W59" not in shown


def test_interrupted_side_by_side_columns_show_store_and_log_one_string_each(kernel):
    for attempt in range(3):
        run = kernel.run(f"%%llm -m blocky -m blocky -o delay 0.05 --out kept --no-usage\n"
                         f"{WORDS} {attempt}", interrupt_after_displays=3 + attempt)
        assert run.stream() == "Interrupted: the partial answers above are kept\n"
        [columns] = [o for o in run.displays() if "answers" in o["metadata"].get("llm_notebook", {})]
        kept = json.loads(kernel.run("print(json.dumps(kept))").stream())
        for answer, text in zip(columns["metadata"]["llm_notebook"]["answers"], kept, strict=True):
            assert answer["status"] == "interrupted"
            assert _logged(kernel, answer["response_id"])["text"] == text
            assert 0 < len(text) < len(WORDS) and f"{text}{MARKER}" in columns["data"]["text/markdown"]


def test_a_cancelled_background_answer_is_one_string_everywhere(kernel):
    for attempt in range(4):
        started = kernel.run(f"%llm -m blocky -o delay 0.05 --background --out bg {WORDS} {attempt}")
        count = started.reply["content"]["execution_count"]
        check = kernel.run(f"time.sleep(0.4)\nhandle = Out[{count}]\nhandle.cancel()\n"
                           "answer = handle.result(timeout=10)\n"
                           "print(json.dumps({'str': str(handle), 'answer': answer.text, "
                           "'bg': bg, 'id': answer.response.id, 'status': str(answer.status)}))")
        seen = json.loads(check.stream())
        assert seen["status"] == "interrupted"
        logged = _logged(kernel, seen["id"])
        shown = _answer(_saved(kernel, started))["data"]["text/markdown"].removesuffix(MARKER)
        assert seen["str"] == seen["answer"] == seen["bg"] == logged["text"] == shown
        assert 0 < len(shown) < len(WORDS)


def test_wait_waits_only_for_background_answers_and_leaves_the_chat_alone(kernel):
    kernel.run("chat = llm_notebook.chat('blocky', delay=0.05)\n"
               f"chat.send({WORDS!r})\nprint(chat.busy)")
    waited = kernel.run("%llm wait")
    assert waited.stream() == "No background answers to wait for\n"
    kernel.run(f"%llm -m blocky -o delay 0.05 --background --no-usage {WORDS}")
    interrupted = kernel.run("%llm wait", interrupt_after_seconds=0.8)
    assert interrupted.stream().startswith("Stopped waiting: the background answers were cancelled")
    after = kernel.run("print(chat.busy); chat.wait(30); print(chat.history[-1].status)")
    assert after.stream() == "True\ndone\n"


def test_continued_conversations_use_the_model_registered_now(kernel):
    kernel.run("%llm --conversation talk -m versioned hello")
    kernel.run("%llm -m versioned first")
    kernel.run("class Versioned2(Versioned):\n    version = 'v2'\n"
               "llm_notebook.register(Versioned2())")
    continued = _answer(kernel.run("%llm -c -m versioned second").outputs)
    assert continued["data"]["text/plain"] == \
        "v2 heard 'second' after [\"v1 heard 'first' after []\"]"
    named = _answer(kernel.run("%llm --conversation talk again").outputs)
    assert named["data"]["text/plain"].startswith("v2 heard 'again' after [\"v1 heard 'hello'")
