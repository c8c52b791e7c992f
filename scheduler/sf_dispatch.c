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
      bulk counts it);
    - every job handed to a worker has a lease (sf_lease) from the moment
      its JobAssign is queued until it ends; one whose lease and grace run
      out is failed (committed) before its JobCancel leaves, and if it may
      have its guest paused its pause slot is kept (in admission and in
      pause_holds, in the same transaction as the failure) until the pause
      began + the node's max_pause.
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
    sf_admit_job_t admit;       //  As queued (id and node are ours), to
                                //  queue a new attempt again
    int64_t retry_at;           //  In its backoff until then; 0 not
    uint64_t est_bytes;         //  for its lease
    int64_t paused_ms;          //  steady epoch ms its PAUSED event came, 0 none
} djob_t;

//  A node's max_pause when its worker never said (an older worker): the
//  worker's default [pause] max_pause
#define MAX_PAUSE_UNKNOWN_MS    600000

//  A kept pause slot outlasts the guard's deadline by this much: the
//  guard's resume call takes time of its own (libvirt on a loaded host)
#define HOLD_MARGIN_MS          5000

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
    zlistx_t *backoff;          //  Ids of jobs in their retry backoff, owned
    sf_lease_t *lease;          //  Owned: leases of the handed jobs
    zhashx_t *held;             //  id -> until_ms in decimal (owned):
                                //  jobs failed whose pause slot is kept
    int64_t stranded_ms;        //  epoch ms of the last stranded scan
    int64_t max_chain;          //  [retention] max_chain
    int64_t holds_pruned_ms;    //  epoch ms pause_holds was last pruned
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
    self->max_chain = SF_CHAIN_MAX;
    self->admit = sf_admit_new (limits);
    sf_admit_set_acks (self->admit, true);
    self->djobs = zhashx_new ();
    zhashx_set_destructor (self->djobs, (zhashx_destructor_fn *) s_djob_destroy);
    self->backoff = zlistx_new ();
    zlistx_set_destructor (self->backoff, (zlistx_destructor_fn *) zstr_free);
    self->lease = sf_lease_new (limits->lease_ms, (uint64_t) limits->lease_rate);
    self->held = zhashx_new ();
    zhashx_set_destructor (self->held, (zhashx_destructor_fn *) zstr_free);
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
        zlistx_destroy (&self->backoff);
        zhashx_destroy (&self->held);
        sf_lease_destroy (&self->lease);
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

void
sf_dispatch_set_max_chain (sf_dispatch_t *self, int64_t max_chain)
{
    assert (self && max_chain >= 0);
    self->max_chain = max_chain;
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
    sf_err_t err = SF_ERR_INIT;
    //  A restore carries what it restores where (its image as the images
    //  table has it now); one whose image went meanwhile fails here
    sf_restore_t *restore = NULL;
    if (streq (djob->strategy, SF_WIRE_RESTORE)
    &&  sf_restores_load (self->store, djob->id, &restore, &err) != 1) {
        if (!restore && err.code == 0)
            sf_err_set (&err, SF_ENOENT, "the image to restore is gone from the catalogue "
                        "(deleted by retention?); nothing restored");
        sf_logctx_t ctx = { .node = djob->node, .job_id = djob->id };
        SF_WARN (&ctx, "cannot assign the restore: %s", err.text);
        sf_err_t failed = SF_ERR_INIT;
        if (sf_jobs_fail (self->jobs, djob->id, err.code, err.text, &failed))
            SF_ERROR (&ctx, "cannot fail the job: %s", failed.text);
        self->unsent_ended = true;      //  it ended: its slots go at the drain
        return;
    }
    assign.restore = restore;
    //  A verification carries what it checks, the same way
    sf_verify_t *verify = NULL;
    if (streq (djob->strategy, SF_WIRE_VERIFY)
    &&  sf_verifies_load (self->store, djob->id, &verify, &err) != 1) {
        if (!verify && err.code == 0)
            sf_err_set (&err, SF_ENOENT, "the image to verify is gone from the catalogue "
                        "(deleted by retention?); nothing verified");
        sf_logctx_t ctx = { .node = djob->node, .job_id = djob->id };
        SF_WARN (&ctx, "cannot assign the verification: %s", err.text);
        sf_err_t failed = SF_ERR_INIT;
        if (sf_jobs_fail (self->jobs, djob->id, err.code, err.text, &failed))
            SF_ERROR (&ctx, "cannot fail the job: %s", failed.text);
        self->unsent_ended = true;
        return;
    }
    assign.verify = verify;
    //  A file-live job builds on its instance's newest point where it can
    //  (sf_chain); without the offer it is a full copy, which is safe
    sf_incremental_t *incremental = NULL;
    if (streq (djob->strategy, "file-live")
    &&  sf_chain_offer (self->store, djob->id, self->max_chain, &incremental, &err) < 0) {
        sf_logctx_t ctx = { .node = djob->node, .job_id = djob->id };
        SF_WARN (&ctx, "no incremental offer (a full copy): %s", err.text);
        sf_err_clear (&err);
    }
    assign.incremental = incremental;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_ASSIGN, &assign);
    int rc = sf_outbox_send (self->outbox, djob->node, &env, &err);
    assert (rc == 0);
    (void) rc;
    sf_restores_free (&restore);
    sf_verifies_free (&verify);
    sf_chain_offer_free (&incremental);
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
    djob->admit = job->admit;
    djob->admit.id = djob->id;
    djob->admit.node = djob->node;
    djob->est_bytes = job->admit.upload_bytes > job->admit.scratch_bytes
                    ? job->admit.upload_bytes: job->admit.scratch_bytes;
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

