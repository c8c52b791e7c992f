/*  =========================================================================
    fuzz_wire - libFuzzer target: the envelope decoder (sf_wire)

    Each input is one frame as a peer would send it. It is decoded and
    validated (sf_wire_decode); an envelope that passes must encode again
    within the cap and decode to an envelope that passes too. Then the
    same bytes go through a real inproc DEALER -> ROUTER pair, as one frame
    and split into two, and are read by sf_wire_recv_peer, the path both
    daemons receive on (routing id, frame count, User-Id).
    =========================================================================
*/
#include "sf_core.h"
#include "fuzz_alarm.h"

static zsock_t *s_router;
static zsock_t *s_dealer;

//  Called once, before fuzzing starts (fuzz_alarm.h)

void
fuzz_setup (void)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    s_router = zsock_new_router ("inproc://fuzz_wire");
    s_dealer = zsock_new_dealer (">inproc://fuzz_wire");
    assert (s_router && s_dealer);
}

//  Send data as frames (one, or two split at half) and receive it as the
//  scheduler does

static void
s_through_sockets (const uint8_t *data, size_t size, bool split)
{
    size_t half = split? size / 2: size;
    if (split)
        zmq_send (zsock_resolve (s_dealer), data, half, ZMQ_SNDMORE);
    zmq_send (zsock_resolve (s_dealer), data + half, size - half, 0);
    //  The message is there at once (inproc), but a wait for it may be
    //  interrupted by libFuzzer's SIGALRM: wait first, then receive
    fuzz_alarm_wait (s_router, -1);
    zframe_t *routing_id = NULL;
    char *peer = NULL;
    sf_err_t err = SF_ERR_INIT;
    sf_envelope_t *env = sf_wire_recv_peer (zsock_resolve (s_router), &routing_id,
                                            &peer, &err);
    assert (routing_id);
    assert (peer == NULL);          //  inproc: nobody vouches
    assert (split? env == NULL: true);
    assert (env || err.code == SF_EPROTO);
    sf_wire_free (&env);
    zframe_destroy (&routing_id);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    sf_err_t err = SF_ERR_INIT;
    zframe_t *frame = zframe_new (data, size);
    sf_envelope_t *env = sf_wire_decode (frame, &err);
    zframe_destroy (&frame);
    if (env) {
        //  What passed validation encodes within the cap. It need not decode
        //  again: protobuf-c keeps unknown fields, and accepts field number
        //  0 in an overlong tag (0x82 0x00) that it writes short and then
        //  refuses; but if it does decode, it is the same kind of message
        assert (sf_wire_body_name (env->body_case));
        zframe_t *again = sf_wire_encode (env, &err);
        assert (again);
        sf_envelope_t *copy = sf_wire_decode (again, &err);
        assert (!copy || copy->body_case == env->body_case);
        sf_wire_free (&copy);
        zframe_destroy (&again);
        sf_wire_free (&env);
    }
    else {
        assert (err.code == SF_EPROTO && *err.text);
    }
    s_through_sockets (data, size, false);
    if (size >= 2)
        s_through_sockets (data, size, true);
    return 0;
}
