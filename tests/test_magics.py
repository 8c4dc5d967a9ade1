"""%%llm and %llm in a real kernel: what a user sees in the notebook after each cell."""

from __future__ import annotations

import base64
import io
import json
import re

import pytest
from PIL import Image

from tests.magics_kernel import offline_kernel, table_rows

SETUP = '''
%load_ext llm_notebook
import llm_notebook
from llm_notebook import KeyModel, Model, AsyncModel


class Fixed(Model):
    """Answers with the text set on it: lets a cell choose what the model says."""
    model_id = "fixed"
    answer = ""

    def execute(self, prompt, stream, response, conversation):
        yield type(self).answer


class Keyed(KeyModel):
    model_id = "keyed"
    needs_key = "testkey"

    def execute(self, prompt, stream, response, conversation, key):
        yield f"got a key of {len(key)} characters"


class OnlyAsync(AsyncModel):
    model_id = "only-async"

    async def execute(self, prompt, stream, response, conversation):
        for word in ["async", "says", prompt.prompt]:
            yield word + " "


class Broken(Model):
    model_id = "broken"

    def execute(self, prompt, stream, response, conversation):
        yield "half an answer "
        raise RuntimeError("backend fell over")


class Early(Model):
    """Fails before it says anything."""
    model_id = "early"

    def execute(self, prompt, stream, response, conversation):
        raise llm_notebook.ModelError("the server said no")
        yield


class Thinker(Model):
    """Reasons (with markup in its reasoning) before it answers."""
    model_id = "thinker"

    def execute(self, prompt, stream, response, conversation):
        from llm_notebook import StreamEvent
        yield StreamEvent(type="reasoning", chunk="First <b>weigh</b> it:\\n\\n* step one\\n")
        yield StreamEvent(type="reasoning", chunk="</details><script>x()</script>")
        yield "The answer is **42**."
        response.set_usage(input=3, output=5)


llm_notebook.register(Fixed())
llm_notebook.register(Broken())
llm_notebook.register(Early())
llm_notebook.register(Thinker())
llm_notebook.register(Keyed())
llm_notebook.register(None, OnlyAsync())
'''


kernel = offline_kernel(SETUP, env={"MPLBACKEND": "module://matplotlib_inline.backend_inline"})


def answer_of(run) -> dict:
    """The answer's display: the one output carrying an answer's provenance."""
    [output] = [o for o in run.displays()
                if "response_id" in o.get("metadata", {}).get("llm_notebook", {})]
    return output


def echoed(text: str) -> str:
    """How echo shows text it received: a fenced text block in a quote, lines kept."""
    lines = ["```text", *text.split("\n"), "```"]
    return "\n".join(f"> {line}" if line else ">" for line in lines)


def markdown(run) -> str:
    return answer_of(run)["data"]["text/markdown"]


def one_line_error(run) -> str:
    traceback = run.error["traceback"]
    assert len(traceback) == 1, traceback
    assert "Traceback" not in traceback[0] and "File " not in traceback[0]
    return traceback[0]


def set_answer(kernel, text: str) -> None:
    kernel.run(f"Fixed.answer = {text!r}")


# -- the answer, its display and its value -------------------------------------------------------

def test_cell_answer_is_shown_once_as_markdown_with_provenance(kernel):
    kernel.run("who = 'world'")
    run = kernel.run("%%llm -m echo\nHello **{who}**")
    output = answer_of(run)
    assert echoed("Hello **world**") in output["data"]["text/markdown"]
    assert output["data"]["text/plain"].startswith("**Prompt**")
    meta = output["metadata"]["llm_notebook"]
    assert meta["model"] == "echo" and meta["status"] == "done"
    assert re.fullmatch(r"[0-9a-f]{28}", meta["response_id"])
    assert meta["usage"]["input"] == 2 and meta["usage"]["output"] > 2
    assert meta["duration_ms"] >= 0 and meta["datetime"].startswith("20")
    assert not [o for o in run.outputs if o["output_type"] == "execute_result"], "shown twice"
    usage_table = run.data("text/markdown")[-1]
    assert usage_table.startswith("| model | input | output | details | duration | output tok/s |")
    assert f"| echo | 2 | {meta['usage']['output']} |" in usage_table


