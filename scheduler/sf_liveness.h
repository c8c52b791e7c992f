/*  =========================================================================
    sf_liveness - which nodes are up, kept durable, and what happens to
    the jobs of a node that falls silent

    Any message from a worker proves it alive (touch); a timer (check)
    declares every node that has been silent for node_timeout down: it
    gets no new jobs. That fails nothing (a cut link may only delay its
    jobs): its queued jobs wait for it or their window's end
    (sf_dispatch), and the jobs it holds are governed by their leases
    (sf_lease), so none waits forever on a dead node. last_seen is written at most once a
    second per node, so heartbeats from many nodes do not turn into as
    many fsyncs.
    =========================================================================
*/
#ifndef SF_LIVENESS_H_INCLUDED
#define SF_LIVENESS_H_INCLUDED

typedef struct _sf_liveness_t sf_liveness_t;

//  Create on the scheduler's store, jobs and peers (all borrowed; they
//  must outlive the result). Caller owns the result.
sf_liveness_t *
    sf_liveness_new (sf_store_t *store, sf_jobs_t *jobs, sf_peers_t *peers,
                     int64_t node_timeout_ms);

//  Destroy. Nullifies *self_p.
void
    sf_liveness_destroy (sf_liveness_t **self_p);

//  At start: every node the database says is up becomes a peer without a
//  connection, so it goes down unless it says hello within node_timeout.
//  Returns 0 or -1 with err set.
int
    sf_liveness_restore (sf_liveness_t *self, sf_err_t *err);

//  A worker said hello from routing_id. In one transaction (committed
//  before this returns, so before any Welcome): the node is up, and every
//  unfinished job it has that hello->running_jobs does not list fails
//  (SF_ENODE "worker on node 'n1' restarted and lost job 'J4'"; see
//  sf_jobs_reconcile). Then the peer table binds routing_id to the node.
//  Returns the peer (owned by the table; *replaced as in sf_peers_hello),
//  or NULL with err set and nothing changed: do not welcome it, its next
//  message gets "send hello" and it tries again. SF_EBUSY if the node is
//  new and the peer table is full (sf_peers_admits, counted there), SF_EDB
//  if the database fails.
sf_peer_t *
    sf_liveness_hello (sf_liveness_t *self, zframe_t *routing_id,
                       const sf_hello_t *hello, bool *replaced, sf_err_t *err);

//  peer sent a message: it is alive. Marks it up again if it was down;
//  writes last_seen and running_jobs if due or if force is true.
void
    sf_liveness_touch (sf_liveness_t *self, sf_peer_t *peer, bool force);

//  Declare silent nodes down (their jobs keep their state). Call it from
//  a timer every sf_liveness_interval ms.
void
    sf_liveness_check (sf_liveness_t *self);

//  How often to call sf_liveness_check, in ms.
int64_t
    sf_liveness_interval (sf_liveness_t *self);

//  Self test of this class
void
    sf_liveness_test (bool verbose);

#endif
