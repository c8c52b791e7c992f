/*  =========================================================================
    sf_harness_selftest - test harness: a scheduler running in-process,
    fake workers and an admin client (test code: compiled into
    sched_selftest only, never into the scheduler)

    For the self-tests of sf_sched and sf_admin (and anyone testing the
    scheduler from C): starts sf_sched_actor on private inproc:// endpoints
    with a fresh temporary database, hands out DEALER sockets that play
    workers, and sends admin requests. Every wait is bounded; a timeout is
    an assertion failure, so a broken scheduler fails the test instead of
    hanging it.
    =========================================================================
*/
#ifndef SF_HARNESS_SELFTEST_H_INCLUDED
#define SF_HARNESS_SELFTEST_H_INCLUDED

typedef struct _sf_harness_t sf_harness_t;

//  Start a scheduler named name (used in endpoints and the database file
//  name) with heartbeat 100ms and the given node timeout, on inproc://
//  endpoints, or on tcp://127.0.0.1 with free ports if name starts with
//  "tcp", plaintext (insecure). If name starts with "curve", on tcp with
//  CURVE: fresh keys for the scheduler and the harness's admin client, and
//  allow-lists that sf_harness_worker_key fills (sf_harness_worker gets
//  a plaintext socket, which gets nothing). Caller owns the result.
sf_harness_t *
    sf_harness_new (const char *name, int64_t node_timeout_ms);

//  Stop the scheduler, delete the database. Nullifies *self_p.
void
    sf_harness_destroy (sf_harness_t **self_p);

//  Stop the scheduler and start a new one on the same database. tcp
//  endpoints get new free ports; get new worker sockets after a restart.
void
    sf_harness_restart (sf_harness_t *self);

//  The configuration the scheduler runs with: change it (limits, leases),
//  then sf_harness_restart to apply it. Belongs to the harness.
sf_schedcfg_t *
    sf_harness_cfg (sf_harness_t *self);

//  The admin endpoint as bound. Valid until the next restart.
const char *
    sf_harness_admin_endpoint (sf_harness_t *self);

//  A new DEALER connected to the worker endpoint. Caller owns it.
zsock_t *
    sf_harness_worker (sf_harness_t *self);

//  CURVE harness only: a new key pair named key (enrolled in the workers'
//  or admins' allow-list if enrolled), and a DEALER with it connected to
//  the worker or admin endpoint. Caller owns it.
zsock_t *
    sf_harness_worker_key (sf_harness_t *self, const char *key, bool enrolled);
zsock_t *
    sf_harness_admin_key (sf_harness_t *self, const char *key, bool enrolled);

//  Send env from a worker socket (asserts it is sent).
void
    sf_harness_send (zsock_t *worker, sf_envelope_t *env);

//  Receive one envelope on a worker socket within timeout_ms, NULL if
//  none came. Caller frees it with sf_wire_free.
sf_envelope_t *
    sf_harness_recv (zsock_t *worker, int timeout_ms);

//  Say hello as node (strategies file-cold and offline, no running jobs)
//  and assert the Welcome that must come back.
void
    sf_harness_hello (zsock_t *worker, const char *node);

//  Say hello as node announcing strategies and running_jobs, each a
//  comma-separated list ("" for none; strategies NULL for "file-cold,
//  offline"), and assert the Welcome that must come back.
void
    sf_harness_hello_with (zsock_t *worker, const char *node,
                           const char *strategies, const char *running_jobs);

//  Send an Inventory of four instances: vm1 (running, file), vm2
//  (running, rbd), vm3 (shut off, file), vm4 (running, mixed: vda on RBD,
//  vdb a file), with uuids "u-vm1", "u-rbd", "u-off", "u-mix" followed by
//  suffix (so two nodes can have the same names).
void
    sf_harness_inventory (zsock_t *worker, const char *suffix);

//  Two workers that said hello as n1 and n2 and sent the inventory of
//  suffix "" and suffix2 (see above); returns once n2's four instances
//  are listed. Caller owns *n1_p and *n2_p.
void
    sf_harness_two_nodes (sf_harness_t *self, const char *suffix2, zsock_t **n1_p,
                          zsock_t **n2_p);

//  Send a Heartbeat.
void
    sf_harness_beat (zsock_t *worker);

//  Send a JobEvent for job id with attempt, phase and ms.
void
    sf_harness_event (zsock_t *worker, const char *id, uint32_t attempt,
                      int phase, uint64_t ms);

//  Send a successful JobResult for job id and attempt: file-cold, paused,
//  pause 150ms, one 12 GiB image of disk vda in store "dir", id
//  "0f8e6b1c-0000-4000-8000-<job number, 12 digits>", path
//  "/images/<id>.qcow2".
void
    sf_harness_result (zsock_t *worker, const char *id, uint32_t attempt);

//  The same with strategy, and note (if not NULL) as the text of an error
//  with code 0.
void
    sf_harness_result_note (zsock_t *worker, const char *id, uint32_t attempt,
                            const char *strategy, const char *note);

//  Send an admin request (a JSON text, printf-style) and return the parsed
//  reply. Asserts a reply comes within 5 seconds. Caller owns the result.
json_t *
    sf_harness_admin (sf_harness_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Repeat an admin request every 20ms until the string at path (keys and
//  array indexes separated by '.', e.g. "job.state" or "nodes.1.state")
//  equals want, or until timeout_ms passes. Returns the last reply (caller
//  owns it); the caller asserts on it.
json_t *
    sf_harness_admin_until (sf_harness_t *self, const char *request,
                            const char *path, const char *want, int timeout_ms);

//  The value at path in json (see above), NULL if there is none.
json_t *
    sf_harness_get (json_t *json, const char *path);

//  The string / integer at path in json; "" / 0 if there is none.
const char *
    sf_harness_str (json_t *json, const char *path);
int64_t
    sf_harness_int (json_t *json, const char *path);

//  Rows in the jobs table, counted on a separate database connection.
int64_t
    sf_harness_job_rows (sf_harness_t *self);

//  The first column of the first row of sql (printf-style), read on a
//  separate database connection: what is committed, whatever the
//  scheduler has said. NULL if no row. Caller frees the result.
char *
    sf_harness_sql (sf_harness_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Self test of this class
void
    sf_harness_test (bool verbose);

#endif
