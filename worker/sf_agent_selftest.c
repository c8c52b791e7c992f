/*  =========================================================================
    sf_agent_selftest - the self test of sf_agent (compiled into
    worker_selftest only): the agent as an actor against an in-process
    ROUTER playing the scheduler
    =========================================================================
*/
#include "sf_worker_classes.h"
#include "sf_conv_fake.h"                   //  the self-test's doubles
#include "sf_stor_fake.h"

#include <unistd.h>

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
    zhashx_t *acked;            //  keys of the messages acknowledged
    bool no_acks;               //  acknowledge nothing (replay tests)
    size_t replays;             //  acknowledged messages that came again
    char finished [64];         //  the last Hello's finished_jobs, joined
} sched_t;

//  Acknowledge env at once, as a scheduler does after its commit, and
//  tell whether it was acknowledged before (a replay, or an answer again)
static bool
s_test_ack (sched_t *sched, sf_envelope_t *env)
{
    sf_ack_t ack;
    if (!sf_wire_ack_of (env, &ack))
        return false;
    char *key = zsys_sprintf ("%s %u %d %" PRIu64 " %s", ack.job_id ? ack.job_id : "",
                              ack.attempt, (int) ack.phase, ack.at_ms,
                              ack.request_id ? ack.request_id : "");
    bool seen = zhashx_lookup (sched->acked, key) != NULL;
    if (!sched->no_acks) {
        zhashx_update (sched->acked, key, (void *) 1);
        sf_ack_t *ptrs [] = { &ack };
        sf_acks_t acks = SF_ACKS_INIT;
        acks.acks = ptrs;
        acks.n_acks = 1;
        sf_envelope_t reply = sf_wire_envelope (SF_BODY_ACKS, &acks);
        assert (sf_wire_send (zsock_resolve (sched->router), sched->peer, &reply, NULL) == 0);
    }
    zstr_free (&key);
    return seen;
}

//  Next message from the socket that is not a heartbeat or a RateApplied
//  (each is acknowledged, unless no_acks)
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
        if (s_test_ack (sched, env))
            sched->replays++;
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
    //  A busy node may have room later: the scheduler may retry; the rest
    //  (no such instance, strategy not supported) would fail again
    assert (res->retryable == (code == SF_EBUSY && !strstr (text, "still runs")));
    sf_wire_free (&env);
}

static void
s_test_connect_with (sched_t *sched, size_t strategies, size_t running, const char *job);

static void
s_test_connect (sched_t *sched)
{
    s_test_connect_with (sched, 5, 0, NULL);
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
    assert (streq (env->hello->strategies [0], "file-live"));
    assert (streq (env->hello->strategies [1], "file-cold"));
    assert (strategies == 3 || streq (env->hello->strategies [3], "rbd"));
    assert (env->hello->n_running_jobs == running);
    assert (!job || streq (env->hello->running_jobs [0], job));
    *sched->finished = 0;
    for (size_t i = 0; i < env->hello->n_finished_jobs; i++)
        snprintf (sched->finished + strlen (sched->finished),
                  sizeof (sched->finished) - strlen (sched->finished), "%s%s",
                  i ? "," : "", env->hello->finished_jobs [i]);
    assert (streq (env->hello->store, "dir@node-t") && env->hello->scratch_free > 0);
    assert (streq (env->hello->ceph_cluster, strategies == 5 ? SF_STOR_FAKE_FSID : ""));
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
    s_test_connect_with (sched, 5, 1, "J10");
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

//  The next gc answer (GcHoldings or GcRemoved; job messages kept)
static sf_envelope_t *
s_test_gc_answer (sched_t *sched)
{
    while (true) {
        sf_envelope_t *env = s_test_recv (sched);
        if (env->body_case == SF_BODY_GC_HOLDINGS || env->body_case == SF_BODY_GC_REMOVED)
            return env;
        if (s_test_job_of (env))
            zlistx_add_end (sched->deferred, env);
        else
            sf_wire_free (&env);
    }
}

//  The reconciler's listing: J10's RBD snapshots and clones (of this
//  catalogue, on the guests' RBD disks) are listed with their job

static void
s_test_gc_list (sched_t *sched)
{
    sf_gc_list_t list = SF_GC_LIST_INIT;
    list.request_id = "G1";
    list.catalog_id = SF_TEST_CATALOG;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_GC_LIST, &list);
    assert (sf_wire_send (zsock_resolve (sched->router), sched->peer, &env, NULL) == 0);
    sf_envelope_t *answer = s_test_gc_answer (sched);
    assert (answer->body_case == SF_BODY_GC_HOLDINGS);
    assert (streq (answer->gc_holdings->request_id, "G1"));
    assert (answer->gc_holdings->store_complete && answer->gc_holdings->rbd_complete);
    size_t snaps = 0, clones = 0;
    for (size_t i = 0; i < answer->gc_holdings->n_holdings; i++) {
        const sf_holding_t *h = answer->gc_holdings->holdings [i];
        if (streq (h->job_id, "J10"))
            snaps += h->kind == SF_HOLDING_SNAP, clones += h->kind == SF_HOLDING_CLONE;
    }
    assert (snaps == 2 && clones == 2);
    sf_wire_free (&answer);
}

