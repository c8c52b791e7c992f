/*  =========================================================================
    sf_agent - the worker object

    Events and results of tasks are forwarded as the encoded frames the
    tasks made; the job table (sf_jobtab) decides fencing. Stopping (a
    signal, or $TERM in actor mode) cancels every task and keeps the loop
    running until their results are out, bounded by S_STOP_GRACE_MS.
    =========================================================================
*/
#include "sf_worker_classes.h"
#include "sf_conv_fake.h"                   //  the self-test's doubles
#include "sf_stor_fake.h"

#include <dirent.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define S_KEEP          1024        //  finished jobs remembered for fencing
#define S_STOP_GRACE_MS 60000       //  jobs get this long to wind down
#define S_SETTLE_MS     10000       //  a cleaned leftover waits for late creations

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
    sf_imgstore_t *images;      //  Owned, the image store every task and prune borrows
    sf_stor_t *stor;            //  RBD storage (a part); NULL = RBD support off
    sf_conv_t *conv;            //  the disk converter (a part)
    sf_stor_t *stor_owned;      //  Owned: the parts sf_agent_new built
    sf_conv_t *conv_owned;
    sf_leftover_t *leftovers;   //  Owned, the Ceph objects journal
    char ceph_cluster [64];     //  the cluster's fsid once known, "" before
    zactor_t *sweeper;          //  Owned, retries leftovers; NULL when RBD is off
    zlistx_t *prunes;           //  Owned, running image deletions (zactor_t *)
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
//  RBD support on) and the jobs it runs now, so that the scheduler fails
//  the ones a restarted worker lost and no others. It names the image
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
    hello.store = self->cfg.store.name;
    hello.ceph_cluster = (char *) s_ceph_cluster (self);
    hello.scratch_free = s_scratch_free (self);
    sf_envelope_t env = sf_wire_envelope (SF_BODY_HELLO, &hello);
    s_send (self, &env);
    if (self->inventory_sent)
        s_send_frame (self, self->inventory_sent);
    SF_INFO (&self->ctx, "hello sent to '%s' (%zu running job(s))", self->cfg.scheduler,
             n_running);
    free (running);
    zlistx_destroy (&ids);
}

//  Refuse an assign at once with a failed result

