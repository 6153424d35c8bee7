/*
 * wsdump.c - a WebSocket frame dissector for students (RFC 6455).
 *
 * Reads bytes (a file, stdin or a hex string) and prints each frame on one
 * line: FIN, RSV, opcode, masking key, length, the unmasked payload (text
 * or hex) and its UTF-8 validity, followed by every rule the frame breaks,
 * with the RFC section. It tracks fragmentation the way a receiver does
 * (RFC 6455 5.4), so continuation errors and UTF-8 errors that span
 * fragments are found too. A captured opening handshake (RFC 6455 4) at
 * the start of the input is decoded first.
 *
 * Only the public API of ws.h is used: ws_frame_decode_header() for the
 * header and the rules every frame obeys (5.2, 5.5), ws_mask() to unmask,
 * the incremental validator ws_utf8_feed() for text (8.1), the close code
 * helpers (7.4) and the handshake parsers.
 *
 * Memory is bounded: the input is streamed through one fixed buffer, and a
 * payload is shown up to --max-payload bytes (64 by default) while the
 * rest is still unmasked and validated. Exit status: 0 clean stream,
 * 1 protocol errors (or a truncated stream), 2 usage or input errors.
 */
#define _POSIX_C_SOURCE 200809L
#include <ws.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUF_SIZE 65536       /* the stream buffer (decoded bytes) */
#define RAW_SIZE 8192        /* one read of hex text */
#define HEAD_MAX 16384       /* the longest HTTP head we look for */
#define NOTE_MAX 8           /* messages kept per frame */
#define NOTE_LEN 200
#define DEFAULT_SHOW 64      /* payload bytes shown by default */

enum { EXIT_CLEAN = 0, EXIT_PROTOCOL = 1, EXIT_USAGE = 2 };

/* Who sent the bytes: decides the masking rule (RFC 6455 5.1). */
enum sender { SENDER_ANY = 0, SENDER_SERVER, SENDER_CLIENT };

/* How a payload is shown. */
enum { SHOW_HEX = 0, SHOW_TEXT = 1 };

struct options {
    const char *path;        /* NULL or "-": stdin */
    const char *hex;         /* --hex STRING */
    int hex_input;           /* --hex-input: the file/stdin is hex text */
    int sender;              /* --role, or SENDER_ANY */
    int handshake;           /* 1 --handshake, 0 auto, -1 --no-handshake */
    const char *key;         /* --key: verify a response's accept value */
    uint64_t max_payload;    /* --max-payload N, --full */
    int allow_rsv;           /* --allow-rsv BITS, or -1 */
    int json;
};

/* ------------------------------------------------------------------------ */
/* Input: a file descriptor or a string, raw or hex, through one buffer     */
/* ------------------------------------------------------------------------ */

struct input {
    int fd;                  /* -1: read from str */
    const char *str;
    size_t str_len, str_pos;
    int hex;                 /* the source is hex text */
    int nibble;              /* pending high nibble, or -1 */
    unsigned tok_digits;     /* hex digits in the current token */
    int comment;             /* inside a '#' comment */
    uint64_t hex_pos;        /* hex characters read, for messages */
    int eof;
    int failed;              /* read error or bad hex (exit 2) */
    uint8_t buf[BUF_SIZE];
    size_t start, end;       /* unread bytes are buf[start..end) */
    uint64_t base;           /* stream offset of buf[start] */
};

static struct input g_in;    /* 64 KiB: static, not on the stack */

