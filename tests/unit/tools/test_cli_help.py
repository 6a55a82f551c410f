"""Every command's --help renders: the brief promises clear --help, and argparse fails only when asked."""

import argparse

from tools.cli import build_parser


def every_parser(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from every_parser(sub)


def test_every_command_formats_its_help():
    parsers = list(every_parser(build_parser()))
    assert len(parsers) > 30
    for parser in parsers:
        assert parser.format_help().startswith("usage: "), parser.prog


def test_train_is_an_alias_of_models_build():
    alias = vars(build_parser().parse_args(["train", "fraud", "--spec", "hoeffding_tree", "--seed", "3"]))
    build = vars(build_parser().parse_args(["models", "build", "fraud", "--spec", "hoeffding_tree", "--seed", "3"]))
    assert alias.pop("command") == "train" and build.pop("command") == "models"
    assert alias == build


def test_a_commands_config_option_leaves_the_settings_file_alone():
    args = build_parser().parse_args(["--config", "mlstream.toml", "models", "build", "fraud", "--config", "fraud@2"])
    assert (args.config, args.build_config) == ("mlstream.toml", "fraud@2")


def test_the_linkage_commands_config_option_leaves_the_settings_file_alone():
    for command in (["linkage", "app"], ["linkage", "review"], ["linkage", "eval"]):
        args = build_parser().parse_args(["--config", "mlstream.toml", *command, "--config", "febrl"])
        assert (args.config, args.linkage_config) == ("mlstream.toml", "febrl"), command