def test_cell_value_chains_into_later_prompts_and_displays_later(kernel):
    first = kernel.run("%llm -m echo the first answer")
    count = first.reply["content"]["execution_count"]
    check = kernel.run(f"print(type(Out[{count}]).__name__, repr(str(Out[{count}])))")
    assert check.stream().startswith("Answer '**Prompt**\\n\\n> ```text\\n> the first answer")
    chained = kernel.run(f"%llm -m echo Summarise: {{Out[{count}]}}")
    assert "> ````text\n> Summarise: **Prompt**\n>\n> > ```text\n> > the first answer" in markdown(chained)
    shown_again = kernel.run(f"Out[{count}]")
    assert [o["output_type"] for o in shown_again.outputs] == ["display_data"]
    assert echoed("the first answer") in shown_again.outputs[0]["data"]["text/markdown"]


def test_an_explicit_display_in_the_same_cell_shows_the_answer_again(kernel):
    run = kernel.run("answer = %llm -m echo shown twice on purpose\ndisplay(answer)\nanswer")
    shown = [o for o in run.outputs if echoed("shown twice on purpose") in o.get("data", {}).get("text/markdown", "")]
    assert len(shown) == 2, "the stream, then display(answer); the cell's value is not shown again"
    assert not [o for o in run.outputs if o["output_type"] == "execute_result"]


def test_model_output_is_never_raw_html(kernel):
    set_answer(kernel, "<script>alert(1)</script> and `<b>code</b>`")
    run = kernel.run("%llm -m fixed hi")
    assert markdown(run) == "&lt;script>alert(1)&lt;/script> and `<b>code</b>`"


def test_line_prompt_keeps_quotes_and_options_parse_like_a_shell(kernel):
    kernel.run("x = 42")
    run = kernel.run('%llm -m echo -s "Be brief, {x}" -o delay 0 what\'s {x}? say "hi"')
    text = markdown(run)
    assert echoed("what's 42? say \"hi\"") in text
    assert "**System**\n\n" + echoed("Be brief, 42") in text
    assert "- `delay`: `0.0`" in text


def test_out_stores_the_text_and_no_usage_hides_the_table(kernel):
    run = kernel.run("%%llm -m echo --out answer_text --no-usage\nremember me")
    assert len(run.displays()) == 1
    printed = kernel.run("print(type(answer_text).__name__, answer_text.splitlines()[3])")
    assert printed.stream() == "str > remember me\n"


def test_no_stream_still_answers(kernel):
    run = kernel.run("%llm -m echo --no-stream all at once")
    assert echoed("all at once") in markdown(run)


def test_async_only_model_streams_through_the_runner(kernel):
    run = kernel.run("%llm -m only-async hello")
    assert markdown(run) == "async says hello "


# -- interpolation ----------------------------------------------------------------------------------

def test_interpolation_in_the_notebook(kernel):
    kernel.run("cfg = {'lr': 0.1}\nclass P: name = 'probe'\np = P()")
    run = kernel.run('%%llm -m echo\nlr={cfg["lr"]} name={p.name} literal={{cfg}} json={"a": {"b": 1}}')
    assert echoed('lr=0.1 name=probe literal={cfg} json={"a": {"b": 1}}') in markdown(run)
    previous = run.reply["content"]["execution_count"]
    source = kernel.run(f"%llm -m echo --no-usage {{In[{previous}]}}")
    assert "%%llm -m echo" in markdown(source) or "run_cell_magic" in markdown(source)
    raw = kernel.run("%llm -m echo --no-interpolate keep {cfg} as is")
    assert echoed("keep {cfg} as is") in markdown(raw)


def test_dataframe_interpolates_as_a_truncated_table(kernel):
    kernel.run("import pandas as pd\ndf = pd.DataFrame({'n': range(100), 'sq': [i * i for i in range(100)]})")
    text = markdown(kernel.run("%%llm -m echo\n{df}"))
    assert re.search(r"> +n +sq\n> 0 +0 +0\n", text) and re.search(r"> 29 +29 +841\n", text)
    assert "> 30" not in text
    # the table keeps its lines and its aligned columns: it is code, not a paragraph
    assert re.search(r"> ```text\n> +n +sq\n", text)
    assert "(70 more rows not shown; 100 rows × 2 columns in all)" in text


# -- attachments ------------------------------------------------------------------------------------

