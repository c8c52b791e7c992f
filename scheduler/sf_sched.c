/*  =========================================================================
    sf_sched - the scheduler object and the worker side of the protocol

    Rules this file keeps:
    - every state change is committed (sf_store/sf_jobs) before the
      scheduler acts on it: a job row exists before its JobAssign leaves,
      a job whose lease ran out has failed before its JobCancel leaves;
    - nothing a worker sends can stop the loop: invalid input is logged,
      counted and dropped;
    - the ROUTER is non-blocking and mandatory: a send to a peer that is
      gone or not reading fails at once instead of stalling every node;
    - every JobEvent, JobResult and ImageDeleted handled for good (applied,
      or dropped for good: fenced, stale, a replay) is acknowledged, in one
      Acks per node after the commit of its batch; one that failed on a
      database error is not, nor anything of a batch whose commit failed:
      the worker replays it.
    =========================================================================
*/
#include "sf_sched_classes.h"

struct _sf_sched_t {
    sf_store_t *store;          //  Owned
    sf_jobs_t *jobs;            //  Owned
    sf_peers_t *peers;          //  Owned
    sf_admin_t *admin;          //  Owned
    sf_liveness_t *liveness;    //  Owned
    zsock_t *router;            //  Owned: workers connect here
    zloop_t *loop;              //  Owned while running, else NULL
    zsock_t *pipe;              //  Borrowed from the actor, or NULL
    int64_t heartbeat_ms;
    sf_stats_t stats;           //  Lent to admin
    sf_dispatch_t *dispatch;    //  Owned: admission, assignments, grants
    sf_bulk_t *bulk;            //  Owned: bulks and their jobs
    sf_schedules_t *schedules;  //  Owned
    sf_retention_t *retention;  //  Owned
    sf_history_t *history;      //  Owned: forgets old jobs and bulks
    sf_outbox_t *outbox;        //  Owned: what we send to workers
    sf_gc_t *gc;                //  Owned: the reconciler
    sf_auth_t *auth;            //  Owned: ZAP handler, NULL if insecure
    zcert_t *cert;              //  Owned: our key pair, NULL if insecure
    zhashx_t *refused;          //  Owned: connections whose hello was refused
    int64_t started_ms;         //  Monotonic ms the scheduler started
    int64_t node_timeout_ms;
    bool schedules_started;     //  Missed runs caught up
};

SF_LOG_MODULE ("sched.core");

//  --------------------------------------------------------------------------
//  Construction

static zsock_t *
s_bind_router (sf_sched_t *self, const char *endpoint, int max_size, const char *role,
               sf_err_t *err)
{
    zsock_t *sock = zsock_new (ZMQ_ROUTER);
    assert (sock);
    if (self->auth)
        sf_auth_server (self->auth, sock, self->cert, role);
    zsock_set_router_mandatory (sock, 1);
    zsock_set_sndtimeo (sock, 0);
    zsock_set_linger (sock, 0);
    //  What a peer may have queued here before its connection is read no
    //  further (TCP pushes back on it): bounds the memory of a backlog
    sf_auth_bound (sock, max_size, SF_AUTH_WORKER_HWM, SF_AUTH_WORKER_SNDHWM);
    if (zsock_bind (sock, "%s", endpoint) == -1) {
        sf_err_set (err, SF_EIO, "cannot bind %s endpoint '%s': %s", role, endpoint,
                    zmq_strerror (zmq_errno ()));
        zsock_destroy (&sock);
        return NULL;
    }
    return sock;
}

//  CURVE: our key pair and the two allow-lists, or plaintext on loopback
//  only (insecure = true), with a warning

static int
s_secure (sf_sched_t *self, const sf_schedcfg_t *cfg, sf_err_t *err)
{
    if (cfg->insecure) {
        const char *endpoints [] = { cfg->bind, cfg->admin_bind, NULL };
        for (int i = 0; endpoints [i]; i++)
            if (!sf_cert_is_local (endpoints [i]))
                return sf_err_set (err, SF_EINVAL, "insecure (plaintext) endpoint '%s' "
                                   "is not loopback or ipc://", endpoints [i]);
        SF_WARN (NULL, "security.insecure = true: the sockets are PLAINTEXT and anyone "
                 "on this host can act as any worker or admin");
        return 0;
    }
    if (!(self->cert = sf_cert_load (cfg->cert, true, err))
    ||  !(self->auth = sf_auth_new (err))
    ||  sf_auth_allow (self->auth, "worker", cfg->workers, err)
    ||  sf_auth_allow (self->auth, "admin", cfg->admins, err))
        return -1;
    return 0;
}