static size_t read_source(struct input *in, uint8_t *dst, size_t cap)
{
    size_t n;

    if (in->fd < 0) {
        n = in->str_len - in->str_pos;
        if (n > cap)
            n = cap;
        memcpy(dst, in->str + in->str_pos, n);
        in->str_pos += n;
        return n;
    }
    for (;;) {
        ssize_t r = read(in->fd, dst, cap);
        if (r >= 0)
            return (size_t)r;
        if (errno != EINTR) {
            fflush(stdout);
            fprintf(stderr, "wsdump: read error: %s\n", strerror(errno));
            in->failed = 1;
            return 0;
        }
    }
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void hex_error(struct input *in, const char *what, int c)
{
    fflush(stdout);
    if (c >= 0x21 && c < 0x7f)
        fprintf(stderr, "wsdump: hex input: %s '%c' at character %" PRIu64
                "\n", what, c, in->hex_pos);
    else
        fprintf(stderr, "wsdump: hex input: %s at character %" PRIu64 "\n",
                what, in->hex_pos);
    in->failed = 1;
}

/* Ends a token of hex digits: an odd count means a lost nibble. */
static void hex_end_token(struct input *in)
{
    if (in->nibble >= 0)
        hex_error(in, "odd number of hex digits (a lone nibble)", -1);
    in->nibble = -1;
    in->tok_digits = 0;
}

/*
 * Decodes hex text: pairs of digits, with spaces, tabs, newlines, ':',
 * ',' and '-' between bytes, "0x" prefixes, and '#' comments to the end of
 * the line. Writes at most n / 2 bytes. Stops at the first bad character.
 */
static size_t decode_hex(struct input *in, const uint8_t *src, size_t n,
                         uint8_t *dst)
{
    size_t i, out = 0;

    for (i = 0; i < n && !in->failed; i++) {
        int c = src[i], v;

        in->hex_pos++;
        if (in->comment) {
            in->comment = c != '\n';
            continue;
        }
        if (c == '#' || c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
            c == ':' || c == ',' || c == '-') {
            hex_end_token(in);
            in->comment = c == '#';
            continue;
        }
        if ((c == 'x' || c == 'X') && in->tok_digits == 1 && in->nibble == 0) {
            in->nibble = -1;        /* "0x" prefix */
            in->tok_digits = 0;
            continue;
        }
        v = hex_value(c);
        if (v < 0) {
            hex_error(in, "invalid character", c);
            break;
        }
        in->tok_digits++;
        if (in->nibble < 0) {
            in->nibble = v;
        } else {
            dst[out++] = (uint8_t)(in->nibble << 4 | v);
            in->nibble = -1;
        }
    }
    return out;
}

static size_t input_avail(const struct input *in)
{
    return in->end - in->start;
}

static const uint8_t *input_data(const struct input *in)
{
    return in->buf + in->start;
}

static void input_consume(struct input *in, size_t n)
{
    in->start += n;
    in->base += n;
}

/* Reads until at least need (<= BUF_SIZE) bytes are buffered or the input
 * ends. Returns the bytes available. */
static size_t input_fill(struct input *in, size_t need)
{
    static uint8_t raw[RAW_SIZE];

    if (input_avail(in) >= need || in->eof || in->failed)
        return input_avail(in);
    if (in->start > 0) {
        memmove(in->buf, in->buf + in->start, input_avail(in));
        in->end -= in->start;
        in->start = 0;
    }
    while (in->end < need && !in->eof && !in->failed) {
        size_t room = BUF_SIZE - in->end, n;

        if (!in->hex) {
            n = read_source(in, in->buf + in->end, room);
            if (n == 0)
                in->eof = 1;
            in->end += n;
            continue;
        }
        /* Every decoded byte takes at least two characters. */
        n = read_source(in, raw, room * 2 < RAW_SIZE ? room * 2 : RAW_SIZE);
        if (n == 0) {
            in->eof = 1;
            hex_end_token(in);
            break;
        }
        in->end += decode_hex(in, raw, n, in->buf + in->end);
    }
    return input_avail(in);
}

/* ------------------------------------------------------------------------ */
/* Output helpers                                                           */
/* ------------------------------------------------------------------------ */

static void json_string(const uint8_t *p, size_t n)
{
    size_t i;
    int bad = ws_utf8_check(p, n) != WS_OK;

    putchar('"');
    for (i = 0; i < n; i++) {
        if (bad && p[i] >= 0x80)
            fputs("\\ufffd", stdout);   /* keep the JSON valid */
        else if (p[i] == '"' || p[i] == '\\')
            printf("\\%c", p[i]);
        else if (p[i] < 0x20 || p[i] == 0x7f)
            printf("\\u%04x", p[i]);
        else
            putchar(p[i]);
    }
    putchar('"');
}

static void json_cstr(const char *s)
{
    if (s == NULL)
        fputs("null", stdout);
    else
        json_string((const uint8_t *)s, strlen(s));
}

/*
 * Showing a payload, streamed: at most limit bytes (plus the rest of a
 * character that starts before the limit). Text keeps valid UTF-8
 * characters as they are and escapes everything else, so a student sees
 * exactly which bytes are wrong.
 */
struct show {
    int mode;                /* SHOW_TEXT or SHOW_HEX */
    int json;
    uint64_t limit;
    uint64_t shown;          /* payload bytes shown so far */
    uint8_t pend[4];         /* a multi-byte character being collected */
    unsigned npend, need;
};

static void show_escaped_byte(const struct show *s, uint8_t b, int bad)
{
    if (s->json) {
        if (bad)
            fputs("\\ufffd", stdout);    /* JSON cannot carry a bad byte */
        else if (b == '"' || b == '\\')
            printf("\\%c", b);
        else if (b < 0x20 || b == 0x7f)
            printf("\\u%04x", b);
        else
            putchar(b);
        return;
    }
    if (bad || b < 0x20 || b == 0x7f) {
        if (b == '\n')
            fputs("\\n", stdout);
        else if (b == '\r')
            fputs("\\r", stdout);
        else if (b == '\t')
            fputs("\\t", stdout);
        else
            printf("\\x%02x", b);
    } else if (b == '"' || b == '\\') {
        printf("\\%c", b);
    } else {
        putchar(b);
    }
}

static void show_flush_pending(struct show *s)
{
    unsigned i;

    if (s->npend == 0)
        return;
    if (s->npend == s->need && ws_utf8_check(s->pend, s->npend) == WS_OK) {
        fwrite(s->pend, 1, s->npend, stdout);
    } else {
        for (i = 0; i < s->npend; i++)
            show_escaped_byte(s, s->pend[i], 1);
    }
    s->shown += s->npend;
    s->npend = 0;
}

/* field: the JSON key, or NULL for "payload" / "payload_hex". */
static void show_begin(struct show *s, int mode, uint64_t limit, int json,
                       const char *field)
{
    memset(s, 0, sizeof *s);
    s->mode = mode;
    s->limit = limit;
    s->json = json;
    if (json)
        printf(",\"%s\":\"", field != NULL ? field : mode == SHOW_TEXT ?
               "payload" : "payload_hex");
    else if (mode == SHOW_TEXT)
        putchar('"');
}

static void show_bytes(struct show *s, const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        uint8_t b = p[i];

        if (s->npend == 0 && s->shown >= s->limit)
            return;
        if (s->mode == SHOW_HEX) {
            printf(s->json || s->shown == 0 ? "%02x" : " %02x", b);
            s->shown++;
            continue;
        }
        if (s->npend > 0) {
            if ((b & 0xC0u) == 0x80u) {
                s->pend[s->npend++] = b;
                if (s->npend == s->need)
                    show_flush_pending(s);
                continue;
            }
            show_flush_pending(s);      /* a cut-off character */
            if (s->shown >= s->limit)
                return;
        }
        if (b >= 0xC2 && b <= 0xF4) {   /* RFC 3629 lead bytes */
            s->pend[0] = b;
            s->npend = 1;
            s->need = b < 0xE0 ? 2u : b < 0xF0 ? 3u : 4u;
            continue;
        }
        show_escaped_byte(s, b, b >= 0x80);
        s->shown++;
    }
}

/* total: the payload length; got: the bytes the stream really had. */
static void show_end(struct show *s, uint64_t total, uint64_t got)
{
    show_flush_pending(s);
    if (s->json) {
        printf("\",\"shown\":%" PRIu64 ",\"more\":%" PRIu64, s->shown,
               total - s->shown);
        if (got < total)
            printf(",\"truncated\":true,\"missing\":%" PRIu64, total - got);
        return;
    }
    if (s->mode == SHOW_TEXT)
        fputs(s->shown < total ? "\" " : "\"", stdout);
    else if (total == 0)
        fputs("(empty)", stdout);
    if (s->mode == SHOW_HEX && s->shown > 0 && s->shown < total)
        putchar(' ');
    if (got < total && s->shown >= got)
        printf("... (stream ends; %" PRIu64 " bytes missing)", total - got);
    else if (got < total)
        printf("... (%" PRIu64 " more bytes, then the stream ends; %" PRIu64
               " bytes missing)", got - s->shown, total - got);
    else if (s->shown < total)
        printf("... (%" PRIu64 " more bytes)", total - s->shown);
}

