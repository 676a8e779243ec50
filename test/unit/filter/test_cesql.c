/* Unit tests for filter/cesql beyond the conformance kit: compile errors and their messages,
 * precedence and grouping, overflow, Unicode in the string functions, scratch memory, the
 * filter_event_t accessor with typed extensions, and filter_cesql_matches. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "filter/cesql.h"
#include "filter/event.h"

/* ---- a tiny attribute map ---- */

typedef struct {
    const char *name;
    filter_cesql_value_t v;
} attr_t;

typedef struct {
    const attr_t *a;
    size_t n;
    int calls;
} attrs_t;

static int map_attr(void *ctx, const char *name, filter_cesql_value_t *out)
{
    attrs_t *m = ctx;
    m->calls++;
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->a[i].name, name)) {
            *out = m->a[i].v;
            return 1;
        }
    return 0;
}

static const attr_t base_attrs[] = {
    {"id", {FILTER_CESQL_STRING, 0, 0, "id-1", 4, NULL}},
    {"type", {FILTER_CESQL_STRING, 0, 0, "order.created", 13, NULL}},
    {"source", {FILTER_CESQL_STRING, 0, 0, "https://x.example/o", 19, NULL}},
    {"subject", {FILTER_CESQL_STRING, 0, 0, "/party/50001", 12, NULL}},
    {"n", {FILTER_CESQL_INTEGER, 0, 7, NULL, 0, NULL}},
    {"flag", {FILTER_CESQL_BOOLEAN, 1, 0, NULL, 0, NULL}},
    {"name", {FILTER_CESQL_STRING, 0, 0, "Blåbær Ærlig", 15, NULL}},
};

static attrs_t base = {base_attrs, sizeof base_attrs / sizeof base_attrs[0], 0};

static filter_cesql_t *last; /* the expression of the last run(): results may point into it */

/* Compiles and evaluates; returns the error kind, or -1 when it did not compile. The expression
 * lives until the next run(). */
static int run(const char *expr, filter_cesql_value_t *out)
{
    filter_cesql_free(last);
    last = NULL;
    char msg[200];
    memset(out, 0, sizeof *out);
    if (filter_cesql_compile(expr, strlen(expr), &last, msg, sizeof msg)) {
        printf("#   compile failed: %s: %s\n", expr, msg);
        return -1;
    }
    return filter_cesql_eval(last, map_attr, &base, out);
}

static int is_int(const char *expr, int32_t want, int want_err)
{
    filter_cesql_value_t v;
    int err = run(expr, &v);
    int good = err == want_err && v.type == FILTER_CESQL_INTEGER && v.i == want;
    if (!good) printf("#   %s: got type %d value %d error %d\n", expr, (int)v.type, (int)v.i, err);
    filter_cesql_value_fini(&v);
    return good;
}

static int is_bool(const char *expr, int want, int want_err)
{
    filter_cesql_value_t v;
    int err = run(expr, &v);
    int good = err == want_err && v.type == FILTER_CESQL_BOOLEAN && !v.b == !want;
    if (!good) printf("#   %s: got type %d value %d error %d\n", expr, (int)v.type, v.b, err);
    filter_cesql_value_fini(&v);
    return good;
}

static int is_str(const char *expr, const char *want, int want_err)
{
    filter_cesql_value_t v;
    int err = run(expr, &v);
    int good = err == want_err && v.type == FILTER_CESQL_STRING && v.len == strlen(want) &&
               !memcmp(v.s, want, v.len);
    if (!good)
        printf("#   %s: got type %d \"%.*s\" error %d\n", expr, (int)v.type,
               v.type == FILTER_CESQL_STRING ? (int)v.len : 0, v.s ? v.s : "", err);
    filter_cesql_value_fini(&v);
    return good;
}

/* Expects a compile failure with code rc and a message containing want. */
static int compile_err(const char *expr, size_t len, int rc, const char *want)
{
    filter_cesql_t *e = (filter_cesql_t *)&e; /* must stay untouched */
    filter_cesql_t *const sentinel = e;
    char msg[200] = "";
    int got = filter_cesql_compile(expr, len, &e, msg, sizeof msg);
    int good = got == rc && e == sentinel && strstr(msg, want);
    if (!good) printf("#   got rc %d, message \"%s\"\n", got, msg);
    return good;
}