static sf_schedules_fire_fn s_fire;
static sf_schedules_verify_fn s_verify_sample;
static sf_retention_delete_fn s_delete_image;
static sf_bulk_done_fn s_on_bulk_done;
static sf_dispatch_ended_fn s_on_job_ended;
static sf_outbox_unsent_fn s_on_unsent;
static sf_gc_send_fn s_gc_send;

sf_sched_t *
sf_sched_new (const sf_schedcfg_t *cfg, sf_err_t *err)
{
    assert (cfg);
    sf_sched_t *self = (sf_sched_t *) zmalloc (sizeof (sf_sched_t));
    self->stats = (sf_stats_t) SF_STATS_INIT;
    self->heartbeat_ms = cfg->heartbeat_ms;
    self->peers = sf_peers_new ();
    sf_peers_set_caps (self->peers, (size_t) cfg->max_peers, (uint32_t) cfg->max_jobs_per_node);
    self->refused = zhashx_new ();
    self->store = sf_store_new (cfg->database, err);
    if (!self->store)
        goto failed;
    self->jobs = sf_jobs_new (self->store);
    sf_jobs_set_retry (self->jobs, cfg->max_attempts, cfg->retry_backoff_ms);
    self->liveness = sf_liveness_new (self->store, self->jobs, self->peers,
                                      cfg->node_timeout_ms);
    if (sf_liveness_restore (self->liveness, err))
        goto failed;
    if (s_secure (self, cfg, err))
        goto failed;
    self->router = s_bind_router (self, cfg->bind, SF_WIRE_MAX_BYTES + 1024, "worker", err);
    if (!self->router)
        goto failed;
    self->outbox = sf_outbox_new (self->router, self->peers);
    self->dispatch = sf_dispatch_new (self->store, self->jobs, self->peers, &cfg->limits,
                                      self->outbox);
    sf_dispatch_set_max_chain (self->dispatch, cfg->max_chain);
    self->bulk = sf_bulk_new (self->store, self->jobs, self->peers, self->dispatch,
                              &cfg->limits);
    sf_outbox_on_unsent (self->outbox, s_on_unsent, self);
    sf_dispatch_on_ended (self->dispatch, s_on_job_ended, self);
    sf_bulk_on_done (self->bulk, s_on_bulk_done, self);
    if (sf_dispatch_restore (self->dispatch, err)
    ||  sf_bulk_restore (self->bulk, err))
        goto failed;
    self->schedules = sf_schedules_new (self->store, self->jobs, s_fire, self, err);
    if (self->schedules)
        sf_schedules_set_verify (self->schedules, s_verify_sample, self);
    if (!self->schedules)
        goto failed;
    self->retention = sf_retention_new (self->store, self->jobs, self->bulk,
                                        self->schedules, s_delete_image, self, err);
    self->history = sf_history_new (self->jobs, self->bulk, cfg->history_days);
    if (!self->retention)
        goto failed;
    self->gc = sf_gc_new (self->store, cfg, s_gc_send, self);
    sf_admin_parts_t parts = {
        .store = self->store, .jobs = self->jobs, .peers = self->peers,
        .dispatch = self->dispatch, .bulk = self->bulk, .schedules = self->schedules, .stats = &self->stats,
        .auth = self->auth, .gc = self->gc
    };
    self->admin = sf_admin_new (cfg->admin_bind, self->cert, &parts, err);
    if (!self->admin)
        goto failed;
    //  Missed runs are caught up once the nodes had their chance to
    //  reconnect (see s_on_tick)
    self->started_ms = sf_time_mono_ms ();
    self->node_timeout_ms = cfg->node_timeout_ms;
    SF_NOTICE (NULL, "listening for workers on '%s' and for the CLI on '%s' (%s); "
               "database '%s'", zsock_endpoint (self->router),
               zsock_endpoint (sf_admin_sock (self->admin)),
               self->auth? "CURVE": "PLAINTEXT", cfg->database);
    return self;
 failed:
    sf_sched_destroy (&self);
    return NULL;
}

