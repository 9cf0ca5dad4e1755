#!/bin/sh
# serve [PORT]: an HTTP server on PORT (default $PORT or 80) answering "<hostname> $MESSAGE".
exec httpd -f -p "0.0.0.0:${1:-${PORT:-80}}" -h /www
