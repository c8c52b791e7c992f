/*  =========================================================================
    sf_jobmsg - what a job's actor sends its owner over its pipe
    =========================================================================
*/
#include "sf_worker_classes.h"

SF_LOG_MODULE ("worker.task");

void
sf_jobmsg_send (zsock_t *pipe, sf_logctx_t *ctx, const char *kind, sf_envelope_t *env)
{
    assert (pipe && kind && env);
    sf_err_t err = SF_ERR_INIT;
    zframe_t *frame = sf_wire_encode (env, &err);
    if (!frame) {
        SF_ERROR (ctx, "cannot encode %s: %s", kind, err.text);
        return;
    }
    zsock_send (pipe, "sf", kind, frame);
    zframe_destroy (&frame);
}

void
sf_jobmsg_event (zsock_t *pipe, sf_logctx_t *ctx, const char *job_id, uint32_t attempt,
                 int phase, uint64_t ms, uint64_t bytes, const char *text)
{
    sf_job_event_t event = sf_wire_job_event (job_id, attempt, phase, ms, bytes);
    char clean [512];
    snprintf (clean, sizeof (clean), "%s", text ? text : "");
    event.text = sf_text_utf8_fix (clean);
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_EVENT, &event);
    SF_DEBUG (ctx, "phase %s ms=%" PRIu64 " bytes=%" PRIu64 "%s%s",
              sf_wire_phase_name (phase), ms, bytes, *clean ? ": " : "", clean);
    sf_jobmsg_send (pipe, ctx, "EVENT", &env);
}

//  --------------------------------------------------------------------------
//  Self test: an event arrives as the owner reads it, its text repaired

void
sf_jobmsg_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_jobmsg: ");
    //  @selftest
    zsock_t *owner = zsock_new_pair ("@inproc://sf-jobmsg-test");
    zsock_t *actor = zsock_new_pair (">inproc://sf-jobmsg-test");
    assert (owner && actor);
    sf_jobmsg_event (actor, NULL, "J7", 2, SF_PHASE_CONVERTED, 12, 4096, "bad \xff byte");
    char *kind = NULL;
    zframe_t *frame = NULL;
    assert (zsock_recv (owner, "sf", &kind, &frame) == 0);
    assert (streq (kind, "EVENT"));
    sf_err_t err = SF_ERR_INIT;
    sf_envelope_t *env = sf_wire_decode (frame, &err);
    assert (env && env->body_case == SF_BODY_JOB_EVENT);
    assert (streq (env->job_event->job_id, "J7") && env->job_event->attempt == 2);
    assert (env->job_event->phase == SF_PHASE_CONVERTED);
    assert (env->job_event->ms == 12 && env->job_event->bytes == 4096);
    assert (streq (env->job_event->text, "bad ? byte"));
    sf_wire_free (&env);
    zframe_destroy (&frame);
    zstr_free (&kind);
    zsock_destroy (&actor);
    zsock_destroy (&owner);
    //  @end
    printf ("OK\n");
}