#define CERR(expr, rc, want) compile_err(expr, strlen(expr), rc, want)

static void test_compile_errors(void)
{
    const int P = -FILTER_CESQL_E_PARSE, F = -FILTER_CESQL_E_MISSING_FUNCTION;
    ok(CERR("", P, "empty expression"), "compile: empty");
    ok(CERR("   ", P, "empty expression"), "compile: blanks only");
    ok(CERR("type = ", P, "syntax error at 8: expected an expression but found end of expression"),
       "compile: missing operand, with its position");
    ok(CERR("(1 + 2", P, "syntax error at 7: expected ')'"), "compile: unclosed parenthesis");
    ok(CERR("1 + 2)", P, "syntax error at 6: expected an operator or end of expression"),
       "compile: stray ')'");
    ok(CERR("'abc", P, "syntax error at 1: string literal is not terminated"),
       "compile: unterminated string");
    ok(CERR("'abc\\'", P, "not terminated"), "compile: escaped closing quote");
    ok(CERR("a ! b", P, "syntax error at 3: '!' must be followed by '='"), "compile: lone !");
    ok(CERR("a # b", P, "syntax error at 3: unexpected character '#'"), "compile: bad char");
    ok(CERR("a = 'x' é", P, "unexpected character 'é'"), "compile: non-ASCII outside strings");
    ok(CERR("x LIKE 123", P, "expected a string literal pattern after LIKE"),
       "compile: LIKE needs a literal");
    ok(CERR("x LIKE y", P, "pattern after LIKE"), "compile: LIKE of an attribute");
    ok(CERR("x IN ()", P, "expected an expression"), "compile: empty IN set");
    ok(CERR("x IN 'a'", P, "expected '(' after IN"), "compile: IN without a set");
    ok(CERR("x NOT 'a'", P, "expected an operator"), "compile: NOT as infix");
    ok(CERR("EXISTS 'a'", P, "expected an attribute name after EXISTS"), "compile: EXISTS literal");
    ok(CERR("my_ext = 1", P, "'my_ext' is not an attribute name"), "compile: underscore name");
    ok(CERR("2147483648", P, "integer literal out of the 32-bit range"), "compile: int too big");
    ok(CERR("-2147483649", P, "out of the 32-bit range"), "compile: int too small");
    ok(CERR("99999999999999999999999", P, "out of the 32-bit range"), "compile: huge int");
    ok(CERR("+ a", P, "expected a number after '+'"), "compile: unary plus of a name");
    ok(CERR("FOO(1)", F, "unknown function FOO"), "compile: unknown function");
    ok(CERR("is_string('a')", F, "unknown function IS_STRING"), "compile: unknown, upper-cased");
    ok(CERR("LEFT('a')", F, "function LEFT takes 2 arguments, got 1"), "compile: LEFT arity");
    ok(CERR("length()", F, "function LENGTH takes 1 argument, got 0"), "compile: LENGTH arity");
    ok(CERR("SUBSTRING('a')", F, "function SUBSTRING takes 2 or 3 arguments, got 1"),
       "compile: SUBSTRING arity");
    ok(CERR("SUBSTRING('a', 1, 2, 3)", F, "takes 2 or 3 arguments, got 4"),
       "compile: SUBSTRING too many");
    ok(CERR("CONCAT_WS()", F, "function CONCAT_WS takes at least 1 argument, got 0"),
       "compile: CONCAT_WS arity");
    ok(CERR("FOO(1) AND (", P, "syntax error"),
       "compile: a syntax error wins over an earlier unknown function");
    ok(compile_err("a = 'x\0y'", 9, P, "NUL byte"), "compile: NUL byte");
    ok(compile_err("a = '\xff'", 7, P, "not valid UTF-8"), "compile: invalid UTF-8");

    static char deep[1000];
    memset(deep, '(', 300);
    deep[300] = '1';
    deep[301] = '\0';
    ok(CERR(deep, P, "nested too deeply"), "compile: parentheses nested too deeply");
    memset(deep, 0, 1000);
    for (int i = 0; i < 200; i++)
        strcat(deep, "-");
    strcat(deep, "a");
    ok(CERR(deep, P, "nested too deeply"), "compile: unary chain too deep");

    /* A long left-deep chain of one arithmetic operator is as deep as it is long. */
    char *chain = malloc(4000);
    strcpy(chain, "1");
    for (int i = 0; i < 200; i++)
        strcat(chain, " - 1");
    ok(CERR(chain, P, "nested too deeply"), "compile: 200 subtractions are too deep");
    /* A chain of ANDs is one node, so it is not. */
    strcpy(chain, "TRUE");
    for (int i = 0; i < 300; i++)
        strcat(chain, " AND TRUE");
    filter_cesql_t *e = NULL;
    ok(filter_cesql_compile(chain, strlen(chain), &e, NULL, 0) == 0, "compile: 300 ANDs compile");
    filter_cesql_free(e);
    free(chain);

    size_t big = FILTER_CESQL_MAX_LEN + 1;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    huge[0] = '1';
    ok(compile_err(huge, big, P, "longer than"), "compile: text over the length limit");
    /* Many nodes within the length limit: an IN set of 5000 elements. */
    strcpy(huge, "1 IN (1");
    size_t pos = strlen(huge);
    for (int i = 0; i < 5000; i++) {
        memcpy(huge + pos, ",1", 2);
        pos += 2;
    }
    huge[pos++] = ')';
    ok(compile_err(huge, pos, P, "more than 4096 nodes"), "compile: too many nodes");
    free(huge);

    char small[16];
    ok(filter_cesql_compile("FOO(", 4, &e, small, sizeof small) == P && strlen(small) == 15,
       "compile: message truncated to errlen");
    ok(filter_cesql_compile("FOO(", 4, &e, NULL, 0) == P, "compile: NULL err buffer");
}

