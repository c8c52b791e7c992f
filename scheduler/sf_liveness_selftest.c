/*  =========================================================================
    sf_liveness_selftest - the self test of sf_liveness: nodes that fall
    silent, come back, and a scheduler restart

    and leases (lease expiry, JobStatus answers, the pause slot kept across
    node loss and a restart).

    Test code, compiled into sched_selftest only: it drives a scheduler
    running in-process through sf_harness (see sf_harness_selftest.h).
    =========================================================================
*/
#include "sf_sched_classes.h"
#include "sf_harness_selftest.h"

//  --------------------------------------------------------------------------
//  Self test: nodes that fall silent, come back, and a scheduler restart

//  Keep alive beating until node number index of the sorted list is in state

static void
s_test_wait_node (sf_harness_t *harness, zsock_t *alive, int index, const char *state)
{
    char path [32];
    snprintf (path, sizeof (path), "nodes.%d.state", index);
    int64_t deadline = sf_time_mono_ms () + 10000;
    while (true) {
        if (alive)
            sf_harness_beat (alive);
        json_t *reply = sf_harness_admin (harness, "{\"cmd\":\"nodes\"}");
        bool reached = streq (sf_harness_str (reply, path), state);
        json_decref (reply);
        if (reached)
            return;
        assert (sf_time_mono_ms () < deadline);
        zclock_sleep (50);
    }
}

//  Say hello as node with its guard's max_pause and running jobs (a
//  comma-separated list, "" for none)

static void
s_hello (zsock_t *worker, const char *node, uint64_t max_pause_ms, const char *running)
{
    char *list = strdup (running);
    char *items [8];
    size_t count = 0;
    for (char *tok = strtok (list, ","); tok && count < 8; tok = strtok (NULL, ","))
        items [count++] = tok;
    char *strategies [] = { "file-live", "file-cold", "offline", "mixed" };
    sf_hello_t hello = SF_HELLO_INIT;
    hello.node = (char *) node;
    hello.software = "fake-worker 0";
    hello.max_jobs = 8;
    hello.strategies = strategies;
    hello.n_strategies = 4;
    hello.running_jobs = items;
    hello.n_running_jobs = count;
    hello.max_pause_ms = max_pause_ms;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_HELLO, &hello);
    sf_harness_send (worker, &env);
    free (list);
    sf_envelope_t *reply = sf_harness_recv (worker, 5000);
    assert (reply && reply->body_case == SF_BODY_WELCOME);
    sf_wire_free (&reply);
}

static void
    s_status (zsock_t *worker, const char *id, uint32_t attempt, int state);

//  A live worker: answers every JobQuery waiting on worker with RUNNING
//  (other messages are dropped)

static void
s_answer (zsock_t *worker)
{
    sf_envelope_t *env;
    while ((env = sf_harness_recv (worker, 0))) {
        if (env->body_case == SF_BODY_JOB_QUERY)
            s_status (worker, env->job_query->job_id, env->job_query->attempt,
                      SF_JOB_STATE_RUNNING);
        sf_wire_free (&env);
    }
}

//  The next message of kind body on sock within timeout_ms (others are
//  skipped), while a and b (if not NULL) beat every 100 ms; b (not sock)
//  answers JobQuery too if answers is true. NULL if none.

static sf_envelope_t *
s_recv_live (zsock_t *sock, int body, int timeout_ms, zsock_t *a, zsock_t *b, bool answers)
{
    int64_t deadline = sf_time_mono_ms () + timeout_ms;
    while (sf_time_mono_ms () < deadline) {
        if (a)
            sf_harness_beat (a);
        if (b)
            sf_harness_beat (b);
        if (b && answers && b != sock)
            s_answer (b);
        sf_envelope_t *env = sf_harness_recv (sock, 100);
        if (env && (int) env->body_case == body)
            return env;
        sf_wire_free (&env);
    }
    return NULL;
}

static sf_envelope_t *
s_recv_beating (zsock_t *sock, int body, int timeout_ms, zsock_t *a, zsock_t *b)
{
    return s_recv_live (sock, body, timeout_ms, a, b, false);
}

