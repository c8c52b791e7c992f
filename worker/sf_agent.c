/*  =========================================================================
    sf_agent - the worker object

    Events and results of tasks are forwarded as the encoded frames the
    tasks made; the job table (sf_jobtab) decides fencing. Stopping (a
    signal, or $TERM in actor mode) cancels every task and keeps the loop
    running until their results are out, bounded by S_STOP_GRACE_MS.
    =========================================================================
*/
#include "sf_worker_classes.h"

#include <dirent.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define S_KEEP          1024        //  finished jobs remembered for fencing
#define S_STOP_GRACE_MS 60000       //  jobs get this long to wind down
#define S_SETTLE_MS     10000       //  a cleaned leftover waits for late creations
#define S_UNACKED_MAX   10000       //  unacknowledged events kept at most

//  Structure of our class

struct _sf_agent_t {
    sf_agent_cfg_t cfg;         //  Owned copy (strings owned)
    char exe [4096];            //  this program (/proc/self/exe)
    char run_id [37];           //  this run, tags pause journal entries
    sf_logctx_t ctx;            //  node name
    zsock_t *dealer;            //  Owned, to the scheduler
    zactor_t *scanner;          //  Owned
    bool scan_pending;
    sf_envelope_t *inventory;   //  Owned, last scan (decoded), may be NULL
    zframe_t *inventory_sent;   //  Owned, last Inventory sent
    char scan_error [256];      //  last scan failure, to log changes only
    size_t inventory_count;     //  instances in the last scan
    sf_jobtab_t *jobs;          //  Owned, assigned jobs
    sf_joblog_t *joblog;        //  Owned, the durable job journal
    sf_unacked_t *unacked;      //  Owned, what the scheduler has not acknowledged
    sf_imgstore_t *images;      //  Owned, the image store every task and prune borrows
    sf_stor_t *stor;            //  RBD storage (a part); NULL = RBD support off
    sf_conv_t *conv;            //  the disk converter (a part)
    sf_stor_t *stor_owned;      //  Owned: the parts sf_agent_new built
    sf_conv_t *conv_owned;
    sf_leftover_t *leftovers;   //  Owned, the Ceph objects journal
    char ceph_cluster [64];     //  the cluster's fsid once known, "" before
    zactor_t *sweeper;          //  Owned, retries leftovers; NULL when RBD is off
    zlistx_t *prunes;           //  Owned, running image deletions (zactor_t *)
    sf_pruneq_t *prune_queue;   //  Owned, deletions waiting for the running one
    zactor_t *reconcile;        //  Owned, the running gc listing or removal
    sf_envelope_t *reconcile_next;  //  Owned, the one gc request waiting for it
    zhashx_t *reconcile_seen;   //  Owned, RBD object -> first listed (ms)
    zhashx_t *restores;         //  Owned, ids of the running restores (they
                                //  answer their grants themselves)
    uint64_t heartbeat_seq;
    int64_t heartbeat_ms;       //  current timer period
    int heartbeat_timer;
    size_t invalid;             //  dropped scheduler messages
    bool stopping;
    int64_t stop_deadline;      //  mono ms
    zloop_t *loop;              //  Borrowed while running
};

SF_LOG_MODULE ("worker.agent");

static void
    s_scan (sf_agent_t *self);

//  --------------------------------------------------------------------------
//  Sending

static void
s_send (sf_agent_t *self, sf_envelope_t *env)
{
    sf_err_t err = SF_ERR_INIT;
    if (sf_wire_send (zsock_resolve (self->dealer), NULL, env, &err))
        SF_WARN (&self->ctx, "cannot send %s to the scheduler: %s",
                 sf_wire_body_name (env->body_case), err.text);
}

static void
s_send_frame (sf_agent_t *self, zframe_t *frame)
{
    zframe_t *copy = zframe_dup (frame);
    if (zframe_send (&copy, self->dealer, 0)) {
        SF_WARN (&self->ctx, "cannot send to the scheduler: %s", zmq_strerror (zmq_errno ()));
        zframe_destroy (&copy);
    }
}

//  Send frame (an encoded JobEvent, JobResult or ImageDeleted) and keep
//  it until the scheduler acknowledges it: it is sent again after every
//  Welcome until then

static void
s_send_kept (sf_agent_t *self, zframe_t *frame)
{
    size_t dropped = sf_unacked_add (self->unacked, frame);
    if (dropped)
        SF_WARN (&self->ctx, "%zu unacknowledged event(s) dropped: more than %d wait for "
                 "the scheduler's acknowledgement", dropped, S_UNACKED_MAX);
    s_send_frame (self, frame);
}

static void
s_send_kept_env (sf_agent_t *self, sf_envelope_t *env)
{
    sf_err_t err = SF_ERR_INIT;
    zframe_t *frame = sf_wire_encode (env, &err);
    if (!frame)
        SF_ERROR (&self->ctx, "cannot encode %s: %s", sf_wire_body_name (env->body_case),
                  err.text);
    else
        s_send_kept (self, frame);
    zframe_destroy (&frame);
}

//  Bytes free for scratch in the work directory (for unprivileged users,
//  as the tasks' own check counts them); 0 if it cannot be read

static uint64_t
s_scratch_free (sf_agent_t *self)
{
    struct statvfs vfs;
    if (statvfs (self->cfg.workdir, &vfs))
        return 0;
    return (uint64_t) vfs.f_bavail * vfs.f_frsize;
}

//  The Ceph cluster's fsid, asked once it answers; "" without RBD support
//  or while it does not. The first Hello asks before the loop runs; a
//  later one asks again only if no Ceph call hangs (so the loop waits at
//  most one op_timeout per outage).

static const char *
s_ceph_cluster (sf_agent_t *self)
{
    if (!self->stor || *self->ceph_cluster || sf_stor_hung (self->stor))
        return self->ceph_cluster;
    sf_err_t err = SF_ERR_INIT;
    if (sf_stor_cluster_id (self->stor, self->ceph_cluster, sizeof (self->ceph_cluster),
                            &err)) {
        SF_WARN (&self->ctx, "cannot read the Ceph cluster's fsid (Hello says \"\"): %s",
                 err.text);
        *self->ceph_cluster = 0;
    }
    return self->ceph_cluster;
}

//  Hello lists the strategies this node runs ("rbd" and "mixed" only with
//  RBD support on), the jobs it runs now and those it finished whose
//  results wait for an acknowledgement (replayed after the Welcome), so
//  that the scheduler keeps those, sends again what never arrived, and
//  fails only what this worker truly does not know. It names the image
//  store and the Ceph cluster (the scheduler's per-store and per-cluster
//  limits) and the scratch space free.

//  The strategies this node runs: those without Ceph, then (RBD support
//  on) those with it, as sf_strategies lists them. Returns the count.

static size_t
s_strategies (sf_agent_t *self, char **names, size_t size)
{
    size_t count = 0;
    for (int ceph = 0; ceph < (self->stor ? 2 : 1); ceph++)
        for (size_t i = 0; i < sf_strategies_count () && count < size; i++)
            if (sf_strategies_needs_ceph (sf_strategies_name (i)) == (ceph == 1))
                names [count++] = (char *) sf_strategies_name (i);
    return count;
}

