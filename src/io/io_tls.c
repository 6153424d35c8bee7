/*
 * io_tls.c - the TLS transport of the I/O layer, on OpenSSL 3.
 *
 * The event loop owns the non-blocking socket; this file only turns its
 * readiness into TLS records. Every call maps OpenSSL's result onto the
 * four IO_TLS_* codes of io_tls.h, so the loop never sees SSL_get_error().
 *
 * Decisions worth knowing:
 *
 *   - TLS 1.2 is the minimum, for both roles. Renegotiation is off: a
 *     WebSocket never needs it, and it is a known DoS lever on servers.
 *   - A client verifies the server (SSL_VERIFY_PEER) against the system
 *     CAs or, when a CA file is given, against that file alone. A
 *     hostname is checked as a DNS name, or as an IP address when it is
 *     an IP literal; SNI is sent only for names (RFC 6066 3: "Literal
 *     IPv4 and IPv6 addresses are not permitted in HostName").
 *   - The socket is reached through a tiny custom BIO that calls
 *     send(MSG_NOSIGNAL)/recv() instead of OpenSSL's socket BIO, which
 *     uses write(): a write to a peer that has gone away must fail with
 *     EPIPE, not kill the process with SIGPIPE, whether or not the
 *     application ignores that signal. The BIO does not own the fd.
 *   - OpenSSL keeps errors in a per-thread queue. It is emptied before
 *     every SSL_* call and after reading an error from it, so a stale
 *     error of one connection never shows up in another's message.
 *   - A failure is sticky: after IO_TLS_ERROR (or an EOF without
 *     close_notify) the session is never touched again, as OpenSSL asks
 *     (SSL_shutdown() must not follow a fatal error).
 *
 * Built with WS_OPENSSL=0 the file still compiles, without any OpenSSL
 * header, and every function fails with "built without OpenSSL".
 */
#include "io_tls.h"

#include <stdio.h>

#ifndef WS_OPENSSL
#define WS_OPENSSL 0
#endif

#if WS_OPENSSL

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/*
 * Where send() cannot be told MSG_NOSIGNAL (macOS, older BSDs), the
 * socket option SO_NOSIGPIPE does the same job; io_tls_new() sets it.
 */
#ifdef MSG_NOSIGNAL
#define SEND_FLAGS MSG_NOSIGNAL
#else
#define SEND_FLAGS 0
#endif

#define ERR_MAX 256 /* bytes of error text kept per session */

struct io_tls_ctx {
    SSL_CTX *ssl_ctx;
    int is_server;
};

struct io_tls {
    SSL *ssl;
    int fd;
    int done;       /* the handshake has completed */
    int failed;     /* a fatal error happened: do not touch ssl again */
    int eof;        /* io_tls_read() has returned IO_TLS_EOF */
    int sock_eof;   /* recv() returned 0 (answers BIO_CTRL_EOF) */
    int sock_errno; /* errno of the last failed send()/recv(), or 0 */
    char err[ERR_MAX];
};

/* What the mapping of an SSL_* result is for (see map_result()). */
enum tls_op { OP_HANDSHAKE, OP_READ, OP_WRITE };

/* ------------------------------------------------------------------------ */
/* The socket BIO: send(MSG_NOSIGNAL) and recv()                            */
/* ------------------------------------------------------------------------ */

