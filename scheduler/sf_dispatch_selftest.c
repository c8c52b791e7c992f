/*  =========================================================================
    sf_dispatch_selftest - the self test of sf_dispatch: cancels (waiting,
    running, of a bulk, sent again on hello after a restart) and retries
    (a new attempt after its backoff, holding nothing meanwhile)

    Test code, compiled into sched_selftest only: it drives a scheduler
    running in-process through sf_harness (see sf_harness_selftest.h).
    =========================================================================
*/
#include "sf_sched_classes.h"
#include "sf_harness_selftest.h"

//  The next message of kind body on worker within timeout_ms (others,
//  such as heartbeats, are skipped), or NULL. Caller frees it.

static sf_envelope_t *
s_recv (zsock_t *worker, int body, int timeout_ms)
{
    int64_t deadline = sf_time_mono_ms () + timeout_ms;
    while (sf_time_mono_ms () < deadline) {
        sf_envelope_t *env = sf_harness_recv (worker, 100);
        if (env && (int) env->body_case == body)
            return env;
        sf_wire_free (&env);
    }
    return NULL;
}

//  Expect a JobAssign (or JobCancel) of job id, attempt on worker

static void
s_expect (zsock_t *worker, int body, const char *id, uint32_t attempt, int timeout_ms)
{
    sf_envelope_t *env = s_recv (worker, body, timeout_ms);
    assert (env);
    if (body == SF_BODY_JOB_ASSIGN)
        assert (streq (env->job_assign->job_id, id) && env->job_assign->attempt == attempt);
    else
        assert (streq (env->job_cancel->job_id, id) && env->job_cancel->attempt == attempt);
    sf_wire_free (&env);
}

//  A failed result of job id's attempt: code, text, retryable

static void
s_failed (zsock_t *worker, const char *id, uint32_t attempt, int code, const char *text,
          bool retryable)
{
    sf_error_info_t error = SF_ERROR_INFO_INIT;
    error.code = code, error.text = (char *) text;
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    result.job_id = (char *) id, result.attempt = attempt, result.ok = 0;
    result.strategy = "file-cold", result.consistency = "paused";
    result.error = &error, result.retryable = retryable, result.resumed = 1;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_RESULT, &result);
    sf_harness_send (worker, &env);
}

static json_t *
s_job_until (sf_harness_t *harness, const char *id, const char *path, const char *want)
{
    char request [128];
    snprintf (request, sizeof (request), "{\"cmd\":\"job_show\",\"job_id\":\"%s\"}", id);
    json_t *reply = sf_harness_admin_until (harness, request, path, want, 5000);
    if (!streq (sf_harness_str (reply, path), want))
        fprintf (stderr, "\njob %s: %s is '%s', not '%s'\n", id, path,
                 sf_harness_str (reply, path), want);
    assert (streq (sf_harness_str (reply, path), want));
    return reply;
}

static void
s_snapshot (sf_harness_t *harness, const char *instance, const char *id)
{
    json_t *reply = sf_harness_admin (harness, "{\"cmd\":\"snapshot\",\"instance\":\"%s\"}",
                                      instance);
    if (!streq (sf_harness_str (reply, "job.job_id"), id))
        fprintf (stderr, "\nsnapshot of %s: %s\n", instance, json_dumps (reply, 0));
    assert (streq (sf_harness_str (reply, "job.job_id"), id));
    json_decref (reply);
}

//  A job that runs gets a JobCancel and ends cancelled with its result; a
//  waiting one (max_paused 1 holds it back) ends cancelled at once