static void
s_send_hello (sf_agent_t *self)
{
    char *strategies [8];
    char software [64];
    snprintf (software, sizeof (software), "snapfleet-worker %s", SF_VERSION);
    zlistx_t *ids = sf_jobtab_running_ids (self->jobs);
    char **running = (char **) zmalloc ((zlistx_size (ids) + 1) * sizeof (char *));
    size_t n_running = 0;
    for (char *id = (char *) zlistx_first (ids); id; id = (char *) zlistx_next (ids))
        running [n_running++] = id;
    sf_hello_t hello = SF_HELLO_INIT;
    hello.node = self->cfg.name;
    hello.software = software;
    hello.max_jobs = (uint32_t) self->cfg.max_jobs;
    hello.n_strategies = s_strategies (self, strategies, 8);
    hello.strategies = strategies;
    hello.n_running_jobs = n_running;
    hello.running_jobs = running;
    zlistx_t *finished_ids = sf_unacked_result_ids (self->unacked);
    char **finished = (char **) zmalloc ((zlistx_size (finished_ids) + 1) * sizeof (char *));
    size_t n_finished = 0;
    for (char *id = (char *) zlistx_first (finished_ids); id;
         id = (char *) zlistx_next (finished_ids))
        if (n_finished < SF_WIRE_MAX_RUNNING)
            finished [n_finished++] = id;
    hello.n_finished_jobs = n_finished;
    hello.finished_jobs = finished;
    hello.store = self->cfg.store.name;
    hello.ceph_cluster = (char *) s_ceph_cluster (self);
    hello.scratch_free = s_scratch_free (self);
    hello.max_pause_ms = (uint64_t) self->cfg.max_pause;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_HELLO, &hello);
    s_send (self, &env);
    if (self->inventory_sent)
        s_send_frame (self, self->inventory_sent);
    SF_INFO (&self->ctx, "hello sent to '%s' (%zu running job(s), %zu finished and not "
             "acknowledged)", self->cfg.scheduler, n_running, n_finished);
    free (running);
    zlistx_destroy (&ids);
    free (finished);
    zlistx_destroy (&finished_ids);
}

//  Refuse an assign at once with a failed result (retryable: the cause may
//  pass, e.g. the node is busy or shutting down)

static void
s_reject (sf_agent_t *self, const sf_job_assign_t *assign, int code, const char *text,
          bool retryable)
{
    sf_logctx_t ctx = { assign->job_id, self->cfg.name, assign->instance_uuid };
    SF_WARN (&ctx, "job refused: %s", text);
    sf_error_info_t error = SF_ERROR_INFO_INIT;
    error.code = code;
    char clean [512];
    snprintf (clean, sizeof (clean), "%s", text);
    error.text = sf_text_utf8_fix (clean);
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    result.job_id = assign->job_id;
    result.attempt = assign->attempt;
    result.strategy = assign->strategy;
    result.consistency = streq (assign->strategy, "offline") ? "offline" : "paused";
    result.error = &error;
    result.retryable = retryable;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_RESULT, &result);
    s_send_kept_env (self, &env);
}

//  --------------------------------------------------------------------------
//  Task events

static void
s_send_rate (zsock_t *task, const char *command, uint64_t rate)
{
    char text [32];
    snprintf (text, sizeof (text), "%" PRIu64, rate);
    zstr_sendx (task, command, text, NULL);
}

static const char *
s_rate_text (uint64_t rate, char *buf, size_t size)
{
    if (rate == 0)
        return "no limit";
    char bytes [24];
    snprintf (buf, size, "%s/s", sf_format_size (rate, bytes, sizeof (bytes)));
    return buf;
}

//  A task asks for its upload grant: a grant that came early goes to it now

static void
s_on_task_event (sf_agent_t *self, zsock_t *sock, zframe_t *frame)
{
    sf_err_t err = SF_ERR_INIT;
    sf_envelope_t *env = sf_wire_decode (frame, &err);
    if (!env)                   //  our own encoding: a bug, but not fatal
        SF_ERROR (&self->ctx, "bad event from a task: %s", err.text);
    else
        sf_jobtab_progress (self->jobs, env->job_event->job_id, env->job_event->phase,
                            env->job_event->bytes);
    if (env && env->job_event->phase == SF_PHASE_UPLOAD_WAIT) {
        uint64_t rate = 0;
        if (sf_jobtab_upload_wait (self->jobs, env->job_event->job_id, &rate)) {
            sf_logctx_t ctx = { env->job_event->job_id, self->cfg.name, NULL };
            char text [40];
            SF_INFO (&ctx, "upload granted (held grant), %s",
                     s_rate_text (rate, text, sizeof (text)));
            s_send_rate (sock, "GRANT", rate);
        }
    }
    sf_wire_free (&env);
}

static int
s_on_task (zloop_t *loop, zsock_t *sock, void *arg)
{
    sf_agent_t *self = (sf_agent_t *) arg;
    (void) loop;
    char *kind = NULL;
    zframe_t *frame = NULL;
    if (zsock_recv (sock, "sf", &kind, &frame) || !kind || !frame) {
        zstr_free (&kind);
        zframe_destroy (&frame);
        return 0;
    }
    if (streq (kind, "EVENT")) {
        s_send_kept (self, frame);
        s_on_task_event (self, sock, frame);
    }
    else
    if (streq (kind, "APPLIED")) {
        //  A restore took a granted rate: answer the grant now
        const char *job_id = sf_jobtab_job_of (self->jobs, sock);
        char text [32];
        snprintf (text, sizeof (text), "%.*s", (int) zframe_size (frame),
                  (const char *) zframe_data (frame));
        sf_job_grant_t grant = SF_JOB_GRANT_INIT;
        grant.job_id = (char *) job_id;
        grant.attempt = job_id? sf_jobtab_attempt (self->jobs, job_id): 0;
        grant.rate_bps = strtoull (text, NULL, 10);
        sf_rate_applied_t applied = sf_wire_rate_applied (&grant);
        sf_envelope_t env = sf_wire_envelope (SF_BODY_RATE_APPLIED, &applied);
        if (job_id)
            s_send (self, &env);
    }
    else
    if (streq (kind, "RESULT")) {
        const char *job_id = sf_jobtab_job_of (self->jobs, sock);
        assert (job_id);
        zhashx_delete (self->restores, job_id);
        //  Durable before it leaves: a worker killed after this replays it
        //  from the journal when it starts again
        uint32_t attempt = sf_jobtab_attempt (self->jobs, job_id);
        sf_err_t err = SF_ERR_INIT;
        sf_logctx_t ctx = { job_id, self->cfg.name, NULL };
        if (sf_joblog_finish (self->joblog, job_id, attempt, frame, &err))
            SF_ERROR (&ctx, "cannot journal the job's result (it is sent, and kept "
                      "until acknowledged, but a restart of this worker loses it): %s",
                      err.text);
        s_send_kept (self, frame);
        zloop_reader_end (self->loop, sock);
        sf_jobtab_finish (self->jobs, job_id, &frame);
        s_scan (self);          //  states and sizes changed
    }
    zstr_free (&kind);
    zframe_destroy (&frame);
    return 0;
}

//  --------------------------------------------------------------------------
//  Job assignment

//  Fencing against the table. Returns true if the assign is handled
//  (ignored, answered again, refused) and must not start a task.

static bool
s_fence (sf_agent_t *self, const sf_job_assign_t *assign)
{
    uint32_t known = 0;
    sf_logctx_t ctx = { assign->job_id, self->cfg.name, NULL };
    char text [256];
    switch (sf_jobtab_fence (self->jobs, assign->job_id, assign->attempt, &known)) {
        case SF_JOBTAB_START:
            return false;
        case SF_JOBTAB_STALE:
            SF_INFO (&ctx, "ignoring stale attempt %u (attempt %u is known)",
                     assign->attempt, known);
            return true;
        case SF_JOBTAB_RUNNING:
            SF_INFO (&ctx, "ignoring repeated assign of running attempt %u", known);
            return true;
        case SF_JOBTAB_RESEND:
            SF_INFO (&ctx, "attempt %u already finished; sending its result again", known);
            s_send_kept (self, sf_jobtab_result (self->jobs, assign->job_id));
            return true;
        default:
            snprintf (text, sizeof (text), "attempt %u of job '%s' still runs on node '%s'",
                      known, assign->job_id, self->cfg.name);
            s_reject (self, assign, SF_EBUSY, text, false);
            return true;
    }
}