static int bio_write(BIO *b, const char *buf, size_t n, size_t *written)
{
    struct io_tls *t = BIO_get_data(b);
    ssize_t r;

    BIO_clear_retry_flags(b);
    *written = 0;
    do {
        r = send(t->fd, buf, n, SEND_FLAGS);
    } while (r < 0 && errno == EINTR);
    if (r > 0) {
        *written = (size_t)r;
        return 1;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_write(b); /* -> SSL_ERROR_WANT_WRITE */
    else
        t->sock_errno = r < 0 ? errno : EPIPE;
    return 0;
}

static int bio_read(BIO *b, char *buf, size_t n, size_t *readbytes)
{
    struct io_tls *t = BIO_get_data(b);
    ssize_t r;

    BIO_clear_retry_flags(b);
    *readbytes = 0;
    do {
        r = recv(t->fd, buf, n, 0);
    } while (r < 0 && errno == EINTR);
    if (r > 0) {
        *readbytes = (size_t)r;
        return 1;
    }
    if (r == 0)
        t->sock_eof = 1; /* TCP FIN: OpenSSL asks BIO_eof() next */
    else if (errno == EAGAIN || errno == EWOULDBLOCK)
        BIO_set_retry_read(b); /* -> SSL_ERROR_WANT_READ */
    else
        t->sock_errno = errno;
    return 0;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    struct io_tls *t = BIO_get_data(b);

    (void)num;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* nothing is buffered here */
    case BIO_CTRL_EOF:
        /* OpenSSL 3 turns a read of 0 at EOF into the error
         * SSL_R_UNEXPECTED_EOF_WHILE_READING only if this says so. */
        return t != NULL && t->sock_eof;
    case BIO_C_GET_FD:
        if (t == NULL)
            return -1;
        if (ptr != NULL)
            *(int *)ptr = t->fd;
        return t->fd;
    default:
        /* BIO_CTRL_PUSH/POP, (W)PENDING, kTLS queries...: not supported,
         * which callers read as "no" or "nothing". */
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_data(b, NULL);
    BIO_set_init(b, 0);
    return 1;
}

static int bio_destroy(BIO *b)
{
    /* The event loop owns and closes the socket. */
    BIO_set_data(b, NULL);
    BIO_set_init(b, 0);
    return 1;
}

/*
 * The method table is created once per process and never freed, like the
 * static tables behind OpenSSL's own BIO_s_socket(); it is immutable after
 * creation, so threads may share it. CRYPTO_THREAD_run_once() makes the
 * creation thread-safe without linking pthreads ourselves.
 */
static CRYPTO_ONCE bio_once = CRYPTO_ONCE_STATIC_INIT;
static BIO_METHOD *bio_method;

static void create_bio_method(void)
{
    int type = BIO_get_new_index();
    BIO_METHOD *m;

    if (type == -1)
        return;
    m = BIO_meth_new(type | BIO_TYPE_SOURCE_SINK, "libws socket");
    if (m == NULL)
        return;
    if (!BIO_meth_set_write_ex(m, bio_write) ||
        !BIO_meth_set_read_ex(m, bio_read) ||
        !BIO_meth_set_ctrl(m, bio_ctrl) ||
        !BIO_meth_set_create(m, bio_create) ||
        !BIO_meth_set_destroy(m, bio_destroy)) {
        BIO_meth_free(m);
        return;
    }
    bio_method = m;
}

static const BIO_METHOD *get_bio_method(void)
{
    if (!CRYPTO_THREAD_run_once(&bio_once, create_bio_method))
        return NULL;
    return bio_method;
}

/* ------------------------------------------------------------------------ */
/* Error text                                                               */
/* ------------------------------------------------------------------------ */

/* The reason of one queued error ("key values mismatch", or for a system
 * error the strerror() text), or the full code if OpenSSL has no text. */
static const char *reason_text(unsigned long e, char *buf, size_t len)
{
    const char *s;

    /* OpenSSL 3 stores errno values as "system library" errors that have
     * no reason string of their own. */
    if (ERR_SYSTEM_ERROR(e))
        return strerror(ERR_GET_REASON(e));
    s = ERR_reason_error_string(e);
    if (s != NULL)
        return s;
    ERR_error_string_n(e, buf, len);
    return buf;
}

/*
 * Write "<what>: <reason>" into err, the reason being the oldest error in
 * the queue (the root cause; later entries only say where it surfaced),
 * then empty the queue.
 */
static void ctx_error(char *err, size_t errlen, const char *what,
                      const char *path)
{
    char buf[ERR_MAX];
    unsigned long e = ERR_peek_error();
    const char *why = e != 0 ? reason_text(e, buf, sizeof buf) : "failed";

    if (err != NULL && errlen > 0) {
        if (path != NULL)
            snprintf(err, errlen, "%s '%s': %s", what, path, why);
        else
            snprintf(err, errlen, "%s: %s", what, why);
    }
    ERR_clear_error();
}

static void set_message(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", msg);
}

/*
 * Record why session t failed, from the error queue, the errno of the
 * socket, or the fallback text, in that order of preference; then empty
 * the queue. A failed certificate verification gets the verifier's own
 * reason appended ("certificate verify failed: hostname mismatch").
 */
static void record_error(struct io_tls *t, const char *fallback)
{
    char buf[ERR_MAX / 2]; /* so "<why>: <verify reason>" fits t->err */
    unsigned long e, first = 0;
    int verify_failed = 0;
    const char *why;

    while ((e = ERR_get_error()) != 0) {
        if (first == 0)
            first = e;
        if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
            ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED)
            verify_failed = 1;
    }
    if (first != 0)
        why = reason_text(first, buf, sizeof buf);
    else if (t->sock_errno != 0)
        why = strerror(t->sock_errno);
    else
        why = fallback;

    if (verify_failed && SSL_get_verify_result(t->ssl) != X509_V_OK)
        snprintf(t->err, sizeof t->err, "%s: %s", why,
                 X509_verify_cert_error_string(
                     SSL_get_verify_result(t->ssl)));
    else
        snprintf(t->err, sizeof t->err, "%s", why);
}