static void
s_status (zsock_t *worker, const char *id, uint32_t attempt, int state)
{
    sf_job_status_t status = SF_JOB_STATUS_INIT;
    status.job_id = (char *) id;
    status.attempt = attempt;
    status.state = state;
    status.phase = SF_PHASE_QUEUED;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_STATUS, &status);
    sf_harness_send (worker, &env);
}

static json_t *
s_job (sf_harness_t *harness, const char *id)
{
    return sf_harness_admin (harness, "{\"cmd\":\"job_show\",\"job_id\":\"%s\"}", id);
}

static void
s_assert_job (sf_harness_t *harness, const char *id, const char *state, const char *phase)
{
    json_t *reply = s_job (harness, id);
    if (!streq (sf_harness_str (reply, "job.state"), state)
    ||  (phase && !streq (sf_harness_str (reply, "job.phase"), phase))) {
        char *text = json_dumps (reply, 0);
        fprintf (stderr, "job %s: want %s/%s, got %s\n", id, state, phase? phase: "*", text);
        free (text);
        assert (false);
    }
    json_decref (reply);
}

static void
s_snapshot (sf_harness_t *harness, const char *instance, const char *want_id)
{
    json_t *reply = sf_harness_admin (harness, "{\"cmd\":\"snapshot\",\"instance\":\"%s\"}",
                                      instance);
    assert (streq (sf_harness_str (reply, "job.job_id"), want_id));
    json_decref (reply);
}

//  n2 falls silent while its guest is paused for J1 (max_paused 1, one job
//  at a time per node): down fails nothing; J2 queued for n2 waits; J4
//  for n2 with a window is skipped when the window closes while n2 is down
//  ("node 'n2' was down until the window closed"); J1's lease runs out, it
//  is asked about, then failed and cancelled; its pause slot is kept until
//  the pause began + n2's max_pause + 5 s, so J3 on n1 waits
//  that long; n2 comes back and J2 runs; a JobStatus RUNNING renews, then
//  UNKNOWN fails

