"""The short reference `%llm help` prints (and `%%llm?` shows as the magic's docstring)."""

HELP = """\
%%llm [options]           sends the cell body to a model
%llm [options] PROMPT     sends the rest of the line (-- ends the options)

Examples
  %llm What is the capital of France?
  %%llm -m gpt-4o-mini -a @plot                the chart shown last goes with the prompt
  %%llm -m echo -m markov -o markov.length 40  two models, side by side
  %%llm --schema "name, age int"               the answer checked, shown as a table
  %%llm -T lookup --approve                    the model may call lookup(), once you allow it
  %llm -f code Write a function that parses ISO dates
  %llm --conversation story -m markov Once upon a time

Prompt options
  -m, --model ID         model id or alias; repeat it to compare models side by side
  -o, --option NAME VAL  a model option (-o MODEL.NAME VAL: one model's, side by side)
  -s, --system TEXT      system prompt
  -a, --attach X         a variable, attribute path, file, URL, or @plot / @plot-2
  -c, --continue         continue the last conversation with this model
  --conversation NAME    continue (or start) a named conversation
  --out NAME             also store the answer's text (with --schema, its value) in NAME
  -f, --format F         markdown (default), text, code (a new cell below), json
  --schema SPEC          "name, age int" or a pydantic class: Out[n].parsed (--multi: a list)
  --background           return at once; the answer streams into this cell
  -T, --tool NAME        a function, Toolbox or Tool from the notebook the model may call
                         (repeatable; --tools f,g); the calls show as blocks as they run
  --approve              ask before each tool call (Allow / Deny / Allow all)
  --chain-limit N        rounds of tool calls to allow (default 10)
  --refresh              ask the model again, even if the answer cache holds an answer
  --dry-run              show what would be sent and what it would cost; send nothing
  also: --models A,B  --async  --at PATH TYPE  --key KEY  --no-stream  --no-usage
        --no-log  --no-interpolate  --hide-reasoning

Subcommands
  %llm models [ID]       the models, or one model's options, attachments and key
  %llm default [ID]      show or set the default model
  %llm alias NAME ID     add an alias
  %llm keys [set NAME]   list stored key names, or store a key (asked for, never shown)
  %llm usage [--reset]   this session's usage by model
  %llm logs [-n N]       the newest logged answers
  %llm reset [NAME]      forget a named conversation, or all of them
  %llm wait              wait for the answers still streaming in the background

{name}, {name.attr}, {name[key]}, {Out[3]} put notebook values in the prompt; {{x}} is {x}.
A line that does not fit a subcommand is a prompt: %llm help me name this function."""
