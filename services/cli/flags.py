"""Flags several commands share, spelled as kubectl spells them, so every command reads
`args.namespace`, `args.all_namespaces`, `args.selector`, `args.field_selector`, `args.filename`
and `args.recursive` the same way (CommandContext reads the first two)."""

from __future__ import annotations

import argparse


def add_namespace(parser: argparse.ArgumentParser, *, all_namespaces: bool = False) -> None:
    parser.add_argument(
        "-n", "--namespace", default="", help="namespace (default: the context's, else default)"
    )
    if all_namespaces:
        parser.add_argument(
            "-A", "--all-namespaces", action="store_true", help="act on objects of every namespace"
        )


def add_selectors(parser: argparse.ArgumentParser, *, fields: bool = True) -> None:
    parser.add_argument("-l", "--selector", default="", help="label selector, e.g. app=web,tier!=db")
    if fields:
        parser.add_argument("--field-selector", default="", help="field selector, e.g. status.phase=Running")


def add_filenames(parser: argparse.ArgumentParser, *, required: bool = False, what: str = "act on") -> None:
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        default=[],
        required=required,
        help=f"file, folder or '-' (stdin) holding the objects to {what} (repeatable)",
    )
    parser.add_argument("-R", "--recursive", action="store_true", help="descend into the folders named by -f")
