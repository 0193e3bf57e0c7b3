// JSON with 64-bit integers: revisions and generations pass 2^53 (docs/PROTOCOL.md section 1),
// which JSON.parse would round. Parsing goes through the npm package lossless-json (pinned):
// every integer literal becomes a BigInt, every other number a Number, and an object with a key
// twice is refused (as the C library's parser does). Pure; no state.
import { parse, stringify, isInteger } from 'lossless-json';

/** Parses text; integers come back as BigInt. Throws SyntaxError on malformed JSON. */
export function parseJSON(text) {
  return parse(text, null, (s) => (isInteger(s) ? BigInt(s) : Number(s)));
}

/** Serialises a value; BigInts are written as JSON integers. */
export function toJSON(value) {
  return stringify(value);
}
