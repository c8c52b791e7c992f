/*  =========================================================================
    sf_admit - admission: which queued job starts next, and the resources
    each phase holds (design: "resources granted per phase")

    Scale: sf_admit_next must stay cheap with 100,000 queued jobs on
    1,000 nodes, so nothing rescans the queue. Each node keeps its queued
    jobs in a heap; a node whose head job could start now sits in one of a
    few "gate groups" (heaps of nodes): no fleet-wide gate, the fleet pause
    gate, or a Ceph cluster's snap-op gate (with or without pausing). The
    groups that are not gated shut sit in a top heap keyed by their best
    node. A node blocked by its own limits (down, max_jobs, pause slot,
    scratch) is in no group until an event on that node gives it back; a
    gate that shuts takes its whole group out at once. So next() is
    O(log nodes + log groups) and no call rescans.

    Uploads work the same way one level down: node heaps of upload waiters,
    per store a heap of nodes with a free node slot, a top heap of stores
    with a free store slot.

    Bandwidth: max-min fair shares (progressive filling) over the fleet,
    node and store budgets, applied lazily (few rate messages): see
    s_grant_rate and s_release_rate.
    =========================================================================
*/
#include "sf_sched_classes.h"
#include <math.h>                       //  HUGE_VAL, isinf (macros: no libm)

#include "sf_admit_priv.h"

#define NOT_IN SIZE_MAX

//  Append e to a growable array of pointers (items, size, cap)
#define S_PUSH(items, size, cap, e) do {                                   \
    if ((size) == (cap)) {                                                  \
        (cap) = (cap)? (cap) * 2: 16;                                       \
        (items) = realloc ((items), (cap) * sizeof (*(items)));             \
        assert (items);                                                     \
    }                                                                       \
    (items) [(size)++] = (e);                                               \
} while (0)

static double
s_dmin (double a, double b)
{
    return a < b? a: b;
}

static double
s_dmax (double a, double b)
{
    return a > b? a: b;
}

SF_LOG_MODULE ("sched.admit");

//  --------------------------------------------------------------------------
//  Orderings

static int
s_job_cmp (const job_t *a, const job_t *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority? -1: 1;
    int64_t da = a->deadline_ms? a->deadline_ms: INT64_MAX;
    int64_t db = b->deadline_ms? b->deadline_ms: INT64_MAX;
    if (da != db)
        return da < db? -1: 1;
    return 0;
}

static bool
s_queue_before (const void *a_, const void *b_)
{
    const job_t *a = (const job_t *) a_, *b = (const job_t *) b_;
    int c = s_job_cmp (a, b);
    return c? c < 0: a->seq < b->seq;
}

static bool
s_upq_before (const void *a_, const void *b_)
{
    const job_t *a = (const job_t *) a_, *b = (const job_t *) b_;
    int c = s_job_cmp (a, b);
    return c? c < 0: a->wait_seq < b->wait_seq;
}

//  The head of a heap a node or group is ordered by. Read straight from
//  the array, not with sf_heap_top: a node whose head job has just been
//  taken is compared (through its group) before its refresh re-places
//  it, and then its key is that job, still in items [0] (the order of the
//  admissions depends on it)
#define S_HEAD(heap) ((heap).items [0])

static bool
s_node_before (const void *a_, const void *b_)
{
    const node_t *a = (const node_t *) a_, *b = (const node_t *) b_;
    const job_t *ja = (const job_t *) S_HEAD (a->queue);
    const job_t *jb = (const job_t *) S_HEAD (b->queue);
    int c = s_job_cmp (ja, jb);
    if (c)
        return c < 0;
    if (a->work != b->work)
        return a->work > b->work;
    if (ja->seq != jb->seq)
        return ja->seq < jb->seq;
    return strcmp (a->name, b->name) < 0;
}

static bool
s_group_before (const void *a, const void *b)
{
    return s_node_before (S_HEAD (((const group_t *) a)->nodes),
                          S_HEAD (((const group_t *) b)->nodes));
}

//  Nodes with upload waiters: by their best waiter's priority and
//  deadline, then the node with fewer uploads running (a second upload on
//  a node shares that node's disk and budget: it adds less than a first
//  one elsewhere, and every start there cuts the other's rate), then the
//  longest wait
static bool
s_unode_before (const void *a_, const void *b_)
{
    const node_t *a = (const node_t *) a_, *b = (const node_t *) b_;
    const job_t *ja = (const job_t *) S_HEAD (a->upq);
    const job_t *jb = (const job_t *) S_HEAD (b->upq);
    int c = s_job_cmp (ja, jb);
    if (c)
        return c < 0;
    if (a->uploads != b->uploads)
        return a->uploads < b->uploads;
    return ja->wait_seq < jb->wait_seq;
}

static bool
s_store_before (const void *a, const void *b)
{
    return s_unode_before (S_HEAD (((const store_t *) a)->nodes),
                           S_HEAD (((const store_t *) b)->nodes));
}

//  --------------------------------------------------------------------------
//  Objects

static void
s_group_init (group_t *g, bool pausing, cluster_t *cluster)
{
    sf_heap_init (&g->nodes, s_node_before, offsetof (node_t, gidx));
    g->pausing = pausing;
    g->cluster = cluster;
    g->tidx = NOT_IN;
}

static void
s_cluster_destroy (void **item)
{
    cluster_t *c = (cluster_t *) *item;
    for (int p = 0; p < 2; p++) {
        sf_heap_release (&c->group [p]->nodes);
        free (c->group [p]);
    }
    free (c->name);
    free (c);
    *item = NULL;
}

static void
s_store_destroy (void **item)
{
    store_t *s = (store_t *) *item;
    sf_heap_release (&s->nodes);
    free (s->name);
    free (s);
    *item = NULL;
}

static void
s_node_destroy (void **item)
{
    node_t *n = (node_t *) *item;
    sf_heap_release (&n->queue);
    sf_heap_release (&n->upq);
    free (n->name);
    free (n);
    *item = NULL;
}