static void
s_reject (sf_agent_t *self, const sf_job_assign_t *assign, int code, const char *text)
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
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_RESULT, &result);
    s_send (self, &env);
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
    if (env->job_event->phase == SF_PHASE_UPLOAD_WAIT) {
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
    s_send_frame (self, frame);
    if (streq (kind, "EVENT"))
        s_on_task_event (self, sock, frame);
    else
    if (streq (kind, "RESULT")) {
        const char *job_id = sf_jobtab_job_of (self->jobs, sock);
        assert (job_id);
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
            s_send_frame (self, sf_jobtab_result (self->jobs, assign->job_id));
            return true;
        default:
            snprintf (text, sizeof (text), "attempt %u of job '%s' still runs on node '%s'",
                      known, assign->job_id, self->cfg.name);
            s_reject (self, assign, SF_EBUSY, text);
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

static void
s_start_job (sf_agent_t *self, const sf_job_assign_t *assign)
{
    sf_task_args_t args = {
        assign->job_id, assign->attempt, assign->instance_uuid, assign->strategy,
        self->cfg.uri, self->cfg.workdir, self->exe, self->run_id, self->cfg.max_pause,
        self->images, self->conv,
        self->stor, self->leftovers, self->cfg.rbd_mode, self->cfg.rbd_clone_pool, false,
        assign->wait_upload_grant, assign->catalog_id
    };
    zactor_t *task = sf_task_new (&args);
    zloop_reader (self->loop, zactor_sock (task), s_on_task, self);
    sf_jobtab_start (self->jobs, assign->job_id, assign->attempt, assign->instance_uuid,
                     &task);
    sf_logctx_t ctx = { assign->job_id, self->cfg.name, assign->instance_uuid };
    SF_INFO (&ctx, "job started: attempt %u, strategy '%s'", assign->attempt,
             assign->strategy);
}

static void
s_on_assign (sf_agent_t *self, const sf_job_assign_t *assign)
{
    if (s_fence (self, assign))
        return;
    sf_err_t err = SF_ERR_INIT;
    if (s_admit (self, assign, &err))
        s_reject (self, assign, err.code, err.text);
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
    //  and the scheduler frees what a cut gave back only then
    sf_rate_applied_t applied = sf_wire_rate_applied (grant);
    sf_envelope_t env = sf_wire_envelope (SF_BODY_RATE_APPLIED, &applied);
    s_send (self, &env);
}

//  --------------------------------------------------------------------------
//  Image deletion (retention), in sf_prune actors; their answers are
//  forwarded as they come

static int
s_on_prune (zloop_t *loop, zsock_t *sock, void *arg)
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
    zactor_t *prune = (zactor_t *) zlistx_first (self->prunes);
    for (; prune; prune = (zactor_t *) zlistx_next (self->prunes))
        if (zactor_sock (prune) == sock) {
            zlistx_delete (self->prunes, zlistx_cursor (self->prunes));
            break;
        }
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
    sf_envelope_t env = sf_wire_envelope (SF_BODY_HEARTBEAT, &beat);
    s_send (self, &env);
    return 0;
}

static void
s_on_welcome (sf_agent_t *self, const sf_welcome_t *welcome)
{
    SF_INFO (&self->ctx, "welcomed by the scheduler (heartbeat %u ms)", welcome->heartbeat_ms);
    int64_t period = welcome->heartbeat_ms ? welcome->heartbeat_ms : self->cfg.heartbeat;
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
            s_on_image_delete (self, env->image_delete);
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
        ||  streq (entry->d_name, "leftovers") || entry->d_type != DT_DIR)
            continue;
        char *path = zsys_sprintf ("%s/%s", self->cfg.workdir, entry->d_name);
        if (sf_task_scratch_clean (path) == 0)
            SF_NOTICE (&self->ctx, "removed stale scratch '%s'", path);
        else
            SF_WARN (&self->ctx, "'%s' in the work directory is not a job's scratch; "
                     "left in place", path);
        zstr_free (&path);
    }
    closedir (dir);
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
    if ((parts.conv = sf_conv_new (NULL, err))
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
    self->prunes = zlistx_new ();
    zlistx_set_destructor (self->prunes, (zlistx_destructor_fn *) zactor_destroy);
    self->heartbeat_ms = self->cfg.heartbeat;
    if (len <= 0) {
        sf_err_set (err, SF_EIO, "cannot find this program: %s", strerror (errno));
        sf_agent_destroy (&self);
        return NULL;
    }
    if (!(self->images = sf_imgstore_new (&self->cfg.store, err))
    ||  s_prepare_workdir (self, err) || s_open_storage (self, err)) {
        sf_agent_destroy (&self);
        return NULL;
    }
    self->dealer = zsock_new (ZMQ_DEALER);
    zsock_set_sndtimeo (self->dealer, 0);       //  never block the loop
    zsock_set_linger (self->dealer, 2000);      //  let final results out
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
        zlistx_destroy (&self->prunes);     //  waits for each one's current step
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

//  --------------------------------------------------------------------------
//  Self test: the agent as an actor against an in-process ROUTER playing
//  the scheduler; libvirt's test:// mock with real disk files; the fake
//  converter where a job must be slow enough to be seen running.

typedef struct {
    zsock_t *router;
    zframe_t *peer;             //  the agent's routing id
    int heartbeats;
    int applied;                //  RateApplied answers seen
    uint64_t applied_rate;      //  the last one's rate
    zlistx_t *deferred;         //  job messages of other jobs, for later
} sched_t;

//  Next message from the socket that is not a heartbeat or a RateApplied
static sf_envelope_t *
s_test_recv (sched_t *sched)
{
    while (true) {
        zsock_set_rcvtimeo (sched->router, 20000);
        zframe_t *peer = NULL;
        sf_err_t err = SF_ERR_INIT;
        sf_envelope_t *env = sf_wire_recv (zsock_resolve (sched->router), &peer, &err);
        assert (env);
        zframe_destroy (&sched->peer);
        sched->peer = peer;
        if (env->body_case == SF_BODY_RATE_APPLIED) {
            sched->applied++;
            sched->applied_rate = env->rate_applied->rate_bps;
            sf_wire_free (&env);
            continue;
        }
        if (env->body_case != SF_BODY_HEARTBEAT)
            return env;
        assert (env->heartbeat->scratch_free > 0);
        sched->heartbeats++;
        sf_wire_free (&env);
    }
}

static const char *
s_test_job_of (sf_envelope_t *env)
{
    if (env->body_case == SF_BODY_JOB_EVENT)
        return env->job_event->job_id;
    if (env->body_case == SF_BODY_JOB_RESULT)
        return env->job_result->job_id;
    return NULL;
}

//  Next event or result of job. Messages of jobs running concurrently
//  are kept for later; inventories (rescans after a job) are skipped.
static sf_envelope_t *
s_test_next (sched_t *sched, const char *job)
{
    sf_envelope_t *env = (sf_envelope_t *) zlistx_first (sched->deferred);
    for (; env; env = (sf_envelope_t *) zlistx_next (sched->deferred))
        if (streq (s_test_job_of (env), job))
            return (sf_envelope_t *) zlistx_detach_cur (sched->deferred);
    while (true) {
        env = s_test_recv (sched);
        const char *owner = s_test_job_of (env);
        if (owner && streq (owner, job))
            return env;
        if (owner)
            zlistx_add_end (sched->deferred, env);
        else {
            assert (env->body_case == SF_BODY_INVENTORY);
            sf_wire_free (&env);
        }
    }
}

//  Next event of job must be phase
static void
s_test_event (sched_t *sched, const char *job, int phase)
{
    sf_envelope_t *env = s_test_next (sched, job);
    assert (env->body_case == SF_BODY_JOB_EVENT && (int) env->job_event->phase == phase);
    sf_wire_free (&env);
}

static void
s_test_assign_with (sched_t *sched, const char *job, uint32_t attempt, const char *uuid,
                    const char *strategy, bool wait_upload_grant)
{
    sf_job_assign_t assign = SF_JOB_ASSIGN_INIT;
    assign.job_id = (char *) job;
    assign.attempt = attempt;
    assign.instance_uuid = (char *) uuid;
    assign.strategy = (char *) strategy;
    assign.wait_upload_grant = wait_upload_grant;
    assign.catalog_id = SF_TEST_CATALOG;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_ASSIGN, &assign);
    assert (sf_wire_send (zsock_resolve (sched->router), sched->peer, &env, NULL) == 0);
}

