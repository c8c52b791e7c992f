/*  =========================================================================
    sf_admit_selftest - the self test of sf_admit: gates, upload rounds,
    bandwidth shares and their invariants, a 100,000-job queue
    =========================================================================
*/
#include "sf_sched_classes.h"
#include <math.h>
#include "sf_admit_priv.h"

//  Checks the bandwidth invariant on every link (test only)
static void
s_check_budgets (sf_admit_t *self)
{
    const sf_limits_t *L = &self->limits;
    uint64_t sum = 0;
    for (size_t i = 0; i < self->nupl; i++) {
        sum += self->upl [i]->held;
        assert (self->upl [i]->held >= self->upl [i]->rate);
    }
    assert (sum == self->st.bandwidth);
    if (L->bandwidth > 0)
        assert (sum <= (uint64_t) L->bandwidth);
    for (size_t i = 0; i < self->nupl; i++) {
        job_t *j = self->upl [i];
        if (L->bandwidth_per_node > 0)
            assert (j->node->bw <= (uint64_t) L->bandwidth_per_node);
        if (L->bandwidth_per_store > 0)
            assert (j->node->store->bw <= (uint64_t) L->bandwidth_per_store);
    }
}

static const char *
s_next (sf_admit_t *self, int64_t now, sf_admit_verdict_t want)
{
    const char *id = NULL;
    char reason [200];
    sf_admit_verdict_t v = sf_admit_next (self, now, &id, reason, sizeof (reason));
    assert (v == want);
    return id;
}

static sf_admit_job_t
s_job (const char *id, const char *node, uint64_t seq)
{
    sf_admit_job_t job = { .id = id, .node = node, .seq = seq, .pausing = true,
                           .capture_ms = 1000, .upload_bytes = 1000000 };
    return job;
}

typedef struct { char log [256]; } rates_t;

static void
s_rate_cb (void *arg, const char *id, uint64_t rate)
{
    rates_t *r = (rates_t *) arg;
    size_t len = strlen (r->log);
    snprintf (r->log + len, sizeof (r->log) - len, "%s%s=%" PRIu64, len? " ": "", id, rate);
}

static void
s_test_slots (void)
{
    sf_limits_t limits = { .max_paused = 1, .max_paused_per_node = 1 };
    sf_admit_t *admit = sf_admit_new (&limits);
    sf_admit_node (admit, "n1", true, "s1", "", 2, 0);
    sf_admit_node (admit, "n2", true, "s1", "", 2, 0);
    sf_admit_job_t j1 = s_job ("J1", "n1", 1), j2 = s_job ("J2", "n1", 2);
    sf_admit_job_t j3 = s_job ("J3", "n2", 3), j4 = s_job ("J4", "n2", 4);
    j4.pausing = false;
    assert (sf_admit_add (admit, &j1) == 0);
    assert (sf_admit_add (admit, &j1) == -1);        //  known id
    sf_admit_job_t bad = s_job ("J9", "nx", 9);
    assert (sf_admit_add (admit, &bad) == -1);       //  unknown node
    assert (sf_admit_add (admit, &j2) == 0);
    assert (sf_admit_add (admit, &j3) == 0);
    assert (sf_admit_add (admit, &j4) == 0);
    //  Equal work: J1 is older. J3 (n2's head) must wait for the pause slot
    //  and J4 waits behind it (a node's queue is served in order)
    assert (streq (s_next (admit, 0, SF_ADMIT_START), "J1"));
    s_next (admit, 0, SF_ADMIT_NONE);
    sf_admit_stats_t st;
    sf_admit_stats (admit, &st);
    assert (st.paused == 1 && st.queued == 3 && st.running == 1);
    sf_admit_captured (admit, "J1");
    //  n2 has more queued work than n1 now
    assert (streq (s_next (admit, 0, SF_ADMIT_START), "J3"));
    assert (streq (s_next (admit, 0, SF_ADMIT_START), "J4"));
    s_next (admit, 0, SF_ADMIT_NONE);
    sf_admit_finished (admit, "J3");                //  frees its pause slot
    sf_admit_finished (admit, "nope");
    assert (streq (s_next (admit, 0, SF_ADMIT_START), "J2"));
    //  Node max_jobs 2: J3 and J4 hold n2's slots... J4 and J5 now
    sf_admit_job_t j5 = s_job ("J5", "n2", 5), j7 = s_job ("J7", "n2", 7);
    j5.pausing = j7.pausing = false;
    assert (sf_admit_add (admit, &j5) == 0);
    assert (sf_admit_add (admit, &j7) == 0);
    assert (streq (s_next (admit, 0, SF_ADMIT_START), "J5"));
    s_next (admit, 0, SF_ADMIT_NONE);
    sf_admit_finished (admit, "J4");
    assert (streq (s_next (admit, 0, SF_ADMIT_START), "J7"));
    sf_admit_finished (admit, "J1");
    sf_admit_finished (admit, "J2");
    //  A node that is down gets nothing
    sf_admit_job_t j6 = s_job ("J6", "n1", 6);
    j6.pausing = false;
    sf_admit_node (admit, "n1", false, "s1", "", 2, 0);
    assert (sf_admit_add (admit, &j6) == 0);
    s_next (admit, 0, SF_ADMIT_NONE);
    sf_admit_node (admit, "n1", true, "s1", "", 2, 0);
    assert (streq (s_next (admit, 0, SF_ADMIT_START), "J6"));
    sf_admit_stats (admit, &st);
    assert (st.paused_max == 1 && st.node_paused_max == 1);
    sf_admit_destroy (&admit);
    assert (!admit);
}

