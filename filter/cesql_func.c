/* filter/cesql_func: the CESQL built-in functions (spec 3.5) and the casting functions INT, BOOL,
 * STRING, IS_BOOL, IS_INT (kept from the draft spec; the test kit uses them). Each gets arguments
 * already cast to its parameter types and always sets a result, error or not (spec 3.5.3). Strings
 * are counted and cut in Unicode code points. */
#include <string.h>

#include "cesql_int.h"

/* The built-ins share one signature and most use only some of its parameters. */
#pragma GCC diagnostic ignored "-Wunused-parameter"

#define B FILTER_CESQL_BOOLEAN
#define I FILTER_CESQL_INTEGER
#define S FILTER_CESQL_STRING

static val_t int_val(int64_t i)
{
    val_t v = filter_cesql_zero(I);
    v.i = (int32_t)i;
    return v;
}

static val_t bool_val(int b)
{
    val_t v = filter_cesql_zero(B);
    v.b = b;
    return v;
}

static val_t str_val(const char *s, size_t len)
{
    val_t v = filter_cesql_zero(S);
    v.s = s;
    v.len = len;
    return v;
}

/* ---- UTF-8 ---- */

/* Index of the code point after the one at i (stray continuation bytes ride along). */
static size_t next_cp(const char *s, size_t len, size_t i)
{
    i++;
    while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80)
        i++;
    return i;
}

