#!/bin/sh
# Renders deploy/nginx.conf.template (or the template given as $1) to stdout, for docker-compose.yml's
# nginx container and for scripts/cluster.ts alike, so the two cannot drift apart.
#   PARLEY_UPSTREAMS  the instances, space-separated host:port: each line naming ${PARLEY_UPSTREAM} is
#                     written once per instance
#   every other ${PARLEY_NAME}: the environment variable of that name, which must be set
# POSIX sh and awk only: the nginx image has nothing more.
set -eu
: "${PARLEY_UPSTREAMS:?PARLEY_UPSTREAMS: the instances, as space-separated host:port}"
template=${1:-$(dirname "$0")/nginx.conf.template}

exec awk '
  function fill(line, upstream,    out, name) {
    out = ""
    while (match(line, /\$\{PARLEY_[A-Z_]+\}/)) {
      name = substr(line, RSTART + 2, RLENGTH - 3)
      if (name == "PARLEY_UPSTREAM") value = upstream
      else if (name in ENVIRON) value = ENVIRON[name]
      else { print "render-nginx: " name " is not set" > "/dev/stderr"; failed = 1; exit 1 }
      out = out substr(line, 1, RSTART - 1) value
      line = substr(line, RSTART + RLENGTH)
    }
    return out line
  }
  BEGIN { count = split(ENVIRON["PARLEY_UPSTREAMS"], upstreams, /[ \t\n]+/) }
  /\$\{PARLEY_UPSTREAM\}/ {
    for (i = 1; i <= count; i++) if (upstreams[i] != "") print fill($0, upstreams[i])
    next
  }
  { print fill($0, "") }
  END { if (failed) exit 1 }
' "$template"