//  The wire phase of a job restored in phase, for its lease (-1 assigned)

static int
s_lease_phase (const char *phase)
{
    for (int p = SF_PHASE_QUEUED; p <= SF_PHASE_LAST; p++)
        if (streq (phase, sf_wire_phase_name (p)))
            return p;
    if (streq (phase, "uploading"))
        return SF_PHASE_UPLOAD_WAIT;
    return -1;
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
    //  A retry restored in its backoff waits outside admission
    if (waiting && job->not_before_ms > sf_time_now_ms ()) {
        if (zhashx_lookup (self->djobs, job->admit.id))
            return -1;
        djob_t *djob = s_remember (self, job);
        djob->retry_at = job->not_before_ms;
        zlistx_add_end (self->backoff, strdup (djob->id));
        return 0;
    }
    int rc = waiting? sf_admit_add (self->admit, &job->admit)
                    : sf_admit_restore (self->admit, &job->admit,
                                        s_restore_phase (job->phase));
    if (rc)
        return -1;
    djob_t *djob = s_remember (self, job);
    djob->captured = !waiting && s_restore_phase (job->phase) != SF_PHASE_QUEUED;
    //  A restarted scheduler gives every handed job a fresh lease
    if (!waiting)
        sf_lease_start (self->lease, djob->id, djob->node, djob->attempt,
                        s_lease_phase (job->phase), djob->est_bytes, sf_time_mono_ms ());
    return 0;
}

//  --------------------------------------------------------------------------
//  Node changes

static void
    s_resend_cancels (sf_dispatch_t *self, const char *node);

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
    s_resend_cancels (self, peer->name);
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
    //  Its lease runs from now, as for a first assignment
    sf_lease_start (self->lease, djob->id, djob->node, djob->attempt, -1, djob->est_bytes,
                    sf_time_mono_ms ());
    s_send_assign (self, djob);
    return 0;
}

//  --------------------------------------------------------------------------
//  Events and ends

static void
    s_backoff_over (sf_dispatch_t *self, int64_t now);

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
    sf_lease_renew (self->lease, djob->id, phase, event->bytes, 0, sf_time_mono_ms ());
    if (phase == SF_PHASE_PAUSED && !djob->paused_ms)
        djob->paused_ms = sf_time_steady_ms ();
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
    s_drain_retried (sf_dispatch_t *self);

