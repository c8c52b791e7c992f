/*  =========================================================================
    sf_reconcile - what snapfleet made on this node, listed and removed for
    the scheduler's reconciler (GcList, GcRemove) as a zactor

    A listing names only what can be proven made by snapfleet for the
    catalogue asked about, each with its job id, size and age:
      image    a dir-store entry <id>.json (+ <id>.qcow2) whose metadata
               names the catalogue and a job
      temp     an incomplete dir-store entry: <id>.qcow2.tmp or <id>.qcow2
               without its <id>.json, whose <id>.pending sidecar (written
               before the upload starts) names the catalogue and a job; or
               an <id>.json of ours whose <id>.qcow2 is gone
      scratch  a directory <workdir>/J<digits> holding only scratch files
               (<target>.qcow2, <target>.qcow2.tmp): a job's scratch
      snapshot an RBD snapshot snapfleet-<catalogue>-<job> of one of the
               node's guests' RBD disks (sf_naming)
      clone    an RBD clone <image>-snapfleet-<catalogue>-<job> of such a
               snapshot (found as its child)
    Files of other catalogues, files without a sidecar, and names that are
    not snapfleet's are never listed. Ages: files by their mtime; RBD
    objects by the time this worker process first listed them (a lower
    bound: Ceph's creation time is not read).
    Removal goes through the scoped deletions only: sf_imgstore_remove
    (the sidecar must name the catalogue and job), sf_task_scratch_clean
    (only scratch files go) and sf_stor_obj_remove (sf_naming and the
    clone's parent checked); clones go before snapshots. A holding of a
    job the worker still runs or still has in a journal is refused.

    Protocol with the owner (sf_agent):
      from the actor: "RESULT" + frame   encoded Envelope{GcHoldings} for
                                         a listing, Envelope{GcRemoved}
                                         for a removal; sent once
      to the actor:   "$TERM"            after the result: end the actor
    =========================================================================
*/
#ifndef SF_RECONCILE_H_INCLUDED
#define SF_RECONCILE_H_INCLUDED

//  What a listing or removal needs; everything is copied before
//  sf_reconcile_new returns (the parts are borrowed: they must outlive
//  the actor)
typedef struct {
    const char *request_id;         //  GcList / GcRemove request_id
    const char *catalog_id;         //  the scheduler's catalogue
    const char *store_dir;          //  the dir image store's path; NULL if
                                    //  the store is not "dir"
    const char *workdir;            //  the worker's workdir (scratch)
    sf_imgstore_t *images;          //  the worker's image store (borrowed)
    sf_stor_t *stor;                //  RBD storage (borrowed), NULL = none
    zlistx_t *rbd_disks;            //  "pool/image" of the guests' RBD disks
                                    //  (strings; NULL = none)
    zhashx_t *first_seen;           //  name -> first listing (epoch ms, as
                                    //  a heap int64_t); borrowed, updated
                                    //  by a listing: only one actor at a
                                    //  time may be given it
    zhashx_t *busy;                 //  job id -> reason the worker keeps
                                    //  its objects (strings; NULL = none)
    sf_holding_t **remove;          //  GcRemove.holdings; NULL = a listing
    size_t n_remove;
} sf_reconcile_args_t;

//  Start the listing (args->remove NULL) or removal in a new actor.
//  Returns the actor (caller destroys it after the RESULT message).
zactor_t *
    sf_reconcile_new (const sf_reconcile_args_t *args);

//  The listing itself, synchronously: a new list of holdings (caller
//  destroys it; the list frees them). *store_complete / *rbd_complete say
//  whether the store and RBD were listed completely (false: note says
//  why).
zlistx_t *
    sf_reconcile_list (const sf_reconcile_args_t *args, bool *store_complete,
                       bool *rbd_complete, char *note, size_t note_size);

//  Remove one holding through the scoped deletions. Returns 0 (also if it
//  is gone) or -1 with err (SF_EINVAL: not ours; SF_EBUSY: the worker
//  keeps it).
int
    sf_reconcile_remove (const sf_reconcile_args_t *args, const sf_holding_t *holding,
                         sf_err_t *err);

//  A new holding (strings copied), and its destructor (nullifies *self_p)
sf_holding_t *
    sf_holding_new (int kind, const char *name, const char *job_id, uint64_t bytes,
                    uint64_t age_ms);
void
    sf_holding_destroy (sf_holding_t **self_p);

//  Self test of this class
void
    sf_reconcile_test (bool verbose);

#endif
