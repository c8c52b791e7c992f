/*  =========================================================================
    sf_sched_selftest - the self test of sf_sched: the whole life of jobs,
    garbage from workers, refusals, reconnects

    Test code, compiled into sched_selftest only: it drives a scheduler
    running in-process through sf_harness (see sf_harness_selftest.h).
    =========================================================================
*/
#include "sf_sched_classes.h"
#include "sf_harness_selftest.h"

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
                    "unknown strategy 'File-Cold' (known: file-live, file-cold, rbd, mixed, offline)");
    s_test_refused (harness, "nope", "crash", SF_EINVAL,
                    "unknown strategy 'crash' (known: file-live, file-cold, rbd, mixed, offline)");
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
    assert (streq (sf_harness_str (reply, "job.strategy"), "file-live"));
    json_decref (reply);
    sf_envelope_t *env = sf_harness_recv (worker, 2000);
    assert (env && env->body_case == SF_BODY_JOB_ASSIGN);
    assert (streq (env->job_assign->job_id, "J1") && env->job_assign->attempt == 1);
    assert (streq (env->job_assign->instance_uuid, "u-vm1"));
    assert (streq (env->job_assign->strategy, "file-live"));
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
    assert (streq (sf_harness_str (reply, "job.image.id"), "0f8e6b1c-0000-4000-8000-000000000001"));
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
    sf_envelope_t env = sf_wire_envelope (SF_BODY_HEARTBEAT, &beat);
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
    sf_harness_hello_with (n4, "n4", "file-live,file-cold,offline,rbd", "");
    sf_harness_inventory (n4, "-n4");
    json_t *reply = sf_harness_admin_until (harness, "{\"cmd\":\"instances\",\"node\":\"n4\"}",
                                            "instances.3.name", "vm4", 2000);
    json_decref (reply);
    s_test_refused (harness, "u-mix-n4", NULL, SF_ENOTSUP,
                    "node 'n4' cannot run strategy 'mixed' (its worker offers only "
                    "file-live, file-cold, offline, rbd)");
    zsock_destroy (&n4);

    //  n5 runs a worker of a release before file-live: a running file
    //  guest's default falls back to file-cold; file-live, forced, is refused
    zsock_t *n5 = sf_harness_worker (harness);
    sf_harness_hello_with (n5, "n5", "file-cold,offline", "");
    sf_harness_inventory (n5, "-n5");
    reply = sf_harness_admin_until (harness, "{\"cmd\":\"instances\",\"node\":\"n5\"}",
                                    "instances.3.name", "vm4", 2000);
    json_decref (reply);
    s_test_refused (harness, "u-vm1-n5", "file-live", SF_ENOTSUP,
                    "node 'n5' cannot run strategy 'file-live' (its worker offers only "
                    "file-cold, offline)");
    char old_id [32];
    s_test_assigned (harness, n5, "u-vm1-n5", NULL, "file-cold", old_id, sizeof (old_id));
    sf_harness_result (n5, old_id, 1);
    zsock_destroy (&n5);

    zsock_t *n3 = sf_harness_worker (harness);
    sf_harness_hello_with (n3, "n3", "file-live,file-cold,offline,rbd,mixed", "");
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
    sf_harness_hello_with (n5, "n5", "file-live,file-cold,offline,rbd,mixed", "");
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
    sf_harness_hello_with (n5, "n5", "file-live,file-cold,offline,rbd,mixed", list);
    assert (s_test_committed (harness, ja, "running"));
    assert (s_test_committed (harness, jb, "queued"));
    assert (s_test_committed (harness, jc, "queued"));

    //  The worker restarted (new connection) and runs only ja: jb, which
    //  had begun, has failed, durably, by the time the Welcome arrives;
    //  jc, which it never received (no event), is assigned again after it
    sf_harness_event (n5, jb, 1, SF_PHASE_QUEUED, 0);
    snprintf (request, sizeof (request), "{\"cmd\":\"job_show\",\"job_id\":\"%s\"}", jb);
    reply = sf_harness_admin_until (harness, request, "job.state", "running", 2000);
    json_decref (reply);
    zsock_t *n5b = sf_harness_worker (harness);
    sf_harness_hello_with (n5b, "n5", "file-live,file-cold,offline,rbd,mixed", ja);
    assert (s_test_committed (harness, jb, "failed"));
    assert (s_test_committed (harness, jc, "queued"));
    assert (s_test_committed (harness, ja, "running"));
    reply = sf_harness_admin (harness, "%s", request);
    assert (sf_harness_int (reply, "job.error.code") == SF_ENODE);
    char text [100];
    snprintf (text, sizeof (text), "worker on node 'n5' no longer knows job '%s' (its "
              "journal was lost)", jb);
    assert (streq (sf_harness_str (reply, "job.error.text"), text));
    json_decref (reply);
    sf_envelope_t *env = sf_harness_recv (n5b, 2000);
    assert (env && env->body_case == SF_BODY_JOB_ASSIGN);
    assert (streq (env->job_assign->job_id, jc) && env->job_assign->attempt == 1);
    assert (streq (env->job_assign->strategy, "offline"));
    sf_wire_free (&env);
    sf_harness_event (n5b, jc, 1, SF_PHASE_QUEUED, 0);

    //  The listed job goes on: its events still count, and are
    //  acknowledged once committed
    sf_harness_event (n5b, ja, 1, SF_PHASE_RESUMED, 42);
    snprintf (request, sizeof (request), "{\"cmd\":\"job_show\",\"job_id\":\"%s\"}", ja);
    reply = sf_harness_admin_until (harness, request, "job.phase", "resumed", 2000);
    assert (sf_harness_int (reply, "job.pause_ms") == 42);
    json_decref (reply);
    size_t acked = 0;
    while (acked < 2 && (env = sf_harness_recv_any (n5b, 2000))) {
        assert (env->body_case == SF_BODY_ACKS);
        for (size_t i = 0; i < env->acks->n_acks; i++) {
            assert (env->acks->acks [i]->phase == SF_PHASE_QUEUED
                ||  env->acks->acks [i]->phase == SF_PHASE_RESUMED);
            acked++;
        }
        sf_wire_free (&env);
    }
    assert (acked == 2);

    //  Another restart: ja finished (its result waits for an Ack), jc is
    //  not known any more: ja is kept and its replayed result makes it
    //  done; jc fails
    zsock_t *n5c = sf_harness_worker (harness);
    sf_harness_hello_known (n5c, "n5", "file-live,file-cold,offline,rbd,mixed", "", ja);
    assert (s_test_committed (harness, ja, "running"));
    assert (s_test_committed (harness, jc, "failed"));
    sf_harness_result (n5c, ja, 1);
    reply = sf_harness_admin_until (harness, request, "job.state", "done", 2000);
    json_decref (reply);
    env = sf_harness_recv_any (n5c, 2000);
    assert (env && env->body_case == SF_BODY_ACKS && env->acks->n_acks == 1);
    assert (streq (env->acks->acks [0]->job_id, ja));
    assert (env->acks->acks [0]->phase == SF_PHASE_DONE);
    sf_wire_free (&env);
    //  A late result for jc is fenced, and acknowledged all the same (the
    //  worker stops replaying it); the instance can be snapshotted again
    sf_harness_result (n5c, jc, 1);
    env = sf_harness_recv_any (n5c, 2000);
    assert (env && env->body_case == SF_BODY_ACKS && env->acks->n_acks == 1);
    assert (streq (env->acks->acks [0]->job_id, jc));
    sf_wire_free (&env);
    assert (s_test_committed (harness, jc, "failed"));
    reply = sf_harness_admin (harness, "{\"cmd\":\"status\"}");
    assert (sf_harness_int (reply, "status.worker_fenced") == 2);
    json_decref (reply);
    s_test_assigned (harness, n5c, "u-off-n5", "offline", "offline", jc, sizeof (jc));
    assert (s_test_committed (harness, jc, "queued"));
    zsock_destroy (&n5c);
    zsock_destroy (&n5b);
    zsock_destroy (&n5);
}

