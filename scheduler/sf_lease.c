/*  =========================================================================
    sf_lease - leases of the jobs handed to workers: no job waits forever

    A table id -> lease, and a heap of the same leases ordered by when
    they run out, so the timer finds what is due in O(log n) per lease.
    =========================================================================
*/
#include "sf_sched_classes.h"

typedef enum {
    L_LEASED,                   //  runs out at deadline: query then
    L_QUERIED,                  //  asked; runs out at deadline: give up
} lstate_t;

typedef struct {
    char *id;                   //  Owned
    char *node;                 //  Owned
    uint32_t attempt;
    int phase;                  //  SF_PHASE_*, -1 assigned
    uint64_t est_bytes;
    uint64_t rate_bps;          //  granted upload rate, 0 none
    uint64_t progress;          //  last progress seen
    lstate_t state;
    bool finished_once;         //  FINISHED renewed once already
    int64_t deadline_ms;        //  monotonic
    int64_t news_ms;            //  last news of the job
    size_t hidx;                //  in self->due
} lease_t;

struct _sf_lease_t {
    int64_t base_ms;
    uint64_t floor_bps;
    zhashx_t *leases;           //  id -> lease_t, owned
    sf_heap_t due;              //  the leases, soonest deadline first
    char *gone_id;              //  Owned: id and node of the last EXPIRED
    char *gone_node;            //  Owned
};

SF_LOG_MODULE ("sched.lease");

static void
s_lease_destroy (lease_t **lease_p)
{
    if (*lease_p) {
        free ((*lease_p)->id);
        free ((*lease_p)->node);
        free (*lease_p);
        *lease_p = NULL;
    }
}

static bool
s_due_before (const void *a_, const void *b_)
{
    const lease_t *a = (const lease_t *) a_, *b = (const lease_t *) b_;
    return a->deadline_ms < b->deadline_ms;
}

sf_lease_t *
sf_lease_new (int64_t base_ms, uint64_t floor_bps)
{
    sf_lease_t *self = (sf_lease_t *) zmalloc (sizeof (sf_lease_t));
    self->base_ms = base_ms > 0? base_ms: SF_LEASE_BASE_DEFAULT;
    self->floor_bps = floor_bps > 0? floor_bps: SF_LEASE_RATE_DEFAULT;
    self->leases = zhashx_new ();
    zhashx_set_destructor (self->leases, (zhashx_destructor_fn *) s_lease_destroy);
    sf_heap_init (&self->due, s_due_before, offsetof (lease_t, hidx));
    return self;
}

void
sf_lease_destroy (sf_lease_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_lease_t *self = *self_p;
        sf_heap_release (&self->due);
        zhashx_destroy (&self->leases);
        free (self->gone_id);
        free (self->gone_node);
        free (self);
        *self_p = NULL;
    }
}

//  ms to move bytes at bps, saturated at a day (a lease never needs more)
static int64_t
s_move_ms (uint64_t bytes, uint64_t bps)
{
    double ms = (double) bytes * 1000.0 / (double) bps;
    return ms > 86400000.0? 86400000: (int64_t) ms;
}

int64_t
sf_lease_time (sf_lease_t *self, int phase, uint64_t est_bytes, uint64_t rate_bps)
{
    assert (self);
    if (phase < 0 || phase == SF_PHASE_QUEUED || phase == SF_PHASE_PAUSED)
        return self->base_ms + s_move_ms (est_bytes, self->floor_bps);
    //  Upload wait with a grant: uploading
    if (phase == SF_PHASE_UPLOAD_WAIT && rate_bps)
        return self->base_ms + s_move_ms (est_bytes, rate_bps < self->floor_bps
                                                     ? rate_bps: self->floor_bps);
    if (phase == SF_PHASE_UPLOAD_WAIT)
        return self->base_ms + s_move_ms (est_bytes, self->floor_bps);
    return self->base_ms;
}

static int64_t
s_time (sf_lease_t *self, const lease_t *lease)
{
    return sf_lease_time (self, lease->phase, lease->est_bytes, lease->rate_bps);
}

static void
s_set_deadline (sf_lease_t *self, lease_t *lease, int64_t deadline_ms)
{
    lease->deadline_ms = deadline_ms;
    if (sf_heap_has (&self->due, lease))
        sf_heap_fix (&self->due, lease);
    else
        sf_heap_insert (&self->due, lease);
}

void
sf_lease_start (sf_lease_t *self, const char *id, const char *node, uint32_t attempt,
                int phase, uint64_t est_bytes, int64_t now_ms)
{
    assert (self && id && node);
    sf_lease_drop (self, id);
    lease_t *lease = (lease_t *) zmalloc (sizeof (lease_t));
    lease->id = strdup (id);
    lease->node = strdup (node);
    lease->attempt = attempt;
    lease->phase = phase;
    lease->est_bytes = est_bytes;
    lease->news_ms = now_ms;
    lease->hidx = SF_HEAP_NOT_IN;
    zhashx_insert (self->leases, lease->id, lease);
    s_set_deadline (self, lease, now_ms + s_time (self, lease));
}

