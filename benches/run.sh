#!/usr/bin/env bash
# One command: Ferry vs rsync+stunnel through squid and HAProxy. Arguments go to bench.py
# (e.g. --smoke, --quick, --large-mb 1024 --small-files 30000 --pairs 3 --out results.md).
exec python3 "$(dirname "$0")/bench.py" "$@"
