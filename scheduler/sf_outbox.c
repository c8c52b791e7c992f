/*  =========================================================================
    sf_outbox - what the scheduler sends to workers: now, or once the
    batch that makes its state durable is committed

    Rules this file keeps:
    - while held, nothing leaves before sf_outbox_flush (the caller
      flushes after its commit);
    - every JobAssign that does not leave, at once or at the flush, goes
      to the unsent callback, and nowhere else;
    - an Ack leaves only at a flush, and never after sf_outbox_drop_acks
      (the batch that handled its message was not committed).
    =========================================================================
*/
#include "sf_sched_classes.h"

//  A message held until the flush
typedef struct {
    zmsg_t *msg;                //  [routing id, envelope]
    char *job_id;               //  A JobAssign's job, else NULL
} outmsg_t;

//  An Ack waiting for the flush (strings owned)
typedef struct {
    char *job_id;               //  NULL for an ImageDeleted's
    uint32_t attempt;
    int phase;
    uint64_t at_ms;
    char *request_id;           //  NULL for a job's
} ackrec_t;

struct _sf_outbox_t {
    zsock_t *router;            //  Borrowed
    sf_peers_t *peers;          //  Borrowed
    zlistx_t *held;             //  outmsg_t, owned; NULL when not holding
    zhashx_t *acks;             //  node -> zlistx_t of ackrec_t (owned)
    zlistx_t *ack_nodes;        //  nodes with acks, in order (owned strings)
    sf_outbox_unsent_fn *unsent;
    void *unsent_arg;
};

SF_LOG_MODULE ("sched.outbox");

static void
s_outmsg_destroy (outmsg_t **self_p)
{
    if (*self_p) {
        zmsg_destroy (&(*self_p)->msg);
        free ((*self_p)->job_id);
        free (*self_p);
        *self_p = NULL;
    }
}

static void
s_ackrec_destroy (ackrec_t **self_p)
{
    if (*self_p) {
        free ((*self_p)->job_id);
        free ((*self_p)->request_id);
        free (*self_p);
        *self_p = NULL;
    }
}

sf_outbox_t *
sf_outbox_new (zsock_t *router, sf_peers_t *peers)
{
    assert (router && peers);
    sf_outbox_t *self = (sf_outbox_t *) zmalloc (sizeof (sf_outbox_t));
    self->router = router;
    self->peers = peers;
    self->acks = zhashx_new ();
    zhashx_set_destructor (self->acks, (zhashx_destructor_fn *) zlistx_destroy);
    self->ack_nodes = zlistx_new ();
    zlistx_set_destructor (self->ack_nodes, (zlistx_destructor_fn *) zstr_free);
    return self;
}

void
sf_outbox_destroy (sf_outbox_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_outbox_t *self = *self_p;
        zlistx_destroy (&self->held);
        zhashx_destroy (&self->acks);
        zlistx_destroy (&self->ack_nodes);
        free (self);
        *self_p = NULL;
    }
}

void
sf_outbox_on_unsent (sf_outbox_t *self, sf_outbox_unsent_fn *fn, void *arg)
{
    assert (self);
    self->unsent = fn;
    self->unsent_arg = arg;
}

//  The one place an undeliverable assignment is reported

static void
s_unsent (sf_outbox_t *self, const char *job_id, const sf_err_t *why)
{
    SF_DEBUG (NULL, "assignment of job '%s' did not leave: %s", job_id, why->text);
    if (self->unsent)
        self->unsent (self->unsent_arg, job_id, why);
}

//  Send or hold; a JobAssign that cannot leave is reported, not failed

static int
s_send (sf_outbox_t *self, zframe_t *routing_id, sf_envelope_t *env, sf_err_t *err)
{
    int rc = 0;
    if (!self->held)
        rc = sf_wire_send (zsock_resolve (self->router), routing_id, env, err);
    else {
        zframe_t *frame = sf_wire_encode (env, err);
        if (!frame)
            rc = -1;
        else {
            outmsg_t *out = (outmsg_t *) zmalloc (sizeof (outmsg_t));
            out->msg = zmsg_new ();
            zmsg_append (out->msg, &frame);
            zmsg_pushmem (out->msg, zframe_data (routing_id), zframe_size (routing_id));
            if (env->body_case == SF_BODY_JOB_ASSIGN)
                out->job_id = strdup (env->job_assign->job_id);
            zlistx_add_end (self->held, out);
        }
    }
    if (rc && env->body_case == SF_BODY_JOB_ASSIGN) {
        s_unsent (self, env->job_assign->job_id, err);
        rc = 0;
    }
    return rc;
}