static void test_precedence(void)
{
    ok(is_int("1 + 2 * 3", 7, 0), "prec: * over +");
    ok(is_int("2 - 3 - 4", -5, 0), "prec: - groups left");
    ok(is_int("100 / 10 / 5", 2, 0), "prec: / groups left");
    ok(is_int("7 % 4 * 2", 6, 0), "prec: %% and * share a level, left to right");
    ok(is_int("4-1", 3, 0), "prec: binary minus without spaces");
    ok(is_int("2*-3", -6, 0), "prec: unary minus after an operator");
    ok(is_int("- -3", 3, 0), "prec: double negation with a space");
    ok(is_int("+5 + +5", 10, 0), "prec: signed literals");
    ok(is_int("-n * 2", -14, 0), "prec: unary minus of an attribute");
    ok(is_bool("1 + 1 = 2", 1, 0), "prec: arithmetic over comparison");
    ok(is_bool("TRUE OR FALSE AND FALSE", 0, 0), "prec: AND/OR share a level, left to right");
    ok(is_bool("FALSE AND TRUE OR TRUE", 1, 0), "prec: (F AND T) OR T");
    ok(is_bool("TRUE OR (FALSE AND FALSE)", 1, 0), "prec: parentheses regroup");
    ok(is_bool("TRUE XOR TRUE XOR TRUE", 1, 0), "prec: XOR chain is parity");
    ok(is_bool("TRUE AND TRUE XOR TRUE", 0, 0), "prec: (T AND T) XOR T");
    ok(is_bool("NOT TRUE = FALSE", 1, 0), "prec: NOT binds tighter than =");
    ok(is_bool("NOT FALSE AND FALSE", 0, 0), "prec: NOT binds tighter than AND");
    ok(is_int("1 + 1 IN (2)", 1, 0), "prec: IN binds tighter than +: 1 + (1 IN (2))");
    ok(is_bool("type LIKE 'order.%' = TRUE", 1, 0), "prec: LIKE over =");
    ok(is_bool("NOT EXISTS nope AND EXISTS type", 1, 0), "prec: EXISTS as an operand of NOT");
    ok(is_bool("tYpE = 'order.created' aNd ID = 'id-1'", 1, 0), "case-insensitive names");
    ok(is_bool("1 < 2 = TRUE", 1, 0), "comparisons group left");
}