//  One gc request runs, one waits, another is answered busy at once: the
//  listing hangs on Ceph (each RBD call until its deadline)

static void
s_test_gc_busy (sched_t *sched, sf_stor_fake_t *fake)
{
    sf_stor_fake_hang (fake, true);
    const char *requests [] = { "G3", "G4" };
    for (int i = 0; i < 2; i++) {
        sf_gc_list_t list = SF_GC_LIST_INIT;
        list.request_id = (char *) requests [i];
        list.catalog_id = SF_TEST_CATALOG;
        sf_envelope_t env = sf_wire_envelope (SF_BODY_GC_LIST, &list);
        assert (sf_wire_send (zsock_resolve (sched->router), sched->peer, &env, NULL) == 0);
    }
    sf_holding_t held = SF_HOLDING_INIT;
    held.kind = SF_HOLDING_SCRATCH, held.name = "J77", held.job_id = "J77";
    sf_holding_t *ptrs [] = { &held };
    sf_gc_remove_t remove = SF_GC_REMOVE_INIT;
    remove.request_id = "G5";
    remove.catalog_id = SF_TEST_CATALOG;
    remove.holdings = ptrs, remove.n_holdings = 1;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_GC_REMOVE, &remove);
    assert (sf_wire_send (zsock_resolve (sched->router), sched->peer, &env, NULL) == 0);
    sf_envelope_t *answer = s_test_gc_answer (sched);
    assert (answer->body_case == SF_BODY_GC_REMOVED);
    assert (streq (answer->gc_removed->request_id, "G5"));
    assert (answer->gc_removed->n_failed == 1 && answer->gc_removed->n_removed == 0);
    assert (strstr (answer->gc_removed->failed [0]->error, "already running"));
    sf_wire_free (&answer);
    sf_stor_fake_hang (fake, false);
    //  The running one answers, then the one that waited
    answer = s_test_gc_answer (sched);
    assert (streq (answer->gc_holdings->request_id, "G3"));
    sf_wire_free (&answer);
    answer = s_test_gc_answer (sched);
    assert (streq (answer->gc_holdings->request_id, "G4"));
    sf_wire_free (&answer);
}

//  A removal of what a job the worker runs made is refused
static void
s_test_gc_refused (sched_t *sched, const char *job)
{
    sf_holding_t held = SF_HOLDING_INIT;
    held.kind = SF_HOLDING_SCRATCH, held.name = (char *) job, held.job_id = (char *) job;
    sf_holding_t *ptrs [] = { &held };
    sf_gc_remove_t remove = SF_GC_REMOVE_INIT;
    remove.request_id = "G2";
    remove.catalog_id = SF_TEST_CATALOG;
    remove.holdings = ptrs, remove.n_holdings = 1;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_GC_REMOVE, &remove);
    assert (sf_wire_send (zsock_resolve (sched->router), sched->peer, &env, NULL) == 0);
    sf_envelope_t *answer = s_test_gc_answer (sched);
    assert (answer->body_case == SF_BODY_GC_REMOVED);
    assert (answer->gc_removed->n_removed == 0 && answer->gc_removed->n_failed == 1);
    assert (strstr (answer->gc_removed->failed [0]->error, "still runs on this worker"));
    sf_wire_free (&answer);
}