static void
s_test_assign (sched_t *sched, const char *job, uint32_t attempt, const char *uuid,
               const char *strategy)
{
    s_test_assign_with (sched, job, attempt, uuid, strategy, false);
}

static void
s_test_grant (sched_t *sched, const char *job, uint32_t attempt, uint64_t rate)
{
    sf_job_grant_t grant = SF_JOB_GRANT_INIT;
    grant.job_id = (char *) job;
    grant.attempt = attempt;
    grant.rate_bps = rate;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_GRANT, &grant);
    assert (sf_wire_send (zsock_resolve (sched->router), sched->peer, &env, NULL) == 0);
}

//  Result of job; the phases of its events before it are collected
static sf_envelope_t *
s_test_result (sched_t *sched, const char *job, char *phases)
{
    size_t count = 0;
    while (true) {
        sf_envelope_t *env = s_test_next (sched, job);
        if (env->body_case == SF_BODY_JOB_RESULT) {
            phases [count] = 0;
            return env;
        }
        phases [count++] = "?qprcudfw" [env->job_event->phase];
        sf_wire_free (&env);
    }
}

static void
s_test_refused (sched_t *sched, const char *job, uint32_t attempt, const char *uuid,
                const char *strategy, int code, const char *text)
{
    char phases [16];
    s_test_assign (sched, job, attempt, uuid, strategy);
    sf_envelope_t *env = s_test_result (sched, job, phases);
    sf_job_result_t *res = env->job_result;
    assert (streq (res->job_id, job) && res->attempt == attempt && !res->ok);
    assert (res->error && res->error->code == code && strstr (res->error->text, text));
    assert (streq (phases, ""));
    sf_wire_free (&env);
}

