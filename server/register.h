/* server/register: the register lookup table behind `--register FILE` (api.md §3, §4, §6).
 *
 * Altinn resolves persons (national identity numbers), units (organisation numbers) and sub-units
 * through its register service; hendelse reads the same facts from a file:
 *
 *   {"parties":[{"partyId":50001,"ssn":"01038712345"},
 *               {"partyId":50003,"orgNo":"910000003","mainUnit":50002}, ...]}
 *
 * partyId: integer > 0, required, unique. ssn: a string of exactly 11 ASCII digits, optional,
 * unique. orgNo: a string of exactly 9 ASCII digits, optional, unique. mainUnit: integer > 0 and
 * different from partyId, optional: the party is a sub-unit of that main unit (which need not be
 * listed itself). No other keys are accepted.
 *
 * The table is immutable after load: lookups take a const pointer, are hash lookups (O(1)),
 * allocate nothing and may run concurrently. A NULL table means "no register configured": every
 * lookup on it finds nothing. */
#ifndef HENDELSE_SERVER_REGISTER_H
#define HENDELSE_SERVER_REGISTER_H

#include <stddef.h>
#include <stdint.h>

/* Owned by the caller of srv_register_load; freed with srv_register_free. */
typedef struct srv_register srv_register_t;

/* Reads the register file at path (at most 16 MiB). Returns a new table, or NULL on any error with
 * one line in err (NUL-terminated, at most errlen bytes; err may be NULL) naming the file and what
 * is wrong, e.g. "register.json: party 2: 'ssn' must be a string of 11 digits" or
 * "register.json: party 4: duplicate partyId 50001 (also party 1)". An empty parties list is valid.
 */
srv_register_t *srv_register_load(const char *path, char *err, size_t errlen);

/* Frees the table. NULL is allowed. */
void srv_register_free(srv_register_t *r);

/* The number of parties in the table; 0 for NULL. */
size_t srv_register_count(const srv_register_t *r);

/* The party id of the person with this ssn (NUL-terminated), or 0 if unknown (or r/ssn NULL). */
int64_t srv_register_party_by_ssn(const srv_register_t *r, const char *ssn);

/* The party id of the unit with this organisation number, or 0 if unknown (or r/orgno NULL). */
int64_t srv_register_party_by_orgno(const srv_register_t *r, const char *orgno);

/* The organisation number of a listed party, or NULL if the party is unknown or has none. The
 * string is owned by the table and lives until srv_register_free. */
const char *srv_register_orgno_of_party(const srv_register_t *r, int64_t party);

/* The main unit of a listed sub-unit party, or 0 if the party is unknown or not a sub-unit. */
int64_t srv_register_main_unit(const srv_register_t *r, int64_t party);

/* For includeSubunits: given an event subject "/party/{id}" or
 * "urn:altinn:organization:identifier-no:{orgno}" (exact spelling, decimal id without sign or
 * leading zeros, orgno 9 digits) whose party is a sub-unit, writes the subjects a subscription on
 * the main unit would use: "/party/{mainId}" and, when the main unit is listed with an orgNo,
 * "urn:altinn:organization:identifier-no:{mainOrgNo}", each NUL-terminated in out[0..max). Returns
 * how many were written (at most max): 0 when the subject has another form, the party is unknown or
 * not a sub-unit, r or event_subject is NULL, or max <= 0. */
int srv_register_main_unit_subjects(const srv_register_t *r, const char *event_subject,
                                    char out[][96], int max);

#endif