//  A message that fails on a database error is not acknowledged (the
//  worker keeps it); its replay once the database works is applied and
//  acknowledged, and a replay of what is recorded adds nothing

static void
s_test_unacked (void)
{
    sf_harness_t *harness = sf_harness_new ("sf_sched_unacked", 60000);
    zsock_t *n1 = sf_harness_worker (harness);
    sf_harness_hello (n1, "n1");
    sf_harness_inventory (n1, "");
    json_t *reply = sf_harness_admin_until (harness, "{\"cmd\":\"instances\"}",
                                            "instances.0.name", "vm1", 2000);
    json_decref (reply);
    char id [32];
    s_test_assigned (harness, n1, "u-vm1", NULL, "file-live", id, sizeof (id));
    sqlite3 *lock = sf_harness_lock (harness);
    sf_job_event_t event = sf_wire_job_event (id, 1, SF_PHASE_QUEUED, 0, 0);
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_EVENT, &event);
    sf_harness_send (n1, &env);
    //  The scheduler gives up after its busy timeout: no Ack
    sf_envelope_t *got = sf_harness_recv_any (n1, 7000);
    assert (got == NULL);
    sf_harness_unlock (&lock);
    assert (s_test_committed (harness, id, "queued"));
    //  The worker replays it: applied, acknowledged
    sf_harness_send (n1, &env);
    got = sf_harness_recv_any (n1, 3000);
    assert (got && got->body_case == SF_BODY_ACKS && got->acks->n_acks == 1);
    assert (sf_wire_ack_matches (got->acks->acks [0], &env));
    sf_wire_free (&got);
    assert (s_test_committed (harness, id, "running"));
    //  Once more (its Ack was lost): acknowledged, no second event row
    sf_harness_send (n1, &env);
    got = sf_harness_recv_any (n1, 3000);
    assert (got && got->body_case == SF_BODY_ACKS && got->acks->n_acks == 1);
    sf_wire_free (&got);
    char *events = sf_harness_sql (harness, "SELECT count(*) FROM job_events WHERE "
                                   "job_id = '%s'", id);
    assert (events && streq (events, "1"));
    free (events);
    zsock_destroy (&n1);
    sf_harness_destroy (&harness);
}

