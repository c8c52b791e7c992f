/*  =========================================================================
    sf_cli - the CLI's connection to the scheduler's admin endpoint

    Why DEALER and not REQ: a REQ socket that never got its reply is stuck
    in the wrong state and must be recreated; a DEALER can time out, send
    again and ignore a late answer to an earlier request.
    =========================================================================
*/
#include "sf_core.h"
#include "sf_cli.h"

struct _sf_cli_t {
    zsock_t *dealer;            //  Owned
    char *endpoint;             //  Owned, for messages
    int timeout_ms;
    int64_t next_id;
};

sf_cli_t *
sf_cli_new (const char *endpoint, int timeout_ms, sf_err_t *err)
{
    assert (endpoint);
    sf_cli_t *self = (sf_cli_t *) zmalloc (sizeof (sf_cli_t));
    self->endpoint = strdup (endpoint);
    self->timeout_ms = timeout_ms;
    self->dealer = zsock_new (ZMQ_DEALER);
    assert (self->dealer);
    zsock_set_linger (self->dealer, 0);
    zsock_set_sndtimeo (self->dealer, timeout_ms);
    if (zsock_connect (self->dealer, "%s", endpoint) == -1) {
        sf_err_set (err, SF_EINVAL, "invalid admin endpoint '%s': %s", endpoint,
                    zmq_strerror (zmq_errno ()));
        sf_cli_destroy (&self);
    }
    return self;
}

void
sf_cli_destroy (sf_cli_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_cli_t *self = *self_p;
        zsock_destroy (&self->dealer);
        free (self->endpoint);
        free (self);
        *self_p = NULL;
    }
}

//  Wait for the reply with our id until the deadline

static json_t *
s_receive (sf_cli_t *self, json_int_t id, sf_err_t *err)
{
    int64_t deadline = sf_time_mono_ms () + self->timeout_ms;
    zpoller_t *poller = zpoller_new (self->dealer, NULL);
    json_t *reply = NULL;
    while (!reply) {
        int64_t left = deadline - sf_time_mono_ms ();
        if (left <= 0 || !zpoller_wait (poller, (int) left)) {
            sf_err_set (err, SF_ETIMEDOUT, "cannot reach scheduler at '%s'", self->endpoint);
            break;
        }
        zmsg_t *msg = zmsg_recv (self->dealer);
        zframe_t *frame = msg? zmsg_last (msg): NULL;
        if (frame)
            reply = json_loadb ((const char *) zframe_data (frame), zframe_size (frame),
                                0, NULL);
        zmsg_destroy (&msg);
        if (!json_is_object (reply)) {
            json_decref (reply);
            reply = NULL;
            sf_err_set (err, SF_EPROTO, "invalid reply from scheduler at '%s'",
                        self->endpoint);
            break;
        }
        if (json_integer_value (json_object_get (reply, "id")) != id) {
            json_decref (reply);        //  Late answer to an earlier request
            reply = NULL;
        }
    }
    zpoller_destroy (&poller);
    return reply;
}

static int
s_reply_error (json_t *reply, sf_err_t *err)
{
    json_t *error = json_object_get (reply, "error");
    const char *text = json_string_value (json_object_get (error, "text"));
    json_t *code = json_object_get (error, "code");
    if (!text || !json_is_integer (code))
        return sf_err_set (err, SF_EPROTO, "invalid error reply from scheduler");
    return sf_err_set (err, (int) json_integer_value (code), "%s", text);
}

int
sf_cli_call (sf_cli_t *self, json_t *request, json_t **reply_p, sf_err_t *err)
{
    assert (self);
    assert (json_is_object (request));
    json_int_t id = ++self->next_id;
    json_object_set_new (request, "id", json_integer (id));
    char *text = json_dumps (request, JSON_COMPACT);
    assert (text);
    int rc = zstr_send (self->dealer, text);
    free (text);
    if (rc) {
        sf_err_set (err, SF_ETIMEDOUT, "cannot reach scheduler at '%s'", self->endpoint);
        return SF_CLI_UNAVAILABLE;
    }
    json_t *reply = s_receive (self, id, err);
    if (!reply)
        return err->code == SF_ETIMEDOUT? SF_CLI_UNAVAILABLE: SF_CLI_FAILED;
    if (!json_is_true (json_object_get (reply, "ok"))) {
        s_reply_error (reply, err);
        json_decref (reply);
        return SF_CLI_FAILED;
    }
    *reply_p = reply;
    return SF_CLI_OK;
}

//  --------------------------------------------------------------------------
//  Self test