/* Forget the errors of earlier calls, on this session and this thread. */
static void begin_call(struct io_tls *t)
{
    ERR_clear_error();
    t->sock_errno = 0;
}

/* Is the oldest queued error OpenSSL 3's "unexpected eof while reading"
 * (the peer closed TCP without close_notify)? */
static int queue_says_unexpected_eof(void)
{
    unsigned long e = ERR_peek_error();

    return ERR_GET_LIB(e) == ERR_LIB_SSL &&
           ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

/* ------------------------------------------------------------------------ */
/* Contexts                                                                 */
/* ------------------------------------------------------------------------ */

static struct io_tls_ctx *new_ctx(int is_server, char *err, size_t errlen)
{
    struct io_tls_ctx *ctx;
    /* Partial writes and a moving buffer: see io_tls_write(). Released
     * buffers: an idle connection holds no 16 KiB record buffers. */
    const long modes = SSL_MODE_ENABLE_PARTIAL_WRITE |
                       SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                       SSL_MODE_RELEASE_BUFFERS;

    ERR_clear_error();
    if (get_bio_method() == NULL) {
        ctx_error(err, errlen, "cannot create the socket BIO method", NULL);
        return NULL;
    }
    ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) {
        set_message(err, errlen, "out of memory");
        return NULL;
    }
    ctx->is_server = is_server;
    ctx->ssl_ctx = SSL_CTX_new(is_server ? TLS_server_method()
                                         : TLS_client_method());
    if (ctx->ssl_ctx == NULL) {
        ctx_error(err, errlen, "SSL_CTX_new", NULL);
        free(ctx);
        return NULL;
    }
    if (!SSL_CTX_set_min_proto_version(ctx->ssl_ctx, TLS1_2_VERSION)) {
        ctx_error(err, errlen, "cannot require TLS 1.2", NULL);
        io_tls_ctx_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx->ssl_ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx->ssl_ctx, modes);
    return ctx;
}

