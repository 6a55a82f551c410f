"""The ``mlstream`` subcommands, one module per command group.

Each module has ``add_commands(sub)``, which adds its subcommand(s) to the parser's
subparsers with the function that runs each as the ``func`` default; ``tools/cli.py``
assembles them in the order ``mlstream --help`` lists them.
"""