static void test_values_and_errors(void)
{
    const int M = FILTER_CESQL_E_MATH, C = FILTER_CESQL_E_CAST;
    const int MA = FILTER_CESQL_E_MISSING_ATTRIBUTE, FE = FILTER_CESQL_E_FUNCTION_EVALUATION;
    ok(is_int("2147483647 + 1", 0, M), "overflow: + is a math error, 0");
    ok(is_int("-2147483648 - 1", 0, M), "overflow: -");
    ok(is_int("65536 * 65536", 0, M), "overflow: *");
    ok(is_int("-2147483648 / -1", 0, M), "overflow: INT_MIN / -1");
    ok(is_int("-2147483648 % -1", 0, 0), "INT_MIN %% -1 is 0");
    ok(is_int("-(-2147483648)", 2147483647, M), "overflow: unary minus, like ABS");
    /* fuzzing: a call without arguments before anything was stacked (NULL + 0 in the parser) */
    ok(is_str("CONCAT()", "", 0), "CONCAT() with no arguments is ''");
    ok(CERR("ABS()", -FILTER_CESQL_E_MISSING_FUNCTION, "takes 1 argument, got 0"),
       "ABS() first in a fresh parser");
    ok(is_bool("'' LIKE ''", 1, 0), "an empty LIKE pattern as the only one (no pattern array)");
    ok(is_bool("'a' NOT LIKE ''", 1, 0), "'a' NOT LIKE ''");
    ok(is_int("-7 / 2", -3, 0), "division truncates toward zero");
    ok(is_int("-7 % 2", -1, 0), "remainder has the dividend's sign");
    ok(is_int("7 % -2", 1, 0), "remainder: positive dividend");
    ok(is_int("-2147483648", INT32_MIN, 0), "INT_MIN literal");
    ok(is_int("'abc' + 1", 1, C), "bad cast: operand 0, evaluation goes on");
    ok(is_bool("'+5' = 5", 1, 0), "String -> Integer with a plus sign");
    ok(is_bool("' 5' = 5", 0, C), "String -> Integer rejects blanks");
    ok(is_bool("'2147483648' = 0", 1, C), "String -> Integer overflow: cast error, 0");
    ok(is_bool("5 = TRUE", 0, C), "implicit Integer -> Boolean is a cast error");
    ok(is_bool("BOOL(5) = TRUE", 1, 0), "explicit BOOL(Integer)");
    ok(is_bool("'tRuE' = TRUE", 1, 0), "String -> Boolean ignores case");
    ok(is_bool("n = '7'", 1, 0), "Integer attribute cast to String by the right operand");
    ok(is_bool("n > 5 AND flag", 1, 0), "Integer and Boolean attributes");
    ok(is_bool("nope = 1 OR TRUE", 0, MA), "a missing attribute stops OR too");
    ok(is_bool("TRUE OR nope = 1", 1, 0), "short-circuit skips the missing attribute");
    ok(is_bool("FALSE AND nope", 0, 0), "AND short-circuit");
    ok(is_bool("nope", 0, MA), "a bare missing attribute: Boolean false");
    ok(is_str("CONCAT(nope, 'x')", "", MA), "missing in a function: zero of its type");
    ok(is_bool("1 IN (1, nope)", 1, 0), "IN stops at the first equal element");
    ok(is_bool("1 IN (nope, 1)", 0, MA), "IN: a missing element before the match");
    ok(is_bool("1 NOT IN (2, 3)", 1, 0), "NOT IN");
    ok(is_bool("'7' IN (n)", 1, 0), "IN casts elements to the left type");
    ok(is_bool("'it''s' = \"it's\"", 1, 0), "doubled quote in a string");
    ok(is_bool("\"say \"\"hi\"\"\" = 'say \"hi\"'", 1, 0), "doubled double quote");
    ok(is_str("'a\\\\b'", "a\\b", 0), "\\\\ is one backslash");
    ok(is_str("'a\\nb'", "a\\nb", 0), "other backslash pairs stay as written");
    ok(is_bool("'a\\b' LIKE 'a\\\\b'", 1, 0), "LIKE: \\\\ matches a backslash");
    ok(is_bool("'50%' LIKE '50\\%'", 1, 0), "LIKE: escaped %%");
    ok(is_bool("'500' LIKE '50\\%'", 0, 0), "LIKE: escaped %% is literal");
    ok(is_bool("'æøå' LIKE '___'", 1, 0), "LIKE: _ is one character, not one byte");
    ok(is_bool("'æøå' LIKE '__'", 0, 0), "LIKE: _ count");
    ok(is_bool("'abcabd' LIKE '%abd'", 1, 0), "LIKE: backtracking");
    ok(is_bool("'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaab' LIKE '%a%a%a%a%a%a%a%a%c'", 0, 0),
       "LIKE: no match, bounded work");
    ok(is_bool("'' LIKE '%'", 1, 0), "LIKE: %% matches empty");
    ok(is_bool("'' LIKE '_'", 0, 0), "LIKE: _ needs a character");
    ok(is_bool("'ABC' LIKE 'abc'", 0, 0), "LIKE: case-sensitive");
    ok(is_bool("'x%%y' LIKE 'x%y'", 1, 0), "LIKE: consecutive %%");
    ok(is_bool("subject LIKE '/party/%'", 1, 0), "LIKE: prefix on an attribute");

    ok(is_int("LENGTH('blåbær')", 6, 0), "LENGTH counts characters");
    ok(is_int("LENGTH(name)", 12, 0), "LENGTH of an attribute");
    ok(is_str("LOWER(name)", "blåbær ærlig", 0), "LOWER: Norwegian letters");
    ok(is_str("UPPER(name)", "BLÅBÆR ÆRLIG", 0), "UPPER: Norwegian letters");
    ok(is_str("UPPER('straße ÿ')", "STRAßE Ÿ", 0), "UPPER: ß stays, ÿ maps to Ÿ");
    ok(is_str("LOWER('ΑΒΓ ДЖ Ł')", "αβγ дж ł", 0), "LOWER: Greek, Cyrillic, Latin Ext-A");
    ok(is_str("UPPER('ς')", "Σ", 0), "UPPER: final sigma");
    ok(is_str("TRIM('\t\u00a0 a b \u3000\n')", "a b", 0), "TRIM: Unicode white space");
    ok(is_str("TRIM('   ')", "", 0), "TRIM: all blanks");
    ok(is_str("LEFT('blåbær', 3)", "blå", 0), "LEFT: characters");
    ok(is_str("RIGHT('blåbær', 3)", "bær", 0), "RIGHT: characters");
    ok(is_str("RIGHT('abc', 0)", "", 0), "RIGHT: zero");
    ok(is_str("SUBSTRING('blåbær', 3, 2)", "åb", 0), "SUBSTRING: characters");
    ok(is_str("SUBSTRING('blåbær', -2)", "ær", 0), "SUBSTRING: from the end");
    ok(is_str("SUBSTRING('abc', 2, 100)", "bc", 0), "SUBSTRING: long len");
    ok(is_str("SUBSTRING('abc', 1, -1)", "", FE), "SUBSTRING: negative len");
    ok(is_str("SUBSTRING('abc', 'x')", "", C), "SUBSTRING: uncastable pos: cast error, pos 0");
    ok(is_str("CONCAT('a', 1, TRUE, 'b', 'c', 'd')", "a1truebcd", 0), "CONCAT: 6 args, cast");
    ok(is_str("CONCAT_WS('-', 'a', 'b', 'c', 'd', 'e')", "a-b-c-d-e", 0), "CONCAT_WS: 5 items");
    ok(is_str("STRING(-2147483648)", "-2147483648", 0), "STRING of INT_MIN");
    ok(is_str("STRING(n * 3)", "21", 0), "STRING of a computed Integer");
    ok(is_bool("IS_BOOL('FALSE') AND NOT IS_BOOL(1) AND IS_BOOL(flag)", 1, 0), "IS_BOOL");
    ok(is_bool("IS_INT('-12') AND NOT IS_INT(TRUE) AND NOT IS_INT('1x') AND IS_INT(n)", 1, 0),
       "IS_INT");
    ok(is_int("ABS(-5) + INT('12') + INT(TRUE)", 18, 0), "ABS and INT");
    ok(is_bool("BOOL('x')", 0, C), "BOOL of a bad string");
    ok(is_bool("EXISTS flag AND NOT EXISTS nope", 1, 0), "EXISTS");
}