static void
s_test_connect_with (sched_t *sched, size_t strategies, size_t running, const char *job);

static void
s_test_connect (sched_t *sched)
{
    s_test_connect_with (sched, 4, 0, NULL);
}

//  Hello (with that many strategies, and running jobs: job if not NULL)
//  and Inventory; messages of running jobs are kept for later

static void
s_test_connect_with (sched_t *sched, size_t strategies, size_t running, const char *job)
{
    sf_envelope_t *env = s_test_recv (sched);
    while (env->body_case != SF_BODY_HELLO) {   //  a rescan, a job's events
        if (s_test_job_of (env))
            zlistx_add_end (sched->deferred, env);
        else
            sf_wire_free (&env);
        env = s_test_recv (sched);
    }
    assert (streq (env->hello->node, "node-t") && env->hello->max_jobs == 1);
    assert (env->hello->n_strategies == strategies);
    assert (streq (env->hello->strategies [0], "file-cold"));
    assert (strategies == 2 || streq (env->hello->strategies [2], "rbd"));
    assert (env->hello->n_running_jobs == running);
    assert (!job || streq (env->hello->running_jobs [0], job));
    assert (streq (env->hello->store, "dir@node-t") && env->hello->scratch_free > 0);
    assert (streq (env->hello->ceph_cluster, strategies == 4 ? SF_STOR_FAKE_FSID : ""));
    sf_wire_free (&env);
    env = s_test_recv (sched);
    while (s_test_job_of (env)) {
        zlistx_add_end (sched->deferred, env);
        env = s_test_recv (sched);
    }
    assert (env->body_case == SF_BODY_INVENTORY);
    assert (env->inventory->n_instances == 7);
    const sf_instance_t *run = sf_scan_find (env, SF_TEST_RUN_UUID);
    assert (run && streq (run->name, "run") && run->state == SF_STATE_RUNNING);
    assert (streq (run->storage_class, "file") && run->n_disks == 2);
    assert (run->disks [0]->virtual_size == 4 * 1024 * 1024);
    assert (run->disks [0]->n_backing_chain == 1);
    sf_wire_free (&env);
}

static void
s_test_jobs (sched_t *sched)
{
    char phases [16];
    //  A job runs; meanwhile: over the limit, repeated, stale attempts
    s_test_assign (sched, "J1", 2, SF_TEST_RUN_UUID, "file-cold");
    s_test_refused (sched, "J2", 1, SF_TEST_OFF_UUID, "offline", SF_EBUSY, "max_jobs is 1");
    s_test_assign (sched, "J1", 2, SF_TEST_RUN_UUID, "file-cold");
    s_test_assign (sched, "J1", 1, SF_TEST_RUN_UUID, "file-cold");
    sf_envelope_t *env = s_test_result (sched, "J1", phases);
    assert (env->job_result->ok && env->job_result->resumed && streq (phases, "qprcu"));
    assert (env->job_result->attempt == 2 && env->job_result->n_images == 1);
    char *image = strdup (env->job_result->images [0]->id);
    sf_wire_free (&env);
    //  A finished attempt assigned again: the same result, no second run
    s_test_assign (sched, "J1", 2, SF_TEST_RUN_UUID, "file-cold");
    env = s_test_result (sched, "J1", phases);
    assert (env->job_result->ok && streq (phases, ""));
    assert (streq (env->job_result->images [0]->id, image));
    sf_wire_free (&env);
    free (image);
    //  What does not fit is refused at once, with a clear error
    s_test_refused (sched, "J5", 1, "00000000-0000-0000-0000-00000000dead", "file-cold",
                    SF_ENOENT, "unknown instance");
    s_test_refused (sched, "J6", 1, SF_TEST_RUN_UUID, "offline", SF_EINVAL,
                    "'offline' does not fit instance 'run' (storage class file, running)");
    s_test_refused (sched, "J7", 1, SF_TEST_OFF_UUID, "file-cold", SF_EINVAL,
                    "'file-cold' does not fit instance 'off' (storage class file, shutoff)");
    s_test_refused (sched, "J8", 1, SF_TEST_RUN_UUID, "bogus", SF_EINVAL, "unknown strategy");
    s_test_refused (sched, "J9", 1, SF_TEST_RUN_UUID, "rbd", SF_EINVAL,
                    "'rbd' does not fit instance 'run' (storage class file, running)");
    //  An RBD job (fake cluster): snapshots, clones; the Hello sent while
    //  it runs lists it
    s_test_assign (sched, "J10", 1, SF_TEST_CEPH_UUID, "rbd");
    s_test_event (sched, "J10", SF_PHASE_QUEUED);
    sf_error_info_t error = SF_ERROR_INFO_INIT;
    error.code = SF_ENODE;
    error.text = "unknown peer, send hello";
    sf_envelope_t error_env = sf_wire_envelope (SF_BODY_ERROR, &error);
    assert (sf_wire_send (zsock_resolve (sched->router), sched->peer, &error_env, NULL) == 0);
    s_test_connect_with (sched, 4, 1, "J10");
    env = s_test_result (sched, "J10", phases);
    assert (env->job_result->ok && streq (env->job_result->consistency, "frozen"));
    assert (env->job_result->n_images == 2);
    assert (streq (env->job_result->images [0]->store, "rbd"));
    sf_wire_free (&env);
    //  Cancelled while paused
    s_test_assign (sched, "J3", 1, SF_TEST_RUN_UUID, "file-cold");
    s_test_event (sched, "J3", SF_PHASE_QUEUED);
    s_test_event (sched, "J3", SF_PHASE_PAUSED);
    sf_job_cancel_t cancel = SF_JOB_CANCEL_INIT;
    cancel.job_id = "J3";
    cancel.attempt = 1;
    sf_envelope_t cancel_env = sf_wire_envelope (SF_BODY_JOB_CANCEL, &cancel);
    assert (sf_wire_send (zsock_resolve (sched->router), sched->peer, &cancel_env, NULL) == 0);
    env = s_test_result (sched, "J3", phases);
    assert (!env->job_result->ok && env->job_result->error->code == SF_ECANCELED);
    assert (env->job_result->resumed);
    sf_wire_free (&env);
}

