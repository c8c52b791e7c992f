/*  =========================================================================
    sf_admin - the scheduler's admin endpoint (what the snapfleet CLI
    talks to)

    Transport: a ROUTER on admin_bind. A client connects DEALER and sends
    one frame; a REQ client (one empty delimiter frame first) works too.
    Each request frame is one JSON object of at most 64 KiB; each reply is
    one JSON object in one frame, with the same envelope (delimiter or
    not) as the request.

    Request:  {"cmd": NAME, ["id": STRING|INT,] ARGS...}
      {"cmd":"nodes"}
      {"cmd":"instances"}                 {"cmd":"instances","node":"n1"}
      {"cmd":"snapshot","instance":"vm1"} (a name or a uuid)
      {"cmd":"snapshot","instance":"vm1","strategy":"rbd"} (force one that
                                          fits; see sf_strategy)
      {"cmd":"jobs"}                      {"cmd":"jobs","limit":N,"after":C}
      {"cmd":"job_show","job_id":"J42"}
      {"cmd":"images"}   (jobs, instances and images take "limit" and
                          "after": one page, see below)
      {"cmd":"status"}
      {"cmd":"bulk_create","select":SELECT,["strategy":S,"priority":N,
       "deadline":EPOCH_MS,"window":MS]}  SELECT = {"all":true} |
                                          {"node":"n1"} | {"tag":"k=v"} |
                                          {"instances":["vm1","vm2"]}
      {"cmd":"bulk_show","bulk_id":"B3"}  {"cmd":"bulks"}
      {"cmd":"plan", same arguments as bulk_create}  (dry run)
      {"cmd":"limits"}                    admission counters
      {"cmd":"gc",["dry_run":1,"node":N]} start a reconciler run on every
                                          connected node (or node N); it
                                          answers at once with the run
      {"cmd":"gc_show","run":"G3"}        the run so far (state "running"
                                          until every node answered or
                                          timed out, then "done")
      {"cmd":"schedule_add",...} {"cmd":"schedule_list"} {"cmd":"schedule_rm",
       "name":N}                          (see sf_schedules.h)
      {"cmd":"cancel","job_ids":["J4",..]} (1 to 1000 ids) or
      {"cmd":"cancel","bulk_id":"B3"}     (its unfinished jobs)
    Arguments are strings unless said otherwise (integers may be JSON
    integers or decimal strings); unknown keys are errors. Every integer
    is range-checked before use, and one out of range is SF_EINVAL naming
    the argument and its range: priority -1000000..1000000, deadline
    0..253402300799999 (epoch ms, up to 9999-12-31), window 0..366 days in
    ms, limit 1..10000, dry_run 0..1.

    Reply:    {"ok":true, ["id":..,] PAYLOAD}
      nodes     "nodes":[{"name","state","last_seen","instances","running_jobs"}]
      instances "instances":[{"uuid","name","node","state","storage_class",
                              "strategy","disks":[...]}]
      snapshot  "job":{...}  the new job (see sf_jobs_json)
      jobs      "jobs":[{...}]
      job_show  "job":{...}
      images    "images":[{"store","id","path","size","sha256","job_id",
                           "instance","disk_target","created"}]
      status    "status":{"version","nodes_up","peers_refused","worker_invalid",
                          "worker_unknown","worker_unexpected","worker_fenced",
                          "admin_requests","admin_invalid"}
      bulk_create, bulk_show  "bulk":{see sf_bulk_json}
      bulks     "bulks":[...]    plan  "plan":{"makespan_ms",
                "lower_bound_ms","total","late","skipped","jobs":[...],
                "refused":[...]}
      limits    "admission":{"queued","running","paused","paused_max",
                "uploads","uploads_max",...}
      cancel    "cancel":[{"job_id","outcome":"cancelled"|"cancel_sent"|
                "refused","node","error"}] per job (see sf_dispatch_cancel)
      gc, gc_show "gc":{"id","dry_run","auto","state","started","nodes":[
                {"node","state","note","store_complete","rbd_complete",
                 "orphans":[{"kind","name","job_id","bytes","age_ms",
                 "reason"}],"kept":[...],"removed":[...],"failed":[{...,
                 "error"}],"missing":[{"store","id","job_id"}]}]}
                (see sf_gc.h)
    or        {"ok":false, ["id":..,] "error":{"code":N,"text":"..."}}
    with N an SF_E* code (SF_EPROTO for a malformed request, SF_EINVAL for
    a bad command or argument, SF_ENOENT, SF_ENODE, ... from the command).
    "id", if given, is echoed so a client can match replies to requests.
    Lists come in pages: jobs, instances and images answer at most "limit"
    rows (default 1000, at most 10000) after the cursor "after", with
    "more" (true if rows follow) and "next" (the cursor to pass as "after"
    for the next page, or null). Cursors are stable keys, so a page never
    repeats or skips a row that existed before it was read: a job's seq
    ("42"), an instance's [name, node, uuid], an image's [created, store,
    id] (JSON text).
    =========================================================================
*/
#ifndef SF_ADMIN_H_INCLUDED
#define SF_ADMIN_H_INCLUDED

typedef struct _sf_admin_t sf_admin_t;

//  Largest request accepted, in bytes
#define SF_ADMIN_MAX_REQUEST (64 * 1024)

//  Rows in one page of jobs, instances or images: "limit" defaults to
//  SF_ADMIN_DEFAULT_LIMIT and is at most SF_ADMIN_MAX_LIMIT
#define SF_ADMIN_DEFAULT_LIMIT  1000
#define SF_ADMIN_MAX_LIMIT      10000

//  The parts the commands use. Each is borrowed and must outlive the
//  admin object; none but auth may be NULL.
typedef struct {
    sf_store_t *store;          //  nodes, instances
    sf_jobs_t *jobs;            //  jobs, job_show, images
    sf_peers_t *peers;          //  status
    sf_dispatch_t *dispatch;    //  limits
    sf_bulk_t *bulk;            //  snapshot, bulk_*, bulks, plan
    sf_schedules_t *schedules;  //  schedule_*
    sf_stats_t *stats;          //  status; counts the requests
    sf_auth_t *auth;            //  status (refused keys); NULL if insecure
    sf_gc_t *gc;                //  gc, gc_show; NULL: no reconciler
} sf_admin_parts_t;

//  Bind the admin ROUTER on endpoint, serving the commands on parts
//  (copied; the parts themselves are borrowed). With parts->auth, it is a
//  CURVE server with cert's key pair (borrowed) that lets in the keys of
//  auth's "admin" domain only; without, plaintext. Returns NULL with err
//  set. Caller owns the result.
sf_admin_t *
    sf_admin_new (const char *endpoint, zcert_t *cert, const sf_admin_parts_t *parts,
                  sf_err_t *err);

//  Close the socket. Nullifies *self_p.
void
    sf_admin_destroy (sf_admin_t **self_p);

//  The admin socket, for the scheduler's zloop. Borrowed.
zsock_t *
    sf_admin_sock (sf_admin_t *self);

//  Receive one message from the socket and answer it. Never fails: a bad
//  request gets an error reply (or, if it cannot be answered, is dropped)
//  and is counted in parts->stats.
void
    sf_admin_handle (sf_admin_t *self);

//  Execute one request given as bytes and return the reply as a JSON text
//  (caller frees it). What sf_admin_handle does between the frames.
char *
    sf_admin_execute (sf_admin_t *self, const void *data, size_t size);

//  Self test of this class
void
    sf_admin_test (bool verbose);

#endif
