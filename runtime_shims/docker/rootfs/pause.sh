#!/bin/sh
# pinnace pause: PID 1 of every pod sandbox. It holds the pod's namespaces, reaps the
# orphans reparented to it (the shell's `wait` collects any child), and exits at once on
# SIGTERM or SIGINT so stopping a sandbox never waits for a kill timeout.
trap 'exit 0' TERM INT
while :; do
  sleep 2147483647 &
  wait
done