static void
s_test_silent (sf_harness_t *harness, zsock_t *n1, zsock_t *n2)
{
    s_snapshot (harness, "u-vm1-n2", "J1");
    sf_envelope_t *env = s_recv_beating (n2, SF_BODY_JOB_ASSIGN, 2000, n1, n2);
    assert (env && streq (env->job_assign->job_id, "J1"));
    sf_wire_free (&env);
    s_snapshot (harness, "u-off-n2", "J2");
    sf_harness_event (n2, "J1", 1, SF_PHASE_PAUSED, 0);
    int64_t paused = sf_time_steady_ms ();     //  the scheduler's clock for slots
    json_t *reply = sf_harness_admin_until (harness, "{\"cmd\":\"job_show\",\"job_id\":\"J1\"}",
                                            "job.phase", "paused", 2000);
    json_decref (reply);
    s_snapshot (harness, "u-vm1", "J3");
    s_assert_job (harness, "J2", "queued", "waiting");
    s_assert_job (harness, "J3", "queued", "waiting");
    //  J4 for n2 with a window of 2 s, queued behind J1 and J2
    reply = sf_harness_admin (harness, "{\"cmd\":\"bulk_create\",\"select\":"
                              "{\"instances\":[\"u-mix-n2\"]},\"window\":2000}");
    assert (streq (sf_harness_str (reply, "bulk.jobs.0.job_id"), "J4"));
    json_decref (reply);

    //  n2 falls silent: down; its jobs keep their state; n1 stays up
    s_test_wait_node (harness, n1, 1, "down");
    reply = sf_harness_admin (harness, "{\"cmd\":\"nodes\"}");
    assert (streq (sf_harness_str (reply, "nodes.0.state"), "up"));
    json_decref (reply);
    s_assert_job (harness, "J1", "running", "paused");
    s_assert_job (harness, "J2", "queued", "waiting");
    //  J4's window closes while n2 is down: skipped with the reason
    reply = sf_harness_admin_until (harness, "{\"cmd\":\"job_show\",\"job_id\":\"J4\"}",
                                    "job.state", "skipped", 3000);
    assert (streq (sf_harness_str (reply, "job.state"), "skipped"));
    char *dump = json_dumps (reply, 0);
    assert (strstr (dump, "node 'n2' was down until the window closed"));
    free (dump);
    json_decref (reply);

    //  J1's lease runs out: asked, no answer, cancelled and failed
    env = s_recv_beating (n2, SF_BODY_JOB_QUERY, 5000, n1, NULL);
    assert (env && streq (env->job_query->job_id, "J1") && env->job_query->attempt == 1);
    sf_wire_free (&env);
    env = s_recv_beating (n2, SF_BODY_JOB_CANCEL, 5000, n1, NULL);
    assert (env && streq (env->job_cancel->job_id, "J1"));
    sf_wire_free (&env);
    reply = s_job (harness, "J1");
    assert (streq (sf_harness_str (reply, "job.state"), "failed"));
    assert (sf_harness_int (reply, "job.error.code") == SF_ETIMEDOUT);
    const char *text = sf_harness_str (reply, "job.error.text");
    assert (strncmp (text, "no news from node 'n2' for ", 27) == 0);
    assert (strstr (text, " s in phase converting; cancelled"));
    json_decref (reply);
    //  The slot is kept (and durable) until the pause began + 3 s + the
    //  margin of 5 s; the pause begins when the scheduler takes the event,
    //  which a loaded machine delays (seen: more than 1 s)
    char *until = sf_harness_sql (harness, "SELECT until_ms FROM pause_holds "
                                  "WHERE job_id = 'J1' AND node = 'n2'");
    assert (until && atoll (until) >= paused + 8000 && atoll (until) < paused + 11000);
    free (until);
    s_assert_job (harness, "J3", "queued", "waiting");
    env = s_recv_beating (n1, SF_BODY_JOB_ASSIGN, 10000, n1, NULL);
    int64_t assigned = sf_time_steady_ms ();
    assert (env && streq (env->job_assign->job_id, "J3"));
    sf_wire_free (&env);
    assert (assigned >= paused + 7950);
    s_assert_job (harness, "J2", "queued", "waiting");
    //  J3 goes on (n1 answers the questions about it from now on)
    sf_harness_event (n1, "J3", 1, SF_PHASE_PAUSED, 0);

    //  n2 comes back: up again, and J2 (queued for it) is assigned
    env = s_recv_live (n2, SF_BODY_JOB_ASSIGN, 5000, n2, n1, true);
    assert (env && streq (env->job_assign->job_id, "J2"));
    sf_wire_free (&env);
    reply = sf_harness_admin (harness, "{\"cmd\":\"nodes\"}");
    assert (streq (sf_harness_str (reply, "nodes.1.state"), "up"));
    json_decref (reply);
    //  Its late result for J1 is fenced, and so is a status for a job it
    //  does not hold
    sf_harness_result (n2, "J1", 1);
    s_status (n2, "J3", 1, SF_JOB_STATE_RUNNING);
    s_assert_job (harness, "J1", "failed", NULL);

    //  J2 has no news for its lease: asked; RUNNING renews it; asked
    //  again, UNKNOWN fails it
    env = s_recv_live (n2, SF_BODY_JOB_QUERY, 5000, n2, n1, true);
    assert (env && streq (env->job_query->job_id, "J2"));
    sf_wire_free (&env);
    s_status (n2, "J2", 1, SF_JOB_STATE_RUNNING);
    env = s_recv_live (n2, SF_BODY_JOB_QUERY, 5000, n2, n1, true);
    assert (env && streq (env->job_query->job_id, "J2"));
    sf_wire_free (&env);
    s_assert_job (harness, "J2", "queued", "assigned");
    s_status (n2, "J2", 1, SF_JOB_STATE_UNKNOWN);
    s_answer (n1);
    reply = sf_harness_admin_until (harness, "{\"cmd\":\"job_show\",\"job_id\":\"J2\"}",
                                    "job.state", "failed", 2000);
    assert (streq (sf_harness_str (reply, "job.error.text"),
                   "worker on node 'n2' does not know job 'J2'"));
    json_decref (reply);
    reply = sf_harness_admin (harness, "{\"cmd\":\"status\"}");
    assert (sf_harness_int (reply, "status.worker_fenced") == 2);
    json_decref (reply);
    s_answer (n1);
    s_assert_job (harness, "J3", "running", "paused");
}