static void
s_test_cancel (sched_t *sched, const char *job, uint32_t attempt)
{
    sf_job_cancel_t cancel = SF_JOB_CANCEL_INIT;
    cancel.job_id = (char *) job;
    cancel.attempt = attempt;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_CANCEL, &cancel);
    assert (sf_wire_send (zsock_resolve (sched->router), sched->peer, &env, NULL) == 0);
}

//  Jobs that wait for their upload grant: grants fenced by attempt, held
//  when early, later ones change the rate; cancelled while waiting; clone
//  mode never waits

static void
s_test_uploads (sched_t *sched, char *image_id, char *image_path)
{
    char phases [16];
    s_test_grant (sched, "J99", 1, 0);              //  not ours: dropped
    s_test_assign_with (sched, "J20", 2, SF_TEST_RUN_UUID, "file-cold", true);
    s_test_event (sched, "J20", SF_PHASE_QUEUED);
    s_test_event (sched, "J20", SF_PHASE_PAUSED);
    s_test_event (sched, "J20", SF_PHASE_RESUMED);
    s_test_event (sched, "J20", SF_PHASE_CONVERTED);
    sf_envelope_t *env = s_test_next (sched, "J20");
    assert (env->body_case == SF_BODY_JOB_EVENT);
    assert (env->job_event->phase == SF_PHASE_UPLOAD_WAIT && env->job_event->bytes > 0);
    uint64_t bytes = env->job_event->bytes;
    sf_wire_free (&env);
    s_test_grant (sched, "J20", 1, 0);              //  stale attempt: dropped
    zclock_sleep (300);
    s_test_grant (sched, "J20", 2, 1 << 20);
    env = s_test_result (sched, "J20", phases);
    assert (env->job_result->ok && streq (phases, "u"));
    assert (env->job_result->bytes == bytes && env->job_result->n_images == 1);
    snprintf (image_id, 64, "%s", env->job_result->images [0]->id);
    snprintf (image_path, 512, "%s", env->job_result->images [0]->path);
    sf_wire_free (&env);
    s_test_grant (sched, "J20", 2, 0);              //  finished: dropped
    //  A grant before the job asks is held for it; a second one is a rate
    s_test_assign_with (sched, "J21", 1, SF_TEST_RUN_UUID, "file-cold", true);
    s_test_grant (sched, "J21", 1, 0);
    env = s_test_result (sched, "J21", phases);
    assert (env->job_result->ok && streq (phases, "qprcwu"));
    sf_wire_free (&env);
    s_test_assign_with (sched, "J22", 1, SF_TEST_RUN_UUID, "file-cold", true);
    s_test_event (sched, "J22", SF_PHASE_QUEUED);
    s_test_event (sched, "J22", SF_PHASE_PAUSED);
    s_test_event (sched, "J22", SF_PHASE_RESUMED);
    s_test_event (sched, "J22", SF_PHASE_CONVERTED);
    s_test_event (sched, "J22", SF_PHASE_UPLOAD_WAIT);
    int applied = sched->applied;
    s_test_grant (sched, "J22", 1, 1000);
    s_test_grant (sched, "J22", 1, 0);              //  RATE: no cancel
    env = s_test_result (sched, "J22", phases);
    assert (env->job_result->ok && streq (phases, "u"));
    sf_wire_free (&env);
    //  Both grants were answered, in order, before the result
    assert (sched->applied == applied + 2 && sched->applied_rate == 0);
    //  Cancelled while waiting
    s_test_assign_with (sched, "J23", 1, SF_TEST_RUN_UUID, "file-cold", true);
    s_test_event (sched, "J23", SF_PHASE_QUEUED);
    s_test_event (sched, "J23", SF_PHASE_PAUSED);
    s_test_event (sched, "J23", SF_PHASE_RESUMED);
    s_test_event (sched, "J23", SF_PHASE_CONVERTED);
    s_test_event (sched, "J23", SF_PHASE_UPLOAD_WAIT);
    s_test_cancel (sched, "J23", 1);
    env = s_test_result (sched, "J23", phases);
    assert (!env->job_result->ok && env->job_result->error->code == SF_ECANCELED);
    assert (strstr (env->job_result->error->text, "waiting for an upload grant"));
    assert (env->job_result->resumed && streq (phases, ""));
    sf_wire_free (&env);
    //  Clone mode: nothing to store, no wait
    s_test_assign_with (sched, "J24", 1, SF_TEST_CEPH_UUID, "rbd", true);
    env = s_test_result (sched, "J24", phases);
    assert (env->job_result->ok && streq (phases, "qprcu"));
    sf_wire_free (&env);
}

