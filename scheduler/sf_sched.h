/*  =========================================================================
    sf_sched - the scheduler object: owns the database, the worker and
    admin sockets, the peer table, and the event loop

    One thread, one zloop: a ROUTER for workers (sf_wire envelopes), a
    ROUTER for the CLI (sf_admin, JSON), and a timer that declares silent
    nodes down. main() creates it with sf_sched_new and runs sf_sched_run;
    tests run it in-process as a zactor (sf_sched_actor) on inproc:// or
    tcp://127.0.0.1 endpoints.
    =========================================================================
*/
#ifndef SF_SCHED_H_INCLUDED
#define SF_SCHED_H_INCLUDED

typedef struct _sf_sched_t sf_sched_t;
typedef struct _sf_dispatch_t sf_dispatch_t;

//  Counters of what the scheduler dropped, for logs and the "status"
//  admin command.
typedef struct {
    uint64_t worker_invalid;    //  Undecodable or invalid worker messages
    uint64_t worker_unknown;    //  Non-hello messages from unknown peers
    uint64_t worker_unexpected; //  Valid messages a worker must not send
    uint64_t worker_fenced;     //  Job messages dropped by fencing
    uint64_t admin_requests;    //  Admin requests answered
    uint64_t admin_invalid;     //  Admin requests rejected as malformed
} sf_sched_stats_t;

//  Open the database, bind both sockets and restore the nodes that were
//  up (they time out unless they say hello again). cfg is read only
//  during the call. Returns NULL with err set. Caller owns the result.
sf_sched_t *
    sf_sched_new (const sf_schedcfg_t *cfg, sf_err_t *err);

//  Close sockets and database. Nullifies *self_p.
void
    sf_sched_destroy (sf_sched_t **self_p);

//  Run the event loop until SIGINT/SIGTERM (zsys_interrupted) or, if pipe
//  is not NULL, until "$TERM" arrives on it. Returns 0.
int
    sf_sched_run (sf_sched_t *self, zsock_t *pipe);

//  zactor body: args is a const sf_schedcfg_t *. Besides "$TERM" the pipe
//  answers "ENDPOINTS" with two strings: the worker and admin endpoints
//  as bound (ephemeral ports resolved).
void
    sf_sched_actor (zsock_t *pipe, void *args);

//  Parts the admin side uses. All borrowed; valid while self lives.
sf_store_t *
    sf_sched_store (sf_sched_t *self);
sf_jobs_t *
    sf_sched_jobs (sf_sched_t *self);
sf_peers_t *
    sf_sched_peers (sf_sched_t *self);
sf_sched_stats_t *
    sf_sched_stats (sf_sched_t *self);
sf_dispatch_t *
    sf_sched_dispatch (sf_sched_t *self);
sf_schedules_t *
    sf_sched_schedules (sf_sched_t *self);
sf_retention_t *
    sf_sched_retention (sf_sched_t *self);

//  Send env to the worker of node (now, or when the current batch of
//  worker messages is committed). Returns 0, or -1 with err set (SF_ENODE
//  if the node is not connected).
int
    sf_sched_send (sf_sched_t *self, const char *node, sf_envelope_t *env,
                   sf_err_t *err);

//  Whether a warning about invalid input may be logged now: at most 20 a
//  second, so that a flood of garbage cannot flood the log (the counters
//  in sf_sched_stats stay exact). Once the flood is over, the next allowed
//  warning is preceded by how many were suppressed.
bool
    sf_sched_may_warn (sf_sched_t *self);

//  Snapshot the instance named by key (a uuid or a name): pick the
//  instance (SF_ENOENT if none, SF_EINVAL if the name is on several
//  nodes), its strategy: strategy if not NULL and it fits the instance
//  (SF_EINVAL for an unknown name or one that does not fit, see
//  sf_strategy_check), else the default (SF_ENOTSUP/SF_EINVAL/SF_ESTATE).
//  Check its node is up (SF_ENODE), that its worker announced the strategy
//  (SF_ENOTSUP "node 'n1' cannot run strategy 'rbd' (its worker has no Ceph
//  configured)") and that the instance has no unfinished job (SF_EBUSY).
//  Then commit the job (a bulk of one) and hand it to admission, which
//  assigns it at once unless a limit binds. Returns the job as JSON
//  (caller owns it). On any error no job row is created.
json_t *
    sf_sched_snapshot (sf_sched_t *self, const char *key, const char *strategy,
                       sf_err_t *err);

//  Self test of this class
void
    sf_sched_test (bool verbose);

#endif