int
sf_outbox_send (sf_outbox_t *self, const char *node, sf_envelope_t *env, sf_err_t *err)
{
    assert (self && node && env);
    sf_peer_t *peer = sf_peers_by_name (self->peers, node);
    if (peer && peer->up && peer->routing_id)
        return s_send (self, peer->routing_id, env, err);
    sf_err_set (err, SF_ENODE, "node '%s' is not connected", node);
    if (env->body_case != SF_BODY_JOB_ASSIGN)
        return -1;
    s_unsent (self, env->job_assign->job_id, err);
    return 0;
}

int
sf_outbox_send_to (sf_outbox_t *self, zframe_t *routing_id, sf_envelope_t *env,
                   sf_err_t *err)
{
    assert (self && routing_id && env);
    return s_send (self, routing_id, env, err);
}

void
sf_outbox_hold (sf_outbox_t *self)
{
    assert (self);
    if (!self->held) {
        self->held = zlistx_new ();
        zlistx_set_destructor (self->held, (zlistx_destructor_fn *) s_outmsg_destroy);
    }
}

//  --------------------------------------------------------------------------
//  Acknowledgements

void
sf_outbox_ack (sf_outbox_t *self, const char *node, const sf_envelope_t *env)
{
    assert (self && node && env);
    sf_ack_t ack;
    if (!sf_wire_ack_of (env, &ack))
        return;
    ackrec_t *rec = (ackrec_t *) zmalloc (sizeof (ackrec_t));
    if (ack.job_id && *ack.job_id) {
        rec->job_id = strdup (ack.job_id);
        rec->attempt = ack.attempt;
        rec->phase = (int) ack.phase;
        rec->at_ms = ack.at_ms;
    }
    else
        rec->request_id = strdup (ack.request_id? ack.request_id: "");
    zlistx_t *list = (zlistx_t *) zhashx_lookup (self->acks, node);
    if (!list) {
        list = zlistx_new ();
        zlistx_set_destructor (list, (zlistx_destructor_fn *) s_ackrec_destroy);
        zhashx_insert (self->acks, node, list);
        zlistx_add_end (self->ack_nodes, strdup (node));
    }
    zlistx_add_end (list, rec);
}

size_t
sf_outbox_acks_pending (sf_outbox_t *self)
{
    assert (self);
    size_t count = 0;
    for (zlistx_t *list = (zlistx_t *) zhashx_first (self->acks); list;
         list = (zlistx_t *) zhashx_next (self->acks))
        count += zlistx_size (list);
    return count;
}

void
sf_outbox_drop_acks (sf_outbox_t *self)
{
    assert (self);
    size_t dropped = sf_outbox_acks_pending (self);
    if (dropped)
        SF_DEBUG (NULL, "%zu acknowledgement(s) dropped: their batch was not committed",
                  dropped);
    zhashx_purge (self->acks);
    zlistx_purge (self->ack_nodes);
}

//  Acks per message (SF_WIRE_MAX_ACKS at most): what fits on the stack
#define S_ACKS_PER_MSG 256

//  Send list to node, in Acks messages of up to S_ACKS_PER_MSG

static void
s_send_acks (sf_outbox_t *self, const char *node, zlistx_t *list)
{
    while (zlistx_size (list)) {
        size_t count = 0;
        sf_ack_t acks [S_ACKS_PER_MSG];
        sf_ack_t *ptrs [sizeof (acks) / sizeof (acks [0])];
        for (ackrec_t *rec = (ackrec_t *) zlistx_first (list);
             rec && count < sizeof (acks) / sizeof (acks [0]);
             rec = (ackrec_t *) zlistx_next (list)) {
            acks [count] = sf_wire_ack (rec->job_id, rec->attempt, rec->phase, rec->at_ms,
                                        rec->request_id);
            ptrs [count] = &acks [count];
            count++;
        }
        sf_acks_t msg = SF_ACKS_INIT;
        msg.acks = ptrs;
        msg.n_acks = count;
        sf_envelope_t env = sf_wire_envelope (SF_BODY_ACKS, &msg);
        sf_err_t err = SF_ERR_INIT;
        //  One that cannot leave is harmless: the worker replays the
        //  messages and they are acknowledged again
        if (sf_outbox_send (self, node, &env, &err))
            SF_DEBUG (NULL, "cannot acknowledge to node '%s': %s", node, err.text);
        for (size_t i = 0; i < count; i++) {
            zlistx_first (list);
            zlistx_delete (list, zlistx_cursor (list));
        }
    }
}

