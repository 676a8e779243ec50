/* Fuzz target: the policy and register file loaders (server/authz.c, server/register.c,
 * server/fileutil.c).
 *
 * Both loaders take a path: the input is written to a memfd and each loader is given
 * /proc/self/fd/N, so the real file reader runs too. Every input goes to both loaders.
 * - A failed load returns NULL with one line (no control bytes) that names the file.
 * - A loaded policy is checked against a naive reference: the rules re-read from the JSON, globs
 *   matched by a plain backtracking-free DP ('*' any run, {consumer} in subject globs replaced by
 *   the consumer's id as literal text), first matching rule decides, none denies. Queries are
 *   made from the policy's own globs ('*' replaced by "", "x" and "/a*b"), for every action, with
 *   and without a subject. srv_authz_check (an indexed lookup) must agree on every one.
 * - A loaded register is checked against the parties in the JSON: count, ssn/orgNo lookups, the
 *   orgNo and main unit of each party, and the main-unit subjects of each sub-unit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "filter/json.h"
#include "server/authz.h"
#include "server/register.h"
#include "fuzz.h"

static int fd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fd = memfd_create("policy", 0);
    if (fd < 0) abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return 0;
}

static void check_error(const char *err)
{
    FUZZ_CHECK(err[0]);
    FUZZ_CHECK(strncmp(err, path, strlen(path)) == 0);
    for (const unsigned char *p = (const unsigned char *)err; *p; p++)
        FUZZ_CHECK(*p >= 0x20 && *p != 0x7f);
}

/* ---- the reference authorizer ---- */

/* Whether text matches glob, where in glob '*' is a wildcard except inside the byte ranges that
 * came from a substituted id (lit[i] set). DP over (glob position, text position). */
static int glob_dp(const char *g, const char *lit, size_t gn, const char *t, size_t tn)
{
    unsigned char *row = calloc(tn + 1, 1), *next = calloc(tn + 1, 1);
    row[0] = 1;
    for (size_t i = 0; i < gn; i++) {
        int star = g[i] == '*' && !lit[i];
        memset(next, 0, tn + 1);
        for (size_t j = 0; j <= tn; j++) {
            if (star) {
                /* * matches t[j'..j) for any j' <= j */
                if (row[j] || (j > 0 && next[j - 1])) next[j] = 1;
            } else if (j > 0 && row[j - 1] && t[j - 1] == g[i]) {
                next[j] = 1;
            }
        }
        unsigned char *tmp = row;
        row = next;
        next = tmp;
    }
    int m = row[tn];
    free(row);
    free(next);
    return m;
}

static int ref_match(const filter_json_t *glob, int subject, const char *id, const char *text)
{
    size_t idl = strlen(id), cap = glob->len * (idl + 1) + 1;
    char *g = malloc(cap), *lit = malloc(cap);
    size_t n = 0;
    for (size_t i = 0; i < glob->len;) {
        if (subject && glob->len - i >= 10 && memcmp(glob->str + i, "{consumer}", 10) == 0) {
            memcpy(g + n, id, idl);
            memset(lit + n, 1, idl);
            n += idl;
            i += 10;
        } else {
            g[n] = glob->str[i++];
            lit[n++] = 0;
        }
    }
    int m = glob_dp(g, lit, n, text, strlen(text));
    free(g);
    free(lit);
    return m;
}

static const char *const action_names[3] = {"publish", "subscribe", "read"};

static int ref_check(const filter_json_t *rules, int action, const char *res, const char *cons,
                     const char *subj)
{
    const char *slash = strrchr(cons, '/');
    const char *id = slash ? slash + 1 : cons;
    for (size_t i = 0; i < rules->count; i++) {
        const filter_json_t *r = rules->items[i];
        const filter_json_t *acts = filter_json_get(r, "actions");
        int has = 0;
        for (size_t k = 0; k < acts->count; k++)
            if (strcmp(acts->items[k]->str, action_names[action]) == 0) has = 1;
        if (!has) continue;
        if (!ref_match(filter_json_get(r, "resource"), 0, id, res)) continue;
        if (!ref_match(filter_json_get(r, "consumer"), 0, id, cons)) continue;
        const filter_json_t *sg = filter_json_get(r, "subject");
        if (sg) {
            if (!subj || !ref_match(sg, 1, id, subj)) continue;
        }
        return strcmp(filter_json_get(r, "effect")->str, "permit") == 0;
    }
    return 0;
}

/* A text made from a glob: each '*' replaced by fill. */
static char *instance(const filter_json_t *glob, const char *fill)
{
    size_t fl = strlen(fill);
    char *s = malloc(glob->len * (fl + 1) + 1), *o = s;
    for (size_t i = 0; i < glob->len; i++) {
        if (glob->str[i] == '*') {
            memcpy(o, fill, fl);
            o += fl;
        } else {
            *o++ = glob->str[i];
        }
    }
    *o = '\0';
    return s;
}