void
sf_lease_renew (sf_lease_t *self, const char *id, int phase, uint64_t progress,
                uint64_t rate_bps, int64_t now_ms)
{
    assert (self);
    lease_t *lease = id? (lease_t *) zhashx_lookup (self->leases, id): NULL;
    if (!lease)
        return;
    if (phase >= 0)
        lease->phase = phase;
    if (rate_bps)
        lease->rate_bps = rate_bps;
    lease->progress = progress;
    lease->state = L_LEASED;
    lease->news_ms = now_ms;
    s_set_deadline (self, lease, now_ms + s_time (self, lease));
}

void
sf_lease_finished (sf_lease_t *self, const char *id, int64_t now_ms)
{
    assert (self);
    lease_t *lease = id? (lease_t *) zhashx_lookup (self->leases, id): NULL;
    if (!lease || lease->finished_once)
        return;
    lease->finished_once = true;
    lease->state = L_LEASED;
    lease->news_ms = now_ms;
    s_set_deadline (self, lease, now_ms + self->base_ms);
}

void
sf_lease_drop (sf_lease_t *self, const char *id)
{
    assert (self);
    lease_t *lease = id? (lease_t *) zhashx_lookup (self->leases, id): NULL;
    if (!lease)
        return;
    if (sf_heap_has (&self->due, lease))
        sf_heap_remove (&self->due, lease);
    zhashx_delete (self->leases, id);
}

bool
sf_lease_has (sf_lease_t *self, const char *id, const char **node_p, uint32_t *attempt_p)
{
    assert (self);
    lease_t *lease = id? (lease_t *) zhashx_lookup (self->leases, id): NULL;
    if (lease && node_p)
        *node_p = lease->node;
    if (lease && attempt_p)
        *attempt_p = lease->attempt;
    return lease != NULL;
}

size_t
sf_lease_size (sf_lease_t *self)
{
    assert (self);
    return zhashx_size (self->leases);
}

//  The phase as the reason names it
static const char *
s_phase_name (int phase)
{
    if (phase < 0 || phase == SF_PHASE_QUEUED)
        return "assigned";
    if (phase == SF_PHASE_PAUSED)
        return "converting";
    if (phase == SF_PHASE_UPLOAD_WAIT)
        return "upload";
    return sf_wire_phase_name (phase);
}

sf_lease_due_t
sf_lease_next_due (sf_lease_t *self, int64_t now_ms, const char **id, const char **node,
                   uint32_t *attempt, char *reason, size_t reason_size)
{
    assert (self && id && node && attempt);
    if (reason && reason_size)
        *reason = 0;
    lease_t *lease = (lease_t *) sf_heap_top (&self->due);
    if (!lease || lease->deadline_ms > now_ms)
        return SF_LEASE_NONE;
    *id = lease->id;
    *node = lease->node;
    *attempt = lease->attempt;
    if (lease->state == L_LEASED) {
        lease->state = L_QUERIED;
        s_set_deadline (self, lease, now_ms + self->base_ms);
        return SF_LEASE_QUERY;
    }
    if (reason)
        snprintf (reason, reason_size, "no news from node '%s' for %" PRId64 " s in "
                  "phase %s; cancelled", lease->node, (now_ms - lease->news_ms) / 1000,
                  s_phase_name (lease->phase));
    //  Gone from the table; *id and *node stay valid until the next call
    free (self->gone_id);
    free (self->gone_node);
    self->gone_id = strdup (lease->id);
    self->gone_node = strdup (lease->node);
    *id = self->gone_id;
    *node = self->gone_node;
    sf_heap_remove (&self->due, lease);
    zhashx_delete (self->leases, self->gone_id);
    return SF_LEASE_EXPIRED;
}

//  --------------------------------------------------------------------------
//  Self test

