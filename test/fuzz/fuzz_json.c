/* Fuzz target: the JSON layer (filter/json.c, json_write.c).
 *
 * The input is parsed with limits like the server's. A parsed tree is serialised with
 * filter_buf_json_value and parsed again: that must succeed, give an equal tree, and serialise to
 * the same bytes (stable). A container's raw text, compacted with filter_buf_json_compact, must
 * parse to an equal tree too. Strings and member names of a parsed tree must be valid UTF-8, and an
 * accepted text has no control bytes but JSON's four whitespace characters. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter/json.h"
#include "fuzz.h"

static const filter_json_limits_t lim = {1 << 20, 64, 100000};

static int tree_equal(const filter_json_t *a, const filter_json_t *b)
{
    if (a->type != b->type) return 0;
    switch (a->type) {
    case FILTER_JSON_NUMBER:
    case FILTER_JSON_STRING:
        return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    case FILTER_JSON_ARRAY:
    case FILTER_JSON_OBJECT:
        if (a->count != b->count) return 0;
        for (size_t i = 0; i < a->count; i++) {
            if (a->type == FILTER_JSON_OBJECT &&
                (a->key_lens[i] != b->key_lens[i] ||
                 memcmp(a->keys[i], b->keys[i], a->key_lens[i]) != 0))
                return 0;
            if (!tree_equal(a->items[i], b->items[i])) return 0;
        }
        return 1;
    default:
        return 1;
    }
}

static void walk(const filter_json_t *v)
{
    int64_t i64;
    switch (v->type) {
    case FILTER_JSON_STRING:
        FUZZ_CHECK(v->str[v->len] == '\0');
        FUZZ_CHECK(filter_utf8_valid(v->str, v->len));
        break;
    case FILTER_JSON_NUMBER:
        FUZZ_CHECK(v->len > 0);
        if (filter_json_int64(v, &i64)) {
            char buf[32];
            int n = snprintf(buf, sizeof buf, "%lld", (long long)i64);
            /* an integer literal reads back as itself, except "-0" */
            FUZZ_CHECK((size_t)n == v->len || (v->len == 2 && memcmp(v->str, "-0", 2) == 0));
        }
        break;
    case FILTER_JSON_OBJECT:
        for (size_t i = 0; i < v->count; i++) {
            FUZZ_CHECK(filter_utf8_valid(v->keys[i], v->key_lens[i]));
            /* lookup by name finds a member (the first with a name without NULs) */
            if (strlen(v->keys[i]) == v->key_lens[i])
                FUZZ_CHECK(filter_json_get(v, v->keys[i]) == v->items[i]);
        }
        /* fall through */
    case FILTER_JSON_ARRAY:
        FUZZ_CHECK(v->raw && v->raw_len >= 2);
        for (size_t i = 0; i < v->count; i++)
            walk(v->items[i]);
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    filter_json_doc_t *doc = NULL, *doc2 = NULL, *doc3 = NULL;
    filter_buf_t b1 = {0}, b2 = {0}, b3 = {0};
    char err[160];
    int rc;

    rc = filter_json_parse((const char *)data, size, &lim, &doc, err, sizeof err);
    if (rc != FILTER_JSON_OK) {
        FUZZ_CHECK(rc < 0 && memchr(err, '\0', sizeof err) && err[0]);
        return 0;
    }
    const filter_json_t *root = filter_json_root(doc);
    FUZZ_CHECK(root);
    walk(root);
    /* JSON text has no raw control characters: between tokens only space, tab, LF and CR (RFC 8259
     * §2; yajl alone also takes \v and \f), inside strings none at all (§7) */
    for (size_t i = 0; i < size; i++)
        FUZZ_CHECK(data[i] >= 0x20 || data[i] == '\t' || data[i] == '\n' || data[i] == '\r');

    /* serialise, re-parse, compare, serialise again */
    filter_buf_json_value(&b1, root);
    FUZZ_CHECK(!filter_buf_failed(&b1));
    filter_json_limits_t lim2 = {0, 64, 100000};
    rc = filter_json_parse(b1.data, b1.len, &lim2, &doc2, err, sizeof err);
    if (rc != FILTER_JSON_OK) {
        fprintf(stderr, "re-parse of %.*s failed: %s\n", (int)b1.len, b1.data, err);
        FUZZ_CHECK(0);
    }
    FUZZ_CHECK(tree_equal(root, filter_json_root(doc2)));
    filter_buf_json_value(&b2, filter_json_root(doc2));
    FUZZ_CHECK(!filter_buf_failed(&b2));
    FUZZ_CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
    /* the serialisation is compact: compacting it changes nothing */
    filter_buf_json_compact(&b3, b1.data, b1.len);
    FUZZ_CHECK(b3.len == b1.len && memcmp(b3.data, b1.data, b1.len) == 0);

    /* a container's raw text, compacted, is the same value */
    if (root->raw) {
        FUZZ_CHECK(root->raw_len <= size);
        filter_buf_reset(&b3);
        filter_buf_json_compact(&b3, root->raw, root->raw_len);
        FUZZ_CHECK(!filter_buf_failed(&b3));
        rc = filter_json_parse(b3.data, b3.len, &lim2, &doc3, err, sizeof err);
        if (rc != FILTER_JSON_OK) {
            fprintf(stderr, "compact form %.*s does not parse: %s\n", (int)b3.len, b3.data, err);
            FUZZ_CHECK(0);
        }
        FUZZ_CHECK(tree_equal(root, filter_json_root(doc3)));
        filter_json_doc_free(doc3);
    }

    filter_buf_fini(&b1);
    filter_buf_fini(&b2);
    filter_buf_fini(&b3);
    filter_json_doc_free(doc2);
    filter_json_doc_free(doc);
    return 0;
}
