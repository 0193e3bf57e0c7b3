/* Making text valid UTF-8 before it goes into a JSON message: error messages quote what a
 * client sent and are cut to a buffer's size, and jansson refuses invalid UTF-8 (the body would
 * be lost). Internal to shardz (not a public header). Pure and thread-safe. */
#ifndef SHARDZ_COMMON_UTF8_H
#define SHARDZ_COMMON_UTF8_H

#include <stddef.h>

/* Rewrites the NUL-terminated s in place into valid UTF-8: every byte that does not begin a
 * complete, shortest-form sequence (of at most U+10FFFF, no surrogate) becomes '?', and a
 * sequence cut by the end of the string (a truncation) is dropped. Returns the new length. */
size_t shardz__utf8_clean(char *s);

#endif
