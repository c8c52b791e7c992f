/*  =========================================================================
    sf_sched - the scheduler object and the worker side of the protocol

    Rules this file keeps:
    - every state change is committed (sf_store/sf_jobs) before the
      scheduler acts on it: a job row exists before its JobAssign leaves,
      a node is down in the database before its jobs count as failed;
    - nothing a worker sends can stop the loop: invalid input is logged,
      counted and dropped;
    - the ROUTER is non-blocking and mandatory: a send to a peer that is
      gone or not reading fails at once instead of stalling every node.
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
    sf_outbox_t *outbox;        //  Owned: what we send to workers
    int64_t started_ms;         //  Monotonic ms the scheduler started
    int64_t node_timeout_ms;
    bool schedules_started;     //  Missed runs caught up
};

SF_LOG_MODULE ("sched.core");

//  --------------------------------------------------------------------------
//  Construction

static zsock_t *
s_bind_router (const char *endpoint, int max_size, const char *role, sf_err_t *err)
{
    zsock_t *sock = zsock_new (ZMQ_ROUTER);
    assert (sock);
    zsock_set_router_mandatory (sock, 1);
    zsock_set_sndtimeo (sock, 0);
    zsock_set_linger (sock, 0);
    zsock_set_maxmsgsize (sock, max_size);
    //  What a peer may have queued here before its connection is read no
    //  further (TCP pushes back on it): bounds the memory of a backlog
    zsock_set_rcvhwm (sock, 64);
    if (zsock_bind (sock, "%s", endpoint) == -1) {
        sf_err_set (err, SF_EIO, "cannot bind %s endpoint '%s': %s", role, endpoint,
                    zmq_strerror (zmq_errno ()));
        zsock_destroy (&sock);
        return NULL;
    }
    if (!sf_schedcfg_is_loopback (endpoint))
        SF_WARN (NULL, "%s endpoint '%s' is not loopback: its traffic is PLAINTEXT and "
                 "UNAUTHENTICATED (CURVE is not implemented yet); expose it only on a "
                 "trusted network", role, endpoint);
    return sock;
}

static sf_schedules_fire_fn s_fire;
static sf_retention_delete_fn s_delete_image;
static sf_bulk_done_fn s_on_bulk_done;
static sf_dispatch_ended_fn s_on_job_ended;
static sf_outbox_unsent_fn s_on_unsent;

sf_sched_t *
sf_sched_new (const sf_schedcfg_t *cfg, sf_err_t *err)
{
    assert (cfg);
    sf_sched_t *self = (sf_sched_t *) zmalloc (sizeof (sf_sched_t));
    self->stats = (sf_stats_t) SF_STATS_INIT;
    self->heartbeat_ms = cfg->heartbeat_ms;
    self->peers = sf_peers_new ();
    self->store = sf_store_new (cfg->database, err);
    if (!self->store)
        goto failed;
    self->jobs = sf_jobs_new (self->store);
    self->liveness = sf_liveness_new (self->store, self->jobs, self->peers,
                                      cfg->node_timeout_ms);
    if (sf_liveness_restore (self->liveness, err))
        goto failed;
    self->router = s_bind_router (cfg->bind, SF_WIRE_MAX_BYTES + 1024, "worker", err);
    if (!self->router)
        goto failed;
    self->outbox = sf_outbox_new (self->router, self->peers);
    self->dispatch = sf_dispatch_new (self->store, self->jobs, self->peers, &cfg->limits,
                                      self->outbox);
    self->bulk = sf_bulk_new (self->store, self->jobs, self->peers, self->dispatch,
                              &cfg->limits);
    sf_outbox_on_unsent (self->outbox, s_on_unsent, self);
    sf_dispatch_on_ended (self->dispatch, s_on_job_ended, self);
    sf_bulk_on_done (self->bulk, s_on_bulk_done, self);
    if (sf_dispatch_restore (self->dispatch, err)
    ||  sf_bulk_restore (self->bulk, err))
        goto failed;
    self->schedules = sf_schedules_new (self->store, s_fire, self, err);
    if (!self->schedules)
        goto failed;
    self->retention = sf_retention_new (self->store, s_delete_image, self, err);
    if (!self->retention)
        goto failed;
    sf_admin_parts_t parts = {
        .store = self->store, .jobs = self->jobs, .peers = self->peers,
        .dispatch = self->dispatch, .bulk = self->bulk, .schedules = self->schedules, .stats = &self->stats
    };
    self->admin = sf_admin_new (cfg->admin_bind, &parts, err);
    if (!self->admin)
        goto failed;
    //  Missed runs are caught up once the nodes had their chance to
    //  reconnect (see s_on_tick)
    self->started_ms = sf_time_mono_ms ();
    self->node_timeout_ms = cfg->node_timeout_ms;
    SF_NOTICE (NULL, "listening for workers on '%s' and for the CLI on '%s'; database '%s'",
               zsock_endpoint (self->router), zsock_endpoint (sf_admin_sock (self->admin)),
               cfg->database);
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
        sf_retention_destroy (&self->retention);
        sf_schedules_destroy (&self->schedules);
        sf_bulk_destroy (&self->bulk);
        sf_dispatch_destroy (&self->dispatch);
        sf_liveness_destroy (&self->liveness);
        sf_outbox_destroy (&self->outbox);
        zsock_destroy (&self->router);
        sf_jobs_destroy (&self->jobs);
        sf_store_destroy (&self->store);
        sf_peers_destroy (&self->peers);
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
    sf_envelope_t env = SF_ENVELOPE_INIT;
    env.body_case = SF_BODY_ERROR;
    env.error = &info;
    sf_err_t err = SF_ERR_INIT;
    if (sf_outbox_send_to (self->outbox, routing_id, &env, &err))
        SF_DEBUG (NULL, "cannot send error to peer: %s", err.text);
}

//  --------------------------------------------------------------------------
//  Messages from workers

static void
s_on_hello (sf_sched_t *self, zframe_t *routing_id, const sf_hello_t *hello)
{
    sf_logctx_t ctx = { .node = hello->node };
    sf_err_t err = SF_ERR_INIT;
    bool replaced = false;
    //  Durable first: the node is up and the jobs its worker lost (not in
    //  hello.running_jobs) have failed before the Welcome leaves
    sf_peer_t *peer = sf_liveness_hello (self->liveness, routing_id, hello, &replaced, &err);
    if (!peer) {
        SF_ERROR (&ctx, "cannot record hello: %s", err.text);
        return;                 //  No welcome: the worker says hello again
    }
    SF_NOTICE (&ctx, "node %s (%s, max_jobs %u, %zu running jobs)",
               replaced? "reconnected": "connected",
               hello->software && *hello->software? hello->software: "unknown software",
               hello->max_jobs, hello->n_running_jobs);
    sf_welcome_t welcome = SF_WELCOME_INIT;
    welcome.heartbeat_ms = (uint32_t) self->heartbeat_ms;
    sf_envelope_t env = SF_ENVELOPE_INIT;
    env.body_case = SF_BODY_WELCOME;
    env.welcome = &welcome;
    if (sf_outbox_send_to (self->outbox, routing_id, &env, &err))
        SF_WARN (&ctx, "cannot send welcome: %s", err.text);
    sf_dispatch_node (self->dispatch, peer, true);
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

static void
s_on_job_event (sf_sched_t *self, sf_peer_t *peer, const sf_job_event_t *event)
{
    sf_logctx_t ctx = { .node = peer->name, .job_id = event->job_id };
    sf_err_t err = SF_ERR_INIT;
    if (sf_jobs_event (self->jobs, peer->name, event, &err)) {
        if (err.code == SF_EDB)
            SF_ERROR (&ctx, "cannot record event: %s", err.text);
        else {
            self->stats.worker_fenced++;
            if (sf_stats_may_warn (&self->stats))
                SF_WARN (&ctx, "dropping '%s' event of attempt %u: %s",
                         sf_wire_phase_name (event->phase), event->attempt, err.text);
        }
        return;
    }
    SF_INFO (&ctx, "phase %s (%" PRIu64 "ms, %" PRIu64 " bytes)",
             sf_wire_phase_name (event->phase), event->ms, event->bytes);
    sf_dispatch_event (self->dispatch, event);
}

static void
s_on_image_deleted (sf_sched_t *self, sf_peer_t *peer, const sf_image_deleted_t *msg)
{
    sf_logctx_t ctx = { .node = peer->name };
    sf_err_t err = SF_ERR_INIT;
    if (sf_retention_deleted (self->retention, msg, &err))
        SF_ERROR (&ctx, "cannot record image deletion: %s", err.text);
}

static void
s_on_job_result (sf_sched_t *self, sf_peer_t *peer, const sf_job_result_t *result)
{
    sf_logctx_t ctx = { .node = peer->name, .job_id = result->job_id };
    sf_err_t err = SF_ERR_INIT;
    if (sf_jobs_result (self->jobs, peer->name, result, &err)) {
        if (err.code == SF_EDB)
            SF_ERROR (&ctx, "cannot record result: %s", err.text);
        else {
            self->stats.worker_fenced++;
            if (sf_stats_may_warn (&self->stats))
                SF_WARN (&ctx, "dropping result of attempt %u: %s", result->attempt, err.text);
        }
        return;
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
            s_on_job_event (self, peer, env->job_event);
            break;
        case SF_BODY_JOB_RESULT:
            s_on_job_result (self, peer, env->job_result);
            break;
        case SF_BODY_IMAGE_DELETED:
            s_on_image_deleted (self, peer, env->image_deleted);
            break;
        case SF_BODY_RATE_APPLIED:
            sf_dispatch_rate_applied (self->dispatch, peer->name, env->rate_applied);
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

static void
s_on_worker_message (sf_sched_t *self, zsock_t *reader)
{
    sf_err_t err = SF_ERR_INIT;
    zframe_t *routing_id = NULL;
    sf_envelope_t *env = sf_wire_recv (zsock_resolve (reader), &routing_id, &err);
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
    if (env->body_case == SF_BODY_HELLO)
        s_on_hello (self, routing_id, env->hello);
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
    if (batch && sf_store_commit (self->store, &err))
        SF_ERROR (NULL, "cannot commit a batch of %d worker messages: %s", count, err.text);
    sf_outbox_flush (self->outbox);
    return 0;
}

//  --------------------------------------------------------------------------
//  Snapshots, bulks, schedules and retention

//  A schedule fires: a bulk of its selection

static json_t *
s_fire (void *arg, const char *schedule, json_t *select, const char *strategy,
        int priority, int64_t window_end_ms, sf_err_t *err)
{
    sf_sched_t *self = (sf_sched_t *) arg;
    sf_bulk_opts_t opts = { .strategy = strategy, .priority = priority,
                            .window_end_ms = window_end_ms, .schedule = schedule };
    return sf_bulk_create (self->bulk, select, &opts, err);
}

//  Retention asks a node to delete one image

static int
s_delete_image (void *arg, const char *node, const sf_image_t *image,
                const char *request_id, sf_err_t *err)
{
    sf_sched_t *self = (sf_sched_t *) arg;
    sf_image_delete_t request = SF_IMAGE_DELETE_INIT;
    request.request_id = (char *) request_id;
    request.image = (sf_image_t *) image;
    sf_envelope_t env = SF_ENVELOPE_INIT;
    env.body_case = SF_BODY_IMAGE_DELETE;
    env.image_delete = &request;
    return sf_outbox_send (self->outbox, node, &env, err);
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
    //  Nodes that went down get no new jobs (their jobs failed: freed)
    for (sf_peer_t *peer = sf_peers_first (self->peers); peer;
         peer = sf_peers_next (self->peers))
        sf_dispatch_node (self->dispatch, peer, false);
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

//  --------------------------------------------------------------------------
//  Self test: a scheduler in-process, DEALER sockets playing workers

//  Snapshot errors: nothing may be created

static void
s_test_refused (sf_harness_t *harness, const char *instance, const char *strategy,
                int code, const char *text)
{
    json_t *reply = strategy
        ? sf_harness_admin (harness, "{\"cmd\":\"snapshot\",\"instance\":\"%s\","
                            "\"strategy\":\"%s\"}", instance, strategy)
        : sf_harness_admin (harness, "{\"cmd\":\"snapshot\",\"instance\":\"%s\"}",
                            instance);
    assert (json_is_false (json_object_get (reply, "ok")));
    if (sf_harness_int (reply, "error.code") != code
    ||  !streq (sf_harness_str (reply, "error.text"), text))
        fprintf (stderr, "\nexpected %d '%s', got %d '%s'\n", code, text,
                 (int) sf_harness_int (reply, "error.code"),
                 sf_harness_str (reply, "error.text"));
    assert (sf_harness_int (reply, "error.code") == code);
    assert (streq (sf_harness_str (reply, "error.text"), text));
    json_decref (reply);
}

static void
s_test_refusals (sf_harness_t *harness)
{
    json_t *reply = sf_harness_admin (harness, "{\"cmd\":\"snapshot\",\"instance\":\"nope\"}");
    assert (json_is_false (json_object_get (reply, "ok")));
    assert (sf_harness_int (reply, "error.code") == SF_ENOENT);
    assert (streq (sf_harness_str (reply, "error.text"), "no instance 'nope' in any node's inventory"));
    json_decref (reply);
    //  n1's worker announced file-cold and offline only: no Ceph
    s_test_refused (harness, "vm2", NULL, SF_ENOTSUP,
                    "node 'n1' cannot run strategy 'rbd' (its worker has no Ceph configured)");
    s_test_refused (harness, "vm4", NULL, SF_ENOTSUP,
                    "node 'n1' cannot run strategy 'mixed' (its worker has no Ceph "
                    "configured)");
    s_test_refused (harness, "vm2", "rbd", SF_ENOTSUP,
                    "node 'n1' cannot run strategy 'rbd' (its worker has no Ceph configured)");
    //  Forced strategies that do not fit, or do not exist
    s_test_refused (harness, "vm1", "rbd", SF_EINVAL,
                    "strategy 'rbd' does not fit instance 'vm1' (storage class file, running)");
    s_test_refused (harness, "vm1", "offline", SF_EINVAL,
                    "strategy 'offline' does not fit instance 'vm1' (storage class file, "
                    "running)");
    s_test_refused (harness, "u-off", "file-cold", SF_EINVAL,
                    "strategy 'file-cold' does not fit instance 'vm3' (storage class file, "
                    "shutoff)");
    s_test_refused (harness, "vm2", "file-cold", SF_EINVAL,
                    "strategy 'file-cold' does not fit instance 'vm2' (storage class rbd, "
                    "running)");
    s_test_refused (harness, "vm4", "rbd", SF_EINVAL,
                    "strategy 'rbd' does not fit instance 'vm4' (storage class mixed, "
                    "running)");
    s_test_refused (harness, "vm1", "File-Cold", SF_EINVAL,
                    "unknown strategy 'File-Cold' (known: file-cold, rbd, mixed, offline)");
    s_test_refused (harness, "nope", "crash", SF_EINVAL,
                    "unknown strategy 'crash' (known: file-cold, rbd, mixed, offline)");
    assert (sf_harness_job_rows (harness) == 0);
}

//  The whole life of a job: assign, events, a fenced event, the result

static void
s_test_job (sf_harness_t *harness, zsock_t *worker)
{
    json_t *reply = sf_harness_admin (harness, "{\"cmd\":\"snapshot\",\"instance\":\"vm1\"}");
    assert (json_is_true (json_object_get (reply, "ok")));
    assert (streq (sf_harness_str (reply, "job.job_id"), "J1"));
    assert (streq (sf_harness_str (reply, "job.state"), "queued"));
    assert (streq (sf_harness_str (reply, "job.strategy"), "file-cold"));
    json_decref (reply);
    sf_envelope_t *env = sf_harness_recv (worker, 2000);
    assert (env && env->body_case == SF_BODY_JOB_ASSIGN);
    assert (streq (env->job_assign->job_id, "J1") && env->job_assign->attempt == 1);
    assert (streq (env->job_assign->instance_uuid, "u-vm1"));
    assert (streq (env->job_assign->strategy, "file-cold"));
    sf_wire_free (&env);

    //  A second snapshot of the same instance while the first runs
    reply = sf_harness_admin (harness, "{\"cmd\":\"snapshot\",\"instance\":\"u-vm1\"}");
    assert (sf_harness_int (reply, "error.code") == SF_EBUSY);
    json_decref (reply);

    sf_harness_event (worker, "J1", 1, SF_PHASE_QUEUED, 0);
    sf_harness_event (worker, "J1", 1, SF_PHASE_PAUSED, 0);
    sf_harness_event (worker, "J1", 2, SF_PHASE_RESUMED, 999);     //  Stale: dropped
    sf_harness_event (worker, "J1", 1, SF_PHASE_RESUMED, 150);
    reply = sf_harness_admin_until (harness, "{\"cmd\":\"job_show\",\"job_id\":\"J1\"}",
                                    "job.phase", "resumed", 2000);
    assert (streq (sf_harness_str (reply, "job.state"), "running"));
    assert (sf_harness_int (reply, "job.pause_ms") == 150);
    assert (json_array_size (sf_harness_get (reply, "job.events")) == 3);
    json_decref (reply);

    sf_harness_result (worker, "J1", 1);
    reply = sf_harness_admin_until (harness, "{\"cmd\":\"job_show\",\"job_id\":\"J1\"}",
                                    "job.state", "done", 2000);
    assert (streq (sf_harness_str (reply, "job.state"), "done"));
    assert (streq (sf_harness_str (reply, "job.consistency"), "paused"));
    assert (sf_harness_int (reply, "job.bytes") == 3ll << 32);
    assert (streq (sf_harness_str (reply, "job.image.id"), "0f8e6b1c-img"));
    json_decref (reply);
    reply = sf_harness_admin (harness, "{\"cmd\":\"status\"}");
    assert (sf_harness_int (reply, "status.worker_fenced") == 1);
    json_decref (reply);
}

//  Garbage from workers is counted and dropped; the scheduler keeps serving

static void
s_test_garbage (sf_harness_t *harness, zsock_t *worker)
{
    zsock_t *vandal = sf_harness_worker (harness);
    zstr_send (vandal, "not protobuf at all");
    zstr_sendx (vandal, "two", "frames", NULL);
    zframe_t *empty = zframe_new_empty ();
    zframe_send (&empty, vandal, 0);
    size_t size = SF_WIRE_MAX_BYTES + 10;
    zframe_t *huge = zframe_new (NULL, size);
    memset (zframe_data (huge), 0x0a, size);
    zframe_send (&huge, vandal, 0);
    //  A valid heartbeat from a peer that never said hello
    sf_heartbeat_t beat = SF_HEARTBEAT_INIT;
    sf_envelope_t env = SF_ENVELOPE_INIT;
    env.body_case = SF_BODY_HEARTBEAT;
    env.heartbeat = &beat;
    sf_harness_send (vandal, &env);
    sf_envelope_t *reply = sf_harness_recv (vandal, 2000);
    assert (reply && reply->body_case == SF_BODY_ERROR);
    assert (reply->error->code == SF_ENODE);
    assert (streq (reply->error->text, "unknown peer, send hello"));
    sf_wire_free (&reply);
    //  A valid message a worker must not send
    sf_job_cancel_t cancel = SF_JOB_CANCEL_INIT;
    cancel.job_id = "J1";
    env.body_case = SF_BODY_JOB_CANCEL;
    env.job_cancel = &cancel;
    sf_harness_send (worker, &env);
    sf_harness_hello (worker, "n1");    //  Its Welcome: the cancel was handled
    zsock_destroy (&vandal);

    json_t *status = sf_harness_admin (harness, "{\"cmd\":\"status\"}");
    assert (sf_harness_int (status, "status.worker_invalid") >= 3);
    assert (sf_harness_int (status, "status.worker_unknown") == 2);   //  With the first one
    assert (sf_harness_int (status, "status.worker_unexpected") == 1);
    json_decref (status);
}

//  Keep n1 beating until node number index of the sorted list is in state

//  The same names on a second node are ambiguous; uuids are not

static void
s_test_ambiguous (sf_harness_t *harness)
{
    zsock_t *n2 = sf_harness_worker (harness);
    sf_harness_hello (n2, "n2");
    sf_harness_inventory (n2, "-n2");
    json_t *reply = sf_harness_admin_until (harness,
        "{\"cmd\":\"instances\",\"node\":\"n2\"}", "instances.2.name", "vm3", 2000);
    json_decref (reply);
    reply = sf_harness_admin (harness, "{\"cmd\":\"snapshot\",\"instance\":\"vm3\"}");
    assert (sf_harness_int (reply, "error.code") == SF_EINVAL);
    assert (streq (sf_harness_str (reply, "error.text"),
                   "instance 'vm3' is ambiguous: 'u-off' on node 'n1', 'u-off-n2' on "
                   "node 'n2'; give the uuid"));
    json_decref (reply);
    reply = sf_harness_admin (harness, "{\"cmd\":\"snapshot\",\"instance\":\"u-off-n2\"}");
    assert (streq (sf_harness_str (reply, "job.job_id"), "J2"));
    assert (streq (sf_harness_str (reply, "job.node"), "n2"));
    json_decref (reply);
    sf_envelope_t *env = sf_harness_recv (n2, 2000);
    assert (env && env->body_case == SF_BODY_JOB_ASSIGN);
    assert (streq (env->job_assign->job_id, "J2"));
    sf_wire_free (&env);
    zsock_destroy (&n2);
}

//  Receive the JobAssign for a new job: returns its id (in id)

static void
s_test_assigned (sf_harness_t *harness, zsock_t *worker, const char *uuid,
                 const char *strategy, const char *want, char *id, size_t size)
{
    json_t *reply = strategy
        ? sf_harness_admin (harness, "{\"cmd\":\"snapshot\",\"instance\":\"%s\","
                            "\"strategy\":\"%s\"}", uuid, strategy)
        : sf_harness_admin (harness, "{\"cmd\":\"snapshot\",\"instance\":\"%s\"}", uuid);
    assert (json_is_true (json_object_get (reply, "ok")));
    assert (streq (sf_harness_str (reply, "job.strategy"), want));
    snprintf (id, size, "%s", sf_harness_str (reply, "job.job_id"));
    json_decref (reply);
    sf_envelope_t *env = sf_harness_recv (worker, 2000);
    assert (env && env->body_case == SF_BODY_JOB_ASSIGN);
    assert (streq (env->job_assign->job_id, id));
    assert (streq (env->job_assign->strategy, want));
    sf_wire_free (&env);
}

//  A worker restarts: its old connection is gone before the scheduler has
//  read its new hello. A snapshot sent to the old connection is queued
//  again, not failed, and goes to the new one after its hello

static void
s_test_unsent (sf_harness_t *harness)
{
    zsock_t *n7 = sf_harness_worker (harness);
    sf_harness_hello (n7, "n7");
    sf_harness_inventory (n7, "-n7");
    json_t *reply = sf_harness_admin_until (harness, "{\"cmd\":\"instances\",\"node\":\"n7\"}",
                                            "instances.3.name", "vm4", 2000);
    json_decref (reply);
    zsock_destroy (&n7);
    zclock_sleep (300);                 //  the ROUTER sees the disconnect
    reply = sf_harness_admin (harness, "{\"cmd\":\"snapshot\",\"instance\":\"u-vm1-n7\"}");
    assert (json_is_true (json_object_get (reply, "ok")));
    char id [32], request [100];
    snprintf (id, sizeof (id), "%s", sf_harness_str (reply, "job.job_id"));
    json_decref (reply);
    snprintf (request, sizeof (request), "{\"cmd\":\"job_show\",\"job_id\":\"%s\"}", id);
    reply = sf_harness_admin (harness, "%s", request);
    assert (streq (sf_harness_str (reply, "job.state"), "queued"));
    assert (streq (sf_harness_str (reply, "job.phase"), "waiting"));
    json_decref (reply);
    //  The restarted worker says hello: the job is assigned to it
    zsock_t *n7b = sf_harness_worker (harness);
    sf_harness_hello (n7b, "n7");
    sf_envelope_t *env = sf_harness_recv (n7b, 2000);
    assert (env && env->body_case == SF_BODY_JOB_ASSIGN);
    assert (streq (env->job_assign->job_id, id));
    sf_wire_free (&env);
    sf_harness_result (n7b, id, 1);
    reply = sf_harness_admin_until (harness, request, "job.state", "done", 2000);
    json_decref (reply);
    zsock_destroy (&n7b);
}

//  Nodes whose workers have Ceph: rbd and mixed jobs, forced or not, and
//  a note on a done job

static void
s_test_ceph_nodes (sf_harness_t *harness)
{
    //  n4 offers rbd but not mixed: it is not told it lacks Ceph
    zsock_t *n4 = sf_harness_worker (harness);
    sf_harness_hello_with (n4, "n4", "file-cold,offline,rbd", "");
    sf_harness_inventory (n4, "-n4");
    json_t *reply = sf_harness_admin_until (harness, "{\"cmd\":\"instances\",\"node\":\"n4\"}",
                                            "instances.3.name", "vm4", 2000);
    json_decref (reply);
    s_test_refused (harness, "u-mix-n4", NULL, SF_ENOTSUP,
                    "node 'n4' cannot run strategy 'mixed' (its worker offers only "
                    "file-cold, offline, rbd)");
    zsock_destroy (&n4);

    zsock_t *n3 = sf_harness_worker (harness);
    sf_harness_hello_with (n3, "n3", "file-cold,offline,rbd,mixed", "");
    sf_harness_inventory (n3, "-n3");
    reply = sf_harness_admin_until (harness, "{\"cmd\":\"instances\",\"node\":\"n3\"}",
                                    "instances.3.name", "vm4", 2000);
    json_decref (reply);
    char id [32];
    s_test_assigned (harness, n3, "u-rbd-n3", "rbd", "rbd", id, sizeof (id));
    sf_harness_result_note (n3, id, 1, "rbd",
                            "freeze unavailable (QEMU guest agent is not configured): "
                            "paused instead");
    char request [100];
    snprintf (request, sizeof (request), "{\"cmd\":\"job_show\",\"job_id\":\"%s\"}", id);
    reply = sf_harness_admin_until (harness, request, "job.state", "done", 2000);
    assert (streq (sf_harness_str (reply, "job.state"), "done"));
    assert (json_is_null (sf_harness_get (reply, "job.error")));
    assert (streq (sf_harness_str (reply, "job.note"), "freeze unavailable (QEMU guest "
                   "agent is not configured): paused instead"));
    json_decref (reply);
    s_test_assigned (harness, n3, "u-mix-n3", NULL, "mixed", id, sizeof (id));
    sf_harness_result (n3, id, 1);
    snprintf (request, sizeof (request), "{\"cmd\":\"job_show\",\"job_id\":\"%s\"}", id);
    reply = sf_harness_admin_until (harness, request, "job.state", "done", 2000);
    assert (json_is_null (sf_harness_get (reply, "job.note")));
    json_decref (reply);
    zsock_destroy (&n3);
}

//  The state of job id as committed in the database

static bool
s_test_committed (sf_harness_t *harness, const char *id, const char *state)
{
    char *value = sf_harness_sql (harness, "SELECT state FROM jobs WHERE id = '%s'", id);
    bool equal = value && streq (value, state);
    free (value);
    return equal;
}

//  A worker says hello again (same connection, then after a restart) with
//  and without its jobs listed

static void
s_test_reconcile (sf_harness_t *harness)
{
    zsock_t *n5 = sf_harness_worker (harness);
    sf_harness_hello_with (n5, "n5", "file-cold,offline,rbd,mixed", "");
    sf_harness_inventory (n5, "-n5");
    json_t *reply = sf_harness_admin_until (harness, "{\"cmd\":\"instances\",\"node\":\"n5\"}",
                                            "instances.3.name", "vm4", 2000);
    json_decref (reply);
    char ja [32], jb [32], jc [32], list [100];
    s_test_assigned (harness, n5, "u-rbd-n5", NULL, "rbd", ja, sizeof (ja));
    s_test_assigned (harness, n5, "u-mix-n5", NULL, "mixed", jb, sizeof (jb));
    s_test_assigned (harness, n5, "u-off-n5", "offline", "offline", jc, sizeof (jc));
    sf_harness_event (n5, ja, 1, SF_PHASE_PAUSED, 0);
    char request [100];
    snprintf (request, sizeof (request), "{\"cmd\":\"job_show\",\"job_id\":\"%s\"}", ja);
    reply = sf_harness_admin_until (harness, request, "job.state", "running", 2000);
    json_decref (reply);

    //  Hello again listing every job: nothing changes
    snprintf (list, sizeof (list), "%s,%s,%s", ja, jb, jc);
    sf_harness_hello_with (n5, "n5", "file-cold,offline,rbd,mixed", list);
    assert (s_test_committed (harness, ja, "running"));
    assert (s_test_committed (harness, jb, "queued"));
    assert (s_test_committed (harness, jc, "queued"));

    //  The worker restarted (new connection) and runs only ja: jb and jc
    //  have failed, durably, by the time the Welcome arrives
    zsock_t *n5b = sf_harness_worker (harness);
    sf_harness_hello_with (n5b, "n5", "file-cold,offline,rbd,mixed", ja);
    assert (s_test_committed (harness, jb, "failed"));
    assert (s_test_committed (harness, jc, "failed"));
    assert (s_test_committed (harness, ja, "running"));
    snprintf (request, sizeof (request), "{\"cmd\":\"job_show\",\"job_id\":\"%s\"}", jb);
    reply = sf_harness_admin (harness, "%s", request);
    assert (sf_harness_int (reply, "job.error.code") == SF_ENODE);
    char text [100];
    snprintf (text, sizeof (text), "worker on node 'n5' restarted and lost job '%s'", jb);
    assert (streq (sf_harness_str (reply, "job.error.text"), text));
    json_decref (reply);

    //  The listed job goes on: its events still count
    sf_harness_event (n5b, ja, 1, SF_PHASE_RESUMED, 42);
    snprintf (request, sizeof (request), "{\"cmd\":\"job_show\",\"job_id\":\"%s\"}", ja);
    reply = sf_harness_admin_until (harness, request, "job.phase", "resumed", 2000);
    assert (sf_harness_int (reply, "job.pause_ms") == 42);
    json_decref (reply);

    //  Another restart, and it runs nothing: ja fails too
    zsock_t *n5c = sf_harness_worker (harness);
    sf_harness_hello_with (n5c, "n5", "file-cold,offline,rbd,mixed", "");
    assert (s_test_committed (harness, ja, "failed"));
    reply = sf_harness_admin (harness, "%s", request);
    snprintf (text, sizeof (text), "worker on node 'n5' restarted and lost job '%s'", ja);
    assert (streq (sf_harness_str (reply, "job.error.text"), text));
    json_decref (reply);
    //  A late result for it is fenced (the hello after it is answered
    //  only once the result was handled), and the instance can be
    //  snapshotted again
    sf_harness_result (n5c, ja, 1);
    sf_harness_hello_with (n5c, "n5", "file-cold,offline,rbd,mixed", "");
    assert (s_test_committed (harness, ja, "failed"));
    reply = sf_harness_admin (harness, "{\"cmd\":\"status\"}");
    assert (sf_harness_int (reply, "status.worker_fenced") == 2);
    json_decref (reply);
    s_test_assigned (harness, n5c, "u-rbd-n5", "rbd", "rbd", ja, sizeof (ja));
    assert (s_test_committed (harness, ja, "queued"));
    zsock_destroy (&n5c);
    zsock_destroy (&n5b);
    zsock_destroy (&n5);
}

void
sf_sched_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_sched: ");
    //  @selftest
    sf_harness_t *harness = sf_harness_new ("sf_sched_test", 5000);
    zsock_t *n1 = sf_harness_worker (harness);
    //  Not a hello first: the scheduler asks for one
    sf_harness_beat (n1);
    sf_envelope_t *env = sf_harness_recv (n1, 2000);
    assert (env && env->body_case == SF_BODY_ERROR && env->error->code == SF_ENODE);
    sf_wire_free (&env);
    sf_harness_hello (n1, "n1");
    sf_harness_inventory (n1, "");
    json_t *reply = sf_harness_admin_until (harness, "{\"cmd\":\"instances\"}",
                                            "instances.2.name", "vm3", 2000);
    assert (streq (sf_harness_str (reply, "instances.0.strategy"), "file-cold"));
    assert (streq (sf_harness_str (reply, "instances.1.strategy"), "rbd"));
    assert (streq (sf_harness_str (reply, "instances.1.storage_class"), "rbd"));
    assert (streq (sf_harness_str (reply, "instances.2.strategy"), "offline"));
    assert (streq (sf_harness_str (reply, "instances.3.strategy"), "mixed"));
    assert (streq (sf_harness_str (reply, "instances.3.storage_class"), "mixed"));
    json_decref (reply);

    s_test_refusals (harness);
    s_test_job (harness, n1);
    s_test_garbage (harness, n1);
    s_test_ambiguous (harness);
    s_test_ceph_nodes (harness);
    s_test_reconcile (harness);
    s_test_unsent (harness);

    //  n1 reconnects on a new socket: the old one is now unknown
    zsock_t *n1b = sf_harness_worker (harness);
    sf_harness_hello (n1b, "n1");
    sf_harness_beat (n1);
    env = sf_harness_recv (n1, 2000);
    assert (env && env->body_case == SF_BODY_ERROR);
    sf_wire_free (&env);
    zsock_destroy (&n1b);
    zsock_destroy (&n1);
    sf_harness_destroy (&harness);
    //  @end
    printf ("OK\n");
}
