#!/usr/bin/env bash
# Start a dockerd for pinnace if none answers: no docker0 bridge and no iptables rules
# (pods get their network from CNI; DESIGN.md section 7). Leaves a running dockerd alone.
#
# dockerd refuses to start when a directive is given both as a flag and in its configuration
# file, so each of our three settings is passed as a flag only when /etc/docker/daemon.json
# does not already set it (make setup writes that file with all three when it is absent).
set -euo pipefail
LOG=${PINNACE_DOCKERD_LOG:-/var/log/pinnace-dockerd.log}
PIDFILE=/run/pinnace-dockerd.pid
CONFIG=${PINNACE_DOCKERD_CONFIG:-/etc/docker/daemon.json}

if docker info >/dev/null 2>&1; then
  exit 0
fi

flags_not_in_config() {
  python3 - "$CONFIG" <<'PY'
import json, os, sys
path = sys.argv[1]
settings = {}
if os.path.exists(path):
    with open(path) as f:
        settings = json.load(f)
wanted = {"bridge": "--bridge=none", "iptables": "--iptables=false", "ip6tables": "--ip6tables=false"}
print(" ".join(flag for key, flag in wanted.items() if key not in settings))
PY
}

read -r -a FLAGS <<<"$(flags_not_in_config)"
echo "dockerd: starting (log: $LOG)"
nohup dockerd "${FLAGS[@]}" --pidfile "$PIDFILE" >"$LOG" 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    echo "dockerd: ready"
    exit 0
  fi
  sleep 0.5
done
echo "dockerd: did not become ready in 30 s; see $LOG" >&2
tail -n 20 "$LOG" >&2 || true
exit 1
