"""``textok`` command line: a thin layer over the library.

Each area registers its sub-commands in its own module (``textok.cli.<area>``) through a
``register(subparsers)`` function; the handlers call library functions of the same names.
Errors that are the user's (bad file, bad config, bad shape) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# Sub-command modules, in the order their commands appear in --help.
AREAS = ["model", "data", "train", "evaluate", "generate", "app"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="textok", description="Text-conditioned image tokenization (TexTok).")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for area in AREAS:
        importlib.import_module(f"textok.cli.{area}").register(sub)
    for command in sub.choices.values():  # one --threads for every command (all of them use torch)
        _add_threads(command)
    return parser


def _add_threads(command: argparse.ArgumentParser) -> None:
    """``--threads N`` on a command and on each of its own sub-commands (``textok data fetch``).

    SUPPRESS as the default: a sub-command's parser must not overwrite a value given before it
    (``textok data --threads 2 fetch ...``) with its own default."""
    if not any("--threads" in a.option_strings for a in command._actions):
        command.add_argument("--threads", type=int, default=argparse.SUPPRESS, metavar="N",
                             help="torch CPU threads (default: all cores; OpenMP waits passively, so a "
                                  "shared machine does not collapse)")
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_threads(child)


# free-text options, checked for valid UTF-8 before any command runs
TEXT_OPTIONS = ("caption", "prompt")


def one_line(error: BaseException) -> str:
    """The error as one line (OSError: "what: file"; multi-line messages joined; control characters
    of a file name escaped, never sent raw to the terminal)."""
    from ..data.formats import printable

    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        text = f"{error.filename}: {error.strerror}"
    else:
        text = str(error) or type(error).__name__
    return " | ".join(printable(line.strip()) for line in text.splitlines() if line.strip())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        # argparse takes the KEY=VALUE overrides only before the first option; later ones come
        # back as extras, which are overrides too, not "unrecognized arguments" of the top level
        if hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extras):
            args.overrides = list(args.overrides or []) + extras
        else:
            parser._subparsers._group_actions[0].choices[args.command].error(
                f"unrecognized arguments: {' '.join(extras)}")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ..config import check_device, check_seed, check_threads

    try:  # options every command shares, checked before torch sees them (--threads 100000 segfaults)
        if getattr(args, "threads", None) is not None:
            check_threads(args.threads)
        check_device(getattr(args, "device", None))
        if isinstance(getattr(args, "seed", None), int):
            check_seed(args.seed)
    except ValueError as e:
        print(f"textok {args.command}: error: {one_line(e)}", file=sys.stderr)
        return 2
    if getattr(args, "threads", None) is not None:
        import torch

        torch.set_num_threads(args.threads)
    for name in TEXT_OPTIONS:  # bytes that are not UTF-8 arrive as lone surrogates; refuse them by name
        values = getattr(args, name, None)
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, str):
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    print(f"textok {args.command}: error: --{name}: not valid UTF-8 text", file=sys.stderr)
                    return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # the reader went away (`textok info X | head`): nothing left to say, and Python must not
        # complain again when it flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (ValueError, OSError, ImportError) as e:  # TextokError, UnicodeError and a full disk included
        if args.verbose:
            raise
        print(f"textok {args.command}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        signum = getattr(e, "signum", None)  # training saved before stopping (TrainingInterrupted)
        print(f"textok {args.command}: interrupted" + (f": {e}" if signum else ""), file=sys.stderr)
        return 128 + signum if signum else 130


if __name__ == "__main__":
    sys.exit(main())
