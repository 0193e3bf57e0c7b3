/* The dashboard's static files (web/), embedded into shardzd at build time by web/embed.cmake,
 * which generates shardz_web_assets.c from every file of web/ (see docs/DASHBOARD.md). */
#ifndef SHARDZ_WEB_ASSETS_H
#define SHARDZ_WEB_ASSETS_H

#include <stddef.h>

struct shardz_web_asset {
    const char *path;         /* "/index.html", "/app.js", ...; NULL ends the array */
    const char *content_type; /* e.g. "text/html; charset=utf-8" */
    const unsigned char *data;
    size_t size;
};

/* Every embedded file, terminated by an entry whose path is NULL. */
extern const struct shardz_web_asset shardz_web_assets[];

/* The asset whose path is exactly `path` ("/" is not mapped here: serve "/index.html"), or
 * NULL. */
const struct shardz_web_asset *shardz_web_asset_find(const char *path);

#endif