/* ------------------------------------------------------------------------ */
/* The dissector                                                            */
/* ------------------------------------------------------------------------ */

struct dump {
    const struct options *opt;
    int sender;                  /* enum sender: the masking rule */
    unsigned allowed_rsv;        /* RSV bits an extension negotiated */
    uint64_t frames, messages, errors;
    uint64_t close_frame;        /* index of the first close frame, or 0 */
    int truncated;               /* the input ended inside a frame */

    /* The message being received (RFC 6455 5.4). */
    int in_message;
    unsigned msg_opcode;
    uint64_t msg_first, msg_frames, msg_bytes;
    int msg_ext;                 /* RSV1 set by an extension: not plain */
    struct ws_utf8 utf8;
    int utf8_failed;

    /* The frame being printed: its errors and notes, printed after it. */
    char notes[NOTE_MAX][NOTE_LEN];
    int note_error[NOTE_MAX];
    unsigned nnotes;
    uint8_t ctrl[WS_CONTROL_PAYLOAD_MAX];
    size_t nctrl;
};

static void vnote(struct dump *d, int is_error, const char *fmt, va_list ap)
{
    if (is_error)
        d->errors++;
    if (d->nnotes == NOTE_MAX)
        return;
    vsnprintf(d->notes[d->nnotes], NOTE_LEN, fmt, ap);
    d->note_error[d->nnotes++] = is_error;
}

static void frame_error(struct dump *d, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vnote(d, 1, fmt, ap);
    va_end(ap);
}

static void frame_note(struct dump *d, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vnote(d, 0, fmt, ap);
    va_end(ap);
}

static void json_notes(const struct dump *d, const char *name, int errors)
{
    unsigned i;
    int first = 1;

    printf(",\"%s\":[", name);
    for (i = 0; i < d->nnotes; i++) {
        if (d->note_error[i] != errors)
            continue;
        if (!first)
            putchar(',');
        first = 0;
        json_cstr(d->notes[i]);
    }
    putchar(']');
}

/* Prints the collected errors and notes, and ends the output of a frame
 * (line_open: its line still needs a newline) or of a handshake. */
static void print_notes_line(struct dump *d, int line_open)
{
    unsigned i;

    if (d->opt->json) {
        json_notes(d, "errors", 1);
        json_notes(d, "notes", 0);
        fputs("}\n", stdout);
    } else {
        if (line_open)
            putchar('\n');
        for (i = 0; i < d->nnotes; i++)
            printf("    %s: %s\n", d->note_error[i] ? "error" : "note",
                   d->notes[i]);
    }
    d->nnotes = 0;
}

static void print_notes(struct dump *d)
{
    print_notes_line(d, 1);
}

static const char *opcode_name(unsigned opcode)
{
    switch (opcode) {
    case WS_OPCODE_CONTINUATION: return "continuation";
    case WS_OPCODE_TEXT: return "text";
    case WS_OPCODE_BINARY: return "binary";
    case WS_OPCODE_CLOSE: return "close";
    case WS_OPCODE_PING: return "ping";
    case WS_OPCODE_PONG: return "pong";
    default: return opcode < 8 ? "reserved-data" : "reserved-control";
    }
}

static void print_frame_start(const struct dump *d, const struct ws_frame *f,
                              uint64_t index, uint64_t offset)
{
    if (d->opt->json) {
        printf("{\"type\":\"frame\",\"index\":%" PRIu64 ",\"offset\":%" PRIu64
               ",\"fin\":%u,\"rsv\":%u,\"opcode\":%u,\"name\":\"%s\","
               "\"masked\":%s,\"mask\":", index, offset, f->fin, f->rsv,
               f->opcode, opcode_name(f->opcode),
               f->masked ? "true" : "false");
        if (f->masked)
            printf("\"%02x%02x%02x%02x\"", f->mask[0], f->mask[1],
                   f->mask[2], f->mask[3]);
        else
            fputs("null", stdout);
        printf(",\"length\":%" PRIu64, f->length);
        return;
    }
    printf("#%" PRIu64 " @%" PRIu64 "  FIN=%u RSV=%u%u%u op=0x%X %s  MASK=",
           index, offset, f->fin, (f->rsv >> 2) & 1u, (f->rsv >> 1) & 1u,
           f->rsv & 1u, f->opcode, opcode_name(f->opcode));
    if (f->masked)
        printf("%02x%02x%02x%02x", f->mask[0], f->mask[1], f->mask[2],
               f->mask[3]);
    else
        fputs("none", stdout);
    printf("  len=%" PRIu64 "  ", f->length);
}

static void print_field(const struct dump *d, const char *name,
                        const char *value)
{
    if (d->opt->json)
        printf(",\"%s\":\"%s\"", name, value);
    else
        printf("  %s=%s", name, value);
}

/* A frame cut short by the end of the input (header or payload). */
static void print_truncated(struct dump *d, uint64_t index, uint64_t offset,
                            const uint8_t *p, size_t have, size_t need)
{
    size_t i;

    d->truncated = 1;
    frame_error(d, "truncated: need %zu more bytes", need - have);
    if (d->opt->json) {
        printf("{\"type\":\"frame\",\"index\":%" PRIu64 ",\"offset\":%" PRIu64
               ",\"truncated\":true,\"header_hex\":\"", index, offset);
        for (i = 0; i < have; i++)
            printf("%02x", p[i]);
        putchar('"');
    } else {
        printf("#%" PRIu64 " @%" PRIu64 "  header bytes:", index, offset);
        for (i = 0; i < have; i++)
            printf(" %02x", p[i]);
        printf(" (header needs %zu)", need);
    }
    print_notes(d);
}

