#!/usr/bin/env bash
# The smoke check of `make up`: every example manifest loads and validates, the pause image
# stops at once on SIGTERM, and pinnace/busybox serves its hostname over HTTP.
set -euo pipefail
cd "$(dirname "$0")/.."
name="pinnace-smoke-$$"
cleanup() { docker rm -f "$name" "$name-pause" >/dev/null 2>&1 || true; }
trap cleanup EXIT

mapfile -t manifests < <(find examples -name "*.yaml" -not -path "*/invalid/*" | sort)
.venv/bin/pinnace validate $(printf -- "-f %s " "${manifests[@]}")
docker run -d --name "$name-pause" --network none pinnace/pause:1.0 >/dev/null
start=$(date +%s%N)
docker stop -t 10 "$name-pause" >/dev/null
echo "smoke: pause stopped in $(( ($(date +%s%N) - start) / 1000000 )) ms"
docker run -d --name "$name" --network none --hostname smoke-pod -e MESSAGE=hello pinnace/busybox:1.0 serve 8080 >/dev/null
for _ in $(seq 1 50); do
  if answer=$(docker exec "$name" wget -qO- http://127.0.0.1:8080/ 2>/dev/null); then
    break
  fi
  sleep 0.1
done
echo "smoke: pinnace/busybox answered: ${answer:-nothing}"
[ "${answer:-}" = "smoke-pod hello" ]
echo "smoke: OK"