//  Can we take it? Fills err if not (checks against the last scan; the
//  task checks again against the live domain).

static int
s_admit (sf_agent_t *self, const sf_job_assign_t *assign, sf_err_t *err)
{
    if (self->stopping)
        return sf_err_set (err, SF_EBUSY, "node '%s' is shutting down", self->cfg.name);
    size_t running = sf_jobtab_running (self->jobs);
    if ((int64_t) running >= self->cfg.max_jobs)
        return sf_err_set (err, SF_EBUSY, "node '%s' is busy: %zu job(s) running, "
                           "max_jobs is %" PRId64, self->cfg.name, running,
                           self->cfg.max_jobs);
    if (!sf_strategies_known (assign->strategy))
        return sf_strategies_check (assign->strategy, "", "", "", err);
    if (sf_strategies_needs_ceph (assign->strategy) && !self->stor)
        return sf_err_set (err, SF_ENOTSUP, "strategy '%s' needs RBD support, which is off "
                           "on node '%s' ([storage.rbd] ceph_conf is empty)",
                           assign->strategy, self->cfg.name);
    const sf_instance_t *inst = sf_scan_find (self->inventory, assign->instance_uuid);
    if (self->inventory && !inst)
        return sf_err_set (err, SF_ENOENT, "unknown instance '%s' on node '%s'",
                           assign->instance_uuid, self->cfg.name);
    const char *other = sf_jobtab_running_on (self->jobs, assign->instance_uuid);
    if (other)
        return sf_err_set (err, SF_EBUSY, "instance '%s' is busy with job '%s'",
                           assign->instance_uuid, other);
    if (inst && sf_strategies_check (assign->strategy, inst->name,
                                     sf_hv_state_name (inst->state), inst->storage_class,
                                     err))
        return -1;
    if (inst && !self->stor && sf_strategies_class_needs_ceph (inst->storage_class))
        return sf_err_set (err, SF_ENOTSUP, "instance '%s' has RBD disks, but RBD support "
                           "is off on node '%s' ([storage.rbd] ceph_conf is empty)",
                           inst->name, self->cfg.name);
    return 0;
}

//  The job's journal entry is durable before its task starts

static void
s_start_job (sf_agent_t *self, const sf_job_assign_t *assign)
{
    sf_err_t err = SF_ERR_INIT;
    if (sf_joblog_start (self->joblog, assign->job_id, assign->attempt,
                         assign->instance_uuid, assign->strategy, &err)) {
        s_reject (self, assign, err.code, err.text, true);    //  nothing done yet
        return;
    }
    sf_task_args_t args = {
        assign->job_id, assign->attempt, assign->instance_uuid, assign->strategy,
        self->cfg.uri, self->cfg.workdir, self->exe, self->run_id, self->cfg.max_pause,
        self->images, self->conv,
        self->stor, self->leftovers, self->cfg.rbd_mode, self->cfg.rbd_clone_pool, false,
        assign->wait_upload_grant, assign->catalog_id, self->joblog,
        streq (self->cfg.rbd_snapshot, "backup")
    };
    zactor_t *task = sf_task_new_incremental (&args, assign->incremental);
    zloop_reader (self->loop, zactor_sock (task), s_on_task, self);
    sf_jobtab_start (self->jobs, assign->job_id, assign->attempt, assign->instance_uuid,
                     &task);
    sf_logctx_t ctx = { assign->job_id, self->cfg.name, assign->instance_uuid };
    SF_INFO (&ctx, "job started: attempt %u, strategy '%s'", assign->attempt,
             assign->strategy);
}

//  A job that reads a stored image back (a restore, a verification): may
//  the node take it (not stopping, below max_jobs, journaled)? 0, or -1
//  once it is rejected

static int
s_take_readback (sf_agent_t *self, const sf_job_assign_t *assign)
{
    sf_err_t err = SF_ERR_INIT;
    if (self->stopping || (int64_t) sf_jobtab_running (self->jobs) >= self->cfg.max_jobs) {
        s_reject (self, assign, SF_EBUSY, self->stopping? "node is shutting down"
                                                        : "node is busy (max_jobs)", true);
        return -1;
    }
    if (sf_joblog_start (self->joblog, assign->job_id, assign->attempt,
                         assign->instance_uuid, assign->strategy, &err)) {
        s_reject (self, assign, err.code, err.text, true);
        return -1;
    }
    return 0;
}

//  Run its actor (*task_p, taken): watched, counted as a restore, in the
//  job table with tag (its strategy) where an instance's uuid goes: it
//  holds no instance busy

static void
s_run_readback (sf_agent_t *self, const sf_job_assign_t *assign, const char *tag,
                zactor_t **task_p)
{
    zloop_reader (self->loop, zactor_sock (*task_p), s_on_task, self);
    zhashx_insert (self->restores, assign->job_id, (void *) 1);
    sf_jobtab_start (self->jobs, assign->job_id, assign->attempt, tag, task_p);
}

//  A restore (strategy "restore", sf_wire checked its Restore): journaled
//  like any job, run by an sf_restore actor. It holds no instance busy.

static void
s_start_restore (sf_agent_t *self, const sf_job_assign_t *assign)
{
    if (s_take_readback (self, assign))
        return;
    sf_restore_args_t args = {
        .job_id = assign->job_id, .attempt = assign->attempt,
        .catalog_id = assign->catalog_id, .restore = assign->restore,
        .workdir = self->cfg.workdir, .store_driver = sf_imgstore_driver (self->images),
        .store_dir = self->cfg.store.path? self->cfg.store.path: "",
        .rate_limit = sf_conv_rate_limit (self->conv),
        .stall_ms = sf_conv_stall_timeout (self->conv),
        .wait_upload_grant = assign->wait_upload_grant, .uri = self->cfg.uri,
        .stor = self->stor
    };
    zactor_t *task = sf_restore_new (&args);
    s_run_readback (self, assign, SF_WIRE_RESTORE, &task);
    sf_logctx_t ctx = { assign->job_id, self->cfg.name, NULL };
    SF_INFO (&ctx, "restore started: attempt %u, image %s to '%s'", assign->attempt,
             assign->restore->image->id, *assign->restore->to_rbd? assign->restore->to_rbd
                                                                   : assign->restore->to_file);
}

//  A verification (strategy "verify"): journaled, run by an sf_verify
//  actor that speaks a restore's protocol (it answers grants with APPLIED)

static void
s_start_verify (sf_agent_t *self, const sf_job_assign_t *assign)
{
    if (s_take_readback (self, assign))
        return;
    sf_verify_args_t args = {
        .job_id = assign->job_id, .attempt = assign->attempt,
        .catalog_id = assign->catalog_id, .verify = assign->verify,
        .workdir = self->cfg.workdir, .store_driver = sf_imgstore_driver (self->images),
        .store_dir = self->cfg.store.path? self->cfg.store.path: "", .uri = self->cfg.uri,
        .life_pattern = self->cfg.verify_life_pattern,
        .boot_timeout_ms = self->cfg.verify_boot_timeout,
        .rate_limit = sf_conv_rate_limit (self->conv),
        .stall_ms = sf_conv_stall_timeout (self->conv),
        .wait_upload_grant = assign->wait_upload_grant
    };
    zactor_t *task = sf_verify_new (&args);
    s_run_readback (self, assign, SF_WIRE_VERIFY, &task);
    sf_logctx_t ctx = { assign->job_id, self->cfg.name, NULL };
    SF_INFO (&ctx, "verification started: attempt %u, image %s%s", assign->attempt,
             assign->verify->image->id, assign->verify->boot? " with a boot": "");
}