static void
s_drain_ended (sf_dispatch_t *self)
{
    zlistx_t *ended = sf_jobs_take_ended (self->jobs);
    for (const char *id = (const char *) zlistx_first (ended); id;
         id = (const char *) zlistx_next (ended)) {
        const char *until = (const char *) zhashx_lookup (self->held, id);
        if (until)
            sf_admit_finished_held (self->admit, id, atoll (until));
        else
            sf_admit_finished (self->admit, id);
        zhashx_delete (self->held, id);
        sf_lease_drop (self->lease, id);
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
    s_drain_retried (self);
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
    sf_lease_drop (self->lease, djob->id);
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
    int64_t now = sf_time_steady_ms ();
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
    //  Jobs queued for a node that is down wait for it, unless their window
    //  closes meanwhile (looked at once a second: a walk of those queues)
    bool stranded = now - self->stranded_ms >= 1000;
    if (stranded)
        self->stranded_ms = now;
    while (true) {
        verdict = SF_ADMIT_NONE;
        if (stranded && (verdict = sf_admit_next_stranded (self->admit, now, &id, reason,
                                                           sizeof (reason))) == SF_ADMIT_NONE)
            stranded = false;           //  one walk per round
        if (verdict == SF_ADMIT_NONE
        &&  (verdict = sf_admit_next (self->admit, now, &id, reason, sizeof (reason)))
            == SF_ADMIT_NONE)
            break;
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
        //  Its lease runs from now. One that cannot leave comes back
        //  through sf_dispatch_unsent, which queues it again (lease
        //  dropped) or fails it
        sf_lease_start (self->lease, djob->id, djob->node, djob->attempt, -1,
                        djob->est_bytes, sf_time_mono_ms ());
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
        //  The upload starts now: its lease covers it at the granted rate
        sf_lease_renew (self->lease, id, SF_PHASE_UPLOAD_WAIT, 0, rate? rate: UINT64_MAX,
                        sf_time_mono_ms ());
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
    s_drain_ended (self);
    s_backoff_over (self, sf_time_now_ms ());
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

static int
    s_restore_holds (sf_dispatch_t *self, sf_err_t *err);

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
    return s_restore_holds (self, err);
}

//  --------------------------------------------------------------------------
//  Leases: JobStatus answers, and what runs out

int
sf_dispatch_status (sf_dispatch_t *self, const char *node, const sf_job_status_t *status)
{
    assert (self && node && status);
    const char *lnode = NULL;
    uint32_t attempt = 0;
    djob_t *djob = status->job_id? (djob_t *) zhashx_lookup (self->djobs, status->job_id)
                                 : NULL;
    if (!djob || !sf_lease_has (self->lease, djob->id, &lnode, &attempt)
    ||  !streq (lnode, node) || attempt != status->attempt)
        return -1;
    int64_t now = sf_time_mono_ms ();
    sf_logctx_t ctx = { .node = node, .job_id = djob->id };
    if (status->state == SF_JOB_STATE_RUNNING) {
        SF_INFO (&ctx, "the worker says the job runs (phase %s, %" PRIu64 " bytes)",
                 sf_wire_phase_name (status->phase), status->progress);
        sf_lease_renew (self->lease, djob->id, status->phase > 0? (int) status->phase: -1,
                        status->progress, 0, now);
        return 0;
    }
    if (status->state == SF_JOB_STATE_FINISHED) {
        SF_INFO (&ctx, "the worker says the job finished: waiting for its result");
        sf_lease_finished (self->lease, djob->id, now);
        return 0;
    }
    if (status->state != SF_JOB_STATE_UNKNOWN && status->state != SF_JOB_STATE_STALE)
        return -1;
    //  It does not run there: nothing of it is paused, no slot to keep
    char text [256];
    if (status->state == SF_JOB_STATE_UNKNOWN)
        snprintf (text, sizeof (text), "worker on node '%s' does not know job '%s'",
                  node, djob->id);
    else
        snprintf (text, sizeof (text), "worker on node '%s' knows another attempt of "
                  "job '%s', not attempt %u", node, djob->id, djob->attempt);
    sf_err_t err = SF_ERR_INIT;
    if (sf_jobs_fail (self->jobs, djob->id, SF_ENODE, text, &err)) {
        SF_ERROR (&ctx, "cannot fail job: %s", err.text);
        return 0;
    }
    SF_WARN (&ctx, "job failed: %s", text);
    sf_lease_drop (self->lease, djob->id);
    return 0;
}

//  Send env to node even if it is down: over a link that was only cut (or
//  a worker that was only stopped) it arrives when the link is back.
//  Returns 0 or -1 with err set (no connection at all).

static int
s_send_any (sf_dispatch_t *self, const char *node, sf_envelope_t *env, sf_err_t *err)
{
    sf_peer_t *peer = sf_peers_by_name (self->peers, node);
    if (peer && peer->routing_id)
        return sf_outbox_send_to (self->outbox, peer->routing_id, env, err);
    return sf_outbox_send (self->outbox, node, env, err);
}

static void
s_send_query (sf_dispatch_t *self, const char *id, const char *node, uint32_t attempt)
{
    sf_job_query_t query = SF_JOB_QUERY_INIT;
    query.job_id = (char *) id;
    query.attempt = attempt;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_QUERY, &query);
    sf_err_t err = SF_ERR_INIT;
    sf_logctx_t ctx = { .node = node, .job_id = id };
    if (s_send_any (self, node, &env, &err))
        SF_INFO (&ctx, "no news of the job for its lease; cannot ask the node: %s", err.text);
    else
        SF_INFO (&ctx, "no news of the job for its lease: asking the node");
}

static void
    s_send_cancel (sf_dispatch_t *self, const char *node, const char *id, uint32_t attempt);

//  The node's max_pause: from its hello, else as recorded, else the
//  worker's default

static int64_t
s_max_pause (sf_dispatch_t *self, const char *node)
{
    sf_peer_t *peer = sf_peers_by_name (self->peers, node);
    if (peer && peer->max_pause_ms > 0)
        return peer->max_pause_ms;
    sf_err_t err = SF_ERR_INIT;
    int64_t ms = sf_store_node_max_pause (self->store, node, &err);
    return ms > 0? ms: MAX_PAUSE_UNKNOWN_MS;
}

//  A lease ran out with no answer: the job fails with reason and, if its
//  guest may be paused (it holds a pause slot: PAUSED and no RESUMED, or
//  handed and not heard of), its slot is kept until the pause began (the
//  PAUSED event's arrival, later than the pause itself; or now if none
//  came) + the node's max_pause + HOLD_MARGIN_MS, all in one transaction;
//  then the JobCancel leaves

static void
s_expire (sf_dispatch_t *self, const char *id, const char *node, uint32_t attempt,
          const char *reason)
{
    sf_logctx_t ctx = { .node = node, .job_id = id };
    djob_t *djob = (djob_t *) zhashx_lookup (self->djobs, id);
    if (!djob)
        return;
    int64_t now = sf_time_steady_ms ();
    int64_t until = 0;
    if (sf_admit_holds_pause (self->admit, id)) {
        int64_t began = djob->paused_ms? djob->paused_ms: now;
        until = began + s_max_pause (self, node) + HOLD_MARGIN_MS;
        if (until <= now)
            until = 0;
    }
    //  Kept from now on whatever the commit does: a failed commit may still
    //  count the job as ended here (sf_jobs_take_ended), and then its slot
    //  must not be freed either
    if (until) {
        char text [32];
        snprintf (text, sizeof (text), "%" PRId64, until);
        zhashx_update (self->held, id, strdup (text));
    }
    sf_err_t err = SF_ERR_INIT;
    if (sf_store_begin (self->store, &err) == 0) {
        if ((until && sf_store_exec (self->store, &err, "INSERT OR REPLACE INTO pause_holds"
                                     " (job_id, node, until_ms) VALUES (?1, ?2, ?3)",
                                     "ssi", id, node, until) < 0)
        ||  sf_jobs_fail (self->jobs, id, SF_ETIMEDOUT, reason, &err))
            sf_store_rollback (self->store);
        else
        if (sf_store_commit (self->store, &err) == 0) {
            if (until)
                SF_WARN (&ctx, "job failed: %s; its pause slot is kept for %" PRId64
                         " s more (the guest may still be paused)", reason,
                         (until - now + 999) / 1000);
            else
                SF_WARN (&ctx, "job failed: %s", reason);
            s_send_cancel (self, node, id, attempt);  //  it may not arrive
            return;
        }
    }
    //  Not durable: asked again after another lease
    SF_ERROR (&ctx, "cannot fail job whose lease ran out (will retry): %s", err.text);
    sf_lease_start (self->lease, id, node, attempt, -1, 0, sf_time_mono_ms ());
}

void
sf_dispatch_leases (sf_dispatch_t *self)
{
    assert (self);
    const char *id, *node;
    uint32_t attempt;
    char reason [256];
    sf_lease_due_t due;
    while ((due = sf_lease_next_due (self->lease, sf_time_mono_ms (), &id, &node, &attempt,
                                     reason, sizeof (reason))) != SF_LEASE_NONE) {
        if (due == SF_LEASE_QUERY)
            s_send_query (self, id, node, attempt);
        else
            s_expire (self, id, node, attempt, reason);
    }
    //  Kept slots whose time has passed leave the database now and then
    int64_t now = sf_time_steady_ms ();
    if (now - self->holds_pruned_ms >= 10000) {
        sf_err_t err = SF_ERR_INIT;
        self->holds_pruned_ms = now;
        if (sf_store_exec (self->store, &err, "DELETE FROM pause_holds WHERE until_ms <= ?1",
                           "i", now) < 0)
            SF_ERROR (NULL, "cannot prune kept pause slots: %s", err.text);
    }
}

size_t
sf_dispatch_leased (sf_dispatch_t *self)
{
    assert (self);
    return sf_lease_size (self->lease);
}

//  At start: the pause slots kept for jobs that ended without word from
//  their node hold again until their time

static int
s_restore_holds (sf_dispatch_t *self, sf_err_t *err)
{
    int64_t now = sf_time_steady_ms ();
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err, "SELECT node, until_ms FROM"
                                           " pause_holds WHERE until_ms > ?1", "i", now);
    if (!stmt)
        return -1;
    int rc;
    while ((rc = sf_store_step (self->store, stmt, err)) == 1) {
        const char *node = sf_store_text (stmt, 0);
        int64_t until = sqlite3_column_int64 (stmt, 1);
        sf_logctx_t ctx = { .node = node };
        SF_NOTICE (&ctx, "a pause slot stays kept for %" PRId64 " s (a job ended without "
                   "word from this node while its guest may have been paused)",
                   (until - now + 999) / 1000);
        sf_admit_hold (self->admit, node, until);
    }
    sqlite3_finalize (stmt);
    return rc < 0? -1: 0;
}