void
sf_sched_destroy (sf_sched_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_sched_t *self = *self_p;
        sf_admin_destroy (&self->admin);
        sf_gc_destroy (&self->gc);
        sf_retention_destroy (&self->retention);
        sf_history_destroy (&self->history);
        sf_schedules_destroy (&self->schedules);
        sf_bulk_destroy (&self->bulk);
        sf_dispatch_destroy (&self->dispatch);
        sf_liveness_destroy (&self->liveness);
        sf_outbox_destroy (&self->outbox);
        zsock_destroy (&self->router);
        sf_jobs_destroy (&self->jobs);
        sf_store_destroy (&self->store);
        sf_peers_destroy (&self->peers);
        zhashx_destroy (&self->refused);
        //  Last: without the handler, libzmq would let any key through
        sf_auth_destroy (&self->auth);
        zcert_destroy (&self->cert);
        free (self);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Sending to workers (through the outbox: see sf_outbox)

//  An assignment did not reach its node: dispatch requeues or fails it

static void
s_on_unsent (void *arg, const char *job_id, const sf_err_t *why)
{
    sf_sched_t *self = (sf_sched_t *) arg;
    sf_dispatch_unsent (self->dispatch, job_id, why);
}

static void
s_send_error (sf_sched_t *self, zframe_t *routing_id, int code, const char *text)
{
    sf_error_info_t info = SF_ERROR_INFO_INIT;
    info.code = code;
    info.text = (char *) text;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_ERROR, &info);
    sf_err_t err = SF_ERR_INIT;
    if (sf_outbox_send_to (self->outbox, routing_id, &env, &err))
        SF_DEBUG (NULL, "cannot send error to peer: %s", err.text);
}

//  --------------------------------------------------------------------------
//  Messages from workers

//  Connections remembered as refused (a routing id is never reused)
#define MAX_REFUSED 4096

static void
s_on_hello (sf_sched_t *self, zframe_t *routing_id, const sf_hello_t *hello,
            const char *key_name)
{
    sf_logctx_t ctx = { .node = hello->node };
    sf_err_t err = SF_ERR_INIT;
    bool replaced = false;
    //  A key speaks for the one node it names (CURVE; none if insecure)
    if (key_name && !streq (key_name, hello->node)) {
        self->stats.worker_misnamed++;
        if (sf_stats_may_warn (&self->stats))
            SF_WARN (&ctx, "refusing hello as node '%s' from the key of node '%s'",
                     hello->node, key_name);
        s_send_error (self, routing_id, SF_EINVAL, "this key is not enrolled for this "
                      "node name");
        //  The rest of this connection is dropped unanswered (an "unknown
        //  peer, send hello" would start a hello loop)
        if (zhashx_size (self->refused) >= MAX_REFUSED)
            zhashx_purge (self->refused);
        char *hex = zframe_strhex (routing_id);
        zhashx_insert (self->refused, hex, self);
        free (hex);
        return;
    }
    //  Durable first: the node is up and the jobs its worker no longer
    //  knows (in neither of hello's lists) have failed before the Welcome
    //  leaves; those it never received are assigned again after it
    zlistx_t *resend = zlistx_new ();
    zlistx_set_destructor (resend, (zlistx_destructor_fn *) zstr_free);
    sf_peer_t *peer = sf_liveness_hello (self->liveness, routing_id, hello, resend,
                                         &replaced, &err);
    if (!peer) {
        SF_ERROR (&ctx, "cannot record hello: %s", err.text);
        zlistx_destroy (&resend);
        return;                 //  No welcome: the worker says hello again
    }
    //  How long its guard lets a guest stay paused: a pause slot of a job
    //  that ends without word from this node is kept that long
    if (hello->max_pause_ms
    &&  sf_store_node_set_max_pause (self->store, hello->node,
                                     (int64_t) hello->max_pause_ms, &err))
        SF_ERROR (&ctx, "cannot record max_pause: %s", err.text);
    SF_NOTICE (&ctx, "node %s (%s, max_jobs %u, %zu running jobs, %zu finished and not "
               "acknowledged)", replaced? "reconnected": "connected",
               hello->software && *hello->software? hello->software: "unknown software",
               hello->max_jobs, hello->n_running_jobs, hello->n_finished_jobs);
    sf_welcome_t welcome = SF_WELCOME_INIT;
    welcome.heartbeat_ms = (uint32_t) self->heartbeat_ms;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_WELCOME, &welcome);
    if (sf_outbox_send_to (self->outbox, routing_id, &env, &err))
        SF_WARN (&ctx, "cannot send welcome: %s", err.text);
    for (const char *id = (const char *) zlistx_first (resend); id;
         id = (const char *) zlistx_next (resend))
        if (sf_dispatch_resend (self->dispatch, id))
            SF_WARN (&ctx, "cannot assign job '%s' again: admission does not hold it", id);
    zlistx_destroy (&resend);
    sf_dispatch_node (self->dispatch, peer, true);
    //  The reconciler looks at what the node holds once it is back
    sf_gc_hello (self->gc, peer->name);
}

