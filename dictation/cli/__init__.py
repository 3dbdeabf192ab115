"""The command line: `dictation` and its subcommands, a module per command group.

`main` dispatches; each group module registers its subparsers and imports heavy
layers (torch, Qt) only inside the commands that need them.
"""