static void
s_on_assign (sf_agent_t *self, const sf_job_assign_t *assign)
{
    if (s_fence (self, assign))
        return;
    if (assign->restore) {
        s_start_restore (self, assign);
        return;
    }
    if (assign->verify) {
        s_start_verify (self, assign);
        return;
    }
    sf_err_t err = SF_ERR_INIT;
    //  Busy (max_jobs, the instance, shutting down) may pass: retryable
    if (s_admit (self, assign, &err))
        s_reject (self, assign, err.code, err.text, err.code == SF_EBUSY);
    else
        s_start_job (self, assign);
}

static void
s_on_cancel (sf_agent_t *self, const sf_job_cancel_t *cancel)
{
    zactor_t *task = sf_jobtab_task (self->jobs, cancel->job_id, cancel->attempt);
    sf_logctx_t ctx = { cancel->job_id, self->cfg.name, NULL };
    if (task) {
        SF_INFO (&ctx, "cancelling attempt %u", cancel->attempt);
        zstr_send (task, "CANCEL");
    }
    else
        SF_INFO (&ctx, "cancel of attempt %u ignored: not running here", cancel->attempt);
}

//  A JobGrant for a job we run (fenced by attempt): the first one lets the
//  task upload, later ones change its rate. One for a job that has not
//  asked yet is held until it does.

static void
s_on_grant (sf_agent_t *self, const sf_job_grant_t *grant)
{
    sf_logctx_t ctx = { grant->job_id, self->cfg.name, NULL };
    uint32_t known = 0;
    char text [40];
    const char *rate = s_rate_text (grant->rate_bps, text, sizeof (text));
    zactor_t *task = NULL;
    switch (sf_jobtab_grant (self->jobs, grant->job_id, grant->attempt, grant->rate_bps,
                             &known)) {
        case SF_JOBTAB_GRANT_START:
            task = sf_jobtab_task (self->jobs, grant->job_id, grant->attempt);
            SF_INFO (&ctx, "upload granted, %s", rate);
            s_send_rate (zactor_sock (task), "GRANT", grant->rate_bps);
            break;
        case SF_JOBTAB_GRANT_RATE:
            task = sf_jobtab_task (self->jobs, grant->job_id, grant->attempt);
            SF_INFO (&ctx, "upload rate now %s", rate);
            s_send_rate (zactor_sock (task), "RATE", grant->rate_bps);
            break;
        case SF_JOBTAB_GRANT_HOLD:
            SF_INFO (&ctx, "upload grant (%s) before the job asked for it; held", rate);
            break;
        default:
            if (known && known != grant->attempt)
                SF_INFO (&ctx, "upload grant for attempt %u dropped: attempt %u is known",
                         grant->attempt, known);
            else
                SF_INFO (&ctx, "upload grant for attempt %u dropped: not running here",
                         grant->attempt);
            break;
    }
    //  Every grant is answered once it is handed to the task (or nothing
    //  uploads): the task's bucket takes the rate before its next chunk,
    //  and the scheduler frees what a cut gave back only then. A restore
    //  answers once its rate applies (sf_restore: APPLIED)
    if (task && zhashx_lookup (self->restores, grant->job_id))
        return;
    sf_rate_applied_t applied = sf_wire_rate_applied (grant);
    sf_envelope_t env = sf_wire_envelope (SF_BODY_RATE_APPLIED, &applied);
    s_send (self, &env);
}

//  --------------------------------------------------------------------------
//  Image deletion (retention), in sf_prune actors; their answers are
//  forwarded as they come

static void
    s_on_image_delete (sf_agent_t *self, const sf_image_delete_t *request);

//  One deletion runs at a time; at most SF_PRUNEQ_MAX wait, and one more
//  is answered SF_EBUSY at once: a scheduler cannot make us start a
//  thread per request. *env_p (an ImageDelete) is taken if it is queued.

static void
s_prune_submit (sf_agent_t *self, sf_envelope_t **env_p)
{
    sf_err_t err = SF_ERR_INIT;
    if (zlistx_size (self->prunes) == 0 && sf_pruneq_size (self->prune_queue) == 0)
        s_on_image_delete (self, (*env_p)->image_delete);
    else
    if (sf_pruneq_push (self->prune_queue, env_p, self->cfg.name, &err)) {
        SF_WARN (&self->ctx, "image deletion (request %s) refused: %s",
                 (*env_p)->image_delete->request_id, err.text);
        zframe_t *frame = sf_pruneq_answer ((*env_p)->image_delete, &err);
        s_send_kept (self, frame);
        zframe_destroy (&frame);
    }
}

//  The running deletion ended (or none runs): start the next waiting one

static void
s_prune_next (sf_agent_t *self)
{
    while (zlistx_size (self->prunes) == 0 && !self->stopping) {
        sf_envelope_t *env = sf_pruneq_pop (self->prune_queue);
        if (!env)
            break;
        s_on_image_delete (self, env->image_delete);
        sf_wire_free (&env);
    }
}

static int
s_on_prune (zloop_t *loop, zsock_t *sock, void *arg)
{
    sf_agent_t *self = (sf_agent_t *) arg;
    char *kind = NULL;
    zframe_t *frame = NULL;
    if (zsock_recv (sock, "sf", &kind, &frame) == 0 && kind && frame
    &&  streq (kind, "RESULT"))
        s_send_kept (self, frame);
    zstr_free (&kind);
    zframe_destroy (&frame);
    zloop_reader_end (loop, sock);
    zactor_t *prune = (zactor_t *) zlistx_first (self->prunes);
    for (; prune; prune = (zactor_t *) zlistx_next (self->prunes))
        if (zactor_sock (prune) == sock) {
            zlistx_delete (self->prunes, zlistx_cursor (self->prunes));
            break;
        }
    s_prune_next (self);
    return 0;
}

static void
s_on_image_delete (sf_agent_t *self, const sf_image_delete_t *request)
{
    const sf_image_t *image = request->image;
    SF_INFO (&self->ctx, "deleting image '%s' of store '%s' (request %s)", image->id,
             image->store, request->request_id);
    sf_prune_args_t args = {
        request->request_id, image->store, image->id, image->path,
        self->images, self->stor, request->catalog_id, request->job_id
    };
    zactor_t *prune = sf_prune_new (&args);
    zloop_reader (self->loop, zactor_sock (prune), s_on_prune, self);
    zlistx_add_end (self->prunes, prune);
}

//  --------------------------------------------------------------------------
//  The reconciler (GcList, GcRemove), in an sf_reconcile actor: one runs
//  at a time, one more waits, and any other is answered "busy" at once

static void
    s_reconcile_start (sf_agent_t *self, sf_envelope_t **env_p);

