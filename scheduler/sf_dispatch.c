/*  =========================================================================
    sf_dispatch - the admission loop: from queued jobs to JobAssign and
    JobGrant, and the resources each phase holds

    Rules this file keeps:
    - a job is committed before it is queued here (sf_bulk), and its
      assignment is committed before the JobAssign leaves;
    - sf_admit is told everything that frees a slot: a phase over (event),
      a job ended (sf_jobs_take_ended: results, failures, node down,
      reconciliation), so no slot leaks and no count passes its limit;
    - every job that ended is reported to the ended callback once (its
      bulk counts it).
    =========================================================================
*/
#include "sf_sched_classes.h"

//  What the dispatcher remembers of a job it handed to sf_admit
typedef struct {
    char *id;
    char *node;
    char *bulk_id;              //  "" if none
    char *instance_uuid;
    char *strategy;
    uint32_t attempt;
    bool captured;              //  pause/snap slots given back
    bool uploading;             //  holds an upload slot
    uint64_t rate_bps;          //  last granted rate
    uint64_t scratch_bytes;
} djob_t;

struct _sf_dispatch_t {
    sf_store_t *store;          //  Borrowed
    sf_jobs_t *jobs;            //  Borrowed
    sf_peers_t *peers;          //  Borrowed
    sf_outbox_t *outbox;        //  Borrowed
    sf_admit_t *admit;          //  Owned
    sf_limits_t limits;
    zhashx_t *djobs;            //  id -> djob_t, owned
    sf_dispatch_ended_fn *ended;
    void *ended_arg;
    bool unsent_ended;          //  sf_dispatch_unsent failed a job
};

SF_LOG_MODULE ("sched.dispatch");

static void
s_djob_destroy (djob_t **djob_p)
{
    if (*djob_p) {
        djob_t *djob = *djob_p;
        free (djob->id);
        free (djob->node);
        free (djob->bulk_id);
        free (djob->instance_uuid);
        free (djob->strategy);
        free (djob);
        *djob_p = NULL;
    }
}

sf_dispatch_t *
sf_dispatch_new (sf_store_t *store, sf_jobs_t *jobs, sf_peers_t *peers,
                 const sf_limits_t *limits, sf_outbox_t *outbox)
{
    assert (store && jobs && peers && limits && outbox);
    sf_dispatch_t *self = (sf_dispatch_t *) zmalloc (sizeof (sf_dispatch_t));
    self->store = store;
    self->jobs = jobs;
    self->peers = peers;
    self->outbox = outbox;
    self->limits = *limits;
    self->admit = sf_admit_new (limits);
    sf_admit_set_acks (self->admit, true);
    self->djobs = zhashx_new ();
    zhashx_set_destructor (self->djobs, (zhashx_destructor_fn *) s_djob_destroy);
    return self;
}

void
sf_dispatch_destroy (sf_dispatch_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_dispatch_t *self = *self_p;
        sf_admit_destroy (&self->admit);
        zhashx_destroy (&self->djobs);
        free (self);
        *self_p = NULL;
    }
}

void
sf_dispatch_on_ended (sf_dispatch_t *self, sf_dispatch_ended_fn *fn, void *arg)
{
    assert (self);
    self->ended = fn;
    self->ended_arg = arg;
}

void
sf_dispatch_stats (sf_dispatch_t *self, sf_admit_stats_t *stats)
{
    assert (self);
    sf_admit_stats (self->admit, stats);
}

//  --------------------------------------------------------------------------
//  Sending

//  A JobAssign never fails here: one that cannot leave goes to
//  sf_dispatch_unsent (through the outbox)

static void
s_send_assign (sf_dispatch_t *self, djob_t *djob)
{
    sf_job_assign_t assign = SF_JOB_ASSIGN_INIT;
    assign.job_id = djob->id;
    assign.attempt = djob->attempt;
    assign.instance_uuid = djob->instance_uuid;
    assign.strategy = djob->strategy;
    assign.wait_upload_grant = true;
    assign.scratch_bytes = djob->scratch_bytes;
    assign.catalog_id = (char *) sf_store_catalog_id (self->store);
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_ASSIGN, &assign);
    sf_err_t err = SF_ERR_INIT;
    int rc = sf_outbox_send (self->outbox, djob->node, &env, &err);
    assert (rc == 0);
    (void) rc;
}

static void
s_send_grant (sf_dispatch_t *self, djob_t *djob)
{
    sf_job_grant_t grant = SF_JOB_GRANT_INIT;
    grant.job_id = djob->id;
    grant.attempt = djob->attempt;
    grant.rate_bps = djob->rate_bps;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_GRANT, &grant);
    sf_err_t err = SF_ERR_INIT;
    sf_logctx_t ctx = { .node = djob->node, .job_id = djob->id };
    //  A lost grant is sent again when the node says hello again
    if (sf_outbox_send (self->outbox, djob->node, &env, &err))
        SF_WARN (&ctx, "cannot send upload grant: %s", err.text);
}

