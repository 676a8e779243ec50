/* filter/cesql_lex: the CESQL lexer, shared by the parser (cesql_parse.c) only. Not a public
 * header. */
#ifndef HENDELSE_FILTER_CESQL_LEX_H
#define HENDELSE_FILTER_CESQL_LEX_H

#include <stddef.h>
#include <stdint.h>

enum {
    T_EOF,
    T_LPAREN,
    T_RPAREN,
    T_COMMA,
    T_PLUS,
    T_MINUS,
    T_STAR,
    T_SLASH,
    T_PERCENT,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_INT,  /* unsigned digits; ival saturates above 2^31 */
    T_STR,  /* start/end include the quotes */
    T_WORD, /* identifier or function name */
    /* keywords */
    T_AND,
    T_OR,
    T_XOR,
    T_NOT,
    T_LIKE,
    T_IN,
    T_EXISTS,
    T_TRUE,
    T_FALSE,
};

typedef struct {
    int kind;
    size_t start, end; /* byte range in the source */
    int64_t ival;
} cesql_tok_t;

/* The source text and the first error met while scanning or parsing it. */
typedef struct {
    const char *src;
    size_t len;
    int rc; /* first error (a negative code), 0 while all is well */
    char *err;
    size_t errlen;
} cesql_lexer_t;

/* Records the first error: rc and the message (printf format) into err. Later calls do nothing. */
void filter_cesql_say(cesql_lexer_t *lx, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Scans the token at pos into *t and returns the position after it. On a lexical error records it
 * (filter_cesql_say) and returns a T_EOF token. Pure: the caller decides whether to move on, so it
 * can peek. */
size_t filter_cesql_scan(cesql_lexer_t *lx, size_t pos, cesql_tok_t *t);

/* Describes token t for a message: "'AND'" (cut to 24 bytes at a character boundary), or "end of
 * expression". */
void filter_cesql_describe(const cesql_lexer_t *lx, const cesql_tok_t *t, char *buf, size_t n);

/* ASCII case helpers (keywords, names). */
int filter_cesql_upper(int c);
int filter_cesql_lower(int c);

#endif