/* Strings computed past the stack scratch buffer come from the heap and a String result owns its
 * copy; sanitizers and valgrind check the frees. */
static void test_scratch(void)
{
    char expr[3000];
    strcpy(expr, "CONCAT(");
    for (int i = 0; i < 60; i++)
        strcat(expr, i ? ", 'abcdefghijklmnopqrstuvwxyz0123456789'"
                       : "'abcdefghijklmnopqrstuvwxyz0123456789'");
    strcat(expr, ")");
    filter_cesql_value_t v;
    int err = run(expr, &v);
    ok(!err && v.type == FILTER_CESQL_STRING && v.len == 60 * 36 && v.owned && v.s == v.owned &&
           !memcmp(v.s + 36 * 59, "abcdefghijklmnopqrstuvwxyz0123456789", 36),
       "scratch: a 2160-byte CONCAT result is owned by the result");
    filter_cesql_value_fini(&v);
    ok(v.owned == NULL, "scratch: value_fini clears owned");
    filter_cesql_value_fini(&v);

    char *e3 = malloc(8000);
    snprintf(e3, 8000, "LENGTH(UPPER(%s)) = %d AND LOWER(%s) LIKE 'abc%%'", expr, 60 * 36, expr);
    ok(is_bool(e3, 1, 0), "scratch: several heap blocks in one evaluation");
    free(e3);

    ok(is_str("STRING(1)", "1", 0), "scratch: a small computed string is copied out too");
    err = run("STRING(12345)", &v);
    ok(!err && v.owned && v.len == 5, "scratch: stack-buffer string results are owned copies");
    filter_cesql_value_fini(&v);
    err = run("'literal'", &v);
    ok(!err && !v.owned, "scratch: literal results point into the expression");
    filter_cesql_value_fini(&v);
}