static void
s_test_cancel (sf_harness_t *harness, zsock_t *worker)
{
    s_snapshot (harness, "vm1", "J1");
    s_expect (worker, SF_BODY_JOB_ASSIGN, "J1", 1, 2000);
    sf_harness_event (worker, "J1", 1, SF_PHASE_QUEUED, 0);
    sf_harness_event (worker, "J1", 1, SF_PHASE_PAUSED, 0);
    json_decref (s_job_until (harness, "J1", "job.phase", "paused"));
    //  J2 (vm3 is shut off: no pause) runs; J3 (vm1 is busy) is refused
    s_snapshot (harness, "vm3", "J2");
    s_expect (worker, SF_BODY_JOB_ASSIGN, "J2", 1, 2000);

    json_t *reply = sf_harness_admin (harness, "{\"cmd\":\"cancel\",\"job_ids\":"
                                      "[\"J1\",\"J99\",\"J1\"]}");
    assert (json_is_true (json_object_get (reply, "ok")));
    assert (streq (sf_harness_str (reply, "cancel.0.outcome"), "cancel_sent"));
    assert (streq (sf_harness_str (reply, "cancel.0.node"), "n1"));
    assert (streq (sf_harness_str (reply, "cancel.1.outcome"), "refused"));
    assert (streq (sf_harness_str (reply, "cancel.1.error.text"), "no job 'J99'"));
    assert (streq (sf_harness_str (reply, "cancel.2.outcome"), "cancel_sent"));
    json_decref (reply);
    s_expect (worker, SF_BODY_JOB_CANCEL, "J1", 1, 2000);
    s_expect (worker, SF_BODY_JOB_CANCEL, "J1", 1, 2000);
    //  Still running until the worker says it stopped
    reply = sf_harness_admin (harness, "{\"cmd\":\"job_show\",\"job_id\":\"J1\"}");
    assert (streq (sf_harness_str (reply, "job.state"), "running"));
    json_decref (reply);
    s_failed (worker, "J1", 1, SF_ECANCELED, "job cancelled", false);
    reply = s_job_until (harness, "J1", "job.state", "cancelled");
    assert (sf_harness_int (reply, "job.error.code") == SF_ECANCELED);
    assert (streq (sf_harness_str (reply, "job.error.text"), "job cancelled"));
    json_decref (reply);
    //  Ended: refused, naming its state
    reply = sf_harness_admin (harness, "{\"cmd\":\"cancel\",\"job_ids\":[\"J1\"]}");
    assert (streq (sf_harness_str (reply, "cancel.0.outcome"), "refused"));
    assert (sf_harness_int (reply, "cancel.0.error.code") == SF_ESTATE);
    assert (streq (sf_harness_str (reply, "cancel.0.error.text"),
                   "job 'J1' has already ended: cancelled"));
    json_decref (reply);
    //  The stopped worker's own SF_ECANCELED (nobody asked): failed
    s_failed (worker, "J2", 1, SF_ECANCELED, "job cancelled", false);
    json_decref (s_job_until (harness, "J2", "job.state", "failed"));
    //  Bad requests change nothing
    const char *bad [] = {
        "{\"cmd\":\"cancel\"}", "{\"cmd\":\"cancel\",\"job_ids\":[]}",
        "{\"cmd\":\"cancel\",\"job_ids\":\"J1\"}", "{\"cmd\":\"cancel\",\"job_ids\":[1]}",
        "{\"cmd\":\"cancel\",\"job_ids\":[\"J1\"],\"bulk_id\":\"B1\"}",
        "{\"cmd\":\"cancel\",\"bulk_id\":\"\"}", "{\"cmd\":\"cancel\",\"force\":true}",
        NULL
    };
    for (int i = 0; bad [i]; i++) {
        reply = sf_harness_admin (harness, "%s", bad [i]);
        assert (sf_harness_int (reply, "error.code") == SF_EINVAL);
        json_decref (reply);
    }
    reply = sf_harness_admin (harness, "{\"cmd\":\"cancel\",\"bulk_id\":\"B77\"}");
    assert (sf_harness_int (reply, "error.code") == SF_ENOENT);
    assert (streq (sf_harness_str (reply, "error.text"), "no bulk 'B77'"));
    json_decref (reply);
}

//  A bulk with one job running and one held back by max_paused: cancel
//  --bulk ends the waiting one now, the running one with its result, and
//  the bulk is done with both cancelled