def test_numpy_array_attachment_reaches_the_model_as_png(kernel):
    kernel.run("import numpy as np\narr = np.zeros((30, 40, 3), dtype=np.uint8)")
    text = markdown(kernel.run("%%llm -m echo -a arr\nWhat is this?"))
    assert re.search(r"1\. `image/png`, [\d,]+ bytes, 40×30 px", text)


def test_pil_attachment_by_attribute_path_is_downscaled_to_the_configured_edge(kernel):
    kernel.run("from PIL import Image\nclass Box: pass\nbox = Box()\n"
               "box.img = Image.new('RGB', (3000, 1000), 'red')\n"
               "%config LLMMagics.max_image_edge = 600")
    try:
        text = markdown(kernel.run("%llm -m echo -a box.img describe"))
    finally:
        kernel.run("%config LLMMagics.max_image_edge = 2048")
    assert "`image/png`" in text and "600×200 px" in text


def test_at_plot_attaches_the_inline_matplotlib_figure_shown_above(kernel):
    plot = kernel.run("import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(3, 2), dpi=60)\n"
                      "ax.plot([1, 3, 2]);")
    [png] = plot.data("image/png")
    width, height = Image.open(io.BytesIO(base64.b64decode(png))).size
    text = markdown(kernel.run("%%llm -m echo -a @plot\nWhat does the chart show?"))
    assert f"1. `image/png`, {len(base64.b64decode(png)):,} bytes, {width}×{height} px" in text


def test_at_plot_2_is_the_image_before_and_too_far_back_is_a_clear_error(kernel):
    kernel.run("from IPython.display import display\nfrom PIL import Image\n"
               "display(Image.new('RGB', (12, 34), 'blue'))")
    kernel.run("plt.figure(figsize=(2, 2), dpi=50); plt.plot([1, 2]);")
    text = markdown(kernel.run("%llm -m echo -a @plot-2 -a @plot compare"))
    assert re.search(r"1\. `image/png`, [\d,]+ bytes, 12×34 px", text)
    assert re.search(r"2\. `image/png`, [\d,]+ bytes, \d+×\d+ px", text)
    error = kernel.run("%llm -m echo -a @plot-99 hi", expect_error=True)
    assert one_line_error(error).startswith("AttachmentError: @plot-99 asks for the image 99 back")


def test_file_attachment_and_forced_type(kernel, tmp_path):
    path = tmp_path / "tiny.png"
    Image.new("L", (5, 7)).save(path)
    blob = tmp_path / "data.bin"
    blob.write_bytes(b"%PDF-1.4 not really")
    text = markdown(kernel.run(f"%llm -m echo -a {path} --at {blob} application/pdf look"))
    assert re.search(r"1\. `image/png`, [\d,]+ bytes, 5×7 px", text)
    assert "2. `application/pdf`, 19 bytes" in text


# -- conversations ----------------------------------------------------------------------------------

def test_continue_named_conversations_and_reset(kernel):
    kernel.run("%llm -m echo first question")
    follow = markdown(kernel.run("%llm -m echo -c second question"))
    assert "**Earlier turns** (1)" in follow and "**user:** first question" in follow
    kernel.run("%llm -m markov --conversation story -o seed 1 once upon a time")
    kernel.run("%llm -m echo unrelated")
    story = answer_of(kernel.run("%llm --conversation story -o seed 1 and then"))
    assert story["metadata"]["llm_notebook"]["model"] == "markov"
    wrong = kernel.run("%llm -m echo --conversation story hi", expect_error=True)
    assert "Conversation 'story' is with model 'markov'" in one_line_error(wrong)
    forgot = kernel.run("%llm reset")
    assert forgot.stream().startswith("Forgot ")
    fresh = markdown(kernel.run("%llm -m echo -c after reset"))
    assert "Earlier turns" not in fresh


# -- formats ----------------------------------------------------------------------------------------

def test_format_code_puts_code_blocks_in_a_new_cell_without_running_them(kernel):
    set_answer(kernel, "Try:\n\n```python\nprint('from the answer')\n```\n\nand\n\n```\nx = 1\n```\n")
    run = kernel.run("%llm -m fixed -f code give code")
    [payload] = [p for p in run.payloads() if p["source"] == "set_next_input"]
    assert payload["text"] == "print('from the answer')\n\nx = 1" and payload["replace"] is False
    assert "from the answer" not in run.stream()