//  A fake scheduler: "status" gets a stale reply first, then its own;
//  "garbage" gets bytes that are not JSON; "refuse" gets an error.

static void
s_fake_answer (zsock_t *router, zframe_t *routing_id, json_t *reply)
{
    char *text = json_dumps (reply, JSON_COMPACT);
    zframe_send (&(zframe_t *) { zframe_dup (routing_id) }, router, ZFRAME_MORE);
    zstr_send (router, text);
    free (text);
    json_decref (reply);
}

static void
s_fake_serve (zsock_t *router)
{
    zmsg_t *msg = zmsg_recv (router);
    zframe_t *routing_id = zmsg_pop (msg);
    char *body = zmsg_popstr (msg);
    json_t *request = json_loads (body, 0, NULL);
    json_int_t id = json_integer_value (json_object_get (request, "id"));
    const char *cmd = json_string_value (json_object_get (request, "cmd"));
    if (streq (cmd, "garbage")) {
        zframe_send (&(zframe_t *) { zframe_dup (routing_id) }, router, ZFRAME_MORE);
        zstr_send (router, "<html>not json</html>");
    }
    else
    if (streq (cmd, "refuse"))
        s_fake_answer (router, routing_id, json_pack ("{s:b, s:I, s:{s:i, s:s}}",
            "ok", 0, "id", id, "error", "code", SF_ENOENT, "text", "no instance 'x'"));
    else {
        s_fake_answer (router, routing_id, json_pack ("{s:b, s:I}", "ok", 1, "id", id - 1));
        s_fake_answer (router, routing_id, json_pack ("{s:b, s:I, s:i}", "ok", 1,
                                                      "id", id, "answer", 42));
    }
    json_decref (request);
    zstr_free (&body);
    zframe_destroy (&routing_id);
    zmsg_destroy (&msg);
}

static void
s_fake_scheduler (zsock_t *pipe, void *args)
{
    (void) args;
    zsock_t *router = zsock_new_router ("tcp://127.0.0.1:*");
    zsock_signal (pipe, 0);
    zstr_send (pipe, zsock_endpoint (router));
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (zpoller_wait (poller, -1) == router)
        s_fake_serve (router);
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

static int
s_test_call (sf_cli_t *cli, const char *cmd, json_t **reply, sf_err_t *err)
{
    json_t *request = json_pack ("{s:s}", "cmd", cmd);
    int rc = sf_cli_call (cli, request, reply, err);
    json_decref (request);
    return rc;
}

void
sf_cli_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_cli: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    json_t *reply = NULL;
    assert (sf_cli_new ("nonsense", 100, &err) == NULL);
    assert (err.code == SF_EINVAL);

    //  Nobody answers (a socket that never reads, so that no other test
    //  can take the port meanwhile): unreachable, in bounded time
    zsock_t *mute = zsock_new_router ("tcp://127.0.0.1:*");
    assert (mute);
    sf_cli_t *cli = sf_cli_new (zsock_endpoint (mute), 300, &err);
    assert (cli);
    int64_t start = sf_time_mono_ms ();
    assert (s_test_call (cli, "nodes", &reply, &err) == SF_CLI_UNAVAILABLE);
    assert (sf_time_mono_ms () - start < 2000);
    assert (strstr (err.text, "cannot reach scheduler at 'tcp://127.0.0.1:"));
    sf_cli_destroy (&cli);
    zsock_destroy (&mute);

    zactor_t *fake = zactor_new (s_fake_scheduler, NULL);
    char *endpoint = zstr_recv (fake);
    cli = sf_cli_new (endpoint, 3000, &err);
    assert (cli);
    //  The stale reply is skipped
    assert (s_test_call (cli, "status", &reply, &err) == SF_CLI_OK);
    assert (json_integer_value (json_object_get (reply, "answer")) == 42);
    json_decref (reply);
    assert (s_test_call (cli, "refuse", &reply, &err) == SF_CLI_FAILED);
    assert (err.code == SF_ENOENT && streq (err.text, "no instance 'x'"));
    assert (s_test_call (cli, "garbage", &reply, &err) == SF_CLI_FAILED);
    assert (err.code == SF_EPROTO && strstr (err.text, "invalid reply"));
    //  The connection is still usable
    assert (s_test_call (cli, "status", &reply, &err) == SF_CLI_OK);
    json_decref (reply);
    sf_cli_destroy (&cli);
    zstr_free (&endpoint);
    zactor_destroy (&fake);
    //  @end
    printf ("OK\n");
}