static void
s_on_inventory (sf_sched_t *self, sf_peer_t *peer, const sf_inventory_t *inventory)
{
    sf_logctx_t ctx = { .node = peer->name };
    sf_err_t err = SF_ERR_INIT;
    if (sf_store_inventory (self->store, peer->name, inventory, &err))
        SF_ERROR (&ctx, "cannot store inventory: %s", err.text);
    else
        SF_INFO (&ctx, "inventory of %zu instances", inventory->n_instances);
}

//  The handlers of what a worker keeps until it is acknowledged return
//  true if the message is handled for good (acknowledge it), false if it
//  failed on a database error (the worker replays it)

static bool
s_on_job_event (sf_sched_t *self, sf_peer_t *peer, const sf_job_event_t *event)
{
    sf_logctx_t ctx = { .node = peer->name, .job_id = event->job_id };
    sf_err_t err = SF_ERR_INIT;
    int rc = sf_jobs_event (self->jobs, peer->name, event, &err);
    if (rc == 1) {
        SF_DEBUG (&ctx, "phase %s again (a replay): recorded already",
                  sf_wire_phase_name (event->phase));
        return true;
    }
    if (rc) {
        if (err.code == SF_EDB) {
            SF_ERROR (&ctx, "cannot record event: %s", err.text);
            return false;
        }
        self->stats.worker_fenced++;
        if (sf_stats_may_warn (&self->stats))
            SF_WARN (&ctx, "dropping '%s' event of attempt %u: %s",
                     sf_wire_phase_name (event->phase), event->attempt, err.text);
        return true;
    }
    SF_INFO (&ctx, "phase %s (%" PRIu64 "ms, %" PRIu64 " bytes)",
             sf_wire_phase_name (event->phase), event->ms, event->bytes);
    sf_dispatch_event (self->dispatch, event);
    return true;
}

static bool
s_on_image_deleted (sf_sched_t *self, sf_peer_t *peer, const sf_image_deleted_t *msg)
{
    sf_logctx_t ctx = { .node = peer->name };
    sf_err_t err = SF_ERR_INIT;
    int rc = sf_retention_deleted (self->retention, peer->name, msg, &err);
    if (rc < 0) {
        SF_ERROR (&ctx, "cannot record image deletion: %s", err.text);
        return false;
    }
    if (rc == 1) {
        self->stats.worker_fenced++;
        if (sf_stats_may_warn (&self->stats))
            SF_WARN (&ctx, "ignoring image deletion answer: %s", err.text);
    }
    return true;
}