//  Next ImageDeleted (inventories skipped, job messages kept)
static sf_envelope_t *
s_test_deleted (sched_t *sched)
{
    while (true) {
        sf_envelope_t *env = s_test_recv (sched);
        if (env->body_case == SF_BODY_IMAGE_DELETED)
            return env;
        if (s_test_job_of (env))
            zlistx_add_end (sched->deferred, env);
        else
            sf_wire_free (&env);
    }
}

static void
s_test_delete (sched_t *sched, const char *request, const char *store, const char *id,
               const char *job, int code)
{
    sf_image_t image = SF_IMAGE_INIT;
    image.store = (char *) store;
    image.id = (char *) id;
    sf_image_delete_t request_msg = SF_IMAGE_DELETE_INIT;
    request_msg.request_id = (char *) request;
    request_msg.image = &image;
    request_msg.catalog_id = SF_TEST_CATALOG;
    request_msg.job_id = (char *) job;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_IMAGE_DELETE, &request_msg);
    assert (sf_wire_send (zsock_resolve (sched->router), sched->peer, &env, NULL) == 0);
    sf_envelope_t *answer = s_test_deleted (sched);
    sf_image_deleted_t *deleted = answer->image_deleted;
    assert (streq (deleted->request_id, request));
    assert (deleted->image && streq (deleted->image->id, id));
    assert (code ? deleted->error && deleted->error->code == code
                 : !deleted->error || deleted->error->code == 0);
    sf_wire_free (&answer);
}

