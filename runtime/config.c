/* runtime/config.c — a model's config.json, read once and queried by key.
 *
 * The file must be one JSON object with no duplicate keys (at any depth).
 * Lookups take dotted keys ("rope_scaling.factor"): each segment descends
 * into an object, and anything absent — or a parent that is not an object —
 * reads as CFG_MISSING, so callers can tell "not there" from JSON null.
 * Strings handed out point into the parsed document and live as long as the
 * RtConfig. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"

struct RtConfig {
    json_t *root;
};

bool rt_config_parse(const char *path_for_msgs, const char *text, size_t len, RtConfig **out,
                     RtErr *err)
{
    *out = NULL;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!root)
        return rt_fail(err, "%s:%d:%d: %s", path_for_msgs, je.line, je.column, rt_json_why(&je));
    if (!json_is_object(root)) {
        json_decref(root);
        return rt_fail(err, "%s: top level is not an object", path_for_msgs);
    }
    RtConfig *c = malloc(sizeof *c);
    if (!c) {
        json_decref(root);
        return rt_fail(err, "%s: out of memory", path_for_msgs);
    }
    c->root = root;
    *out = c;
    return true;
}

bool rt_config_load(const char *path, RtConfig **out, RtErr *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return rt_fail(err, "%s: cannot open: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    bool ok = true;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? 2 * cap : 4096;
            char *grown = realloc(text, ncap);
            if (!grown) {
                ok = rt_fail(err, "%s: out of memory", path);
                break;
            }
            text = grown;
            cap = ncap;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                ok = rt_fail(err, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (ok)
        ok = rt_config_parse(path, text ? text : "", len, out, err);
    free(text);
    return ok;
}

void rt_config_free(RtConfig *c)
{
    if (!c)
        return;
    json_decref(c->root);
    free(c);
}

RtCfgValue rt_config_get(const RtConfig *c, const char *dotted_key)
{
    RtCfgValue v = {.kind = CFG_MISSING};
    if (!c || !dotted_key)
        return v;
    json_t *node = c->root;
    const char *seg = dotted_key;
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t n = dot ? (size_t)(dot - seg) : strlen(seg);
        if (!json_is_object(node) || n == 0)
            return v;
        node = json_object_getn(node, seg, n);
        if (!node)
            return v;
        if (!dot)
            break;
        seg = dot + 1;
    }
    switch (json_typeof(node)) {
    case JSON_NULL:
        v.kind = CFG_NULL;
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        v.kind = CFG_BOOL;
        v.b = json_is_true(node);
        break;
    case JSON_INTEGER:
        v.kind = CFG_INT;
        v.i = json_integer_value(node);
        v.f = (double)v.i;
        break;
    case JSON_REAL:
        v.kind = CFG_FLOAT;
        v.f = json_real_value(node);
        break;
    case JSON_STRING:
        v.kind = CFG_STRING;
        v.s = json_string_value(node);
        break;
    default:
        v.kind = CFG_OTHER;
        break;
    }
    return v;
}

const char *rt_json_why(const json_error_t *je)
{
    return json_error_code(je) == json_error_out_of_memory || !je->text[0] ? "out of memory" : je->text;
}