//  Send what was held, in order

static void
s_flush_held (sf_outbox_t *self, zlistx_t *held)
{
    outmsg_t *out;
    while ((out = (outmsg_t *) zlistx_detach (held, NULL))) {
        if (zmsg_send (&out->msg, self->router)) {
            int errnum = zmq_errno ();
            sf_err_t why = SF_ERR_INIT;
            sf_err_set (&why, errnum == EHOSTUNREACH? SF_ENODE: SF_EIO,
                        "cannot send message: %s", zmq_strerror (errnum));
            SF_DEBUG (NULL, "cannot send to a worker: %s", why.text);
            if (out->job_id)
                s_unsent (self, out->job_id, &why);
        }
        s_outmsg_destroy (&out);
    }
    zlistx_destroy (&held);
}

void
sf_outbox_flush (sf_outbox_t *self)
{
    assert (self);
    zlistx_t *held = self->held;
    self->held = NULL;          //  What the callback sends leaves at once
    if (held)
        s_flush_held (self, held);
    for (const char *node = (const char *) zlistx_first (self->ack_nodes); node;
         node = (const char *) zlistx_next (self->ack_nodes)) {
        zlistx_t *list = (zlistx_t *) zhashx_lookup (self->acks, node);
        if (list)
            s_send_acks (self, node, list);
    }
    zhashx_purge (self->acks);
    zlistx_purge (self->ack_nodes);
}

//  --------------------------------------------------------------------------
//  Self test

typedef struct {
    char job_id [32];
    int code;
    int calls;
} test_unsent_t;

static void
s_test_on_unsent (void *arg, const char *job_id, const sf_err_t *why)
{
    test_unsent_t *unsent = (test_unsent_t *) arg;
    snprintf (unsent->job_id, sizeof (unsent->job_id), "%s", job_id);
    unsent->code = why->code;
    unsent->calls++;
}

static void
s_test_assign (sf_envelope_t *env, sf_job_assign_t *assign, const char *id)
{
    *assign = (sf_job_assign_t) SF_JOB_ASSIGN_INIT;
    assign->job_id = (char *) id;
    assign->attempt = 1;
    assign->instance_uuid = "u-vm1";
    assign->strategy = "file-cold";
    assign->catalog_id = "0123456789abcdef";
    *env = (sf_envelope_t) SF_ENVELOPE_INIT;
    env->body_case = SF_BODY_JOB_ASSIGN;
    env->job_assign = assign;
}

