/*  =========================================================================
    sf_admit_priv - private to sf_admit.c and its self test: the engine's
    state (jobs, nodes, gate groups, clusters, stores, the upload heaps)

    Not part of the class's API: nothing else includes it.
    =========================================================================
*/
#ifndef SF_ADMIT_PRIV_H_INCLUDED
#define SF_ADMIT_PRIV_H_INCLUDED

typedef enum {
    J_QUEUED, J_CAPTURE, J_CAPTURED, J_UPLOAD_WAIT, J_UPLOADING, J_UPLOADED,
} jstate_t;

typedef struct _node_t node_t;
typedef struct _group_t group_t;
typedef struct _cluster_t cluster_t;
typedef struct _store_t store_t;

typedef struct {
    const char *id;             //  Points into the same allocation
    node_t *node;               //  Borrowed from self->nodes
    uint64_t seq;
    int priority;
    int64_t deadline_ms, window_end_ms;
    bool pausing, snap_op;
    uint64_t scratch_bytes, upload_bytes;
    int64_t capture_ms;
    double upload_bps;
    int64_t work;               //  estimated ms, counted in node->work
    jstate_t state;
    bool holds_pause, holds_snap, holds_scratch;
    uint64_t wait_seq;          //  upload-wait order
    size_t qidx;                //  in node->queue or node->upq
    size_t uidx;                //  in self->upl
    size_t pidx;                //  in self->pend
    uint64_t rate, sent_rate;   //  granted, last reported (0 = unlimited)
    uint64_t held;              //  counted in the budgets: rate, or more while
                                //  a lowered rate is not yet acknowledged
    double fair;                //  scratch of s_fair_shares
    bool frozen;
    uint64_t ahead;             //  bytes counted in the ahead_bytes totals
} job_t;

struct _cluster_t {
    char *name;
    int64_t snap_ops;
    group_t *group [2];         //  [pausing]
};

struct _store_t {
    char *name;
    int64_t uploads;
    uint64_t bw;
    sf_heap_t nodes;            //  nodes with upload waiters and a node slot
    size_t hidx;                //  in self->stores
    double rem;                 //  scratch of s_fair_shares
    int64_t cnt;
    uint64_t ahead_bytes;       //  bytes started jobs have still to upload
    bool ublocked;              //  no bandwidth room this upload round
};

struct _node_t {
    char *name;
    bool up;
    store_t *store;             //  Borrowed from self->store_tab
    cluster_t *cluster;         //  Borrowed from self->cluster_tab
    uint32_t max_jobs;
    uint64_t scratch_free, scratch_reserved;
    bool released;              //  scratch released since the last report
    int64_t jobs, paused, snaps, uploads;
    uint64_t bw;
    sf_heap_t queue;            //  queued jobs
    int64_t work;               //  their estimated ms
    group_t *group;             //  gate group it sits in, or NULL
    size_t gidx;
    sf_heap_t upq;              //  jobs waiting to upload
    size_t sidx;                //  in store->nodes
    double rem;
    int64_t cnt;
    uint64_t ahead_bytes;       //  bytes its started jobs have still to upload
    bool ublocked;              //  no bandwidth room this upload round
};

struct _group_t {
    sf_heap_t nodes;
    bool pausing;
    cluster_t *cluster;         //  NULL: no snap-op gate
    size_t tidx;                //  in self->groups
};

//  A pause slot kept after its job ended: the guest may still be paused
typedef struct {
    node_t *node;               //  Borrowed from self->node_tab
    int64_t until_ms;           //  epoch ms it is released at
} hold_t;

struct _sf_admit_t {
    sf_limits_t limits;
    zhashx_t *jobs;             //  id -> job_t, owns the jobs
    zhashx_t *node_tab;         //  name -> node_t
    zhashx_t *store_tab;        //  name -> store_t
    zhashx_t *cluster_tab;      //  name -> cluster_t
    cluster_t **clusters;       //  the same, for quick walks
    size_t nclusters;
    group_t free_group, pause_group;
    sf_heap_t groups;           //  open gate groups with nodes in them
    sf_heap_t stores;           //  stores with a slot and waiters
    job_t **upl;                //  uploading jobs
    size_t nupl, upl_cap;
    job_t **pend;               //  jobs whose rate changed since sf_admit_rates
    size_t npend, pend_cap;
    job_t *gone;                //  last SKIP/FAIL, freed at the next call
    uint64_t wait_seq;
    sf_admit_stats_t st;
    uint64_t ahead_bytes;       //  bytes started jobs have still to upload
    bool acks;                  //  lowered rates count until acknowledged
    bool release_due;           //  bandwidth freed: raise at sf_admit_rates
    node_t **bnodes;            //  nodes and stores blocked this upload round
    size_t nbnodes, bnodes_cap;
    store_t **bstores;
    size_t nbstores, bstores_cap;
    hold_t *holds;              //  pause slots kept past their job
    size_t nholds, holds_cap;
};

#endif