static bool
s_on_job_result (sf_sched_t *self, sf_peer_t *peer, const sf_job_result_t *result)
{
    sf_logctx_t ctx = { .node = peer->name, .job_id = result->job_id };
    sf_err_t err = SF_ERR_INIT;
    int rc = sf_jobs_result (self->jobs, peer->name, peer->store, result, &err);
    if (rc == 1) {
        //  Its images are not the job's: the job failed, nothing recorded
        self->stats.worker_invalid++;
        if (sf_stats_may_warn (&self->stats))
            SF_WARN (&ctx, "job failed: %s", err.text);
        return true;
    }
    if (rc) {
        if (err.code == SF_EDB) {
            SF_ERROR (&ctx, "cannot record result: %s", err.text);
            return false;
        }
        self->stats.worker_fenced++;
        //  A replay of a result we recorded (its Ack was lost) is no news
        if (err.code == SF_ESTATE && strstr (err.text, "has already"))
            SF_DEBUG (&ctx, "result of attempt %u again: %s", result->attempt, err.text);
        else
        if (sf_stats_may_warn (&self->stats))
            SF_WARN (&ctx, "dropping result of attempt %u: %s", result->attempt, err.text);
        return true;
    }
    bool note = result->error && result->error->text && *result->error->text;
    if (result->ok)
        SF_NOTICE (&ctx, "job done: %s, pause %" PRIu64 "ms, convert %" PRIu64 "ms, "
                   "upload %" PRIu64 "ms, %" PRIu64 " bytes, %zu images%s%s",
                   result->strategy, result->pause_ms, result->convert_ms,
                   result->upload_ms, result->bytes, result->n_images,
                   note? "; note: ": "", note? result->error->text: "");
    else
        SF_WARN (&ctx, "job failed: %s", result->error && result->error->text
                 ? result->error->text: "no error given");
    return true;
}

//  A worker answered a JobQuery: only the node holding that attempt of the
//  job may

static void
s_on_job_status (sf_sched_t *self, sf_peer_t *peer, const sf_job_status_t *status)
{
    if (sf_dispatch_status (self->dispatch, peer->name, status) == 0)
        return;
    sf_logctx_t ctx = { .node = peer->name, .job_id = status->job_id };
    self->stats.worker_fenced++;
    if (sf_stats_may_warn (&self->stats))
        SF_WARN (&ctx, "dropping job status of attempt %u: not a job this node holds",
                 status->attempt);
}

//  A worker applied an upload rate: only the node uploading that attempt
//  of the job may say so

static void
s_on_rate_applied (sf_sched_t *self, sf_peer_t *peer, const sf_rate_applied_t *applied)
{
    if (sf_dispatch_rate_applied (self->dispatch, peer->name, applied) == 0)
        return;
    sf_logctx_t ctx = { .node = peer->name, .job_id = applied->job_id };
    self->stats.worker_fenced++;
    if (sf_stats_may_warn (&self->stats))
        SF_WARN (&ctx, "dropping rate applied of attempt %u: not a job this node uploads",
                 applied->attempt);
}

static void
s_on_known_peer (sf_sched_t *self, sf_peer_t *peer, const sf_envelope_t *env)
{
    sf_logctx_t ctx = { .node = peer->name };
    bool beat = env->body_case == SF_BODY_HEARTBEAT;
    if (beat && env->heartbeat->scratch_free != peer->scratch_free) {
        peer->scratch_free = env->heartbeat->scratch_free;
        sf_dispatch_node (self->dispatch, peer, false);
    }
    if (beat)
        peer->rbd_snap_ms = (int64_t) env->heartbeat->rbd_snap_ms;     //  sf_wire bounds it
    if (beat && env->heartbeat->running_jobs != peer->running_jobs) {
        peer->running_jobs = env->heartbeat->running_jobs;
        sf_liveness_touch (self->liveness, peer, true);
    }
    else
        sf_liveness_touch (self->liveness, peer, false);
    switch (env->body_case) {
        case SF_BODY_HEARTBEAT:
            break;
        case SF_BODY_INVENTORY:
            s_on_inventory (self, peer, env->inventory);
            break;
        case SF_BODY_JOB_EVENT:
            if (s_on_job_event (self, peer, env->job_event))
                sf_outbox_ack (self->outbox, peer->name, env);
            break;
        case SF_BODY_JOB_RESULT:
            if (s_on_job_result (self, peer, env->job_result))
                sf_outbox_ack (self->outbox, peer->name, env);
            break;
        case SF_BODY_IMAGE_DELETED:
            if (s_on_image_deleted (self, peer, env->image_deleted))
                sf_outbox_ack (self->outbox, peer->name, env);
            break;
        case SF_BODY_RATE_APPLIED:
            s_on_rate_applied (self, peer, env->rate_applied);
            break;
        case SF_BODY_JOB_STATUS:
            s_on_job_status (self, peer, env->job_status);
            break;
        case SF_BODY_GC_HOLDINGS:
            if (sf_gc_on_holdings (self->gc, peer->name, env->gc_holdings))
                self->stats.worker_unexpected++;
            break;
        case SF_BODY_GC_REMOVED:
            if (sf_gc_on_removed (self->gc, peer->name, env->gc_removed))
                self->stats.worker_unexpected++;
            break;
        case SF_BODY_ERROR:
            SF_WARN (&ctx, "node reports error %s: %s", sf_err_name (env->error->code),
                     env->error->text? env->error->text: "");
            break;
        default:
            self->stats.worker_unexpected++;
            if (sf_stats_may_warn (&self->stats))
                SF_WARN (&ctx, "dropping unexpected '%s' message from a worker",
                         sf_wire_body_name (env->body_case));
    }
}

