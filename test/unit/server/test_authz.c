/* Unit tests for server/authz.c (policy authorizer) and server/register.c (register table):
 * globs, {consumer}, first-match-wins, default deny, actions, subjects, allow-all, every load
 * error, a 1,000-rule policy against a naive reference implementation, and the register lookups.
 * Files are written into a temporary directory that is also the working directory, so error
 * messages can be compared whole ("policy.json: ..."). */
#include "filter/json.h"
#include "server/authz.h"
#include "server/register.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[256];

/* ---- helpers ---- */

static void write_file(const char *name, const char *content, size_t len)
{
    FILE *f = fopen(name, "wb");
    if (!f || fwrite(content, 1, len, f) != len) {
        perror(name);
        exit(2);
    }
    fclose(f);
}

static srv_authz_t *load_policy(const char *json, char *err, size_t errlen)
{
    write_file("policy.json", json, strlen(json));
    srv_authz_t *a = srv_authz_load("policy.json", err, errlen);
    unlink("policy.json");
    return a;
}

static srv_register_t *load_register(const char *json, char *err, size_t errlen)
{
    write_file("register.json", json, strlen(json));
    srv_register_t *r = srv_register_load("register.json", err, errlen);
    unlink("register.json");
    return r;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A small deterministic generator so failures reproduce. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

/* ---- the reference: a naive linear scan with a dynamic-programming glob matcher ---- */

static int ref_glob(const char *p, const char *s)
{
    size_t pn = strlen(p), sn = strlen(s);
    /* row[j]: p[0..i) matches s[0..j) */
    unsigned char *prev = calloc(sn + 1, 1), *cur = calloc(sn + 1, 1);
    prev[0] = 1;
    for (size_t i = 1; i <= pn; i++) {
        cur[0] = prev[0] && p[i - 1] == '*';
        for (size_t j = 1; j <= sn; j++) {
            if (p[i - 1] == '*')
                cur[j] = prev[j] || cur[j - 1];
            else
                cur[j] = prev[j - 1] && p[i - 1] == s[j - 1];
        }
        unsigned char *t = prev;
        prev = cur;
        cur = t;
    }
    int r = prev[sn];
    free(prev);
    free(cur);
    return r;
}

/* p with every "{consumer}" replaced by id (ids in these tests contain no '*'). */
static char *ref_subst(const char *p, const char *id)
{
    filter_buf_t b = {0};
    for (;;) {
        const char *q = strstr(p, "{consumer}");
        if (!q) break;
        filter_buf_append(&b, p, (size_t)(q - p));
        filter_buf_puts(&b, id);
        p = q + 10;
    }
    filter_buf_puts(&b, p);
    filter_buf_append(&b, "", 1);
    return filter_buf_steal(&b, NULL);
}

typedef struct {
    int permit;
    unsigned actions;
    char resource[96], consumer[96], subject[96];
    int has_subject;
} ref_rule_t;

static int ref_check(const ref_rule_t *rules, size_t n, int action, const char *res,
                     const char *cons, const char *subj, size_t *decided_by)
{
    const char *slash = strrchr(cons, '/');
    const char *id = slash ? slash + 1 : cons;
    for (size_t i = 0; i < n; i++) {
        const ref_rule_t *r = &rules[i];
        if (!(r->actions & (1u << action))) continue;
        if (r->has_subject && !subj) continue;
        if (!ref_glob(r->resource, res) || !ref_glob(r->consumer, cons)) continue;
        if (r->has_subject) {
            char *p = ref_subst(r->subject, id);
            int m = ref_glob(p, subj);
            free(p);
            if (!m) continue;
        }
        *decided_by = i;
        return r->permit;
    }
    *decided_by = n;
    return 0;
}

static char *ref_policy_json(const ref_rule_t *rules, size_t n)
{
    static const char *const names[] = {"publish", "subscribe", "read"};
    filter_buf_t b = {0};
    filter_buf_puts(&b, "{\"rules\":[");
    for (size_t i = 0; i < n; i++) {
        const ref_rule_t *r = &rules[i];
        filter_buf_printf(&b, "%s{\"effect\":\"%s\",\"actions\":[", i ? "," : "",
                          r->permit ? "permit" : "deny");
        int first = 1;
        for (int k = 0; k < 3; k++) {
            if (!(r->actions & (1u << k))) continue;
            filter_buf_printf(&b, "%s\"%s\"", first ? "" : ",", names[k]);
            first = 0;
        }
        filter_buf_printf(&b, "],\"resource\":\"%s\",\"consumer\":\"%s\"", r->resource,
                          r->consumer);
        if (r->has_subject) filter_buf_printf(&b, ",\"subject\":\"%s\"", r->subject);
        filter_buf_puts(&b, "}");
    }
    filter_buf_puts(&b, "]}");
    return filter_buf_steal(&b, NULL);
}

/* ---- globs ---- */

/* Checks one glob against one text in all three positions: resource, consumer and subject. */
static void glob_case(const char *pat, const char *text, int want)
{
    char json[1024], err[256];
    int got[3];
    for (int k = 0; k < 3; k++) {
        /* The glob in one position, '*' in the others. */
        const char *res = k == 0 ? pat : "*", *cons = k == 1 ? pat : "*";
        const char *subj = k == 2 ? pat : NULL;
        snprintf(json, sizeof json,
                 "{\"rules\":[{\"effect\":\"permit\",\"actions\":[\"publish\"],\"resource\":"
                 "\"%s\",\"consumer\":\"%s\"%s%s%s}]}",
                 res, cons, subj ? ",\"subject\":\"" : "", subj ? subj : "", subj ? "\"" : "");
        srv_authz_t *a = load_policy(json, err, sizeof err);
        if (!a) {
            ok(0, "glob '%s' loads: %s", pat, err);
            return;
        }
        got[k] = k == 0   ? srv_authz_check(a, SRV_AUTHZ_PUBLISH, text, "/org/x", NULL)
                 : k == 1 ? srv_authz_check(a, SRV_AUTHZ_PUBLISH, "r", text, NULL)
                          : srv_authz_check(a, SRV_AUTHZ_PUBLISH, "r", "/org/x", text);
        srv_authz_free(a);
    }
    ok(got[0] == want && got[1] == want && got[2] == want,
       "glob '%s' %s '%s' (resource %d, consumer %d, subject %d)", pat,
       want ? "matches" : "does not match", text, got[0], got[1], got[2]);
}

static void test_globs(void)
{
    glob_case("", "", 1);
    glob_case("", "a", 0);
    glob_case("*", "", 1);
    glob_case("*", "anything at all", 1);
    glob_case("**", "", 1);
    glob_case("***", "abc", 1);
    glob_case("abc", "abc", 1);
    glob_case("abc", "abcd", 0);
    glob_case("abc", "ab", 0);
    glob_case("abc", "ABC", 0);
    glob_case("abc*", "abc", 1);
    glob_case("abc*", "abcdef", 1);
    glob_case("abc*", "xabc", 0);
    glob_case("*abc", "abc", 1);
    glob_case("*abc", "xxabc", 1);
    glob_case("*abc", "abcx", 0);
    glob_case("a*c", "ac", 1);
    glob_case("a*c", "abbbc", 1);
    glob_case("a*c", "abbbcd", 0);
    glob_case("a*c", "c", 0);
    glob_case("ab*ba", "aba", 0); /* head and tail may not overlap */
    glob_case("ab*ba", "abba", 1);
    glob_case("*a*b*c*", "xaybzc", 1);
    glob_case("*a*b*c*", "cba", 0);
    glob_case("a*b*c", "abcbc", 1);
    glob_case("a*bc*bc", "abcbc", 1);
    glob_case("a*bc*bc", "abc", 0);
    glob_case("*aab", "aaab", 1);
    glob_case("*x*", "x", 1);
    glob_case("*xy*", "xxy", 1);
    glob_case("urn:altinn:resource:app_ttd_*", "urn:altinn:resource:app_ttd_app1", 1);
    glob_case("urn:altinn:resource:app_ttd_*", "urn:altinn:resource:app_digdir_app1", 0);
    glob_case("/org/*", "/org/ttd", 1);
    glob_case("/org/*", "/organisation/910000002", 0);
    glob_case("?", "a", 0); /* only '*' is special */
    glob_case("[a]", "a", 0);
    glob_case("[a]", "[a]", 1);

    /* Pathological patterns: backtracking matchers take exponential time on these. */
    size_t n = 200000;
    char *aaa = malloc(n + 2);
    memset(aaa, 'a', n);
    aaa[n] = '\0';
    char err[256];
    srv_authz_t *a = load_policy("{\"rules\":[{\"effect\":\"permit\",\"actions\":[\"read\"],"
                                 "\"resource\":\"*a*a*a*a*a*a*a*a*b\",\"consumer\":\"*a*a*a*a*b\","
                                 "\"subject\":\"*{consumer}*{consumer}*{consumer}*b\"}]}",
                                 err, sizeof err);
    ok(a != NULL, "pathological policy loads");
    double t0 = now_s();
    int r1 = srv_authz_check(a, SRV_AUTHZ_READ, aaa, "b", "b");
    int r2 = srv_authz_check(a, SRV_AUTHZ_READ, "ab", aaa, "b");
    int r3 = srv_authz_check(a, SRV_AUTHZ_READ, "ab", "/org/ab", aaa);
    aaa[n] = 'b';
    aaa[n + 1] = '\0';
    int r4 = srv_authz_check(a, SRV_AUTHZ_READ, aaa, aaa, NULL);
    double dt = now_s() - t0;
    ok(!r1 && !r2 && !r3 && !r4, "'*a*a*...*b' against %zu 'a's: no match", n);
    /* Same patterns where they do match ("aaaa...ab", subject with the id "a" three times). */
    srv_authz_free(a);
    a = load_policy("{\"rules\":[{\"effect\":\"permit\",\"actions\":[\"read\"],"
                    "\"resource\":\"*a*a*a*a*a*a*a*a*b\",\"consumer\":\"*a*a*a*a*b\","
                    "\"subject\":\"*{consumer}*{consumer}*{consumer}*b\"}]}",
                    err, sizeof err);
    t0 = now_s();
    int m = srv_authz_check(a, SRV_AUTHZ_READ, aaa, "/x/aaaab", "aaaabaaaabaaaabb");
    /* The id "ab" occurs once in "aaa...ab": three are needed. */
    int ms = srv_authz_check(a, SRV_AUTHZ_READ, "aaaaaaaab", "/aaaa/ab", "ab.ab.ab.b") &&
             !srv_authz_check(a, SRV_AUTHZ_READ, "aaaaaaaab", "/aaaa/ab", aaa);
    dt += now_s() - t0;
    ok(m && ms, "pathological patterns match where they should");
    ok(dt < 2.0, "pathological checks finish fast (%.3f ms)", dt * 1e3);
    srv_authz_free(a);
    free(aaa);
}

/* ---- {consumer}, order, actions, subjects ---- */

static void test_decisions(void)
{
    char err[256];
    srv_authz_t *a;

    a = load_policy("{\"rules\":[{\"effect\":\"permit\",\"actions\":[\"subscribe\"],\"resource\":"
                    "\"*\",\"consumer\":\"*\",\"subject\":\"/party/{consumer}\"}]}",
                    err, sizeof err);
    ok(a && srv_authz_rule_count(a) == 1, "subject policy loads");
    ok(srv_authz_check(a, SRV_AUTHZ_SUBSCRIBE, "r", "/user/123", "/party/123"),
       "{consumer}: /user/123 -> 123");
    ok(srv_authz_check(a, SRV_AUTHZ_SUBSCRIBE, "r", "/organisation/910000002", "/party/910000002"),
       "{consumer}: /organisation/910000002 -> 910000002");
    ok(srv_authz_check(a, SRV_AUTHZ_SUBSCRIBE, "r", "/org/ttd", "/party/ttd"),
       "{consumer}: /org/ttd -> ttd");
    ok(!srv_authz_check(a, SRV_AUTHZ_SUBSCRIBE, "r", "/user/123", "/party/1234"),
       "{consumer}: /party/1234 is not /party/123");
    ok(!srv_authz_check(a, SRV_AUTHZ_SUBSCRIBE, "r", "/user/123", "/party/{consumer}"),
       "{consumer} is never matched literally");
    ok(srv_authz_check(a, SRV_AUTHZ_SUBSCRIBE, "r", "ttd", "/party/ttd"),
       "{consumer}: a consumer without '/' is its own id");
    ok(srv_authz_check(a, SRV_AUTHZ_SUBSCRIBE, "r", "/user/", "/party/"),
       "{consumer}: empty id after a trailing '/'");
    ok(!srv_authz_check(a, SRV_AUTHZ_SUBSCRIBE, "r", "/user/1*", "/party/123"),
       "{consumer}: a '*' in the consumer id is literal, not a wildcard");
    ok(srv_authz_check(a, SRV_AUTHZ_SUBSCRIBE, "r", "/user/1*", "/party/1*"),
       "{consumer}: a '*' in the consumer id matches itself");
    ok(!srv_authz_check(a, SRV_AUTHZ_SUBSCRIBE, "r", "/user/123", NULL),
       "subject NULL: the subject rule is skipped -> default deny");
    ok(!srv_authz_check(a, SRV_AUTHZ_SUBSCRIBE, "r", "/user/123", ""),
       "subject \"\" does not match /party/123");
    ok(!srv_authz_check(a, SRV_AUTHZ_PUBLISH, "r", "/user/123", "/party/123"),
       "action not in the rule -> deny");
    srv_authz_free(a);

    a = load_policy("{\"rules\":[{\"effect\":\"permit\",\"actions\":[\"read\"],\"resource\":\"*\","
                    "\"consumer\":\"*\",\"subject\":\"*{consumer}*x{consumer}\"}]}",
                    err, sizeof err);
    ok(a && srv_authz_check(a, SRV_AUTHZ_READ, "r", "/o/ab", "..ab..xab") &&
           !srv_authz_check(a, SRV_AUTHZ_READ, "r", "/o/ab", "..ab..xa") &&
           !srv_authz_check(a, SRV_AUTHZ_READ, "r", "/o/ab", "xab"),
       "{consumer} in several segments");
    srv_authz_free(a);

    /* Subject NULL skips a subject rule, so a later rule without a subject decides. */
    a = load_policy("{\"rules\":["
                    "{\"effect\":\"deny\",\"actions\":[\"subscribe\"],\"resource\":\"*\","
                    "\"consumer\":\"*\",\"subject\":\"/party/666\"},"
                    "{\"effect\":\"permit\",\"actions\":[\"subscribe\"],\"resource\":\"*\","
                    "\"consumer\":\"*\"}]}",
                    err, sizeof err);
    ok(srv_authz_check(a, SRV_AUTHZ_SUBSCRIBE, "r", "/org/ttd", NULL),
       "subject NULL: skip the deny subject rule, the next rule permits");
    ok(!srv_authz_check(a, SRV_AUTHZ_SUBSCRIBE, "r", "/org/ttd", "/party/666"),
       "subject given: the deny subject rule decides");
    ok(srv_authz_check(a, SRV_AUTHZ_SUBSCRIBE, "r", "/org/ttd", "/party/1"),
       "subject not matching the deny rule: the next rule permits");
    ok(srv_authz_check(a, SRV_AUTHZ_SUBSCRIBE, "r", "/org/ttd", ""),
       "subject \"\" (an event without subject) does not match /party/666");
    srv_authz_free(a);

    /* First match wins: deny before permit, and permit before deny. */
    a = load_policy("{\"rules\":["
                    "{\"effect\":\"deny\",\"actions\":[\"publish\"],\"resource\":\"urn:r:a\","
                    "\"consumer\":\"/org/bad\"},"
                    "{\"effect\":\"permit\",\"actions\":[\"publish\",\"read\"],\"resource\":"
                    "\"urn:r:*\",\"consumer\":\"/org/*\"},"
                    "{\"effect\":\"deny\",\"actions\":[\"read\"],\"resource\":\"*\",\"consumer\":"
                    "\"*\"},"
                    "{\"effect\":\"permit\",\"actions\":[\"read\"],\"resource\":\"*\","
                    "\"consumer\":\"*\"}]}",
                    err, sizeof err);
    ok(a && srv_authz_rule_count(a) == 4, "order policy loads (4 rules)");
    ok(!srv_authz_check(a, SRV_AUTHZ_PUBLISH, "urn:r:a", "/org/bad", NULL),
       "deny before permit: deny wins");
    ok(srv_authz_check(a, SRV_AUTHZ_PUBLISH, "urn:r:b", "/org/bad", NULL),
       "the deny rule's resource does not match: the permit decides");
    ok(srv_authz_check(a, SRV_AUTHZ_PUBLISH, "urn:r:a", "/org/good", NULL),
       "the deny rule's consumer does not match: the permit decides");
    ok(srv_authz_check(a, SRV_AUTHZ_READ, "urn:r:a", "/org/bad", NULL),
       "permit before deny: permit wins (read)");
    ok(!srv_authz_check(a, SRV_AUTHZ_READ, "urn:x", "/org/ttd", NULL),
       "deny before permit for other resources (read)");
    ok(!srv_authz_check(a, SRV_AUTHZ_PUBLISH, "urn:x", "/org/ttd", NULL),
       "no rule matches: default deny");
    ok(!srv_authz_check(a, SRV_AUTHZ_SUBSCRIBE, "urn:r:a", "/org/ttd", NULL),
       "no rule has the action: default deny");
    ok(!srv_authz_check(a, SRV_AUTHZ_PUBLISH, NULL, NULL, NULL), "NULL resource/consumer: deny");
    srv_authz_free(a);

    a = load_policy("{\"rules\":[]}", err, sizeof err);
    ok(a && srv_authz_rule_count(a) == 0, "empty rules list loads");
    ok(!srv_authz_check(a, SRV_AUTHZ_PUBLISH, "r", "/org/ttd", NULL) &&
           !srv_authz_check(a, SRV_AUTHZ_SUBSCRIBE, "r", "/org/ttd", "") &&
           !srv_authz_check(a, SRV_AUTHZ_READ, "", "", NULL),
       "empty rules list denies everything");
    srv_authz_free(a);

    ok(srv_authz_check(NULL, SRV_AUTHZ_PUBLISH, "r", "/org/ttd", NULL) &&
           srv_authz_check(NULL, SRV_AUTHZ_SUBSCRIBE, NULL, NULL, "x") &&
           srv_authz_check(NULL, SRV_AUTHZ_READ, "", "", ""),
       "allow-all (NULL) permits everything");
    ok(srv_authz_rule_count(NULL) == 0, "allow-all has no rules");
    srv_authz_free(NULL);
}

/* ---- load errors ---- */

#define RULE(body) "{\"rules\":[" RULE_OK "," RULE_OK "," body "]}"
#define RULE_OK                                                                                    \
    "{\"effect\":\"permit\",\"actions\":[\"read\"],\"resource\":\"*\",\"consumer\":\"*\"}"

static void load_error(const char *json, const char *want, int prefix_only)
{
    char err[512] = "";
    srv_authz_t *a = load_policy(json, err, sizeof err);
    int same = prefix_only ? !strncmp(err, want, strlen(want)) : !strcmp(err, want);
    ok(!a && same && !strchr(err, '\n'), "error: %s", err);
    if (!same) printf("#   want: %s\n", want);
    srv_authz_free(a);
}

static void test_load_errors(void)
{
    char err[512];
    ok(!srv_authz_load("nonexistent.json", err, sizeof err) &&
           !strcmp(err, "nonexistent.json: cannot open: No such file or directory"),
       "error: %s", err);
    mkdir("adir", 0700);
    ok(!srv_authz_load("adir", err, sizeof err) &&
           !strcmp(err, "adir: cannot read: Is a directory"),
       "error: %s", err);
    rmdir("adir");
    ok(!srv_authz_load("nonexistent.json", NULL, 0), "err may be NULL");

    load_error("", "policy.json: not valid JSON: empty input", 0);
    load_error("{\"rules\":[}", "policy.json: not valid JSON at byte ", 1);
    load_error("{\"rules\":[]} x", "policy.json: not valid JSON at byte ", 1);
    load_error("{\"rules\":[]} // c", "policy.json: not valid JSON at byte ", 1);
    load_error("{\"rules\":[],\"rules\":[]}", "policy.json: duplicate member name 'rules'", 1);
    load_error("[]", "policy.json: the top level must be an object {\"rules\":[...]}", 0);
    load_error("{}", "policy.json: missing 'rules'", 0);
    load_error("{\"rules\":{}}", "policy.json: 'rules' must be an array", 0);
    load_error("{\"rules\":null}", "policy.json: 'rules' must be an array", 0);
    load_error("{\"rules\":[],\"x\":1}", "policy.json: unknown top-level key 'x' (expected rules)",
               0);
    load_error("{\"rules\":[1]}", "policy.json: rule 1: must be an object", 0);
    load_error(RULE("{\"effect\":\"allow\",\"actions\":[\"read\"],\"resource\":\"*\",\"consumer\":"
                    "\"*\"}"),
               "policy.json: rule 3: 'effect' must be \"permit\" or \"deny\"", 0);
    load_error(RULE("{\"effect\":\"Permit\",\"actions\":[\"read\"],\"resource\":\"*\",\"consumer\":"
                    "\"*\"}"),
               "policy.json: rule 3: 'effect' must be \"permit\" or \"deny\"", 0);
    load_error(RULE("{\"effect\":1,\"actions\":[\"read\"],\"resource\":\"*\",\"consumer\":\"*\"}"),
               "policy.json: rule 3: 'effect' must be \"permit\" or \"deny\"", 0);
    load_error(RULE("{\"actions\":[\"read\"],\"resource\":\"*\",\"consumer\":\"*\"}"),
               "policy.json: rule 3: missing 'effect'", 0);
    load_error(RULE("{\"effect\":\"deny\",\"resource\":\"*\",\"consumer\":\"*\"}"),
               "policy.json: rule 3: missing 'actions'", 0);
    load_error(RULE("{\"effect\":\"deny\",\"actions\":[\"read\"],\"consumer\":\"*\"}"),
               "policy.json: rule 3: missing 'resource'", 0);
    load_error(RULE("{\"effect\":\"deny\",\"actions\":[\"read\"],\"resource\":\"*\"}"),
               "policy.json: rule 3: missing 'consumer'", 0);
    const char *actions_msg = "policy.json: rule 3: 'actions' must be a non-empty array of "
                              "\"publish\", \"subscribe\", \"read\"";
    load_error(
        RULE("{\"effect\":\"deny\",\"actions\":\"read\",\"resource\":\"*\",\"consumer\":\"*\"}"),
        actions_msg, 0);
    load_error(RULE("{\"effect\":\"deny\",\"actions\":[],\"resource\":\"*\",\"consumer\":\"*\"}"),
               actions_msg, 0);
    load_error(
        RULE(
            "{\"effect\":\"deny\",\"actions\":[\"read\",1],\"resource\":\"*\",\"consumer\":\"*\"}"),
        "policy.json: rule 3: 'actions' item 2 must be a string", 0);
    load_error(
        RULE("{\"effect\":\"deny\",\"actions\":[\"write\"],\"resource\":\"*\",\"consumer\":\"*\"}"),
        "policy.json: rule 3: unknown action 'write' (expected \"publish\", \"subscribe\" or "
        "\"read\")",
        0);
    load_error(RULE("{\"effect\":\"deny\",\"actions\":[\"Publish\"],\"resource\":\"*\","
                    "\"consumer\":\"*\"}"),
               "policy.json: rule 3: unknown action 'Publish' (expected \"publish\", "
               "\"subscribe\" or \"read\")",
               0);
    load_error(RULE("{\"effect\":\"deny\",\"actions\":[\"read\"],\"resource\":5,\"consumer\":"
                    "\"*\"}"),
               "policy.json: rule 3: 'resource' must be a string", 0);
    load_error(RULE("{\"effect\":\"deny\",\"actions\":[\"read\"],\"resource\":\"*\",\"consumer\":"
                    "null}"),
               "policy.json: rule 3: 'consumer' must be a string", 0);
    load_error(RULE("{\"effect\":\"deny\",\"actions\":[\"read\"],\"resource\":\"*\",\"consumer\":"
                    "\"*\",\"subject\":[\"x\"]}"),
               "policy.json: rule 3: 'subject' must be a string", 0);
    load_error(RULE("{\"effect\":\"deny\",\"actions\":[\"read\"],\"resource\":\"a\\u0000b\","
                    "\"consumer\":\"*\"}"),
               "policy.json: rule 3: 'resource' contains a NUL character", 0);
    load_error(RULE("{\"effect\":\"deny\",\"actions\":[\"read\"],\"resource\":\"*\",\"consumer\":"
                    "\"*\",\"priority\":1}"),
               "policy.json: rule 3: unknown key 'priority' (expected effect, actions, resource, "
               "consumer, subject)",
               0);
    load_error(RULE("{\"effect\":\"deny\",\"actions\":[\"read\"],\"resource\":\"*\",\"consumer\":"
                    "\"*\",\"a\\nb'c\":1}"),
               "policy.json: rule 3: unknown key 'a?b?c' (expected effect, actions, resource, "
               "consumer, subject)",
               0);

    /* Over the size limit: 16 MiB + 1 byte of whitespace. */
    size_t big = ((size_t)16 << 20) + 1;
    char *buf = malloc(big);
    memset(buf, ' ', big);
    write_file("policy.json", buf, big);
    free(buf);
    srv_authz_t *a = srv_authz_load("policy.json", err, sizeof err);
    ok(!a && !strcmp(err, "policy.json: larger than 16 MiB"), "error: %s", err);
    unlink("policy.json");

    /* Exactly at the limit is read (and then judged as JSON). */
    big = (size_t)16 << 20;
    buf = malloc(big);
    memset(buf, ' ', big);
    memcpy(buf, "{\"rules\":[]}", 12);
    write_file("policy.json", buf, big);
    free(buf);
    a = srv_authz_load("policy.json", err, sizeof err);
    ok(a && srv_authz_rule_count(a) == 0, "a 16 MiB policy file is accepted");
    srv_authz_free(a);
    unlink("policy.json");
}

/* ---- 1,000 rules ---- */

static const char *const RESOURCES[] = {
    "urn:altinn:resource:app_ttd_a",
    "urn:altinn:resource:app_ttd_ab",
    "urn:altinn:resource:app_digdir_c",
    "urn:altinn:resource:r1",
    "urn:altinn:resource:r10",
    "urn:altinn:resource:super-simple-service",
    "urn:other:x",
    "",
};
static const char *const CONSUMERS[] = {
    "/org/ttd",         "/org/digdir", "/user/123", "/user/1234", "/organisation/910000002",
    "/systemuser/8f1e", "ttd",         "",
};
static const char *const SUBJECTS[] = {
    "",
    "/party/50001",
    "/party/123",
    "/party/ttd",
    "/party/1234",
    "/org/ttd",
    "urn:altinn:organization:identifier-no:910000002",
};
static const char *const SUBJECT_GLOBS[] = {
    "/party/{consumer}",
    "/party/5000*",
    "*{consumer}",
    "{consumer}",
    "*",
    "",
    "/party/*{consumer}*",
    "/party/50001",
    "urn:altinn:organization:identifier-no:{consumer}",
    "/*/{consumer}",
};
#define NELEM(x) (sizeof(x) / sizeof((x)[0]))

/* A glob derived from base: the text itself, a prefix and '*', '*', or base with random parts
 * replaced by '*' and stars inserted. */
static void rand_glob(char *out, size_t cap, const char *base)
{
    size_t n = strlen(base), k = 0;
    uint32_t mode = rnd(100);
    if (mode < 45 || n == 0) {
        snprintf(out, cap, "%s", base);
        return;
    }
    if (mode < 65) {
        snprintf(out, cap, "%.*s*", (int)rnd((uint32_t)n + 1), base);
        return;
    }
    if (mode < 70) {
        snprintf(out, cap, "*");
        return;
    }
    for (size_t i = 0; i < n && k + 2 < cap; i++) {
        uint32_t r = rnd(100);
        if (r < 8) {
            out[k++] = '*';
            i += rnd(4);
        } else if (r < 12) {
            out[k++] = '*';
            out[k++] = base[i];
        } else {
            out[k++] = base[i];
        }
    }
    out[k] = '\0';
}

static void rand_input(char *out, size_t cap, const char *const *set, size_t nset)
{
    const char *b = set[rnd((uint32_t)nset)];
    uint32_t r = rnd(10);
    if (r == 0)
        snprintf(out, cap, "%sx", b);
    else if (r == 1)
        snprintf(out, cap, "%.*s", (int)rnd((uint32_t)strlen(b) + 1), b);
    else
        snprintf(out, cap, "%s", b);
}

static void rand_rule(ref_rule_t *r)
{
    memset(r, 0, sizeof *r);
    /* Denies are rarer than permits so the decisions are not all "deny". */
    r->permit = rnd(3) != 0;
    do
        r->actions = rnd(8);
    while (!r->actions);
    rand_glob(r->resource, sizeof r->resource, RESOURCES[rnd(NELEM(RESOURCES))]);
    rand_glob(r->consumer, sizeof r->consumer, CONSUMERS[rnd(NELEM(CONSUMERS))]);
    r->has_subject = rnd(3) == 0;
    if (r->has_subject)
        snprintf(r->subject, sizeof r->subject, "%s", SUBJECT_GLOBS[rnd(NELEM(SUBJECT_GLOBS))]);
}

/* Random policies of several sizes against the reference over random queries. */
static void test_random(void)
{
    static const size_t sizes[] = {1, 3, 10, 100, 1000, 1000, 1000};
    for (size_t si = 0; si < NELEM(sizes); si++) {
        size_t n = sizes[si];
        ref_rule_t *rules = calloc(n, sizeof *rules);
        for (size_t i = 0; i < n; i++)
            rand_rule(&rules[i]);
        /* The last two big policies make early rules narrow so later rules decide too. */
        if (si >= 5)
            for (size_t i = 0; i < n / 2; i++)
                if (strchr(rules[i].resource, '*') && strchr(rules[i].consumer, '*'))
                    snprintf(rules[i].consumer, sizeof rules[i].consumer, "/org/n%zu", i);
        char *json = ref_policy_json(rules, n);
        char err[256];
        srv_authz_t *a = load_policy(json, err, sizeof err);
        free(json);
        if (!ok(a != NULL, "random policy of %zu rules loads", n)) {
            printf("# %s\n", err);
            free(rules);
            continue;
        }
        size_t mismatches = 0, permits = 0, late = 0, queries = 4000;
        for (size_t q = 0; q < queries; q++) {
            char res[128], cons[128], subj[128];
            rand_input(res, sizeof res, RESOURCES, NELEM(RESOURCES));
            rand_input(cons, sizeof cons, CONSUMERS, NELEM(CONSUMERS));
            rand_input(subj, sizeof subj, SUBJECTS, NELEM(SUBJECTS));
            const char *s = rnd(4) == 0 ? NULL : subj;
            int action = (int)rnd(3);
            size_t by;
            int want = ref_check(rules, n, action, res, cons, s, &by);
            int got = srv_authz_check(a, (srv_authz_action_t)action, res, cons, s);
            permits += (size_t)want;
            late += by >= n / 2 && by < n;
            if (got != want && mismatches++ < 5)
                printf("# mismatch: action %d resource '%s' consumer '%s' subject '%s%s': got %d, "
                       "reference %d (rule %zu)\n",
                       action, res, cons, s ? s : "(null)", "", got, want, by + 1);
        }
        ok(mismatches == 0,
           "%zu rules: %zu random queries agree with the reference (%zu permits, %zu decided in "
           "the second half)",
           n, queries, permits, late);
        srv_authz_free(a);
        free(rules);
    }
}

/* 1,000 rules on distinct resources and consumers, the deciding rule first or last. */
static char *big_policy(size_t n, const char *first, const char *last)
{
    filter_buf_t b = {0};
    filter_buf_puts(&b, "{\"rules\":[");
    if (first) filter_buf_printf(&b, "%s,", first);
    for (size_t i = 0; i < n; i++) {
        if (i % 10 == 9)
            filter_buf_printf(&b,
                              "{\"effect\":\"permit\",\"actions\":[\"subscribe\",\"read\"],"
                              "\"resource\":\"urn:altinn:resource:app_o%zu_*\",\"consumer\":"
                              "\"/org/o%zu\",\"subject\":\"/party/*\"},",
                              i, i);
        else
            filter_buf_printf(&b,
                              "{\"effect\":\"%s\",\"actions\":[\"publish\",\"subscribe\"],"
                              "\"resource\":\"urn:altinn:resource:r%zu\",\"consumer\":"
                              "\"/org/o%zu\"},",
                              i % 7 ? "permit" : "deny", i, i);
    }
    if (last)
        filter_buf_printf(&b, "%s]}", last);
    else
        filter_buf_puts(&b, "{\"effect\":\"deny\",\"actions\":[\"read\"],\"resource\":\"nothing\","
                            "\"consumer\":\"nobody\"}]}");
    char *s = filter_buf_steal(&b, NULL);
    return s;
}

static double ns_per_check(const srv_authz_t *a, const char *res, const char *cons,
                           const char *subj, int want, long iters)
{
    int bad = 0;
    double t0 = now_s();
    for (long i = 0; i < iters; i++)
        bad |= srv_authz_check(a, SRV_AUTHZ_PUBLISH, res, cons, subj) != want;
    double dt = now_s() - t0;
    ok(!bad, "%s: every timed check decides %s", res, want ? "permit" : "deny");
    return dt * 1e9 / (double)iters;
}

static void test_big(void)
{
    char err[256];
    const char *target = "{\"effect\":\"permit\",\"actions\":[\"publish\"],\"resource\":"
                         "\"urn:altinn:resource:target\",\"consumer\":\"/org/target\"}";
    const char *deny_all =
        "{\"effect\":\"deny\",\"actions\":[\"publish\",\"subscribe\",\"read\"],\"resource\":\"*\","
        "\"consumer\":\"*\"}";

    char *json = big_policy(999, NULL, target);
    srv_authz_t *a = load_policy(json, err, sizeof err);
    free(json);
    ok(a && srv_authz_rule_count(a) == 1000, "1,000-rule policy, deciding rule last, loads");
    ok(srv_authz_check(a, SRV_AUTHZ_PUBLISH, "urn:altinn:resource:target", "/org/target", NULL),
       "deciding rule last: permit");
    ok(!srv_authz_check(a, SRV_AUTHZ_PUBLISH, "urn:altinn:resource:target", "/org/o1", NULL),
       "last rule, other consumer: default deny");
    ok(!srv_authz_check(a, SRV_AUTHZ_READ, "urn:altinn:resource:target", "/org/target", NULL),
       "last rule, other action: default deny");
    ok(srv_authz_check(a, SRV_AUTHZ_PUBLISH, "urn:altinn:resource:r1", "/org/o1", NULL) &&
           !srv_authz_check(a, SRV_AUTHZ_PUBLISH, "urn:altinn:resource:r7", "/org/o7", NULL) &&
           !srv_authz_check(a, SRV_AUTHZ_PUBLISH, "urn:altinn:resource:r1", "/org/o2", NULL),
       "middle rules decide their own resource/consumer pairs");
    ok(srv_authz_check(a, SRV_AUTHZ_READ, "urn:altinn:resource:app_o19_x", "/org/o19",
                       "/party/1") &&
           !srv_authz_check(a, SRV_AUTHZ_READ, "urn:altinn:resource:app_o19_x", "/org/o19", NULL),
       "prefix rules with subjects in the middle");

    long iters = getenv("TEST_AUTHZ_ITERS") ? atol(getenv("TEST_AUTHZ_ITERS")) : 300000;
    double ns_last = ns_per_check(a, "urn:altinn:resource:target", "/org/target", NULL, 1, iters);
    double ns_none = ns_per_check(a, "urn:altinn:resource:unknown", "/org/target", NULL, 0, iters);
    double ns_allow =
        ns_per_check(NULL, "urn:altinn:resource:target", "/org/target", NULL, 1, iters);
    srv_authz_free(a);

    json = big_policy(998, deny_all, NULL);
    a = load_policy(json, err, sizeof err);
    free(json);
    ok(a && srv_authz_rule_count(a) == 1000, "1,000-rule policy, deciding rule first, loads");
    ok(!srv_authz_check(a, SRV_AUTHZ_PUBLISH, "urn:altinn:resource:r1", "/org/o1", NULL) &&
           !srv_authz_check(a, SRV_AUTHZ_READ, "urn:altinn:resource:app_o19_x", "/org/o19",
                            "/party/1") &&
           !srv_authz_check(a, SRV_AUTHZ_SUBSCRIBE, "x", "y", NULL),
       "deciding rule first: a leading deny-all denies everything");
    double ns_first = ns_per_check(a, "urn:altinn:resource:r1", "/org/o1", NULL, 0, iters);
    srv_authz_free(a);

    /* 1,000 rules all on one resource, told apart only by consumer: indexed by consumer. */
    filter_buf_t b = {0};
    filter_buf_puts(&b, "{\"rules\":[");
    for (int i = 0; i < 1000; i++)
        filter_buf_printf(&b,
                          "%s{\"effect\":\"permit\",\"actions\":[\"publish\"],\"resource\":"
                          "\"urn:altinn:resource:shared\",\"consumer\":\"/organisation/%09d\"}",
                          i ? "," : "", 910000000 + i);
    filter_buf_puts(&b, "]}");
    json = filter_buf_steal(&b, NULL);
    a = load_policy(json, err, sizeof err);
    free(json);
    ok(a &&
           srv_authz_check(a, SRV_AUTHZ_PUBLISH, "urn:altinn:resource:shared",
                           "/organisation/910000999", NULL) &&
           !srv_authz_check(a, SRV_AUTHZ_PUBLISH, "urn:altinn:resource:shared",
                            "/organisation/910001000", NULL),
       "1,000 rules on one resource: the last consumer decides");
    double ns_shared =
        ns_per_check(a, "urn:altinn:resource:shared", "/organisation/910000999", NULL, 1, iters);
    srv_authz_free(a);

    printf("# ns per check: allow-all %.1f; 1,000 rules: deciding rule last %.1f, no rule "
           "matching %.1f, deciding rule first %.1f, one resource/1,000 consumers %.1f\n",
           ns_allow, ns_last, ns_none, ns_first, ns_shared);
}

/* ---- register ---- */

static const char *REGISTER = "{\"parties\":["
                              "{\"partyId\":50001,\"ssn\":\"01038712345\"},"
                              "{\"partyId\":50002,\"orgNo\":\"910000002\"},"
                              "{\"partyId\":50003,\"orgNo\":\"910000003\",\"mainUnit\":50002},"
                              "{\"partyId\":50004,\"mainUnit\":50002},"
                              "{\"partyId\":50005,\"orgNo\":\"910000005\",\"mainUnit\":50006},"
                              "{\"partyId\":50006},"
                              "{\"partyId\":50007,\"orgNo\":\"910000007\",\"mainUnit\":99999}"
                              "]}";

static void register_error(const char *json, const char *want)
{
    char err[512] = "";
    srv_register_t *r = load_register(json, err, sizeof err);
    ok(!r && !strcmp(err, want), "register error: %s", err);
    if (strcmp(err, want)) printf("#   want: %s\n", want);
    srv_register_free(r);
}

static void test_register(void)
{
    char err[256];
    srv_register_t *r = load_register(REGISTER, err, sizeof err);
    if (!ok(r != NULL, "register loads")) printf("# %s\n", err);
    ok(srv_register_count(r) == 7, "7 parties");
    ok(srv_register_party_by_ssn(r, "01038712345") == 50001, "person by ssn");
    ok(srv_register_party_by_ssn(r, "01038712346") == 0, "unknown ssn -> 0");
    ok(srv_register_party_by_ssn(r, "0103871234") == 0, "short ssn -> 0");
    ok(srv_register_party_by_ssn(r, "") == 0 && srv_register_party_by_ssn(r, NULL) == 0,
       "empty/NULL ssn -> 0");
    ok(srv_register_party_by_orgno(r, "910000002") == 50002 &&
           srv_register_party_by_orgno(r, "910000003") == 50003,
       "unit by orgNo");
    ok(srv_register_party_by_orgno(r, "910000004") == 0 &&
           srv_register_party_by_orgno(r, "9100000020") == 0 &&
           srv_register_party_by_orgno(r, "01038712345") == 0,
       "unknown orgNo -> 0 (and an ssn is not an orgNo)");
    ok(srv_register_party_by_ssn(r, "910000002") == 0, "an orgNo is not an ssn");
    const char *o = srv_register_orgno_of_party(r, 50003);
    ok(o && !strcmp(o, "910000003"), "orgNo of a party");
    ok(!srv_register_orgno_of_party(r, 50001) && !srv_register_orgno_of_party(r, 1) &&
           !srv_register_orgno_of_party(r, 0) && !srv_register_orgno_of_party(r, -5),
       "orgNo of a person / unknown party -> NULL");
    ok(srv_register_main_unit(r, 50003) == 50002 && srv_register_main_unit(r, 50004) == 50002,
       "main unit of sub-units");
    ok(srv_register_main_unit(r, 50002) == 0 && srv_register_main_unit(r, 42) == 0,
       "main unit of a main unit / unknown party -> 0");

    char out[4][96];
    int n = srv_register_main_unit_subjects(r, "/party/50003", out, 4);
    ok(n == 2 && !strcmp(out[0], "/party/50002") &&
           !strcmp(out[1], "urn:altinn:organization:identifier-no:910000002"),
       "sub-unit /party/50003 -> main unit's party and orgNo subjects");
    n = srv_register_main_unit_subjects(r, "urn:altinn:organization:identifier-no:910000003", out,
                                        4);
    ok(n == 2 && !strcmp(out[0], "/party/50002") &&
           !strcmp(out[1], "urn:altinn:organization:identifier-no:910000002"),
       "sub-unit by orgNo urn -> the same two subjects");
    n = srv_register_main_unit_subjects(r, "/party/50003", out, 1);
    ok(n == 1 && !strcmp(out[0], "/party/50002"), "max 1 -> only the party subject");
    n = srv_register_main_unit_subjects(r, "/party/50004", out, 4);
    ok(n == 2 && !strcmp(out[0], "/party/50002"), "sub-unit without its own orgNo");
    n = srv_register_main_unit_subjects(r, "/party/50005", out, 4);
    ok(n == 1 && !strcmp(out[0], "/party/50006"), "main unit without orgNo -> one subject");
    n = srv_register_main_unit_subjects(r, "/party/50007", out, 4);
    ok(n == 1 && !strcmp(out[0], "/party/99999"), "main unit not listed -> its party subject");
    ok(srv_register_main_unit_subjects(r, "/party/50002", out, 4) == 0, "main unit itself -> 0");
    ok(srv_register_main_unit_subjects(r, "/party/50001", out, 4) == 0, "a person -> 0");
    ok(srv_register_main_unit_subjects(r, "/party/77", out, 4) == 0, "unknown party -> 0");
    ok(srv_register_main_unit_subjects(r, "/party/050003", out, 4) == 0 &&
           srv_register_main_unit_subjects(r, "/party/+50003", out, 4) == 0 &&
           srv_register_main_unit_subjects(r, "/party/50003/x", out, 4) == 0 &&
           srv_register_main_unit_subjects(r, "/party/", out, 4) == 0 &&
           srv_register_main_unit_subjects(r, "/party/99999999999999999999", out, 4) == 0,
       "malformed party subjects -> 0");
    ok(srv_register_main_unit_subjects(r, "urn:altinn:organization:identifier-no:91000000", out,
                                       4) == 0 &&
           srv_register_main_unit_subjects(r, "/organisation/910000003", out, 4) == 0 &&
           srv_register_main_unit_subjects(r, "", out, 4) == 0 &&
           srv_register_main_unit_subjects(r, NULL, out, 4) == 0 &&
           srv_register_main_unit_subjects(r, "/party/50003", out, 0) == 0,
       "other subject forms, NULL, max 0 -> 0");
    srv_register_free(r);

    ok(srv_register_party_by_ssn(NULL, "01038712345") == 0 &&
           srv_register_party_by_orgno(NULL, "910000002") == 0 &&
           !srv_register_orgno_of_party(NULL, 50003) && srv_register_main_unit(NULL, 50003) == 0 &&
           srv_register_main_unit_subjects(NULL, "/party/50003", out, 4) == 0 &&
           srv_register_count(NULL) == 0,
       "NULL register: every lookup finds nothing");
    srv_register_free(NULL);

    r = load_register("{\"parties\":[]}", err, sizeof err);
    ok(r && srv_register_count(r) == 0 && srv_register_party_by_ssn(r, "01038712345") == 0,
       "empty register loads");
    srv_register_free(r);

    /* Many parties: every lookup finds its own. */
    filter_buf_t b = {0};
    filter_buf_puts(&b, "{\"parties\":[");
    for (int i = 1; i <= 5000; i++)
        filter_buf_printf(&b, "%s{\"partyId\":%d,\"%s\":\"%0*d\"%s}", i > 1 ? "," : "", i,
                          i % 2 ? "ssn" : "orgNo", i % 2 ? 11 : 9, i,
                          i % 3 ? "" : ",\"mainUnit\":1");
    filter_buf_puts(&b, "]}");
    char *json = filter_buf_steal(&b, NULL);
    r = load_register(json, err, sizeof err);
    free(json);
    int good = r != NULL;
    for (int i = 1; good && i <= 5000; i++) {
        char key[16];
        snprintf(key, sizeof key, "%0*d", i % 2 ? 11 : 9, i);
        good = (i % 2 ? srv_register_party_by_ssn(r, key) : srv_register_party_by_orgno(r, key)) ==
                   i &&
               srv_register_main_unit(r, i) == (i % 3 ? 0 : 1);
    }
    ok(good, "5,000 parties: every ssn/orgNo/mainUnit lookup is right");
    srv_register_free(r);

    ok(!srv_register_load("nonexistent.json", err, sizeof err) &&
           !strcmp(err, "nonexistent.json: cannot open: No such file or directory"),
       "register error: %s", err);
    register_error("", "register.json: not valid JSON: empty input");
    register_error("[]", "register.json: the top level must be an object {\"parties\":[...]}");
    register_error("{}", "register.json: missing 'parties'");
    register_error("{\"parties\":1}", "register.json: 'parties' must be an array");
    register_error("{\"parties\":[],\"x\":[]}",
                   "register.json: unknown top-level key 'x' (expected parties)");
    register_error("{\"parties\":[\"x\"]}", "register.json: party 1: must be an object");
    register_error("{\"parties\":[{\"ssn\":\"01038712345\"}]}",
                   "register.json: party 1: missing 'partyId'");
    register_error("{\"parties\":[{\"partyId\":1},{\"partyId\":0}]}",
                   "register.json: party 2: 'partyId' must be an integer > 0");
    register_error("{\"parties\":[{\"partyId\":-3}]}",
                   "register.json: party 1: 'partyId' must be an integer > 0");
    register_error("{\"parties\":[{\"partyId\":1.5}]}",
                   "register.json: party 1: 'partyId' must be an integer > 0");
    register_error("{\"parties\":[{\"partyId\":\"7\"}]}",
                   "register.json: party 1: 'partyId' must be an integer > 0");
    register_error("{\"parties\":[{\"partyId\":99999999999999999999}]}",
                   "register.json: party 1: 'partyId' must be an integer > 0");
    register_error("{\"parties\":[{\"partyId\":1,\"ssn\":\"0103871234\"}]}",
                   "register.json: party 1: 'ssn' must be a string of 11 digits");
    register_error("{\"parties\":[{\"partyId\":1,\"ssn\":1038712345}]}",
                   "register.json: party 1: 'ssn' must be a string of 11 digits");
    register_error("{\"parties\":[{\"partyId\":1,\"ssn\":\"0103871234x\"}]}",
                   "register.json: party 1: 'ssn' must be a string of 11 digits");
    register_error("{\"parties\":[{\"partyId\":1,\"orgNo\":\"91000000a\"}]}",
                   "register.json: party 1: 'orgNo' must be a string of 9 digits");
    register_error("{\"parties\":[{\"partyId\":1,\"orgNo\":null}]}",
                   "register.json: party 1: 'orgNo' must be a string of 9 digits");
    register_error("{\"parties\":[{\"partyId\":1,\"mainUnit\":\"2\"}]}",
                   "register.json: party 1: 'mainUnit' must be an integer > 0");
    register_error("{\"parties\":[{\"partyId\":1,\"mainUnit\":1}]}",
                   "register.json: party 1: 'mainUnit' must differ from 'partyId'");
    register_error("{\"parties\":[{\"partyId\":1,\"name\":\"x\"}]}",
                   "register.json: party 1: unknown key 'name' (expected partyId, ssn, orgNo, "
                   "mainUnit)");
    register_error("{\"parties\":[{\"partyId\":1},{\"partyId\":2},{\"partyId\":1}]}",
                   "register.json: party 3: duplicate partyId 1 (also party 1)");
    register_error("{\"parties\":[{\"partyId\":1,\"ssn\":\"01038712345\"},{\"partyId\":2,"
                   "\"ssn\":\"01038712345\"}]}",
                   "register.json: party 2: duplicate ssn 01038712345 (also party 1)");
    register_error("{\"parties\":[{\"partyId\":1,\"orgNo\":\"910000002\"},{\"partyId\":2},"
                   "{\"partyId\":3,\"orgNo\":\"910000002\"}]}",
                   "register.json: party 3: duplicate orgNo 910000002 (also party 1)");
}

int main(void)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/test_authz.XXXXXX", base);
    if (!mkdtemp(tmpdir) || chdir(tmpdir) != 0) {
        perror("mkdtemp");
        return 2;
    }
    test_globs();
    test_decisions();
    test_load_errors();
    test_random();
    test_big();
    test_register();
    if (chdir("/") == 0) rmdir(tmpdir);
    return done_testing();
}