static void
s_test_order (void)
{
    sf_limits_t limits = { .max_paused = 1 };
    sf_admit_t *admit = sf_admit_new (&limits);
    sf_admit_node (admit, "n1", true, "s1", "", 0, 0);
    sf_admit_node (admit, "n2", true, "s1", "", 0, 0);
    sf_admit_job_t j1 = s_job ("J1", "n1", 1), j2 = s_job ("J2", "n2", 2);
    sf_admit_job_t j3 = s_job ("J3", "n2", 3), j4 = s_job ("J4", "n1", 4);
    j2.deadline_ms = 5000;
    j3.priority = 5;
    j4.deadline_ms = 4000;
    sf_admit_add (admit, &j1);
    sf_admit_add (admit, &j2);
    sf_admit_add (admit, &j3);
    sf_admit_add (admit, &j4);
    const char *want [] = { "J3", "J4", "J2", "J1" };
    for (int i = 0; i < 4; i++) {
        const char *id = s_next (admit, 0, SF_ADMIT_START);
        assert (streq (id, want [i]));
        s_next (admit, 0, SF_ADMIT_NONE);
        sf_admit_finished (admit, id);
    }
    sf_admit_destroy (&admit);
}

static void
s_test_snap_ops (void)
{
    sf_limits_t limits = { .max_snap_ops = 1 };
    sf_admit_t *admit = sf_admit_new (&limits);
    sf_admit_node (admit, "a1", true, "s1", "cephA", 0, 0);
    sf_admit_node (admit, "a2", true, "s1", "cephA", 0, 0);
    sf_admit_node (admit, "b1", true, "s1", "cephB", 0, 0);
    const char *ids [] = { "J1", "J2", "J3", "J4" }, *nodes [] = { "a1", "a2", "b1", "a2" };
    for (int i = 0; i < 4; i++) {
        sf_admit_job_t job = s_job (ids [i], nodes [i], (uint64_t) i);
        job.snap_op = i < 3;
        job.pausing = false;
        sf_admit_add (admit, &job);
    }
    //  a2 has the most work; J1 waits for cephA, b1 is on cephB, J4 needs
    //  no snap op
    assert (streq (s_next (admit, 0, SF_ADMIT_START), "J2"));
    assert (streq (s_next (admit, 0, SF_ADMIT_START), "J3"));
    assert (streq (s_next (admit, 0, SF_ADMIT_START), "J4"));
    s_next (admit, 0, SF_ADMIT_NONE);
    sf_admit_captured (admit, "J3");
    s_next (admit, 0, SF_ADMIT_NONE);
    sf_admit_captured (admit, "J2");
    assert (streq (s_next (admit, 0, SF_ADMIT_START), "J1"));
    sf_admit_stats_t st;
    sf_admit_stats (admit, &st);
    assert (st.snap_ops_max == 1);
    sf_admit_destroy (&admit);
}

