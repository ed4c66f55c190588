/* runtime/npy.c — write float32 arrays as NumPy .npy (format version 1.0).
 *
 * Layout: "\x93NUMPY", version 1.0, a u16 little-endian header length, the
 * header (a Python dict literal padded with spaces and ended by '\n' so that
 * data starts on a 64-byte boundary), then the raw C-order little-endian
 * floats.  The file is written beside its destination as "<path>.tmp.<pid>"
 * and renamed into place, so a reader never sees a partial file; on any
 * failure the temporary is removed and nothing is left at path. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/runtime.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "rt_npy_write_f32 writes host floats as '<f4'; add a byte swap for this host"
#endif

enum { NPY_ALIGN = 64, NPY_PREFIX = 10 };   /* magic 6 + version 2 + header length 2 */

/* Build the padded header into buf (at least 256 bytes); return its length. */
static size_t npy_header(char *buf, size_t cap, const int64_t *shape, int rank)
{
    size_t n = (size_t)snprintf(buf, cap, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < rank; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ", %" PRId64 : "%" PRId64, shape[i]);
    n += (size_t)snprintf(buf + n, cap - n, rank == 1 ? ",), }" : "), }");
    size_t total = NPY_PREFIX + n + 1;            /* + '\n' */
    size_t pad = (NPY_ALIGN - total % NPY_ALIGN) % NPY_ALIGN;
    memset(buf + n, ' ', pad);
    n += pad;
    buf[n++] = '\n';
    return n;
}

bool rt_npy_write_f32(const char *path, const float *data, const int64_t *shape, int rank, RtErr *err)
{
    if (rank < 0 || rank > RT_MAX_RANK)
        return rt_fail(err, "%s: rank %d is outside 0..%d", path, rank, RT_MAX_RANK);
    int64_t numel = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0)
            return rt_fail(err, "%s: dimension %d is negative (%" PRId64 ")", path, i, shape[i]);
        if (shape[i] != 0 && numel > INT64_MAX / 4 / shape[i])
            return rt_fail(err, "%s: array size overflows", path);
        numel *= shape[i];
    }
    if (numel > 0 && !data)
        return rt_fail(err, "%s: no data for %" PRId64 " elements", path, numel);

    /* dict text is at most ~70 + RT_MAX_RANK * 21 bytes, padding < 64 */
    char header[512];
    size_t hlen = npy_header(header, sizeof header, shape, rank);
    unsigned char prefix[NPY_PREFIX] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                        (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};

    size_t tlen = strlen(path) + 32;
    char *tmp = malloc(tlen);
    if (!tmp)
        return rt_fail(err, "%s: out of memory", path);
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0) {
        rt_fail(err, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        free(tmp);
        return false;
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        rt_fail(err, "%s: cannot write %s: %s", path, tmp, strerror(errno));
        close(fd);
        goto fail;
    }
    if (fwrite(prefix, 1, sizeof prefix, f) != sizeof prefix ||
        fwrite(header, 1, hlen, f) != hlen ||
        (numel > 0 && fwrite(data, sizeof *data, (size_t)numel, f) != (size_t)numel)) {
        rt_fail(err, "%s: cannot write %s: %s", path, tmp, strerror(errno));
        fclose(f);
        goto fail;
    }
    if (fclose(f) != 0) {
        rt_fail(err, "%s: cannot write %s: %s", path, tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        rt_fail(err, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        goto fail;
    }
    free(tmp);
    return true;

fail:
    unlink(tmp);
    free(tmp);
    return false;
}
