"""`pinctl completion bash|zsh`: a shell completion script. The script asks the hidden
`pinctl __complete WORDS... CURRENT` for candidates, so commands, flags, flag values,
resource types and the names of live objects all come from the same parser and registry the
command line uses (the way cobra's `__complete` works for kubectl)."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field

from services.cli.context import CommandContext
from services.cli.errors import EXIT_USAGE, CLIError
from services.cli.kubeconfig import KubeConfig
from services.cli.resources import resolve
from services.client.errors import APIStatusError
from services.machinery.kinds import REGISTRY

FILES = ":files"  # tells the script to complete file names
LOOKUP_TIMEOUT = 5.0

BASH = """# pinctl bash completion: source <(pinctl completion bash)
_pinctl() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    local IFS=$'\\n'
    local candidates
    candidates=($(pinctl __complete -- "${COMP_WORDS[@]:1:COMP_CWORD-1}" "$cur" 2>/dev/null))
    if [[ "${candidates[0]}" == ":files" ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
    else
        COMPREPLY=($(compgen -W "${candidates[*]}" -- "$cur"))
    fi
}
complete -o default -F _pinctl pinctl
"""

ZSH = """#compdef pinctl
# pinctl zsh completion: source <(pinctl completion zsh)
_pinctl() {
    local -a candidates
    candidates=("${(@f)$(pinctl __complete -- "${(@)words[2,CURRENT-1]}" "${words[CURRENT]}" 2>/dev/null)}")
    if [[ "${candidates[1]}" == ":files" ]]; then
        _files
        return
    fi
    compadd -- "${candidates[@]}"
}
if (( $+functions[compdef] )); then
    compdef _pinctl pinctl
fi
"""

# Global flags that take a value, and the CommandContext attribute each sets.
_GLOBAL_VALUES = {
    "--kubeconfig": "kubeconfig",
    "--context": "context",
    "-s": "server",
    "--server": "server",
    "--request-timeout": "request_timeout",
}
# What a command's first positional argument names, by its metavar.
_POSITIONAL_KINDS = {"POD": "pods", "NODE": "nodes", "OLD_CONTROLLER_NAME": "replicationcontrollers"}
_TYPED_METAVARS = ("RESOURCE", "ARG")
_OUTPUTS = ("wide", "yaml", "json", "name", "jsonpath=")
_CONFIG_NAMES = {
    "use-context": "contexts",
    "use": "contexts",
    "delete-context": "contexts",
    "rename-context": "contexts",
    "set-context": "contexts",
    "get-contexts": "contexts",
    "delete-cluster": "clusters",
    "set-cluster": "clusters",
    "delete-user": "users",
    "set-credentials": "users",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("completion", help="print a shell completion script (bash or zsh)")
    parser.add_argument("shell", choices=("bash", "zsh"))
    parser.set_defaults(handler=run)
    hidden = sub.add_parser("__complete")  # no help: not listed
    hidden.add_argument("words", nargs=argparse.REMAINDER)
    hidden.set_defaults(handler=complete)


async def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    ctx.out.write(BASH if args.shell == "bash" else ZSH)
    return 0


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {name: p for name, p in action.choices.items() if not name.startswith("__")}
    return {}


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    name = flag.split("=", 1)[0]
    return next((a for a in parser._actions if name in a.option_strings), None)


@dataclass
class _State:
    """What the words before the cursor say: the parser reached, positionals, flag values."""

    parser: argparse.ArgumentParser
    path: list[str] = field(default_factory=list)
    positionals: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    all_namespaces: bool = False
    pending: argparse.Action | None = None  # the flag whose value is being typed


def _walk(root: argparse.ArgumentParser, words: list[str]) -> _State:
    state = _State(root)
    for word in words:
        if state.pending is not None:
            state.values[state.pending.dest] = word
            state.pending = None
            continue
        if word == "--":
            break
        if word.startswith("-") and len(word) > 1:
            if word in ("-A", "--all-namespaces"):
                state.all_namespaces = True
            action = _option(state.parser, word) or _option(root, word)
            if action is None:
                continue
            if "=" in word:
                state.values[action.dest] = word.split("=", 1)[1]
            elif action.nargs == 0:
                state.values[action.dest] = "true"
            else:
                state.pending = action
            continue
        children = _subcommands(state.parser)
        if children and not state.positionals and word in children:
            state.parser = children[word]
            state.path.append(word)
        else:
            state.positionals.append(word)
    return state


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(
        flag for a in parser._actions for flag in a.option_strings if flag.startswith("--") or len(flag) == 2
    )


def _type_names() -> list[str]:
    names = {"all"}
    for info in REGISTRY.stored():
        names.update((info.plural, info.singular, *info.short_names))
    return sorted(names)


async def _object_names(ctx: CommandContext, resource: str, all_namespaces: bool) -> list[str]:
    info = resolve(resource)
    namespace = "" if (all_namespaces or not info.namespaced) else ctx.namespace
    listed = await asyncio.wait_for(ctx.client().list(info, namespace), LOOKUP_TIMEOUT)
    return sorted({o.metadata.name for o in listed.items})  # type: ignore[attr-defined]


def _context_for(ctx: CommandContext, state: _State) -> CommandContext:
    """A context for lookups: global flags typed on the command line being completed win
    over those given to `__complete` itself."""
    args = argparse.Namespace(
        kubeconfig=state.values.get("kubeconfig", ctx.args.kubeconfig),
        context=state.values.get("context", ctx.args.context),
        server=state.values.get("server", ctx.args.server),
        insecure_plaintext=ctx.args.insecure_plaintext or "insecure_plaintext" in state.values,
        namespace=state.values.get("namespace", ""),
        all_namespaces=state.all_namespaces,
        request_timeout=LOOKUP_TIMEOUT,
    )
    return CommandContext(args, out=ctx.out, err=ctx.err)


async def candidates(
    ctx: CommandContext, root: argparse.ArgumentParser, words: list[str], current: str
) -> list[str]:
    """Completions of `current` after `words` (the words between `pinctl` and the cursor)."""
    state = _walk(root, words)
    if state.pending is not None:
        action = state.pending
        if action.choices:
            return [str(c) for c in action.choices]
        if action.dest in ("filename", "kubeconfig"):
            return [FILES]
        if action.dest == "output":
            return list(_OUTPUTS)
        if action.dest == "namespace":
            return await _object_names(_context_for(ctx, state), "namespaces", True)
        if action.dest == "context":
            return [str(e.get("name")) for e in KubeConfig.load(ctx.config_file).entries("contexts")]
        return []
    if current.startswith("-"):
        return _flags(state.parser)
    children = _subcommands(state.parser)
    if children and not state.positionals:
        return sorted(children)
    lookup = _context_for(ctx, state)
    if state.path and state.path[0] == "config" and len(state.path) > 1:
        section = _CONFIG_NAMES.get(state.path[1])
        if section is None:
            return []
        return [str(e.get("name")) for e in KubeConfig.load(lookup.config_file).entries(section)]
    positionals = [a for a in state.parser._actions if not a.option_strings and a.dest not in ("help",)]
    if not positionals:
        return []
    metavar = str(positionals[0].metavar or "")
    if metavar in _POSITIONAL_KINDS:
        return await _object_names(lookup, _POSITIONAL_KINDS[metavar], state.all_namespaces)
    if metavar == "NAME" and state.path[:1] == ["top"] and len(state.path) > 1:
        return await _object_names(lookup, "nodes" if state.path[1].startswith("no") else "pods", False)
    if metavar not in _TYPED_METAVARS:
        return []
    if "/" in current:
        kind = current.split("/", 1)[0]
        return [f"{kind}/{name}" for name in await _object_names(lookup, kind, state.all_namespaces)]
    if not state.positionals:
        return _type_names()
    return await _object_names(lookup, state.positionals[0].split(",")[0], state.all_namespaces)


async def complete(ctx: CommandContext, args: argparse.Namespace) -> int:
    words = list(args.words)
    if words and words[0] == "--":
        words = words[1:]
    if not words:
        raise CLIError("__complete needs the words before the cursor and the current word", EXIT_USAGE)
    try:
        found = await candidates(ctx, args.root_parser, words[:-1], words[-1])
    except (CLIError, APIStatusError, TimeoutError):
        found = []  # no server, no configuration or an unknown type: nothing to offer
    for candidate in found:
        if candidate == FILES or candidate.startswith(words[-1]):
            ctx.print(candidate)
    return 0
