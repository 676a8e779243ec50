/* filter/cesql_lex: the CESQL lexer. Tokens per the spec's grammar (2.2-2.4) and its ANTLR lexer:
 * keywords in any case, words of [A-Za-z0-9_], unsigned integers (a sign is an operator, folded
 * into a literal by the parser), '...' and "..." strings (decoded by the parser). */
#include "cesql_lex.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cesql.h"
#include "json.h"

static const struct {
    const char *word;
    int tok;
} keywords[] = {
    {"AND", T_AND}, {"OR", T_OR},         {"XOR", T_XOR},   {"NOT", T_NOT},     {"LIKE", T_LIKE},
    {"IN", T_IN},   {"EXISTS", T_EXISTS}, {"TRUE", T_TRUE}, {"FALSE", T_FALSE},
};

void filter_cesql_say(cesql_lexer_t *lx, int rc, const char *fmt, ...)
{
    if (lx->rc) return;
    lx->rc = rc;
    if (!lx->err || !lx->errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lx->err, lx->errlen, fmt, ap);
    va_end(ap);
    /* The message quotes expression text; a cut must not leave half a character. */
    size_t n = strlen(lx->err);
    while (n && !filter_utf8_valid(lx->err, n))
        lx->err[--n] = '\0';
}

int filter_cesql_upper(int c)
{
    return c >= 'a' && c <= 'z' ? c - 32 : c;
}

int filter_cesql_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_word(int c)
{
    return is_alpha(c) || is_digit(c) || c == '_';
}

size_t filter_cesql_scan(cesql_lexer_t *lx, size_t pos, cesql_tok_t *t)
{
    const char *s = lx->src;
    size_t n = lx->len;
    while (pos < n && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\r' || s[pos] == '\n'))
        pos++;
    t->start = pos;
    t->ival = 0;
    if (pos >= n) {
        t->kind = T_EOF;
        t->end = pos;
        return pos;
    }
    char c = s[pos];
    char d = pos + 1 < n ? s[pos + 1] : '\0';
    size_t w = 1;
    switch (c) {
    case '(':
        t->kind = T_LPAREN;
        break;
    case ')':
        t->kind = T_RPAREN;
        break;
    case ',':
        t->kind = T_COMMA;
        break;
    case '+':
        t->kind = T_PLUS;
        break;
    case '-':
        t->kind = T_MINUS;
        break;
    case '*':
        t->kind = T_STAR;
        break;
    case '/':
        t->kind = T_SLASH;
        break;
    case '%':
        t->kind = T_PERCENT;
        break;
    case '=':
        t->kind = T_EQ;
        break;
    case '!':
        if (d != '=') {
            filter_cesql_say(lx, -FILTER_CESQL_E_PARSE,
                             "syntax error at %zu: '!' must be followed by '='", pos + 1);
            t->kind = T_EOF;
            return pos;
        }
        t->kind = T_NE;
        w = 2;
        break;
    case '<':
        if (d == '=')
            t->kind = T_LE, w = 2;
        else if (d == '>')
            t->kind = T_NE, w = 2;
        else
            t->kind = T_LT;
        break;
    case '>':
        if (d == '=')
            t->kind = T_GE, w = 2;
        else
            t->kind = T_GT;
        break;
    case '\'':
    case '"': {
        /* A backslash takes the next character with it, and a doubled delimiter is one delimiter
         * (the ANTLR grammar's rule); decoding happens later, in decode_string. */
        size_t i = pos + 1;
        for (;;) {
            if (i >= n) {
                filter_cesql_say(lx, -FILTER_CESQL_E_PARSE,
                                 "syntax error at %zu: string literal is not terminated", pos + 1);
                t->kind = T_EOF;
                return pos;
            }
            if (s[i] == '\\' && i + 1 < n) {
                i += 2;
            } else if (s[i] == c) {
                if (i + 1 < n && s[i + 1] == c) {
                    i += 2;
                } else {
                    i++;
                    break;
                }
            } else {
                i++;
            }
        }
        t->kind = T_STR;
        t->end = i;
        return i;
    }
    default:
        if (is_word((unsigned char)c)) {
            size_t i = pos;
            int digits = 1;
            while (i < n && is_word((unsigned char)s[i])) {
                if (!is_digit((unsigned char)s[i])) digits = 0;
                i++;
            }
            t->end = i;
            if (digits) {
                int64_t v = 0;
                for (size_t k = pos; k < i; k++)
                    if (v <= (int64_t)1 << 32) v = v * 10 + (s[k] - '0');
                t->kind = T_INT;
                t->ival = v;
                return i;
            }
            t->kind = T_WORD;
            for (size_t k = 0; k < sizeof keywords / sizeof keywords[0]; k++) {
                const char *kw = keywords[k].word;
                size_t kl = strlen(kw);
                if (kl != i - pos) continue;
                size_t j = 0;
                while (j < kl && filter_cesql_upper((unsigned char)s[pos + j]) == kw[j])
                    j++;
                if (j == kl) {
                    t->kind = keywords[k].tok;
                    break;
                }
            }
            return i;
        }
        {
            /* Show the whole character, however many bytes it has (the text is valid UTF-8). */
            unsigned char u = (unsigned char)c;
            int cl = u < 0x80 ? 1 : u < 0xE0 ? 2 : u < 0xF0 ? 3 : 4;
            if ((size_t)cl > n - pos) cl = (int)(n - pos);
            filter_cesql_say(lx, -FILTER_CESQL_E_PARSE,
                             "syntax error at %zu: unexpected character '%.*s'", pos + 1, cl,
                             s + pos);
        }
        t->kind = T_EOF;
        return pos;
    }
    t->end = pos + w;
    return pos + w;
}

void filter_cesql_describe(const cesql_lexer_t *lx, const cesql_tok_t *t, char *buf, size_t n)
{
    if (t->kind == T_EOF) {
        snprintf(buf, n, "end of expression");
        return;
    }
    size_t len = t->end - t->start;
    int shown = len > 24 ? 24 : (int)len;
    while (shown > 0 && !filter_utf8_valid(lx->src + t->start, (size_t)shown))
        shown--;
    snprintf(buf, n, "'%.*s%s'", shown, lx->src + t->start, (size_t)shown < len ? "..." : "");
}