/* see io_tls.h */
struct io_tls_ctx *io_tls_server_ctx(const char *cert_file,
                                     const char *key_file, char *err,
                                     size_t errlen)
{
    struct io_tls_ctx *ctx;

    if (cert_file == NULL || key_file == NULL) {
        set_message(err, errlen,
                    "a TLS server needs a certificate and a key file");
        return NULL;
    }
    ctx = new_ctx(1, err, errlen);
    if (ctx == NULL)
        return NULL;
    if (SSL_CTX_use_certificate_chain_file(ctx->ssl_ctx, cert_file) != 1) {
        ctx_error(err, errlen, "cannot load certificate chain", cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx->ssl_ctx, key_file,
                                    SSL_FILETYPE_PEM) != 1) {
        ctx_error(err, errlen, "cannot load private key", key_file);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx->ssl_ctx) != 1) {
        ctx_error(err, errlen, "private key does not match certificate",
                  key_file);
        goto fail;
    }
    return ctx;

fail:
    io_tls_ctx_free(ctx);
    return NULL;
}

/* see io_tls.h */
struct io_tls_ctx *io_tls_client_ctx(const char *ca_file, int insecure,
                                     char *err, size_t errlen)
{
    struct io_tls_ctx *ctx = new_ctx(0, err, errlen);

    if (ctx == NULL)
        return NULL;
    if (insecure) {
        /* The handshake goes on whatever the certificate says. */
        SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_NONE, NULL);
        return ctx;
    }
    SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_PEER, NULL);
    if (ca_file != NULL) {
        if (SSL_CTX_load_verify_locations(ctx->ssl_ctx, ca_file, NULL) !=
            1) {
            ctx_error(err, errlen, "cannot load CA file", ca_file);
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx->ssl_ctx) != 1) {
        ctx_error(err, errlen, "cannot load the system CA certificates",
                  NULL);
        goto fail;
    }
    return ctx;

fail:
    io_tls_ctx_free(ctx);
    return NULL;
}

/* see io_tls.h */
void io_tls_ctx_free(struct io_tls_ctx *ctx)
{
    if (ctx == NULL)
        return;
    /* SSL_CTX is reference-counted: sessions still open keep it alive. */
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

/* ------------------------------------------------------------------------ */
/* Sessions                                                                 */
/* ------------------------------------------------------------------------ */

/*
 * If host is an IPv4 or IPv6 literal (IPv6 possibly in URL brackets,
 * "[::1]"), copy it without brackets into ip and return 1.
 */
static int get_ip_literal(const char *host, char *ip, size_t iplen)
{
    unsigned char addr[16];
    size_t len = strlen(host);

    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    if (len >= iplen)
        return 0;
    memcpy(ip, host, len);
    ip[len] = '\0';
    return inet_pton(AF_INET, ip, addr) == 1 ||
           inet_pton(AF_INET6, ip, addr) == 1;
}

/* Client: SNI and the name the certificate must carry. Returns 1 or 0. */
static int set_peer_name(SSL *ssl, const char *hostname)
{
    char ip[64];

    if (get_ip_literal(hostname, ip, sizeof ip))
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip) == 1;

    if (SSL_set_tlsext_host_name(ssl, hostname) != 1)
        return 0;
    /* "*.example.com" matches "a.example.com", but never "f*.example.com"
     * (RFC 6125 6.4.3 allows us to refuse partial wildcards). */
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return SSL_set1_host(ssl, hostname) == 1;
}