//  A node whose last queued job starts is compared, through its group,
//  before its refresh takes it out of the group: its key is then the job
//  it just lost (S_HEAD; an empty head would crash here)
static void
s_test_last_job (void)
{
    sf_limits_t limits = { 0 };
    sf_admit_t *admit = sf_admit_new (&limits);
    sf_admit_node (admit, "n1", true, "s1", "", 0, 0);
    sf_admit_node (admit, "n2", true, "s1", "", 0, 0);
    sf_admit_job_t j1 = s_job ("J1", "n1", 1), j2 = s_job ("J2", "n2", 2);
    j2.pausing = false;                 //  another group than J1's
    assert (sf_admit_add (admit, &j1) == 0 && sf_admit_add (admit, &j2) == 0);
    assert (streq (s_next (admit, 0, SF_ADMIT_START), "J1"));
    assert (streq (s_next (admit, 0, SF_ADMIT_START), "J2"));
    s_next (admit, 0, SF_ADMIT_NONE);
    sf_admit_destroy (&admit);
}

static void
s_test_scratch_window (void)
{
    sf_limits_t limits = { 0 };
    sf_admit_t *admit = sf_admit_new (&limits);
    sf_admit_node (admit, "n1", true, "s1", "", 0, 100);
    sf_admit_job_t j1 = s_job ("J1", "n1", 1), j2 = s_job ("J2", "n1", 2);
    sf_admit_job_t j3 = s_job ("J3", "n1", 3);
    j1.scratch_bytes = 60;
    j2.scratch_bytes = 60;
    j3.scratch_bytes = 200;
    sf_admit_add (admit, &j1);
    sf_admit_add (admit, &j2);
    sf_admit_add (admit, &j3);
    assert (streq (s_next (admit, 0, SF_ADMIT_START), "J1"));
    s_next (admit, 0, SF_ADMIT_NONE);               //  J2 waits for J1's scratch
    sf_admit_upload_wait (admit, "J1", 0);
    const char *id;
    uint64_t rate;
    assert (sf_admit_next_upload (admit, &id, &rate) && streq (id, "J1") && rate == 0);
    sf_admit_uploaded (admit, "J1");
    assert (streq (s_next (admit, 0, SF_ADMIT_START), "J2"));
    sf_admit_finished (admit, "J2");
    //  J3 needs more than the node has: the node reports again, then FAIL
    s_next (admit, 0, SF_ADMIT_NONE);
    sf_admit_node (admit, "n1", true, "s1", "", 0, 100);
    char reason [200];
    assert (sf_admit_next (admit, 0, &id, reason, sizeof (reason)) == SF_ADMIT_FAIL);
    assert (streq (id, "J3"));
    assert (strstr (reason, "200 bytes") && strstr (reason, "100 bytes"));
    //  Window: 1 s capture + 10 MB at 1 MB/s = 11 s, window ends in 5 s
    sf_admit_job_t j4 = s_job ("J4", "n1", 4);
    j4.upload_bytes = 10000000;
    j4.upload_bps = 1e6;
    j4.window_end_ms = 1000000 + 5000;
    sf_admit_add (admit, &j4);
    assert (sf_admit_next (admit, 1000000, &id, reason, sizeof (reason)) == SF_ADMIT_SKIP);
    assert (streq (id, "J4"));
    assert (strstr (reason, "estimated 11 s would end 6.0 s after the window closes at"));
    sf_admit_stats_t st;
    sf_admit_stats (admit, &st);
    assert (st.queued == 0);
    sf_admit_finished (admit, "J4");                //  already gone: ignored
    sf_admit_destroy (&admit);
}

