/*
 * err.c - see err.h.
 */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool err_code_retriable(int code)
{
    return code == ERR_FULL || code == ERR_BUSY || code == ERR_TIMEOUT;
}

static int err_vset(err_t *e, int code, bool retriable, const char *fmt, va_list ap)
{
    if (e == NULL)
        return code;
    e->code = code;
    e->retriable = retriable;
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    return code;
}

int err_set(err_t *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(e, code, err_code_retriable(code), fmt, ap);
    va_end(ap);
    return code;
}

int err_setr(err_t *e, int code, bool retriable, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(e, code, retriable, fmt, ap);
    va_end(ap);
    return code;
}

int err_errno(err_t *e, int errnum, const char *fmt, ...)
{
    int code;
    char what[ERR_MSG_MAX / 2];
    va_list ap;

    switch (errnum) {
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
        code = ERR_FULL;
        break;
    case ENOMEM:
        code = ERR_NOMEM;
        break;
    case EAGAIN:
    case EBUSY:
        code = ERR_BUSY;
        break;
    default:
        code = ERR_IO;
        break;
    }
    if (e == NULL)
        return code;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return err_set(e, code, "%s: %s", what, strerror(errnum));
}

int err_wrap(err_t *e, const char *fmt, ...)
{
    char old[ERR_MSG_MAX];
    size_t n;
    va_list ap;

    if (e == NULL)
        return ERR_OK;
    memcpy(old, e->msg, sizeof(old));
    va_start(ap, fmt);
    n = (size_t)vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    if (n + 2 < sizeof(e->msg)) {
        size_t room = sizeof(e->msg) - n - 2;
        size_t ol = strnlen(old, sizeof(old) - 1);
        if (ol > room - 1)
            ol = room - 1;
        memcpy(e->msg + n, ": ", 2);
        memcpy(e->msg + n + 2, old, ol);
        e->msg[n + 2 + ol] = '\0';
    }
    return e->code;
}

void err_clear(err_t *e)
{
    if (e == NULL)
        return;
    e->code = ERR_OK;
    e->retriable = false;
    e->msg[0] = '\0';
}

const char *err_code_name(int code)
{
    static const char *const names[] = {
        "ok", "invalid", "not_found", "exists", "unsupported", "io",
        "corrupt", "nomem", "full", "busy", "too_large", "closed",
        "forbidden", "timeout",
    };
    if (code < 0 || (size_t)code >= sizeof(names) / sizeof(names[0]))
        return "unknown";
    return names[code];
}