static void
s_job_free (job_t *j)
{
    free (j);
}

static cluster_t *
s_cluster (sf_admit_t *self, const char *name)
{
    cluster_t *c = (cluster_t *) zhashx_lookup (self->cluster_tab, name);
    if (!c) {
        c = (cluster_t *) zmalloc (sizeof (cluster_t));
        c->name = strdup (name);
        for (int p = 0; p < 2; p++) {
            c->group [p] = (group_t *) zmalloc (sizeof (group_t));
            s_group_init (c->group [p], p, c);
        }
        zhashx_insert (self->cluster_tab, name, c);
        self->clusters = (cluster_t **) realloc (self->clusters,
                                                 (self->nclusters + 1) * sizeof (cluster_t *));
        assert (self->clusters);
        self->clusters [self->nclusters++] = c;
    }
    return c;
}

static store_t *
s_store (sf_admit_t *self, const char *name)
{
    store_t *s = (store_t *) zhashx_lookup (self->store_tab, name);
    if (!s) {
        s = (store_t *) zmalloc (sizeof (store_t));
        s->name = strdup (name);
        sf_heap_init (&s->nodes, s_unode_before, offsetof (node_t, sidx));
        s->hidx = NOT_IN;
        zhashx_insert (self->store_tab, name, s);
    }
    return s;
}

sf_admit_t *
sf_admit_new (const sf_limits_t *limits)
{
    assert (limits);
    sf_admit_t *self = (sf_admit_t *) zmalloc (sizeof (sf_admit_t));
    self->limits = *limits;
    self->jobs = zhashx_new ();
    //  Keys are the jobs' own ids (a job leaves the table before it is freed)
    zhashx_set_key_duplicator (self->jobs, NULL);
    zhashx_set_key_destructor (self->jobs, NULL);
    self->node_tab = zhashx_new ();
    zhashx_set_destructor (self->node_tab, s_node_destroy);
    self->store_tab = zhashx_new ();
    zhashx_set_destructor (self->store_tab, s_store_destroy);
    self->cluster_tab = zhashx_new ();
    zhashx_set_destructor (self->cluster_tab, s_cluster_destroy);
    s_group_init (&self->free_group, false, NULL);
    s_group_init (&self->pause_group, true, NULL);
    sf_heap_init (&self->groups, s_group_before, offsetof (group_t, tidx));
    sf_heap_init (&self->stores, s_store_before, offsetof (store_t, hidx));
    return self;
}

