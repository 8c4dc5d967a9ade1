"""Model output made safe to render: no raw HTML, and a half-streamed code fence closed."""

from llm_notebook.markdown import safe_markdown


def test_html_is_escaped_outside_code_only():
    text = "hi <b>x</b> and `<i>` here\n```html\n<p>kept</p>\n```\n<script>"
    assert safe_markdown(text) == "hi &lt;b>x&lt;/b> and `<i>` here\n```html\n<p>kept</p>\n```\n&lt;script>"


def test_partial_answer_gets_its_open_fence_closed():
    assert safe_markdown("look:\n```py\nx < 1", partial=True) == "look:\n```py\nx < 1\n```"
    assert safe_markdown("~~~~\ncode", partial=True) == "~~~~\ncode\n~~~~"
    assert safe_markdown("look:\n```py\nx < 1") == "look:\n```py\nx < 1"  # final: exact


def test_fence_closes_only_on_a_bare_fence_at_least_as_long():
    text = "````\n```\nstill code <x>\n````\n<after>"
    assert safe_markdown(text, partial=True) == "````\n```\nstill code <x>\n````\n&lt;after>"
    assert safe_markdown("```\na\n``` not a close\n<b>", partial=True) == "```\na\n``` not a close\n<b>\n```"