/* Checks run before the payload: RSV, masking, fragmentation (5.1-5.4).
 * Returns the data opcode this frame carries (text/binary), or 0. */
static unsigned check_frame(struct dump *d, const struct ws_frame *f,
                            int header_ok, uint64_t index)
{
    if (f->rsv & ~d->allowed_rsv)
        frame_error(d, "RSV bits %u%u%u set but no extension was negotiated "
                    "(RFC 6455 5.2)", (f->rsv >> 2) & 1u, (f->rsv >> 1) & 1u,
                    f->rsv & 1u);
    if (d->sender == SENDER_CLIENT && !f->masked)
        frame_error(d, "a client must mask every frame it sends "
                    "(RFC 6455 5.1)");
    if (d->sender == SENDER_SERVER && f->masked)
        frame_error(d, "a server must not mask the frames it sends "
                    "(RFC 6455 5.1)");
    if (f->length >> 63)
        return 0;                    /* unusable length: no payload */
    if (!header_ok && f->opcode != WS_OPCODE_CONTINUATION &&
        f->opcode != WS_OPCODE_TEXT && f->opcode != WS_OPCODE_BINARY)
        return 0;                    /* reserved or broken control frame */
    if (f->opcode & 0x8u)
        return 0;                    /* control: may come between fragments */
    if (d->close_frame != 0)
        frame_error(d, "data frame after the close frame #%" PRIu64
                    " (RFC 6455 5.5.1)", d->close_frame);
    if (f->opcode == WS_OPCODE_CONTINUATION) {
        if (!d->in_message) {
            frame_error(d, "continuation frame but no fragmented message "
                        "to continue (RFC 6455 5.4)");
            return 0;
        }
        d->msg_frames++;
        return d->msg_opcode;
    }
    if (d->in_message)
        frame_error(d, "new %s frame while message #%" PRIu64 " is "
                    "unfinished: a continuation frame is expected "
                    "(RFC 6455 5.4)", opcode_name(f->opcode), d->msg_first);
    d->in_message = 1;
    d->msg_opcode = f->opcode;
    d->msg_first = index;
    d->msg_frames = 1;
    d->msg_bytes = 0;
    d->msg_ext = (f->rsv & WS_RSV1) && (d->allowed_rsv & WS_RSV1);
    ws_utf8_reset(&d->utf8);
    d->utf8_failed = 0;
    return f->opcode;
}

/* UTF-8 of a text message, fed as the payload streams by (RFC 6455 8.1). */
static void check_text(struct dump *d, const uint8_t *p, size_t n,
                       uint64_t frame_pos)
{
    size_t valid = 0;

    if (d->utf8_failed || d->msg_ext)
        return;
    if (ws_utf8_feed(&d->utf8, p, n, &valid) != WS_OK) {
        d->utf8_failed = 2;          /* 2: failed in this frame */
        if (d->msg_frames == 1)
            frame_error(d, "invalid UTF-8 at payload byte %" PRIu64
                        " (RFC 6455 8.1)", frame_pos + valid);
        else
            frame_error(d, "invalid UTF-8 at message byte %" PRIu64
                        " (byte %" PRIu64 " of this fragment) "
                        "(RFC 6455 8.1)", d->msg_bytes + valid,
                        frame_pos + valid);
    }
    d->msg_bytes += n;
}

/* After a text frame: the utf8= field, and the message-end check. */
static void finish_text(struct dump *d, const struct ws_frame *f)
{
    const char *state;
    int complete = ws_utf8_finish(&d->utf8) == WS_OK;

    if (d->msg_ext)
        state = "n/a (RSV1: extension data)";
    else if (d->utf8_failed == 1)
        state = "invalid (earlier fragment)";
    else if (d->utf8_failed == 2)
        state = "invalid";
    else if (complete)
        state = "ok";
    else if (!f->fin)
        state = "partial";           /* the character continues */
    else
        state = "incomplete";
    print_field(d, "utf8", state);
    if (f->fin && !d->utf8_failed && !d->msg_ext && !complete)
        frame_error(d, "text message ends inside a UTF-8 character "
                    "(RFC 6455 8.1)");
    if (d->utf8_failed)
        d->utf8_failed = 1;
}

/* Close payload: code, name, reason (RFC 6455 5.5.1, 7.4). */
static void show_close(struct dump *d)
{
    struct show s;
    unsigned code;
    int json = d->opt->json;

    if (d->nctrl == 0) {
        if (json)
            fputs(",\"close_code\":null", stdout);
        else
            fputs("no status code (the peer reports 1005)", stdout);
        return;
    }
    if (d->nctrl == 1) {
        frame_error(d, "close payload of 1 byte: a status code takes 2 "
                    "(RFC 6455 5.5.1)");
        show_begin(&s, SHOW_HEX, d->opt->max_payload, json, NULL);
        show_bytes(&s, d->ctrl, 1);
        show_end(&s, 1, 1);
        return;
    }
    code = (unsigned)d->ctrl[0] << 8 | d->ctrl[1];
    if (json)
        printf(",\"close_code\":%u,\"close_name\":\"%s\"", code,
               ws_close_code_str(code));
    else
        printf("code=%u (%s)", code, ws_close_code_str(code));
    if (!ws_close_code_is_valid(code))
        frame_error(d, "close code %u (%s) must not be sent in a close "
                    "frame (RFC 6455 7.4)", code, ws_close_code_str(code));
    if (d->nctrl == 2)
        return;
    if (!json)
        fputs("  reason=", stdout);
    show_begin(&s, SHOW_TEXT, d->opt->max_payload, json, "reason");
    show_bytes(&s, d->ctrl + 2, d->nctrl - 2);
    show_end(&s, d->nctrl - 2, d->nctrl - 2);
    if (ws_utf8_check(d->ctrl + 2, d->nctrl - 2) == WS_OK) {
        print_field(d, "utf8", "ok");
    } else {
        print_field(d, "utf8", "invalid");
        frame_error(d, "close reason is not valid UTF-8 "
                    "(RFC 6455 5.5.1, 8.1)");
    }
}

