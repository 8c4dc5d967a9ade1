"""%%llm --schema (and --multi) in a real kernel: the answer checked against the schema, shown
as a table, its value in `Out[n].parsed` and in the --out variable; a misfit, a model without
structured answers and the options --schema does not go with are one line each."""

from __future__ import annotations

import html
import json

import pytest

from tests.magics_kernel import offline_kernel, table_rows

SETUP = '''
%load_ext llm_notebook
import json
import pydantic
import llm_notebook
from llm_notebook import Model


class Person(pydantic.BaseModel):
    name: str
    age: int


class Schemas:
    city = {"type": "object", "properties": {"city": {"type": "string"},
                                             "people": {"type": "integer"}},
            "required": ["city", "people"]}


class Plain(Model):
    """Answers, but has no structured output."""
    model_id = "plain"
    supports_schema = False

    def execute(self, prompt, stream, response, conversation):
        yield "just text"


llm_notebook.register(Plain())


def lookup(q: str) -> str:
    """Look q up."""
    return q
'''

kernel = offline_kernel(SETUP)


def answer_of(run) -> dict:
    """The answer's display: the one output carrying an answer's provenance."""
    [output] = [o for o in run.displays()
                if "response_id" in o.get("metadata", {}).get("llm_notebook", {})]
    return output


def parsed_of(kernel, run):
    """`Out[n].parsed` of the cell `run`, as JSON read back (its Python type named too)."""
    count = run.reply["content"]["execution_count"]
    shown = kernel.run(f"print(json.dumps([type(Out[{count}].parsed).__name__, "
                       f"Out[{count}].parsed]))")
    return json.loads(shown.stream())


def one_line_error(run) -> str:
    [line] = run.error["traceback"]
    assert "Traceback" not in line
    return line


def test_dsl_text_gives_a_typed_value_shown_as_a_table(kernel):
    run = kernel.run('%%llm -m echo --schema "name, age int, good bool"\nDescribe a user')
    assert run.error is None and run.stream("stderr") == ""
    output = answer_of(run)
    table = output["data"]["text/markdown"]
    assert table.splitlines()[0] == "| name | age | good |"
    assert table_rows(table) == {"name": ["0", "true"]}
    assert "```" not in table and '"age"' not in table  # the table, not the JSON text
    assert json.loads(output["data"]["text/plain"]) == {"name": "name", "age": 0, "good": True}
    assert parsed_of(kernel, run) == ["dict", {"name": "name", "age": 0, "good": True}]


def test_a_pydantic_class_and_a_schema_dict_from_the_notebook(kernel):
    run = kernel.run("%llm -m echo --schema Person Who is it?")
    assert run.error is None and run.stream("stderr") == ""
    assert table_rows(answer_of(run)["data"]["text/markdown"]) == {"name": ["0"]}
    assert parsed_of(kernel, run) == ["dict", {"name": "name", "age": 0}]
    by_path = kernel.run("%llm -m echo --schema Schemas.city Which city?")
    assert by_path.error is None
    assert parsed_of(kernel, by_path) == ["dict", {"city": "city", "people": 0}]


def test_multi_gives_a_list_and_one_table_row_per_item(kernel):
    items = [{"name": "Ann | <b>", "age": 31}, {"name": "Bo", "age": 4}, {"name": "Cy", "age": 70}]
    run = kernel.run(f"%%llm -m echo --schema Person --multi\n"
                     f"{json.dumps({'raw': {'items': items}})}")
    assert run.error is None and run.stream("stderr") == ""
    table = answer_of(run)["data"]["text/markdown"]
    assert table.splitlines()[0] == "| name | age |"
    rows = {html.unescape(first): rest for first, rest in table_rows(table).items()}
    assert rows == {"Ann | <b>": ["31"], "Bo": ["4"], "Cy": ["70"]}
    assert "<b>" not in table  # a cell is escaped: data, not markup
    assert parsed_of(kernel, run) == ["list", items]
    built = kernel.run('%llm -m echo --schema "title, year int" --multi Some books')
    assert parsed_of(kernel, built) == ["list", [{"title": "title", "year": 0}]]


def test_a_misfit_is_one_line_with_the_text_kept_and_parsed_none(kernel):
    misfit = json.dumps({"raw": {"name": "Ann", "age": "old"}})
    run = kernel.run(f"%%llm -m echo --schema Person --out who\n{misfit}")
    assert run.error is None
    [line] = run.stream("stderr").splitlines()
    assert line.startswith("The answer does not match the schema: field age: expected an integer")
    markdown = answer_of(run)["data"]["text/markdown"]
    assert '"age": "old"' in markdown and "| name |" not in markdown
    assert parsed_of(kernel, run) == ["NoneType", None]
    stored = kernel.run("print(repr(who))")
    assert stored.stream().strip() == repr(json.dumps({"name": "Ann", "age": "old"}))


def test_out_stores_the_parsed_value(kernel):
    run = kernel.run('%llm -m echo --schema "city, people int" --out place Where?')
    assert run.error is None
    stored = kernel.run("print(type(place).__name__, json.dumps(place))")
    assert stored.stream() == 'dict {"city": "city", "people": 0}\n'


def test_a_model_without_structured_answers_is_one_line(kernel):
    run = kernel.run('%llm -m plain --schema "name" Who?', expect_error=True)
    line = one_line_error(run)
    assert "plain does not give structured answers: leave out --schema" in line


@pytest.mark.parametrize("cell, said", [
    ('%llm -m echo --schema "name" -f json Who?', "--schema shows the answer as a table: leave "
                                                  "out -f json"),
    ('%llm -m echo --schema "name" -f code Who?', "leave out -f code"),
    ('%llm -m echo -m markov --schema "name" Who?', "--schema takes one model"),
    ('%llm -m echo --schema "name" -T lookup Who?', "--schema does not go with tools (-T)"),
    ('%llm -m echo --multi Who?', "--multi says the answer is a list of --schema items"),
    ('%llm -m echo --schema "name age ??" Who?', "--schema name age ??: Cannot read the schema "
                                                "field"),
    ('%llm -m echo --schema Persn Who?', "--schema Persn: there is no 'Persn' in the notebook. "
                                         'For a schema of one text field, write --schema "Persn str"'),
])
def test_refused_combinations_are_one_line(kernel, cell, said):
    run = kernel.run(cell, expect_error=True)
    assert said in one_line_error(run)


def test_help_names_schema_and_multi(kernel):
    shown = kernel.run("%llm help").stream()
    [line] = [line for line in shown.splitlines() if line.lstrip().startswith("--schema SPEC")]
    assert "pydantic class" in line and "Out[n].parsed" in line and "--multi" in line