static void
s_test_uploads (void)
{
    sf_limits_t limits = { .max_uploads = 2, .max_uploads_per_node = 1, .bandwidth = 100 };
    sf_admit_t *admit = sf_admit_new (&limits);
    sf_admit_node (admit, "n1", true, "s1", "", 0, 0);
    sf_admit_node (admit, "n2", true, "s1", "", 0, 0);
    const char *ids [] = { "J1", "J2", "J3" }, *nodes [] = { "n1", "n1", "n2" };
    for (int i = 0; i < 3; i++) {
        sf_admit_job_t job = s_job (ids [i], nodes [i], (uint64_t) i);
        job.pausing = false;
        sf_admit_add (admit, &job);
        s_next (admit, 0, SF_ADMIT_START);
        sf_admit_captured (admit, ids [i]);
        sf_admit_upload_wait (admit, ids [i], 1000);
    }
    const char *id;
    uint64_t rate;
    rates_t r = { "" };
    assert (sf_admit_next_upload (admit, &id, &rate) && streq (id, "J1") && rate == 100);
    sf_admit_rates (admit, s_rate_cb, &r);
    assert (streq (r.log, ""));
    //  J2 is on n1 (node slot taken): J3 next, and J1 comes down to 50
    assert (sf_admit_next_upload (admit, &id, &rate) && streq (id, "J3") && rate == 50);
    assert (!sf_admit_next_upload (admit, &id, &rate));
    sf_admit_rates (admit, s_rate_cb, &r);
    assert (streq (r.log, "J1=50"));
    s_check_budgets (admit);
    //  J1 ends: J2 starts at 50 (J3 has 50), nothing to raise
    sf_admit_uploaded (admit, "J1");
    assert (sf_admit_next_upload (admit, &id, &rate) && streq (id, "J2") && rate == 50);
    r.log [0] = 0;
    sf_admit_rates (admit, s_rate_cb, &r);
    assert (streq (r.log, ""));
    //  J3 ends (finished while uploading): J2 goes up to 100
    sf_admit_finished (admit, "J3");
    sf_admit_rates (admit, s_rate_cb, &r);
    assert (streq (r.log, "J2=100"));
    s_check_budgets (admit);
    //  Per-node budget and an upload's own cap: progressive filling
    limits.max_uploads = 0;
    limits.max_uploads_per_node = 0;
    limits.bandwidth = 300;
    limits.bandwidth_per_node = 120;
    sf_admit_set_limits (admit, &limits);
    sf_admit_job_t j4 = s_job ("J4", "n1", 4), j5 = s_job ("J5", "n2", 5);
    j4.pausing = j5.pausing = false;
    j5.upload_bps = 30;
    sf_admit_add (admit, &j4);
    sf_admit_add (admit, &j5);
    s_next (admit, 0, SF_ADMIT_START);
    s_next (admit, 0, SF_ADMIT_START);
    sf_admit_upload_wait (admit, "J4", 1000);
    sf_admit_upload_wait (admit, "J5", 1000);
    r.log [0] = 0;
    sf_admit_rates (admit, s_rate_cb, &r);
    assert (streq (r.log, "J2=120"));               //  lowered to its node budget
    //  J5's node has no upload yet: it goes before J4, which waited longer
    assert (sf_admit_next_upload (admit, &id, &rate) && streq (id, "J5") && rate == 30);
    assert (sf_admit_next_upload (admit, &id, &rate) && streq (id, "J4") && rate == 60);
    r.log [0] = 0;
    sf_admit_rates (admit, s_rate_cb, &r);
    assert (streq (r.log, "J2=60"));
    s_check_budgets (admit);
    sf_admit_stats_t st;
    sf_admit_stats (admit, &st);
    assert (st.bandwidth == 150 && st.uploads == 3 && st.uploads_max == 3);
    //  Restore: an upload-wait job comes back queued for its upload
    sf_admit_job_t j6 = s_job ("J6", "n2", 6);
    assert (sf_admit_restore (admit, &j6, SF_PHASE_UPLOAD_WAIT) == 0);
    assert (sf_admit_restore (admit, &j6, SF_PHASE_UPLOAD_WAIT) == -1);
    assert (sf_admit_next_upload (admit, &id, &rate) && streq (id, "J6"));
    sf_admit_job_t j7 = s_job ("J7", "n2", 7);
    assert (sf_admit_restore (admit, &j7, SF_PHASE_PAUSED) == 0);
    sf_admit_stats (admit, &st);
    assert (st.paused == 1);
    sf_admit_finished (admit, "J7");
    sf_admit_stats (admit, &st);
    assert (st.paused == 0);
    sf_admit_destroy (&admit);
}