//  --------------------------------------------------------------------------
//  Cancel and retries

//  A JobCancel for attempt of job id to node. One that cannot leave is
//  sent again when the node says hello (the cancel is in the database). It
//  goes to a node that is down too, if its connection is still there (a
//  cut link only delays it).

static void
s_send_cancel (sf_dispatch_t *self, const char *node, const char *id, uint32_t attempt)
{
    sf_job_cancel_t cancel = SF_JOB_CANCEL_INIT;
    cancel.job_id = (char *) id;
    cancel.attempt = attempt;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_CANCEL, &cancel);
    sf_err_t err = SF_ERR_INIT;
    sf_logctx_t ctx = { .node = node, .job_id = id };
    if (s_send_any (self, node, &env, &err))
        SF_NOTICE (&ctx, "cannot send cancel now (%s): it goes when the node says hello",
                   err.text);
    else
        SF_INFO (&ctx, "cancel of attempt %u sent", attempt);
}

static void
s_resend_cancels (sf_dispatch_t *self, const char *node)
{
    sf_err_t err = SF_ERR_INIT;
    zlistx_t *recs = sf_jobs_cancelling (self->jobs, node, &err);
    if (!recs) {
        sf_logctx_t ctx = { .node = node };
        SF_ERROR (&ctx, "cannot read the cancels to send again: %s", err.text);
        return;
    }
    for (sf_job_rec_t *rec = (sf_job_rec_t *) zlistx_first (recs); rec;
         rec = (sf_job_rec_t *) zlistx_next (recs))
        s_send_cancel (self, node, rec->id, rec->attempt);
    zlistx_destroy (&recs);
}