void
sf_admit_destroy (sf_admit_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_admit_t *self = *self_p;
        for (job_t *j = (job_t *) zhashx_first (self->jobs); j;
             j = (job_t *) zhashx_next (self->jobs))
            s_job_free (j);
        zhashx_destroy (&self->jobs);
        zhashx_destroy (&self->node_tab);
        zhashx_destroy (&self->store_tab);
        zhashx_destroy (&self->cluster_tab);
        sf_heap_release (&self->free_group.nodes);
        sf_heap_release (&self->pause_group.nodes);
        sf_heap_release (&self->groups);
        sf_heap_release (&self->stores);
        free (self->upl);
        free (self->pend);
        free (self->clusters);
        free (self->bnodes);
        free (self->bstores);
        free (self->holds);
        if (self->gone)
            s_job_free (self->gone);
        free (self);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Admission gates

static bool
s_full (int64_t count, int64_t limit)
{
    return limit > 0 && count >= limit;
}

static bool
s_group_shut (sf_admit_t *self, group_t *g)
{
    if (g->pausing && s_full (self->st.paused, self->limits.max_paused))
        return true;
    return g->cluster && s_full (g->cluster->snap_ops, self->limits.max_snap_ops);
}

//  Put the group in the top heap, re-keyed, or take it out
static void
s_group_update (sf_admit_t *self, group_t *g)
{
    bool want = sf_heap_size (&g->nodes) && !s_group_shut (self, g);
    bool in = sf_heap_has (&self->groups, g);
    if (want && in)
        sf_heap_fix (&self->groups, g);
    else
    if (want)
        sf_heap_insert (&self->groups, g);
    else
    if (in)
        sf_heap_remove (&self->groups, g);
}

//  The fleet pause gate may have opened or shut: every pausing group
static void
s_pause_groups_update (sf_admit_t *self)
{
    s_group_update (self, &self->pause_group);
    for (size_t i = 0; i < self->nclusters; i++)
        s_group_update (self, self->clusters [i]->group [1]);
}

static void
s_cluster_groups_update (sf_admit_t *self, cluster_t *c)
{
    s_group_update (self, c->group [0]);
    s_group_update (self, c->group [1]);
}

typedef enum { SCRATCH_OK, SCRATCH_WAIT, SCRATCH_FAIL } scratch_t;

//  scratch_free 0 = not reported: no check
static scratch_t
s_scratch (node_t *n, job_t *j)
{
    if (!j->scratch_bytes || !n->scratch_free)
        return SCRATCH_OK;
    if (n->scratch_reserved < n->scratch_free
    &&  j->scratch_bytes <= n->scratch_free - n->scratch_reserved)
        return SCRATCH_OK;
    if (j->scratch_bytes > n->scratch_free && !n->scratch_reserved && !n->released)
        return SCRATCH_FAIL;
    return SCRATCH_WAIT;
}

//  Which gate group the node belongs in now, NULL if its own limits (or
//  an empty queue) keep it out
static group_t *
s_node_gate (sf_admit_t *self, node_t *n)
{
    job_t *head = (job_t *) sf_heap_top (&n->queue);
    if (!head || !n->up)
        return NULL;
    scratch_t scratch = s_scratch (n, head);
    if (scratch == SCRATCH_FAIL)
        return &self->free_group;       //  next() reports it
    if (n->max_jobs && n->jobs >= (int64_t) n->max_jobs)
        return NULL;
    if (head->pausing && s_full (n->paused, self->limits.max_paused_per_node))
        return NULL;
    if (scratch == SCRATCH_WAIT)
        return NULL;
    if (head->snap_op)
        return n->cluster->group [head->pausing];
    return head->pausing? &self->pause_group: &self->free_group;
}

//  Call after anything about the node or its head job changed
static void
s_node_refresh (sf_admit_t *self, node_t *n)
{
    group_t *want = s_node_gate (self, n);
    group_t *old = n->group;
    if (old && old != want) {
        sf_heap_remove (&old->nodes, n);
        s_group_update (self, old);
    }
    n->group = want;
    if (!want)
        return;
    if (old == want)
        sf_heap_fix (&want->nodes, n);
    else
        sf_heap_insert (&want->nodes, n);
    s_group_update (self, want);
}

//  Upload heaps: the node in its store's heap, the store in the top heap
static void
s_store_refresh (sf_admit_t *self, store_t *s)
{
    bool want = sf_heap_size (&s->nodes) && !s->ublocked
             && !s_full (s->uploads, self->limits.max_uploads_per_store);
    bool in = sf_heap_has (&self->stores, s);
    if (want && in)
        sf_heap_fix (&self->stores, s);
    else
    if (want)
        sf_heap_insert (&self->stores, s);
    else
    if (in)
        sf_heap_remove (&self->stores, s);
}

static void
s_unode_refresh (sf_admit_t *self, node_t *n)
{
    store_t *s = n->store;
    bool want = sf_heap_size (&n->upq) && !n->ublocked
             && !s_full (n->uploads, self->limits.max_uploads_per_node);
    bool in = sf_heap_has (&s->nodes, n);
    if (want && in)
        sf_heap_fix (&s->nodes, n);
    else
    if (want)
        sf_heap_insert (&s->nodes, n);
    else
    if (in)
        sf_heap_remove (&s->nodes, n);
    s_store_refresh (self, s);
}

//  --------------------------------------------------------------------------
//  Bandwidth

static bool
s_bw_limited (sf_admit_t *self)
{
    return self->limits.bandwidth > 0 || self->limits.bandwidth_per_node > 0
        || self->limits.bandwidth_per_store > 0;
}

static double
s_limit_or_inf (int64_t limit)
{
    return limit > 0? (double) limit: HUGE_VAL;
}

//  Max-min fair shares of every running upload into job->fair, by
//  progressive filling: raise all unfrozen uploads together until a
//  budget (fleet, node, store) or an upload's own cap is reached; freeze
//  the uploads there; repeat. O(uploads) per round, a round per bottleneck.
static void
s_fair_shares (sf_admit_t *self)
{
    const sf_limits_t *L = &self->limits;
    for (size_t i = 0; i < self->nupl; i++) {
        job_t *j = self->upl [i];
        j->fair = 0;
        j->frozen = false;
        j->node->rem = s_limit_or_inf (L->bandwidth_per_node);
        j->node->cnt = 0;
        j->node->store->rem = s_limit_or_inf (L->bandwidth_per_store);
        j->node->store->cnt = 0;
    }
    for (size_t i = 0; i < self->nupl; i++) {
        self->upl [i]->node->cnt++;
        self->upl [i]->node->store->cnt++;
    }
    double fleet = s_limit_or_inf (L->bandwidth);
    double level = 0;
    size_t active = self->nupl;
    while (active) {
        double inc = fleet / (double) active;
        for (size_t i = 0; i < self->nupl; i++) {
            job_t *j = self->upl [i];
            if (j->frozen)
                continue;
            if (j->upload_bps > 0)
                inc = s_dmin (inc, j->upload_bps - level);
            inc = s_dmin (inc, j->node->rem / (double) j->node->cnt);
            inc = s_dmin (inc, j->node->store->rem / (double) j->node->store->cnt);
        }
        if (isinf (inc))
            inc = 0;                    //  nothing limits them: unlimited
        level += inc;
        fleet -= inc * (double) active;
        for (size_t i = 0; i < self->nupl; i++) {
            job_t *j = self->upl [i];
            if (!j->frozen) {
                j->node->rem -= inc;
                j->node->store->rem -= inc;
            }
        }
        size_t frozen = 0;
        for (size_t i = 0; i < self->nupl; i++) {
            job_t *j = self->upl [i];
            if (j->frozen)
                continue;
            if (fleet <= 1e-3 || j->node->rem <= 1e-3 || j->node->store->rem <= 1e-3
            ||  (j->upload_bps > 0 && j->upload_bps - level <= 1e-3) || inc == 0) {
                j->frozen = true;
                j->fair = inc == 0 && level == 0? 0: level;
                j->node->cnt--;
                j->node->store->cnt--;
                frozen++;
            }
        }
        if (!frozen)
            break;                      //  rounding: keep what we have
        active -= frozen;
    }
}

static uint64_t
s_fair_of (job_t *j)
{
    return j->fair >= 1? (uint64_t) j->fair: 1;
}

//  The job's links, widest first
typedef enum { LINK_FLEET, LINK_STORE, LINK_NODE, LINKS } link_t;

static void
s_link_limits (const sf_limits_t *L, int64_t limit [LINKS])
{
    limit [LINK_FLEET] = L->bandwidth;
    limit [LINK_STORE] = L->bandwidth_per_store;
    limit [LINK_NODE] = L->bandwidth_per_node;
}

//  Bandwidth left on each of the job's links (its own grant not counted;
//  UINT64_MAX: no limit there)
static void
s_links_room (sf_admit_t *self, job_t *j, uint64_t room [LINKS])
{
    int64_t limit [LINKS];
    s_link_limits (&self->limits, limit);
    uint64_t used [LINKS] = {
        self->st.bandwidth - j->held, j->node->store->bw - j->held, j->node->bw - j->held
    };
    for (int i = 0; i < LINKS; i++)
        room [i] = limit [i] <= 0? UINT64_MAX
                 : (uint64_t) limit [i] > used [i]? (uint64_t) limit [i] - used [i]: 0;
}

//  Bandwidth left on the job's links (its own grant not counted)
static uint64_t
s_room (sf_admit_t *self, job_t *j)
{
    uint64_t link [LINKS], room = UINT64_MAX;
    s_links_room (self, j, link);
    for (int i = 0; i < LINKS; i++)
        if (link [i] < room)
            room = link [i];
    return room;
}

//  The widest of the job's links with no useful room left (under 1/1024
//  of its budget), LINKS if every link has some
static link_t
s_full_link (sf_admit_t *self, job_t *j)
{
    int64_t limit [LINKS];
    s_link_limits (&self->limits, limit);
    uint64_t room [LINKS];
    s_links_room (self, j, room);
    for (int i = 0; i < LINKS; i++)
        if (limit [i] > 0 && room [i] <= (uint64_t) limit [i] / 1024)
            return (link_t) i;
    return LINKS;
}

//  The uploading jobs (and a candidate while its share is worked out)
static void
s_upl_add (sf_admit_t *self, job_t *j)
{
    j->uidx = self->nupl;
    S_PUSH (self->upl, self->nupl, self->upl_cap, j);
}

static void
s_upl_remove (sf_admit_t *self, job_t *j)
{
    self->upl [j->uidx] = self->upl [--self->nupl];
    self->upl [j->uidx]->uidx = j->uidx;
    j->uidx = NOT_IN;
}

//  What the budgets count for the job
static void
s_hold (sf_admit_t *self, job_t *j, uint64_t held)
{
    self->st.bandwidth = self->st.bandwidth - j->held + held;
    j->node->bw = j->node->bw - j->held + held;
    j->node->store->bw = j->node->store->bw - j->held + held;
    j->held = held;
    if (self->st.bandwidth > self->st.bandwidth_max)
        self->st.bandwidth_max = self->st.bandwidth;
}

//  A raise counts at once; with acks, a cut counts only once the worker
//  acknowledged it (sf_admit_rate_applied): until then the upload may still
//  run at its old rate, and granting that bandwidth to another node could
//  put two uploads on one link at once above its budget.
static void
s_set_rate (sf_admit_t *self, job_t *j, uint64_t rate)
{
    j->rate = rate;
    if (!self->acks || rate > j->held)
        s_hold (self, j, rate);
    if (j->pidx == NOT_IN && j->state == J_UPLOADING) {
        j->pidx = self->npend;
        S_PUSH (self->pend, self->npend, self->pend_cap, j);
    }
}

//  The rate of a new upload (already in self->upl, rate 0, with room on
//  every link): min(fair share, room); if the room is well below its fair
//  share, uploads above theirs come down (with acks, what they free is
//  given to it once they applied the cut: see sf_admit_rates).
//  UINT64_MAX: no bandwidth limit.
static uint64_t
s_grant_rate (sf_admit_t *self, job_t *j)
{
    if (!s_bw_limited (self))
        return UINT64_MAX;
    s_fair_shares (self);
    uint64_t fair = s_fair_of (j);
    uint64_t room = s_room (self, j);
    if ((double) room < 0.9 * (double) fair) {
        for (size_t i = 0; i < self->nupl; i++) {
            job_t *k = self->upl [i];
            if (k != j && k->rate > s_fair_of (k))
                s_set_rate (self, k, s_fair_of (k));
        }
        room = s_room (self, j);
    }
    return fair < room? fair: room;
}

//  After an upload ended: raise the uploads well below their fair share
static void
s_release_rate (sf_admit_t *self)
{
    if (!s_bw_limited (self) || !self->nupl)
        return;
    s_fair_shares (self);
    for (size_t i = 0; i < self->nupl; i++) {
        job_t *k = self->upl [i];
        uint64_t fair = s_fair_of (k);
        if ((double) k->rate < 0.9 * (double) fair) {
            uint64_t room = s_room (self, k);
            uint64_t rate = fair < room? fair: room;
            if (rate > k->rate)
                s_set_rate (self, k, rate);
        }
    }
}

//  Limits changed: everyone to the fair share (or unlimited)
static void
s_reset_rates (sf_admit_t *self)
{
    if (s_bw_limited (self))
        s_fair_shares (self);
    for (size_t i = 0; i < self->nupl; i++)
        s_set_rate (self, self->upl [i], 0);
    if (s_bw_limited (self))
        for (size_t i = 0; i < self->nupl; i++)
            s_set_rate (self, self->upl [i], s_fair_of (self->upl [i]));
}

void
sf_admit_rates (sf_admit_t *self,
                void (*fn) (void *arg, const char *id, uint64_t rate_bps), void *arg)
{
    assert (self);
    if (self->release_due) {
        self->release_due = false;
        s_release_rate (self);
    }
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < self->npend; i++) {
            job_t *j = self->pend [i];
            if (!j || j->rate == j->sent_rate)
                continue;
            //  0 = unlimited: the highest rate of all
            bool lowered = j->rate && (!j->sent_rate || j->rate < j->sent_rate);
            if (lowered == (pass == 0)) {
                j->sent_rate = j->rate;
                if (fn)
                    fn (arg, j->id, j->rate);
            }
        }
    for (size_t i = 0; i < self->npend; i++)
        if (self->pend [i])
            self->pend [i]->pidx = NOT_IN;
    self->npend = 0;
}

