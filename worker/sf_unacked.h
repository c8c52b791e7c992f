/*  =========================================================================
    sf_unacked - the worker's outbox of messages the scheduler has not
    acknowledged yet

    Every JobEvent, JobResult and ImageDeleted the worker sends is kept, in
    the order sent, until an Ack matches it (sf_wire_ack_matches); after
    each Welcome the agent sends all of them again, so that nothing a
    scheduler missed while it was down or restarting is lost. The outbox
    is bounded: beyond its size the oldest events are dropped (with a
    count the agent logs), never a result or a deletion answer.
    =========================================================================
*/
#ifndef SF_UNACKED_H_INCLUDED
#define SF_UNACKED_H_INCLUDED

typedef struct _sf_unacked_t sf_unacked_t;

//  Create an empty outbox keeping up to max events (results and deletion
//  answers are always kept). Caller owns it.
sf_unacked_t *
    sf_unacked_new (size_t max);

//  Destroy. Nullifies *self_p.
void
    sf_unacked_destroy (sf_unacked_t **self_p);

//  Keep frame (an encoded Envelope; copied) until it is acknowledged. A
//  frame that needs no Ack (or does not decode) is not kept. A message
//  equal in its Ack to one kept replaces it (at the end). Returns the
//  number of events dropped to stay within max (0 mostly).
size_t
    sf_unacked_add (sf_unacked_t *self, zframe_t *frame);

//  Forget what acks acknowledges. If results is not NULL, the job id and
//  attempt of each acknowledged JobResult are appended to it as strings
//  "JOB_ID ATTEMPT" (the list must free them: zstr_free). Returns the
//  number of messages forgotten.
size_t
    sf_unacked_ack (sf_unacked_t *self, const sf_acks_t *acks, zlistx_t *results);

//  Messages kept, oldest first: the first one, then the next ones; NULL
//  at the end. Borrowed: valid until the next change.
zframe_t *
    sf_unacked_first (sf_unacked_t *self);
zframe_t *
    sf_unacked_next (sf_unacked_t *self);

//  Number of messages kept.
size_t
    sf_unacked_size (sf_unacked_t *self);

//  True if a JobResult of job_id is kept (not acknowledged yet).
bool
    sf_unacked_has_result (sf_unacked_t *self, const char *job_id);

//  Job ids of the results kept, sorted: a new list of strings (caller owns).
zlistx_t *
    sf_unacked_result_ids (sf_unacked_t *self);

//  Self test of this class
void
    sf_unacked_test (bool verbose);

#endif
