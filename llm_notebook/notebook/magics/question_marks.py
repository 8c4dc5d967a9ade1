"""`%llm ... France?` reaches the magic: IPython would read a line ending in `?` as a help request.

IPython's help syntax (`obj?`, `obj??`) is applied to any line that ends in a question mark,
magics included, so a question asked with `%llm` came back as "Object `France` not found.".
An input transformer, run before IPython's own, turns such a line into the call of the magic it
would have been, question marks kept. `%llm?` and `%llm??` alone still ask for the magic's help,
and `%%llm` cells are left alone (their body is the prompt, and IPython does not read it).
"""

from __future__ import annotations

import re

_LINE = re.compile(r"(?P<indent>[ \t]*)(?P<target>(?:[A-Za-z_][\w.]*[ \t]*=[ \t]*)?)%llm"
                   r"(?P<rest>[ \t].*?)[ \t]*(?P<newline>\r?\n?)")
_TRIPLE_QUOTES = re.compile(r'"""|\'\'\'')


def _as_magic_call(line: str) -> str | None:
    """The Python call for a `%llm` line that ends in `?` (None for any other line)."""
    match = _LINE.fullmatch(line)
    if match is None:
        return None
    rest = match.group("rest")[1:]
    if not rest.endswith("?") or not rest.rstrip("?").strip():
        return None
    return (f"{match.group('indent')}{match.group('target')}"
            f"get_ipython().run_line_magic('llm', {rest!r}){match.group('newline')}")


def keep_question_marks(lines: list[str]) -> list[str]:
    """The cleanup transform: `%llm` lines ending in `?` become plain calls of the magic.

    Lines inside a triple-quoted string stay as they are.
    """
    if not lines or lines[0].startswith("%%"):
        return lines
    kept, in_string = [], False
    for line in lines:
        call = None if in_string else _as_magic_call(line)
        kept.append(line if call is None else call)
        if len(_TRIPLE_QUOTES.findall(line)) % 2:
            in_string = not in_string
    return kept


def install(shell) -> None:
    transforms = shell.input_transformers_cleanup
    if keep_question_marks not in transforms:
        transforms.append(keep_question_marks)


def uninstall(shell) -> None:
    transforms = shell.input_transformers_cleanup
    while keep_question_marks in transforms:
        transforms.remove(keep_question_marks)
