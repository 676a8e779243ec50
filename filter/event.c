/* filter/event: CloudEvent structured-mode parse, validation, normalisation and serialisation. */
#include "event.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

/* Core attributes in canonical output order; data and data_base64 are handled apart. */
enum { A_SPECVERSION, A_ID, A_SOURCE, A_TYPE, A_SUBJECT, A_TIME, A_CONTENTTYPE, A_SCHEMA, A_N };

static const char *const core_names[A_N] = {
    "specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema",
};

typedef struct {
    const char *s;
    size_t len;
} str_t;

typedef struct {
    str_t name;
    str_t value;
    char num[24]; /* the decimal text of an integer value */
    filter_ext_kind_t kind;
} ext_ref_t;

/* Everything gathered from the JSON before the event block is laid out. Strings point into the JSON
 * tree (or into num / timebuf), which outlives this. */
typedef struct {
    str_t core[A_N];
    char timebuf[48];
    const filter_json_t *data;
    str_t data_base64;
    int has_b64;
    ext_ref_t *exts; /* local, or calloc'd for an event with many members */
    size_t n_exts;
    ext_ref_t local[16];
} draft_t;

static void draft_fini(draft_t *d)
{
    if (d->exts != d->local) free(d->exts);
}

/* Formats the client message. It ends up inside a JSON problem body, whose writer insists on valid
 * UTF-8, so a message cut short by msglen is trimmed back to a character boundary. */
static int say(char *msg, size_t msglen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int say(char *msg, size_t msglen, int rc, const char *fmt, ...)
{
    if (!msg || !msglen) return rc;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
    if (w >= 0 && (size_t)w >= msglen) {
        size_t n = strlen(msg);
        while (n && !filter_utf8_valid(msg, n))
            msg[--n] = '\0';
    }
    return rc;
}

/* A client-supplied name made safe to quote in a message: control characters and quotes become '?',
 * long names are cut on a character boundary. */
static void shown_name(char *out, size_t outlen, const char *s, size_t n)
{
    size_t o = 0, i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t cl = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (o + cl + 4 > outlen) break;
        if (c < 0x20 || c == 0x7f || c == '\'' || c == '"' || c == '\\') {
            out[o++] = '?';
            i++;
        } else {
            memcpy(out + o, s + i, cl);
            o += cl;
            i += cl;
        }
    }
    if (i < n) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* U+0000-U+001F and U+007F-U+009F (the C1 controls are the two-byte sequences C2 80..C2 9F). */
static int has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) return 1;
        if (c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] <= 0x9F) return 1;
    }
    return 0;
}

static int ext_name_ok(const char *s, size_t n)
{
    if (!n) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9'))) return 0;
    return 1;
}

static int core_index(const char *k, size_t n)
{
    for (int i = 0; i < A_N; i++)
        if (strlen(core_names[i]) == n && !memcmp(core_names[i], k, n)) return i;
    return -1;
}

static int is_name(const char *k, size_t n, const char *name)
{
    return strlen(name) == n && !memcmp(name, k, n);
}

/* Checks a core attribute that must be a string when present. Returns 0 or an rc with msg set. */
static int core_string(const filter_json_t *v, const char *name, str_t *out, char *msg,
                       size_t msglen)
{
    if (v->type != FILTER_JSON_STRING)
        return say(msg, msglen, FILTER_EVENT_EINVALID, "The '%s' attribute must be a string.",
                   name);
    if (has_control(v->str, v->len))
        return say(msg, msglen, FILTER_EVENT_EINVALID,
                   "The '%s' attribute must not contain control characters.", name);
    out->s = v->str;
    out->len = v->len;
    return 0;
}

/* The CloudEvents 1.0 rules, then the Altinn ones; fills d. A JSON null counts as absent, for core
 * attributes, data and extensions alike. */