//  Whether a message comes from a connection whose hello was refused, or
//  on a known peer's connection from another node's key (never: a hello
//  binds the connection to its key's node, but cheap to make sure of)

static bool
s_misnamed (sf_sched_t *self, sf_peer_t *peer, zframe_t *routing_id, const char *key_name,
            const sf_envelope_t *env)
{
    if (!key_name)
        return false;
    if (!peer && zhashx_size (self->refused)) {
        //  A connection whose hello was refused: counted, not answered,
        //  until it says hello as its key's node
        char *hex = zframe_strhex (routing_id);
        bool refused = zhashx_lookup (self->refused, hex) != NULL;
        if (refused && env->body_case == SF_BODY_HELLO
        &&  streq (env->hello->node, key_name)) {
            zhashx_delete (self->refused, hex);
            refused = false;
        }
        free (hex);
        if (refused)
            self->stats.worker_misnamed++;
        return refused;
    }
    if (!peer || streq (key_name, peer->name) || env->body_case == SF_BODY_HELLO)
        return false;
    self->stats.worker_misnamed++;
    sf_logctx_t ctx = { .node = peer->name };
    if (sf_stats_may_warn (&self->stats))
        SF_WARN (&ctx, "dropping '%s' message from the key of node '%s'",
                 sf_wire_body_name (env->body_case), key_name);
    return true;
}

static void
s_on_worker_message (sf_sched_t *self, zsock_t *reader)
{
    sf_err_t err = SF_ERR_INIT;
    zframe_t *routing_id = NULL;
    char *key_name = NULL;
    sf_envelope_t *env = sf_wire_recv_peer (zsock_resolve (reader), &routing_id,
                                            &key_name, &err);
    sf_peer_t *peer = sf_peers_by_routing_id (self->peers, routing_id);
    sf_logctx_t ctx = { .node = peer? peer->name: NULL };
    if (!env) {
        if (err.code == SF_EPROTO) {
            self->stats.worker_invalid++;
            if (sf_stats_may_warn (&self->stats))
                SF_WARN (&ctx, "dropping invalid message from %s: %s",
                         peer? "node": "unknown peer", err.text);
        }
    }
    else
    if (s_misnamed (self, peer, routing_id, key_name, env))
        ;                       //  Counted and logged
    else
    if (env->body_case == SF_BODY_HELLO)
        s_on_hello (self, routing_id, env->hello, key_name);
    else
    if (!peer) {
        self->stats.worker_unknown++;
        if (sf_stats_may_warn (&self->stats))
            SF_INFO (NULL, "'%s' message from an unknown peer: asking it to say hello",
                     sf_wire_body_name (env->body_case));
        s_send_error (self, routing_id, SF_ENODE, "unknown peer, send hello");
    }
    else
        s_on_known_peer (self, peer, env);
    sf_wire_free (&env);
    zframe_destroy (&routing_id);
    free (key_name);
}

//  Most messages a batch handles in one transaction (one fsync)
#define BATCH_MAX 512