//  A started job whose assignment never arrived goes back, holding nothing
static void
s_test_requeue (void)
{
    sf_limits_t limits = { .max_paused = 1 };
    sf_admit_t *admit = sf_admit_new (&limits);
    sf_admit_node (admit, "n1", true, "s1", "", 1, 1000);
    sf_admit_job_t job = s_job ("J1", "n1", 1);
    job.scratch_bytes = 600;
    sf_admit_add (admit, &job);
    assert (streq (s_next (admit, 0, SF_ADMIT_START), "J1"));
    sf_admit_stats_t st;
    sf_admit_stats (admit, &st);
    assert (st.paused == 1 && st.running == 1 && st.queued == 0);
    assert (sf_admit_requeue (admit, "J1") == 0);
    assert (sf_admit_requeue (admit, "J1") == -1);      //  queued already
    assert (sf_admit_requeue (admit, "J9") == -1);
    sf_admit_stats (admit, &st);
    assert (st.paused == 0 && st.running == 0 && st.queued == 1);
    //  Its node is away until it says hello; then it starts again
    sf_admit_node (admit, "n1", false, "s1", "", 1, 1000);
    s_next (admit, 0, SF_ADMIT_NONE);
    sf_admit_node (admit, "n1", true, "s1", "", 1, 1000);
    assert (streq (s_next (admit, 0, SF_ADMIT_START), "J1"));
    sf_admit_captured (admit, "J1");
    assert (sf_admit_requeue (admit, "J1") == -1);      //  past its capture
    sf_admit_destroy (&admit);
}

//  With acks, what a cut frees is granted only once the worker applied it
static void
s_test_acks (void)
{
    sf_limits_t limits = { .bandwidth_per_store = 100 };
    sf_admit_t *admit = sf_admit_new (&limits);
    sf_admit_set_acks (admit, true);
    sf_admit_node (admit, "n1", true, "s1", "", 0, 0);
    sf_admit_node (admit, "n2", true, "s1", "", 0, 0);
    const char *ids [] = { "J1", "J2" }, *nodes [] = { "n1", "n2" };
    for (int i = 0; i < 2; i++) {
        sf_admit_job_t job = s_job (ids [i], nodes [i], (uint64_t) i);
        job.pausing = false;
        sf_admit_add (admit, &job);
        s_next (admit, 0, SF_ADMIT_START);
        sf_admit_upload_wait (admit, ids [i], 1000);
    }
    const char *id;
    uint64_t rate;
    rates_t r = { "" };
    assert (sf_admit_next_upload (admit, &id, &rate) && streq (id, "J1") && rate == 100);
    //  J2 is next: J1 is cut to 50, but until n1 says so J2 waits
    assert (!sf_admit_next_upload (admit, &id, &rate));
    sf_admit_rates (admit, s_rate_cb, &r);
    assert (streq (r.log, "J1=50"));
    s_check_budgets (admit);
    sf_admit_stats_t st;
    sf_admit_stats (admit, &st);
    assert (st.bandwidth == 100 && st.uploads == 1 && st.uploads_max == 1);
    //  A stale or unknown acknowledgement changes nothing
    assert (!sf_admit_rate_applied (admit, "J9", 50));
    assert (!sf_admit_rate_applied (admit, "J1", 100));
    assert (!sf_admit_rate_applied (admit, "J2", 50));
    assert (!sf_admit_next_upload (admit, &id, &rate));
    //  n1 applied 50: J2 starts with the other half
    assert (sf_admit_rate_applied (admit, "J1", 50));
    assert (sf_admit_next_upload (admit, &id, &rate) && streq (id, "J2") && rate == 50);
    r.log [0] = 0;
    sf_admit_rates (admit, s_rate_cb, &r);
    assert (streq (r.log, ""));
    s_check_budgets (admit);
    sf_admit_stats (admit, &st);
    assert (st.bandwidth == 100);
    //  A cut then a raise before the cut's ack: the raise stays held
    sf_admit_uploaded (admit, "J2");
    r.log [0] = 0;
    sf_admit_rates (admit, s_rate_cb, &r);
    assert (streq (r.log, "J1=100"));
    assert (!sf_admit_rate_applied (admit, "J1", 50));
    s_check_budgets (admit);
    sf_admit_destroy (&admit);
}

//  100k jobs on 1,000 nodes through the whole pipeline, limits binding
//  A job that ends without word from its silent node keeps its pause slot
//  until its hold ends; jobs of a down node wait for it unless their
//  window closes

