#!/bin/sh
# The guestbook's backend, as the notes' guestbook.php:
#   /guestbook.cgi?cmd=set&key=K&value=V  writes V under K to the master: {"message": "Updated"}
#   /guestbook.cgi?cmd=get&key=K          reads K from the slaves: {"data": "V"}
# With GET_HOSTS_FROM=env the Redis hosts come from the service environment variables the
# kubelet sets (REDIS_MASTER_SERVICE_HOST, REDIS_SLAVE_SERVICE_HOST), otherwise from the
# services' DNS names. Failures answer 503 with {"error": ...} so a client can tell.
set -f

param() {  # param NAME: the URL-decoded value of NAME in the query string
  IFS='&'
  for pair in $QUERY_STRING; do
    case "$pair" in
      "$1="*) unset IFS; httpd -d "${pair#*=}"; return ;;
    esac
  done
  unset IFS
}

json() {  # json TEXT: TEXT as the inside of a JSON string
  printf '%s' "$1" | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g'
}

reply() {  # reply STATUS BODY
  printf 'Status: %s\r\nContent-Type: application/json\r\n\r\n%s\n' "$1" "$2"
}

fail() {  # fail MESSAGE: Redis could not be reached or refused
  reply "503 Service Unavailable" "{\"error\": \"$(json "$1")\"}"
  exit 0
}

bad() {  # bad MESSAGE: the request itself is wrong
  reply "400 Bad Request" "{\"error\": \"$1\"}"
  exit 0
}

redis() {  # redis ROLE HOST PORT ARGS...: one command, bounded in time; fails the request on error
  role=$1 host=$2 port=$3
  shift 3
  [ -n "$host" ] || fail "no address for $role: create its Service before the frontend's pods"
  out=$(timeout 5 redis-cli -e -h "$host" -p "$port" "$@" 2>&1) || fail "$role at $host:$port: ${out:-no answer}"
}

if [ "${GET_HOSTS_FROM:-dns}" = env ]; then
  master=${REDIS_MASTER_SERVICE_HOST:-} master_port=${REDIS_MASTER_SERVICE_PORT:-6379}
  slave=${REDIS_SLAVE_SERVICE_HOST:-} slave_port=${REDIS_SLAVE_SERVICE_PORT:-6379}
else
  master=redis-master master_port=6379 slave=redis-slave slave_port=6379
fi

cmd=$(param cmd)
key=$(param key)
case "$cmd" in
  set|get) [ -n "$key" ] || bad "key is required" ;;
  *) bad "cmd must be set or get" ;;
esac
if [ "$cmd" = set ]; then
  redis redis-master "$master" "$master_port" SET "$key" "$(param value)"
  [ "$out" = OK ] || fail "redis-master at $master:$master_port: $out"
  reply "200 OK" '{"message": "Updated"}'
else
  redis redis-slave "$slave" "$slave_port" GET "$key"
  reply "200 OK" "{\"data\": \"$(json "$out")\"}"
fi