//  A restarted scheduler remembers everything, waits for the nodes, gives
//  handed jobs fresh leases, and keeps a kept pause slot kept

static void
s_test_restart (sf_harness_t *harness)
{
    sf_harness_restart (harness);
    json_t *reply = sf_harness_admin (harness, "{\"cmd\":\"jobs\"}");
    assert (json_array_size (sf_harness_get (reply, "jobs")) == 4);
    json_decref (reply);
    //  A snapshot for a node that has not reconnected yet waits for it
    reply = sf_harness_admin (harness, "{\"cmd\":\"snapshot\",\"instance\":\"u-off\"}");
    assert (json_is_true (json_object_get (reply, "ok")));
    json_decref (reply);
    s_assert_job (harness, "J5", "queued", "waiting");

    //  n1 says hello (running J3, max_pause 2.5 s) and falls silent
    zsock_t *n1 = sf_harness_worker (harness);
    zsock_t *n2 = sf_harness_worker (harness);
    s_hello (n1, "n1", 2500, "J3");
    s_hello (n2, "n2", 3000, "");
    s_assert_job (harness, "J3", "running", "paused");
    sf_envelope_t *env = s_recv_beating (n1, SF_BODY_JOB_QUERY, 5000, n2, NULL);
    assert (env && streq (env->job_query->job_id, "J3"));
    sf_wire_free (&env);
    env = s_recv_beating (n1, SF_BODY_JOB_CANCEL, 5000, n2, NULL);
    assert (env && streq (env->job_cancel->job_id, "J3"));
    sf_wire_free (&env);
    s_assert_job (harness, "J3", "failed", NULL);
    char *until = sf_harness_sql (harness, "SELECT until_ms FROM pause_holds "
                                  "WHERE job_id = 'J3' AND node = 'n1'");
    assert (until);
    int64_t until_ms = atoll (until);
    free (until);
    assert (until_ms > sf_time_steady_ms () + 1000);

    //  Restarted while the slot is kept: it stays kept until its time
    zsock_destroy (&n1);
    zsock_destroy (&n2);
    sf_harness_restart (harness);
    n2 = sf_harness_worker (harness);
    s_hello (n2, "n2", 3000, "");
    s_snapshot (harness, "u-vm1-n2", "J6");
    env = s_recv_beating (n2, SF_BODY_JOB_ASSIGN, 10000, n2, NULL);
    int64_t assigned = sf_time_steady_ms ();
    assert (env && streq (env->job_assign->job_id, "J6"));
    sf_wire_free (&env);
    assert (assigned >= until_ms - 50);
    //  n1 never says hello again: down after the timeout
    s_test_wait_node (harness, n2, 0, "down");
    zsock_destroy (&n2);
}

void
sf_liveness_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_liveness: ");
    //  @selftest
    //  tcp: every restart binds new ports (an inproc endpoint is released
    //  asynchronously, and a quick restart could find it still taken)
    sf_harness_t *harness = sf_harness_new ("tcp_liveness_test", 1000);
    //  Short leases, one guest paused at once, one job at a time per node
    sf_schedcfg_t *cfg = sf_harness_cfg (harness);
    cfg->limits.lease_ms = 1000;
    cfg->limits.lease_rate = 1LL << 40;     //  the 12 GiB disks: 12 ms
    cfg->limits.max_paused = 1;
    cfg->max_jobs_per_node = 1;
    sf_harness_restart (harness);
    zsock_t *n1 = sf_harness_worker (harness);
    zsock_t *n2 = sf_harness_worker (harness);
    s_hello (n1, "n1", 60000, "");
    sf_harness_inventory (n1, "");
    s_hello (n2, "n2", 3000, "");
    sf_harness_inventory (n2, "-n2");
    json_t *reply = sf_harness_admin_until (harness, "{\"cmd\":\"instances\"}",
                                            "instances.5.name", "vm3", 2000);
    json_decref (reply);
    s_test_silent (harness, n1, n2);
    zsock_destroy (&n2);
    zsock_destroy (&n1);
    s_test_restart (harness);
    sf_harness_destroy (&harness);
    //  @end
    printf ("OK\n");
}
