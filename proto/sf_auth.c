/*  =========================================================================
    sf_auth - the ZAP handler of a CURVE server: allow-lists by domain

    The handler socket is bound by the caller of sf_auth_new (so that a
    second handler fails there, with a message) and handed to the actor,
    which owns it from then on.
    =========================================================================
*/
#include "sf_core.h"
#include <sys/stat.h>

struct _sf_auth_t {
    zactor_t *actor;            //  Owned: answers ZAP requests
    zsock_t *bound;             //  The handler socket until the actor takes it
    uint64_t refused;           //  Written by the actor (atomic)
};

//  Monitors made in this process, for unique endpoint names (a socket's
//  monitor endpoint is released asynchronously when the socket closes)
static int s_monitors;

SF_LOG_MODULE ("core.auth");

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
//  Handshakes that fail before ZAP: a peer that does not speak CURVE, or
//  that pins another server key (the server cannot decrypt its hello)
#define FAILED_EVENTS (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL \
                     | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
#define LOGS_PER_SECOND 10

//  What the actor works with

typedef struct {
    sf_auth_t *auth;            //  For the refused count
    zsock_t *pipe;              //  Borrowed
    zsock_t *handler;           //  Owned: REP on ZAP_ENDPOINT
    zhashx_t *stores;           //  Domain -> zcertstore_t (owned)
    zpoller_t *poller;          //  Owned: pipe, handler and the monitors
    zlistx_t *monitors;         //  Owned: PAIRs with the server sockets' events
    int64_t log_window_ms;      //  Rate limit of refusal logs
    int log_count;
} handler_t;

static void
s_store_destroy (void **item_p)
{
    zcertstore_destroy ((zcertstore_t **) item_p);
}

//  --------------------------------------------------------------------------
//  Answering one ZAP request

static void
s_refused (handler_t *self, const char *domain, const char *address,
           const char *key, const char *why)
{
    __atomic_add_fetch (&self->auth->refused, 1, __ATOMIC_RELAXED);
    int64_t now = sf_time_mono_ms ();
    if (now - self->log_window_ms >= 1000) {
        self->log_window_ms = now;
        self->log_count = 0;
    }
    if (self->log_count++ < LOGS_PER_SECOND)
        SF_WARN (NULL, "refused %s connection from %s (key %s): %s",
                 domain, address, key, why);
}

//  Decide on a request: returns the peer's name (owned by the store's
//  cert), or NULL with *why set

static const char *
s_decide (handler_t *self, const char *domain, const char *mechanism,
          zframe_t *credentials, char *key, const char **why)
{
    zcertstore_t *store = (zcertstore_t *) zhashx_lookup (self->stores, domain);
    if (!streq (mechanism, "CURVE")) {
        *why = "not a CURVE connection";
        return NULL;
    }
    if (!credentials || zframe_size (credentials) != 32) {
        *why = "no client key";
        return NULL;
    }
    zmq_z85_encode (key, zframe_data (credentials), 32);
    if (!store) {
        *why = "no allow-list for this socket";
        return NULL;
    }
    zcert_t *cert = zcertstore_lookup (store, key);
    const char *name = cert? zcert_meta (cert, SF_CERT_NAME): NULL;
    if (!cert)
        *why = "key not enrolled";
    else
    if (!name || !sf_name_is_safe (name)) {
        *why = "enrolled key has no valid name";
        name = NULL;
    }
    return name;
}

