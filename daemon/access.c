/* access: the access file, which maps TLS client certificate subjects to roles.
 *
 *   {"admin": ["CN=ops-*", "CN=alice,O=lab"], "read-only": ["CN=monitor", "OU=audit"]}
 *
 * A subject is the client certificate's subject DN in OpenSSL's RFC 2253 one-line form, most
 * specific first: "CN=ops-1,O=lab" (`openssl x509 -noout -subject -nameopt RFC2253`). A pattern
 * is written the same way, as one or more comma-separated attributes TYPE=VALUE where VALUE may
 * hold fnmatch wildcards (* ? [...]); it matches a subject that has every one of these attributes,
 * in any order, whatever else it has: "CN=ops-*" matches "CN=ops-1,O=lab"; "CN=ops-*,O=lab" also
 * requires O=lab; "*" matches every subject. A wildcard never spans two attributes. Types are
 * written as OpenSSL prints them (CN, O, OU, L, ST, C, emailAddress...), case-sensitively;
 * special characters in values are escaped as RFC 2253 says ("CN=a\,b") in both.
 *
 * A subject gets the highest role one of whose patterns matches (admin over read-only), so that
 * {"admin": ["CN=ops-*"], "read-only": ["*"]} reads as written. No match: the client is refused.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/vmd.h"

struct access_rule {
    enum vmd_role role;
    char *pattern;
};

struct access_policy {
    struct access_rule *rules;
    size_t n;
};

const char *vmd_role_name(enum vmd_role r)
{
    switch (r) {
    case ROLE_ADMIN: return "admin";
    case ROLE_READ_ONLY: return "read-only";
    default: return "none";
    }
}

size_t access_rule_count(const struct access_policy *p) { return p ? p->n : 0; }

void access_free(struct access_policy *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) free(p->rules[i].pattern);
    free(p->rules);
    free(p);
}

/* Split s at its unescaped ',' and '+' (RFC 2253 separators) into at most max parts (pointers
 * into s, which is modified). Returns the number of parts, or -1 if there are more than max. */
static int split_avas(char *s, char **parts, int max)
{
    int n = 0;
    char *start = s;
    for (char *p = s;; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            continue;
        }
        if (*p == ',' || *p == '+' || !*p) {
            bool end = !*p;
            *p = 0;
            if (n == max) return -1;
            parts[n++] = start;
            if (end) break;
            start = p + 1;
        }
    }
    return n;
}

#define MAX_AVAS 32

static bool pattern_matches(const char *pattern, const char *subject)
{
    char pbuf[512], sbuf[512];
    char *pav[MAX_AVAS], *sav[MAX_AVAS];
    if (snprintf(pbuf, sizeof(pbuf), "%s", pattern) >= (int)sizeof(pbuf)) return false;
    if (snprintf(sbuf, sizeof(sbuf), "%s", subject) >= (int)sizeof(sbuf)) return false;
    int np = split_avas(pbuf, pav, MAX_AVAS), ns = split_avas(sbuf, sav, MAX_AVAS);
    if (np < 0 || ns < 0) return false;
    for (int i = 0; i < np; i++) {
        bool found = false;
        for (int k = 0; k < ns && !found; k++) found = fnmatch(pav[i], sav[k], FNM_NOESCAPE) == 0;
        if (!found) return false;
    }
    return true;
}

enum vmd_role access_role(const struct access_policy *p, const char *subject)
{
    if (!p) return ROLE_ADMIN; /* no access file: every CA-signed client is admin */
    enum vmd_role best = ROLE_NONE;
    for (size_t i = 0; i < p->n; i++)
        if (p->rules[i].role > best && pattern_matches(p->rules[i].pattern, subject)) best = p->rules[i].role;
    return best;
}

static int check_pattern(const char *pat, char *err, size_t errlen)
{
    char buf[512];
    char *parts[MAX_AVAS];
    if (!*pat || snprintf(buf, sizeof(buf), "%s", pat) >= (int)sizeof(buf)) {
        snprintf(err, errlen, "pattern \"%.80s\": empty or longer than 511 characters", pat);
        return -1;
    }
    int n = split_avas(buf, parts, MAX_AVAS);
    if (n < 0) {
        snprintf(err, errlen, "pattern \"%.80s\": more than %d attributes", pat, MAX_AVAS);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (strcmp(parts[i], "*") && !strchr(parts[i], '=')) {
            snprintf(err, errlen, "pattern \"%.80s\": \"%.80s\" is not TYPE=VALUE (e.g. CN=ops-*)", pat, parts[i]);
            return -1;
        }
    return 0;
}

int access_load(const char *path, struct access_policy **out, char *err, size_t errlen)
{
    err[0] = 0;
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) {
        snprintf(err, errlen, "access file '%s': %s (line %d)", path, je.text, je.line);
        return -EINVAL;
    }
    struct access_policy *p = calloc(1, sizeof(*p));
    int r = -EINVAL;
    if (!p) goto fail;
    if (!json_is_object(j)) {
        snprintf(err, errlen, "access file '%s': not a JSON object", path);
        goto fail;
    }
    const char *role;
    json_t *list;
    json_object_foreach(j, role, list) {
        enum vmd_role rv;
        if (!strcmp(role, "admin")) rv = ROLE_ADMIN;
        else if (!strcmp(role, "read-only")) rv = ROLE_READ_ONLY;
        else {
            snprintf(err, errlen, "access file '%s': unknown role '%s' (roles: admin, read-only)", path, role);
            goto fail;
        }
        if (!json_is_array(list)) {
            snprintf(err, errlen, "access file '%s': '%s' must be an array of subject patterns", path, role);
            goto fail;
        }
        size_t i;
        json_t *pat;
        json_array_foreach(list, i, pat) {
            char perr[256];
            if (!json_is_string(pat) || strlen(json_string_value(pat)) != json_string_length(pat)) {
                snprintf(err, errlen, "access file '%s': '%s' item %zu is not a string", path, role, i);
                goto fail;
            }
            if (check_pattern(json_string_value(pat), perr, sizeof(perr))) {
                snprintf(err, errlen, "access file '%s': '%s': %s", path, role, perr);
                goto fail;
            }
            struct access_rule *nr = realloc(p->rules, (p->n + 1) * sizeof(*nr));
            if (!nr) goto fail;
            p->rules = nr;
            nr[p->n].role = rv;
            nr[p->n].pattern = strdup(json_string_value(pat));
            if (!nr[p->n].pattern) goto fail;
            p->n++;
        }
    }
    json_decref(j);
    *out = p;
    return 0;
fail:
    if (!err[0]) snprintf(err, errlen, "access file '%s': out of memory", path);
    access_free(p);
    json_decref(j);
    return r;
}