//  --------------------------------------------------------------------------
//  Nodes and limits

static void
s_refresh_all (sf_admit_t *self)
{
    for (node_t *n = (node_t *) zhashx_first (self->node_tab); n;
         n = (node_t *) zhashx_next (self->node_tab)) {
        s_node_refresh (self, n);
        s_unode_refresh (self, n);
    }
    s_group_update (self, &self->free_group);
    s_pause_groups_update (self);
    for (cluster_t *c = (cluster_t *) zhashx_first (self->cluster_tab); c;
         c = (cluster_t *) zhashx_next (self->cluster_tab))
        s_cluster_groups_update (self, c);
    for (store_t *s = (store_t *) zhashx_first (self->store_tab); s;
         s = (store_t *) zhashx_next (self->store_tab))
        s_store_refresh (self, s);
}

void
sf_admit_set_limits (sf_admit_t *self, const sf_limits_t *limits)
{
    assert (self && limits);
    sf_limits_t old = self->limits;
    self->limits = *limits;
    s_refresh_all (self);
    if (old.bandwidth != limits->bandwidth
    ||  old.bandwidth_per_node != limits->bandwidth_per_node
    ||  old.bandwidth_per_store != limits->bandwidth_per_store)
        s_reset_rates (self);
}

//  Move the node's held counts to another store or cluster
static void
s_node_move (sf_admit_t *self, node_t *n, store_t *store, cluster_t *cluster)
{
    if (n->store != store) {
        if (sf_heap_has (&n->store->nodes, n)) {
            sf_heap_remove (&n->store->nodes, n);
            s_store_refresh (self, n->store);
        }
        n->store->uploads -= n->uploads;
        n->store->bw -= n->bw;
        store->uploads += n->uploads;
        store->bw += n->bw;
        n->store = store;
    }
    if (n->cluster != cluster) {
        cluster_t *old = n->cluster;
        old->snap_ops -= n->snaps;
        cluster->snap_ops += n->snaps;
        n->cluster = cluster;
        if (n->group)                   //  might sit in the old cluster's group
            s_node_refresh (self, n);
        s_cluster_groups_update (self, old);
        s_cluster_groups_update (self, cluster);
    }
}