static void
s_reconcile_busy (sf_agent_t *self, const sf_envelope_t *env)
{
    const char *busy = "a gc request is already running on this worker; try again";
    if (env->body_case == SF_BODY_GC_LIST) {
        sf_gc_holdings_t msg = SF_GC_HOLDINGS_INIT;
        msg.request_id = env->gc_list->request_id;
        msg.note = (char *) busy;
        sf_envelope_t answer = sf_wire_envelope (SF_BODY_GC_HOLDINGS, &msg);
        s_send (self, &answer);
    }
    else {
        //  Every holding fails, with the reason (copies: env stays as it came)
        size_t count = env->gc_remove->n_holdings;
        sf_holding_t *copies = (sf_holding_t *) zmalloc ((count + 1) * sizeof (sf_holding_t));
        sf_holding_t **failed = (sf_holding_t **) zmalloc ((count + 1) * sizeof (sf_holding_t *));
        for (size_t i = 0; i < count; i++) {
            copies [i] = *env->gc_remove->holdings [i];
            copies [i].error = (char *) busy;
            failed [i] = &copies [i];
        }
        sf_gc_removed_t msg = SF_GC_REMOVED_INIT;
        msg.request_id = env->gc_remove->request_id;
        msg.failed = failed, msg.n_failed = count;
        sf_envelope_t answer = sf_wire_envelope (SF_BODY_GC_REMOVED, &msg);
        s_send (self, &answer);
        free (failed);
        free (copies);
    }
}

static int
s_on_reconcile (zloop_t *loop, zsock_t *sock, void *arg)
{
    sf_agent_t *self = (sf_agent_t *) arg;
    char *kind = NULL;
    zframe_t *frame = NULL;
    if (zsock_recv (sock, "sf", &kind, &frame) == 0 && kind && frame
    &&  streq (kind, "RESULT"))
        s_send_frame (self, frame);
    zstr_free (&kind);
    zframe_destroy (&frame);
    zloop_reader_end (loop, sock);
    zactor_destroy (&self->reconcile);
    if (self->reconcile_next && !self->stopping)
        s_reconcile_start (self, &self->reconcile_next);
    return 0;
}

static void
s_reconcile_submit (sf_agent_t *self, sf_envelope_t **env_p)
{
    if (!self->reconcile)
        s_reconcile_start (self, env_p);
    else
    if (!self->reconcile_next) {
        self->reconcile_next = *env_p;
        *env_p = NULL;
    }
    else
        s_reconcile_busy (self, *env_p);
}

//  Why the worker keeps what job_id made, or NULL: it runs the job, or
//  its leftovers journal names it (the sweeper removes those)

static const char *
s_reconcile_keeps (sf_agent_t *self, zlistx_t *running, const char *job_id)
{
    if (zlistx_find (running, (void *) job_id))
        return "still runs on this worker";
    if (sf_joblog_has (self->joblog, job_id))
        return "is in this worker's job journal (its result is not acknowledged yet)";
    if (self->leftovers) {
        char *path = sf_leftover_path (self->leftovers, job_id);
        bool journal = access (path, F_OK) == 0;
        free (path);
        if (journal)
            return "is in this worker's leftovers journal";
    }
    return NULL;
}

static void
s_reconcile_start (sf_agent_t *self, sf_envelope_t **env_p)
{
    sf_envelope_t *env = *env_p;
    bool listing = env->body_case == SF_BODY_GC_LIST;
    if (!self->reconcile_seen) {
        self->reconcile_seen = zhashx_new ();
        zhashx_set_destructor (self->reconcile_seen, (zhashx_destructor_fn *) zstr_free);
    }
    //  The RBD disks of the node's guests, from the last scan
    zlistx_t *disks = zlistx_new ();
    zlistx_set_duplicator (disks, (zlistx_duplicator_fn *) strdup);
    zlistx_set_destructor (disks, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_comparator (disks, (zlistx_comparator_fn *) strcmp);
    for (size_t i = 0; self->inventory && i < self->inventory->inventory->n_instances; i++) {
        const sf_instance_t *instance = self->inventory->inventory->instances [i];
        for (size_t d = 0; d < instance->n_disks; d++)
            if (instance->disks [d]->type == SF_DISK_RBD
            &&  !zlistx_find (disks, instance->disks [d]->source))
                zlistx_add_end (disks, instance->disks [d]->source);
    }
    zhashx_t *busy = zhashx_new ();
    zlistx_t *running = sf_jobtab_running_ids (self->jobs);
    zlistx_set_comparator (running, (zlistx_comparator_fn *) strcmp);
    for (size_t i = 0; !listing && i < env->gc_remove->n_holdings; i++) {
        const char *job_id = env->gc_remove->holdings [i]->job_id;
        const char *why = s_reconcile_keeps (self, running, job_id);
        if (why)
            zhashx_update (busy, job_id, (void *) why);
    }
    zlistx_destroy (&running);
    sf_reconcile_args_t args = {
        .request_id = listing ? env->gc_list->request_id : env->gc_remove->request_id,
        .catalog_id = listing ? env->gc_list->catalog_id : env->gc_remove->catalog_id,
        .store_dir = streq (sf_imgstore_driver (self->images), "dir") ? self->cfg.store.path
                                                                     : NULL,
        .workdir = self->cfg.workdir,
        .images = self->images,
        .stor = self->stor,
        .rbd_disks = disks,
        .first_seen = self->reconcile_seen,
        .busy = busy,
        .remove = listing ? NULL : env->gc_remove->holdings,
        .n_remove = listing ? 0 : env->gc_remove->n_holdings,
    };
    SF_INFO (&self->ctx, "gc %s (request %s)", listing ? "listing" : "removal",
             args.request_id);
    self->reconcile = sf_reconcile_new (&args);
    zloop_reader (self->loop, zactor_sock (self->reconcile), s_on_reconcile, self);
    zlistx_destroy (&disks);
    zhashx_destroy (&busy);
    sf_wire_free (env_p);
}

//  --------------------------------------------------------------------------
//  Scheduler messages

static int
s_on_heartbeat (zloop_t *loop, int timer_id, void *arg)
{
    sf_agent_t *self = (sf_agent_t *) arg;
    (void) loop;
    (void) timer_id;
    sf_heartbeat_t beat = SF_HEARTBEAT_INIT;
    beat.seq = ++self->heartbeat_seq;
    beat.running_jobs = (uint32_t) sf_jobtab_running (self->jobs);
    beat.scratch_free = s_scratch_free (self);
    beat.rbd_snap_ms = self->stor ? (uint64_t) sf_stor_snap_round_ms (self->stor) : 0;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_HEARTBEAT, &beat);
    s_send (self, &env);
    return 0;
}

//  The heartbeat period a Welcome asks for (0: our own), within
//  SF_AGENT_BEAT_MIN_MS .. SF_AGENT_BEAT_MAX_MS: a scheduler cannot make
//  us beat every millisecond, nor so rarely that it declares us gone

static int64_t
s_heartbeat_clamp (sf_agent_t *self, uint32_t asked)
{
    int64_t period = asked ? (int64_t) asked : self->cfg.heartbeat;
    int64_t clamped = period < SF_AGENT_BEAT_MIN_MS ? SF_AGENT_BEAT_MIN_MS
                    : period > SF_AGENT_BEAT_MAX_MS ? SF_AGENT_BEAT_MAX_MS : period;
    if (clamped != period)
        SF_WARN (&self->ctx, "heartbeat of %" PRId64 " ms is out of range; using %" PRId64
                 " ms", period, clamped);
    return clamped;
}

//  After a Welcome: everything not acknowledged goes again, in the order
//  first sent (the scheduler treats a replay idempotently)

static void
s_replay (sf_agent_t *self)
{
    size_t count = 0;
    for (zframe_t *frame = sf_unacked_first (self->unacked); frame;
         frame = sf_unacked_next (self->unacked), count++)
        s_send_frame (self, frame);
    if (count)
        SF_INFO (&self->ctx, "%zu unacknowledged message(s) sent again", count);
}

//  The scheduler committed (or dropped for good) what acks lists: forget
//  it; an acknowledged result leaves the journal too

