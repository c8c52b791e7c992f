/*  =========================================================================
    sf_gc - the reconciler: what the nodes hold against what the catalogue
    says exists

    A run asks nodes what snapfleet made there for this catalogue (GcList;
    the worker lists with sf_reconcile), decides for every holding whether
    something still owns it (sf_gc_decide), marks catalogued dir images
    whose files the node's complete listing lacks as missing (never deletes
    a row), and, unless it is a dry run, asks the node to remove the
    orphans (GcRemove), then records what went and what failed.

    Runs start from the admin ("snapfleet gc [--dry-run]"), every
    [gc] interval on every node that is up, and for a node when it says
    hello (at most once per interval: a flood of hellos starts one); the
    periodic and hello runs remove only if [gc] remove is on. At most
    SF_GC_BUSY runs are in progress at once. Each step waits at most [gc] timeout for a node: one that has not
    answered by then is listed as "no answer" and nothing of it is
    removed. The admin starts a run and reads it back with its id (the CLI
    polls until it is done), so no admin request ever waits on a node. The
    last SF_GC_RUNS runs are kept in memory.
    =========================================================================
*/
#ifndef SF_GC_H_INCLUDED
#define SF_GC_H_INCLUDED

typedef struct _sf_gc_t sf_gc_t;

//  Runs remembered (finished ones are forgotten oldest first), and runs
//  in progress at most (one more is refused, SF_EBUSY)
#define SF_GC_RUNS 16
#define SF_GC_BUSY 64

//  What the catalogue says about a holding's job and object
typedef struct {
    const char *job_state;      //  "queued", "running", "done", "failed",
                                //  "skipped", ...; NULL: no such job
    bool catalogued;            //  an image row is this object (image,
                                //  temp: dir id; clone: "pool/image")
    bool clone_catalogued;      //  snapshot: a catalogued clone of its job
                                //  has it as parent
} sf_gc_facts_t;

//  The decision table. Returns true if holding is an orphan; reason (of
//  size bytes) says why it goes or why it stays:
//    kept: "job J4 is running", "catalogued image", "parent of a
//          catalogued clone", "younger than the grace of 600 s"
//    orphan: "job J9 unknown to this catalogue", "job J4 failed",
//          "temp file of job J7, which ended", ...
bool
    sf_gc_decide (const sf_holding_t *holding, const sf_gc_facts_t *facts, int64_t grace_ms,
                  char *reason, size_t size);

//  Sends env to node's worker; 0 or -1 with err
typedef int (sf_gc_send_fn) (void *arg, const char *node, sf_envelope_t *env, sf_err_t *err);

//  Create the reconciler on store (borrowed) with cfg's [gc] settings;
//  messages go out through send (with arg). Caller owns the result.
sf_gc_t *
    sf_gc_new (sf_store_t *store, const sf_schedcfg_t *cfg, sf_gc_send_fn *send, void *arg);

//  Destroy. Nullifies *self_p.
void
    sf_gc_destroy (sf_gc_t **self_p);

//  Start a run on node (NULL: every node in nodes, a list of names).
//  auto_run marks a periodic or hello run (logged as such). Returns the
//  run's id ("G3", valid while the run is kept) or NULL with err (SF_EINVAL:
//  no node to ask; SF_EBUSY: SF_GC_BUSY runs are in progress).
const char *
    sf_gc_start (sf_gc_t *self, zlistx_t *nodes, bool dry_run, bool auto_run, sf_err_t *err);

//  A node said hello: start its run (removing if [gc] remove), unless
//  [gc] interval is off or the node had one less than an interval ago (a
//  flood of hellos starts one run). Returns the run's id or NULL.
const char *
    sf_gc_hello (sf_gc_t *self, const char *node);

//  A node's answers. Answers of unknown requests, or from another node
//  than the one asked, are dropped (and counted in the return: -1).
int
    sf_gc_on_holdings (sf_gc_t *self, const char *node, const sf_gc_holdings_t *msg);
int
    sf_gc_on_removed (sf_gc_t *self, const char *node, const sf_gc_removed_t *msg);

//  Every second: nodes past their step's timeout are "no answer"; true
//  if a periodic run is due (the caller starts it with the nodes up).
bool
    sf_gc_tick (sf_gc_t *self, int64_t now_ms);

//  True if [gc] interval is on (hello runs too)
bool
    sf_gc_enabled (sf_gc_t *self);

//  True if periodic and hello runs remove ([gc] remove)
bool
    sf_gc_auto_removes (sf_gc_t *self);

//  A run as JSON ({"id","dry_run","auto","state","started","nodes":[...]})
//  or NULL with err (SF_ENOENT) if unknown. Caller owns it.
json_t *
    sf_gc_run_json (sf_gc_t *self, const char *id, sf_err_t *err);

//  Names of the nodes a run can ask now: up, and connected (a list of
//  strings; caller owns it)
zlistx_t *
    sf_gc_connected (sf_peers_t *peers);

//  Self test of this class
void
    sf_gc_test (bool verbose);

#endif
