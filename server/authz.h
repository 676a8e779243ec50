/* server/authz: the policy authorizer behind `--authz FILE` (api.md §6).
 *
 * A policy is an ordered list of rules over (action, resource, consumer, subject):
 *
 *   {"rules":[{"effect":"permit"|"deny","actions":["publish","subscribe","read"],
 *              "resource":GLOB,"consumer":GLOB,"subject":GLOB?}]}
 *
 * Globs: '*' matches any run of characters (also the empty one); every other character is literal
 * and compared case-sensitively. In a subject glob, the text "{consumer}" stands for the id part of
 * the consumer being decided (the text after its last '/': "/org/ttd" -> "ttd"); the id is
 * substituted as literal text, so a '*' inside a consumer id never acts as a wildcard.
 *
 * Decision: the first rule (in file order) that matches decides; no matching rule means deny. A
 * rule matches when the action is among its actions, the resource and the consumer match their
 * globs and, if the rule has a subject glob, the subject matches it. A NULL subject means "no
 * particular subject is being decided" (a subscription without subjectFilter): rules with a subject
 * glob are then skipped, neither permitting nor denying. Callers check an event without a subject
 * as "".
 *
 * "allow-all" is a NULL policy: every check on it permits.
 *
 * Decisions are computed afresh on every call and nothing is cached, so a policy is immutable after
 * load: checks take a const pointer, allocate nothing and may run concurrently. The globs are
 * compiled at load and the rules are indexed by the literal text of their resource or consumer
 * glob, so a check only examines rules that can match. */
#ifndef HENDELSE_SERVER_AUTHZ_H
#define HENDELSE_SERVER_AUTHZ_H

#include <stddef.h>

typedef enum {
    SRV_AUTHZ_PUBLISH = 0,
    SRV_AUTHZ_SUBSCRIBE = 1,
    SRV_AUTHZ_READ = 2,
} srv_authz_action_t;

/* A loaded policy. Owned by the caller of srv_authz_load; freed with srv_authz_free. */
typedef struct srv_authz srv_authz_t;

/* Reads and compiles the policy file at path (at most 16 MiB). Returns a new policy, or NULL on any
 * error with one line in err (NUL-terminated, at most errlen bytes; err may be NULL) that names the
 * file and what is wrong, e.g. "policy.json: rule 3: 'effect' must be \"permit\" or \"deny\"".
 * Errors: unreadable file, invalid JSON, a root that is not an object with exactly the member
 * "rules" (an array), a rule that is not an object, unknown keys, missing effect/actions/resource/
 * consumer, wrong types, an empty actions list, an unknown action, a NUL byte in a glob. An empty
 * rules list is valid and denies everything. */
srv_authz_t *srv_authz_load(const char *path, char *err, size_t errlen);

/* Frees a policy and everything it owns. NULL is allowed. */
void srv_authz_free(srv_authz_t *a);

/* The number of rules in the policy; 0 for NULL (allow-all). */
size_t srv_authz_rule_count(const srv_authz_t *a);

/* Decides whether consumer may perform action on resource (and subject, see above). Returns 1 to
 * permit, 0 to deny. a == NULL permits everything. resource and consumer are NUL-terminated; NULL
 * is treated as "". subject may be NULL (rules with a subject glob are skipped). action must be one
 * of the enum values. Allocates nothing; never caches. */
int srv_authz_check(const srv_authz_t *a, srv_authz_action_t action, const char *resource,
                    const char *consumer, const char *subject);

#endif