static void
s_test_protocol (sched_t *sched, zactor_t *agent)
{
    //  Garbage is counted and dropped; the agent keeps serving
    zmsg_t *msg = zmsg_new ();
    zmsg_append (msg, &(zframe_t *) { zframe_dup (sched->peer) });
    zmsg_addstr (msg, "garbage");
    zmsg_send (&msg, sched->router);
    sf_envelope_t env = SF_ENVELOPE_INIT;
    sf_hello_t hello = SF_HELLO_INIT;
    hello.node = "sched";
    env.body_case = SF_BODY_HELLO;
    env.hello = &hello;
    assert (sf_wire_send (zsock_resolve (sched->router), sched->peer, &env, NULL) == 0);
    zclock_sleep (100);
    zstr_send (agent, "INVALID");
    char *count = zstr_recv (agent);
    assert (count && streq (count, "2"));
    zstr_free (&count);
    //  The scheduler forgot us: Hello + Inventory again
    sf_error_info_t error = SF_ERROR_INFO_INIT;
    error.code = SF_ENODE;
    error.text = "unknown peer, send hello";
    env.body_case = SF_BODY_ERROR;
    env.error = &error;
    assert (sf_wire_send (zsock_resolve (sched->router), sched->peer, &env, NULL) == 0);
    s_test_connect (sched);
    sf_welcome_t welcome = SF_WELCOME_INIT;
    welcome.heartbeat_ms = 50;
    env.body_case = SF_BODY_WELCOME;
    env.welcome = &welcome;
    assert (sf_wire_send (zsock_resolve (sched->router), sched->peer, &env, NULL) == 0);
}