json_t *
sf_dispatch_cancel (sf_dispatch_t *self, zlistx_t *ids)
{
    assert (self && ids);
    json_t *answers = json_array ();
    for (const char *id = (const char *) zlistx_first (ids); id;
         id = (const char *) zlistx_next (ids)) {
        sf_err_t err = SF_ERR_INIT;
        char node [256] = "";
        uint32_t attempt = 0;
        int rc = sf_jobs_cancel (self->jobs, id, node, sizeof (node), &attempt, &err);
        sf_logctx_t ctx = { .node = *node? node: NULL, .job_id = id };
        if (rc == SF_JOBS_CANCEL_SEND)
            s_send_cancel (self, node, id, attempt);
        if (rc > 0)
            SF_NOTICE (&ctx, "cancel asked for: %s", rc == SF_JOBS_CANCEL_NOW
                       ? "cancelled (it was waiting)": "sent to the node");
        json_t *error = rc < 0
            ? json_pack ("{s:i, s:s, s:s}", "code", err.code, "name", sf_err_name (err.code),
                         "text", err.text)
            : json_null ();
        json_array_append_new (answers, json_pack ("{s:s, s:s, s:o, s:o}", "job_id", id,
            "outcome", rc == SF_JOBS_CANCEL_NOW? "cancelled"
                     : rc == SF_JOBS_CANCEL_SEND? "cancel_sent": "refused",
            "node", *node? json_string (node): json_null (), "error", error));
    }
    //  Waiting jobs that ended free their place in admission now
    sf_dispatch_pump (self);
    return answers;
}

