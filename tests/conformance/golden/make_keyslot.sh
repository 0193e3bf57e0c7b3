#!/usr/bin/env bash
# Regenerates keyslot.json, the key -> slot vectors every library is tested against
# (tests/conformance/README.md, "Golden files"), from the reference implementation's own CLI:
# `xxhsum -H3` (Debian's xxhash package) hashes each key's hash tag (docs/PROTOCOL.md section 7:
# the bytes between the first '{' and the first '}' after it when non-empty, else the whole
# key), and the slot is hash & (slots - 1). Run from anywhere: writes next to this script.
set -euo pipefail
cd "$(dirname "$0")"
command -v xxhsum >/dev/null || { echo "xxhsum missing: apt-get install xxhash" >&2; exit 1; }
# keys: plain, empty, hash tags, empty tag, unclosed brace, nested braces, a second tag,
# a '}' before the '{', multi-byte UTF-8, long keys, keys that share a tag
keys=("" "a" "foo" "bar" "user:1000" "user:1001" "{user1}:a" "{user1}:b" "x{user1}y"
      "{user1}" "{}" "{}x" "x{}" "{}{user1}" "{" "}" "a{b" "a}b{c}" "{a{b}c}" "{{a}}" "{a}{b}"
      "}{a}" "é" "{ключ}:1" "ключ" "日本語のキー" "{tag with space}x" "0123456789"
      "$(printf 'k%.0s' $(seq 1 240))" "$(printf 'long%.0s' $(seq 1 64))")
tag() {  # the hash tag of $1, by the protocol's rule, on bytes
  local k=$1 rest inner
  case $k in *"{"*) ;; *) printf %s "$k"; return ;; esac
  rest=${k#*\{}
  case $rest in *"}"*) inner=${rest%%\}*} ;; *) printf %s "$k"; return ;; esac
  if [ -n "$inner" ]; then printf %s "$inner"; else printf %s "$k"; fi
}
{
  echo '{"generated_by": "tests/conformance/golden/make_keyslot.sh (xxhsum -H3, Debian xxhash)",'
  echo ' "rule": "hash = XXH3-64 seed 0 of the hash tag (else the whole key); slot = hash & (slots - 1)",'
  echo ' "vectors": ['
  n=${#keys[@]}
  for i in "${!keys[@]}"; do
    k=${keys[$i]}
    t=$(tag "$k")
    h=$(printf %s "$t" | LC_ALL=C xxhsum -H3 | sed -E 's/^XXH3 \(stdin\) = //; s/ .*//')
    lx=$((16#${h:8:8}))  # the low 32 bits hold every slot (at most 2^20)
    s64=$((lx & 63)); s16k=$((lx & 16383)); s1m=$((lx & 1048575))
    sep=$([ "$i" -lt $((n - 1)) ] && echo , || true)
    python3 -c 'import json,sys; print("  " + json.dumps({"key": sys.argv[1], "hashed": sys.argv[2], "hash": sys.argv[3], "slots": {"64": int(sys.argv[4]), "16384": int(sys.argv[5]), "1048576": int(sys.argv[6])}}, ensure_ascii=False) + sys.argv[7])' \
      "$k" "$t" "$h" "$s64" "$s16k" "$s1m" "$sep"
  done
  echo ' ]}'
} > keyslot.json
echo "wrote $(pwd)/keyslot.json (${#keys[@]} vectors)"