void
sf_outbox_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_outbox: ");
    //  @selftest
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router);
    zsock_set_router_mandatory (router, 1);
    zsock_set_sndtimeo (router, 0);
    int rc = zsock_bind (router, "inproc://sf_outbox_test");
    assert (rc == 0);
    zsock_t *worker = zsock_new_dealer ("inproc://sf_outbox_test");
    assert (worker);
    zsock_set_rcvtimeo (worker, 2000);
    zstr_send (worker, "hi");
    zmsg_t *first = zmsg_recv (router);
    zframe_t *routing_id = zmsg_pop (first);
    zmsg_destroy (&first);
    sf_peers_t *peers = sf_peers_new ();
    sf_hello_t hello = SF_HELLO_INIT;
    hello.node = "n1";
    bool replaced = false;
    sf_peers_hello (peers, routing_id, &hello, sf_time_mono_ms (), &replaced);
    sf_outbox_t *outbox = sf_outbox_new (router, peers);
    test_unsent_t unsent = { "", 0, 0 };
    sf_outbox_on_unsent (outbox, s_test_on_unsent, &unsent);
    sf_err_t err = SF_ERR_INIT;
    sf_envelope_t env;
    sf_job_assign_t assign;

    //  To an unknown node: an error, or for an assignment the callback
    sf_heartbeat_t beat = SF_HEARTBEAT_INIT;
    sf_envelope_t other = sf_wire_envelope (SF_BODY_HEARTBEAT, &beat);
    assert (sf_outbox_send (outbox, "n9", &other, &err) == -1 && err.code == SF_ENODE);
    s_test_assign (&env, &assign, "J1");
    assert (sf_outbox_send (outbox, "n9", &env, &err) == 0);
    assert (unsent.calls == 1 && streq (unsent.job_id, "J1") && unsent.code == SF_ENODE);

    //  Held until the flush, then sent in order
    sf_outbox_hold (outbox);
    s_test_assign (&env, &assign, "J2");
    assert (sf_outbox_send (outbox, "n1", &env, &err) == 0);
    assert (sf_outbox_send_to (outbox, routing_id, &other, &err) == 0);
    zsock_set_rcvtimeo (worker, 50);
    zmsg_t *none = zmsg_recv (worker);
    assert (!none);
    sf_outbox_flush (outbox);
    zsock_set_rcvtimeo (worker, 2000);
    sf_envelope_t *got = sf_wire_recv (zsock_resolve (worker), NULL, &err);
    assert (got && got->body_case == SF_BODY_JOB_ASSIGN);
    assert (streq (got->job_assign->job_id, "J2"));
    sf_wire_free (&got);
    got = sf_wire_recv (zsock_resolve (worker), NULL, &err);
    assert (got && got->body_case == SF_BODY_HEARTBEAT);
    sf_wire_free (&got);
    assert (unsent.calls == 1);

    //  Acks: only at the flush, one message for the node; none if the
    //  batch was not committed
    sf_job_event_t event = sf_wire_job_event ("J2", 1, SF_PHASE_PAUSED, 5, 0);
    sf_envelope_t event_env = sf_wire_envelope (SF_BODY_JOB_EVENT, &event);
    sf_image_deleted_t deleted = SF_IMAGE_DELETED_INIT;
    deleted.request_id = "R1";
    sf_envelope_t deleted_env = sf_wire_envelope (SF_BODY_IMAGE_DELETED, &deleted);
    sf_outbox_hold (outbox);
    sf_outbox_ack (outbox, "n1", &event_env);
    sf_outbox_ack (outbox, "n1", &other);           //  a heartbeat: no Ack
    assert (sf_outbox_acks_pending (outbox) == 1);
    sf_outbox_drop_acks (outbox);
    assert (sf_outbox_acks_pending (outbox) == 0);
    sf_outbox_flush (outbox);
    zsock_set_rcvtimeo (worker, 50);
    none = zmsg_recv (worker);
    assert (!none);
    sf_outbox_hold (outbox);
    sf_outbox_ack (outbox, "n1", &event_env);
    sf_outbox_ack (outbox, "n1", &deleted_env);
    sf_outbox_ack (outbox, "n9", &event_env);       //  not connected: dropped
    assert (sf_outbox_send_to (outbox, routing_id, &other, &err) == 0);
    none = zmsg_recv (worker);
    assert (!none);
    sf_outbox_flush (outbox);
    assert (sf_outbox_acks_pending (outbox) == 0);
    zsock_set_rcvtimeo (worker, 2000);
    got = sf_wire_recv (zsock_resolve (worker), NULL, &err);
    assert (got && got->body_case == SF_BODY_HEARTBEAT);
    sf_wire_free (&got);
    got = sf_wire_recv (zsock_resolve (worker), NULL, &err);
    assert (got && got->body_case == SF_BODY_ACKS && got->acks->n_acks == 2);
    assert (sf_wire_ack_matches (got->acks->acks [0], &event_env));
    assert (sf_wire_ack_matches (got->acks->acks [1], &deleted_env));
    sf_wire_free (&got);
    //  Many: split into several messages, all of them sent
    for (int i = 0; i < 300; i++)
        sf_outbox_ack (outbox, "n1", &event_env);
    sf_outbox_flush (outbox);
    size_t total = 0;
    while (total < 300 && (got = sf_wire_recv (zsock_resolve (worker), NULL, &err))) {
        assert (got->body_case == SF_BODY_ACKS && got->acks->n_acks <= S_ACKS_PER_MSG);
        total += got->acks->n_acks;
        sf_wire_free (&got);
    }
    assert (total == 300);

    //  The connection is gone: a held assignment is reported at the flush
    zsock_destroy (&worker);
    zclock_sleep (300);
    sf_outbox_hold (outbox);
    s_test_assign (&env, &assign, "J3");
    assert (sf_outbox_send (outbox, "n1", &env, &err) == 0);
    assert (unsent.calls == 1);
    sf_outbox_flush (outbox);
    assert (unsent.calls == 2 && streq (unsent.job_id, "J3") && unsent.code == SF_ENODE);
    //  And one sent at once is reported at once
    s_test_assign (&env, &assign, "J4");
    assert (sf_outbox_send (outbox, "n1", &env, &err) == 0);
    assert (unsent.calls == 3 && streq (unsent.job_id, "J4") && unsent.code == SF_ENODE);

    sf_outbox_destroy (&outbox);
    sf_peers_destroy (&peers);
    zframe_destroy (&routing_id);
    zsock_destroy (&router);
    //  @end
    printf ("OK\n");
}