//  --------------------------------------------------------------------------
//  Queueing

//  Remember a job handed to sf_admit

static djob_t *
s_remember (sf_dispatch_t *self, const sf_dispatch_job_t *job)
{
    djob_t *djob = (djob_t *) zmalloc (sizeof (djob_t));
    djob->id = strdup (job->admit.id);
    djob->node = strdup (job->admit.node);
    djob->bulk_id = strdup (job->bulk_id? job->bulk_id: "");
    djob->instance_uuid = strdup (job->instance_uuid);
    djob->strategy = strdup (job->strategy);
    djob->attempt = job->attempt? job->attempt: 1;
    djob->scratch_bytes = job->admit.scratch_bytes;
    zhashx_update (self->djobs, djob->id, djob);
    return djob;
}

//  The admission phase a job restored in phase holds

static int
s_restore_phase (const char *phase)
{
    if (streq (phase, "resumed") || streq (phase, "converted"))
        return SF_PHASE_CONVERTED;
    if (streq (phase, "upload_wait") || streq (phase, "uploading"))
        return SF_PHASE_UPLOAD_WAIT;
    if (streq (phase, "uploaded"))
        return SF_PHASE_UPLOADED;
    return SF_PHASE_QUEUED;     //  assigned, queued, paused: capture
}

int
sf_dispatch_queue (sf_dispatch_t *self, const sf_dispatch_job_t *job)
{
    assert (self && job && job->admit.id && job->admit.node);
    assert (job->instance_uuid && job->strategy);
    const char *node = job->admit.node;
    if (!sf_peers_by_name (self->peers, node))
        sf_admit_node (self->admit, node, false, node, "", 0, 0);
    bool waiting = !job->phase || streq (job->phase, "waiting");
    int rc = waiting? sf_admit_add (self->admit, &job->admit)
                    : sf_admit_restore (self->admit, &job->admit,
                                        s_restore_phase (job->phase));
    if (rc)
        return -1;
    djob_t *djob = s_remember (self, job);
    djob->captured = !waiting && s_restore_phase (job->phase) != SF_PHASE_QUEUED;
    return 0;
}

//  --------------------------------------------------------------------------
//  Node changes

//  A worker that reports no scratch space at all (0) does not measure it
//  (an older worker, a test double): no reservation limit then (see
//  sf_peers_scratch); the worker still checks its free space itself
//  before it pauses anything

static void
s_admit_node (sf_dispatch_t *self, sf_peer_t *peer)
{
    sf_admit_node (self->admit, peer->name, peer->up && peer->routing_id != NULL,
                   peer->store, peer->ceph_cluster, peer->max_jobs, sf_peers_scratch (peer));
}

void
sf_dispatch_node (sf_dispatch_t *self, sf_peer_t *peer, bool hello)
{
    assert (self && peer);
    s_admit_node (self, peer);
    if (!hello)
        return;
    for (djob_t *djob = (djob_t *) zhashx_first (self->djobs); djob;
         djob = (djob_t *) zhashx_next (self->djobs))
        if (djob->uploading && streq (djob->node, peer->name))
            s_send_grant (self, djob);
}

int
sf_dispatch_resend (sf_dispatch_t *self, const char *job_id)
{
    assert (self && job_id);
    djob_t *djob = (djob_t *) zhashx_lookup (self->djobs, job_id);
    if (!djob)
        return -1;
    sf_logctx_t ctx = { .node = djob->node, .job_id = djob->id };
    SF_NOTICE (&ctx, "the worker never received the job: assigning it again (attempt %u)",
               djob->attempt);
    s_send_assign (self, djob);
    return 0;
}

//  --------------------------------------------------------------------------
//  Events and ends

int
sf_dispatch_rate_applied (sf_dispatch_t *self, const char *node,
                          const sf_rate_applied_t *applied)
{
    assert (self && node && applied);
    djob_t *djob = applied->job_id? (djob_t *) zhashx_lookup (self->djobs, applied->job_id)
                                  : NULL;
    if (!djob || !djob->uploading || djob->attempt != applied->attempt
    ||  !streq (djob->node, node))
        return -1;
    sf_admit_rate_applied (self->admit, djob->id, applied->rate_bps);
    return 0;
}