void
sf_admit_node (sf_admit_t *self, const char *node, bool up, const char *store,
               const char *ceph_cluster, uint32_t max_jobs, uint64_t scratch_free)
{
    assert (self && node);
    store_t *s = s_store (self, store? store: "");
    cluster_t *c = s_cluster (self, ceph_cluster? ceph_cluster: "");
    node_t *n = (node_t *) zhashx_lookup (self->node_tab, node);
    if (!n) {
        n = (node_t *) zmalloc (sizeof (node_t));
        n->name = strdup (node);
        sf_heap_init (&n->queue, s_queue_before, offsetof (job_t, qidx));
        sf_heap_init (&n->upq, s_upq_before, offsetof (job_t, qidx));
        n->gidx = n->sidx = NOT_IN;
        n->store = s;
        n->cluster = c;
        zhashx_insert (self->node_tab, node, n);
    }
    else
        s_node_move (self, n, s, c);
    n->up = up;
    n->max_jobs = max_jobs;
    n->scratch_free = scratch_free;
    n->released = false;
    s_node_refresh (self, n);
    s_unode_refresh (self, n);
}

//  --------------------------------------------------------------------------
//  Jobs

static job_t *
s_job_new (sf_admit_t *self, const sf_admit_job_t *job)
{
    if (!job->id || !job->node || zhashx_lookup (self->jobs, job->id))
        return NULL;
    node_t *n = (node_t *) zhashx_lookup (self->node_tab, job->node);
    if (!n)
        return NULL;
    size_t len = strlen (job->id) + 1;
    job_t *j = (job_t *) zmalloc (sizeof (job_t) + len);
    memcpy ((char *) (j + 1), job->id, len);
    j->id = (const char *) (j + 1);
    j->node = n;
    j->seq = job->seq;
    j->priority = job->priority;
    j->deadline_ms = job->deadline_ms;
    j->window_end_ms = job->window_end_ms;
    j->pausing = job->pausing;
    j->snap_op = job->snap_op;
    j->scratch_bytes = job->scratch_bytes;
    j->upload_bytes = job->upload_bytes;
    j->capture_ms = job->capture_ms > 0? job->capture_ms: 0;
    j->upload_bps = job->upload_bps > 0? job->upload_bps: 0;
    //  Work estimate for spreading: unknown throughput counts as 100 MB/s
    double bps = j->upload_bps > 0? j->upload_bps: 100e6;
    j->work = j->capture_ms + (int64_t) ((double) j->upload_bytes * 1000.0 / bps);
    j->qidx = j->uidx = j->pidx = NOT_IN;
    zhashx_insert (self->jobs, j->id, j);
    return j;
}

static void
s_max (int64_t *max, int64_t value)
{
    if (value > *max)
        *max = value;
}

int
sf_admit_add (sf_admit_t *self, const sf_admit_job_t *job)
{
    assert (self && job);
    job_t *j = s_job_new (self, job);
    if (!j)
        return -1;
    node_t *n = j->node;
    j->state = J_QUEUED;
    sf_heap_insert (&n->queue, j);
    n->work += j->work;
    self->st.queued++;
    s_node_refresh (self, n);
    return 0;
}

//  Take what the capture phase holds (no limit check: callers decided)
static void
s_take_capture (sf_admit_t *self, job_t *j)
{
    node_t *n = j->node;
    j->state = J_CAPTURE;
    self->st.running++;
    n->jobs++;
    if (j->scratch_bytes) {
        n->scratch_reserved += j->scratch_bytes;
        j->holds_scratch = true;
    }
    if (j->pausing) {
        j->holds_pause = true;
        n->paused++;
        self->st.paused++;
        s_max (&self->st.paused_max, self->st.paused);
        s_max (&self->st.node_paused_max, n->paused);
        s_pause_groups_update (self);
    }
    if (j->snap_op) {
        j->holds_snap = true;
        n->snaps++;
        n->cluster->snap_ops++;
        s_max (&self->st.snap_ops_max, n->cluster->snap_ops);
        s_cluster_groups_update (self, n->cluster);
    }
}

static void
s_release_capture (sf_admit_t *self, job_t *j)
{
    node_t *n = j->node;
    if (j->holds_pause) {
        j->holds_pause = false;
        n->paused--;
        self->st.paused--;
        s_pause_groups_update (self);
    }
    if (j->holds_snap) {
        j->holds_snap = false;
        n->snaps--;
        n->cluster->snap_ops--;
        s_cluster_groups_update (self, n->cluster);
    }
    if (j->state == J_CAPTURE)
        j->state = J_CAPTURED;
}

