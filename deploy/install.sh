#!/usr/bin/env bash
# Install pinnace on a Debian 12 machine from this checkout and start it under systemd, as a
# server (control plane and a local node) or an agent (a node that joins a server):
#
#   deploy/install.sh [OPTIONS] server [PINNACE SERVER FLAGS...]
#   deploy/install.sh [OPTIONS] agent --server HOST:PORT (--token K10... | --token-file FILE) [FLAGS...]
#
# It installs the Debian packages of hack/debian-packages.txt, writes /etc/docker/daemon.json
# (no docker0, no docker iptables rules: DESIGN.md section 7), a virtualenv /opt/pinnace/venv
# with this checkout, the local images (pinnace-images), the unit
# /etc/systemd/system/pinnace-ROLE.service and its flags in /etc/default/pinnace-ROLE, then
# enables and starts the unit. An agent's token goes to /etc/pinnace/agent-token (0600) and the
# flags name it with --token-file, so it never shows in `ps`. Running it again upgrades
# (docs/operations.md "Upgrades").
#
# Options (before the role):
#   --root DIR        write every file under DIR instead of / (implies --no-start; the apt step
#                     is skipped: packages cannot be installed under a directory)
#   --no-start        do not run systemctl (no daemon-reload, enable, start or docker restart)
#   --skip-packages   skip the slow steps: apt packages, the virtualenv and the images
#   --dry-run         print what would be done and write nothing
#   -h, --help        this text
# Flags after the role are passed to `pinnace ROLE` unchanged; they may not contain spaces,
# quotes, '$' or backslashes (systemd splits $PINNACE_ROLE_ARGS on spaces).
# Exit codes: 0 done, 1 a step failed, 2 bad usage (nothing written).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/opt/pinnace
ROOT=""
NO_START=0
SKIP_PACKAGES=0
DRY_RUN=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die_usage() {
  echo "install.sh: $*" >&2
  echo "usage: install.sh [--root DIR] [--no-start] [--skip-packages] [--dry-run] server|agent [FLAGS...]" >&2
  exit 2
}
say() { echo "install.sh: $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --root) if [ $# -lt 2 ] || [ -z "$2" ]; then die_usage "--root needs a directory"; fi; ROOT=$2; shift 2 ;;
    --root=*) ROOT=${1#--root=}; [ -n "$ROOT" ] || die_usage "--root needs a directory"; shift ;;
    --no-start) NO_START=1; shift ;;
    --skip-packages) SKIP_PACKAGES=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die_usage "unknown option $1" ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || die_usage "missing role: server or agent"
ROLE=$1
shift
case "$ROLE" in
  server|agent) ;;
  *) die_usage "unknown role '$ROLE': use server or agent" ;;
esac
[ -z "${DESTDIR:-}" ] || [ -n "$ROOT" ] || ROOT=$DESTDIR
ROOT=${ROOT%/}
[ -z "$ROOT" ] || NO_START=1

# The flags, checked before anything is written. An agent's token moves to a file.
FLAGS=()
TOKEN=""
TOKEN_FILE=""
HAVE_SERVER=0
while [ $# -gt 0 ]; do
  arg=$1
  shift
  case "$arg" in
    *[[:space:]\'\"\\\$]*) die_usage "flag '$arg' contains a space, quote, '\$' or backslash" ;;
  esac
  if [ "$ROLE" = agent ]; then
    case "$arg" in
      --token|--token-file|--server)
        if [ $# -lt 1 ] || [ -z "$1" ]; then die_usage "$arg needs a value"; fi
        value=$1
        shift
        case "$value" in *[[:space:]\'\"\\\$]*) die_usage "$arg value contains a space, quote, '\$' or backslash" ;; esac
        ;;
      --token=*|--token-file=*|--server=*) value=${arg#*=}; arg=${arg%%=*}
        [ -n "$value" ] || die_usage "$arg needs a value" ;;
      *) FLAGS+=("$arg"); continue ;;
    esac
    case "$arg" in
      --token) TOKEN=$value ;;
      --token-file) TOKEN_FILE=$value ;;
      --server) HAVE_SERVER=1; FLAGS+=(--server "$value") ;;
    esac
    continue
  fi
  FLAGS+=("$arg")
done
if [ "$ROLE" = agent ]; then
  [ "$HAVE_SERVER" = 1 ] || die_usage "agent needs --server HOST:PORT (the server's --https-port, e.g. 192.168.56.10:6443)"
  [ -n "$TOKEN$TOKEN_FILE" ] || die_usage "agent needs --token K10... or --token-file FILE (the server's /var/lib/pinnace/server/node-token)"
  [ -z "$TOKEN" ] || [ -z "$TOKEN_FILE" ] || die_usage "give --token or --token-file, not both"
  if [ -n "$TOKEN_FILE" ]; then
    [ -r "$TOKEN_FILE" ] || die_usage "cannot read --token-file $TOKEN_FILE"
    TOKEN=$(tr -d '[:space:]' <"$TOKEN_FILE")
  fi
  case "$TOKEN" in
    K10*::*.*) ;;
    *) die_usage 'the join token is not of the form "K10<sha256 of the CA>::<id>.<secret>"' ;;
  esac
  FLAGS+=(--token-file /etc/pinnace/agent-token)
