#include "server/params.h"

#include <stdlib.h>
#include <string.h>

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes one form-urlencoded component in place. Returns the new length. */
static size_t decode(char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            s[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            s[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            s[o++] = s[i];
        }
    }
    s[o] = '\0';
    return o;
}

int srv_params_parse(const char *raw, srv_param_t *out, int max, char **storage)
{
    size_t n = raw ? strlen(raw) : 0;
    char *buf = malloc(n + 1), *p, *end;
    int count = 0;
    *storage = buf;
    if (!buf) return -1;
    memcpy(buf, raw ? raw : "", n + 1);
    for (p = buf, end = buf + n; p < end;) {
        char *amp = memchr(p, '&', (size_t)(end - p)), *eq;
        if (!amp) amp = end;
        *amp = '\0';
        if (amp > p) {
            if (count == max) return -1;
            eq = memchr(p, '=', (size_t)(amp - p));
            if (eq) {
                *eq = '\0';
                out[count].value = eq + 1;
                out[count].value_len = decode(eq + 1, (size_t)(amp - eq - 1));
            } else {
                out[count].value = amp; /* "" */
                out[count].value_len = 0;
            }
            decode(p, strlen(p));
            out[count].name = p;
            count++;
        }
        p = amp + 1;
    }
    return count;
}

void srv_params_link_value(filter_buf_t *b, const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch < 0x21 || ch == 0x7f)
            filter_buf_printf(b, "%%%02X", ch);
        else
            filter_buf_append(b, &v[i], 1);
    }
}