static void
s_release_scratch (job_t *j)
{
    if (j->holds_scratch) {
        j->holds_scratch = false;
        j->node->scratch_reserved -= j->scratch_bytes;
        j->node->released = true;
    }
}

static void
s_release_upload (sf_admit_t *self, job_t *j)
{
    node_t *n = j->node;
    if (j->state == J_UPLOAD_WAIT) {
        sf_heap_remove (&n->upq, j);
        s_unode_refresh (self, n);
    }
    else
    if (j->state == J_UPLOADING) {
        j->rate = 0;
        s_hold (self, j, 0);            //  the worker reported it stopped
        if (j->pidx != NOT_IN) {
            self->pend [j->pidx] = NULL;
            j->pidx = NOT_IN;
        }
        s_upl_remove (self, j);
        n->uploads--;
        n->store->uploads--;
        self->st.uploads--;
        s_unode_refresh (self, n);
        self->release_due = true;       //  waiters first (sf_admit_rates)
    }
}

static void
    s_ahead_add (sf_admit_t *self, job_t *j);

int
sf_admit_restore (sf_admit_t *self, const sf_admit_job_t *job, int phase)
{
    assert (self && job);
    if (phase != SF_PHASE_QUEUED && phase != SF_PHASE_PAUSED && phase != SF_PHASE_RESUMED
    &&  phase != SF_PHASE_CONVERTED && phase != SF_PHASE_UPLOAD_WAIT
    &&  phase != SF_PHASE_UPLOADED)
        return -1;
    job_t *j = s_job_new (self, job);
    if (!j)
        return -1;
    s_take_capture (self, j);
    if (phase != SF_PHASE_UPLOADED)
        s_ahead_add (self, j);
    if (phase != SF_PHASE_QUEUED && phase != SF_PHASE_PAUSED)
        s_release_capture (self, j);
    if (phase == SF_PHASE_UPLOADED) {
        s_release_scratch (j);
        j->node->released = false;      //  was never on the disk report
        j->state = J_UPLOADED;
    }
    s_node_refresh (self, j->node);
    if (phase == SF_PHASE_UPLOAD_WAIT)
        sf_admit_upload_wait (self, j->id, j->upload_bytes);
    return 0;
}

//  Forget a job that left the queue (SKIP, FAIL)
static void
s_queue_drop (sf_admit_t *self, job_t *j)
{
    node_t *n = j->node;
    sf_heap_remove (&n->queue, j);
    n->work -= j->work;
    self->st.queued--;
    zhashx_delete (self->jobs, j->id);
    s_node_refresh (self, n);
    self->gone = j;
}

static void
s_format_dur (int64_t ms, char *buf, size_t size)
{
    double s = (double) ms / 1000.0;
    if (s < 10)
        snprintf (buf, size, "%.1f s", s);
    else
    if (s < 120)
        snprintf (buf, size, "%.0f s", s);
    else
    if (s < 7200)
        snprintf (buf, size, "%.1f min", s / 60);
    else
        snprintf (buf, size, "%.1f h", s / 3600);
}

//  Bytes that started jobs have still to upload: a job that starts now
//  shares each budget with them, so its upload ends no earlier than when
//  the budget has moved their bytes and its own

static void
s_ahead_add (sf_admit_t *self, job_t *j)
{
    if (j->ahead || !j->upload_bytes)
        return;
    j->ahead = j->upload_bytes;
    self->ahead_bytes += j->ahead;
    j->node->ahead_bytes += j->ahead;
    j->node->store->ahead_bytes += j->ahead;
}

static void
s_ahead_drop (sf_admit_t *self, job_t *j)
{
    if (!j->ahead)
        return;
    self->ahead_bytes -= j->ahead;
    j->node->ahead_bytes -= j->ahead;
    j->node->store->ahead_bytes -= j->ahead;
    j->ahead = 0;
}

//  Time to move bytes ahead plus the job's own through a budget (0 = none)

static double
s_budget_ms (int64_t budget, uint64_t ahead, uint64_t own)
{
    return budget > 0? (double) (ahead + own) * 1000.0 / (double) budget: 0;
}

//  Estimated run time if it started now: its capture, then its upload at
//  its own throughput, but not before each budget has moved the bytes of
//  the jobs started before it and its own
static int64_t
s_estimate_ms (sf_admit_t *self, job_t *j)
{
    const sf_limits_t *L = &self->limits;
    if (!j->upload_bytes)
        return j->capture_ms;
    double upload_ms = j->upload_bps > 0? (double) j->upload_bytes * 1000.0 / j->upload_bps
                                         : 0;
    upload_ms = s_dmax (upload_ms, s_budget_ms (L->bandwidth, self->ahead_bytes,
                                                j->upload_bytes));
    upload_ms = s_dmax (upload_ms, s_budget_ms (L->bandwidth_per_node,
                                                j->node->ahead_bytes, j->upload_bytes));
    upload_ms = s_dmax (upload_ms, s_budget_ms (L->bandwidth_per_store,
                                                j->node->store->ahead_bytes,
                                                j->upload_bytes));
    return j->capture_ms + (int64_t) upload_ms + (upload_ms > (double) (int64_t) upload_ms);
}

