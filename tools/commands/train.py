"""``mlstream train``: an alias of ``mlstream models build``, the one way to train a build."""

from __future__ import annotations

from tools.commands.arguments import add_command
from tools.commands.models import BUILD_HELP, add_build_arguments, cmd_models


def add_commands(sub) -> None:
    add_build_arguments(add_command(sub, "train", cmd_models, f"alias of 'mlstream models build': {BUILD_HELP}"))