static void
s_test_cancel_bulk (sf_harness_t *harness, zsock_t *worker)
{
    json_t *reply = sf_harness_admin (harness, "{\"cmd\":\"bulk_create\",\"select\":"
                                      "{\"instances\":[\"vm1\",\"u-mix\"]}}");
    assert (json_is_true (json_object_get (reply, "ok")));
    char bulk [32];
    snprintf (bulk, sizeof (bulk), "%s", sf_harness_str (reply, "bulk.bulk_id"));
    json_decref (reply);
    sf_envelope_t *env = s_recv (worker, SF_BODY_JOB_ASSIGN, 2000);
    assert (env);
    char running [32];
    snprintf (running, sizeof (running), "%s", env->job_assign->job_id);
    sf_wire_free (&env);
    //  max_paused is 1: the other one waits
    assert (s_recv (worker, SF_BODY_JOB_ASSIGN, 300) == NULL);
    reply = sf_harness_admin (harness, "{\"cmd\":\"cancel\",\"bulk_id\":\"%s\"}", bulk);
    assert (json_array_size (sf_harness_get (reply, "cancel")) == 2);
    int now = 0, sent = 0;
    for (int i = 0; i < 2; i++) {
        char path [32];
        snprintf (path, sizeof (path), "cancel.%d.outcome", i);
        now += streq (sf_harness_str (reply, path), "cancelled");
        sent += streq (sf_harness_str (reply, path), "cancel_sent");
    }
    assert (now == 1 && sent == 1);
    json_decref (reply);
    s_expect (worker, SF_BODY_JOB_CANCEL, running, 1, 2000);
    //  Nothing else is assigned: the waiting one is gone from admission
    assert (s_recv (worker, SF_BODY_JOB_ASSIGN, 300) == NULL);
    s_failed (worker, running, 1, SF_ECANCELED, "job cancelled", false);
    char request [128];
    snprintf (request, sizeof (request), "{\"cmd\":\"bulk_show\",\"bulk_id\":\"%s\"}", bulk);
    reply = sf_harness_admin_until (harness, request, "bulk.state", "done", 5000);
    assert (streq (sf_harness_str (reply, "bulk.state"), "done"));
    assert (sf_harness_int (reply, "bulk.cancelled") == 2);
    assert (json_array_size (sf_harness_get (reply, "bulk.failures")) == 2);
    json_decref (reply);
}

//  A cancel that cannot reach its node's worker is durable: after a
//  scheduler restart, the worker's next hello gets it

static zsock_t *
s_test_cancel_restart (sf_harness_t *harness, zsock_t *worker, const char *id)
{
    s_snapshot (harness, "vm1", id);
    s_expect (worker, SF_BODY_JOB_ASSIGN, id, 1, 2000);
    sf_harness_event (worker, id, 1, SF_PHASE_QUEUED, 0);
    json_decref (s_job_until (harness, id, "job.state", "running"));
    zsock_destroy (&worker);
    json_t *reply = sf_harness_admin (harness, "{\"cmd\":\"cancel\",\"job_ids\":[\"%s\"]}",
                                      id);
    assert (streq (sf_harness_str (reply, "cancel.0.outcome"), "cancel_sent"));
    json_decref (reply);
    sf_harness_restart (harness);
    worker = sf_harness_worker (harness);
    sf_harness_hello_with (worker, "n1", NULL, id);
    s_expect (worker, SF_BODY_JOB_CANCEL, id, 1, 2000);
    s_failed (worker, id, 1, SF_ECANCELED, "job cancelled", false);
    json_decref (s_job_until (harness, id, "job.state", "cancelled"));
    return worker;
}

//  A retryable failure: attempt 2 is assigned after the backoff (300 ms),
//  holding no slot meanwhile; the old attempt's result is dropped; done
//  with both attempts listed. Then a scheduler restart in a backoff keeps
//  the job waiting until its time.

