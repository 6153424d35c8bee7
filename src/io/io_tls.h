/*
 * io_tls.h - internal: the TLS transport of the I/O layer (OpenSSL).
 *
 * A thin, non-blocking wrapper: the event loop owns the socket and calls
 * these when it is readable/writable. Only io_tls.c includes OpenSSL.
 * Built only when WS_OPENSSL is 1; otherwise io_tls.c provides stubs that
 * fail with IO_TLS_ERROR ("built without OpenSSL").
 */
#ifndef WS_IO_TLS_H
#define WS_IO_TLS_H

#include <stddef.h>

/* Results: >= 0 success (a byte count for read/write), or one of these. */
#define IO_TLS_WANT_READ (-1)   /* retry when the socket is readable */
#define IO_TLS_WANT_WRITE (-2)  /* retry when the socket is writable */
#define IO_TLS_EOF (-3)         /* the peer closed (close_notify or TCP) */
#define IO_TLS_ERROR (-4)       /* fatal; io_tls_error() says why */

struct io_tls_ctx;
struct io_tls;

/* Server context from PEM files (chain + key; checks they match). On
 * failure returns NULL and writes a message into err. */
struct io_tls_ctx *io_tls_server_ctx(const char *cert_file,
                                     const char *key_file, char *err,
                                     size_t errlen);
/* Client context: verify the peer against the system CAs, or only against
 * ca_file if given; insecure = 1 disables verification. TLS 1.2+. */
struct io_tls_ctx *io_tls_client_ctx(const char *ca_file, int insecure,
                                     char *err, size_t errlen);
/* May be called while sessions made from ctx are open: they keep a
 * reference to what they need. */
void io_tls_ctx_free(struct io_tls_ctx *ctx);

/* A TLS session over the connected non-blocking socket fd. Client:
 * hostname is sent as SNI and checked against the certificate (IP
 * addresses are checked as IPs, without SNI). NULL on allocation failure,
 * a role that does not match ctx, or a hostname OpenSSL refuses. */
struct io_tls *io_tls_new(struct io_tls_ctx *ctx, int fd, int is_server,
                          const char *hostname);
/* 0 when the handshake is done, or IO_TLS_WANT_*, IO_TLS_ERROR. */
int io_tls_handshake(struct io_tls *t);
/* Bytes read (> 0), or IO_TLS_WANT_READ/WRITE, IO_TLS_EOF, IO_TLS_ERROR. */
long io_tls_read(struct io_tls *t, void *buf, size_t n);
/* Bytes written (> 0), or IO_TLS_WANT_READ/WRITE, IO_TLS_ERROR. A retry
 * after WANT_* must offer the same bytes again (at least as many; they
 * may live at another address). */
long io_tls_write(struct io_tls *t, const void *buf, size_t n);
/* Bytes already decrypted and readable without touching the socket. */
size_t io_tls_pending(const struct io_tls *t);
/* Send close_notify (best effort, non-blocking). */
void io_tls_shutdown(struct io_tls *t);
void io_tls_free(struct io_tls *t);
/* The last error, as text: "" if none (and after a clean close_notify
 * EOF), else e.g. "unexpected eof while reading". */
const char *io_tls_error(const struct io_tls *t);

#endif /* WS_IO_TLS_H */
