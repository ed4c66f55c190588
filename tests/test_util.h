/* tests/test_util.h — helpers every test binary may use. */
#ifndef MODELC_TEST_UTIL_H
#define MODELC_TEST_UTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

#include "frontend/diag.h"

static int test_rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

/* rm -rf dir (a test's temporary directory); 0 on success. */
static inline int test_rm_rf(const char *dir)
{
    return nftw(dir, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The diagnostics as diag_print renders them, in a malloc'd string (not inlined: GCC 12
 * then takes the string for a pointer into the open_memstream local). */
static __attribute__((unused, noinline)) char *test_diag_text(const Diags *d)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    diag_print(d, f);
    fclose(f);
    return buf;
}

#endif