static void
s_test_retry (sf_harness_t *harness, zsock_t *worker, const char *id)
{
    s_snapshot (harness, "vm1", id);
    s_expect (worker, SF_BODY_JOB_ASSIGN, id, 1, 2000);
    int64_t failed_at = sf_time_mono_ms ();
    s_failed (worker, id, 1, SF_ESTORE, "cannot write to image directory '/x'", true);
    json_t *reply = s_job_until (harness, id, "job.phase", "waiting");
    assert (sf_harness_int (reply, "job.attempt") == 2);
    assert (streq (sf_harness_str (reply, "job.state"), "queued"));
    assert (streq (sf_harness_str (reply, "job.attempts.0.error.text"),
                   "cannot write to image directory '/x'"));
    json_decref (reply);
    reply = sf_harness_admin (harness, "{\"cmd\":\"limits\"}");
    assert (sf_harness_int (reply, "admission.queued") == 0);
    assert (sf_harness_int (reply, "admission.running") == 0);
    assert (sf_harness_int (reply, "admission.paused") == 0);
    json_decref (reply);
    s_expect (worker, SF_BODY_JOB_ASSIGN, id, 2, 3000);
    assert (sf_time_mono_ms () - failed_at >= 300);
    s_failed (worker, id, 1, SF_ESTORE, "late", true);         //  Stale: dropped
    sf_harness_result (worker, id, 2);
    reply = s_job_until (harness, id, "job.state", "done");
    assert (json_array_size (sf_harness_get (reply, "job.attempts")) == 2);
    assert (json_is_null (sf_harness_get (reply, "job.attempts.1.error")));
    json_decref (reply);
}

//  A scheduler restarted during a backoff (2 s) keeps the job out of
//  admission until its time, then assigns attempt 2

static zsock_t *
s_test_retry_restart (sf_harness_t *harness, zsock_t *worker, const char *id)
{
    sf_harness_cfg (harness)->retry_backoff_ms = 2000;
    sf_harness_restart (harness);
    zsock_destroy (&worker);
    worker = sf_harness_worker (harness);
    sf_harness_hello_with (worker, "n1", "file-live,file-cold,offline,mixed", "");
    s_snapshot (harness, "vm1", id);
    s_expect (worker, SF_BODY_JOB_ASSIGN, id, 1, 2000);
    int64_t failed_at = sf_time_mono_ms ();
    s_failed (worker, id, 1, SF_ECEPH, "cannot connect to the cluster", true);
    json_decref (s_job_until (harness, id, "job.phase", "waiting"));
    sf_harness_restart (harness);
    zsock_destroy (&worker);
    worker = sf_harness_worker (harness);
    sf_harness_hello_with (worker, "n1", "file-live,file-cold,offline,mixed", "");
    sf_envelope_t *env = s_recv (worker, SF_BODY_JOB_ASSIGN, 5000);
    assert (env && env->job_assign->attempt == 2);
    assert (sf_time_mono_ms () - failed_at >= 2000);
    sf_wire_free (&env);
    //  The last attempt fails: "after 2 attempts", with both errors kept
    s_failed (worker, id, 2, SF_ECEPH, "cannot connect to the cluster", true);
    json_t *reply = s_job_until (harness, id, "job.state", "failed");
    assert (streq (sf_harness_str (reply, "job.error.text"),
                   "cannot connect to the cluster (after 2 attempts)"));
    assert (json_array_size (sf_harness_get (reply, "job.attempts")) == 2);
    json_decref (reply);
    return worker;
}

void
sf_dispatch_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_dispatch: ");
    //  @selftest
    sf_harness_t *harness = sf_harness_new ("sf_dispatch_test", 5000);
    sf_schedcfg_t *cfg = sf_harness_cfg (harness);
    cfg->limits.max_paused = 1;
    cfg->retry_backoff_ms = 300;
    cfg->max_attempts = 2;
    sf_harness_restart (harness);
    zsock_t *worker = sf_harness_worker (harness);
    sf_harness_hello_with (worker, "n1", "file-live,file-cold,offline,mixed", "");
    sf_harness_inventory (worker, "");
    json_t *reply = sf_harness_admin_until (harness, "{\"cmd\":\"instances\"}",
                                            "instances.3.name", "vm4", 2000);
    json_decref (reply);
    s_test_cancel (harness, worker);
    s_test_cancel_bulk (harness, worker);
    worker = s_test_cancel_restart (harness, worker, "J5");
    s_test_retry (harness, worker, "J6");
    worker = s_test_retry_restart (harness, worker, "J7");
    zsock_destroy (&worker);
    sf_harness_destroy (&harness);
    //  @end
    printf ("OK\n");
}