/* see io_tls.h */
struct io_tls *io_tls_new(struct io_tls_ctx *ctx, int fd, int is_server,
                          const char *hostname)
{
    const BIO_METHOD *method = get_bio_method();
    struct io_tls *t;
    BIO *bio;

    /* A client context cannot accept, nor a server one connect. */
    if (ctx == NULL || fd < 0 || method == NULL ||
        (is_server != 0) != (ctx->is_server != 0))
        return NULL;
    t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->fd = fd;
    ERR_clear_error();
    t->ssl = SSL_new(ctx->ssl_ctx);
    if (t->ssl == NULL)
        goto fail;
    bio = BIO_new(method);
    if (bio == NULL)
        goto fail;
    BIO_set_data(bio, t);
    BIO_set_init(bio, 1);
    SSL_set_bio(t->ssl, bio, bio); /* t->ssl owns bio from here on */

#if !defined(MSG_NOSIGNAL) && defined(SO_NOSIGPIPE)
    {
        int one = 1;

        (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
    }
#endif

    if (is_server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (hostname != NULL && hostname[0] != '\0' &&
            !set_peer_name(t->ssl, hostname))
            goto fail;
    }
    ERR_clear_error();
    return t;

fail:
    ERR_clear_error();
    io_tls_free(t);
    return NULL;
}

/*
 * Map the result ret of an SSL_* call on t to a byte count or an IO_TLS_*
 * code. Only read reports EOF: the handshake and write have no such
 * outcome in io_tls.h, so the peer going away is an error for them.
 */
static long map_result(struct io_tls *t, int ret, enum tls_op op)
{
    int code;

    if (ret > 0)
        return ret;
    code = SSL_get_error(t->ssl, ret);
    switch (code) {
    case SSL_ERROR_WANT_READ:
        return IO_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return IO_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        /* close_notify: a clean end of the peer's data. */
        ERR_clear_error();
        if (op == OP_READ) {
            t->eof = 1;
            return IO_TLS_EOF;
        }
        snprintf(t->err, sizeof t->err, "the peer closed the TLS session");
        t->failed = 1;
        return IO_TLS_ERROR;
    case SSL_ERROR_SYSCALL:
    case SSL_ERROR_SSL:
        /* Both are fatal. A TCP close without close_notify shows up as
         * SSL_ERROR_SSL "unexpected eof while reading" in OpenSSL 3, as
         * SYSCALL with errno 0 before; a reset as SYSCALL + ECONNRESET.
         * io_tls.h calls all of these EOF for a read, and the message
         * still tells what happened (the WebSocket layer sees the
         * missing close frame anyway and reports 1006). */
        t->failed = 1;
        if (op == OP_READ &&
            (queue_says_unexpected_eof() ||
             (code == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 &&
              (t->sock_errno == 0 || t->sock_errno == ECONNRESET)))) {
            record_error(t, "unexpected EOF (no close_notify)");
            t->eof = 1;
            return IO_TLS_EOF;
        }
        record_error(t, op == OP_HANDSHAKE
                            ? "the peer closed the connection during "
                              "the TLS handshake"
                            : "the peer closed the connection");
        return IO_TLS_ERROR;
    default:
        t->failed = 1;
        record_error(t, "unexpected SSL_get_error() result");
        return IO_TLS_ERROR;
    }
}

/* see io_tls.h */
int io_tls_handshake(struct io_tls *t)
{
    int ret;

    if (t == NULL)
        return IO_TLS_ERROR;
    if (t->failed)
        return IO_TLS_ERROR;
    if (t->done)
        return 0;
    begin_call(t);
    ret = SSL_do_handshake(t->ssl);
    if (ret == 1) {
        t->done = 1;
        return 0;
    }
    return (int)map_result(t, ret, OP_HANDSHAKE);
}

/* see io_tls.h */
long io_tls_read(struct io_tls *t, void *buf, size_t n)
{
    int want = n > INT_MAX ? INT_MAX : (int)n;

    if (t == NULL || (buf == NULL && n > 0))
        return IO_TLS_ERROR;
    if (t->eof)
        return IO_TLS_EOF;
    if (t->failed)
        return IO_TLS_ERROR;
    if (n == 0)
        return 0;
    begin_call(t);
    return map_result(t, SSL_read(t->ssl, buf, want), OP_READ);
}

/*
 * see io_tls.h
 *
 * SSL_MODE_ENABLE_PARTIAL_WRITE: SSL_write() returns as soon as some
 * records went out instead of insisting on all n bytes, so the loop can
 * move on with what is left. SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER: after
 * WANT_READ/WANT_WRITE, OpenSSL normally insists that the retry passes the
 * very same buffer pointer; our callers retry from wherever the bytes now
 * sit (a send queue may have been compacted or a frame copied into it), so
 * only the contents must be the same, and at least as many bytes offered.
 */
long io_tls_write(struct io_tls *t, const void *buf, size_t n)
{
    int want = n > INT_MAX ? INT_MAX : (int)n;

    if (t == NULL || (buf == NULL && n > 0))
        return IO_TLS_ERROR;
    if (t->failed)
        return IO_TLS_ERROR;
    if (n == 0)
        return 0;
    begin_call(t);
    return map_result(t, SSL_write(t->ssl, buf, want), OP_WRITE);
}

/* see io_tls.h */
size_t io_tls_pending(const struct io_tls *t)
{
    int n;

    if (t == NULL || t->failed)
        return 0;
    n = SSL_pending(t->ssl);
    return n > 0 ? (size_t)n : 0;
}

/* see io_tls.h */
void io_tls_shutdown(struct io_tls *t)
{
    /* Not during the handshake (OpenSSL would fail with "shutdown while
     * in init") nor after a fatal error (forbidden). */
    if (t == NULL || t->failed || !SSL_is_init_finished(t->ssl))
        return;
    begin_call(t);
    /* One call sends our close_notify (or queues it if the socket is
     * full); we do not wait for the peer's. */
    (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
}

/* see io_tls.h */
void io_tls_free(struct io_tls *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl); /* frees the BIO, leaves the fd open */
    free(t);
}

/* see io_tls.h */
const char *io_tls_error(const struct io_tls *t)
{
    return t != NULL ? t->err : "";
}

#else /* !WS_OPENSSL */

/* Stubs: the TLS transport is not available in this build. */

#define NO_OPENSSL "libws was built without OpenSSL (WS_OPENSSL=0)"

static struct io_tls_ctx *no_openssl(char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", NO_OPENSSL);
    return NULL;
}

/* see io_tls.h */
struct io_tls_ctx *io_tls_server_ctx(const char *cert_file,
                                     const char *key_file, char *err,
                                     size_t errlen)
{
    (void)cert_file;
    (void)key_file;
    return no_openssl(err, errlen);
}

/* see io_tls.h */
struct io_tls_ctx *io_tls_client_ctx(const char *ca_file, int insecure,
                                     char *err, size_t errlen)
{
    (void)ca_file;
    (void)insecure;
    return no_openssl(err, errlen);
}

/* see io_tls.h */
void io_tls_ctx_free(struct io_tls_ctx *ctx)
{
    (void)ctx;
}

/* see io_tls.h */
struct io_tls *io_tls_new(struct io_tls_ctx *ctx, int fd, int is_server,
                          const char *hostname)
{
    (void)ctx;
    (void)fd;
    (void)is_server;
    (void)hostname;
    return NULL;
}

/* see io_tls.h */
int io_tls_handshake(struct io_tls *t)
{
    (void)t;
    return IO_TLS_ERROR;
}

/* see io_tls.h */
long io_tls_read(struct io_tls *t, void *buf, size_t n)
{
    (void)t;
    (void)buf;
    (void)n;
    return IO_TLS_ERROR;
}

/* see io_tls.h */
long io_tls_write(struct io_tls *t, const void *buf, size_t n)
{
    (void)t;
    (void)buf;
    (void)n;
    return IO_TLS_ERROR;
}

/* see io_tls.h */
size_t io_tls_pending(const struct io_tls *t)
{
    (void)t;
    return 0;
}

/* see io_tls.h */
void io_tls_shutdown(struct io_tls *t)
{
    (void)t;
}

/* see io_tls.h */
void io_tls_free(struct io_tls *t)
{
    (void)t;
}

/* see io_tls.h */
const char *io_tls_error(const struct io_tls *t)
{
    (void)t;
    return NO_OPENSSL;
}

#endif /* WS_OPENSSL */