static void
s_test_node_loss (void)
{
    sf_limits_t limits = { .max_paused = 1, .max_paused_per_node = 1 };
    sf_admit_t *admit = sf_admit_new (&limits);
    sf_admit_node (admit, "n1", true, "s1", "", 4, 0);
    sf_admit_node (admit, "n2", true, "s1", "", 4, 0);
    sf_admit_job_t j1 = s_job ("J1", "n1", 1), j2 = s_job ("J2", "n2", 2);
    sf_admit_job_t j3 = s_job ("J3", "n1", 3), j4 = s_job ("J4", "n1", 4);
    j4.window_end_ms = 50000;           //  its estimate is 1 s + upload
    assert (sf_admit_add (admit, &j1) == 0);
    assert (sf_admit_add (admit, &j2) == 0);
    assert (streq (s_next (admit, 0, SF_ADMIT_START), "J1"));
    assert (sf_admit_holds_pause (admit, "J1"));
    s_next (admit, 0, SF_ADMIT_NONE);               //  J2 waits for the slot
    //  n1 falls silent: down; J3 and J4 queued for it wait
    sf_admit_node (admit, "n1", false, "s1", "", 4, 0);
    assert (sf_admit_add (admit, &j3) == 0);
    assert (sf_admit_add (admit, &j4) == 0);
    //  J1's lease runs out at 10 s: its slot stays until 30 s
    assert (sf_admit_finished_held (admit, "J1", 30000));
    assert (sf_admit_holds (admit) == 1);
    sf_admit_stats_t st;
    sf_admit_stats (admit, &st);
    assert (st.paused == 1 && st.running == 0);
    s_next (admit, 10000, SF_ADMIT_NONE);
    s_next (admit, 29999, SF_ADMIT_NONE);
    //  Nothing stranded before J4's window closes (now + estimate)
    const char *id = NULL;
    char reason [200];
    assert (sf_admit_next_stranded (admit, 29999, &id, reason, sizeof (reason))
            == SF_ADMIT_NONE);
    //  At 30 s the slot comes back: J2 starts on n2, never two at once
    assert (streq (s_next (admit, 30000, SF_ADMIT_START), "J2"));
    assert (sf_admit_holds (admit) == 0);
    sf_admit_stats (admit, &st);
    assert (st.paused == 1 && st.paused_max == 1);
    //  J4's window closes while n1 is down: skipped with the reason; J3
    //  (no window) waits on
    assert (sf_admit_next_stranded (admit, 49500, &id, reason, sizeof (reason))
            == SF_ADMIT_SKIP);
    assert (streq (id, "J4"));
    assert (streq (reason, "node 'n1' was down until the window closed"));
    assert (sf_admit_next_stranded (admit, 49500, &id, reason, sizeof (reason))
            == SF_ADMIT_NONE);
    //  n1 comes back: J3 starts once J2's capture is over
    sf_admit_node (admit, "n1", true, "s1", "", 4, 0);
    s_next (admit, 50000, SF_ADMIT_NONE);
    sf_admit_captured (admit, "J2");
    assert (streq (s_next (admit, 50000, SF_ADMIT_START), "J3"));
    //  A job past its capture keeps nothing; a hold restored after a
    //  restart counts on a node admission did not know
    sf_admit_captured (admit, "J3");
    assert (!sf_admit_holds_pause (admit, "J3"));
    assert (!sf_admit_finished_held (admit, "J3", 90000));
    assert (!sf_admit_finished_held (admit, "J3", 90000));     //  unknown now
    sf_admit_hold (admit, "n9", 60000);
    sf_admit_stats (admit, &st);
    assert (st.paused == 1);
    sf_admit_job_t j5 = s_job ("J5", "n2", 5);
    assert (sf_admit_add (admit, &j5) == 0);
    s_next (admit, 59999, SF_ADMIT_NONE);
    assert (sf_admit_release_holds (admit, 60000) == 1);
    assert (streq (s_next (admit, 60000, SF_ADMIT_START), "J5"));
    sf_admit_destroy (&admit);
}