void
sf_dispatch_event (sf_dispatch_t *self, const sf_job_event_t *event)
{
    assert (self && event);
    djob_t *djob = (djob_t *) zhashx_lookup (self->djobs, event->job_id);
    if (!djob)
        return;
    int phase = event->phase;
    if (!djob->captured && (phase == SF_PHASE_RESUMED || phase == SF_PHASE_CONVERTED
                        ||  phase == SF_PHASE_UPLOAD_WAIT || phase == SF_PHASE_UPLOADED)) {
        sf_admit_captured (self->admit, djob->id);
        djob->captured = true;
    }
    if (phase == SF_PHASE_UPLOAD_WAIT && !djob->uploading)
        sf_admit_upload_wait (self->admit, djob->id, event->bytes);
    else
    if (phase == SF_PHASE_UPLOADED) {
        sf_admit_uploaded (self->admit, djob->id);
        djob->uploading = false;
    }
}

static void
s_drain_ended (sf_dispatch_t *self)
{
    zlistx_t *ended = sf_jobs_take_ended (self->jobs);
    for (const char *id = (const char *) zlistx_first (ended); id;
         id = (const char *) zlistx_next (ended)) {
        sf_admit_finished (self->admit, id);
        djob_t *djob = (djob_t *) zhashx_lookup (self->djobs, id);
        if (djob) {
            char *bulk_id = strdup (djob->bulk_id);
            zhashx_delete (self->djobs, id);
            if (self->ended)
                self->ended (self->ended_arg, id, bulk_id);
            free (bulk_id);
        }
    }
    zlistx_destroy (&ended);
}

//  --------------------------------------------------------------------------
//  Admission: start what can start, skip what cannot fit its window

//  Put the job back in the queue: 0, or -1 if its node is down or unknown

static int
s_requeue (sf_dispatch_t *self, djob_t *djob)
{
    sf_peer_t *peer = sf_peers_by_name (self->peers, djob->node);
    if (!peer || !peer->up)
        return -1;
    sf_err_t err = SF_ERR_INIT;
    if (sf_jobs_requeue (self->jobs, djob->id, &err)
    ||  sf_admit_requeue (self->admit, djob->id))
        return -1;
    sf_logctx_t ctx = { .node = djob->node, .job_id = djob->id };
    SF_NOTICE (&ctx, "the node's connection is gone: the job is queued again and the "
               "node gets nothing until it says hello");
    sf_peers_unbind (self->peers, peer);
    s_admit_node (self, peer);
    return 0;
}

void
sf_dispatch_unsent (sf_dispatch_t *self, const char *job_id, const sf_err_t *why)
{
    assert (self && job_id && why);
    djob_t *djob = (djob_t *) zhashx_lookup (self->djobs, job_id);
    if (!djob)
        return;
    if (why->code == SF_ENODE && s_requeue (self, djob) == 0)
        return;
    sf_logctx_t ctx = { .node = djob->node, .job_id = djob->id };
    SF_WARN (&ctx, "cannot assign job: %s", why->text);
    char text [256];
    snprintf (text, sizeof (text), "cannot send job to node '%s'", djob->node);
    sf_err_t err = SF_ERR_INIT;
    if (sf_jobs_fail (self->jobs, djob->id, SF_ENODE, text, &err))
        SF_ERROR (&ctx, "cannot fail job: %s", err.text);
    self->unsent_ended = true;
}

//  One round: returns true if it ended jobs (skipped or failed), so the
//  caller drains them and runs another round

static bool
s_admit_round (sf_dispatch_t *self)
{
    int64_t now = sf_time_now_ms ();
    sf_err_t err = SF_ERR_INIT;
    zlistx_t *started = zlistx_new ();
    bool ended = false;
    if (sf_store_begin (self->store, &err)) {
        SF_ERROR (NULL, "cannot admit jobs: %s", err.text);
        zlistx_destroy (&started);
        return false;
    }
    const char *id;
    char reason [256];
    sf_admit_verdict_t verdict;
    while ((verdict = sf_admit_next (self->admit, now, &id, reason, sizeof (reason)))
           != SF_ADMIT_NONE) {
        djob_t *djob = (djob_t *) zhashx_lookup (self->djobs, id);
        assert (djob);
        int rc = 0;
        if (verdict == SF_ADMIT_START) {
            rc = sf_jobs_assigned (self->jobs, djob->id, &err);
            zlistx_add_end (started, djob);
        }
        else {
            sf_logctx_t ctx = { .node = djob->node, .job_id = djob->id };
            SF_NOTICE (&ctx, "job %s: %s", verdict == SF_ADMIT_SKIP? "skipped": "failed",
                       reason);
            rc = verdict == SF_ADMIT_SKIP
               ? sf_jobs_skip (self->jobs, djob->id, reason, &err)
               : sf_jobs_fail (self->jobs, djob->id, SF_EBUSY, reason, &err);
            ended = true;
        }
        if (rc) {
            SF_ERROR (NULL, "cannot record admission of job '%s': %s", djob->id, err.text);
            break;
        }
    }
    if (sf_store_commit (self->store, &err)) {
        SF_ERROR (NULL, "cannot commit admissions: %s", err.text);
        zlistx_destroy (&started);
        return ended;
    }
    //  Durable: now tell the workers
    for (djob_t *djob = (djob_t *) zlistx_first (started); djob;
         djob = (djob_t *) zlistx_next (started)) {
        sf_logctx_t ctx = { .node = djob->node, .job_id = djob->id };
        //  One that cannot leave comes back through sf_dispatch_unsent,
        //  which queues it again or fails it
        self->unsent_ended = false;
        s_send_assign (self, djob);
        if (self->unsent_ended)
            ended = true;
        else
            SF_INFO (&ctx, "job assigned: strategy %s, attempt %u", djob->strategy,
                     djob->attempt);
    }
    zlistx_destroy (&started);
    return ended;
}