static void test_matches(void)
{
    static const char *const cases[][2] = {
        {"type = 'order.created'", "1"},
        {"type = 'order.deleted'", "0"},
        {"'true'", "0"},         /* not a Boolean */
        {"1", "0"},              /* not a Boolean */
        {"flag", "1"},           /* a Boolean attribute */
        {"name", "0"},           /* a String attribute */
        {"nope = 1", "0"},       /* error */
        {"NOT (nope = 1)", "0"}, /* error, even though the value is... false */
        {"NOT 10", "0"},         /* TRUE with a cast error */
        {"TRUE OR nope", "1"},   /* short-circuit: no error */
        {"5 / 0 = 0", "0"},      /* math error */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        filter_cesql_t *e = NULL;
        int rc = filter_cesql_compile(cases[i][0], strlen(cases[i][0]), &e, NULL, 0);
        ok(rc == 0 && filter_cesql_matches(e, map_attr, &base) == atoi(cases[i][1]),
           "matches: %s -> %s", cases[i][0], cases[i][1]);
        filter_cesql_free(e);
    }
    filter_cesql_t *e = NULL;
    filter_cesql_compile("flag", 4, &e, NULL, 0);
    ok(filter_cesql_type(e) == FILTER_CESQL_ANY, "type: bare attribute is ANY");
    filter_cesql_free(e);
    filter_cesql_compile("n + 1", 5, &e, NULL, 0);
    ok(filter_cesql_type(e) == FILTER_CESQL_INTEGER, "type: arithmetic is INTEGER");
    filter_cesql_free(e);
    filter_cesql_compile("UPPER(name)", 11, &e, NULL, 0);
    ok(filter_cesql_type(e) == FILTER_CESQL_STRING, "type: UPPER is STRING");
    filter_cesql_free(e);
    filter_cesql_compile("a = b", 5, &e, NULL, 0);
    ok(filter_cesql_type(e) == FILTER_CESQL_BOOLEAN, "type: comparison is BOOLEAN");
    filter_cesql_free(e);
    filter_cesql_free(NULL);

    /* Evaluation reads attributes only as it needs them. */
    base.calls = 0;
    filter_cesql_compile("type = 'x' AND id = 'y'", 23, &e, NULL, 0);
    filter_cesql_matches(e, map_attr, &base);
    ok(base.calls == 1, "matches: the right side of a false AND is not evaluated");
    filter_cesql_free(e);

    ok(!strcmp(filter_cesql_strerror(FILTER_CESQL_E_MISSING_FUNCTION), "missingFunction") &&
           !strcmp(filter_cesql_strerror(-FILTER_CESQL_E_PARSE), "parse") &&
           !strcmp(filter_cesql_strerror(0), ""),
       "strerror: test kit names");
}

