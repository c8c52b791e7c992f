/*  =========================================================================
    sf_liveness - which nodes are up, kept durable, and what happens to
    the jobs of a node that falls silent

    A node is declared down only after the database says so; if that
    commit fails, the peer stays up in memory and the next check tries
    again. Down fails nothing: a cut link may only delay a node's jobs.
    Its queued jobs wait for it (sf_dispatch), its handed jobs are
    governed by their leases (sf_lease).
    =========================================================================
*/
#include "sf_sched_classes.h"

struct _sf_liveness_t {
    sf_store_t *store;          //  Borrowed from the scheduler
    sf_jobs_t *jobs;            //  Borrowed from the scheduler
    sf_peers_t *peers;          //  Borrowed from the scheduler
    int64_t node_timeout_ms;
    int64_t last_check_ms;      //  Monotonic ms of the last check, 0 = none
};

SF_LOG_MODULE ("sched.liveness");

//  How often last_seen is written for a node that keeps talking
#define PERSIST_INTERVAL_MS 1000

sf_liveness_t *
sf_liveness_new (sf_store_t *store, sf_jobs_t *jobs, sf_peers_t *peers,
                 int64_t node_timeout_ms)
{
    assert (store && jobs && peers);
    sf_liveness_t *self = (sf_liveness_t *) zmalloc (sizeof (sf_liveness_t));
    self->store = store;
    self->jobs = jobs;
    self->peers = peers;
    self->node_timeout_ms = node_timeout_ms;
    return self;
}