static void
s_on_acks (sf_agent_t *self, const sf_acks_t *acks)
{
    zlistx_t *results = zlistx_new ();
    zlistx_set_destructor (results, (zlistx_destructor_fn *) zstr_free);
    sf_unacked_ack (self->unacked, acks, results);
    for (char *item = (char *) zlistx_first (results); item;
         item = (char *) zlistx_next (results)) {
        char *space = strrchr (item, ' ');
        assert (space);
        *space = 0;
        uint32_t attempt = (uint32_t) strtoul (space + 1, NULL, 10);
        sf_err_t err = SF_ERR_INIT;
        sf_logctx_t ctx = { item, self->cfg.name, NULL };
        if (sf_joblog_forget (self->joblog, item, attempt, &err))
            SF_WARN (&ctx, "cannot remove the job's journal entry: %s", err.text);
        else
            SF_DEBUG (&ctx, "result acknowledged");
    }
    zlistx_destroy (&results);
}

//  The scheduler asks how a job is (it had no news for its lease time)

static void
s_on_query (sf_agent_t *self, const sf_job_query_t *query)
{
    sf_job_status_t status = SF_JOB_STATUS_INIT;
    int phase = 0;
    uint64_t bytes = 0;
    status.job_id = query->job_id;
    status.attempt = query->attempt;
    status.state = (Sf__V1__JobState) sf_jobtab_status (self->jobs, query->job_id,
                                                        query->attempt, &phase, &bytes);
    status.phase = (Sf__V1__Phase) phase;
    status.progress = bytes;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_STATUS, &status);
    s_send (self, &env);
    if (status.state == SF_JOB_STATE_FINISHED)
        s_send_kept (self, sf_jobtab_result (self->jobs, query->job_id));
}

static void
s_on_welcome (sf_agent_t *self, const sf_welcome_t *welcome)
{
    SF_INFO (&self->ctx, "welcomed by the scheduler (heartbeat %u ms)", welcome->heartbeat_ms);
    s_replay (self);
    int64_t period = s_heartbeat_clamp (self, welcome->heartbeat_ms);
    if (period != self->heartbeat_ms && self->loop) {
        zloop_timer_end (self->loop, self->heartbeat_timer);
        self->heartbeat_ms = period;
        self->heartbeat_timer = zloop_timer (self->loop, (size_t) period, 0,
                                             s_on_heartbeat, self);
    }
}

static void
s_invalid (sf_agent_t *self, const char *why)
{
    self->invalid++;
    SF_WARN (&self->ctx, "dropped invalid message from the scheduler (%zu so far): %s",
             self->invalid, why);
}

static int
s_on_scheduler (zloop_t *loop, zsock_t *sock, void *arg)
{
    sf_agent_t *self = (sf_agent_t *) arg;
    (void) loop;
    sf_err_t err = SF_ERR_INIT;
    sf_envelope_t *env = sf_wire_recv (zsock_resolve (sock), NULL, &err);
    if (!env) {
        s_invalid (self, err.text);
        return 0;
    }
    switch (env->body_case) {
        case SF_BODY_WELCOME:
            s_on_welcome (self, env->welcome);
            break;
        case SF_BODY_JOB_ASSIGN:
            s_on_assign (self, env->job_assign);
            break;
        case SF_BODY_JOB_CANCEL:
            s_on_cancel (self, env->job_cancel);
            break;
        case SF_BODY_JOB_GRANT:
            s_on_grant (self, env->job_grant);
            break;
        case SF_BODY_IMAGE_DELETE:
            s_prune_submit (self, &env);
            break;
        case SF_BODY_GC_LIST:
        case SF_BODY_GC_REMOVE:
            if (self->loop)
                s_reconcile_submit (self, &env);
            break;
        case SF_BODY_ACKS:
            s_on_acks (self, env->acks);
            break;
        case SF_BODY_JOB_QUERY:
            s_on_query (self, env->job_query);
            break;
        case SF_BODY_ERROR:
            if (env->error->code == SF_ENODE) {
                SF_NOTICE (&self->ctx, "scheduler does not know us (%s); saying hello",
                           env->error->text);
                s_send_hello (self);
            }
            else
                SF_WARN (&self->ctx, "scheduler error %s: %s",
                         sf_err_name (env->error->code), env->error->text);
            break;
        case SF_BODY_HEARTBEAT:
            break;
        default:
            s_invalid (self, sf_wire_body_name (env->body_case));
            break;
    }
    sf_wire_free (&env);
    return 0;
}

//  --------------------------------------------------------------------------
//  Inventory

static void
s_scan (sf_agent_t *self)
{
    if (!self->scan_pending) {
        zstr_send (self->scanner, "SCAN");
        self->scan_pending = true;
    }
}

//  The inventory timer also has the sweeper retry the Ceph objects that
//  failed jobs could not remove (the sweeper merges queued requests)

static int
s_on_inventory_timer (zloop_t *loop, int timer_id, void *arg)
{
    sf_agent_t *self = (sf_agent_t *) arg;
    (void) loop;
    (void) timer_id;
    s_scan (self);
    if (self->sweeper)
        zstr_send (self->sweeper, "SWEEP");
    return 0;
}

static void
s_on_inventory (sf_agent_t *self, zframe_t *frame)
{
    sf_err_t err = SF_ERR_INIT;
    sf_envelope_t *env = sf_wire_decode (frame, &err);
    if (!env) {                 //  our own encoding: a bug, but not fatal
        SF_ERROR (&self->ctx, "bad inventory from the scanner: %s", err.text);
        return;
    }
    sf_wire_free (&self->inventory);
    self->inventory = env;
    if (*self->scan_error) {
        SF_NOTICE (&self->ctx, "hypervisor '%s' answers again", self->cfg.uri);
        *self->scan_error = 0;
    }
    if (self->inventory_sent && zframe_eq (self->inventory_sent, frame))
        return;
    //  Sizes of running guests change all the time: log only new counts
    size_t before = self->inventory_count;
    self->inventory_count = env->inventory->n_instances;
    if (before != self->inventory_count || !self->inventory_sent)
        SF_INFO (&self->ctx, "inventory: %zu instance(s)", self->inventory_count);
    else
        SF_DEBUG (&self->ctx, "inventory changed");
    zframe_destroy (&self->inventory_sent);
    self->inventory_sent = zframe_dup (frame);
    s_send_frame (self, frame);
}

static int
s_on_scanner (zloop_t *loop, zsock_t *sock, void *arg)
{
    sf_agent_t *self = (sf_agent_t *) arg;
    (void) loop;
    char *kind = NULL;
    zframe_t *frame = NULL;
    if (zsock_recv (sock, "sf", &kind, &frame) == 0 && kind && frame) {
        self->scan_pending = false;
        if (streq (kind, "INVENTORY"))
            s_on_inventory (self, frame);
        else {
            char *text = (char *) zframe_strdup (frame);
            if (!streq (text, self->scan_error))
                SF_WARN (&self->ctx, "cannot read the inventory: %s", text);
            snprintf (self->scan_error, sizeof (self->scan_error), "%s", text);
            free (text);
        }
    }
    zstr_free (&kind);
    zframe_destroy (&frame);
    return 0;
}

//  --------------------------------------------------------------------------
//  Stopping: cancel jobs, keep serving until their results are out

static void
s_begin_stop (sf_agent_t *self, const char *why)
{
    if (self->stopping)
        return;
    self->stopping = true;
    self->stop_deadline = sf_time_mono_ms () + S_STOP_GRACE_MS;
    size_t cancelled = sf_jobtab_cancel_all (self->jobs);
    SF_NOTICE (&self->ctx, "stopping (%s): cancelled %zu running job(s)", why, cancelled);
}