sf_admit_verdict_t
sf_admit_next (sf_admit_t *self, int64_t now_ms, const char **id,
               char *reason, size_t reason_size)
{
    assert (self && id);
    if (self->gone) {
        s_job_free (self->gone);
        self->gone = NULL;
    }
    if (reason && reason_size)
        *reason = 0;
    *id = NULL;
    if (self->nholds)
        sf_admit_release_holds (self, now_ms);
    group_t *g = (group_t *) sf_heap_top (&self->groups);
    if (!g)
        return SF_ADMIT_NONE;
    node_t *n = (node_t *) sf_heap_top (&g->nodes);
    job_t *j = (job_t *) sf_heap_top (&n->queue);
    *id = j->id;
    if (s_scratch (n, j) == SCRATCH_FAIL) {
        char need [32], free_ [32];
        if (reason)
            snprintf (reason, reason_size, "needs %" PRIu64 " bytes (%s) of scratch space; "
                      "node '%s' has %" PRIu64 " bytes (%s) free", j->scratch_bytes,
                      sf_format_size (j->scratch_bytes, need, sizeof (need)), n->name,
                      n->scratch_free, sf_format_size (n->scratch_free, free_, sizeof (free_)));
        s_queue_drop (self, j);
        return SF_ADMIT_FAIL;
    }
    int64_t est = s_estimate_ms (self, j);
    if (j->window_end_ms && now_ms + est > j->window_end_ms) {
        char a [32], b [32], at [16] = "";
        time_t t = (time_t) (j->window_end_ms / 1000);
        struct tm tm;
        if (localtime_r (&t, &tm))
            strftime (at, sizeof (at), "%H:%M:%S", &tm);
        s_format_dur (est, a, sizeof (a));
        s_format_dur (now_ms + est - j->window_end_ms, b, sizeof (b));
        if (reason)
            snprintf (reason, reason_size, "estimated %s would end %s after the window "
                      "closes at %s", a, b, at);
        s_queue_drop (self, j);
        return SF_ADMIT_SKIP;
    }
    sf_heap_remove (&n->queue, j);
    n->work -= j->work;
    self->st.queued--;
    s_take_capture (self, j);
    s_ahead_add (self, j);
    s_node_refresh (self, n);
    return SF_ADMIT_START;
}

static job_t *
s_lookup (sf_admit_t *self, const char *id)
{
    return id? (job_t *) zhashx_lookup (self->jobs, id): NULL;
}

void
sf_admit_captured (sf_admit_t *self, const char *id)
{
    assert (self);
    job_t *j = s_lookup (self, id);
    if (!j || j->state != J_CAPTURE)
        return;
    s_release_capture (self, j);
    s_node_refresh (self, j->node);
}

int
sf_admit_requeue (sf_admit_t *self, const char *id)
{
    assert (self);
    job_t *j = s_lookup (self, id);
    if (!j || j->state != J_CAPTURE)
        return -1;
    node_t *n = j->node;
    s_release_capture (self, j);
    s_release_scratch (j);
    n->released = false;                //  it never was on the disk report
    s_ahead_drop (self, j);
    n->jobs--;
    self->st.running--;
    j->state = J_QUEUED;
    sf_heap_insert (&n->queue, j);
    n->work += j->work;
    self->st.queued++;
    s_node_refresh (self, n);
    return 0;
}

void
sf_admit_upload_wait (sf_admit_t *self, const char *id, uint64_t bytes)
{
    assert (self);
    job_t *j = s_lookup (self, id);
    if (!j || (j->state != J_CAPTURE && j->state != J_CAPTURED))
        return;
    if (j->state == J_CAPTURE)
        sf_admit_captured (self, id);
    if (bytes)
        j->upload_bytes = bytes;
    j->state = J_UPLOAD_WAIT;
    j->wait_seq = ++self->wait_seq;
    sf_heap_insert (&j->node->upq, j);
    s_unode_refresh (self, j->node);
}

//  Take a node or store out of the upload heaps until the round ends
static void
s_block_node (sf_admit_t *self, node_t *n)
{
    S_PUSH (self->bnodes, self->nbnodes, self->bnodes_cap, n);
    n->ublocked = true;
    s_unode_refresh (self, n);
}

static void
s_block_store (sf_admit_t *self, store_t *s)
{
    S_PUSH (self->bstores, self->nbstores, self->bstores_cap, s);
    s->ublocked = true;
    s_store_refresh (self, s);
}

//  The round is over: blocked nodes and stores go back into the heaps
static void
s_round_end (sf_admit_t *self)
{
    for (size_t i = 0; i < self->nbstores; i++) {
        self->bstores [i]->ublocked = false;
        s_store_refresh (self, self->bstores [i]);
    }
    self->nbstores = 0;
    for (size_t i = 0; i < self->nbnodes; i++) {
        self->bnodes [i]->ublocked = false;
        s_unode_refresh (self, self->bnodes [i]);
    }
    self->nbnodes = 0;
}

//  One round of calls, until false: the best waiter of the best store
//  starts if, after the cuts its fair share calls for, its links have
//  room. Where one has none yet (with acks, cuts free room only once they
//  are applied), the waiter stays queued, and its node or store is set
//  aside for the rest of the round (its other waiters share that link); a
//  full fleet ends the round. So a full link never holds back waiters
//  elsewhere, and each node and store is looked at once per round.
bool
sf_admit_next_upload (sf_admit_t *self, const char **id, uint64_t *rate_bps)
{
    assert (self && id);
    *id = NULL;
    job_t *j = NULL;
    uint64_t rate = UINT64_MAX;
    while (!j) {
        store_t *s = s_full (self->st.uploads, self->limits.max_uploads)? NULL:
                     (store_t *) sf_heap_top (&self->stores);
        if (!s) {
            s_round_end (self);
            return false;
        }
        node_t *n = (node_t *) sf_heap_top (&s->nodes);
        job_t *head = (job_t *) sf_heap_top (&n->upq);
        s_upl_add (self, head);
        rate = s_grant_rate (self, head);
        link_t full = rate == UINT64_MAX? LINKS: s_full_link (self, head);
        if (full == LINKS) {
            j = head;
            break;
        }
        s_upl_remove (self, head);
        if (full == LINK_FLEET) {
            s_round_end (self);
            return false;
        }
        if (full == LINK_STORE)
            s_block_store (self, s);
        else
            s_block_node (self, n);
    }
    node_t *n = j->node;
    store_t *s = n->store;
    sf_heap_remove (&n->upq, j);
    j->state = J_UPLOADING;
    n->uploads++;
    s->uploads++;
    self->st.uploads++;
    s_max (&self->st.uploads_max, self->st.uploads);
    s_max (&self->st.node_uploads_max, n->uploads);
    s_max (&self->st.store_uploads_max, s->uploads);
    if (rate != UINT64_MAX)
        s_set_rate (self, j, rate? rate: 1);
    s_unode_refresh (self, n);
    //  The grant itself carries the rate: no separate change for it
    if (j->pidx != NOT_IN) {
        self->pend [j->pidx] = NULL;
        j->pidx = NOT_IN;
    }
    j->sent_rate = j->rate;
    *id = j->id;
    if (rate_bps)
        *rate_bps = j->rate;
    return true;
}