static void
s_handle_request (handler_t *self)
{
    zmsg_t *request = zmsg_recv (self->handler);
    if (!request)
        return;
    char *version = zmsg_popstr (request);
    zframe_t *request_id = zmsg_pop (request);
    char *domain = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    char *routing_id = zmsg_popstr (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *credentials = zmsg_pop (request);
    char key [41] = "none";
    const char *why = "malformed ZAP request";
    const char *name = NULL;
    if (version && streq (version, "1.0") && request_id && domain && address
    &&  mechanism)
        name = s_decide (self, domain, mechanism, credentials, key, &why);
    if (!name)
        s_refused (self, domain && *domain? domain: "unnamed", address? address: "?",
                   key, why);
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    if (request_id)
        zmsg_append (reply, &request_id);
    else
        zmsg_addstr (reply, "");
    zmsg_addstr (reply, name? "200": "400");
    zmsg_addstr (reply, name? "OK": why);
    zmsg_addstr (reply, name? name: "");
    zmsg_addmem (reply, NULL, 0);          //  No metadata
    zmsg_send (&reply, self->handler);
    zframe_destroy (&credentials);
    zframe_destroy (&request_id);
    zstr_free (&mechanism);
    zstr_free (&routing_id);
    zstr_free (&address);
    zstr_free (&domain);
    zstr_free (&version);
    zmsg_destroy (&request);
}

//  A server socket's monitor reports a handshake that failed before ZAP

static void
s_handle_monitor (handler_t *self, zsock_t *monitor)
{
    zmsg_t *msg = zmsg_recv (monitor);
    zframe_t *event = msg? zmsg_first (msg): NULL;
    char *address = msg && zmsg_size (msg) > 1? zframe_strdup (zmsg_last (msg)): NULL;
    if (event && zframe_size (event) == 6) {
        uint16_t id;
        uint32_t value;
        memcpy (&id, zframe_data (event), 2);
        memcpy (&value, zframe_data (event) + 2, 4);
        if (id & FAILED_EVENTS)
            s_refused (self, "CURVE", address? address: "?", "unknown",
                       value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
                       ? "the peer does not speak CURVE"
                       : "handshake failed (the peer may pin another server key)");
    }
    zstr_free (&address);
    zmsg_destroy (&msg);
}

//  --------------------------------------------------------------------------
//  The actor

//  ALLOW domain dir: signals 0 when the store is in place

static void
s_handle_allow (handler_t *self)
{
    char *domain = NULL, *dir = NULL;
    zstr_recvx (self->pipe, &domain, &dir, NULL);
    if (domain && dir)
        zhashx_update (self->stores, domain, zcertstore_new (dir));
    zstr_free (&domain);
    zstr_free (&dir);
    zsock_signal (self->pipe, 0);
}

//  MONITOR endpoint: signals 0 once we listen to that server's events

static void
s_handle_monitor_add (handler_t *self)
{
    char *endpoint = zstr_recv (self->pipe);
    zsock_t *monitor = endpoint? zsock_new_pair (endpoint): NULL;
    if (monitor) {
        zlistx_add_end (self->monitors, monitor);
        zpoller_add (self->poller, monitor);
    }
    zstr_free (&endpoint);
    zsock_signal (self->pipe, 0);
}

static void
s_monitor_destroy (void **item_p)
{
    zsock_destroy ((zsock_t **) item_p);
}

static void
s_actor (zsock_t *pipe, void *args)
{
    handler_t self = { .auth = (sf_auth_t *) args, .pipe = pipe };
    //  Take the socket sf_auth_new bound (zactor_new waits for our signal)
    self.handler = self.auth->bound;
    self.auth->bound = NULL;
    self.stores = zhashx_new ();
    zhashx_set_destructor (self.stores, s_store_destroy);
    self.monitors = zlistx_new ();
    zlistx_set_destructor (self.monitors, s_monitor_destroy);
    self.poller = zpoller_new (pipe, self.handler, NULL);
    zsock_signal (pipe, 0);
    while (true) {
        void *which = zpoller_wait (self.poller, -1);
        if (which == self.handler)
            s_handle_request (&self);
        else
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            bool stop = !command || streq (command, "$TERM");
            if (command && streq (command, "ALLOW"))
                s_handle_allow (&self);
            else
            if (command && streq (command, "MONITOR"))
                s_handle_monitor_add (&self);
            zstr_free (&command);
            if (stop)
                break;
        }
        else
        if (which)
            s_handle_monitor (&self, (zsock_t *) which);
        else
            break;              //  Interrupted
    }
    zpoller_destroy (&self.poller);
    zlistx_destroy (&self.monitors);
    zsock_unbind (self.handler, ZAP_ENDPOINT);
    zsock_destroy (&self.handler);
    zhashx_destroy (&self.stores);
}

//  --------------------------------------------------------------------------
//  The class

sf_auth_t *
sf_auth_new (sf_err_t *err)
{
    zsock_t *handler = zsock_new (ZMQ_REP);
    assert (handler);
    if (zsock_bind (handler, ZAP_ENDPOINT)) {
        sf_err_set (err, SF_EBUSY, "cannot start the CURVE authenticator: %s "
                    "(one per process)", zmq_strerror (zmq_errno ()));
        zsock_destroy (&handler);
        return NULL;
    }
    sf_auth_t *self = (sf_auth_t *) zmalloc (sizeof (sf_auth_t));
    self->bound = handler;
    self->actor = zactor_new (s_actor, self);
    assert (self->actor && !self->bound);
    return self;
}

void
sf_auth_destroy (sf_auth_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_auth_t *self = *self_p;
        zactor_destroy (&self->actor);
        free (self);
        *self_p = NULL;
    }
}

int
sf_auth_allow (sf_auth_t *self, const char *domain, const char *dir, sf_err_t *err)
{
    assert (self && domain && dir);
    struct stat st;
    if (stat (dir, &st) || !S_ISDIR (st.st_mode))
        return sf_err_set (err, SF_ENOENT, "allow-list '%s' of %s keys is not a "
                           "directory", dir, domain);
    zstr_sendx (self->actor, "ALLOW", domain, dir, NULL);
    zsock_wait (self->actor);
    return 0;
}