static int
s_on_tick (zloop_t *loop, int timer_id, void *arg)
{
    sf_agent_t *self = (sf_agent_t *) arg;
    (void) loop;
    (void) timer_id;
    if (!self->stopping)
        return 0;
    size_t running = sf_jobtab_running (self->jobs);
    if (running == 0)
        return -1;
    if (sf_time_mono_ms () > self->stop_deadline) {
        SF_ERROR (&self->ctx, "%zu job(s) did not stop in time; abandoning them", running);
        return -1;
    }
    return 0;
}

static int
s_on_signal (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    char buf [128];             //  struct signalfd_siginfo
    if (read (item->fd, buf, sizeof (buf)) <= 0)
        return 0;
    s_begin_stop ((sf_agent_t *) arg, "signal");
    return 0;
}

static int
s_on_pipe (zloop_t *loop, zsock_t *sock, void *arg)
{
    sf_agent_t *self = (sf_agent_t *) arg;
    (void) loop;
    char *command = zstr_recv (sock);
    if (!command || streq (command, "$TERM"))
        s_begin_stop (self, "terminated");
    else
    if (streq (command, "INVALID"))
        zstr_sendf (sock, "%zu", self->invalid);
    else
    if (streq (command, "LIMITS"))
        zstr_sendf (sock, "%" PRId64 " %d %d %d", self->heartbeat_ms,
                    zsock_maxmsgsize (self->dealer), zsock_sndhwm (self->dealer),
                    zsock_rcvhwm (self->dealer));
    zstr_free (&command);
    return 0;
}

//  --------------------------------------------------------------------------
//  Constructor

//  The work directory holds job scratch directories and paused/. No task
//  runs yet, so every job directory is a leftover of a killed run; but only
//  what looks like one is removed (a misconfigured workdir must not cost
//  anyone their files).

static int
s_prepare_workdir (sf_agent_t *self, sf_err_t *err)
{
    if (zsys_dir_create ("%s", self->cfg.workdir))
        return sf_err_set (err, SF_EIO, "cannot create work directory '%s': %s",
                           self->cfg.workdir, strerror (errno));
    DIR *dir = opendir (self->cfg.workdir);
    if (!dir)
        return sf_err_set (err, SF_EIO, "cannot read work directory '%s': %s",
                           self->cfg.workdir, strerror (errno));
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        if (entry->d_name [0] == '.' || streq (entry->d_name, "paused")
        ||  streq (entry->d_name, "leftovers") || streq (entry->d_name, "jobs")
        ||  streq (entry->d_name, "restores")
        ||  entry->d_type != DT_DIR)
            continue;
        char *path = zsys_sprintf ("%s/%s", self->cfg.workdir, entry->d_name);
        if (sf_task_scratch_clean (path) == 0)
            SF_NOTICE (&self->ctx, "removed stale scratch '%s'", path);
        else
        if (sf_task_scratch_has_overlay (path))
            SF_ERROR (&self->ctx, "'%s' holds a file-live overlay: a guest may still run on "
                      "it (the worker died before committing it back); left in place. "
                      "Commit it: virsh blockcommit DOMAIN TARGET --active --shallow "
                      "--pivot, then remove the directory", path);
        else
            SF_WARN (&self->ctx, "'%s' in the work directory is not a job's scratch; "
                     "left in place", path);
        zstr_free (&path);
    }
    closedir (dir);
    sf_restore_sweep (self->cfg.workdir, self->stor);   //  what killed restores left
    sf_verify_sweep (self->cfg.workdir, self->cfg.uri);     //  and verifications
    return 0;
}

//  The job journal: what a killed run of this worker left. A finished
//  job's result is replayed after the Welcome (and answers a repeated
//  assign); a job that was still running was lost with that run: it gets
//  a failed result (retryable if it never paused its guest), journaled
//  and replayed like any result.

static int
s_open_journal (sf_agent_t *self, sf_err_t *err)
{
    if (!(self->joblog = sf_joblog_new (self->cfg.workdir, err)))
        return -1;
    zlistx_t *entries = sf_joblog_load (self->joblog);
    for (sf_joblog_entry_t *entry = (sf_joblog_entry_t *) zlistx_first (entries); entry;
         entry = (sf_joblog_entry_t *) zlistx_next (entries)) {
        sf_logctx_t ctx = { entry->job_id, self->cfg.name, entry->uuid };
        if (!entry->finished) {
            entry->result = sf_joblog_lost_result (entry, self->cfg.name);
            SF_WARN (&ctx, "attempt %u was running when this worker stopped: it failed%s",
                     entry->attempt, entry->pausing ? "" : " (retryable: it never paused "
                     "the guest)");
            sf_err_t write_err = SF_ERR_INIT;
            if (sf_joblog_finish (self->joblog, entry->job_id, entry->attempt,
                                  entry->result, &write_err))
                SF_ERROR (&ctx, "cannot journal the job's result: %s", write_err.text);
        }
        else
            SF_NOTICE (&ctx, "attempt %u finished before this worker stopped; its result "
                       "waits for the scheduler's acknowledgement", entry->attempt);
        sf_unacked_add (self->unacked, entry->result);
        sf_jobtab_restore (self->jobs, entry->job_id, entry->attempt, entry->uuid,
                           &entry->result);
    }
    zlistx_destroy (&entries);
    return 0;
}

//  RBD support: the sweeper of leftovers on the storage client (it
//  connects on first use). The journal is opened either way, to say what
//  waits in it when RBD support is off.

static int
s_open_storage (sf_agent_t *self, sf_err_t *err)
{
    if (!(self->leftovers = sf_leftover_new (self->cfg.workdir, self->stor,
                                             S_SETTLE_MS, err)))
        return -1;
    size_t waiting = sf_leftover_count (self->leftovers);
    if (self->stor)
        self->sweeper = zactor_new (sf_leftover_actor, self->leftovers);
    else
    if (waiting)
        SF_WARN (&self->ctx, "%zu job(s) left Ceph objects to remove (in '%s/leftovers'), "
                 "but RBD support is off", waiting, self->cfg.workdir);
    return 0;
}

sf_agent_t *
sf_agent_new (const sf_agent_cfg_t *cfg, sf_err_t *err)
{
    assert (cfg);
    sf_agent_parts_t parts = { NULL, NULL };
    if (*cfg->rbd_ceph_conf) {
        sf_stor_cfg_t stor_cfg = { "rbd", cfg->rbd_ceph_conf, cfg->rbd_client_id,
                                   cfg->rbd_keyring, cfg->rbd_op_timeout };
        if (!(parts.stor = sf_stor_new (&stor_cfg, err)))
            return NULL;
    }
    sf_agent_t *self = NULL;
    if (cfg->hv_answer_timeout > 0)         //  every libvirt connection from now on
        sf_hv_set_answer_timeout (cfg->hv_answer_timeout);
    sf_hv_set_backup_api (cfg->hv_backup_api);
    if ((parts.conv = sf_conv_new (NULL, err)) && cfg->stall_timeout > 0)
        sf_conv_set_stall_timeout (parts.conv, cfg->stall_timeout);
    if (parts.conv)
        sf_conv_set_rate_limit (parts.conv, cfg->conv_rate_limit);
    if (parts.conv
    &&  (self = sf_agent_new_with (cfg, &parts, err))) {
        self->stor_owned = parts.stor;
        self->conv_owned = parts.conv;
    }
    else {
        sf_conv_destroy (&parts.conv);
        sf_stor_destroy (&parts.stor);
    }
    return self;
}

//  CURVE with our key pair, talking only to the scheduler whose key we
//  pin; or plaintext (insecure, loopback only: checked by sf_agent_cfg)

