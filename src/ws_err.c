/*
 * ws_err.c - the status table turned into lookups, and close code names.
 *
 * Everything here is generated from WS_STATUS_TABLE in ws.h, so names,
 * messages, close codes and HTTP statuses cannot drift apart.
 */
#include "ws_internal.h"

struct status_info {
    int value;
    unsigned close_code;
    unsigned http_status;
    const char *name;
    const char *message;
};

static const struct status_info status_table[] = {
#define WS_X_INFO(name, value, close, http, msg) {value, close, http, #name, msg},
    WS_STATUS_TABLE(WS_X_INFO)
#undef WS_X_INFO
};

static const struct status_info *find_status(int status)
{
    size_t i;

    for (i = 0; i < sizeof status_table / sizeof status_table[0]; i++)
        if (status_table[i].value == status)
            return &status_table[i];
    return NULL;
}

/* see ws.h */
const char *ws_strerror(int status)
{
    const struct status_info *s = find_status(status);
    return s ? s->message : "unknown status";
}

/* see ws.h */
const char *ws_err_name(int status)
{
    const struct status_info *s = find_status(status);
    return s ? s->name : "WS_UNKNOWN";
}

/* see ws.h */
unsigned ws_err_close_code(int status)
{
    const struct status_info *s = find_status(status);
    return s ? s->close_code : 0;
}

/* see ws.h */
unsigned ws_err_http_status(int status)
{
    const struct status_info *s = find_status(status);
    return s ? s->http_status : 0;
}

/* see ws.h */
int ws_err_is_fatal(int status)
{
    return status <= -300 && find_status(status) != NULL;
}

/* see ws.h */
int ws_close_code_is_valid(unsigned code)
{
    /* RFC 6455 7.4.1, 7.4.2 and the IANA registry (11.7): 1004 is reserved,
     * 1005, 1006 and 1015 must never be sent, 1016-2999 are unassigned, and
     * 0-999 and 5000+ are not used. 1012-1014 were registered after the
     * RFC and are valid on the wire. */
    if (code >= 1000 && code <= 1003)
        return 1;
    if (code >= 1007 && code <= 1014)
        return 1;
    return code >= 3000 && code <= 4999;
}

/* see ws.h */
const char *ws_close_code_str(unsigned code)
{
    switch (code) {
    case 1000: return "normal closure";
    case 1001: return "going away";
    case 1002: return "protocol error";
    case 1003: return "unsupported data";
    case 1004: return "reserved (1004)";
    case 1005: return "no status received";
    case 1006: return "abnormal closure";
    case 1007: return "invalid frame payload data";
    case 1008: return "policy violation";
    case 1009: return "message too big";
    case 1010: return "mandatory extension";
    case 1011: return "internal error";
    case 1012: return "service restart";
    case 1013: return "try again later";
    case 1014: return "bad gateway";
    case 1015: return "TLS handshake failure";
    default: break;
    }
    if (code >= 1016 && code <= 2999)
        return "reserved (unassigned)";
    if (code >= 3000 && code <= 3999)
        return "registered (IANA)";
    if (code >= 4000 && code <= 4999)
        return "private use";
    return "invalid";
}
