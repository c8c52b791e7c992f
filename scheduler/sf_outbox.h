/*  =========================================================================
    sf_outbox - what the scheduler sends to workers: now, or once the
    batch that makes its state durable is committed

    Outside a batch an envelope leaves at once. Between sf_outbox_hold and
    sf_outbox_flush (one transaction of worker messages) it waits, so that
    nothing leaves before the state it acknowledges is durable. The ROUTER
    is mandatory and non-blocking: a send to a connection that is gone
    fails at once.

    Acks (what a worker may stop keeping) leave only at a flush, after the
    batch's commit; sf_outbox_drop_acks forgets them if it failed.

    This is the one place where an undeliverable JobAssign is reported:
    whether it could not leave at once or at the flush, the unsent
    callback gets its job id and the reason, and the send itself does not
    fail. The callback decides (requeue or fail the job): one path.
    =========================================================================
*/
#ifndef SF_OUTBOX_H_INCLUDED
#define SF_OUTBOX_H_INCLUDED

typedef struct _sf_outbox_t sf_outbox_t;

//  A JobAssign for job_id did not reach its node. why->code is SF_ENODE
//  if the node's connection is gone (or it has none), else why the send
//  failed.
typedef void (sf_outbox_unsent_fn) (void *arg, const char *job_id, const sf_err_t *why);

//  Create on router (the workers' ROUTER) and peers, both borrowed: they
//  must outlive the result. Caller owns the result.
sf_outbox_t *
    sf_outbox_new (zsock_t *router, sf_peers_t *peers);

//  Destroy, dropping anything still held. Nullifies *self_p.
void
    sf_outbox_destroy (sf_outbox_t **self_p);

//  Call fn (with arg) for every JobAssign that does not reach its node.
void
    sf_outbox_on_unsent (sf_outbox_t *self, sf_outbox_unsent_fn *fn, void *arg);

//  Send env to the worker of node (now, or at the flush if held). Returns
//  0, or -1 with err set (SF_ENODE if the node is not connected). A
//  JobAssign never fails here: it goes to the unsent callback instead.
int
    sf_outbox_send (sf_outbox_t *self, const char *node, sf_envelope_t *env,
                    sf_err_t *err);

//  The same to the peer routing_id (a worker not known by name yet, e.g.
//  the Welcome to its hello).
int
    sf_outbox_send_to (sf_outbox_t *self, zframe_t *routing_id, sf_envelope_t *env,
                       sf_err_t *err);

//  From now on hold what is sent until sf_outbox_flush.
void
    sf_outbox_hold (sf_outbox_t *self);

//  Send everything held, in order, and stop holding; then the Acks
//  recorded since the last flush, one Acks message per node (more if they
//  are many). Call it once the batch is committed (after
//  sf_outbox_drop_acks if the commit failed).
void
    sf_outbox_flush (sf_outbox_t *self);

//  env (a JobEvent, JobResult or ImageDeleted from node; anything else is
//  ignored) is handled for good: record its Ack, sent at the next flush.
void
    sf_outbox_ack (sf_outbox_t *self, const char *node, const sf_envelope_t *env);

//  The batch was not committed: forget every Ack recorded since the last
//  flush (the worker keeps its messages and replays them).
void
    sf_outbox_drop_acks (sf_outbox_t *self);

//  Number of Acks waiting for the flush.
size_t
    sf_outbox_acks_pending (sf_outbox_t *self);

//  Self test of this class
void
    sf_outbox_test (bool verbose);

#endif