static int validate(const filter_json_t *obj, draft_t *d, char *msg, size_t msglen)
{
    if (!obj || obj->type != FILTER_JSON_OBJECT)
        return say(msg, msglen, FILTER_EVENT_EINVALID, "The CloudEvent must be a JSON object.");

    const filter_json_t *core[A_N] = {0};
    const filter_json_t *b64 = NULL;
    for (size_t i = 0; i < obj->count; i++) {
        const filter_json_t *v = obj->items[i];
        if (v->type == FILTER_JSON_NULL) continue;
        int ci = core_index(obj->keys[i], obj->key_lens[i]);
        if (ci >= 0)
            core[ci] = v;
        else if (is_name(obj->keys[i], obj->key_lens[i], "data"))
            d->data = v;
        else if (is_name(obj->keys[i], obj->key_lens[i], "data_base64"))
            b64 = v;
    }

    /* Missing required attributes are reported together, in a fixed order. */
    char missing[64] = "";
    static const int required[] = {A_SPECVERSION, A_ID, A_SOURCE, A_TYPE};
    for (size_t r = 0; r < sizeof required / sizeof required[0]; r++)
        if (!core[required[r]]) {
            if (missing[0]) strcat(missing, ", ");
            strcat(missing, core_names[required[r]]);
        }
    if (missing[0])
        return say(msg, msglen, FILTER_EVENT_EINVALID,
                   "CloudEvent is missing required attributes: %s", missing);

    for (int a = 0; a < A_N; a++) {
        if (!core[a]) continue;
        int rc = core_string(core[a], core_names[a], &d->core[a], msg, msglen);
        if (rc) return rc;
        const char *s = d->core[a].s;
        size_t n = d->core[a].len;
        switch (a) {
        case A_SPECVERSION:
            if (n != 3 || memcmp(s, "1.0", 3))
                return say(msg, msglen, FILTER_EVENT_EINVALID,
                           "The 'specversion' attribute must be \"1.0\".");
            break;
        case A_ID:
        case A_TYPE:
        case A_SUBJECT:
            if (!n)
                return say(msg, msglen, FILTER_EVENT_EINVALID,
                           "The '%s' attribute must be a non-empty string.", core_names[a]);
            break;
        case A_SOURCE:
            if (!n)
                return say(msg, msglen, FILTER_EVENT_EINVALID,
                           "The 'source' attribute must be a non-empty string.");
            if (!filter_uri_reference_valid(s, n))
                return say(msg, msglen, FILTER_EVENT_EINVALID,
                           "The 'source' attribute must be a URI-reference.");
            break;
        case A_TIME:
            if (filter_time_parse(s, n, NULL, d->timebuf, sizeof d->timebuf))
                return say(msg, msglen, FILTER_EVENT_EINVALID,
                           "The 'time' attribute must be an RFC 3339 timestamp.");
            d->core[a].s = d->timebuf;
            d->core[a].len = strlen(d->timebuf);
            break;
        case A_CONTENTTYPE:
            if (!filter_media_type_valid(s, n))
                return say(msg, msglen, FILTER_EVENT_EINVALID,
                           "The 'datacontenttype' attribute must be a media type.");
            break;
        case A_SCHEMA:
            if (!filter_uri_absolute_valid(s, n))
                return say(msg, msglen, FILTER_EVENT_EINVALID,
                           "The 'dataschema' attribute must be an absolute URI.");
            break;
        }
    }

    if (d->data && b64)
        return say(msg, msglen, FILTER_EVENT_EINVALID,
                   "Only one of 'data' and 'data_base64' may be present.");
    if (b64) {
        if (b64->type != FILTER_JSON_STRING || !filter_base64_valid(b64->str, b64->len))
            return say(msg, msglen, FILTER_EVENT_EINVALID,
                       "The 'data_base64' attribute must be a base64 string.");
        d->data_base64 = (str_t){b64->str, b64->len};
        d->has_b64 = 1;
    }

    d->exts = obj->count <= sizeof d->local / sizeof d->local[0]
                  ? d->local
                  : calloc(obj->count, sizeof *d->exts);
    if (!d->exts) return say(msg, msglen, FILTER_EVENT_ENOMEM, "Out of memory.");
    for (size_t i = 0; i < obj->count; i++) {
        const char *k = obj->keys[i];
        size_t kn = obj->key_lens[i];
        const filter_json_t *v = obj->items[i];
        if (core_index(k, kn) >= 0 || is_name(k, kn, "data") || is_name(k, kn, "data_base64"))
            continue;
        char shown[80];
        shown_name(shown, sizeof shown, k, kn);
        if (!ext_name_ok(k, kn))
            return say(msg, msglen, FILTER_EVENT_EINVALID,
                       "Extension attribute name '%s' is invalid: names must match ^[a-z0-9]+$.",
                       shown);
        ext_ref_t *e = &d->exts[d->n_exts];
        int64_t iv;
        switch (v->type) {
        case FILTER_JSON_NULL:
            continue;
        case FILTER_JSON_STRING:
            if (has_control(v->str, v->len))
                return say(msg, msglen, FILTER_EVENT_EINVALID,
                           "The '%s' attribute must not contain control characters.", shown);
            e->value = (str_t){v->str, v->len};
            break;
        case FILTER_JSON_TRUE:
            e->value = (str_t){"true", 4};
            e->kind = FILTER_EXT_BOOLEAN;
            break;
        case FILTER_JSON_FALSE:
            e->value = (str_t){"false", 5};
            e->kind = FILTER_EXT_BOOLEAN;
            break;
        case FILTER_JSON_NUMBER:
            /* The CloudEvents Integer type is a 32-bit signed integer. */
            if (!filter_json_int64(v, &iv) || iv < INT32_MIN || iv > INT32_MAX)
                return say(msg, msglen, FILTER_EVENT_EINVALID,
                           "Extension attribute '%s' must be a string, a boolean or an integer "
                           "between -2147483648 and 2147483647.",
                           shown);
            snprintf(e->num, sizeof e->num, "%lld", (long long)iv);
            e->value = (str_t){e->num, strlen(e->num)};
            e->kind = FILTER_EXT_INTEGER;
            break;
        default:
            return say(msg, msglen, FILTER_EVENT_EINVALID,
                       "Extension attribute '%s' must be a string, a boolean or an integer.",
                       shown);
        }
        e->name = (str_t){k, kn};
        d->n_exts++;
    }

    /* Altinn rules come after every CloudEvents rule. */
    const ext_ref_t *res = NULL;
    for (size_t i = 0; i < d->n_exts; i++)
        if (is_name(d->exts[i].name.s, d->exts[i].name.len, "resource")) res = &d->exts[i];
    if (!res || !res->value.len)
        return say(msg, msglen, FILTER_EVENT_EALTINN, "A 'resource' property must be defined.");
    if (!filter_urn_valid(res->value.s, res->value.len))
        return say(msg, msglen, FILTER_EVENT_EALTINN, "'Resource' must be a valid urn.");
    return 0;
}

