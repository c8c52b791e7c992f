/*  =========================================================================
    sf_pruneq - the bounded queue of image deletions (ImageDelete requests)
    waiting for the one deletion the agent runs at a time

    A scheduler, buggy or hostile, can ask for any number of deletions; the
    worker runs one (an sf_prune actor) and keeps at most max waiting,
    oldest first. A request beyond that is answered at once with
    ImageDeleted{error SF_EBUSY} (sf_pruneq_answer), which the scheduler's
    retention retries later. The queue owns the envelopes it holds.
    =========================================================================
*/
#ifndef SF_PRUNEQ_H_INCLUDED
#define SF_PRUNEQ_H_INCLUDED

typedef struct _sf_pruneq_t sf_pruneq_t;

#define SF_PRUNEQ_MAX   256     //  deletions the agent keeps waiting

//  Create an empty queue holding at most max requests. Caller owns it.
sf_pruneq_t *
    sf_pruneq_new (size_t max);

//  Free the queue and every request still in it. Nullifies *self_p.
void
    sf_pruneq_destroy (sf_pruneq_t **self_p);

//  Queue *env_p (an Envelope{ImageDelete}; ownership taken, *env_p set to
//  NULL). Returns 0, or -1 with err (SF_EBUSY, "node 'NODE' is busy: N
//  image deletions are waiting") if the queue is full; *env_p is then
//  left to the caller.
int
    sf_pruneq_push (sf_pruneq_t *self, sf_envelope_t **env_p, const char *node,
                    sf_err_t *err);

//  The oldest request, removed from the queue (caller owns it), or NULL.
sf_envelope_t *
    sf_pruneq_pop (sf_pruneq_t *self);

//  Number of requests waiting.
size_t
    sf_pruneq_size (sf_pruneq_t *self);

//  The answer to request that was not run: an encoded
//  Envelope{ImageDeleted} with its request id, its image as given (store,
//  id, path) and err as the error. Returns a new frame (caller owns it).
zframe_t *
    sf_pruneq_answer (const sf_image_delete_t *request, const sf_err_t *err);

//  Self test of this class
void
    sf_pruneq_test (bool verbose);

#endif