//  CURVE: enrolled keys get through, as their key's node only; others get
//  nothing, change nothing, and are counted

static void
s_test_curve (void)
{
    sf_harness_t *harness = sf_harness_new ("curve_sched_test", 5000);
    zsock_t *n1 = sf_harness_worker_key (harness, "n1", true);
    sf_harness_hello (n1, "n1");

    //  Unenrolled key, no key at all, unenrolled admin key: nothing
    zsock_t *rogue = sf_harness_worker_key (harness, "rogue", false);
    zsock_t *plain = sf_harness_worker (harness);
    sf_hello_t hello = SF_HELLO_INIT;
    hello.node = "rogue";
    sf_envelope_t hi = SF_ENVELOPE_INIT;
    hi.body_case = SF_BODY_HELLO;
    hi.hello = &hello;
    sf_harness_send (rogue, &hi);
    sf_harness_send (plain, &hi);
    assert (sf_harness_recv (rogue, 500) == NULL);
    assert (sf_harness_recv (plain, 100) == NULL);
    zsock_t *stranger = sf_harness_admin_key (harness, "stranger", false);
    zstr_send (stranger, "{\"cmd\":\"status\"}");
    zpoller_t *poller = zpoller_new (stranger, NULL);
    assert (zpoller_wait (poller, 500) == NULL);
    zpoller_destroy (&poller);

    //  An enrolled key that says hello as another node is refused
    zsock_t *n2 = sf_harness_worker_key (harness, "n2", true);
    hello.node = "n1";
    sf_harness_send (n2, &hi);
    sf_envelope_t *env = sf_harness_recv (n2, 2000);
    assert (env && env->body_case == SF_BODY_ERROR && env->error->code == SF_EINVAL);
    sf_wire_free (&env);
    //  and the rest of its connection gets no answer (no hello loop),
    //  until it says hello as its own node
    sf_harness_beat (n2);
    assert (sf_harness_recv (n2, 300) == NULL);
    sf_harness_hello (n2, "n2");

    json_t *reply = sf_harness_admin (harness, "{\"cmd\":\"nodes\"}");
    assert (json_array_size (sf_harness_get (reply, "nodes")) == 2);
    assert (streq (sf_harness_str (reply, "nodes.0.name"), "n1"));
    assert (streq (sf_harness_str (reply, "nodes.1.name"), "n2"));
    json_decref (reply);
    reply = sf_harness_admin (harness, "{\"cmd\":\"status\"}");
    //  (rogue, the plaintext peer and stranger)
    assert (sf_harness_int (reply, "status.unenrolled") >= 3);
    assert (sf_harness_int (reply, "status.worker_misnamed") == 2);
    assert (json_is_true (sf_harness_get (reply, "status.curve")));
    json_decref (reply);

    //  n1 still works
    sf_harness_inventory (n1, "");
    reply = sf_harness_admin_until (harness, "{\"cmd\":\"instances\"}",
                                    "instances.0.name", "vm1", 2000);
    json_decref (reply);
    zsock_destroy (&n2);
    zsock_destroy (&stranger);
    zsock_destroy (&plain);
    zsock_destroy (&rogue);
    zsock_destroy (&n1);
    sf_harness_destroy (&harness);
}