/* Ping and pong payloads: text if it is valid UTF-8, else hex. */
static void show_control(struct dump *d)
{
    struct show s;
    int text = ws_utf8_check(d->ctrl, d->nctrl) == WS_OK && d->nctrl > 0;

    show_begin(&s, text ? SHOW_TEXT : SHOW_HEX, d->opt->max_payload,
               d->opt->json, NULL);
    show_bytes(&s, d->ctrl, d->nctrl);
    show_end(&s, d->nctrl, d->nctrl);
}

/* Message bookkeeping after a data frame's payload (RFC 6455 5.4). */
static void end_data_frame(struct dump *d, const struct ws_frame *f,
                           unsigned data)
{
    if (data == WS_OPCODE_TEXT)
        finish_text(d, f);
    if (!f->fin)
        return;
    d->in_message = 0;
    d->messages++;
    if (d->msg_frames > 1)
        frame_note(d, "message #%" PRIu64 " complete: %s, %" PRIu64
                   " fragments", d->msg_first, opcode_name(d->msg_opcode),
                   d->msg_frames);
}

enum { FRAME_NEXT, FRAME_STOP };

/* Decodes, checks and prints one frame. */
static int dump_frame(struct dump *d, struct input *in)
{
    struct ws_frame f;
    struct show s;
    const char *why = NULL;
    size_t avail, hsize = 0, used = 0;
    uint64_t index, offset = in->base, pos = 0;
    unsigned data;
    int rv, control, buffered;

    avail = input_fill(in, 2);
    if (avail == 0)
        return FRAME_STOP;
    index = ++d->frames;
    if (avail < 2) {
        print_truncated(d, index, offset, input_data(in), avail, 2);
        input_consume(in, avail);
        return FRAME_STOP;
    }
    ws_frame_header_size(input_data(in), avail, &hsize);
    avail = input_fill(in, hsize);
    if (avail < hsize) {
        print_truncated(d, index, offset, input_data(in), avail, hsize);
        input_consume(in, avail);
        return FRAME_STOP;
    }
    rv = ws_frame_decode_header(&f, input_data(in), avail, &used, &why);
    if (rv != WS_OK && rv != WS_ERR_PROTOCOL) {    /* cannot happen */
        fflush(stdout);
        fprintf(stderr, "wsdump: cannot decode frame #%" PRIu64 ": %s\n",
                index, ws_strerror(rv));
        d->errors++;
        return FRAME_STOP;
    }
    if (rv == WS_ERR_PROTOCOL)
        frame_error(d, "%s", why);
    input_consume(in, used);
    print_frame_start(d, &f, index, offset);
    data = check_frame(d, &f, rv == WS_OK, index);
    if (f.length >> 63) {
        /* The length is meaningless, so the next frame cannot be found. */
        fputs(d->opt->json ? "" : "(length unusable)", stdout);
        frame_note(d, "cannot find where the next frame starts: "
                   "decoding stops here");
        print_notes(d);
        return FRAME_STOP;
    }

    /* Control payloads (at most 125 bytes when valid) are collected, then
     * shown; data payloads are shown as they stream by. */
    control = (f.opcode & 0x8u) != 0;
    buffered = control && f.length <= WS_CONTROL_PAYLOAD_MAX &&
               (f.opcode == WS_OPCODE_CLOSE || f.opcode == WS_OPCODE_PING ||
                f.opcode == WS_OPCODE_PONG);
    d->nctrl = 0;
    if (!buffered)
        show_begin(&s, data == WS_OPCODE_TEXT ? SHOW_TEXT : SHOW_HEX,
                   d->opt->max_payload, d->opt->json, NULL);
    while (pos < f.length) {
        uint8_t *p;
        size_t n;

        avail = input_fill(in, 1);
        if (avail == 0)
            break;
        n = f.length - pos < avail ? (size_t)(f.length - pos) : avail;
        p = in->buf + in->start;
        if (f.masked)
            ws_mask(p, p, n, f.mask, pos);     /* RFC 6455 5.3 */
        if (buffered) {
            memcpy(d->ctrl + d->nctrl, p, n);
            d->nctrl += n;
        } else {
            show_bytes(&s, p, n);
        }
        if (data == WS_OPCODE_TEXT)
            check_text(d, p, n, pos);
        input_consume(in, n);
        pos += n;
    }
    if (pos < f.length) {
        if (buffered) {
            show_begin(&s, SHOW_HEX, d->opt->max_payload, d->opt->json,
                       NULL);
            show_bytes(&s, d->ctrl, d->nctrl);
        }
        show_end(&s, f.length, pos);
        d->truncated = 1;
        frame_error(d, "truncated: need %" PRIu64 " more bytes",
                    f.length - pos);
        print_notes(d);
        return FRAME_STOP;
    }
    if (!buffered)
        show_end(&s, f.length, pos);
    else if (f.opcode == WS_OPCODE_CLOSE)
        show_close(d);
    else
        show_control(d);
    if (f.opcode == WS_OPCODE_CLOSE && d->close_frame == 0)
        d->close_frame = index;
    if (data != 0)
        end_data_frame(d, &f, data);
    print_notes(d);
    return FRAME_NEXT;
}

/* ------------------------------------------------------------------------ */
/* The opening handshake (RFC 6455 4)                                       */
/* ------------------------------------------------------------------------ */

static int starts_with(const uint8_t *p, size_t n, const char *s)
{
    size_t k = strlen(s);

    return n >= k && memcmp(p, s, k) == 0;
}

/* The end of the HTTP head: after CRLF CRLF, or after LF LF for a capture
 * with bare line feeds (the parser then says why it is invalid). */
static int find_head_end(const uint8_t *p, size_t n, size_t *end)
{
    size_t i;

    for (i = 0; i + 1 < n; i++) {
        if (p[i] != '\n')
            continue;
        if (p[i + 1] == '\n') {
            *end = i + 2;
            return 1;
        }
        if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') {
            *end = i + 3;
            return 1;
        }
    }
    return 0;
}

/* "name=value" for a header field, skipped when absent. */
static void print_slice(const struct dump *d, const char *name,
                        struct ws_slice v)
{
    if (d->opt->json) {
        printf(",\"%s\":", name);
        if (v.p == NULL)
            fputs("null", stdout);
        else
            json_string((const uint8_t *)v.p, v.n);
        return;
    }
    if (v.p != NULL && v.n > 0)
        printf("  %s: %.*s\n", name, (int)v.n, v.p);
}