void
sf_agent_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_agent: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    char dir [] = "/tmp/sf-agent-test-XXXXXX";
    assert (mkdtemp (dir));
    sf_agent_cfg_t cfg;
    char *path = zsys_sprintf ("%s/worker.conf", dir);
    FILE *file;
    char *uri = sf_task_test_node (dir);
    char *work = zsys_sprintf ("%s/work", dir);
    char *images = zsys_sprintf ("%s/images", dir);
    file = fopen (path, "w");
    fprintf (file, "[worker]\nname = node-t\nscheduler = inproc://sf-agent-test\n"
             "max_jobs = 1\nworkdir = %s\nheartbeat = 100ms\ninventory_interval = 200ms\n"
             "[hypervisor]\nuri = %s\n[imagestore]\ndriver = dir\npath = %s\n"
             "[pause]\nmax_pause = 1m\n[log]\nlevel = err\n"
             "[storage.rbd]\nceph_conf = %s\nop_timeout = 2s\n"
             "[security]\ninsecure = true\n", work, uri, images, path);
    fclose (file);
    assert (sf_agent_cfg_load (&cfg, path, &err) == 0);
    assert (cfg.max_jobs == 1 && cfg.heartbeat == 100 && cfg.max_pause == 60000);
    sf_stor_fake_t *fake = sf_stor_fake_new ();
    sf_stor_fake_add (fake, "rbd/ceph-a", 1 << 20);
    sf_stor_fake_add (fake, "rbd/ceph-b", 1 << 20);
    sf_stor_cfg_t stor_cfg = { NULL, cfg.rbd_ceph_conf, cfg.rbd_client_id, cfg.rbd_keyring,
                               cfg.rbd_op_timeout };
    sf_agent_parts_t parts = {
        sf_stor_new_with (&stor_cfg, &sf_stor_fake_driver, fake, &err),
        sf_conv_new_with (&sf_conv_fake_driver)
    };
    assert (parts.stor);
    sf_agent_actor_args_t actor_args = { &cfg, &parts };
    //  Stale scratch of a killed run is cleaned at start
    //  (and only that: a directory with other files stays)
    assert (zsys_dir_create ("%s/J0", work) == 0 && zsys_dir_create ("%s/keep", work) == 0);
    char *stale_file = zsys_sprintf ("%s/J0/vda.qcow2.tmp", work);
    char *kept_file = zsys_sprintf ("%s/keep/notes.txt", work);
    FILE *touch = fopen (stale_file, "w");
    fclose (touch);
    touch = fopen (kept_file, "w");
    fclose (touch);

    sched_t sched = { .router = zsock_new_router ("@inproc://sf-agent-test"),
                      .deferred = zlistx_new () };
    zlistx_set_destructor (sched.deferred, (zlistx_destructor_fn *) sf_wire_free);
    zactor_t *agent = zactor_new (sf_agent_actor, &actor_args);
    s_test_connect (&sched);
    s_test_jobs (&sched);
    char image_id [64], image_path [512];
    s_test_uploads (&sched, image_id, image_path);
    //  Retention: a dir image goes, for the job that made it only (and
    //  again: already gone is fine); J24's clones go with their
    //  snapshots, not its source images; an unknown store is an error
    assert (zsys_file_exists (image_path));
    s_test_delete (&sched, "D0", "dir", image_id, "J24", SF_EINVAL);
    assert (zsys_file_exists (image_path));
    s_test_delete (&sched, "D1", "dir", image_id, "J20", 0);
    assert (!zsys_file_exists (image_path));
    s_test_delete (&sched, "D2", "dir", image_id, "J20", 0);
    size_t objects = sf_stor_fake_objects (fake);
    s_test_delete (&sched, "D6", "rbd", "rbd/ceph-a", "J24", SF_EINVAL);
    assert (sf_stor_fake_has (fake, "rbd/ceph-a"));
    s_test_delete (&sched, "D3", "rbd", "rbd/ceph-a-snapfleet-" SF_TEST_CATALOG "-J24", "J24",
                   0);
    s_test_delete (&sched, "D4", "rbd", "rbd/ceph-b-snapfleet-" SF_TEST_CATALOG "-J24", "J24",
                   0);
    assert (sf_stor_fake_objects (fake) == objects - 4);
    s_test_delete (&sched, "D5", "glance", "x", "J1", SF_EINVAL);
    s_test_protocol (&sched, agent);
    assert (sched.heartbeats > 0);
    char *stale = zsys_sprintf ("%s/J0", work);
    assert (!zsys_file_exists (stale) && zsys_file_exists (kept_file));
    zstr_free (&stale_file);
    zstr_free (&kept_file);

    //  Stopping with a job paused: the guest is resumed, the result sent
    s_test_assign (&sched, "J4", 1, SF_TEST_RUN_UUID, "file-cold");
    s_test_event (&sched, "J4", SF_PHASE_QUEUED);
    s_test_event (&sched, "J4", SF_PHASE_PAUSED);
    zactor_destroy (&agent);
    char phases [16];
    sf_envelope_t *env = s_test_result (&sched, "J4", phases);
    assert (!env->job_result->ok && env->job_result->error->code == SF_ECANCELED);
    assert (strstr (env->job_result->error->text, "guest resumed"));
    sf_wire_free (&env);
    sf_stor_destroy (&parts.stor);
    for (int i = 0; i < 500 && sf_stor_fake_active (fake); i++)
        zclock_sleep (10);
    assert (sf_stor_fake_objects (fake) == 4);      //  J10's snapshots and clones

    //  RBD support off: Hello offers no rbd/mixed; RBD assigns are refused
    free (cfg.rbd_ceph_conf);
    cfg.rbd_ceph_conf = strdup ("");
    agent = zactor_new (sf_agent_actor, &actor_args);
    s_test_connect_with (&sched, 2, 0, NULL);
    s_test_refused (&sched, "J11", 1, SF_TEST_CEPH_UUID, "rbd", SF_ENOTSUP,
                    "strategy 'rbd' needs RBD support, which is off on node 'node-t'");
    s_test_refused (&sched, "J12", 1, SF_TEST_CEPHOFF_UUID, "offline", SF_ENOTSUP,
                    "instance 'cephoff' has RBD disks, but RBD support is off");
    zactor_destroy (&agent);
    sf_conv_destroy (&parts.conv);
    sf_stor_fake_destroy (&fake);

    assert (zlistx_size (sched.deferred) == 0);
    zlistx_destroy (&sched.deferred);
    zframe_destroy (&sched.peer);
    zsock_destroy (&sched.router);
    sf_agent_cfg_release (&cfg);
    char *cmd = zsys_sprintf ("rm -rf %s", dir);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    zstr_free (&stale);
    zstr_free (&images);
    zstr_free (&work);
    zstr_free (&uri);
    zstr_free (&path);
    //  @end
    printf ("OK\n");
}