//  Messages about a job count only from its node, and a result's images
//  only if they are the job's

static void
s_test_scoped (void)
{
    sf_harness_t *harness = sf_harness_new ("sf_sched_scoped", 5000);
    zsock_t *n1, *n2;
    sf_harness_two_nodes (harness, "-n2", &n1, &n2);
    json_t *reply;
    char id [32];
    s_test_assigned (harness, n1, "u-vm1", NULL, "file-live", id, sizeof (id));

    //  n2 reports on n1's job: an event, an applied rate, a result
    sf_harness_event (n2, id, 1, SF_PHASE_PAUSED, 0);
    sf_job_grant_t grant = SF_JOB_GRANT_INIT;
    grant.job_id = id, grant.attempt = 1, grant.rate_bps = 1000;
    sf_rate_applied_t applied = sf_wire_rate_applied (&grant);
    sf_envelope_t env = sf_wire_envelope (SF_BODY_RATE_APPLIED, &applied);
    sf_harness_send (n2, &env);
    sf_harness_result (n2, id, 1);
    reply = sf_harness_admin_until (harness, "{\"cmd\":\"status\"}", "status.worker_fenced",
                                    "never", 300);
    json_decref (reply);
    reply = sf_harness_admin (harness, "{\"cmd\":\"status\"}");
    assert (sf_harness_int (reply, "status.worker_fenced") == 3);
    json_decref (reply);
    char *value = sf_harness_sql (harness, "SELECT state || ' ' || phase || ' ' ||"
                                  " (SELECT COUNT (*) FROM job_events) || ' ' ||"
                                  " (SELECT COUNT (*) FROM images) FROM jobs WHERE id = '%s'",
                                  id);
    assert (value && streq (value, "queued assigned 0 0"));
    zstr_free (&value);

    //  n1 reports an image that is not the store's file of the job
    sf_image_t image = SF_IMAGE_INIT;
    image.store = "dir", image.id = "0f8e6b1c-0000-4000-8000-000000000001";
    image.path = "/var/lib/libvirt/images/vm1.qcow2", image.size = 1;
    image.sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    image.disk_target = "vda", image.format = "qcow2";
    sf_image_t *images [] = { &image };
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    result.job_id = id, result.attempt = 1, result.ok = 1, result.strategy = "file-cold";
    result.consistency = "paused", result.n_images = 1, result.images = images;
    env = sf_wire_envelope (SF_BODY_JOB_RESULT, &result);
    sf_harness_send (n1, &env);
    char request [100];
    snprintf (request, sizeof (request), "{\"cmd\":\"job_show\",\"job_id\":\"%s\"}", id);
    reply = sf_harness_admin_until (harness, request, "job.state", "failed", 2000);
    assert (streq (sf_harness_str (reply, "job.state"), "failed"));
    assert (sf_harness_int (reply, "job.error.code") == SF_EPROTO);
    char text [200];
    snprintf (text, sizeof (text), "worker reported image '%s' that is not job %s's: ",
              image.id, id);
    assert (strncmp (sf_harness_str (reply, "job.error.text"), text, strlen (text)) == 0);
    assert (json_array_size (sf_harness_get (reply, "job.images")) == 0);
    json_decref (reply);
    value = sf_harness_sql (harness, "SELECT COUNT (*) FROM images");
    assert (value && streq (value, "0"));
    zstr_free (&value);

    //  The fleet still works: the next job of vm1 is done, its image kept
    s_test_assigned (harness, n1, "u-vm1", NULL, "file-live", id, sizeof (id));
    sf_harness_result (n1, id, 1);
    snprintf (request, sizeof (request), "{\"cmd\":\"job_show\",\"job_id\":\"%s\"}", id);
    reply = sf_harness_admin_until (harness, request, "job.state", "done", 2000);
    assert (streq (sf_harness_str (reply, "job.state"), "done"));
    json_decref (reply);
    value = sf_harness_sql (harness, "SELECT job_id FROM images");
    assert (value && streq (value, id));
    zstr_free (&value);
    zsock_destroy (&n2);
    zsock_destroy (&n1);
    sf_harness_destroy (&harness);
}