def test_format_json_parses_and_shows_json(kernel):
    set_answer(kernel, '```json\n{"a": [1, 2], "b": null}\n```')
    run = kernel.run("%llm -m fixed -f json give json")
    assert answer_of(run)["data"]["application/json"] == {"a": [1, 2], "b": None}
    set_answer(kernel, "not json")
    bad = kernel.run("%llm -m fixed -f json give json")
    assert "not valid JSON" in bad.stream("stderr")
    assert markdown(bad) == "not json"


def test_format_text_shows_plain_text(kernel):
    set_answer(kernel, "# not a heading")
    data = answer_of(kernel.run("%llm -m fixed -f text hi"))["data"]
    assert data == {"text/plain": "# not a heading"}


# -- errors: one line, no traceback ---------------------------------------------------------------

@pytest.mark.parametrize("source, expected", [
    ("%llm -m nope hi", "UnknownModelError: Unknown model 'nope'"),
    ("%llm -m keyed hi", "NeedsKeyException: Model 'keyed' needs an API key"),
    ("%llm -m echo -o temperature 2 hi", "OptionsError: Invalid options for model 'echo': unknown option 'temperature'"),
    ("%llm -m echo -o delay -1 hi", "OptionsError: Invalid options for model 'echo': option 'delay'"),
    ("%llm -m echo -a /no/such/file.png hi", "AttachmentError: No file at '/no/such/file.png'"),
    ("%llm -m markov -a arr hi", "AttachmentError: Model 'markov' does not accept attachments of type image/png"),
    ("%llm -m echo -a cfg hi", "AttachmentError: Cannot attach an object of type dict"),
    ("%llm -m echo tell me about {nothing_here}", "InterpolationError: {nothing_here}: no variable named 'nothing_here'"),
    ("%llm -m echo {cfg[missing]}", "InterpolationError: {cfg[missing]}: [missing] failed (KeyError"),
    ("%llm -m echo", "UsageError: the prompt is empty"),
    ("%%llm -m echo\n   \n", "UsageError: the prompt is empty"),
    ("%llm -m echo --bogus hi", "UsageError: unrecognized arguments: --bogus"),
    ("%llm -m echo -f yaml hi", "UsageError: argument -f/--format: invalid choice: 'yaml'"),
    ("%llm default nope", "UnknownModelError: Unknown model 'nope'"),
    ("%llm alias short nope", "UnknownModelError: Unknown model 'nope'"),
    ("%llm logs -n 99999999999999999999",
     "UsageError: %llm logs -n takes a number of answers from 1 to 10,000, not 99999999999999999999"),
    ("%llm logs -n -1", "UsageError: %llm logs -n takes a number of answers from 1 to 10,000, not -1"),
    ("%llm logs -n 0", "UsageError: %llm logs -n takes a number of answers from 1 to 10,000, not 0"),
    ("%llm reset nosuch", "UsageError: no conversation is named 'nosuch'"),
    ("%llm keys set foo", "UsageError: this frontend cannot ask for a key (it has no input box"),
    ("%llm -m echo -o echo.delay 0 -o markov.length 3 hi",
     "UsageError: -o markov.length: markov is not the model asked (echo)"),
])
def test_user_errors_are_one_clear_line(kernel, source, expected):
    kernel.run("import numpy as np\narr = np.zeros((4, 4), dtype=np.uint8)\ncfg = {'lr': 0.1}")
    assert one_line_error(kernel.run(source, expect_error=True)).startswith(expected)


def test_model_failure_mid_stream_keeps_the_partial_answer_and_is_one_line(kernel):
    run = kernel.run("%llm -m broken hi", expect_error=True)
    assert one_line_error(run) == "ModelError: Model 'broken' failed: RuntimeError: backend fell over"
    output = answer_of(run)
    assert output["metadata"]["llm_notebook"]["status"] == "error"
    assert output["data"]["text/markdown"] == (
        "half an answer \n\n_[stopped by an error: the answer above is partial]_")


def test_key_option_is_used_and_never_shown(kernel):
    secret = "sk-test-do-not-show-1234"
    run = kernel.run(f"%llm -m keyed --key {secret} hi")
    assert markdown(run) == f"got a key of {len(secret)} characters"
    assert secret not in json.dumps(run.outputs)


# -- line subcommands -------------------------------------------------------------------------------

