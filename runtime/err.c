/* runtime/err.c — the runtime's one error primitive.
 *
 * Every fallible runtime call takes an RtErr and returns false through
 * rt_fail, which formats the message (file and fault) into err->msg.  A NULL
 * err is allowed: the caller only wants the verdict.  Messages longer than
 * the buffer are truncated, never overrun. */
#include <stdarg.h>
#include <stdio.h>

#include "runtime/runtime.h"

bool rt_fail(RtErr *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return false;
}