void
sf_liveness_destroy (sf_liveness_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

int
sf_liveness_restore (sf_liveness_t *self, sf_err_t *err)
{
    assert (self);
    zlistx_t *names = sf_store_nodes_up (self->store, err);
    if (!names)
        return -1;
    int64_t now = sf_time_mono_ms ();
    for (const char *name = (const char *) zlistx_first (names); name;
         name = (const char *) zlistx_next (names))
        sf_peers_restore (self->peers, name, now);
    if (zlistx_size (names))
        SF_NOTICE (NULL, "waiting up to %" PRId64 "ms for %zu nodes that were up to "
                   "say hello again", self->node_timeout_ms, zlistx_size (names));
    zlistx_destroy (&names);
    return 0;
}

//  Record the hello and fail the jobs the worker lost, in one transaction.
//  Returns 0 or -1 with err set (nothing changed).

static int
s_record_hello (sf_liveness_t *self, const sf_hello_t *hello, zlistx_t *lost,
                zlistx_t *strangers, sf_err_t *err)
{
    if (sf_store_begin (self->store, err))
        return -1;
    if (sf_store_node_hello (self->store, hello->node, hello->software,
                             hello->max_jobs, sf_time_now_ms (), err)
    ||  sf_store_node_seen (self->store, hello->node, sf_time_now_ms (),
                            (int64_t) hello->n_running_jobs, err)
    ||  sf_jobs_reconcile (self->jobs, hello->node, hello->running_jobs,
                           hello->n_running_jobs, lost, strangers, err) < 0) {
        sf_store_rollback (self->store);
        return -1;
    }
    return sf_store_commit (self->store, err);
}

sf_peer_t *
sf_liveness_hello (sf_liveness_t *self, zframe_t *routing_id, const sf_hello_t *hello,
                   bool *replaced, sf_err_t *err)
{
    assert (self);
    assert (routing_id && hello && hello->node);
    if (!sf_peers_admits (self->peers, hello->node)) {
        sf_err_set (err, SF_EBUSY, "the peer table is full: node '%s' is refused "
                    "(limits.max_peers)", hello->node);
        return NULL;
    }
    zlistx_t *lost = zlistx_new ();
    zlistx_set_destructor (lost, (zlistx_destructor_fn *) zstr_free);
    zlistx_t *strangers = zlistx_new ();
    zlistx_set_destructor (strangers, (zlistx_destructor_fn *) zstr_free);
    sf_peer_t *peer = NULL;
    if (s_record_hello (self, hello, lost, strangers, err) == 0) {
        int64_t now = sf_time_mono_ms ();
        peer = sf_peers_hello (self->peers, routing_id, hello, now, replaced);
        peer->running_jobs = (uint32_t) hello->n_running_jobs;
        for (const char *id = (const char *) zlistx_first (lost); id;
             id = (const char *) zlistx_next (lost)) {
            sf_logctx_t ctx = { .node = hello->node, .job_id = id };
            SF_WARN (&ctx, "job failed: the worker restarted and no longer runs it");
        }
        for (const char *id = (const char *) zlistx_first (strangers); id;
             id = (const char *) zlistx_next (strangers)) {
            sf_logctx_t ctx = { .node = hello->node, .job_id = id };
            SF_NOTICE (&ctx, "the worker says it runs this job, which is not an "
                       "unfinished job of this node; its messages will be dropped");
        }
    }
    zlistx_destroy (&lost);
    zlistx_destroy (&strangers);
    return peer;
}

void
sf_liveness_touch (sf_liveness_t *self, sf_peer_t *peer, bool force)
{
    assert (self);
    assert (peer);
    sf_logctx_t ctx = { .node = peer->name };
    sf_err_t err = SF_ERR_INIT;
    int64_t now = sf_time_mono_ms ();
    peer->last_msg_ms = now;
    if (!peer->up) {
        if (sf_store_node_state (self->store, peer->name, "up", &err)) {
            SF_ERROR (&ctx, "cannot mark node up: %s", err.text);
            return;
        }
        sf_peers_set_up (peer, true);
        SF_NOTICE (&ctx, "node is up again");
        force = true;
    }
    if (force || now - peer->persisted_ms >= PERSIST_INTERVAL_MS) {
        if (sf_store_node_seen (self->store, peer->name, sf_time_now_ms (),
                                peer->running_jobs, &err))
            SF_ERROR (&ctx, "cannot record heartbeat: %s", err.text);
        else
            peer->persisted_ms = now;
    }
}

//  Node down in the database: its jobs keep their state. Returns 0 or -1
//  with err set.

static int
s_node_down (sf_liveness_t *self, const char *name, sf_err_t *err)
{
    return sf_store_node_state (self->store, name, "down", err);
}

void
sf_liveness_check (sf_liveness_t *self)
{
    assert (self);
    //  While the scheduler itself was busy (a bulk of 100,000 jobs, a slow
    //  disk) it read nothing: that time does not count as the nodes'
    //  silence, or a busy scheduler would declare the whole fleet down
    int64_t now = sf_time_mono_ms ();
    int64_t interval = sf_liveness_interval (self);
    int64_t stall = self->last_check_ms? now - self->last_check_ms - interval: 0;
    self->last_check_ms = now;
    if (stall > interval) {
        SF_WARN (NULL, "the scheduler did not read for %" PRId64 " ms: node silence "
                 "during that time is not held against the nodes", stall + interval);
        for (sf_peer_t *peer = sf_peers_first (self->peers); peer;
             peer = sf_peers_next (self->peers))
            peer->last_msg_ms += stall;
        return;
    }
    zlistx_t *names = sf_peers_expired (self->peers, now, self->node_timeout_ms);
    for (const char *name = (const char *) zlistx_first (names); name;
         name = (const char *) zlistx_next (names)) {
        sf_logctx_t ctx = { .node = name };
        sf_err_t err = SF_ERR_INIT;
        if (s_node_down (self, name, &err))
            SF_ERROR (&ctx, "cannot mark node down (will retry): %s", err.text);
        else {
            sf_peers_set_up (sf_peers_by_name (self->peers, name), false);
            SF_NOTICE (&ctx, "node is down: silent for over %" PRId64 "ms; it gets no new "
                       "jobs, its queued jobs wait for it and the jobs it holds for their "
                       "leases", self->node_timeout_ms);
        }
    }
    zlistx_destroy (&names);
}

int64_t
sf_liveness_interval (sf_liveness_t *self)
{
    assert (self);
    int64_t interval = self->node_timeout_ms / 4;
    return interval < 10? 10: interval > 1000? 1000: interval;
}