static int
s_on_worker (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    sf_sched_t *self = (sf_sched_t *) arg;
    sf_err_t err = SF_ERR_INIT;
    bool batch = sf_store_begin (self->store, &err) == 0;
    if (!batch)
        SF_ERROR (NULL, "cannot start a batch: %s", err.text);
    if (batch)
        sf_outbox_hold (self->outbox);
    //  Group commit: a batch takes every message already queued, so the
    //  messages that arrive during one commit's fsync share the next one.
    //  It waits for none: a grant or assignment leaves one fsync after the
    //  message that freed its slot, not later.
    int count = 0;
    do
        s_on_worker_message (self, reader);
    while (++count < BATCH_MAX && (zsock_events (reader) & ZMQ_POLLIN));
    //  What the batch freed is granted in the same transaction (one
    //  commit); assignments and grants leave after it
    sf_dispatch_pump (self->dispatch);
    if (batch && sf_store_commit (self->store, &err)) {
        SF_ERROR (NULL, "cannot commit a batch of %d worker messages: %s", count, err.text);
        sf_outbox_drop_acks (self->outbox);     //  The workers replay them
    }
    sf_outbox_flush (self->outbox);
    return 0;
}

//  --------------------------------------------------------------------------
//  Snapshots, bulks, schedules and retention

//  A schedule fires: a bulk of its selection

//  A schedule's sample of its run: a verify job per image (issue 13)

static int
s_verify_sample (void *arg, const char *image_id, sf_err_t *err)
{
    sf_sched_t *self = (sf_sched_t *) arg;
    sf_verify_req_t req = { .image_id = image_id };
    json_t *job = sf_verify_start (self->store, self->jobs, self->dispatch, &req, err);
    json_decref (job);
    return job? 0: -1;
}

static json_t *
s_fire (void *arg, const char *schedule, int64_t schedule_seq, json_t *select,
        const char *strategy, int priority, int64_t window_end_ms, sf_err_t *err)
{
    sf_sched_t *self = (sf_sched_t *) arg;
    sf_bulk_opts_t opts = { .strategy = strategy, .priority = priority,
                            .window_end_ms = window_end_ms, .schedule = schedule,
                            .schedule_seq = schedule_seq };
    return sf_bulk_create (self->bulk, select, &opts, err);
}

//  Retention asks a node to delete one image

static int
s_delete_image (void *arg, const char *node, const sf_image_t *image, const char *job_id,
                const char *request_id, sf_err_t *err)
{
    sf_sched_t *self = (sf_sched_t *) arg;
    sf_image_delete_t request = SF_IMAGE_DELETE_INIT;
    request.request_id = (char *) request_id;
    request.image = (sf_image_t *) image;
    request.catalog_id = (char *) sf_store_catalog_id (self->store);
    request.job_id = (char *) job_id;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_IMAGE_DELETE, &request);
    return sf_outbox_send (self->outbox, node, &env, err);
}

//  The reconciler's messages go out like every other

static int
s_gc_send (void *arg, const char *node, sf_envelope_t *env, sf_err_t *err)
{
    sf_sched_t *self = (sf_sched_t *) arg;
    return sf_outbox_send (self->outbox, node, env, err);
}

//  A job ended: its bulk counts it

static void
s_on_job_ended (void *arg, const char *job_id, const char *bulk_id)
{
    (void) job_id;
    sf_sched_t *self = (sf_sched_t *) arg;
    sf_bulk_job_ended (self->bulk, bulk_id);
}

//  A bulk ended: prune what its schedule no longer keeps

static void
s_on_bulk_done (void *arg, const char *bulk_id)
{
    sf_sched_t *self = (sf_sched_t *) arg;
    sf_err_t err = SF_ERR_INIT;
    if (self->retention && sf_retention_bulk_done (self->retention, bulk_id, &err) < 0)
        SF_ERROR (NULL, "retention after bulk %s: %s", bulk_id, err.text);
}

//  --------------------------------------------------------------------------
//  Event loop