static void print_head_lines(const struct dump *d, const uint8_t *p,
                             size_t n)
{
    size_t i = 0, j;
    int first = 1;

    if (d->opt->json)
        fputs(",\"lines\":[", stdout);
    while (i < n) {
        for (j = i; j < n && p[j] != '\n'; j++)
            continue;
        if (j > i && p[j - 1] == '\r')
            j--;
        if (j == i)
            break;                       /* the blank line */
        if (d->opt->json) {
            if (!first)
                putchar(',');
            json_string(p + i, j - i);
        } else {
            printf("  | %.*s\n", (int)(j - i), (const char *)(p + i));
        }
        first = 0;
        while (j < n && p[j] != '\n')
            j++;
        i = j + 1;
    }
    if (d->opt->json)
        putchar(']');
}

/* A client's Upgrade request (RFC 6455 4.1, checked as in 4.2.1). Saves
 * the key in key_out so a response that follows can be verified. */
static void dump_request(struct dump *d, const uint8_t *p, size_t n,
                         char *key_out, size_t key_cap)
{
    struct ws_request req;
    char accept[WS_ACCEPT_LEN + 1] = "";
    size_t used = 0;
    int rv, have_accept = 0;

    rv = ws_handshake_parse_request(&req, p, n, 0, 0, &used);
    if (req.key.p != NULL && req.key.n > 0 &&
        ws_accept_key(req.key.p, req.key.n, accept) == WS_OK)
        have_accept = 1;
    if (req.key.p != NULL && req.key.n < key_cap) {
        memcpy(key_out, req.key.p, req.key.n);
        key_out[req.key.n] = '\0';
    }
    if (!d->opt->json) {
        if (req.method.p != NULL)
            printf("  method: %.*s  path: %.*s  HTTP/%u.%u\n",
                   (int)req.method.n, req.method.p, (int)req.path.n,
                   req.path.p != NULL ? req.path.p : "", req.http_major,
                   req.http_minor);
    } else {
        print_slice(d, "method", req.method);
        print_slice(d, "path", req.path);
    }
    print_slice(d, "host", req.host);
    print_slice(d, "origin", req.origin);
    print_slice(d, "key", req.key);
    print_slice(d, "version", req.version);
    print_slice(d, "protocols", req.protocols);
    print_slice(d, "extensions", req.extensions);
    if (d->opt->json) {
        fputs(",\"accept\":", stdout);
        json_cstr(have_accept ? accept : NULL);
        printf(",\"valid\":%s", rv == WS_OK ? "true" : "false");
    } else {
        if (have_accept)
            printf("  accept (computed, RFC 6455 4.2.2): %s\n", accept);
        if (rv == WS_OK)
            printf("  valid request (RFC 6455 4.2.1)\n");
    }
    if (rv != WS_OK)
        frame_error(d, "handshake: %s; a server answers HTTP %u (%s)",
                   req.error != NULL ? req.error : ws_strerror(rv),
                   ws_err_http_status(rv), ws_err_name(rv));
}

/* A slice contains s (ASCII, case-insensitive)? */
static int slice_has(struct ws_slice v, const char *s)
{
    size_t k = strlen(s), i, j;

    for (i = 0; v.p != NULL && i + k <= v.n; i++) {
        for (j = 0; j < k; j++) {
            char a = v.p[i + j], b = s[j];
            if (a >= 'A' && a <= 'Z')
                a = (char)(a - 'A' + 'a');
            if (a != b)
                break;
        }
        if (j == k)
            return 1;
    }
    return 0;
}

/* The server's answer (RFC 6455 4.1, the client's checks). Returns 1 if it
 * is a 101, i.e. frames follow. */
static int dump_response(struct dump *d, const uint8_t *p, size_t n,
                         const char *key)
{
    /* Without the client's key the accept value cannot be verified: parse
     * with a stand-in key and skip that one check (and the ones after it,
     * which depend on what the client offered). */
    static const char stand_in[] = "AAAAAAAAAAAAAAAAAAAAAA==";
    struct ws_response resp;
    char expect[WS_ACCEPT_LEN + 1];
    size_t used = 0;
    int rv, json = d->opt->json;

    rv = ws_handshake_parse_response(&resp, p, n, stand_in, NULL, 0, &used);
    if (json) {
        printf(",\"status\":%u", resp.status);
    } else if (resp.status != 0) {
        printf("  status: %u %.*s\n", resp.status, (int)resp.reason.n,
               resp.reason.p != NULL ? resp.reason.p : "");
    }
    print_slice(d, "accept", resp.accept);
    print_slice(d, "protocol", resp.protocol);
    print_slice(d, "extensions", resp.extensions);
    if (rv == WS_ERR_REJECTED) {
        if (json)
            fputs(",\"rejected\":true", stdout);
        else
            printf("  rejected: not 101, so no WebSocket frames follow "
                   "(RFC 6455 4.1)\n");
        return 0;
    }
    /* The stand-in key makes the library stop at "wrong accept": that
     * means every check before it passed. */
    if (rv == WS_ERR_BAD_RESPONSE && resp.error != NULL &&
        strstr(resp.error, "wrong Sec-WebSocket-Accept") != NULL)
        rv = WS_OK;
    if (rv != WS_OK) {
        frame_error(d, "handshake: %s (%s)",
                   resp.error != NULL ? resp.error : ws_strerror(rv),
                   ws_err_name(rv));
    } else if (key == NULL || *key == '\0') {
        if (!json)
            printf("  accept not verified: the client's key is unknown "
                   "(use --key)\n");
    } else if (ws_accept_key(key, strlen(key), expect) != WS_OK) {
        frame_error(d, "handshake: cannot compute the accept value for "
                   "--key %s", key);
    } else if (resp.accept.n != WS_ACCEPT_LEN ||
               memcmp(resp.accept.p, expect, WS_ACCEPT_LEN) != 0) {
        frame_error(d, "handshake: Sec-WebSocket-Accept should be %s for key "
                   "%s (RFC 6455 4.1)", expect, key);
    } else if (!json) {
        printf("  accept matches key %s (RFC 6455 4.2.2)\n", key);
    }
    if (json)
        printf(",\"valid\":%s", rv == WS_OK ? "true" : "false");
    /* permessage-deflate (RFC 7692) uses RSV1. */
    if (d->opt->allow_rsv < 0 && slice_has(resp.extensions,
                                           "permessage-deflate")) {
        d->allowed_rsv |= WS_RSV1;
        if (!json)
            printf("  permessage-deflate negotiated: RSV1 allowed, "
                   "compressed payloads are shown as they are\n");
    }
    return 1;
}

