"""safe_markdown's output rendered as JupyterLab renders it: marked, after JupyterLab's own code
takes LaTeX out (tests.support.js_markdown, which installs both with npm on first use).

marked reads some Markdown differently from markdown-it (bare URLs, tildes before a code span,
emphasis into a span holding a backtick, brackets in a link's text), and JupyterLab's math cut can
start in code: each was a way to a live tag or a remote image that these inputs cover.
"""

from __future__ import annotations

import random

import pytest

from llm_notebook.markdown import safe_markdown
from llm_notebook.notebook.compare import columns_markdown
from tests.support.js_markdown import html_problems, install, render_markdown
from tests.support.markdown_checks import code_blocks, html_tokens, source_view
from tests.test_markdown import ENTITIES, PIECES, POSITIONS, REPORTED

IMG = "<img src=x onerror=alert(1)>"

# Safe by CommonMark's reading (the tag is code), live in JupyterLab: its math cut starts in text
# and ends in a fence it does not spare, or runs from one such fence into another.
JUPYTERLAB_MATH = [
    f"- $ text\n  ```\n  $ {IMG}\n  ```",
    f"1. a $x\n   ```\n   $\n   ```\n2. ```\n   $ {IMG}\n   ```",
    f"- - ````\n    $\n    ````\n- ```\n  $\n  {IMG}\n  ```",
    f"> - ```\n>   $\n>   ```\n> - ```\n>   $ {IMG}\n>   ```",
    f"> $ text\n> ```\n> $ {IMG}\n> ```",
    f"- a $x\n  - b\n    - c $\n      ```\n      {IMG}\n      ```",
    f"- \\\\( x\n  ```\n  \\\\) {IMG}\n  ```",
    f"- \\begin{{eq}} x\n  ```\n  \\end{{eq}} {IMG}\n  ```",
    f"[a $b](https://x.org) c $ `{IMG}`",
]

# What marked reads differently from markdown-it.
MARKED = [
    f"www.example.org`{IMG}`",
    f"see http://example.org/\\{IMG}",
    f"www.example.org$x$\\{IMG}",
    f"~`{IMG}`",
    f"~~done~~~`{IMG}`",
    f"**a ``b`c** {IMG}``",
    f"_a `{IMG}_\\` x",
    "[a \\[b\\](javascript:alert(1)) c](https://x.org)",
    "[a !\\[b\\](https://collector.example/i.png) c](https://x.org)",
    "[x](javascript:alert(1))",
    '```"><img/src=x/onerror=alert(1)>\ncode\n```',
    f"~~~`{IMG}`\ncode\n~~~",
    "- [ ] task <b>",
]

CORPUS = REPORTED + POSITIONS + ENTITIES + JUPYTERLAB_MATH + MARKED


@pytest.fixture(scope="module")
def node_markdown():
    try:
        return install()
    except RuntimeError as exc:
        pytest.fail(f"cannot set up marked and JupyterLab's math code: {exc}")


def test_the_corpus_renders_live_markup_unless_made_safe(node_markdown):
    """The inputs do reach JupyterLab's renderer with live markup, and one check finds it."""
    problems = [html_problems(page) for page in render_markdown(CORPUS, directory=node_markdown)]
    assert sum(bool(found) for found in problems) >= len(CORPUS) // 2
    for text in JUPYTERLAB_MATH[:3]:  # markdown-it sees only code here
        assert html_tokens(text) == [] and IMG in code_blocks(text, source_view)[-1]


@pytest.mark.parametrize("math", [True, False], ids=["jupyterlab", "marked"])
def test_the_corpus_made_safe_renders_only_markdown(node_markdown, math):
    outputs = [safe_markdown(text) for text in CORPUS]
    outputs += [safe_markdown(text, partial=True) for text in CORPUS]
    pages = render_markdown(outputs, math=math, directory=node_markdown)
    problems = {text: found for text, page in zip(CORPUS + CORPUS, pages)
                if (found := html_problems(page))}
    assert problems == {}


def test_side_by_side_columns_render_only_markdown_and_their_layout(node_markdown):
    bodies = [safe_markdown(text, partial=True) for text in CORPUS]
    page = columns_markdown([f"model {number}" for number in range(len(bodies))], bodies)
    [html] = render_markdown([page], directory=node_markdown)
    assert html_problems(html, also={"div": {"style"}}) == []
    assert html.count("<div") == len(bodies) + 1


def test_generated_answers_render_only_markdown(node_markdown):
    """Text built at random (fixed seed) from the pieces Markdown and the attacks are made of."""
    rng = random.Random(20240611)
    pieces = PIECES + ["<http://a.org>", "\\`", "\\[", "\\]", "&#96;", "\\<", "[ ] ", "  - "]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 30))) for _ in range(2500)]
    outputs = [safe_markdown(text) for text in texts]
    for math in (True, False):
        pages = render_markdown(outputs, math=math, directory=node_markdown)
        problems = [(text, found) for text, page in zip(texts, pages)
                    if (found := html_problems(page))]
        assert problems == []