//  Bound what the scheduler's socket can make us hold: a message larger
//  than any envelope drops the connection before it is buffered, and at
//  most SF_AGENT_HWM messages queue each way

static void
s_limit (zsock_t *dealer)
{
    zsock_set_maxmsgsize (dealer, SF_AGENT_MAX_MSG);
    zsock_set_sndhwm (dealer, SF_AGENT_HWM);
    zsock_set_rcvhwm (dealer, SF_AGENT_HWM);
}

static int
s_secure (sf_agent_t *self, sf_err_t *err)
{
    if (self->cfg.insecure) {
        SF_WARN (&self->ctx, "security.insecure = true: PLAINTEXT to the scheduler, and "
                 "anyone on this host can act as it");
        return 0;
    }
    int rc = -1;
    zcert_t *server = NULL;
    zcert_t *cert = sf_cert_load (self->cfg.cert, true, err);
    if (!cert || !(server = sf_cert_load (self->cfg.scheduler_key, false, err)))
        goto cleanup;
    const char *name = zcert_meta (cert, SF_CERT_NAME);
    if (!streq (name, self->cfg.name)) {
        sf_err_set (err, SF_EINVAL, "key '%s' is the key of node '%s', not of '%s' "
                    "(worker.name): the scheduler would refuse our hello",
                    self->cfg.cert, name, self->cfg.name);
        goto cleanup;
    }
    sf_cert_client (self->dealer, cert, server);
    rc = 0;
 cleanup:
    zcert_destroy (&cert);
    zcert_destroy (&server);
    return rc;
}

sf_agent_t *
sf_agent_new_with (const sf_agent_cfg_t *cfg, const sf_agent_parts_t *parts,
                   sf_err_t *err)
{
    assert (cfg && parts && parts->conv);
    sf_agent_t *self = (sf_agent_t *) zmalloc (sizeof (sf_agent_t));
    sf_agent_cfg_copy (&self->cfg, cfg);
    self->stor = parts->stor;
    self->conv = parts->conv;
    self->ctx.node = self->cfg.name;
    ssize_t len = readlink ("/proc/self/exe", self->exe, sizeof (self->exe) - 1);
    self->exe [len > 0 ? len : 0] = 0;
    zuuid_t *uuid = zuuid_new ();
    snprintf (self->run_id, sizeof (self->run_id), "%s", zuuid_str_canonical (uuid));
    zuuid_destroy (&uuid);
    self->jobs = sf_jobtab_new (S_KEEP);
    self->restores = zhashx_new ();
    self->unacked = sf_unacked_new (S_UNACKED_MAX);
    self->prunes = zlistx_new ();
    zlistx_set_destructor (self->prunes, (zlistx_destructor_fn *) zactor_destroy);
    self->prune_queue = sf_pruneq_new (SF_PRUNEQ_MAX);
    self->heartbeat_ms = self->cfg.heartbeat;
    if (len <= 0) {
        sf_err_set (err, SF_EIO, "cannot find this program: %s", strerror (errno));
        sf_agent_destroy (&self);
        return NULL;
    }
    if (!(self->images = sf_imgstore_new (&self->cfg.store, err))
    ||  s_prepare_workdir (self, err) || s_open_journal (self, err)
    ||  s_open_storage (self, err)) {
        sf_agent_destroy (&self);
        return NULL;
    }
    self->dealer = zsock_new (ZMQ_DEALER);
    zsock_set_sndtimeo (self->dealer, 0);       //  never block the loop
    zsock_set_linger (self->dealer, 2000);      //  let final results out
    s_limit (self->dealer);
    if (s_secure (self, err)) {
        sf_agent_destroy (&self);
        return NULL;
    }
    if (zsock_connect (self->dealer, "%s", self->cfg.scheduler)) {
        sf_err_set (err, SF_EINVAL, "cannot connect to scheduler '%s'", self->cfg.scheduler);
        sf_agent_destroy (&self);
        return NULL;
    }
    sf_scan_args_t scan_args = { self->cfg.uri, self->cfg.workdir, self->run_id };
    self->scanner = zactor_new (sf_scan_actor, &scan_args);
    return self;
}

//  --------------------------------------------------------------------------
//  Destructor

void
sf_agent_destroy (sf_agent_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_agent_t *self = *self_p;
        sf_jobtab_destroy (&self->jobs);    //  cancels tasks still running
        sf_unacked_destroy (&self->unacked);
        sf_joblog_destroy (&self->joblog);
        sf_pruneq_destroy (&self->prune_queue);     //  unanswered: retention resends
        zlistx_destroy (&self->prunes);     //  waits for each one's current step
        zactor_destroy (&self->reconcile);  //  waits for its current step
        sf_wire_free (&self->reconcile_next);
        zhashx_destroy (&self->reconcile_seen);
        zhashx_destroy (&self->restores);
        sf_imgstore_destroy (&self->images);
        zactor_destroy (&self->sweeper);
        sf_leftover_destroy (&self->leftovers);
        sf_stor_destroy (&self->stor_owned);
        sf_conv_destroy (&self->conv_owned);
        zactor_destroy (&self->scanner);
        zsock_destroy (&self->dealer);
        sf_wire_free (&self->inventory);
        zframe_destroy (&self->inventory_sent);
        sf_agent_cfg_release (&self->cfg);
        free (self);
        *self_p = NULL;
    }
}

int
sf_agent_run (sf_agent_t *self, int stop_fd, zsock_t *pipe)
{
    assert (self);
    zloop_t *loop = zloop_new ();
    zloop_set_nonstop (loop, true);     //  we handle signals ourselves
    self->loop = loop;
    zloop_reader (loop, self->dealer, s_on_scheduler, self);
    zloop_reader (loop, zactor_sock (self->scanner), s_on_scanner, self);
    if (pipe)
        zloop_reader (loop, pipe, s_on_pipe, self);
    zmq_pollitem_t signal_item = { NULL, stop_fd, ZMQ_POLLIN, 0 };
    if (stop_fd != -1)
        zloop_poller (loop, &signal_item, s_on_signal, self);
    self->heartbeat_timer = zloop_timer (loop, (size_t) self->heartbeat_ms, 0,
                                         s_on_heartbeat, self);
    zloop_timer (loop, (size_t) self->cfg.inventory_interval, 0, s_on_inventory_timer, self);
    zloop_timer (loop, 100, 0, s_on_tick, self);
    SF_NOTICE (&self->ctx, "snapfleet-worker %s started: scheduler '%s', hypervisor '%s', "
               "rbd %s", SF_VERSION, self->cfg.scheduler, self->cfg.uri,
               self->stor ? self->cfg.rbd_mode : "off");
    s_send_hello (self);
    s_scan (self);
    if (self->sweeper)
        zstr_send (self->sweeper, "SWEEP");     //  what a killed run left
    zloop_start (loop);
    zloop_destroy (&loop);
    self->loop = NULL;
    SF_NOTICE (&self->ctx, "stopped");
    return 0;
}

size_t
sf_agent_invalid (sf_agent_t *self)
{
    assert (self);
    return self->invalid;
}

void
sf_agent_actor (zsock_t *pipe, void *args)
{
    const sf_agent_actor_args_t *actor_args = (const sf_agent_actor_args_t *) args;
    sf_err_t err = SF_ERR_INIT;
    sf_agent_t *self = actor_args->parts
                     ? sf_agent_new_with (actor_args->cfg, actor_args->parts, &err)
                     : sf_agent_new (actor_args->cfg, &err);
    zsock_signal (pipe, 0);
    if (!self) {
        SF_ERROR (NULL, "%s", err.text);
        return;
    }
    sf_agent_run (self, -1, pipe);
    sf_agent_destroy (&self);
}