void
sf_lease_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_lease: ");
    //  @selftest
    sf_lease_t *lease = sf_lease_new (10000, 1000000);
    //  The formula: capture moves the estimate at the floor rate
    assert (sf_lease_time (lease, -1, 0, 0) == 10000);
    assert (sf_lease_time (lease, -1, 5000000, 0) == 15000);
    assert (sf_lease_time (lease, SF_PHASE_PAUSED, 5000000, 0) == 15000);
    assert (sf_lease_time (lease, SF_PHASE_RESUMED, 5000000, 0) == 10000);
    assert (sf_lease_time (lease, SF_PHASE_UPLOADED, 1ULL << 60, 0) == 10000);
    //  Huge estimates saturate at a day
    assert (sf_lease_time (lease, -1, UINT64_MAX, 0) == 10000 + 86400000);

    const char *id, *node;
    uint32_t attempt;
    char reason [256];
    //  A job handed at t=0 with 5 MB: due at 15 s
    sf_lease_start (lease, "J1", "n1", 2, -1, 5000000, 0);
    sf_lease_start (lease, "J2", "n2", 1, -1, 0, 0);
    assert (sf_lease_size (lease) == 2);
    assert (sf_lease_has (lease, "J1", &node, &attempt) && streq (node, "n1") && attempt == 2);
    assert (sf_lease_next_due (lease, 9999, &id, &node, &attempt, reason, sizeof (reason))
            == SF_LEASE_NONE);
    //  J2 is due at 10 s: query; then nothing until its grace or J1's lease
    assert (sf_lease_next_due (lease, 10000, &id, &node, &attempt, reason, sizeof (reason))
            == SF_LEASE_QUERY);
    assert (streq (id, "J2") && streq (node, "n2") && attempt == 1);
    assert (sf_lease_next_due (lease, 10000, &id, &node, &attempt, reason, sizeof (reason))
            == SF_LEASE_NONE);
    //  An event of J1 at 14 s renews it: paused, so 15 s from then (29 s)
    sf_lease_renew (lease, "J1", SF_PHASE_PAUSED, 0, 0, 14000);
    //  J2 was asked at 10 s; no answer by 20 s (the grace = base): given up
    assert (sf_lease_next_due (lease, 19999, &id, &node, &attempt, reason, sizeof (reason))
            == SF_LEASE_NONE);
    assert (sf_lease_next_due (lease, 20000, &id, &node, &attempt, reason, sizeof (reason))
            == SF_LEASE_EXPIRED);
    assert (streq (id, "J2") && streq (node, "n2") && attempt == 1);
    assert (streq (reason, "no news from node 'n2' for 20 s in phase assigned; cancelled"));
    assert (!sf_lease_has (lease, "J2", NULL, NULL));
    assert (sf_lease_size (lease) == 1);
    //  J1: due at 29 s; a RUNNING answer at 30 s renews it
    assert (sf_lease_next_due (lease, 29000, &id, &node, &attempt, reason, sizeof (reason))
            == SF_LEASE_QUERY);
    assert (streq (id, "J1"));
    sf_lease_renew (lease, "J1", SF_PHASE_PAUSED, 4096, 0, 30000);
    assert (sf_lease_next_due (lease, 39000, &id, &node, &attempt, reason, sizeof (reason))
            == SF_LEASE_NONE);
    //  FINISHED renews once (base), a second FINISHED does not
    assert (sf_lease_next_due (lease, 45000, &id, &node, &attempt, reason, sizeof (reason))
            == SF_LEASE_QUERY);
    sf_lease_finished (lease, "J1", 46000);
    assert (sf_lease_next_due (lease, 55999, &id, &node, &attempt, reason, sizeof (reason))
            == SF_LEASE_NONE);
    assert (sf_lease_next_due (lease, 56000, &id, &node, &attempt, reason, sizeof (reason))
            == SF_LEASE_QUERY);
    sf_lease_finished (lease, "J1", 57000);
    assert (sf_lease_next_due (lease, 66000, &id, &node, &attempt, reason, sizeof (reason))
            == SF_LEASE_EXPIRED);
    assert (streq (id, "J1") && attempt == 2);
    assert (streq (reason, "no news from node 'n1' for 20 s in phase converting; "
                   "cancelled"));
    //  An upload granted below the floor: its lease covers the slower rate
    sf_lease_start (lease, "J3", "n1", 1, SF_PHASE_CONVERTED, 2000000, 0);
    sf_lease_renew (lease, "J3", SF_PHASE_UPLOAD_WAIT, 0, 500000, 1000);
    assert (sf_lease_next_due (lease, 14999, &id, &node, &attempt, reason, sizeof (reason))
            == SF_LEASE_NONE);
    assert (sf_lease_next_due (lease, 15000, &id, &node, &attempt, reason, sizeof (reason))
            == SF_LEASE_QUERY);
    //  Unknown ids are ignored; drop forgets
    sf_lease_renew (lease, "J9", 1, 0, 0, 0);
    sf_lease_finished (lease, "J9", 0);
    sf_lease_drop (lease, "J9");
    sf_lease_drop (lease, "J3");
    assert (sf_lease_size (lease) == 0);
    assert (sf_lease_next_due (lease, INT64_MAX, &id, &node, &attempt, NULL, 0)
            == SF_LEASE_NONE);
    //  Many leases come out in deadline order
    for (int i = 0; i < 100; i++) {
        char name [16];
        snprintf (name, sizeof (name), "K%d", i);
        sf_lease_start (lease, name, "n1", 1, -1, (uint64_t) ((i * 37) % 100) * 1000000, 0);
    }
    int64_t last = -1;
    int queries = 0;
    for (int64_t t = 0; t <= 200000; t += 1000)
        while (sf_lease_next_due (lease, t, &id, &node, &attempt, NULL, 0) == SF_LEASE_QUERY) {
            assert (t >= last);
            last = t;
            queries++;
        }
    assert (queries == 100);
    sf_lease_destroy (&lease);
    assert (lease == NULL);
    //  @end
    printf ("OK\n");
}