static size_t count_cp(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* Byte offset of code point number k (0-based); len when k is past the end. */
static size_t cp_offset(const char *s, size_t len, size_t k)
{
    size_t i = 0;
    while (k-- && i < len)
        i = next_cp(s, len, i);
    return i;
}

/* Decodes the code point at s[i]; returns its byte length (at least 1). Malformed input decodes to
 * U+FFFD so callers leave it as it is. */
static size_t decode(const unsigned char *s, size_t len, size_t i, uint32_t *cp)
{
    unsigned char c = s[i];
    size_t n = c < 0x80             ? 1
               : (c & 0xE0) == 0xC0 ? 2
               : (c & 0xF0) == 0xE0 ? 3
               : (c & 0xF8) == 0xF0 ? 4
                                    : 0;
    if (!n || i + n > len) {
        *cp = 0xFFFD;
        return 1;
    }
    uint32_t v = n == 1 ? c : n == 2 ? c & 0x1Fu : n == 3 ? c & 0x0Fu : c & 0x07u;
    for (size_t k = 1; k < n; k++) {
        if ((s[i + k] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (s[i + k] & 0x3Fu);
    }
    *cp = v;
    return n;
}

static size_t encoded_len(uint32_t cp)
{
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

static void encode(uint32_t cp, char *out)
{
    size_t n = encoded_len(cp);
    if (n == 1) {
        out[0] = (char)cp;
        return;
    }
    static const unsigned char lead[] = {0, 0, 0xC0, 0xE0, 0xF0};
    for (size_t k = n - 1; k > 0; k--) {
        out[k] = (char)(0x80 | (cp & 0x3F));
        cp >>= 6;
    }
    out[0] = (char)(lead[n] | cp);
}

/* Unicode White_Space (PropList.txt). */
static int is_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* Latin Extended-A alternates upper/lower in pairs: 1 if cp is the capital of its pair, 0 if the
 * small letter, -1 outside the paired ranges. */
static int ext_a_upper(uint32_t c)
{
    if ((c >= 0x100 && c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
        return c % 2 == 0;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return c % 2 == 1;
    return -1;
}

/* Simple one-to-one case mappings for the scripts a European event server meets most: ASCII,
 * Latin-1 (æ ø å), Latin Extended-A, Greek and Cyrillic. Mappings that change the encoded length
 * (ı, ſ, ß) are not done, so the output never outgrows the input. */
static uint32_t to_upper(uint32_t c)
{
    if (c >= 'a' && c <= 'z') return c - 32;
    if (c < 0x80) return c;
    if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return c - 32;
    if (c == 0xFF) return 0x178;
    if (c == 0xB5) return 0x39C;
    if (ext_a_upper(c) == 0) return c - 1;
    if (c >= 0x3B1 && c <= 0x3C9) return c == 0x3C2 ? 0x3A3 : c - 32;
    if (c == 0x3AC) return 0x386;
    if (c >= 0x3AD && c <= 0x3AF) return c - 37;
    if (c == 0x3CC) return 0x38C;
    if (c == 0x3CD || c == 0x3CE) return c - 63;
    if (c >= 0x430 && c <= 0x44F) return c - 32;
    if (c >= 0x450 && c <= 0x45F) return c - 80;
    return c;
}

static uint32_t to_lower(uint32_t c)
{
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c < 0x80) return c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
    if (c == 0x178) return 0xFF;
    if (ext_a_upper(c) == 1) return c + 1;
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
    if (c == 0x386) return 0x3AC;
    if (c >= 0x388 && c <= 0x38A) return c + 37;
    if (c == 0x38C) return 0x3CC;
    if (c == 0x38E || c == 0x38F) return c + 63;
    if (c >= 0x410 && c <= 0x42F) return c + 32;
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    return c;
}

static int map_case(const val_t *a, arena_t *ar, val_t *out, uint32_t (*map)(uint32_t))
{
    const unsigned char *s = (const unsigned char *)a->s;
    size_t len = a->len;
    char *buf = len ? filter_cesql_arena_alloc(ar, len) : NULL;
    if (len && !buf) {
        *out = str_val("", 0);
        return FILTER_CESQL_E_GENERIC;
    }
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = decode(s, len, i, &cp);
        uint32_t m = cp == 0xFFFD ? cp : map(cp);
        if (m != cp && encoded_len(m) == n)
            encode(m, buf + i);
        else
            memcpy(buf + i, s + i, n);
        i += n;
    }
    *out = str_val(buf ? buf : "", len);
    return 0;
}

/* ---- the functions ---- */

static int f_length(const val_t *a, size_t n, arena_t *ar, val_t *out)
{
    size_t c = count_cp(a[0].s, a[0].len);
    *out = int_val(c > INT32_MAX ? INT32_MAX : (int64_t)c);
    return 0;
}

static int concat(const val_t *sep, const val_t *a, size_t n, arena_t *ar, val_t *out)
{
    if (n == 0) {
        *out = str_val("", 0);
        return 0;
    }
    if (n == 1) {
        *out = a[0];
        return 0;
    }
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += a[i].len + (sep && i ? sep->len : 0);
    char *buf = filter_cesql_arena_alloc(ar, total ? total : 1);
    if (!buf) {
        *out = str_val("", 0);
        return FILTER_CESQL_E_GENERIC;
    }
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (sep && i) {
            memcpy(buf + pos, sep->s, sep->len);
            pos += sep->len;
        }
        memcpy(buf + pos, a[i].s, a[i].len);
        pos += a[i].len;
    }
    *out = str_val(buf, total);
    return 0;
}

static int f_concat(const val_t *a, size_t n, arena_t *ar, val_t *out)
{
    return concat(NULL, a, n, ar, out);
}

static int f_concat_ws(const val_t *a, size_t n, arena_t *ar, val_t *out)
{
    return concat(&a[0], a + 1, n - 1, ar, out);
}

static int f_lower(const val_t *a, size_t n, arena_t *ar, val_t *out)
{
    return map_case(&a[0], ar, out, to_lower);
}

static int f_upper(const val_t *a, size_t n, arena_t *ar, val_t *out)
{
    return map_case(&a[0], ar, out, to_upper);
}

/* A slice of the argument: no copy. */
static int f_trim(const val_t *a, size_t n, arena_t *ar, val_t *out)
{
    const unsigned char *s = (const unsigned char *)a[0].s;
    size_t b = 0, e = a[0].len;
    while (b < e) {
        uint32_t cp;
        size_t k = decode(s, e, b, &cp);
        if (!is_space(cp)) break;
        b += k;
    }
    while (e > b) {
        size_t st = e - 1;
        while (st > b && (s[st] & 0xC0) == 0x80)
            st--;
        uint32_t cp;
        if (decode(s, e, st, &cp) != e - st || !is_space(cp)) break;
        e = st;
    }
    *out = str_val(a[0].s + b, e - b);
    return 0;
}

static int f_left(const val_t *a, size_t n, arena_t *ar, val_t *out)
{
    *out = a[0];
    if (a[1].i < 0) return FILTER_CESQL_E_FUNCTION_EVALUATION;
    out->len = cp_offset(a[0].s, a[0].len, (size_t)a[1].i);
    return 0;
}

static int f_right(const val_t *a, size_t n, arena_t *ar, val_t *out)
{
    *out = a[0];
    if (a[1].i < 0) return FILTER_CESQL_E_FUNCTION_EVALUATION;
    size_t total = count_cp(a[0].s, a[0].len);
    if ((size_t)a[1].i >= total) return 0;
    size_t off = cp_offset(a[0].s, a[0].len, total - (size_t)a[1].i);
    *out = str_val(a[0].s + off, a[0].len - off);
    return 0;
}

/* SUBSTRING(x, pos[, len]): 1-based pos, negative counts from the end, 0 gives "". */
static int f_substring(const val_t *a, size_t n, arena_t *ar, val_t *out)
{
    int64_t total = (int64_t)count_cp(a[0].s, a[0].len);
    int64_t pos = a[1].i;
    *out = str_val("", 0);
    if (pos > total || pos < -total) return FILTER_CESQL_E_FUNCTION_EVALUATION;
    if (n == 3 && a[2].i < 0) return FILTER_CESQL_E_FUNCTION_EVALUATION;
    if (pos == 0) return 0;
    int64_t start = pos > 0 ? pos - 1 : total + pos;
    int64_t count = total - start;
    if (n == 3 && a[2].i < count) count = a[2].i;
    size_t b = cp_offset(a[0].s, a[0].len, (size_t)start);
    size_t e = b;
    for (int64_t k = 0; k < count && e < a[0].len; k++)
        e = next_cp(a[0].s, a[0].len, e);
    *out = str_val(a[0].s + b, e - b);
    return 0;
}

static int f_abs(const val_t *a, size_t n, arena_t *ar, val_t *out)
{
    if (a[0].i == INT32_MIN) {
        *out = int_val(INT32_MAX);
        return FILTER_CESQL_E_MATH;
    }
    *out = int_val(a[0].i < 0 ? -(int64_t)a[0].i : a[0].i);
    return 0;
}

static int explicit_cast(const val_t *a, int t, arena_t *ar, val_t *out)
{
    *out = a[0];
    return filter_cesql_cast(out, t, 1, ar);
}

static int f_int(const val_t *a, size_t n, arena_t *ar, val_t *out)
{
    return explicit_cast(a, I, ar, out);
}

static int f_bool(const val_t *a, size_t n, arena_t *ar, val_t *out)
{
    return explicit_cast(a, B, ar, out);
}

static int f_string(const val_t *a, size_t n, arena_t *ar, val_t *out)
{
    return explicit_cast(a, S, ar, out);
}

static int f_is_bool(const val_t *a, size_t n, arena_t *ar, val_t *out)
{
    int b;
    *out = bool_val(a[0].type == B ||
                    (a[0].type == S && filter_cesql_parse_bool(a[0].s, a[0].len, &b)));
    return 0;
}

static int f_is_int(const val_t *a, size_t n, arena_t *ar, val_t *out)
{
    int32_t i;
    *out = bool_val(a[0].type == I ||
                    (a[0].type == S && filter_cesql_parse_int(a[0].s, a[0].len, &i)));
    return 0;
}

#define ANY FILTER_CESQL_ANY

/* Two definitions of one name differ in arity only (spec 3.5); SUBSTRING's two are one entry with
 * an optional third argument of the same type. */
const cesql_func_t filter_cesql_funcs[] = {
    {"LENGTH", 1, 1, I, 1, {S}, S, f_length},
    {"CONCAT", 0, VARIADIC, S, 0, {0}, S, f_concat},
    {"CONCAT_WS", 1, VARIADIC, S, 1, {S}, S, f_concat_ws},
    {"LOWER", 1, 1, S, 1, {S}, S, f_lower},
    {"UPPER", 1, 1, S, 1, {S}, S, f_upper},
    {"TRIM", 1, 1, S, 1, {S}, S, f_trim},
    {"LEFT", 2, 2, S, 2, {S, I}, S, f_left},
    {"RIGHT", 2, 2, S, 2, {S, I}, S, f_right},
    {"SUBSTRING", 2, 3, S, 3, {S, I, I}, S, f_substring},
    {"ABS", 1, 1, I, 1, {I}, I, f_abs},
    {"INT", 1, 1, I, 1, {ANY}, ANY, f_int},
    {"BOOL", 1, 1, B, 1, {ANY}, ANY, f_bool},
    {"STRING", 1, 1, S, 1, {ANY}, ANY, f_string},
    {"IS_BOOL", 1, 1, B, 1, {ANY}, ANY, f_is_bool},
    {"IS_INT", 1, 1, B, 1, {ANY}, ANY, f_is_int},
};

const size_t filter_cesql_n_funcs = sizeof filter_cesql_funcs / sizeof filter_cesql_funcs[0];

int filter_cesql_func_find(const char *name, size_t len)
{
    for (size_t i = 0; i < filter_cesql_n_funcs; i++) {
        const char *f = filter_cesql_funcs[i].name;
        if (strlen(f) != len) continue;
        size_t k = 0;
        while (k < len) {
            char c = name[k];
            if (c >= 'a' && c <= 'z') c = (char)(c - 32);
            if (c != f[k]) break;
            k++;
        }
        if (k == len) return (int)i;
    }
    return -1;
}