def test_models_table_marks_the_default_and_abbreviates_attachment_types(kernel):
    run = kernel.run("%llm models")
    table = run.data("text/markdown")[0]
    assert table.startswith("| id | aliases | kind | attachments | key |")
    rows = table_rows(table)
    assert rows["echo (default)"] == ["", "sync/async", "images, audio, pdf", "not needed"]
    assert rows["keyed"] == ["", "sync", "none", "testkey: not set"]
    assert rows["only-async"] == ["", "async", "none", "not needed"]
    filtered = table_rows(kernel.run("%llm models mark").data("text/markdown")[0])
    assert "markov" in filtered and not any(name.startswith("echo") for name in filtered)



def test_models_with_a_query_that_matches_nothing_says_so_and_names_close_ones(kernel):
    nothing = kernel.run("%llm models nope-nope")
    assert nothing.displays() == []
    assert nothing.stream() == ("No model's id or alias contains 'nope-nope'. %llm models lists "
                                "them all.\n")
    close = kernel.run("%llm models markof").stream()
    assert close == ("No model's id or alias contains 'markof'. Close names: markov. %llm models "
                     "lists them all.\n")


def test_an_answer_with_code_blocks_is_followed_by_its_code_actions(kernel):
    set_answer(kernel, "Run this:\n\n```python\nprint(1)\n```\n\nthen `this` inline.")
    run = kernel.run("%llm -m fixed --no-usage code please")
    answer, actions = run.displays()
    assert "response_id" in answer["metadata"]["llm_notebook"]
    assert "application/vnd.jupyter.widget-view+json" in actions["data"]
    assert actions["data"]["text/plain"] == ("Code actions (a widget): Copy and Insert below for "
                                             "the 1 code block above")
    set_answer(kernel, "No code here, only `inline` code.")
    assert len(kernel.run("%llm -m fixed --no-usage prose please").displays()) == 1


def test_models_table_fits_a_100_column_terminal_with_long_names(kernel):
    kernel.run("class Wordy(Model):\n    model_id = 'a-model-with-a-long-identifier-' + 'x' * 10\n"
               "    def execute(self, prompt, stream, response, conversation):\n        yield ''\n"
               "llm_notebook.register(Wordy(), aliases=[f'alias-number-{i}' for i in range(8)])")
    [plain] = kernel.run("%llm models").data("text/plain")
    assert max(len(line) for line in plain.splitlines()) <= 100, plain
    assert "a-model-with-a-long-identifier-xxxxxxxxxx " in plain and "sync/async  " in plain
    assert "alias-number" in plain and "alias-number-7" not in plain  # aliases give way, not ids
    [info] = kernel.run("%llm models alias-number-7").data("text/markdown")
    assert "alias-number-0, alias-number-1" in info and "alias-number-7" in info


def test_models_with_a_model_name_shows_its_options_attachments_and_key(kernel):
    [info] = kernel.run("%llm models markov").data("text/markdown")
    assert info.startswith("**markov (sync/async)**")
    assert "- attachments: none" in info and "- key: not needed" in info
    assert "| option | type | default | description |" in info
    options = table_rows(info[info.index("| option |"):])
    assert options["length"] == ["whole number (≥ 1, ≤ 10000)", "50", "Number of words to generate"]
    assert options["seed"] == ["whole number or none", "None",
                               "Random seed; the same seed gives the same text"]
    [echo] = kernel.run("%llm models echo").data("text/plain")
    assert echo.startswith("echo (sync/async, the default model)")
    assert "attachments: images, audio, pdf (application/pdf, audio/mpeg" in echo
    assert "delay   number (≥ 0, ≤ 60)  0.0" in echo
    [keyed] = kernel.run("%llm models keyed").data("text/markdown")
    assert "- key: testkey: not set" in keyed and "No options." in keyed


def test_default_and_alias(kernel):
    assert kernel.run("%llm default markov").stream() == "Default model: markov\n"
    try:
        run = kernel.run("%llm -o seed 3 -o length 4 the cat sat on the mat")
        assert answer_of(run)["metadata"]["llm_notebook"]["model"] == "markov"
    finally:
        kernel.run("%llm default echo")
    kernel.run("%llm alias parrot echo")
    assert answer_of(kernel.run("%llm -m parrot hi"))["metadata"]["llm_notebook"]["model"] == "echo"


