#!/usr/bin/env bash
# Prepare a Debian 12 machine (as root) for pinnace: system packages, a docker daemon
# configuration that keeps docker away from the root namespace's networking, and the
# project virtualenv. Idempotent: a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

# The one package list, shared with deploy/install.sh.
read -r -a PACKAGES <<<"$(sed 's/#.*//' hack/debian-packages.txt | tr '\n' ' ')"

# dockerd must never create docker0 or iptables rules: pods get their network from CNI.
# Written before docker.io is installed so a dockerd started by its package honours it too.
if [ ! -f /etc/docker/daemon.json ]; then
  mkdir -p /etc/docker
  printf '{\n  "bridge": "none",\n  "iptables": false,\n  "ip6tables": false\n}\n' > /etc/docker/daemon.json
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.pinnace-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ hack/constraints.txt -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -c hack/constraints.txt -e '.[dev]'
  touch "$stamp"
fi
echo "setup: done (virtualenv .venv)"