void
sf_auth_server (sf_auth_t *self, void *sock, zcert_t *cert, const char *domain)
{
    assert (self && sock && cert && domain);
    zcert_apply (cert, sock);
    zsock_set_curve_server (sock, 1);
    zsock_set_zap_domain (sock, domain);
    //  The actor counts the handshakes that fail before ZAP
    char endpoint [64];
    snprintf (endpoint, sizeof (endpoint), "inproc://sf-auth-monitor-%d",
              __atomic_add_fetch (&s_monitors, 1, __ATOMIC_RELAXED));
    if (zmq_socket_monitor (zsock_resolve (sock), endpoint, FAILED_EVENTS) == 0) {
        zstr_sendx (self->actor, "MONITOR", endpoint, NULL);
        zsock_wait (self->actor);
    }
    else
        SF_WARN (NULL, "cannot monitor the %s socket (%s): handshakes that fail before "
                 "authentication go uncounted", domain, zmq_strerror (zmq_errno ()));
}

uint64_t
sf_auth_refused (sf_auth_t *self)
{
    assert (self);
    return __atomic_load_n (&self->refused, __ATOMIC_RELAXED);
}

//  --------------------------------------------------------------------------
//  Self test

//  A message sent by client, received on server within timeout ms (or NULL)

static zmsg_t *
s_exchange (zsock_t *client, zsock_t *server, int timeout)
{
    zstr_send (client, "hello");
    zpoller_t *poller = zpoller_new (server, NULL);
    zmsg_t *msg = zpoller_wait (poller, timeout)? zmsg_recv (server): NULL;
    zpoller_destroy (&poller);
    return msg;
}

void
sf_auth_bound (void *sock, int64_t max_size, int rcvhwm, int sndhwm)
{
    assert (sock && max_size > 0 && rcvhwm > 0 && sndhwm > 0);
    zsock_set_maxmsgsize (sock, (int) (max_size < INT_MAX? max_size: INT_MAX));
    zsock_set_rcvhwm (sock, rcvhwm);
    zsock_set_sndhwm (sock, sndhwm);
}

//  A message on sock within timeout ms, or NULL

static zmsg_t *
s_recv_within (zsock_t *sock, int timeout)
{
    zpoller_t *poller = zpoller_new (sock, NULL);
    zmsg_t *msg = zpoller_wait (poller, timeout)? zmsg_recv (sock): NULL;
    zpoller_destroy (&poller);
    return msg;
}

static zsock_t *
s_client (const char *endpoint, zcert_t *cert, zcert_t *server)
{
    zsock_t *client = zsock_new (ZMQ_DEALER);
    zsock_set_linger (client, 0);
    sf_cert_client (client, cert, server);
    int rc = zsock_connect (client, "%s", endpoint);
    assert (rc == 0);
    return client;
}

static zcert_t *
s_keygen (const char *dir, const char *name)
{
    char *path = zsys_sprintf ("%s/%s", dir, name);
    sf_err_t err = SF_ERR_INIT;
    int rc = sf_cert_keygen (path, name, &err);
    assert (rc == 0);
    zcert_t *cert = sf_cert_load (path, true, &err);
    assert (cert);
    zstr_free (&path);
    return cert;
}

