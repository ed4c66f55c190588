/* tests/test_util.h — helpers every test binary may use. */
#ifndef MODELC_TEST_UTIL_H
#define MODELC_TEST_UTIL_H

#include <ftw.h>
#include <stdio.h>

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

#endif
