"""``--threads N`` exists on every command (and sub-command) and is checked before anything runs."""

import argparse

import pytest

from textok.cli import build_parser, main


def _parsers(parser, path=()):
    """(command path, parser) for every command and sub-command under ``parser``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield (*path, name), child
                yield from _parsers(child, (*path, name))


def test_every_command_has_threads_in_its_help():
    commands = list(_parsers(build_parser()))
    assert len(commands) > 10  # the tree was walked
    for path, parser in commands:
        assert "--threads" in parser.format_help(), f"textok {' '.join(path)} has no --threads"


def test_help_of_each_command_lists_threads(capsys):
    for path, _ in _parsers(build_parser()):
        with pytest.raises(SystemExit) as e:
            main([*path, "--help"])
        assert e.value.code == 0
        assert "--threads" in capsys.readouterr().out, path


def test_threads_is_parsed_before_or_after_a_sub_command():
    p = build_parser()
    assert p.parse_args(["data", "fetch", "emoji", "--root", "x", "--threads", "2"]).threads == 2
    assert p.parse_args(["data", "--threads", "3", "fetch", "emoji", "--root", "x"]).threads == 3
    assert p.parse_args(["info", "ckpt", "--threads", "1"]).threads == 1


@pytest.mark.parametrize("value", ["0", "-2"])
def test_threads_below_one_is_refused(value, capsys, tmp_path):
    assert main(["info", str(tmp_path), "--threads", value]) == 2
    assert "--threads must lie in [1, " in capsys.readouterr().err
    assert main(["data", "fetch", "emoji", "--root", str(tmp_path / "d"), "--threads", value]) == 2
    assert not (tmp_path / "d").exists()  # refused before the command ran


def test_threads_must_be_an_integer(capsys):
    with pytest.raises(SystemExit) as e:
        main(["info", "x", "--threads", "two"])
    assert e.value.code == 2
    assert "invalid int value" in capsys.readouterr().err
