#!/bin/sh
# guestbook [PORT]: the guestbook frontend on PORT (default $PORT or 80): index.html and the
# guestbook.cgi backend, served by busybox httpd in the foreground.
exec httpd -f -p "0.0.0.0:${1:-${PORT:-80}}" -h /www -c /etc/httpd.conf