//  Take the upload slots sf_admit grants now and record them; returns
//  the jobs to send grants to (after the rate changes: see the pump)

static zlistx_t *
s_grant_uploads (sf_dispatch_t *self)
{
    sf_err_t err = SF_ERR_INIT;
    zlistx_t *granted = zlistx_new ();
    const char *id;
    uint64_t rate = 0;
    if (sf_store_begin (self->store, &err)) {
        SF_ERROR (NULL, "cannot grant uploads: %s", err.text);
        return granted;
    }
    while (sf_admit_next_upload (self->admit, &id, &rate)) {
        djob_t *djob = (djob_t *) zhashx_lookup (self->djobs, id);
        assert (djob);
        djob->uploading = true;
        djob->rate_bps = rate;
        if (sf_jobs_uploading (self->jobs, id, &err))
            SF_ERROR (NULL, "cannot record upload grant of '%s': %s", id, err.text);
        zlistx_add_end (granted, djob);
    }
    if (sf_store_commit (self->store, &err))
        SF_ERROR (NULL, "cannot commit upload grants: %s", err.text);
    return granted;
}

static void
s_on_rate (void *arg, const char *id, uint64_t rate_bps)
{
    sf_dispatch_t *self = (sf_dispatch_t *) arg;
    djob_t *djob = (djob_t *) zhashx_lookup (self->djobs, id);
    if (!djob || !djob->uploading)
        return;
    djob->rate_bps = rate_bps;
    s_send_grant (self, djob);
}

void
sf_dispatch_pump (sf_dispatch_t *self)
{
    assert (self);
    //  Skips and failures end jobs, which frees slots: a few rounds settle
    for (int round = 0; round < 8; round++) {
        s_drain_ended (self);
        if (!s_admit_round (self))
            break;
    }
    s_drain_ended (self);
    zlistx_t *granted = s_grant_uploads (self);
    //  Lowered shares leave first, then raised ones, then the new grants:
    //  every prefix of that sequence stays within the budgets
    sf_admit_rates (self->admit, s_on_rate, self);
    for (djob_t *djob = (djob_t *) zlistx_first (granted); djob;
         djob = (djob_t *) zlistx_next (granted)) {
        sf_logctx_t ctx = { .node = djob->node, .job_id = djob->id };
        SF_INFO (&ctx, "upload granted at %" PRIu64 " bytes/s (0 = no limit)",
                 djob->rate_bps);
        s_send_grant (self, djob);
    }
    zlistx_destroy (&granted);
}

//  --------------------------------------------------------------------------
//  Restart: the nodes that were up (their jobs come back through
//  sf_dispatch_queue)

int
sf_dispatch_restore (sf_dispatch_t *self, sf_err_t *err)
{
    assert (self);
    zlistx_t *names = sf_store_nodes_up (self->store, err);
    if (!names)
        return -1;
    for (const char *name = (const char *) zlistx_first (names); name;
         name = (const char *) zlistx_next (names)) {
        sf_peer_t *peer = sf_peers_by_name (self->peers, name);
        if (peer)
            s_admit_node (self, peer);
    }
    zlistx_destroy (&names);
    return 0;
}

//  --------------------------------------------------------------------------
//  Self test (the end-to-end flows are in sf_sched's self test)

void
sf_dispatch_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_dispatch: ");
    //  @selftest
    assert (s_restore_phase ("uploading") == SF_PHASE_UPLOAD_WAIT);
    assert (s_restore_phase ("paused") == SF_PHASE_QUEUED);
    //  @end
    printf ("OK\n");
}

