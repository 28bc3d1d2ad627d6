/*
 * cpulist.h - parse a Linux cpulist ("0", "0-3", "0,2-3,5", as in
 * /sys/devices/system/cpu/possible).
 */
#ifndef RVMFS_CPULIST_H
#define RVMFS_CPULIST_H

#include <stdbool.h>

/* Parse the cpulist s (comma-separated CPUs or lo-hi ranges, one trailing
 * newline allowed) and store its highest CPU in *highest.  Errors:
 * -EINVAL for anything else (empty, stray characters, hi < lo), -ERANGE
 * for a CPU number >= limit; *highest is then unchanged.  Pure: any
 * thread. */
int cpulist_parse(const char *s, unsigned limit, unsigned *highest);

#endif
