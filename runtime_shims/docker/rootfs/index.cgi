#!/bin/sh
# Answers every request of pinnace/busybox's HTTP server (`serve`) with the container's
# hostname and $MESSAGE, so tests can tell which pod served them.
printf 'Content-Type: text/plain\r\n\r\n'
printf '%s %s\n' "$(hostname)" "${MESSAGE:-}"