def test_usage_table_totals_by_model_and_reset(kernel):
    kernel.run("%llm usage --reset")
    kernel.run("%llm -m echo one two")
    kernel.run("%llm -m echo three")
    kernel.run("%llm -m markov -o length 5 four five")
    rows = table_rows(kernel.run("%llm usage").data("text/markdown")[0])
    assert rows["echo"][:2] == ["2", "3"] and rows["markov"][:3] == ["1", "2", "5"]
    assert rows["total"][0] == "3" and rows["total"][1] == "5"
    assert int(rows["total"][2].replace(",", "")) == int(rows["echo"][2]) + 5


def test_logs_and_no_log(kernel):
    kernel.run("%llm -m echo logged prompt")
    kernel.run("%llm -m echo --no-log secret prompt")
    table = kernel.run("%llm logs -n 5").data("text/markdown")[0]
    assert "| echo | done | logged prompt |" in table
    assert "secret prompt" not in table


def test_help_is_short_with_sections_and_examples(kernel):
    text = kernel.run("%llm help").stream()
    lines = text.splitlines()
    assert len(lines) <= 45 and max(map(len, lines)) <= 100
    for section in ("Examples", "Prompt options", "Subcommands"):
        assert section in lines
    examples = lines[lines.index("Examples") + 1:lines.index("Prompt options")]
    assert any("%llm What is the capital of France?" in line for line in examples)
    assert any("-o markov.length" in line for line in examples)
    for word in ("--model", "--attach", "--at", "--conversation", "--format", "--hide-reasoning",
                 "%llm models", "%llm keys", "%llm usage", "@plot"):
        assert word in text
    doc = kernel.run("from llm_notebook.notebook.magics import LLMMagics\nprint(LLMMagics.llm.__doc__)")
    assert doc.stream().strip() == text.strip()


def test_keys_set_reads_the_key_with_getpass_and_never_shows_it(kernel):
    from jupyter_client import BlockingKernelClient

    secret = "sk-typed-not-shown-5678"
    client = BlockingKernelClient()
    client.load_connection_info(kernel.client.km.get_connection_info())
    client.start_channels()
    seen = []
    try:
        prompts = []
        reply = client.execute_interactive(
            "%llm keys set testkey", allow_stdin=True, timeout=30,
            stdin_hook=lambda msg: (prompts.append(msg["content"]), client.input(secret)),
            output_hook=seen.append)
    finally:
        client.stop_channels()
    assert reply["content"]["status"] == "ok"
    assert prompts == [{"prompt": "Key for testkey: ", "password": True}]
    assert secret not in json.dumps([m["content"] for m in seen])
    assert "| keyed |  | sync | none | testkey: set |" in kernel.run("%llm models").data("text/markdown")[0]
    assert markdown(kernel.run("%llm -m keyed hi")) == f"got a key of {len(secret)} characters"
    assert kernel.run("%llm keys").stream() == "Stored keys: testkey\n"
    kernel.run("llm_notebook.delete_key('testkey')")


def test_config_turns_the_usage_table_off(kernel):
    kernel.run("%config LLMMagics.show_usage = False")
    try:
        assert len(kernel.run("%llm -m echo hi").displays()) == 1
    finally:
        kernel.run("%config LLMMagics.show_usage = True")
    assert len(kernel.run("%llm -m echo hi").displays()) == 2


# -- prompts that IPython or a subcommand would have taken ----------------------------------------

def test_a_question_mark_at_the_end_reaches_the_model(kernel):
    run = kernel.run("%llm -m echo What is the capital of France?")
    assert echoed("What is the capital of France?") in markdown(run)
    assert "not found" not in run.stream() and not run.payloads()
    stored = kernel.run("asked = %llm -m echo --no-usage Really??\nprint(str(asked).splitlines()[3])")
    assert stored.stream() == "> Really??\n"
    indented = kernel.run("if True:\n    %llm -m echo --no-usage and this one?")
    assert echoed("and this one?") in markdown(indented)
    kept = kernel.run('text = """\n%llm stays text?\n"""\nprint(repr(text))')
    assert kept.stream() == "'\\n%llm stays text?\\n'\n"


def test_the_magic_alone_with_a_question_mark_still_shows_its_help(kernel):
    for source in ("%llm?", "%%llm?"):
        [page] = [p for p in kernel.run(source).payloads() if p["source"] == "page"]
        assert "Prompt options" in page["data"]["text/plain"], source