static void test_event_accessor(void)
{
    const char *json =
        "{\"specversion\":\"1.0\",\"id\":\"42\",\"source\":\"https://x.example/o\","
        "\"type\":\"order.created\",\"subject\":\"/party/50001\","
        "\"time\":\"2026-01-01T01:30:00+01:00\",\"resource\":\"urn:altinn:resource:r\","
        "\"myint\":10,\"neg\":-7,\"mybool\":true,\"off\":false,\"mystr\":\"10\"}";
    filter_event_t *ev = NULL;
    char msg[200];
    int rc = filter_event_parse(json, strlen(json), NULL, &ev, msg, sizeof msg);
    ok(rc == 0, "event: parses (%s)", rc ? msg : "ok");
    if (rc) return;
    ok(ev->n_exts == 6 && ev->exts[1].kind == FILTER_EXT_INTEGER &&
           ev->exts[3].kind == FILTER_EXT_BOOLEAN && ev->exts[5].kind == FILTER_EXT_STRING &&
           ev->exts[0].kind == FILTER_EXT_STRING,
       "event: extension kinds recorded");
    static const char *const cases[][2] = {
        {"myint = 10", "1"},
        {"myint + 1 = 11", "1"},
        {"neg < 0 AND ABS(neg) = 7", "1"},
        {"mybool", "1"},
        {"NOT off", "1"},
        {"mybool = 'true'", "1"}, /* Boolean cast to String by the right operand */
        {"mystr", "0"},           /* a String "10", not a Boolean */
        {"mystr = 10 AND myint = '10'", "1"},
        {"type = 'order.created' AND subject LIKE '/party/%'", "1"},
        {"source IN ('a', 'b', 'https://x.example/o')", "1"},
        {"time = '2026-01-01T00:30:00Z'", "1"}, /* normalised by filter/event */
        {"resource LIKE 'urn:altinn:resource:%'", "1"},
        {"EXISTS specversion AND EXISTS id AND EXISTS source AND EXISTS type", "1"},
        {"EXISTS dataschema OR EXISTS datacontenttype", "0"},
        {"EXISTS data", "0"},
        {"dataschema = 'x'", "0"},
        {"specversion = '1.0'", "1"},
        {"id = '42' AND id = 42", "1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        filter_cesql_t *e = NULL;
        char m[200] = "";
        rc = filter_cesql_compile(cases[i][0], strlen(cases[i][0]), &e, m, sizeof m);
        ok(rc == 0 && filter_cesql_matches(e, filter_cesql_event_attr, ev) == atoi(cases[i][1]),
           "event: %s -> %s %s", cases[i][0], cases[i][1], m);
        filter_cesql_free(e);
    }
    filter_cesql_value_t v;
    filter_cesql_t *e = NULL;
    filter_cesql_compile("myint", 5, &e, NULL, 0);
    ok(filter_cesql_eval(e, filter_cesql_event_attr, ev, &v) == 0 &&
           v.type == FILTER_CESQL_INTEGER && v.i == 10,
       "event: an integer extension is an Integer");
    filter_cesql_free(e);
    filter_cesql_compile("dataschema", 10, &e, NULL, 0);
    ok(filter_cesql_eval(e, filter_cesql_event_attr, ev, &v) == FILTER_CESQL_E_MISSING_ATTRIBUTE &&
           v.type == FILTER_CESQL_BOOLEAN && !v.b,
       "event: an absent core attribute is missing");
    filter_cesql_free(e);
    filter_event_free(ev);
}

int main(void)
{
    test_compile_errors();
    test_precedence();
    test_values_and_errors();
    test_scratch();
    test_matches();
    test_event_accessor();
    filter_cesql_free(last);
    return done_testing();
}