enum { HEAD_FRAMES, HEAD_STOP };

/*
 * Decodes the HTTP head(s) at the start of the input: a request, a
 * response, or a request followed by its response. Returns HEAD_FRAMES if
 * frames follow, HEAD_STOP if they do not (a rejection or a broken head).
 */
static int dump_heads(struct dump *d, struct input *in, int *rejected)
{
    static char req_key[64];
    const uint8_t *p;
    size_t avail, end = 0;
    int heads = 0, saw_request = 0, saw_response = 0;

    for (;;) {
        avail = input_fill(in, 5);
        p = input_data(in);
        if (heads > 0 && !(saw_request && !saw_response &&
                           starts_with(p, avail, "HTTP/")))
            break;
        while (!find_head_end(p, avail, &end) && avail < HEAD_MAX &&
               !in->eof && !in->failed) {
            avail = input_fill(in, avail + 1);
            p = input_data(in);
        }
        if (in->failed)
            return HEAD_STOP;
        if (!find_head_end(p, avail < HEAD_MAX ? avail : HEAD_MAX, &end)) {
            if (d->opt->json)
                printf("{\"type\":\"handshake\",\"offset\":%" PRIu64,
                       in->base);
            else
                printf("handshake @%" PRIu64 ": HTTP head\n", in->base);
            if (avail >= HEAD_MAX)
                frame_error(d, "handshake: no blank line within %d bytes: "
                           "not an HTTP head", HEAD_MAX);
            else
                frame_error(d, "truncated: the HTTP head has no blank line "
                           "yet (need more bytes)");
            print_head_lines(d, p, avail);
            print_notes_line(d, 0);
            return HEAD_STOP;
        }
        heads++;
        if (d->opt->json)
            printf("{\"type\":\"handshake\",\"kind\":\"%s\",\"offset\":%"
                   PRIu64 ",\"length\":%zu", starts_with(p, avail, "HTTP/") ?
                   "response" : "request", in->base, end);
        else
            printf("handshake @%" PRIu64 ": HTTP %s, %zu bytes\n", in->base,
                   starts_with(p, avail, "HTTP/") ? "response" : "request",
                   end);
        print_head_lines(d, p, end);
        if (starts_with(p, avail, "HTTP/")) {
            saw_response = 1;
            if (!dump_response(d, p, end, d->opt->key != NULL ? d->opt->key
                               : saw_request ? req_key : NULL))
                *rejected = 1;
        } else {
            saw_request = 1;
            dump_request(d, p, end, req_key, sizeof req_key);
        }
        print_notes_line(d, 0);
        input_consume(in, end);
        if (*rejected)
            return HEAD_STOP;
    }
    /* Who sends the frames that follow decides the masking rule. */
    if (d->opt->sender == SENDER_ANY && saw_request != saw_response) {
        d->sender = saw_request ? SENDER_CLIENT : SENDER_SERVER;
        if (!d->opt->json)
            printf("frames below were sent by the %s: they must %sbe "
                   "masked (RFC 6455 5.1)\n",
                   saw_request ? "client" : "server",
                   saw_request ? "" : "not ");
    }
    return HEAD_FRAMES;
}

/* ------------------------------------------------------------------------ */
/* Command line                                                             */
/* ------------------------------------------------------------------------ */