//  The heartbeat a Welcome asks for is clamped; the DEALER has a maximum
//  message size and high-water marks

static void
s_test_limits (sched_t *sched, zactor_t *agent)
{
    uint32_t asked [] = { 1, 0, 250, SF_WIRE_MAX_HEARTBEAT_MS };
    const char *limits [] = { "100 ", "100 ", "250 ", "60000 " };
    for (size_t i = 0; i < 4; i++) {
        sf_welcome_t welcome = SF_WELCOME_INIT;
        welcome.heartbeat_ms = asked [i];
        sf_envelope_t env = sf_wire_envelope (SF_BODY_WELCOME, &welcome);
        assert (sf_wire_send (zsock_resolve (sched->router), sched->peer, &env, NULL) == 0);
        zclock_sleep (50);
        zstr_send (agent, "LIMITS");
        char *text = zstr_recv (agent);
        char *want = zsys_sprintf ("%s%d %d %d", limits [i], SF_AGENT_MAX_MSG,
                                   SF_AGENT_HWM, SF_AGENT_HWM);
        assert (text && streq (text, want));
        zstr_free (&want);
        zstr_free (&text);
    }
}

//  A burst of deletions: one runs, the others wait in the queue and are
//  all answered, in order

static void
s_test_delete_burst (sched_t *sched)
{
    char request [16];
    for (int i = 0; i < 5; i++) {
        snprintf (request, sizeof (request), "B%d", i);
        sf_image_t image = SF_IMAGE_INIT;
        image.store = "dir";
        image.id = request;
        sf_image_delete_t request_msg = SF_IMAGE_DELETE_INIT;
        request_msg.request_id = request;
        request_msg.image = &image;
        request_msg.catalog_id = SF_TEST_CATALOG;
        request_msg.job_id = "J1";
        sf_envelope_t env = sf_wire_envelope (SF_BODY_IMAGE_DELETE, &request_msg);
        assert (sf_wire_send (zsock_resolve (sched->router), sched->peer, &env, NULL) == 0);
    }
    for (int i = 0; i < 5; i++) {
        snprintf (request, sizeof (request), "B%d", i);
        sf_envelope_t *answer = s_test_deleted (sched);
        assert (streq (answer->image_deleted->request_id, request));
        sf_wire_free (&answer);
    }
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
    s_test_limits (sched, agent);
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

//  A JobQuery for job at attempt: the JobStatus must say state
static void
s_test_query (sched_t *sched, const char *job, uint32_t attempt, int state)
{
    sf_job_query_t query = SF_JOB_QUERY_INIT;
    query.job_id = (char *) job;
    query.attempt = attempt;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_QUERY, &query);
    assert (sf_wire_send (zsock_resolve (sched->router), sched->peer, &env, NULL) == 0);
    sf_envelope_t *reply = s_test_recv (sched);
    while (reply->body_case != SF_BODY_JOB_STATUS) {
        assert (reply->body_case == SF_BODY_INVENTORY);
        sf_wire_free (&reply);
        reply = s_test_recv (sched);
    }
    assert (streq (reply->job_status->job_id, job) && reply->job_status->attempt == attempt);
    assert ((int) reply->job_status->state == state);
    sf_wire_free (&reply);
}

//  A restarted worker: the result journaled by the run that was stopped
//  (J4) and a job that run lost while it ran (J40, planted: it had not
//  paused) are listed in the Hello as finished, replayed after the
//  Welcome, answered to a JobQuery, and leave the journal once
//  acknowledged