void
sf_auth_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_auth: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    char dir [] = "/tmp/sf_auth_test.XXXXXX";
    assert (mkdtemp (dir));
    char *workers = zsys_sprintf ("%s/workers", dir);
    char *admins = zsys_sprintf ("%s/admins", dir);
    assert (zsys_dir_create ("%s", workers) == 0 && zsys_dir_create ("%s", admins) == 0);
    zcert_t *server = s_keygen (dir, "sched");
    zcert_t *n1 = s_keygen (dir, "n1");
    zcert_t *rogue = s_keygen (dir, "rogue");
    zcert_t *admin = s_keygen (dir, "alice");
    char *enrolled = zsys_sprintf ("%s/n1", workers);
    assert (zcert_save_public (n1, enrolled) == 0);
    char *enrolled_admin = zsys_sprintf ("%s/alice", admins);
    assert (zcert_save_public (admin, enrolled_admin) == 0);

    sf_auth_t *auth = sf_auth_new (&err);
    assert (auth);
    assert (sf_auth_new (&err) == NULL && err.code == SF_EBUSY);
    assert (sf_auth_allow (auth, "worker", workers, &err) == 0);
    assert (sf_auth_allow (auth, "admin", admins, &err) == 0);
    assert (sf_auth_allow (auth, "x", "/nonexistent", &err) == -1);
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    sf_auth_server (auth, router, server, "worker");
    assert (zsock_bind (router, "tcp://127.0.0.1:*") > 0);
    const char *endpoint = zsock_endpoint (router);

    //  An enrolled key gets through, named by its key's name
    zsock_t *client = s_client (endpoint, n1, server);
    zmsg_t *msg = s_exchange (client, router, 5000);
    assert (msg && zmsg_size (msg) == 2);
    //  (the body frame carries it; the ROUTER's routing id frame does not)
    assert (streq (sf_cert_peer (zmsg_last (msg)), "n1"));
    zmsg_destroy (&msg);
    zsock_destroy (&client);
    assert (sf_auth_refused (auth) == 0);

    //  An unenrolled key, and an admin key on the worker socket, get nothing
    client = s_client (endpoint, rogue, server);
    assert (s_exchange (client, router, 500) == NULL);
    zsock_destroy (&client);
    assert (sf_auth_refused (auth) >= 1);
    uint64_t refused = sf_auth_refused (auth);
    client = s_client (endpoint, admin, server);
    assert (s_exchange (client, router, 500) == NULL);
    zsock_destroy (&client);
    assert (sf_auth_refused (auth) > refused);

    //  A client that pins another server key gets nothing either, nor
    //  one without CURVE; both are counted too
    refused = sf_auth_refused (auth);
    client = s_client (endpoint, n1, rogue);
    assert (s_exchange (client, router, 500) == NULL);
    zsock_destroy (&client);
    assert (sf_auth_refused (auth) > refused);
    refused = sf_auth_refused (auth);
    client = zsock_new_dealer (endpoint);
    assert (s_exchange (client, router, 500) == NULL);
    zsock_destroy (&client);
    assert (sf_auth_refused (auth) > refused);

    //  Enrolment is live: the rogue key, once its file is in the directory
    char *late = zsys_sprintf ("%s/rogue", workers);
    assert (zcert_save_public (rogue, late) == 0);
    client = s_client (endpoint, rogue, server);
    msg = s_exchange (client, router, 5000);
    assert (msg && streq (sf_cert_peer (zmsg_last (msg)), "rogue"));
    zmsg_destroy (&msg);
    zsock_destroy (&client);

    zsock_destroy (&router);
    sf_auth_destroy (&auth);
    assert (auth == NULL);
    //  The handler can start again once the first one is gone
    auth = sf_auth_new (&err);
    assert (auth);
    sf_auth_destroy (&auth);

    zcert_destroy (&server);
    zcert_destroy (&n1);
    zcert_destroy (&rogue);
    zcert_destroy (&admin);
    unlink (late);
    unlink (enrolled);
    unlink (enrolled_admin);
    const char *names [] = { "sched", "n1", "rogue", "alice", NULL };
    for (int i = 0; names [i]; i++) {
        char *path = zsys_sprintf ("%s/%s", dir, names [i]);
        char *secret = zsys_sprintf ("%s_secret", path);
        unlink (path);
        unlink (secret);
        zstr_free (&path);
        zstr_free (&secret);
    }
    zsys_dir_delete ("%s", workers);
    zsys_dir_delete ("%s", admins);
    zsys_dir_delete ("%s", dir);
    zstr_free (&late);
    zstr_free (&enrolled);
    zstr_free (&enrolled_admin);
    zstr_free (&workers);
    zstr_free (&admins);

    //  Bounds: a frame over the cap ends that peer's connection unread;
    //  a frame within it from another peer still gets through
    zsock_t *bounded = zsock_new (ZMQ_ROUTER);
    sf_auth_bound (bounded, 1024, 4, 5);
    assert (zsock_maxmsgsize (bounded) == 1024);
    assert (zsock_rcvhwm (bounded) == 4 && zsock_sndhwm (bounded) == 5);
    int port = zsock_bind (bounded, "tcp://127.0.0.1:*");
    assert (port > 0);
    char *bounded_at = zsys_sprintf ("tcp://127.0.0.1:%d", port);
    zsock_t *big = zsock_new_dealer (bounded_at);
    zsock_t *small = zsock_new_dealer (bounded_at);
    byte *payload = (byte *) zmalloc (2048);
    zframe_t *frame = zframe_new (payload, 2048);
    zframe_send (&frame, big, 0);
    zstr_send (small, "fits");
    zmsg_t *got = s_recv_within (bounded, 2000);
    assert (got && zmsg_size (got) == 2);
    char *body = zframe_strdup (zmsg_last (got));
    assert (streq (body, "fits"));
    zstr_free (&body);
    zmsg_destroy (&got);
    assert (s_recv_within (bounded, 200) == NULL);
    free (payload);
    zstr_free (&bounded_at);
    zsock_destroy (&big);
    zsock_destroy (&small);
    zsock_destroy (&bounded);
    //  @end
    printf ("OK\n");
}
