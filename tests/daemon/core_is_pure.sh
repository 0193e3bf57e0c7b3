#!/usr/bin/env bash
# The daemon's core (src/daemon/core/) stays pure: no libevent, curl, sqlite or store (it links
# only the placement layer and jansson), no clock
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
# the target links only pure libraries: the placement layer (pure by design) and jansson
# (JSON in memory, for the config parser)
if grep -n "target_link_libraries" "$core/CMakeLists.txt" |
   grep -vE 'target_link_libraries\(shardz_core PUBLIC shardz_placement PkgConfig::JANSSON\)$'; then
  echo "core_is_pure: shardz_core links only shardz_placement and jansson" >&2
  status=1
fi
[ $status -eq 0 ] && echo "core_is_pure: $(ls "$core"/*.c | wc -l) files, pure"
exit $status
