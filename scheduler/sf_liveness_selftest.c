/*  =========================================================================
    sf_liveness_selftest - the self test of sf_liveness: nodes that fall
    silent, come back, and a scheduler restart

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

static void
s_test_silent (sf_harness_t *harness, zsock_t *n1, zsock_t *n2)
{
    json_t *reply = sf_harness_admin (harness, "{\"cmd\":\"snapshot\",\"instance\":\"u-vm1-n2\"}");
    assert (streq (sf_harness_str (reply, "job.job_id"), "J1"));
    json_decref (reply);
    sf_envelope_t *env = sf_harness_recv (n2, 2000);
    assert (env && env->body_case == SF_BODY_JOB_ASSIGN);
    sf_wire_free (&env);
    sf_harness_event (n2, "J1", 1, SF_PHASE_QUEUED, 0);
    reply = sf_harness_admin_until (harness, "{\"cmd\":\"job_show\",\"job_id\":\"J1\"}",
                                    "job.state", "running", 2000);
    json_decref (reply);

    //  n2 falls silent: down, and its running job fails; n1 stays up
    s_test_wait_node (harness, n1, 1, "down");
    reply = sf_harness_admin (harness, "{\"cmd\":\"nodes\"}");
    assert (streq (sf_harness_str (reply, "nodes.0.state"), "up"));
    json_decref (reply);
    reply = sf_harness_admin (harness, "{\"cmd\":\"job_show\",\"job_id\":\"J1\"}");
    assert (streq (sf_harness_str (reply, "job.state"), "failed"));
    assert (sf_harness_int (reply, "job.error.code") == SF_ENODE);
    assert (streq (sf_harness_str (reply, "job.error.text"), "node 'n2' stopped heartbeating"));
    json_decref (reply);
    reply = sf_harness_admin (harness, "{\"cmd\":\"snapshot\",\"instance\":\"u-off-n2\"}");
    assert (sf_harness_int (reply, "error.code") == SF_ENODE);
    assert (streq (sf_harness_str (reply, "error.text"), "node 'n2' is down"));
    json_decref (reply);
    assert (sf_harness_job_rows (harness) == 1);

    //  It comes back: up again, but its late result for J1 is fenced
    sf_harness_result (n2, "J1", 1);
    s_test_wait_node (harness, n1, 1, "up");
    reply = sf_harness_admin (harness, "{\"cmd\":\"status\"}");
    assert (sf_harness_int (reply, "status.worker_fenced") == 1);
    json_decref (reply);
    reply = sf_harness_admin (harness, "{\"cmd\":\"job_show\",\"job_id\":\"J1\"}");
    assert (streq (sf_harness_str (reply, "job.state"), "failed"));
    json_decref (reply);
}

//  A restarted scheduler remembers everything, and waits for the nodes

static void
s_test_restart (sf_harness_t *harness)
{
    sf_harness_restart (harness);
    json_t *reply = sf_harness_admin (harness, "{\"cmd\":\"jobs\"}");
    assert (json_array_size (sf_harness_get (reply, "jobs")) == 1);
    assert (streq (sf_harness_str (reply, "jobs.0.state"), "failed"));
    json_decref (reply);
    reply = sf_harness_admin (harness, "{\"cmd\":\"snapshot\",\"instance\":\"u-off\"}");
    assert (sf_harness_int (reply, "error.code") == SF_ENODE);
    assert (strstr (sf_harness_str (reply, "error.text"), "has not reconnected"));
    json_decref (reply);

    zsock_t *n1 = sf_harness_worker (harness);
    sf_harness_hello (n1, "n1");
    reply = sf_harness_admin (harness, "{\"cmd\":\"snapshot\",\"instance\":\"u-off\"}");
    assert (streq (sf_harness_str (reply, "job.job_id"), "J2"));
    assert (streq (sf_harness_str (reply, "job.strategy"), "offline"));
    json_decref (reply);
    sf_envelope_t *env = sf_harness_recv (n1, 2000);
    assert (env && env->body_case == SF_BODY_JOB_ASSIGN);
    assert (streq (env->job_assign->strategy, "offline"));
    sf_wire_free (&env);
    //  n2 never says hello again: down after the timeout
    s_test_wait_node (harness, n1, 1, "down");
    zsock_destroy (&n1);
}

void
sf_liveness_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_liveness: ");
    //  @selftest
    sf_harness_t *harness = sf_harness_new ("sf_liveness_test", 1000);
    zsock_t *n1 = sf_harness_worker (harness);
    zsock_t *n2 = sf_harness_worker (harness);
    sf_harness_hello (n1, "n1");
    sf_harness_inventory (n1, "");
    sf_harness_hello (n2, "n2");
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
