/*
 * An in-memory rvm_io_methods for the recovery fuzzer: files are byte
 * arrays named by path, so a fuzzed log can name any segment path
 * (even /etc/passwd) without touching the real file system, and nothing
 * waits for a disk.
 */
#ifndef TORTURE_MEMIO_H
#define TORTURE_MEMIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rvm_io.h"

#define MEMIO_MAX_FILE (8u << 20)   /* writes past this fail with -EFBIG */

const rvm_io_methods *memio_methods(void);
/* Drop every file.  With auto_create, opening a missing file creates it
 * even without O_CREAT (so that recovery finds the segments a log names). */
void memio_reset(bool auto_create);
/* Change auto_create, keeping the files. */
void memio_reset_auto(bool auto_create);
/* Create or replace a file with these bytes. */
int memio_put(const char *path, const void *data, size_t len);
/* The bytes of a file (NULL if missing); valid until the next call. */
const unsigned char *memio_get(const char *path, size_t *len);

#endif