def test_unloading_gives_question_marks_back_to_ipython(kernel):
    check = "print(get_ipython().transform_cell('%llm is it?').strip())"
    try:
        kernel.run("%unload_ext llm_notebook")
        assert kernel.run(check).stream() == "get_ipython().run_line_magic('pinfo', 'it')\n"
    finally:
        kernel.run("%load_ext llm_notebook")
    assert kernel.run(check).stream() == "get_ipython().run_line_magic('llm', 'is it?')\n"


@pytest.mark.parametrize("line", [
    "help me name this function",
    "models are hard, explain overfitting",
    "default to shorter answers: what is a monad",
    "keys get NAME",
    "usage of the word 'data'",
    "logs -n many",
    "wait now",
    "alias onlyone",
    "reset the context and explain",
])
def test_a_line_that_does_not_fit_a_subcommand_is_a_prompt(kernel, line):
    assert echoed(line) in markdown(kernel.run(f"%llm -m echo {line}"))
    assert echoed(line) in markdown(kernel.run(f"%llm {line}"))  # echo is the default model


def test_two_dashes_make_any_line_a_prompt(kernel):
    assert echoed("help") in markdown(kernel.run("%llm -- help"))
    assert echoed("models") in markdown(kernel.run("%llm -m echo -- models"))


@pytest.mark.parametrize("name, why", [
    ("print", "would hide the builtin print"),
    ("__builtins__", "starts with _, which IPython keeps for its output history"),
    ("_", "starts with _, which IPython keeps for its output history"),
    ("_12", "starts with _, which IPython keeps for its output history"),
    ("In", "is IPython's own"),
    ("Out", "is IPython's own"),
    ("get_ipython", "is IPython's own"),
    ("exit", "is IPython's own"),
    ("quit", "is IPython's own"),
    ("class", "is a Python keyword"),
    ("1x", "is not a variable name"),
    ("a.b", "is not a variable name"),
])
def test_out_refuses_names_that_would_break_the_kernel(kernel, name, why):
    error = one_line_error(kernel.run(f"%llm -m echo --out {name} hi", expect_error=True))
    assert error == f"UsageError: --out {name} {why}: choose another name, such as answer_text"
    check = kernel.run("print(callable(print), type(In).__name__, type(Out).__name__)")
    assert check.stream() == "True list dict\n"


# -- how answers end -------------------------------------------------------------------------------

def test_an_error_before_any_text_shows_only_the_error_line(kernel):
    kernel.run("kept_before = 'untouched'")
    run = kernel.run("%llm -m early --out kept_before hi", expect_error=True)
    assert one_line_error(run) == "ModelError: the server said no"
    assert run.displays() == [] and run.stream() == ""
    assert kernel.run("print(kept_before)").stream() == "untouched\n"


def test_usage_rows_say_what_was_not_reported_and_rates_only_when_measurable(kernel):
    set_answer(kernel, "no counts from me")
    run = kernel.run("%llm -m fixed hi")
    table = table_rows(run.data("text/markdown")[-1])
    assert table["fixed"][:3] == ["—", "— (the model sent no counts)", ""]
    cells = table_rows(kernel.run("%llm -m echo quick").data("text/markdown")[-1])["echo"]
    quick = float(cells[3].removesuffix(" s")) < 0.05  # a loaded machine may take longer
    assert (cells[4] == "") if quick else float(cells[4]) > 0, cells
    paced = kernel.run("%llm -m echo -o delay 0.03 one two three four").data("text/markdown")[-1]
    cells = table_rows(paced)["echo"]
    assert float(cells[3].removesuffix(" s")) >= 0.1 and float(cells[4]) > 0, cells


def test_usage_counts_map_and_chat_requests_too(kernel):
    kernel.run("%llm usage --reset")
    kernel.run("%llm -m echo from a cell")
    kernel.run("answers = llm_notebook.map('say {}', ['a', 'b'], model='markov', progress=False)")
    kernel.run("chat = llm_notebook.chat('markov', length=4)\nchat.send('hello there')\nchat.wait(30)")
    rows = table_rows(kernel.run("%llm usage").data("text/markdown")[0])
    assert rows["echo"][0] == "1" and rows["markov"][0] == "3" and rows["total"][0] == "4"


# -- what an answer shows --------------------------------------------------------------------------

