/* Long double arithmetic for INCRBYFLOAT, matching redis-server's string2ld / ld2string(LD_STR_HUMAN). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parse like redis's string2ld: the whole buffer, no spaces, no NaN. Returns 1 on success. */
static int parse_ld(const char *s, size_t len, long double *out) {
    char buf[5120];
    char *eptr;
    long double value;
    if (len == 0 || len >= sizeof(buf)) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    value = strtold(buf, &eptr);
    if (isspace((unsigned char)buf[0]) || eptr[0] != '\0' || (size_t)(eptr - buf) != len ||
        (errno == ERANGE && (value == HUGE_VALL || value == -HUGE_VALL || fpclassify(value) == FP_ZERO)) ||
        isnan(value))
        return 0;
    *out = value;
    return 1;
}

/* Returns: 0 ok (result in out), 1 current value is not a float, 2 increment is not a float,
 * 3 result is NaN or infinite, 4 output buffer too small. */
int forkdb_incrbyfloat(const char *cur, size_t curlen, int has_cur, const char *incr, size_t incrlen,
                       char *out, size_t outlen, size_t *written) {
    long double value = 0, by;
    int l;
    if (has_cur && !parse_ld(cur, curlen, &value)) return 1;
    if (!parse_ld(incr, incrlen, &by)) return 2;
    value += by;
    if (isnan(value) || isinf(value)) return 3;
    l = snprintf(out, outlen, "%.17Lf", value);
    if (l < 0 || (size_t)l >= outlen) return 4;
    /* Human form: drop trailing zeros, then a trailing dot, and turn "-0" into "0". */
    if (strchr(out, '.') != NULL) {
        char *p = out + l - 1;
        while (*p == '0') { p--; l--; }
        if (*p == '.') l--;
    }
    if (l == 2 && out[0] == '-' && out[1] == '0') { out[0] = '0'; l = 1; }
    out[l] = '\0';
    *written = (size_t)l;
    return 0;
}