static void
s_test_journal (sched_t *sched, const char *work)
{
    assert (streq (sched->finished, "J4,J40"));
    sf_welcome_t welcome = SF_WELCOME_INIT;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_WELCOME, &welcome);
    assert (sf_wire_send (zsock_resolve (sched->router), sched->peer, &env, NULL) == 0);
    char phases [16];
    sf_envelope_t *result = s_test_result (sched, "J4", phases);
    assert (!result->job_result->ok && result->job_result->error->code == SF_ECANCELED);
    sf_wire_free (&result);
    result = s_test_result (sched, "J40", phases);
    sf_job_result_t *lost = result->job_result;
    assert (!lost->ok && lost->retryable && lost->attempt == 3);
    assert (lost->error->code == SF_ENODE);
    assert (strstr (lost->error->text, "worker on node 'node-t' was restarted during job "
                    "'J40' (attempt 3)"));
    sf_wire_free (&result);
    s_test_query (sched, "J40", 3, SF_JOB_STATE_FINISHED);
    result = s_test_result (sched, "J40", phases);      //  and its result again
    sf_wire_free (&result);
    s_test_query (sched, "J40", 2, SF_JOB_STATE_STALE);
    s_test_query (sched, "J99", 1, SF_JOB_STATE_UNKNOWN);
    //  Acknowledged (s_test_recv did): gone from the journal
    char *j4 = zsys_sprintf ("%s/jobs/J4", work);
    char *j40 = zsys_sprintf ("%s/jobs/J40", work);
    for (int i = 0; i < 500 && (zsys_file_exists (j4) || zsys_file_exists (j40)); i++)
        zclock_sleep (10);
    assert (!zsys_file_exists (j4) && !zsys_file_exists (j40));
    zstr_free (&j4);
    zstr_free (&j40);
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
    sf_stor_fake_add (fake, "rbd/mix-a", 1 << 20);      //  the gc listing reads every
    sf_stor_fake_add (fake, "rbd/off-a", 1 << 20);      //  guest's RBD disk
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
                      .deferred = zlistx_new (), .acked = zhashx_new () };
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
    s_test_delete_burst (&sched);
    s_test_gc_list (&sched);
    s_test_gc_busy (&sched, fake);
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
    s_test_gc_refused (&sched, "J4");
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

    //  J4's result is in the journal (its Ack came too late for the
    //  stopped agent); plant a job a killed run lost before its pause
    //  (marked before its pause: a restart would not call it retryable)
    char *j4 = zsys_sprintf ("%s/jobs/J4", work);
    char *cmd_j4 = zsys_sprintf ("grep -q '^state finished' %s && grep -q '^pausing 1' %s",
                                 j4, j4);
    assert (system (cmd_j4) == 0);
    zstr_free (&cmd_j4);
    zstr_free (&j4);
    sf_joblog_t *joblog = sf_joblog_new (work, &err);
    assert (joblog);
    assert (sf_joblog_start (joblog, "J40", 3, SF_TEST_OFF_UUID, "offline", &err) == 0);
    sf_joblog_destroy (&joblog);

    //  RBD support off: Hello offers no rbd/mixed; RBD assigns are refused
    free (cfg.rbd_ceph_conf);
    cfg.rbd_ceph_conf = strdup ("");
    agent = zactor_new (sf_agent_actor, &actor_args);
    s_test_connect_with (&sched, 3, 0, NULL);
    s_test_journal (&sched, work);
    s_test_refused (&sched, "J11", 1, SF_TEST_CEPH_UUID, "rbd", SF_ENOTSUP,
                    "strategy 'rbd' needs RBD support, which is off on node 'node-t'");
    s_test_refused (&sched, "J12", 1, SF_TEST_CEPHOFF_UUID, "offline", SF_ENOTSUP,
                    "instance 'cephoff' has RBD disks, but RBD support is off");
    zactor_destroy (&agent);
    sf_conv_destroy (&parts.conv);
    sf_stor_fake_destroy (&fake);

    assert (zlistx_size (sched.deferred) == 0);
    zlistx_destroy (&sched.deferred);
    zhashx_destroy (&sched.acked);
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
