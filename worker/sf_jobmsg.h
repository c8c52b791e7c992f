/*  =========================================================================
    sf_jobmsg - what a job's actor (a snapshot task, a restore) sends its
    owner, the agent, over its pipe: "EVENT" and "RESULT" frames of
    encoded envelopes, the agent journals and forwards them
    =========================================================================
*/
#ifndef SF_JOBMSG_H_INCLUDED
#define SF_JOBMSG_H_INCLUDED

//  Send env (not consumed) on pipe as "kind" + its encoding; a message that
//  cannot be encoded is logged (ctx) and dropped.
void
    sf_jobmsg_send (zsock_t *pipe, sf_logctx_t *ctx, const char *kind,
                    sf_envelope_t *env);

//  Send a phase event of job_id/attempt: phase, ms, bytes and text (may be
//  NULL; cut at 511 bytes and made valid UTF-8), logged at debug level.
void
    sf_jobmsg_event (zsock_t *pipe, sf_logctx_t *ctx, const char *job_id,
                     uint32_t attempt, int phase, uint64_t ms, uint64_t bytes,
                     const char *text);

//  Self test of this class
void
    sf_jobmsg_test (bool verbose);

#endif
