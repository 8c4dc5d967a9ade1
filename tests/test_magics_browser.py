"""The async magics as a JupyterLab user sees them: a background answer keeps streaming into its
own cell after it returned (and is saved there), and side-by-side answers stand in columns.

Real parts only: a JupyterLab server on loopback, its kernel, and headless Chromium.
"""

import nbformat
from playwright.sync_api import expect

WORDS = " ".join(f"w{i}" for i in range(30))
CELLS = [
    "%load_ext llm_notebook",
    f"%%llm -m echo -o delay 0.05 --background --no-usage\n{WORDS}",
    "print('meanwhile')",
    "%%llm -m echo -m markov --models echo -o delay 0.01\n<b>side</b> by side",
]


def test_background_and_side_by_side_answers_in_jupyterlab(open_notebook, jupyterlab):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    lab = open_notebook(notebook, name="async_magics.ipynb")
    lab.run_all()

    # the background answer goes on streaming into its own cell once every cell has run
    background = lab.outputs(1)
    expect(background.first.locator("blockquote")).to_have_text(WORDS)
    expect(background.first).to_contain_text("Options")
    expect(background).not_to_contain_text(["is answering in the background"])
    expect(lab.outputs(2)).to_have_text(["meanwhile"])
    lab.screenshot("background", lab.cells().nth(1))

    # three columns next to each other, model output escaped, not rendered as HTML
    columns = lab.outputs(3).first.locator('div[style*="flex: 1 1 0"]')
    expect(columns).to_have_count(3)
    boxes = [columns.nth(i).bounding_box() for i in range(3)]
    assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"], boxes
    assert max(b["y"] for b in boxes) - min(b["y"] for b in boxes) < 2, boxes
    expect(columns.nth(0).locator("blockquote")).to_have_text("<b>side</b> by side")
    expect(lab.outputs(3).first.locator("b")).to_have_count(0)
    expect(lab.outputs(3).nth(1).locator("table tr")).to_have_count(4)
    lab.screenshot("side_by_side", lab.cells().nth(3))

    # what Lab saves: the whole answer in the cell that started it, nothing in the later one
    lab._evaluate("await panel.context.save(); return true;")
    saved = nbformat.read(str(jupyterlab.root_dir / lab.path), as_version=4)
    answer = saved.cells[1].outputs[0]
    assert answer["metadata"]["llm_notebook"]["status"] == "done"
    assert f"> {WORDS}" in answer["data"]["text/markdown"]
    assert [o["output_type"] for o in saved.cells[2].outputs] == ["stream"]


_RULE_AND_BACKGROUND = """
const column = panel.node.querySelectorAll('div[style*="flex: 1 1 0"]')[1];
const style = getComputedStyle(column);
let node = column, background = 'rgba(0, 0, 0, 0)';
while (node && /rgba\\(0, 0, 0, 0\\)|transparent/.test(background)) {
    background = getComputedStyle(node).backgroundColor;
    node = node.parentElement;
}
return {rule: style.borderLeftColor, width: style.borderLeftWidth, style: style.borderLeftStyle,
        background};
"""


def _rgba(css: str) -> tuple[float, ...]:
    values = [float(v) for v in css[css.index("(") + 1:css.index(")")].split(",")]
    return tuple(values) if len(values) == 4 else (*values, 1.0)


def _luminance(rgb) -> float:
    def channel(c):
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_side_by_side_columns_have_a_visible_rule_in_light_and_dark_themes(open_notebook):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in (
        "%load_ext llm_notebook", "%llm -m echo -m markov --no-usage -o markov.length 5 a b c")])
    lab = open_notebook(notebook, name="columns.ipynb")
    lab.run_all()
    for theme, light in (("JupyterLab Light", "true"), ("JupyterLab Dark", "false")):
        lab.page.evaluate("(theme) => window.jupyterapp.commands.execute('apputils:change-theme',"
                          " {theme})", theme)
        lab.page.wait_for_function(  # the theme's stylesheet has applied: the page is light/dark
            "(light) => { const [r, g, b] = getComputedStyle(document.body).backgroundColor"
            ".match(/\\d+/g).map(Number); return ((r + g + b) / 3 > 128) === light; }",
            arg=light == "true")
        seen = lab._evaluate(_RULE_AND_BACKGROUND)
        assert seen["width"] == "1px" and seen["style"] == "solid", seen
        *rule, alpha = _rgba(seen["rule"])
        background = _rgba(seen["background"])[:3]
        shown = [alpha * r + (1 - alpha) * b for r, b in zip(rule, background)]  # as composited
        lighter, darker = sorted((_luminance(shown), _luminance(background)), reverse=True)
        assert (lighter + 0.05) / (darker + 0.05) >= 1.5, (theme, seen)  # a rule one can see
        lab.screenshot(f"columns_{light}", lab.cells().nth(1))
