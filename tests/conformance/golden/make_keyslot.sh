#!/usr/bin/env bash
# Regenerates keyslot.json, the key -> slot vectors every library is tested against
# (tests/conformance/README.md, "Golden files"), from the reference implementation's own CLI:
# `xxhsum -H3` (Debian's xxhash package) hashes each key's hash tag (docs/PROTOCOL.md section 7:
# the bytes between the first '{' and the first '}' after it when non-empty, else the whole
# key), and the slot is hash & (slots - 1). Run from anywhere: writes keyslot.json next to this
# script, or to the path given (test_golden.py regenerates it that way and compares).
set -euo pipefail
out=$(realpath -m "${1:-$(dirname "$0")/keyslot.json}")
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
for k in "${keys[@]}"; do  # key, hashed bytes, hash: NUL-separated, formatted below
  t=$(tag "$k")
  h=$(printf %s "$t" | LC_ALL=C xxhsum -H3 | sed -E 's/^XXH3 \(stdin\) = //; s/ .*//')
  printf '%s\0%s\0%s\0' "$k" "$t" "$h"
done | python3 -c '
import json, sys
f = sys.stdin.buffer.read().split(b"\0")[:-1]
rows = []
for k, t, h in zip(f[0::3], f[1::3], f[2::3]):
    v = int(h, 16)
    rows.append(json.dumps({"key": k.decode(), "hashed": t.decode(), "hash": h.decode(),
                            "slots": {str(n): v & (n - 1) for n in (64, 16384, 1048576)}},
                           ensure_ascii=False))
print("{\"generated_by\": \"tests/conformance/golden/make_keyslot.sh (xxhsum -H3, Debian xxhash)\",")
print(" \"rule\": \"hash = XXH3-64 seed 0 of the hash tag (else the whole key); slot = hash & (slots - 1)\",")
print(" \"vectors\": [")
print(",\n".join("  " + r for r in rows))
print(" ]}")
' > "$out"
echo "wrote $out (${#keys[@]} vectors)"