static void check_policy(const srv_authz_t *a, const uint8_t *data, size_t size)
{
    filter_json_doc_t *doc;
    filter_json_limits_t lim = {0, 16, 0};
    FUZZ_CHECK(filter_json_parse((const char *)data, size, &lim, &doc, NULL, 0) == 0);
    const filter_json_t *rules = filter_json_get(filter_json_root(doc), "rules");
    FUZZ_CHECK(rules && srv_authz_rule_count(a) == rules->count);

    static const char *const fills[] = {"", "x", "/a*b"};
    size_t nr = rules->count < 6 ? rules->count : 6;
    for (size_t i = 0; i < nr + 1; i++) {
        const filter_json_t *r = i < nr ? rules->items[i] : NULL;
        for (size_t f = 0; f < 3; f++) {
            char *res = r ? instance(filter_json_get(r, "resource"), fills[f]) : strdup("urn:x");
            char *cons =
                r ? instance(filter_json_get(r, "consumer"), fills[f]) : strdup("/org/ttd");
            const filter_json_t *sg = r ? filter_json_get(r, "subject") : NULL;
            char *subj = sg ? instance(sg, fills[f]) : strdup("/party/1");
            /* the subject glob's placeholder filled with the consumer's id */
            const char *slash = strrchr(cons, '/');
            const char *id = slash ? slash + 1 : cons;
            char *subj2 = NULL;
            if (sg) {
                size_t cap = strlen(subj) * (strlen(id) + 1) + 1;
                subj2 = malloc(cap);
                char *o = subj2;
                for (const char *p = subj; *p;) {
                    if (strncmp(p, "{consumer}", 10) == 0) {
                        strcpy(o, id);
                        o += strlen(id);
                        p += 10;
                    } else {
                        *o++ = *p++;
                    }
                }
                *o = '\0';
            }
            const char *subjects[] = {NULL, "", subj, subj2};
            for (int act = 0; act < 3; act++)
                for (int s = 0; s < 4; s++) {
                    if (s == 3 && !subj2) continue;
                    int got = srv_authz_check(a, (srv_authz_action_t)act, res, cons, subjects[s]);
                    int want = ref_check(rules, act, res, cons, subjects[s]);
                    if (got != want) {
                        fprintf(
                            stderr,
                            "authz: action %s resource '%s' consumer '%s' subject '%s': got %d, "
                            "reference %d\n",
                            action_names[act], res, cons, subjects[s] ? subjects[s] : "(null)", got,
                            want);
                        FUZZ_CHECK(0);
                    }
                }
            free(res);
            free(cons);
            free(subj);
            free(subj2);
        }
    }
    filter_json_doc_free(doc);
}

/* ---- the register ---- */

static void check_register(const srv_register_t *r, const uint8_t *data, size_t size)
{
    filter_json_doc_t *doc;
    filter_json_limits_t lim = {0, 16, 0};
    FUZZ_CHECK(filter_json_parse((const char *)data, size, &lim, &doc, NULL, 0) == 0);
    const filter_json_t *parties = filter_json_get(filter_json_root(doc), "parties");
    FUZZ_CHECK(parties && srv_register_count(r) == parties->count);
    for (size_t i = 0; i < parties->count && i < 64; i++) {
        const filter_json_t *p = parties->items[i];
        int64_t id = 0, main = 0;
        FUZZ_CHECK(filter_json_int64(filter_json_get(p, "partyId"), &id) && id > 0);
        const filter_json_t *ssn = filter_json_get(p, "ssn");
        const filter_json_t *orgno = filter_json_get(p, "orgNo");
        const filter_json_t *mu = filter_json_get(p, "mainUnit");
        if (ssn) FUZZ_CHECK(srv_register_party_by_ssn(r, ssn->str) == id);
        if (orgno) {
            FUZZ_CHECK(srv_register_party_by_orgno(r, orgno->str) == id);
            const char *o = srv_register_orgno_of_party(r, id);
            FUZZ_CHECK(o && strcmp(o, orgno->str) == 0);
        } else {
            FUZZ_CHECK(srv_register_orgno_of_party(r, id) == NULL);
        }
        if (mu) FUZZ_CHECK(filter_json_int64(mu, &main) && main > 0 && main != id);
        FUZZ_CHECK(srv_register_main_unit(r, id) == main);

        char subj[64], out[2][96];
        snprintf(subj, sizeof subj, "/party/%lld", (long long)id);
        int n = srv_register_main_unit_subjects(r, subj, out, 2);
        if (!main) {
            FUZZ_CHECK(n == 0);
            continue;
        }
        FUZZ_CHECK(n >= 1);
        char want[96];
        snprintf(want, sizeof want, "/party/%lld", (long long)main);
        FUZZ_CHECK(strcmp(out[0], want) == 0);
        const char *mo = srv_register_orgno_of_party(r, main);
        FUZZ_CHECK(n == (mo ? 2 : 1));
        if (mo) {
            snprintf(want, sizeof want, "urn:altinn:organization:identifier-no:%s", mo);
            FUZZ_CHECK(strcmp(out[1], want) == 0);
        }
        if (orgno) {
            char urn[96], out2[2][96];
            snprintf(urn, sizeof urn, "urn:altinn:organization:identifier-no:%s", orgno->str);
            FUZZ_CHECK(srv_register_main_unit_subjects(r, urn, out2, 2) == n);
        }
    }
    filter_json_doc_free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) abort();

    err[0] = '\0';
    srv_authz_t *a = srv_authz_load(path, err, sizeof err);
    if (a)
        check_policy(a, data, size);
    else
        check_error(err);
    srv_authz_free(a);

    err[0] = '\0';
    srv_register_t *r = srv_register_load(path, err, sizeof err);
    if (r)
        check_register(r, data, size);
    else
        check_error(err);
    srv_register_free(r);
    return 0;
}
