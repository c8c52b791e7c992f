/*  =========================================================================
    sf_admin_selftest - the self test of sf_admin: malformed requests over
    a real socket

    Test code, compiled into sched_selftest only: it drives a scheduler
    running in-process through sf_harness (see sf_harness_selftest.h).
    =========================================================================
*/
#include "sf_sched_classes.h"
#include "sf_harness_selftest.h"

//  --------------------------------------------------------------------------
//  Self test: malformed requests over a real socket

typedef struct {
    const char *request;
    int code;                   //  Expected error code
    const char *text;           //  Expected start of the error text
} bad_case_t;

static const bad_case_t s_bad_cases [] = {
    { "hello", SF_EPROTO, "request is not valid JSON" },
    { "", SF_EPROTO, "request is not valid JSON" },
    { "[1,2]", SF_EPROTO, "request must be a JSON object" },
    { "{\"cmd\":\"nodes\",\"cmd\":\"jobs\"}", SF_EPROTO, "request is not valid JSON" },
    { "{\"cmd\":5}", SF_EINVAL, "request needs a string 'cmd'" },
    { "{}", SF_EINVAL, "request needs a string 'cmd'" },
    { "{\"cmd\":\"format_disk\"}", SF_EINVAL, "unknown command 'format_disk'" },
    { "{\"cmd\":\"nodes\",\"verbose\":true}", SF_EINVAL,
      "unknown argument 'verbose' for command 'nodes'" },
    { "{\"cmd\":\"snapshot\"}", SF_EINVAL, "command 'snapshot' needs argument 'instance'" },
    { "{\"cmd\":\"snapshot\",\"instance\":42}", SF_EINVAL,
      "argument 'instance' must be a string" },
    { "{\"cmd\":\"snapshot\",\"instance\":\"vm1\",\"strategy\":\"\"}", SF_EINVAL,
      "argument 'strategy' must be 1 to" },
    { "{\"cmd\":\"snapshot\",\"instance\":\"vm1\",\"strategy\":null}", SF_EINVAL,
      "argument 'strategy' must be a string" },
    { "{\"cmd\":\"instances\",\"node\":\"\"}", SF_EINVAL, "argument 'node' must be 1 to" },
    { "{\"cmd\":\"status\",\"id\":[1]}", SF_EINVAL, "'id' must be an integer" },
    //  Found by tests/fuzz (fuzz_admin): now + window overflowed
    { "{\"cmd\":\"plan\",\"select\":{\"all\":true},\"window\":9223372036854775807}",
      SF_EINVAL, "argument 'window' must be an integer of at most 18 digits" },
    { "{\"cmd\":\"bulk_create\",\"select\":{\"all\":true},\"deadline\":"
      "-1000000000000000000}", SF_EINVAL, "argument 'deadline' must be an integer of" },
    { NULL }
};

static json_t *
s_test_call (zsock_t *client, const void *data, size_t size)
{
    zframe_t *frame = zframe_new (data, size);
    int rc = zframe_send (&frame, client, 0);
    assert (rc == 0);
    char *text = zstr_recv (client);
    assert (text);
    json_t *reply = json_loads (text, 0, NULL);
    assert (reply);
    zstr_free (&text);
    return reply;
}

static void
s_test_expect_error (json_t *reply, int code, const char *text)
{
    assert (json_is_false (json_object_get (reply, "ok")));
    assert (json_integer_value (sf_harness_get (reply, "error.code")) == code);
    const char *got = json_string_value (sf_harness_get (reply, "error.text"));
    if (!got || strncmp (got, text, strlen (text)))
        fprintf (stderr, "\nexpected '%s', got '%s'\n", text, got? got: "(null)");
    assert (got && strncmp (got, text, strlen (text)) == 0);
}

static void
s_test_frames (zsock_t *client, const char *endpoint)
{
    //  Too large, binary, several frames
    size_t size = SF_ADMIN_MAX_REQUEST + 1;
    char *large = (char *) zmalloc (size);
    memset (large, ' ', size);
    json_t *reply = s_test_call (client, large, size);
    s_test_expect_error (reply, SF_EPROTO, "request of 65537 bytes exceeds");
    json_decref (reply);
    free (large);
    reply = s_test_call (client, "\0\xff\x01{", 4);
    s_test_expect_error (reply, SF_EPROTO, "request is not valid JSON");
    json_decref (reply);
    zstr_sendx (client, "{\"cmd\":\"nodes\"}", "{\"cmd\":\"jobs\"}", "x", NULL);
    char *text = zstr_recv (client);
    reply = json_loads (text, 0, NULL);
    zstr_free (&text);
    s_test_expect_error (reply, SF_EPROTO, "request must be one frame, not 3");
    json_decref (reply);

    //  A REQ client gets its delimiter back
    zsock_t *req = zsock_new_req (endpoint);
    zstr_send (req, "{\"cmd\":\"jobs\",\"id\":\"r1\"}");
    text = zstr_recv (req);
    assert (text && streq (text, "{\"ok\":true,\"jobs\":[],\"id\":\"r1\"}"));
    zstr_free (&text);
    zsock_destroy (&req);
}

void
sf_admin_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_admin: ");
    //  @selftest
    sf_harness_t *harness = sf_harness_new ("sf_admin_test", 5000);
    zsock_t *client = zsock_new_dealer (sf_harness_admin_endpoint (harness));
    assert (client);
    zsock_set_rcvtimeo (client, 5000);
    int invalid = 0;
    for (const bad_case_t *bad = s_bad_cases; bad->request; bad++, invalid++) {
        json_t *reply = s_test_call (client, bad->request, strlen (bad->request));
        s_test_expect_error (reply, bad->code, bad->text);
        json_decref (reply);
    }
    s_test_frames (client, sf_harness_admin_endpoint (harness));
    invalid += 3;

    //  Valid requests on an empty scheduler
    json_t *reply = sf_harness_admin (harness, "{\"cmd\":\"job_show\",\"job_id\":\"J9\"}");
    s_test_expect_error (reply, SF_ENOENT, "no job 'J9'");
    json_decref (reply);
    //  A well-formed request with an unknown strategy fails in the command
    reply = sf_harness_admin (harness,
        "{\"cmd\":\"snapshot\",\"instance\":\"vm1\",\"strategy\":\"warp\"}");
    s_test_expect_error (reply, SF_EINVAL,
                         "unknown strategy 'warp' (known: file-cold, rbd, mixed, offline)");
    json_decref (reply);
    reply = sf_harness_admin (harness, "{\"cmd\":\"images\"}");
    assert (json_is_true (json_object_get (reply, "ok")));
    assert (json_array_size (json_object_get (reply, "images")) == 0);
    json_decref (reply);
    reply = sf_harness_admin (harness, "{\"cmd\":\"instances\",\"node\":\"n1\"}");
    assert (json_array_size (json_object_get (reply, "instances")) == 0);
    json_decref (reply);
    reply = sf_harness_admin (harness, "{\"cmd\":\"status\"}");
    assert (json_integer_value (sf_harness_get (reply, "status.admin_invalid")) == invalid);
    json_decref (reply);

    zsock_destroy (&client);
    sf_harness_destroy (&harness);
    //  @end
    printf ("OK\n");
}
