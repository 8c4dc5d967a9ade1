"""The `%%llm` / `%llm` magic: read the line, then run a subcommand or ask the models.

Its settings are traits (`%config LLMMagics.x = ...`), read from the shell's config when the
magics are made, so a `%config` line or `ipython_config.py` before `%load_ext` counts too; a
value there that the trait refuses is one line, and the default is used. Traits that mirror
`llm_notebook.settings` start from the setting and set it when changed.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import sys

from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from traitlets import Bool, Float, Integer, TraitError, Unicode, observe, validate
from traitlets.config import Config

from ... import settings
from ...errors import LLMNotebookError
from ..plots import PlotHistory
from . import arguments
from .errors import LLMError
from .help import HELP


#: Traits that start from the setting of the same name as it is when the magics are made (the
#: others start from their own default).
SETTINGS_READ_AT_LOAD = ("remote_images", "max_image_pixels", "answer_timeout", "cache", "budget")


@magics_class
class LLMMagics(Magics):
    """The %%llm and %llm magics; the traits below are settable with %config LLMMagics.x = ..."""

    default_model = Unicode("", help="Model used when -m is not given; empty: the stored default "
                                     "(llm_notebook.get_default_model())").tag(config=True)
    stream = Bool(True, help="Stream answers as they arrive").tag(config=True)
    show_usage = Bool(True, help="Show a usage table under each answer").tag(config=True)
    display_interval = Float(0.1, help="Least seconds between two display updates").tag(config=True)
    display_budget = Float(2.5, help="Bytes sent while streaming, at most this many times the "
                                     "answer's size (plus 4 KB)").tag(config=True)
    max_image_edge = Integer(settings.max_image_edge, allow_none=True,
                             help="Longest edge in pixels of attached images; None: never "
                                  "downscale").tag(config=True)
    log = Bool(settings.log, help="Write responses to the SQLite log").tag(config=True)
    plot_history = Integer(10, min=1, help="How many displayed images @plot-N can "
                                            "reach").tag(config=True)
    remote_images = Bool(help="Show images in answers that load from a server (else links); "
                              "sets llm_notebook.settings.remote_images").tag(config=True)
    max_image_pixels = Integer(allow_none=True, min=1, help="Most pixels an attached image may "
                               "have; None: no limit").tag(config=True)
    answer_timeout = Float(allow_none=True, min=0.0, help="Seconds an HTTP model's whole answer "
                           "may take; None: no limit").tag(config=True)
    cache = Unicode(help="The answer cache: replay, off, refresh, only, or auto (replay in a "
                         "notebook); sets llm_notebook.settings.cache").tag(config=True)
    budget = Float(allow_none=True, help="Dollars this session may spend on models; None: no "
                                         "limit; sets llm_notebook.settings.budget").tag(config=True)

    def __init__(self, shell=None, **kwargs) -> None:
        from ...conversations import session_conversations

        self.plots = PlotHistory()  # before the config is read: plot_history resizes it
        for name in SETTINGS_READ_AT_LOAD:  # the config (read next) may change them
            setattr(self, name, getattr(settings, name))
        if shell is not None:
            kwargs.setdefault("config", self._usable(shell.config))
        super().__init__(shell=shell, **kwargs)
        self.plots.resize(self.plot_history)
        self.conversations = session_conversations
        self.parser = arguments.prompt_parser()

    @observe("plot_history")
    def _resize_plots(self, change) -> None:
        self.plots.resize(change["new"])

    @observe("log")
    def _set_log(self, change) -> None:
        settings.log = change["new"]

    @observe("max_image_edge", "remote_images", "max_image_pixels", "answer_timeout", "cache",
             "budget")
    def _set_setting(self, change) -> None:
        setattr(settings, change["name"], change["new"])

    @validate("cache")
    def _known_mode(self, proposal) -> str:
        from ...cache import MODES

        value = str(proposal["value"]).strip().lower()
        if value != "auto" and value not in MODES:
            raise TraitError(f"the cache mode {proposal['value']!r} does not exist: use one of "
                             f"{', '.join(MODES)}, auto")
        return value

    @validate("budget")
    def _dollars(self, proposal) -> float | None:
        value = proposal["value"]
        if value is not None and value < 0:
            raise TraitError(f"the budget is dollars, 0 or more (got {value!r})")
        return value

    def _usable(self, config: Config) -> Config:
        """`config` without the LLMMagics values the traits refuse: each is one line, and the
        trait keeps its default (the extension loads either way)."""
        section = config.get("LLMMagics") if "LLMMagics" in config else None
        if not isinstance(section, Config):
            return config
        traits = self.traits(config=True)
        refused = []
        for name, value in section.items():
            if name in traits and not isinstance(value, Config):
                try:  # set now as the config would be; a refused value changes nothing
                    setattr(self, name, copy.deepcopy(value))
                except TraitError as exc:
                    refused.append(name)
                    print(f"LLMMagics.{name} = {value!r} is not used ({exc}); fix it with "
                          f"%config LLMMagics.{name} = ...", file=sys.stderr)
        if not refused:
            return config
        usable = copy.deepcopy(config)
        for name in refused:
            del usable.LLMMagics[name]
        return usable

    @no_var_expand  # IPython would expand {name} itself, before our own rules
    @line_cell_magic
    def llm(self, line: str, cell: str | None = None):
        try:
            called = arguments.subcommand(line) if cell is None else None
            if called is not None:
                from .subcommands import COMMANDS

                name, words = called
                return COMMANDS[name](self, words)
            options, text = arguments.split_line(line)
            if cell is not None:
                if text:
                    raise LLMError(f"unexpected text on the %%llm line: {text!r} (the prompt is the "
                                   "cell body; quote option values that contain spaces)", "UsageError")
                text = cell
            return self._ask(self.parser.parse_args(options), text)
        except LLMNotebookError as exc:
            raise LLMError(str(exc), type(exc).__name__) from None

    llm.__doc__ = HELP

    def _ask(self, args: argparse.Namespace, text: str):
        from ...interpolate import interpolate

        if args.out is not None:
            arguments.check_out_name(args.out)
        namespace = self.shell.user_ns
        if not args.no_interpolate:
            text = interpolate(text, namespace)
            args.system = interpolate(args.system, namespace) if args.system else args.system
        attachments = [self._attachment(x) for x in args.attach]
        attachments += [self._typed_attachment(where, kind) for where, kind in args.at]
        if not text.strip() and not attachments:
            raise LLMError("the prompt is empty: write it after %llm or in the cell body, or "
                           "attach something with -a", "UsageError")
        options = arguments.ModelOptions.from_pairs(args.option)
        names = args.model + [name.strip() for name in (args.models or "").split(",") if name.strip()]
        refreshing = contextlib.nullcontext()
        if args.refresh:
            from ... import cache

            refreshing = cache.mode("refresh")  # made and run in it: asked again, cache updated
        with refreshing:
            return self._send(args, names, text.strip() or None, attachments, options)

    def _send(self, args: argparse.Namespace, names: list[str], text: str | None,
              attachments: list, options: arguments.ModelOptions):
        """Ask the models the options name (or, with --dry-run, show what would be sent)."""
        from . import asking

        schema = None
        if args.schema is not None or args.multi:
            asking.check_schema_options(args, names, tools=bool(arguments.tool_names(args)))
            schema = asking.resolve_schema(args.schema, self.shell.user_ns)
        if arguments.tool_names(args):
            from .chaining import ask_with_tools

            return ask_with_tools(self, args, names, text, attachments, options)
        for flag, given in (("--approve", args.approve), ("--chain-limit", args.chain_limit)):
            if given:
                raise LLMError(f"{flag} is for prompts with tools: name them with -T", "UsageError")
        if len(names) > 1:
            return asking.show_comparison(self, names, args, text, attachments, options)
        response = self._prompt(names[0] if names else None, args, text, attachments, options,
                                schema=schema)
        if args.dry_run:
            return asking.show_previews([response])
        if args.background:
            return asking.start_background(self, response, args)
        return asking.show_answer(self, response, args, schema=schema)

    def conversation_for(self, name: str | None, args: argparse.Namespace):
        """The model a prompt goes to and the conversation it goes in, as the options say."""
        from ...model_choice import pick_model

        named = self.conversations.named(args.conversation) if args.conversation else None
        if name is None and named is not None:
            model = named.model
        else:
            model = pick_model(name or self.default_model or None, prefer_async=args.prefer_async)
        return model, self.conversations.for_prompt(
            model, continue_last=args.continue_last, name=args.conversation)

    def _prompt(self, name: str | None, args: argparse.Namespace, text: str | None,
                attachments: list, options: arguments.ModelOptions, *, schema: dict | None = None):
        """The (not yet started) response, in the conversation the options name; with a
        `schema`, asked for its structured answer (a list of such items with --multi)."""
        from ...schemas import multi_schema

        model, conversation = self.conversation_for(name, args)
        if schema is not None and not model.supports_schema:
            raise LLMError(f"{model.model_id} does not give structured answers: leave out "
                           "--schema, or ask a model that does (echo does, offline)", "UsageError")
        if schema is not None and args.multi:
            schema = multi_schema(schema)
        response = conversation.prompt(
            text, attachments=attachments, system=args.system, schema=schema,
            stream=self.stream and not args.no_stream, key=args.key,
            hide_reasoning=args.hide_reasoning, **options.for_one(name, model))
        if not args.dry_run:  # a preview sends nothing: `-c` goes on with the last real turn
            self.conversations.remember(conversation)
        if args.no_log:
            response.log_enabled = False
        return response

    def _attachment(self, what: str):
        from ...references import resolve_attachment

        return resolve_attachment(what, self.shell.user_ns, self.plots, self.max_image_edge)

    def _typed_attachment(self, where: str, kind: str):
        from ...attachments import Attachment

        if where.startswith(("http://", "https://")):
            return Attachment(type=kind, url=where)
        attachment = Attachment.from_object(where, max_edge=None)
        return Attachment(type=kind, path=attachment.path)
