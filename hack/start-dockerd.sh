#!/usr/bin/env bash
# Start a dockerd for pinnace if none answers: no docker0 bridge and no iptables rules
# (pods get their network from CNI; DESIGN.md section 7). Leaves a running dockerd alone.
set -euo pipefail
LOG=${PINNACE_DOCKERD_LOG:-/var/log/pinnace-dockerd.log}
PIDFILE=/run/pinnace-dockerd.pid

if docker info >/dev/null 2>&1; then
  exit 0
fi
echo "dockerd: starting (log: $LOG)"
nohup dockerd --bridge=none --iptables=false --ip6tables=false --pidfile "$PIDFILE" >"$LOG" 2>&1 &
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
