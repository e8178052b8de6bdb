/*
 * LD_PRELOAD shim for wrk in the HTTPS part of tests/bench/run.sh (compiled
 * into the bench temp dir at run time: cc -shared -fPIC).
 *
 * wrk keeps one SSL object per connection slot and, on reconnect, calls
 * SSL_shutdown + SSL_clear; SSL_clear keeps the session, so every reconnect
 * offers it again and the server resumes it (TLS 1.3 PSK from its session
 * ticket: no certificate, no signature). Measured against nginx: 1686 of 1690
 * `Connection: close` requests were on resumed sessions. Dropping the session
 * after SSL_clear makes each new connection a full handshake, which the
 * handshake test means to measure (run.sh checks it in nginx's access log).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;
extern int SSL_set_session(SSL *s, SSL_SESSION *session);

int SSL_clear(SSL *s) {
  static int (*real_clear)(SSL *);
  if (real_clear == NULL) real_clear = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_clear");
  int r = real_clear(s);
  SSL_set_session(s, NULL);
  return r;
}
