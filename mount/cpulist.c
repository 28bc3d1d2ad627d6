/*
 * cpulist.c - the Linux cpulist format of /sys/devices/system/cpu/possible
 * ("0-3", "0,2-3,5", a trailing newline).
 *
 * Why a parser of its own: the io_uring transport needs one queue per
 * possible CPU (the kernel's nr_cpu_ids, its highest CPU plus one); a
 * list with holes ("0,2-3") still means queues up to the highest.
 */
#include "cpulist.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

/* One decimal number below limit; the end of it in *end. */
static int num_parse(const char *s, unsigned limit, unsigned *out, const char **end)
{
    if (!isdigit((unsigned char)*s))
        return -EINVAL;
    unsigned long v = 0;
    while (isdigit((unsigned char)*s)) {
        v = v * 10 + (unsigned long)(*s - '0');
        if (v >= limit)
            return -ERANGE;
        s++;
    }
    *out = (unsigned)v;
    *end = s;
    return 0;
}

int cpulist_parse(const char *s, unsigned limit, unsigned *highest)
{
    if (!s || limit == 0)
        return -EINVAL;
    bool any = false;
    unsigned top = 0;
    for (;;) {
        unsigned lo, hi;
        int rc = num_parse(s, limit, &lo, &s);
        if (rc)
            return rc;
        hi = lo;
        if (*s == '-') {
            rc = num_parse(s + 1, limit, &hi, &s);
            if (rc)
                return rc;
            if (hi < lo)
                return -EINVAL;
        }
        if (!any || hi > top)
            top = hi;
        any = true;
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s == '\n')
            s++;
        if (*s != '\0')
            return -EINVAL;
        break;
    }
    *highest = top;
    return 0;
}