//  An instance is (node, uuid): a uuid a second node reports is flagged on
//  both nodes and refused for snapshots (single and bulk) with the reason
//  until only one node reports it; its job then goes to that node

static void
s_test_identity (void)
{
    sf_harness_t *harness = sf_harness_new ("sf_sched_identity", 5000);
    zsock_t *n1, *n2;
    sf_harness_two_nodes (harness, "", &n1, &n2);      //  The same uuids on n2
    json_t *reply = sf_harness_admin_until (harness, "{\"cmd\":\"instances\",\"node\":\"n1\"}",
                                    "instances.0.ambiguous",
                                    "uuid also reported by node 'n2'", 2000);
    assert (streq (sf_harness_str (reply, "instances.0.uuid"), "u-vm1"));
    assert (streq (sf_harness_str (reply, "instances.0.ambiguous"),
                   "uuid also reported by node 'n2'"));
    json_decref (reply);
    reply = sf_harness_admin (harness, "{\"cmd\":\"instances\",\"node\":\"n2\"}");
    assert (streq (sf_harness_str (reply, "instances.0.ambiguous"),
                   "uuid also reported by node 'n1'"));
    json_decref (reply);

    //  Refused, single (by uuid or by name) and in bulk
    s_test_refused (harness, "u-vm1", NULL, SF_EINVAL, "instance 'vm1' (uuid 'u-vm1') on "
                    "node 'n1' is ambiguous: uuid also reported by node 'n2'");
    assert (sf_harness_job_rows (harness) == 0);
    reply = sf_harness_admin (harness, "{\"cmd\":\"bulk_create\",\"select\":{\"node\":\"n1\"}}");
    assert (json_is_true (json_object_get (reply, "ok")));
    char request [100];
    snprintf (request, sizeof (request), "{\"cmd\":\"bulk_show\",\"bulk_id\":\"%s\"}",
              sf_harness_str (reply, "bulk.bulk_id"));
    json_decref (reply);
    reply = sf_harness_admin_until (harness, request, "bulk.state", "done", 2000);
    assert (sf_harness_int (reply, "bulk.failed") == 4);
    assert (strstr (sf_harness_str (reply, "bulk.failures.0.error.text"),
                    "is ambiguous: uuid also reported by node 'n2'"));
    json_decref (reply);
    sf_envelope_t *env = sf_harness_recv (n1, 200);
    assert (env == NULL);                       //  Nothing assigned to either
    env = sf_harness_recv (n2, 0);
    assert (env == NULL);

    //  n2 stops reporting vm1: clear, and the job goes to n1, never n2
    sf_harness_inventory (n2, "-n2");
    reply = sf_harness_admin_until (harness, "{\"cmd\":\"instances\",\"node\":\"n1\"}",
                                    "instances.0.ambiguous", "", 2000);
    assert (json_is_null (sf_harness_get (reply, "instances.0.ambiguous")));
    json_decref (reply);
    char id [32];
    s_test_assigned (harness, n1, "u-vm1", NULL, "file-live", id, sizeof (id));
    env = sf_harness_recv (n2, 200);
    assert (env == NULL);
    //  n2's own instances go to n2
    s_test_assigned (harness, n2, "u-vm1-n2", NULL, "file-live", id, sizeof (id));
    zsock_destroy (&n2);
    zsock_destroy (&n1);
    sf_harness_destroy (&harness);
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
    assert (streq (sf_harness_str (reply, "instances.0.strategy"), "file-live"));
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
    s_test_curve ();
    s_test_unacked ();
    s_test_scoped ();
    s_test_identity ();
    //  @end
    printf ("OK\n");
}
