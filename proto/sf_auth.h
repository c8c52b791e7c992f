/*  =========================================================================
    sf_auth - the ZAP handler of a CURVE server: allow-lists by domain

    czmq's zauth serves one allow-list per process; the scheduler has two
    (worker keys and admin keys) on two sockets, so this small actor
    answers ZAP (RFC 27) itself, with one zcertstore per ZAP domain. A
    store reads its directory again when it changes, so a key is enrolled
    or revoked by adding or removing its file, without a restart.

    A client whose key is in the domain's directory is accepted, and its
    messages carry the key's "name" as User-Id (sf_cert_peer). Anyone else
    is refused during the handshake: its connection never delivers a
    message. Refusals are counted and logged (at most 10 lines a second),
    also those that fail before ZAP (a peer without CURVE, or pinning
    another server key), which a monitor on each server socket reports.
    One sf_auth per process (ZAP has one handler per ZeroMQ context).
    =========================================================================
*/
#ifndef SF_AUTH_H_INCLUDED
#define SF_AUTH_H_INCLUDED

typedef struct _sf_auth_t sf_auth_t;

//  Start the ZAP handler. Returns NULL with err set if one is already
//  running in this process. Caller owns the result.
sf_auth_t *
    sf_auth_new (sf_err_t *err);

//  Stop the handler. Nullifies *self_p. Destroy the server sockets first:
//  without a handler, libzmq lets any CURVE client through.
void
    sf_auth_destroy (sf_auth_t **self_p);

//  Accept in domain the keys whose public cert files are in dir (must be
//  an existing directory). Returns 0, or -1 with err set.
int
    sf_auth_allow (sf_auth_t *self, const char *domain, const char *dir,
                   sf_err_t *err);

//  Make sock (not yet bound) a CURVE server with cert's key pair that
//  accepts the clients of domain, and count its failed handshakes. Call
//  it from the thread that owns sock.
void
    sf_auth_server (sf_auth_t *self, void *sock, zcert_t *cert, const char *domain);

//  Bound what a peer can make sock hold (set before bind or connect): a
//  frame larger than max_size bytes ends the peer's connection unread
//  (ZMQ_MAXMSGSIZE), and at most rcvhwm messages wait to be read, sndhwm
//  to be sent, per peer (ZMQ_RCVHWM, ZMQ_SNDHWM). Every socket the
//  scheduler and the CLI open goes through here, with these values:
#define SF_AUTH_WORKER_HWM  64          //  from one worker, unread
#define SF_AUTH_WORKER_SNDHWM 1000      //  to one worker (a retention burst)
#define SF_AUTH_ADMIN_MAX   (1024 * 1024)   //  one admin request frame
#define SF_AUTH_ADMIN_HWM   16          //  admin requests of one client
#define SF_AUTH_CLI_MAX     (64 * 1024 * 1024)  //  one reply to the CLI
#define SF_AUTH_CLI_HWM     16
void
    sf_auth_bound (void *sock, int64_t max_size, int rcvhwm, int sndhwm);

//  Handshakes refused so far: unknown key, wrong domain, no name, not
//  CURVE, another server key pinned.
uint64_t
    sf_auth_refused (sf_auth_t *self);

//  Self test of this class (real CURVE sockets on tcp://127.0.0.1)
void
    sf_auth_test (bool verbose);

#endif