static void
s_test_scale (bool verbose)
{
    const int nodes = 1000, njobs = 100000;
    sf_limits_t limits = { .max_paused = 20, .max_paused_per_node = 1, .max_snap_ops = 4,
                           .max_uploads = 40, .max_uploads_per_node = 1,
                           .max_uploads_per_store = 12, .bandwidth = 1000000000,
                           .bandwidth_per_node = 100000000, .bandwidth_per_store = 300000000 };
    sf_admit_t *admit = sf_admit_new (&limits);
    char name [32];
    for (int i = 0; i < nodes; i++) {
        snprintf (name, sizeof (name), "n%d", i);
        char store [16], ceph [16];
        snprintf (store, sizeof (store), "s%d", i % 5);
        snprintf (ceph, sizeof (ceph), "c%d", i % 3);
        sf_admit_node (admit, name, true, store, ceph, 3, 0);
    }
    char (*ids) [12] = (char (*) [12]) malloc ((size_t) njobs * 12);
    const char **capq = (const char **) malloc ((size_t) njobs * sizeof (char *));
    const char **upq = (const char **) malloc ((size_t) njobs * sizeof (char *));
    size_t cap_head = 0, cap_tail = 0, up_head = 0, up_tail = 0, done = 0, ops = 0;
    int64_t t0 = sf_time_mono_us ();
    clock_t c0 = clock ();
    for (int i = 0; i < njobs; i++) {
        snprintf (ids [i], 12, "J%d", i);
        snprintf (name, sizeof (name), "n%d", (i * 7919) % nodes);
        sf_admit_job_t job = { .id = ids [i], .node = name, .seq = (uint64_t) i,
                               .priority = i % 3, .pausing = i % 4 != 0, .snap_op = i % 2 == 0,
                               .capture_ms = 100 + i % 500, .upload_bytes = i % 5? 1000000: 0 };
        assert (sf_admit_add (admit, &job) == 0);
        ops++;
    }
    sf_admit_stats_t st;
    while (done < (size_t) njobs) {
        const char *id;
        while (sf_admit_next (admit, 0, &id, NULL, 0) == SF_ADMIT_START) {
            capq [cap_tail++] = id;
            ops++;
        }
        ops++;
        //  End the oldest capture, then the oldest upload
        if (cap_head < cap_tail) {
            id = capq [cap_head++];
            sf_admit_captured (admit, id);
            ops++;
            if (id [1] % 5 != 0) {              //  not exact, just a mix
                sf_admit_upload_wait (admit, id, 1000000);
                ops++;
            }
            else {
                sf_admit_finished (admit, id);
                done++;
                ops++;
            }
        }
        uint64_t rate;
        while (sf_admit_next_upload (admit, &id, &rate)) {
            upq [up_tail++] = id;
            assert (rate > 0);
            ops++;
        }
        sf_admit_rates (admit, NULL, NULL);
        if (up_head < up_tail && (cap_head == cap_tail || cap_head % 2)) {
            id = upq [up_head++];
            sf_admit_uploaded (admit, id);
            sf_admit_finished (admit, id);
            done++;
            ops += 2;
        }
        sf_admit_stats (admit, &st);
        assert (st.paused <= limits.max_paused && st.uploads <= limits.max_uploads);
        assert (st.bandwidth <= (uint64_t) limits.bandwidth);
        if (done % 1000 == 0)
            s_check_budgets (admit);
        assert (cap_head < cap_tail || up_head < up_tail || done == (size_t) njobs);
    }
    int64_t us = sf_time_mono_us () - t0;
    double cpu = (double) (clock () - c0) / CLOCKS_PER_SEC;
    sf_admit_stats (admit, &st);
    assert (st.queued == 0 && st.running == 0 && st.paused == 0 && st.uploads == 0);
    assert (st.paused_max == limits.max_paused);
    assert (st.node_paused_max == limits.max_paused_per_node);
    assert (st.snap_ops_max == limits.max_snap_ops);
    assert (st.uploads_max == limits.max_uploads);
    assert (st.node_uploads_max == limits.max_uploads_per_node);
    assert (st.store_uploads_max == limits.max_uploads_per_store);
    assert (st.bandwidth_max <= (uint64_t) limits.bandwidth);
    if (verbose)
        printf ("\n   100k jobs, 1,000 nodes, limits binding: %zu ops in %.3f s "
                "(%.3f s CPU) = %.0f ops/s of CPU\n   ", ops, (double) us / 1e6, cpu,
                (double) ops / (cpu > 0? cpu: 1e-6));
    free (ids);
    free (capq);
    free (upq);
    sf_admit_destroy (&admit);
}

void
sf_admit_test (bool verbose)
{
    printf (" * sf_admit: ");
    //  @selftest
    s_test_slots ();
    s_test_order ();
    s_test_snap_ops ();
    s_test_last_job ();
    s_test_scratch_window ();
    s_test_uploads ();
    s_test_acks ();
    s_test_node_loss ();
    s_test_requeue ();
    s_test_scale (verbose);
    //  @end
    printf ("OK\n");
}
