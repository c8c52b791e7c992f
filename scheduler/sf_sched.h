/*  =========================================================================
    sf_sched - the scheduler object, the composition root: it builds the
    parts (store, jobs, peers, liveness, outbox, dispatch, bulk, schedules,
    retention, admin), lends each the parts it uses, wires their callbacks
    and owns the event loop. No class below it names it.

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

//  Self test of this class
void
    sf_sched_test (bool verbose);

#endif