fi
if [ -z "$ROOT" ] && [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (or give --root DIR to install under a directory)" >&2
  exit 1
fi

# ---------------------------------------------------------------- helpers
run() {
  if [ "$DRY_RUN" = 1 ]; then echo "+ $*"; else "$@"; fi
}
# write_file PATH MODE: stdin to $ROOT/PATH, atomically.
write_file() {
  local target=$ROOT$1 mode=$2
  if [ "$DRY_RUN" = 1 ]; then
    echo "+ write $target (mode $mode):"
    sed 's/^/    /'
    return
  fi
  mkdir -p "$(dirname "$target")"
  local tmp
  tmp=$(mktemp "$(dirname "$target")/.install.XXXXXX")
  cat >"$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$target"
  say "wrote $target"
}

# ---------------------------------------------------------------- packages
if [ "$SKIP_PACKAGES" = 0 ] && [ -z "$ROOT" ]; then
  read -r -a PACKAGES <<<"$(sed 's/#.*//' "$SRC/hack/debian-packages.txt" | tr '\n' ' ')"
  missing=()
  for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    # daemon.json first, so the dockerd that docker.io starts never makes docker0.
    if [ ! -f /etc/docker/daemon.json ]; then
      run mkdir -p /etc/docker
      printf '{\n  "bridge": "none",\n  "iptables": false,\n  "ip6tables": false\n}\n' | write_file /etc/docker/daemon.json 0644
    fi
    run env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
elif [ "$SKIP_PACKAGES" = 0 ]; then
  say "--root: skipping the apt packages (install hack/debian-packages.txt on the target)"
fi

# ---------------------------------------------------------------- docker settings
# The settings hack/start-dockerd.sh passes as flags, kept in daemon.json with any other keys.
DAEMON_JSON=$ROOT/etc/docker/daemon.json
old_json=""
[ ! -f "$DAEMON_JSON" ] || old_json=$(cat "$DAEMON_JSON")
new_json=$(python3 - "$DAEMON_JSON" <<'PY'
import json, os, sys
path = sys.argv[1]
settings = {}
if os.path.exists(path):
    with open(path) as f:
        text = f.read().strip()
    settings = json.loads(text) if text else {}
settings.update({"bridge": "none", "iptables": False, "ip6tables": False})
print(json.dumps(settings, indent=2))
PY
)
if [ "$new_json" != "$old_json" ]; then
  printf '%s\n' "$new_json" | write_file /etc/docker/daemon.json 0644
  if [ "$NO_START" = 0 ]; then
    say "restarting docker for the new daemon.json"
    run systemctl restart docker
  fi
fi

# ---------------------------------------------------------------- virtualenv, docs, images
VENV=$ROOT$PREFIX/venv
if [ "$SKIP_PACKAGES" = 0 ]; then
  [ -x "$VENV/bin/python" ] || run python3 -m venv "$VENV"
  run "$VENV/bin/pip" install -q --upgrade pip
  run "$VENV/bin/pip" install -q -c "$SRC/hack/constraints.txt" "$SRC"
fi
run mkdir -p "$ROOT$PREFIX/docs"
run cp -r "$SRC/docs/." "$ROOT$PREFIX/docs/"
if [ "$SKIP_PACKAGES" = 0 ]; then
  if [ "$DRY_RUN" = 1 ] || docker info >/dev/null 2>&1; then
    run "$VENV/bin/pinnace-images"
  else
    say "dockerd does not answer: build the images later with $PREFIX/venv/bin/pinnace-images"
  fi
fi

# ---------------------------------------------------------------- token, flags, unit
if [ "$ROLE" = agent ]; then
  run mkdir -p "$ROOT/etc/pinnace"
  printf '%s\n' "$TOKEN" | write_file /etc/pinnace/agent-token 0600
fi
VAR=PINNACE_$(echo "$ROLE" | tr '[:lower:]' '[:upper:]')_ARGS
{
  echo "# Flags of \`pinnace $ROLE\` for pinnace-$ROLE.service, written by deploy/install.sh."
  echo "# Edit, then: systemctl restart pinnace-$ROLE (docs/getting-started.md)."
  echo "$VAR=\"${FLAGS[*]}\""
} | write_file "/etc/default/pinnace-$ROLE" 0600
write_file "/etc/systemd/system/pinnace-$ROLE.service" 0644 <"$SRC/deploy/systemd/pinnace-$ROLE.service"

if [ "$NO_START" = 1 ]; then
  say "not starting (--no-start): systemctl daemon-reload && systemctl enable --now pinnace-$ROLE"
  exit 0
fi
run systemctl daemon-reload
run systemctl enable "pinnace-$ROLE.service"
run systemctl restart "pinnace-$ROLE.service"
say "pinnace-$ROLE started: journalctl -u pinnace-$ROLE -f"
if [ "$ROLE" = server ] && [ "$DRY_RUN" = 0 ]; then
  say "the join token for agents will be in /var/lib/pinnace/server/node-token (or the --data-dir's)"
fi
