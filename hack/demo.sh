#!/usr/bin/env bash
# The cluster half of `make up`: a lab cluster (master + NODES nodes + a client host, each its
# own network namespace; docs/lab.md) running the notes' guestbook, shown working from the
# client host through every node's NodePort. The cluster keeps running afterwards; the last
# lines printed say how to use it and how to remove it (`pinnace lab down --name demo`).
#
# Environment: PINNACE_DEMO_LAB (lab name, default demo), PINNACE_DEMO_NODES (default 2).
# A lab of the same name left by an earlier `make up` is removed first, so this is re-runnable.
set -euo pipefail
cd "$(dirname "$0")/.."
LAB=${PINNACE_DEMO_LAB:-demo}
NODES=${PINNACE_DEMO_NODES:-2}
STATE_ROOT=/var/lib/pinnace/labs
PINNACE="$PWD/.venv/bin/pinnace"
PINCTL=("$PWD/.venv/bin/pinctl" --kubeconfig "$STATE_ROOT/$LAB/admin.conf")
NODE_PORT=30001

on_client() { "$PINNACE" lab exec --name "$LAB" client -- "$@"; }
pinctl() { on_client "${PINCTL[@]}" "$@"; }
guestbook() { on_client curl -fsS -m 3 "http://$1:$NODE_PORT/guestbook.cgi?$2"; }
reads_back() { guestbook "$1" "cmd=get&key=messages" | grep -qF "$2"; }

# Waits up to $1 seconds for the command after it to succeed.
retry() {
  local deadline=$(($(date +%s) + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "demo: timed out waiting for: $*" >&2
      return 1
    fi
    sleep 1
  done
}

if [ -e "$STATE_ROOT/$LAB/state.json" ]; then
  echo "demo: removing the lab '$LAB' an earlier run left"
  "$PINNACE" lab down --name "$LAB"
fi
start=$(date +%s)
"$PINNACE" lab up --name "$LAB" --nodes "$NODES"
echo "demo: $NODES node(s) Ready in $(($(date +%s) - start)) s"

pinctl create namespace guestbook
for manifest in redis-master-controller redis-master-service redis-slave-controller \
  redis-slave-service frontend-controller frontend-service; do
  pinctl apply -n guestbook -f "$PWD/examples/guestbook/$manifest.yaml"
done

mapfile -t node_ips < <(seq 1 "$NODES" | while read -r i; do echo "192.168.56.$((10 + i))"; done)
for ip in "${node_ips[@]}"; do
  retry 180 guestbook "$ip" "cmd=get&key=messages"
done
message="hello from the client, $(date -u +%H:%M:%S)"
guestbook "${node_ips[0]}" "cmd=set&key=messages&value=${message// /%20}"
echo
for ip in "${node_ips[@]}"; do
  # Reads go to the Redis slaves: each node answers once replication caught up.
  retry 30 reads_back "$ip" "$message"
  echo "demo: GET through node $ip:$NODE_PORT -> $(guestbook "$ip" "cmd=get&key=messages")"
done
echo
pinctl get nodes -o wide
echo
pinctl get pods,services -n guestbook -o wide
cat <<EOF

demo: OK. The cluster '$LAB' keeps running in network namespaces pl-$LAB-*:
  $PINNACE lab status --name $LAB
  $PINNACE lab exec --name $LAB client -- ${PINCTL[*]} get pods -A
  $PINNACE lab down --name $LAB      # removes everything the lab made
EOF
