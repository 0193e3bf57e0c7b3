#!/usr/bin/env bash
# The daemon's core (src/daemon/core/) stays pure: no libevent, curl, sqlite or store, no clock
# reads, no environment, no file or socket I/O, no mutable globals. Fails naming each line that
# breaks the rule. Usage: core_is_pure.sh SOURCE_DIR
set -u
core="$1/src/daemon/core"
status=0
forbidden='#include <event2/|#include <curl/|#include <sqlite3\.h>|#include "shardz/store\.h"|clock_gettime|gettimeofday|[^_a-z]time\(|getenv|fopen|open\(|socket\(|pthread_|rand\('
if grep -nE "$forbidden" "$core"/*.c "$core"/*.h; then
  echo "core_is_pure: the lines above read a clock, do I/O or reach the shell's libraries" >&2
  status=1
fi
# file-scope variables that are not const (a global the core would share between calls)
if grep -nE '^(static )?[a-z_][a-z0-9_ ]*[ *]+[a-z_][a-z0-9_]*(\[[^]]*\])* *(=|;)' "$core"/*.c |
   grep -vE '^\S+:[0-9]+:(static )?const |\(' ; then
  echo "core_is_pure: the lines above are mutable file-scope variables" >&2
  status=1
fi
# the target links nothing
if grep -n "target_link_libraries" "$core/CMakeLists.txt"; then
  echo "core_is_pure: shardz_core must link nothing" >&2
  status=1
fi
[ $status -eq 0 ] && echo "core_is_pure: $(ls "$core"/*.c | wc -l) files, pure"
exit $status