void
sf_admit_set_acks (sf_admit_t *self, bool acks)
{
    assert (self);
    self->acks = acks;
}

bool
sf_admit_rate_applied (sf_admit_t *self, const char *id, uint64_t rate_bps)
{
    assert (self);
    job_t *j = s_lookup (self, id);
    if (!j || j->state != J_UPLOADING || !j->held)
        return false;
    //  Acknowledgements come in the order the rates were sent, and a rate
    //  sent later (or still to send) is j->rate: the worker may go there
    //  next, so that much stays held
    uint64_t held = rate_bps && rate_bps > j->rate? rate_bps: j->rate;
    if (!rate_bps || held >= j->held)
        return false;
    s_hold (self, j, held);
    //  Waiting uploads take this room at the next sf_admit_next_upload;
    //  what they leave raises the others at sf_admit_rates
    self->release_due = true;
    return true;
}

void
sf_admit_uploaded (sf_admit_t *self, const char *id)
{
    assert (self);
    job_t *j = s_lookup (self, id);
    if (!j || j->state == J_QUEUED || j->state == J_UPLOADED)
        return;
    if (j->state == J_CAPTURE)
        s_release_capture (self, j);
    s_release_upload (self, j);
    s_release_scratch (j);
    s_ahead_drop (self, j);
    j->state = J_UPLOADED;
    s_node_refresh (self, j->node);
}

void
sf_admit_finished (sf_admit_t *self, const char *id)
{
    assert (self);
    job_t *j = s_lookup (self, id);
    if (!j)
        return;
    node_t *n = j->node;
    if (j->state == J_QUEUED) {
        sf_heap_remove (&n->queue, j);
        n->work -= j->work;
        self->st.queued--;
    }
    else {
        s_release_capture (self, j);
        s_release_upload (self, j);
        s_release_scratch (j);
        s_ahead_drop (self, j);
        n->jobs--;
        self->st.running--;
    }
    zhashx_delete (self->jobs, j->id);
    s_job_free (j);
    s_node_refresh (self, n);
}

//  --------------------------------------------------------------------------
//  Pause slots kept across node loss

bool
sf_admit_holds_pause (sf_admit_t *self, const char *id)
{
    assert (self);
    job_t *j = s_lookup (self, id);
    return j && j->holds_pause;
}

static void
s_hold_add (sf_admit_t *self, node_t *n, int64_t until_ms)
{
    if (self->nholds == self->holds_cap) {
        self->holds_cap = self->holds_cap? self->holds_cap * 2: 8;
        self->holds = (hold_t *) realloc (self->holds, self->holds_cap * sizeof (hold_t));
        assert (self->holds);
    }
    self->holds [self->nholds++] = (hold_t) { .node = n, .until_ms = until_ms };
}

bool
sf_admit_finished_held (sf_admit_t *self, const char *id, int64_t until_ms)
{
    assert (self);
    job_t *j = s_lookup (self, id);
    if (!j)
        return false;
    bool keep = j->holds_pause;
    if (keep) {
        //  The counts stay; the hold gives them back at until_ms
        j->holds_pause = false;
        s_hold_add (self, j->node, until_ms);
    }
    sf_admit_finished (self, id);
    return keep;
}

void
sf_admit_hold (sf_admit_t *self, const char *node, int64_t until_ms)
{
    assert (self && node);
    node_t *n = (node_t *) zhashx_lookup (self->node_tab, node);
    if (!n) {
        sf_admit_node (self, node, false, node, "", 0, 0);
        n = (node_t *) zhashx_lookup (self->node_tab, node);
    }
    n->paused++;
    self->st.paused++;
    s_max (&self->st.paused_max, self->st.paused);
    s_max (&self->st.node_paused_max, n->paused);
    s_hold_add (self, n, until_ms);
    s_pause_groups_update (self);
    s_node_refresh (self, n);
}

size_t
sf_admit_release_holds (sf_admit_t *self, int64_t now_ms)
{
    assert (self);
    size_t released = 0;
    for (size_t i = 0; i < self->nholds; ) {
        hold_t *h = &self->holds [i];
        if (h->until_ms > now_ms) {
            i++;
            continue;
        }
        node_t *n = h->node;
        n->paused--;
        self->st.paused--;
        self->holds [i] = self->holds [--self->nholds];
        s_node_refresh (self, n);
        released++;
    }
    if (released)
        s_pause_groups_update (self);
    return released;
}

size_t
sf_admit_holds (sf_admit_t *self)
{
    assert (self);
    return self->nholds;
}

sf_admit_verdict_t
sf_admit_next_stranded (sf_admit_t *self, int64_t now_ms, const char **id,
                        char *reason, size_t reason_size)
{
    assert (self && id);
    if (self->gone) {
        s_job_free (self->gone);
        self->gone = NULL;
    }
    *id = NULL;
    for (node_t *n = (node_t *) zhashx_first (self->node_tab); n;
         n = (node_t *) zhashx_next (self->node_tab)) {
        if (n->up)
            continue;
        for (size_t i = 0; i < sf_heap_size (&n->queue); i++) {
            job_t *j = (job_t *) n->queue.items [i];
            if (!j->window_end_ms || now_ms + s_estimate_ms (self, j) <= j->window_end_ms)
                continue;
            *id = j->id;
            if (reason)
                snprintf (reason, reason_size, "node '%s' was down until the window "
                          "closed", n->name);
            s_queue_drop (self, j);
            return SF_ADMIT_SKIP;
        }
    }
    return SF_ADMIT_NONE;
}

void
sf_admit_stats (sf_admit_t *self, sf_admit_stats_t *stats)
{
    assert (self && stats);
    *stats = self->st;
}
