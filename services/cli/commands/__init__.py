"""One module per pinctl command (or family of commands). Each module defines
`register(subparsers)`, which adds its parser(s) and sets `handler` to an async function
`handler(ctx: CommandContext, args: argparse.Namespace) -> int`. services/cli/app.py finds the
modules here by themselves, so adding a command touches no shared list."""