def test_attached_images_show_as_small_thumbnails_above_the_answer(kernel, tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (640, 320), "green").save(path)
    kernel.run("import numpy as np\nsquare = np.zeros((50, 50, 3), dtype=np.uint8)")
    run = kernel.run(f"%llm -m echo -a {path} -a square what are these?")
    kinds = [("thumbnail" if o["metadata"].get("llm_notebook", {}).get("thumbnail") else
              "answer" if "response_id" in o["metadata"].get("llm_notebook", {}) else "other")
             for o in run.displays()]
    assert kinds == ["thumbnail", "thumbnail", "answer", "other"]
    first, second = run.displays()[:2]
    assert first["data"]["text/plain"] == "[attachment 1: image/png, 640×320 px]"
    small = Image.open(io.BytesIO(base64.b64decode(first["data"]["image/png"])))
    assert small.size == (96, 48) and first["metadata"]["image/png"]["width"] == 96
    assert second["data"]["text/plain"] == "[attachment 2: image/png, 50×50 px]"
    # a thumbnail is no plot: @plot still means the image the notebook displayed
    kernel.run("display(Image.new('RGB', (21, 13), 'blue'))")
    kernel.run(f"%llm -m echo --no-usage -a {path} again")
    assert re.search(r"1\. `image/png`, [\d,]+ bytes, 21×13 px",
                     markdown(kernel.run("%llm -m echo --no-usage -a @plot which one?")))


def test_reasoning_shows_collapsed_and_escaped_apart_from_the_answer(kernel):
    run = kernel.run("%llm -m thinker why?")
    text = markdown(run)
    assert text.startswith("<details><summary>Thinking</summary>\n")
    thinking, answer = text.split("</details>\n\n", 1)
    assert answer == "The answer is **42**."
    assert "&lt;b&gt;weigh&lt;/b&gt;" in thinking and "&lt;/details&gt;&lt;script&gt;" in thinking
    assert "\n\n" not in thinking, "a blank line would end the HTML block"
    assert re.findall(r"<(?!/?(?:details|summary|br)\b)", text) == [], "model HTML rendered"
    assert answer_of(run)["data"]["text/plain"] == "The answer is **42**."
    hidden = kernel.run("%llm -m thinker --hide-reasoning why?")
    assert markdown(hidden) == "The answer is **42**."
    kept = kernel.run(f"print([type(p).__name__ for p in Out[{hidden.reply['content']['execution_count']}]"
                      ".response.parts_so_far()], _.response.prompt.hide_reasoning)")
    assert kept.stream() == "['ReasoningPart', 'TextPart'] True\n"



def test_reasoning_is_shown_while_it_streams_before_any_answer_text(kernel):
    run = kernel.run("%llm -m thinker think first")
    shown = [m["content"]["data"].get("text/markdown", "") for m in run.display_messages()]
    thinking_only = [text for text in shown if "Thinking" in text and "42" not in text]
    assert thinking_only, shown  # a render of the reasoning alone went out before the answer
    assert "step one" in thinking_only[0]


def test_a_continued_turn_shows_the_earlier_prompt_and_answer(kernel):
    kernel.run("%llm reset")
    kernel.run("%llm -m echo What is the capital of France?")
    follow = markdown(kernel.run("%llm -m echo -c And of Spain?"))
    assert ("1. **user:** What is the capital of France? — **assistant:** "
            "What is the capital of France?") in follow
    kernel.run("%llm -m markov -o seed 1 -o length 4 the cat sat on the mat")
    both = kernel.run("%llm -m echo -m markov -c -o markov.seed 1 -o markov.length 4 and then")
    [columns] = both.data("text/markdown")[:1]
    assert "**assistant:** And of Spain?" in columns


# -- the Python API under the magics ---------------------------------------------------------------

def test_named_conversations_are_shared_with_the_python_api(kernel):
    kernel.run("%llm reset")
    kernel.run("%llm -m echo --conversation trip --no-usage Where to?")
    shared = kernel.run("trip = llm_notebook.conversation('trip')\n"
                        "print(trip.model.model_id, len(trip.responses))\n"
                        "trip.prompt('How long?').text()\n"
                        "fresh = llm_notebook.conversation('plan', model='markov')")
    assert shared.stream() == "echo 1\n"
    turns = markdown(kernel.run("%llm --conversation trip --no-usage And then?"))
    assert "**Earlier turns** (2)" in turns and "**user:** How long?" in turns
    assert answer_of(kernel.run("%llm --conversation plan -o length 3 go"))[
        "metadata"]["llm_notebook"]["model"] == "markov"