/* Every string written here comes from the parsed document (whose reader checked its UTF-8) or is
 * ASCII made here, so the writer need not check it again. */
static void put_member(filter_buf_t *b, const char *name, const str_t *v, int *first)
{
    if (!*first) filter_buf_append(b, ",", 1);
    *first = 0;
    filter_buf_json_string_valid(b, name, strlen(name));
    filter_buf_append(b, ":", 1);
    filter_buf_json_string_valid(b, v->s, v->len);
}

/* Copies s into the block at *pos and returns it NUL-terminated. */
static const char *place(char **pos, const char *s, size_t n)
{
    char *p = *pos;
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    *pos = p + n + 1;
    return p;
}

static const str_t application_json = {"application/json", 16};

int filter_event_from_json(const filter_json_t *obj, filter_event_t **out, char *msg, size_t msglen)
{
    draft_t d;
    memset(&d, 0, sizeof d);
    int rc = validate(obj, &d, msg, msglen);
    if (rc) {
        draft_fini(&d);
        return rc;
    }
    if (d.data && !d.core[A_CONTENTTYPE].s) d.core[A_CONTENTTYPE] = application_json;

    /* The canonical JSON; data_json is copied out of it. */
    filter_buf_t b;
    filter_buf_init(&b);
    /* The canonical form is no longer than the input but for the quotes around coerced extension
     * values and the datacontenttype default: with this room it is written without a realloc. */
    filter_buf_reserve(&b, (obj->raw ? obj->raw_len : 0) + 2 * d.n_exts + 64);
    int first = 1;
    filter_buf_append(&b, "{", 1);
    for (int a = 0; a < A_N; a++)
        if (d.core[a].s) put_member(&b, core_names[a], &d.core[a], &first);
    for (size_t i = 0; i < d.n_exts; i++) {
        filter_buf_append(&b, ",", 1);
        filter_buf_json_string_valid(&b, d.exts[i].name.s, d.exts[i].name.len);
        filter_buf_append(&b, ":", 1);
        filter_buf_json_string_valid(&b, d.exts[i].value.s, d.exts[i].value.len);
    }
    size_t data_off = 0, data_len = 0;
    if (d.data) {
        filter_buf_puts(&b, ",\"data\":");
        data_off = b.len;
        /* a container is copied as it was written (already parsed, so valid): re-serialising it
         * was the largest cost of a publish */
        if (d.data->raw)
            filter_buf_json_compact(&b, d.data->raw, d.data->raw_len);
        else
            filter_buf_json_value(&b, d.data);
        data_len = b.len - data_off;
    } else if (d.has_b64) {
        put_member(&b, "data_base64", &d.data_base64, &first);
    }
    filter_buf_append(&b, "}", 1);
    if (filter_buf_failed(&b)) {
        filter_buf_fini(&b);
        draft_fini(&d);
        return say(msg, msglen, FILTER_EVENT_ENOMEM, "Out of memory.");
    }

    /* One block: the struct, the extension table, then every string. */
    size_t strings = b.len + 1;
    for (int a = 0; a < A_N; a++)
        if (d.core[a].s) strings += d.core[a].len + 1;
    for (size_t i = 0; i < d.n_exts; i++)
        strings += d.exts[i].name.len + 1 + d.exts[i].value.len + 1;
    if (d.has_b64) strings += d.data_base64.len + 1;
    if (d.data) strings += data_len + 1;
    size_t head = sizeof(filter_event_t) + d.n_exts * sizeof(filter_ext_t);
    filter_event_t *ev = malloc(head + strings);
    if (!ev) {
        filter_buf_fini(&b);
        draft_fini(&d);
        return say(msg, msglen, FILTER_EVENT_ENOMEM, "Out of memory.");
    }
    memset(ev, 0, sizeof *ev);
    filter_ext_t *exts = (filter_ext_t *)(ev + 1);
    char *pos = (char *)ev + head;

    const char **fields[A_N] = {&ev->specversion, &ev->id,   &ev->source,          &ev->type,
                                &ev->subject,     &ev->time, &ev->datacontenttype, &ev->dataschema};
    for (int a = 0; a < A_N; a++)
        if (d.core[a].s) *fields[a] = place(&pos, d.core[a].s, d.core[a].len);
    for (size_t i = 0; i < d.n_exts; i++) {
        exts[i].name = place(&pos, d.exts[i].name.s, d.exts[i].name.len);
        exts[i].value = place(&pos, d.exts[i].value.s, d.exts[i].value.len);
        exts[i].kind = d.exts[i].kind;
        if (!strcmp(exts[i].name, "resource"))
            ev->resource = exts[i].value;
        else if (!strcmp(exts[i].name, "resourceinstance"))
            ev->resourceinstance = exts[i].value;
        else if (!strcmp(exts[i].name, "alternativesubject"))
            ev->alternativesubject = exts[i].value;
    }
    ev->exts = exts;
    ev->n_exts = d.n_exts;
    if (d.has_b64) ev->data_base64 = place(&pos, d.data_base64.s, d.data_base64.len);
    ev->json = place(&pos, b.data, b.len);
    ev->json_len = b.len;
    if (d.data) {
        ev->data_json = place(&pos, b.data + data_off, data_len);
        ev->data_json_len = data_len;
    }
    filter_buf_fini(&b);
    draft_fini(&d);
    *out = ev;
    return FILTER_EVENT_OK;
}