static void usage(FILE *to)
{
    fputs(
"usage: wsdump [options] [FILE | -]\n"
"       wsdump [options] --hex \"81 05 48 65 6c 6c 6f\"\n"
"\n"
"Decode WebSocket frames (RFC 6455), one line per frame: FIN, RSV, opcode,\n"
"masking key, length, the unmasked payload, UTF-8 validity, then every\n"
"rule the frame breaks with its RFC section. Reads FILE, or stdin when\n"
"FILE is '-' or absent. An HTTP request or response at the start of the\n"
"input (\"GET \" or \"HTTP/\") is decoded first.\n"
"\n"
"options:\n"
"  --hex STRING      decode the bytes written in STRING as hex digits;\n"
"                    spaces, ':', ',', '-' and 0x prefixes are ignored\n"
"  --hex-input       FILE/stdin holds hex text (as above; '#' starts a\n"
"                    comment), e.g. from xxd -p\n"
"  --role client|server\n"
"                    who sent the bytes: client frames must be masked,\n"
"                    server frames must not (RFC 6455 5.1). Default: taken\n"
"                    from the handshake if there is one, else not checked\n"
"  --handshake       the input starts with an HTTP head (default: detect)\n"
"  --no-handshake    never look for an HTTP head\n"
"  --key KEY         the client's Sec-WebSocket-Key, to verify the\n"
"                    Sec-WebSocket-Accept of a captured response\n"
"  --max-payload N   show at most N payload bytes per frame (default 64)\n"
"  --full            show whole payloads\n"
"  --allow-rsv BITS  RSV bits an extension negotiated (0-7, RSV1 = 4)\n"
"  --json            one JSON object per line instead of text\n"
"  -h, --help        this help\n"
"\n"
"exit status: 0 no error found, 1 protocol errors or a truncated stream,\n"
"2 usage error or unreadable input.\n", to);
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

/* "--name VALUE" or "--name=VALUE"; NULL if this is not that option. */
static const char *option_value(int argc, char **argv, int *i,
                                const char *name, int *missing)
{
    size_t k = strlen(name);
    const char *a = argv[*i];

    if (strncmp(a, name, k) != 0)
        return NULL;
    if (a[k] == '=')
        return a + k + 1;
    if (a[k] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

static int bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "wsdump: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(wsdump --help lists the options)\n");
    return EXIT_USAGE;
}

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, struct options *o)
{
    int i, only_files = 0;

    memset(o, 0, sizeof *o);
    o->max_payload = DEFAULT_SHOW;
    o->allow_rsv = -1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int missing = 0;
        uint64_t n;

        if (only_files || a[0] != '-' || strcmp(a, "-") == 0) {
            if (o->path != NULL)
                return bad_usage("more than one input: %s", a);
            o->path = a;
        } else if (strcmp(a, "--") == 0) {
            only_files = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return EXIT_CLEAN;
        } else if ((v = option_value(argc, argv, &i, "--hex", &missing))) {
            o->hex = v;
        } else if (strcmp(a, "--hex-input") == 0) {
            o->hex_input = 1;
        } else if ((v = option_value(argc, argv, &i, "--role", &missing))) {
            if (strcmp(v, "client") == 0)
                o->sender = SENDER_CLIENT;
            else if (strcmp(v, "server") == 0)
                o->sender = SENDER_SERVER;
            else if (strcmp(v, "auto") == 0)
                o->sender = SENDER_ANY;
            else
                return bad_usage("--role must be client or server, not %s", v);
        } else if (strcmp(a, "--handshake") == 0) {
            o->handshake = 1;
        } else if (strcmp(a, "--no-handshake") == 0) {
            o->handshake = -1;
        } else if ((v = option_value(argc, argv, &i, "--key", &missing))) {
            o->key = v;
        } else if ((v = option_value(argc, argv, &i, "--max-payload",
                                     &missing))) {
            if (parse_u64(v, UINT64_MAX, &o->max_payload) != 0)
                return bad_usage("--max-payload needs a number, not %s", v);
        } else if (strcmp(a, "--full") == 0) {
            o->max_payload = UINT64_MAX;
        } else if ((v = option_value(argc, argv, &i, "--allow-rsv",
                                     &missing))) {
            if (parse_u64(v, 7, &n) != 0)
                return bad_usage("--allow-rsv needs 0 to 7, not %s", v);
            o->allow_rsv = (int)n;
        } else if (strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if (missing) {
            return bad_usage("%s needs a value", a);
        } else {
            return bad_usage("unknown option %s", a);
        }
        if (missing)
            return bad_usage("%s needs a value", a);
    }
    if (o->hex != NULL && (o->path != NULL || o->hex_input))
        return bad_usage("%s", "--hex takes the bytes from its argument: "
                         "no FILE or --hex-input with it");
    return -1;
}

/* Counts (without keeping) what follows a rejected handshake. */
static uint64_t skip_rest(struct input *in)
{
    uint64_t n = 0;
    size_t avail;

    while ((avail = input_fill(in, 1)) > 0) {
        n += avail;
        input_consume(in, avail);
    }
    return n;
}

int main(int argc, char **argv)
{
    struct options opt;
    struct dump d;
    struct input *in = &g_in;
    int rv, rejected = 0, head = HEAD_FRAMES;
    size_t avail;
    uint64_t total;

    rv = parse_args(argc, argv, &opt);
    if (rv >= 0)
        return rv;
    memset(&d, 0, sizeof d);
    d.opt = &opt;
    d.sender = opt.sender;
    d.allowed_rsv = opt.allow_rsv > 0 ? (unsigned)opt.allow_rsv : 0;

    in->nibble = -1;
    in->fd = -1;
    if (opt.hex != NULL) {
        in->str = opt.hex;
        in->str_len = strlen(opt.hex);
        in->hex = 1;
    } else if (opt.path == NULL || strcmp(opt.path, "-") == 0) {
        in->fd = STDIN_FILENO;
        in->hex = opt.hex_input;
    } else {
        in->fd = open(opt.path, O_RDONLY);
        if (in->fd < 0) {
            fprintf(stderr, "wsdump: %s: %s\n", opt.path, strerror(errno));
            return EXIT_USAGE;
        }
        in->hex = opt.hex_input;
    }

    avail = input_fill(in, 5);
    if (opt.handshake > 0 ||
        (opt.handshake == 0 && (starts_with(input_data(in), avail, "GET ") ||
                                starts_with(input_data(in), avail, "HTTP/"))))
        head = dump_heads(&d, in, &rejected);
    if (rejected) {
        uint64_t body = skip_rest(in);
        if (body > 0 && !opt.json)
            printf("%" PRIu64 " bytes of HTTP body follow (not frames)\n",
                   body);
    }
    while (head == HEAD_FRAMES && !in->failed &&
           dump_frame(&d, in) == FRAME_NEXT)
        continue;
    if (!in->failed && !d.truncated && d.in_message) {
        if (opt.json) {
            printf("{\"type\":\"note\",\"text\":\"the stream ends inside "
                   "message #%" PRIu64 "\"}\n", d.msg_first);
        } else {
            printf("note: the stream ends inside message #%" PRIu64 " (%s,"
                   " %" PRIu64 " fragment%s so far, no FIN yet)\n",
                   d.msg_first, opcode_name(d.msg_opcode), d.msg_frames,
                   d.msg_frames == 1 ? "" : "s");
        }
    }
    /* After a read error or bad hex (exit 2) there is no summary: the
     * input was not read to its end. */
    total = in->base + input_avail(in);
    if (!in->failed && opt.json)
        printf("{\"type\":\"summary\",\"bytes\":%" PRIu64 ",\"frames\":%"
               PRIu64 ",\"messages\":%" PRIu64 ",\"errors\":%" PRIu64 "}\n",
               total, d.frames, d.messages, d.errors);
    else if (!in->failed)
        printf("summary: %" PRIu64 " bytes, %" PRIu64 " frames, %" PRIu64
               " messages, %" PRIu64 " errors\n", total, d.frames,
               d.messages, d.errors);
    if (in->fd > STDIN_FILENO)
        close(in->fd);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "wsdump: write error\n");
        return EXIT_USAGE;
    }
    if (in->failed)
        return EXIT_USAGE;
    return d.errors > 0 ? EXIT_PROTOCOL : EXIT_CLEAN;
}
