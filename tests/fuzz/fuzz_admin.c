/*  =========================================================================
    fuzz_admin - libFuzzer target: the scheduler's admin request parser

    sf_admin parses a request and runs it in one go (schedule_* and the
    bulk selectors check their own arguments), so each input is sent, as
    the CLI sends it, to a real scheduler: sf_sched_actor on inproc://
    endpoints with a scratch SQLite database in /tmp (the self tests'
    harness), one fake worker that said hello and reported four instances
    and then never answers. The reply must be one JSON object that says
    ok or gives an error with a code and a text, and must echo a valid id.
    The database is deleted at exit.
    =========================================================================
*/
#include "sf_sched_classes.h"
#include "sf_harness_selftest.h"
#include "fuzz_alarm.h"

static sf_harness_t *s_harness;
static zsock_t *s_worker;         //  The fake worker; what it is sent is dropped
static zsock_t *s_admin;          //  The admin client (DEALER, as the CLI)

static void
s_teardown (void)
{
    zsock_destroy (&s_admin);
    zsock_destroy (&s_worker);
    sf_harness_destroy (&s_harness);
}

//  Called once, before fuzzing starts (fuzz_alarm.h)

void
fuzz_setup (void)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    sf_log_setup (SF_LOG_ERR, SF_LOG_TEXT);
    //  Node timeout of a day: the worker stays up without heartbeats
    s_harness = sf_harness_new ("fuzz-admin", 24 * 3600 * 1000);
    s_worker = sf_harness_worker (s_harness);
    sf_harness_hello (s_worker, "n1");
    sf_harness_inventory (s_worker, "");
    s_admin = zsock_new_dealer (sf_harness_admin_endpoint (s_harness));
    assert (s_admin);
    zsock_set_linger (s_admin, 0);
    //  The inventory is stored before the first request is answered
    json_t *reply = sf_harness_admin_until (s_harness, "{\"cmd\":\"instances\"}",
                                            "instances.3.node", "n1", 5000);
    json_decref (reply);
    atexit (s_teardown);
}

//  Drop what the scheduler sent the worker (job assignments, grants), so
//  its queue never fills

static void
s_drain_worker (void)
{
    zmsg_t *msg;
    while ((msg = zmsg_recv_nowait (s_worker)))
        zmsg_destroy (&msg);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    int rc;
    do
        rc = zmq_send (zsock_resolve (s_admin), data, size, 0);
    while (rc == -1 && zmq_errno () == EINTR);
    assert (rc == (int) size);
    bool answered = fuzz_alarm_wait (s_admin, 10000);
    assert (answered);              //  No reply in 10 s: the scheduler is stuck
    char *text = zstr_recv (s_admin);
    assert (text);
    json_error_t jerr;
    json_t *reply = json_loads (text, 0, &jerr);
    assert (json_is_object (reply));
    json_t *ok = json_object_get (reply, "ok");
    assert (json_is_boolean (ok));
    if (json_is_false (ok)) {
        json_t *error = json_object_get (reply, "error");
        assert (json_is_integer (json_object_get (error, "code")));
        assert (json_integer_value (json_object_get (error, "code")) != 0);
        const char *why = json_string_value (json_object_get (error, "text"));
        assert (why && *why);
    }
    //  A request that parses (within the size limit) and has a valid id
    //  gets it back
    json_t *request = size > SF_ADMIN_MAX_REQUEST? NULL
                    : json_loadb ((const char *) data, size, JSON_REJECT_DUPLICATES, NULL);
    json_t *id = json_object_get (request, "id");
    if (json_is_integer (id) || (json_is_string (id) && json_string_length (id) <= 256))
        assert (json_equal (id, json_object_get (reply, "id")));
    json_decref (request);
    json_decref (reply);
    zstr_free (&text);
    s_drain_worker ();
    return 0;
}