int filter_event_parse(const char *buf, size_t len, const filter_event_limits_t *lim,
                       filter_event_t **out, char *msg, size_t msglen)
{
    size_t max_bytes = lim ? lim->max_bytes : 0;
    if (max_bytes && len > max_bytes)
        return say(msg, msglen, FILTER_EVENT_ETOOBIG, "The event is larger than %zu bytes.",
                   max_bytes);
    filter_json_limits_t jl = {0, lim ? lim->max_depth : 0, 0};
    filter_json_doc_t *doc = NULL;
    char err[160];
    int jrc = filter_json_parse(buf, len, &jl, &doc, err, sizeof err);
    if (jrc == FILTER_JSON_ENOMEM) return say(msg, msglen, FILTER_EVENT_ENOMEM, "Out of memory.");
    if (jrc) {
        /* The reader's reasons start with "invalid JSON" for syntax errors; say it once. */
        const char *why = err;
        if (!strncmp(why, "invalid JSON", 12)) {
            why += 12;
            if (*why == ':') why++;
            while (*why == ' ')
                why++;
            if (!strncmp(why, "at byte", 7))
                return say(msg, msglen, FILTER_EVENT_EINVALID, "Invalid JSON %s.", why);
        }
        return say(msg, msglen, FILTER_EVENT_EINVALID, "Invalid JSON: %s.", why);
    }
    int rc = filter_event_from_json(filter_json_root(doc), out, msg, msglen);
    filter_json_doc_free(doc);
    return rc;
}

void filter_event_free(filter_event_t *ev)
{
    free(ev);
}

const char *filter_event_attr(const filter_event_t *ev, const char *name)
{
    if (!ev || !name) return NULL;
    const char *const fields[A_N] = {
        ev->specversion, ev->id,   ev->source,          ev->type,
        ev->subject,     ev->time, ev->datacontenttype, ev->dataschema};
    for (int a = 0; a < A_N; a++)
        if (!strcmp(core_names[a], name)) return fields[a];
    for (size_t i = 0; i < ev->n_exts; i++)
        if (!strcmp(ev->exts[i].name, name)) return ev->exts[i].value;
    return NULL;
}