//  Jobs that went back to waiting for a new attempt: admission frees what
//  the last attempt held; they wait out their backoff here

static void
s_drain_retried (sf_dispatch_t *self)
{
    zlistx_t *retried = sf_jobs_take_retried (self->jobs);
    for (const char *id = (const char *) zlistx_first (retried); id;
         id = (const char *) zlistx_next (retried)) {
        sf_admit_finished (self->admit, id);
        djob_t *djob = (djob_t *) zhashx_lookup (self->djobs, id);
        sf_job_rec_t *rec = NULL;
        sf_err_t err = SF_ERR_INIT;
        if (!djob || sf_jobs_rec (self->jobs, id, &rec, &err) != 1) {
            if (djob)
                SF_ERROR (NULL, "cannot read job '%s' for its retry: %s", id,
                          *err.text? err.text: "it has ended");
            continue;
        }
        djob->attempt = rec->attempt;
        djob->captured = false;
        djob->uploading = false;
        djob->rate_bps = 0;
        djob->retry_at = rec->not_before_ms > 0? rec->not_before_ms: 1;
        zlistx_add_end (self->backoff, strdup (id));
        sf_job_rec_destroy (&rec);
    }
    zlistx_destroy (&retried);
}

//  Retries whose backoff is over go back to admission (as they were first
//  queued); ones that ended meanwhile (cancelled) are dropped

static void
s_backoff_over (sf_dispatch_t *self, int64_t now)
{
    char *id = (char *) zlistx_first (self->backoff);
    while (id) {
        djob_t *djob = (djob_t *) zhashx_lookup (self->djobs, id);
        if (djob && djob->retry_at > now) {
            id = (char *) zlistx_next (self->backoff);
            continue;
        }
        sf_err_t err = SF_ERR_INIT;
        if (djob) {
            djob->retry_at = 0;
            sf_logctx_t ctx = { .node = djob->node, .job_id = djob->id };
            //  Never left waiting for nothing: one admission refuses fails
            if (sf_admit_add (self->admit, &djob->admit) == 0)
                SF_INFO (&ctx, "attempt %u queued for admission", djob->attempt);
            else
            if (sf_jobs_fail (self->jobs, djob->id, SF_EBUSY, "admission refused the "
                              "job's next attempt", &err))
                SF_ERROR (&ctx, "cannot fail job: %s", err.text);
        }
        zlistx_delete (self->backoff, zlistx_cursor (self->backoff));
        id = (char *) zlistx_first (self->backoff);
    }
}