static int
s_on_check (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    sf_sched_t *self = (sf_sched_t *) arg;
    sf_liveness_check (self->liveness);
    //  Nodes that went down get no new jobs (their queued jobs wait)
    for (sf_peer_t *peer = sf_peers_first (self->peers); peer;
         peer = sf_peers_next (self->peers))
        sf_dispatch_node (self->dispatch, peer, false);
    //  Jobs with no news for their lease: asked about, or failed
    sf_dispatch_leases (self->dispatch);
    sf_dispatch_pump (self->dispatch);
    return 0;
}

//  Every node restored from the database has reconnected or been declared
//  down (or node_timeout has passed): catching up missed runs before that
//  would fail their jobs on nodes that are merely reconnecting

static bool
s_nodes_settled (sf_sched_t *self)
{
    if (sf_time_mono_ms () - self->started_ms > self->node_timeout_ms)
        return true;
    for (sf_peer_t *peer = sf_peers_first (self->peers); peer;
         peer = sf_peers_next (self->peers))
        if (peer->up && !peer->routing_id)
            return false;
    return true;
}

//  Every second: schedules, retention retries, windows

static int
s_on_tick (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    sf_sched_t *self = (sf_sched_t *) arg;
    int64_t now = sf_time_now_ms ();
    sf_err_t err = SF_ERR_INIT;
    if (!self->schedules_started && s_nodes_settled (self)) {
        sf_schedules_start (self->schedules, now);
        self->schedules_started = true;
    }
    sf_schedules_tick (self->schedules, now);
    //  Deletions wait for the nodes too (a request to a node that is still
    //  reconnecting would fail and wait a whole retry delay)
    if (self->schedules_started && sf_retention_tick (self->retention, now, &err) < 0)
        SF_ERROR (NULL, "retention: %s", err.text);
    if (sf_history_tick (self->history, now, &err) < 0)
        SF_ERROR (NULL, "cannot forget old history: %s", err.text);
    if (sf_gc_tick (self->gc, now) && self->schedules_started) {
        zlistx_t *nodes = sf_gc_connected (self->peers);
        if (zlistx_size (nodes)
        &&  !sf_gc_start (self->gc, nodes, !sf_gc_auto_removes (self->gc), true, &err))
            SF_WARN (NULL, "cannot start gc: %s", err.text);
        zlistx_destroy (&nodes);
    }
    sf_dispatch_pump (self->dispatch);
    return 0;
}

static int
s_on_admin (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) reader;
    sf_admin_handle ((sf_admin_t *) arg);
    return 0;
}

static int
s_on_pipe (zloop_t *loop, zsock_t *pipe, void *arg)
{
    (void) loop;
    sf_sched_t *self = (sf_sched_t *) arg;
    char *command = zstr_recv (pipe);
    int rc = 0;
    if (!command || streq (command, "$TERM"))
        rc = -1;
    else
    if (streq (command, "ENDPOINTS"))
        zstr_sendx (pipe, zsock_endpoint (self->router),
                    zsock_endpoint (sf_admin_sock (self->admin)), NULL);
    zstr_free (&command);
    return rc;
}

int
sf_sched_run (sf_sched_t *self, zsock_t *pipe)
{
    assert (self);
    self->loop = zloop_new ();
    zloop_reader (self->loop, self->router, s_on_worker, self);
    zloop_reader (self->loop, sf_admin_sock (self->admin), s_on_admin, self->admin);
    if (pipe)
        zloop_reader (self->loop, pipe, s_on_pipe, self);
    zloop_timer (self->loop, (size_t) sf_liveness_interval (self->liveness), 0,
                 s_on_check, self);
    zloop_timer (self->loop, 1000, 0, s_on_tick, self);
    zloop_start (self->loop);
    zloop_destroy (&self->loop);
    SF_NOTICE (NULL, "scheduler stopping");
    return 0;
}

void
sf_sched_actor (zsock_t *pipe, void *args)
{
    sf_err_t err = SF_ERR_INIT;
    sf_sched_t *self = sf_sched_new ((const sf_schedcfg_t *) args, &err);
    zsock_signal (pipe, self? 0: 1);
    if (!self) {
        SF_ERROR (NULL, "%s", err.text);
        return;
    }
    sf_sched_run (self, pipe);
    sf_sched_destroy (&self);
}
