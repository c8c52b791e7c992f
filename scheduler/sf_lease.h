/*  =========================================================================
    sf_lease - leases of the jobs handed to workers: no job waits forever

    Every job a worker holds (assigned, not yet finished) has a lease: a
    time by which the scheduler expects news of it. Every message about
    the job renews it (events, a JobStatus RUNNING). When it runs out the
    scheduler asks the node (JobQuery) and waits a grace; if no answer
    renews it by then, the job is given up (the caller sends a JobCancel
    and fails it with the reason this class writes).

    Lease time of a job in a phase, for est_bytes (its estimated bytes):

        lease = base + est_bytes / floor_rate       capture (assigned,
                                                    queued, paused: the
                                                    conversion reads them)
                                                    and upload_wait (the
                                                    upload follows)
        lease = base + est_bytes / min (floor_rate, granted rate)
                                                    uploading (upload_wait
                                                    with a grant: a rate
                                                    below the floor slows
                                                    the upload)
        lease = base                                resumed, converted,
                                                    uploaded (little work
                                                    left, or the worker's
                                                    own deadlines bound it)

    base is [limits] lease (default 60 s), floor_rate [limits] lease_rate
    (default 1 MiB/s: a rate any healthy node beats, so a lease runs out
    only for a job that is stuck or a node that is gone); grace = base.
    The worker has its own progress deadlines (qemu-img, uploads): a
    RUNNING answer renews even without progress, since the worker fails a
    job that stops moving on its own.

    Leases are in memory only: a restarted scheduler gives every handed
    job a fresh lease (sf_lease_start with the restart time), which only
    delays a verdict, never hastens one. Times are monotonic ms, passed in
    (so tests inject them).
    =========================================================================
*/
#ifndef SF_LEASE_H_INCLUDED
#define SF_LEASE_H_INCLUDED

typedef struct _sf_lease_t sf_lease_t;

//  Defaults of [limits] lease and lease_rate
#define SF_LEASE_BASE_DEFAULT   60000
#define SF_LEASE_RATE_DEFAULT   (1024 * 1024)

//  Create a lease table: base_ms and floor_bps as above (0 means the
//  default). Caller owns the result.
sf_lease_t *
    sf_lease_new (int64_t base_ms, uint64_t floor_bps);

//  Destroy. Nullifies *self_p.
void
    sf_lease_destroy (sf_lease_t **self_p);

//  The lease time of a job in phase (SF_PHASE_*, or -1 for "assigned")
//  for est_bytes, rate_bps its granted upload rate (0 = none/no limit).
int64_t
    sf_lease_time (sf_lease_t *self, int phase, uint64_t est_bytes, uint64_t rate_bps);

//  The job id on node (attempt) was handed to its worker at now_ms, in
//  phase (-1: assigned), est_bytes: it gets a fresh lease (a known id is
//  started again).
void
    sf_lease_start (sf_lease_t *self, const char *id, const char *node,
                    uint32_t attempt, int phase, uint64_t est_bytes, int64_t now_ms);

//  News of the job at now_ms: an event of phase (-1: keep the phase),
//  progress bytes (0 if the message has none), rate_bps its granted rate
//  (0: keep). Renews its lease. Unknown ids are ignored.
void
    sf_lease_renew (sf_lease_t *self, const char *id, int phase, uint64_t progress,
                    uint64_t rate_bps, int64_t now_ms);

//  The worker said the job is FINISHED and its result follows: the lease
//  is renewed once; a second FINISHED without the result renews nothing.
void
    sf_lease_finished (sf_lease_t *self, const char *id, int64_t now_ms);

//  The job ended (or went back to the queue): its lease goes.
void
    sf_lease_drop (sf_lease_t *self, const char *id);

//  True if id has a lease; its node and attempt into *node_p (borrowed)
//  and *attempt_p if not NULL.
bool
    sf_lease_has (sf_lease_t *self, const char *id, const char **node_p,
                  uint32_t *attempt_p);

//  What to do about a lease that ran out
typedef enum {
    SF_LEASE_NONE = 0,          //  nothing is due
    SF_LEASE_QUERY,             //  send JobQuery (id, attempt) to node
    SF_LEASE_EXPIRED,           //  no answer within the grace: cancel and
                                //  fail the job with the reason; the lease
                                //  is gone
} sf_lease_due_t;

//  The next lease due at now_ms: fills *id, *node (borrowed, valid until
//  the next call) and *attempt, and for EXPIRED the reason ("no news from
//  node 'n1' for 300 s in phase converting; cancelled"). Call until NONE.
sf_lease_due_t
    sf_lease_next_due (sf_lease_t *self, int64_t now_ms, const char **id,
                       const char **node, uint32_t *attempt, char *reason,
                       size_t reason_size);

//  Number of leases held.
size_t
    sf_lease_size (sf_lease_t *self);

//  Self test of this class
void
    sf_lease_test (bool verbose);

#endif
