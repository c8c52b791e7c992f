/*  =========================================================================
    sf_history - forgetting old jobs, events and bulks in bounded batches

    The rules of what may go are in the SQL of sf_jobs_prune and
    sf_bulk_prune (each table's one writer); this class only paces them.
    =========================================================================
*/
#include "sf_sched_classes.h"

struct _sf_history_t {
    sf_jobs_t *jobs;            //  Borrowed
    sf_bulk_t *bulk;            //  Borrowed
    int64_t keep_ms;            //  history_days in ms
    int64_t due_ms;             //  Epoch ms the next batch is due; 0 = now
    int64_t pass_pruned;        //  Rows forgotten so far in this pass
};

SF_LOG_MODULE ("sched.history");

sf_history_t *
sf_history_new (sf_jobs_t *jobs, sf_bulk_t *bulk, int64_t days)
{
    assert (jobs && bulk);
    assert (days >= 1 && days <= 36500);
    sf_history_t *self = (sf_history_t *) zmalloc (sizeof (sf_history_t));
    self->jobs = jobs;
    self->bulk = bulk;
    self->keep_ms = days * 24 * 3600 * 1000;
    return self;
}

void
sf_history_destroy (sf_history_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

int64_t
sf_history_tick (sf_history_t *self, int64_t now_ms, sf_err_t *err)
{
    assert (self);
    if (now_ms < self->due_ms)
        return 0;
    int64_t before = now_ms - self->keep_ms;
    int64_t jobs = sf_jobs_prune (self->jobs, before, SF_HISTORY_BATCH, err);
    int64_t bulks = jobs < 0? -1: sf_bulk_prune (self->bulk, before, SF_HISTORY_BATCH, err);
    if (jobs < 0 || bulks < 0)
        return -1;              //  Due still: the next call tries again
    self->pass_pruned += jobs + bulks;
    if (jobs < SF_HISTORY_BATCH && bulks < SF_HISTORY_BATCH) {
        if (self->pass_pruned)
            SF_INFO (NULL, "forgot %" PRId64 " finished jobs and bulks older than %" PRId64
                     " days", self->pass_pruned, self->keep_ms / (24 * 3600 * 1000));
        self->pass_pruned = 0;
        self->due_ms = now_ms + SF_HISTORY_INTERVAL_MS;
    }
    return jobs + bulks;
}

//  --------------------------------------------------------------------------
//  Self test

//  The count that sql (a SELECT COUNT) gives

static int64_t
s_test_count (sf_store_t *store, const char *sql)
{
    sf_err_t err = SF_ERR_INIT;
    sqlite3_stmt *stmt = sf_store_prepare (store, &err, sql, "");
    assert (stmt);
    int rc = sf_store_step (store, stmt, &err);
    assert (rc == 1);
    int64_t count = sqlite3_column_int64 (stmt, 0);
    sqlite3_finalize (stmt);
    return count;
}

//  A job id in state of bulk (or ''), last updated at updated, with one
//  event

static void
s_test_job (sf_store_t *store, const char *id, const char *state, const char *bulk,
            int64_t updated)
{
    sf_err_t err = SF_ERR_INIT;
    int rc = sf_store_exec (store, &err,
        "INSERT INTO jobs (id, instance_uuid, instance_name, node, state, phase, attempt,"
        " strategy, created, updated, bulk_id) VALUES (?1, 'u1', 'vm1', 'n1', ?2, ?2, 1,"
        " 'file-cold', ?3, ?3, ?4)", "ssis", id, state, updated, bulk);
    assert (rc == 1);
    rc = sf_store_exec (store, &err, "INSERT INTO job_events (job_id, phase, at_ms)"
                        " VALUES (?1, 'queued', ?2)", "si", id, updated);
    assert (rc == 1);
}

static void
s_test_bulk (sf_store_t *store, const char *id, const char *state, int64_t created)
{
    sf_err_t err = SF_ERR_INIT;
    int rc = sf_store_exec (store, &err, "INSERT INTO bulks (id, created, select_json,"
                            " state) VALUES (?1, ?2, '{}', ?3)", "sis", id, created, state);
    assert (rc == 1);
}

void
sf_history_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_history: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    char path [] = "/tmp/sf_history_test_XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    close (fd);
    sf_store_t *store = sf_store_new (path, &err);
    assert (store);
    sf_limits_t limits = { 0 };
    sf_peers_t *peers = sf_peers_new ();
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    sf_outbox_t *outbox = sf_outbox_new (router, peers);
    sf_jobs_t *jobs = sf_jobs_new (store);
    sf_dispatch_t *dispatch = sf_dispatch_new (store, jobs, peers, &limits, outbox);
    sf_bulk_t *bulk = sf_bulk_new (store, jobs, peers, dispatch, &limits);

    const int64_t day = 24 * 3600 * 1000;
    int64_t now = sf_time_now_ms ();
    int64_t old = now - 31 * day, recent = now - day;
    int rc = sf_store_exec (store, &err, "INSERT INTO nodes (name, state, last_seen)"
                            " VALUES ('n1', 'up', 0)", "");
    assert (rc == 1);
    s_test_bulk (store, "B1", "done", old);        //  Its only job goes: it goes
    s_test_bulk (store, "B2", "done", old);        //  Its job has an image: stays
    s_test_bulk (store, "B3", "running", old);     //  Running: stays, with its job
    s_test_bulk (store, "B4", "done", old);        //  A schedule's last bulk: stays
    s_test_bulk (store, "B5", "done", old);        //  No job: goes
    s_test_bulk (store, "B6", "done", recent);     //  Recent: stays
    s_test_job (store, "J1", "done", "B1", old);
    s_test_job (store, "J2", "failed", "", old);
    s_test_job (store, "J3", "done", "B2", old);
    s_test_job (store, "J4", "done", "", recent);
    s_test_job (store, "J5", "running", "", old);
    s_test_job (store, "J6", "done", "B3", old);
    s_test_job (store, "J7", "skipped", "", old);
    rc = sf_store_exec (store, &err, "INSERT INTO images (store, id, path, size, sha256,"
                        " job_id, instance_uuid, instance_name, disk_target, format, created)"
                        " VALUES ('s', 'i3', 'p', 1, '', 'J3', 'u1', 'vm1', 'vda', 'raw', ?1)",
                        "i", old);
    assert (rc == 1);
    rc = sf_store_exec (store, &err, "INSERT INTO schedules (name, calendar, select_json,"
                        " created, last_bulk) VALUES ('nightly', 'daily', '{}', 0, 'B4')", "");
    assert (rc == 1);

    sf_history_t *history = sf_history_new (jobs, bulk, 30);
    assert (sf_history_tick (history, now, &err) == 5);     //  J1 J2 J7, B1 B5
    const char *left = "SELECT group_concat (id) FROM (SELECT id FROM jobs ORDER BY id)";
    sqlite3_stmt *stmt = sf_store_prepare (store, &err, left, "");
    assert (stmt && sf_store_step (store, stmt, &err) == 1);
    assert (streq (sf_store_text (stmt, 0), "J3,J4,J5,J6"));
    sqlite3_finalize (stmt);
    stmt = sf_store_prepare (store, &err, "SELECT group_concat (id) FROM"
                             " (SELECT id FROM bulks ORDER BY id)", "");
    assert (stmt && sf_store_step (store, stmt, &err) == 1);
    assert (streq (sf_store_text (stmt, 0), "B2,B3,B4,B6"));
    sqlite3_finalize (stmt);
    //  The events of the forgotten jobs went with them, the others stayed
    assert (s_test_count (store, "SELECT COUNT (*) FROM job_events") == 4);
    assert (s_test_count (store, "SELECT COUNT (*) FROM images") == 1);

    //  The next pass is an hour later
    s_test_job (store, "J8", "done", "", old);
    assert (sf_history_tick (history, now + 1000, &err) == 0);
    assert (sf_history_tick (history, now + SF_HISTORY_INTERVAL_MS, &err) == 1);

    //  In batches: a pass goes on at the next call while batches are full
    now += SF_HISTORY_INTERVAL_MS;
    assert (sf_store_begin (store, &err) == 0);
    for (int i = 0; i < 2 * SF_HISTORY_BATCH + 7; i++) {
        char id [16];
        snprintf (id, sizeof (id), "K%d", i);
        s_test_job (store, id, "done", "", old);
    }
    assert (sf_store_commit (store, &err) == 0);
    int64_t due = now + SF_HISTORY_INTERVAL_MS;
    assert (sf_history_tick (history, due, &err) == SF_HISTORY_BATCH);
    assert (sf_history_tick (history, due + 1, &err) == SF_HISTORY_BATCH);
    assert (sf_history_tick (history, due + 2, &err) == 7);
    assert (sf_history_tick (history, due + 3, &err) == 0);     //  Pass over
    assert (s_test_count (store, "SELECT COUNT (*) FROM jobs") == 4);

    sf_history_destroy (&history);
    assert (history == NULL);
    sf_bulk_destroy (&bulk);
    sf_dispatch_destroy (&dispatch);
    sf_jobs_destroy (&jobs);
    sf_outbox_destroy (&outbox);
    zsock_destroy (&router);
    sf_peers_destroy (&peers);
    sf_store_destroy (&store);
    unlink (path);
    char *wal = zsys_sprintf ("%s-wal", path), *shm = zsys_sprintf ("%s-shm", path);
    unlink (wal);
    unlink (shm);
    zstr_free (&wal);
    zstr_free (&shm);
    //  @end
    printf ("OK\n");
}
