/*  =========================================================================
    sf_retention - retention: keep-* rules and pruning of scheduled images

    The deletion rows are written (and committed) before the ImageDelete
    requests leave, so a crash in between only delays them: the next tick
    sends every pending row that was never sent. A row whose image is no
    longer in the images table is dropped without asking anyone.
    =========================================================================
*/
#include "sf_sched_classes.h"

struct _sf_retention_t {
    sf_store_t *store;                  //  Borrowed: retention_deletes
    sf_jobs_t *jobs;                    //  Borrowed: jobs and their images
    sf_bulk_t *bulk;                    //  Borrowed: bulks and their schedule
    sf_schedules_t *schedules;          //  Borrowed: keep-* rules
    sf_retention_delete_fn *delete_fn;  //  Sends ImageDelete
    void *arg;                          //  For delete_fn
};

SF_LOG_MODULE ("sched.retention");

//  --------------------------------------------------------------------------
//  The rules (pure)

typedef enum {
    MARK_NONE,
    MARK_KEEP,
    MARK_REMOVE,
} mark_t;

typedef enum {
    RULE_LAST,
    RULE_DAILY,
    RULE_WEEKLY,
    RULE_MONTHLY,
} rule_t;

//  The period of a backup under a rule, as a number (keep-last: the backup
//  itself)

static int64_t
s_period (rule_t rule, int64_t ms, size_t index)
{
    if (rule == RULE_LAST)
        return (int64_t) index;
    time_t seconds = (time_t) (ms >= 0? ms / 1000: (ms - 999) / 1000);
    struct tm tm;
    localtime_r (&seconds, &tm);
    int64_t year = tm.tm_year + 1900;
    if (rule == RULE_DAILY)
        return year * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
    if (rule == RULE_MONTHLY)
        return year * 100 + tm.tm_mon + 1;
    char iso [32];
    strftime (iso, sizeof (iso), "%G%V", &tm);     //  ISO year and week
    return atoll (iso);
}

static bool
s_contains (const int64_t *set, size_t size, int64_t value)
{
    for (size_t i = 0; i < size; i++)
        if (set [i] == value)
            return true;
    return false;
}

//  Proxmox's mark_selections: order is newest first

static void
s_mark (rule_t rule, int64_t keep, const int64_t *times, const size_t *order,
        size_t n, mark_t *marks)
{
    int64_t *periods = (int64_t *) zmalloc ((n + 1) * sizeof (int64_t));
    int64_t *already = (int64_t *) zmalloc ((n + 1) * sizeof (int64_t));
    int64_t *included = (int64_t *) zmalloc ((n + 1) * sizeof (int64_t));
    size_t n_already = 0, n_included = 0;
    for (size_t i = 0; i < n; i++) {
        periods [i] = s_period (rule, times [i], i);
        if (marks [i] == MARK_KEEP && !s_contains (already, n_already, periods [i]))
            already [n_already++] = periods [i];
    }
    for (size_t k = 0; k < n; k++) {
        size_t i = order [k];
        if (marks [i] != MARK_NONE || s_contains (already, n_already, periods [i]))
            continue;
        if (s_contains (included, n_included, periods [i]))
            marks [i] = MARK_REMOVE;    //  An older one of a period kept
        else {
            if ((int64_t) n_included >= keep)
                break;
            included [n_included++] = periods [i];
            marks [i] = MARK_KEEP;
        }
    }
    free (periods);
    free (already);
    free (included);
}

//  qsort_r order of indexes into times (arg): newest first, then the
//  later index

static int
s_newest_first (const void *a, const void *b, void *arg)
{
    const int64_t *times = (const int64_t *) arg;
    size_t left = *(const size_t *) a, right = *(const size_t *) b;
    int64_t t_left = times [left], t_right = times [right];
    if (t_left != t_right)
        return t_left > t_right? -1: 1;
    return left > right? -1: left < right? 1: 0;
}

void
sf_retention_apply (const sf_keep_t *keep, const int64_t *times, size_t n,
                    bool *keep_out)
{
    assert (keep);
    assert (n == 0 || (times && keep_out));
    if (keep->last <= 0 && keep->daily <= 0 && keep->weekly <= 0 && keep->monthly <= 0) {
        for (size_t i = 0; i < n; i++)
            keep_out [i] = true;
        return;
    }
    size_t *order = (size_t *) zmalloc ((n + 1) * sizeof (size_t));
    mark_t *marks = (mark_t *) zmalloc ((n + 1) * sizeof (mark_t));
    for (size_t i = 0; i < n; i++)
        order [i] = i;
    qsort_r (order, n, sizeof (size_t), s_newest_first, (void *) times);
    s_mark (RULE_LAST, keep->last, times, order, n, marks);
    s_mark (RULE_DAILY, keep->daily, times, order, n, marks);
    s_mark (RULE_WEEKLY, keep->weekly, times, order, n, marks);
    s_mark (RULE_MONTHLY, keep->monthly, times, order, n, marks);
    for (size_t i = 0; i < n; i++)
        keep_out [i] = marks [i] == MARK_KEEP;
    free (order);
    free (marks);
}

//  --------------------------------------------------------------------------
//  Constructor and destructor

sf_retention_t *
sf_retention_new (sf_store_t *store, sf_jobs_t *jobs, sf_bulk_t *bulk,
                  sf_schedules_t *schedules, sf_retention_delete_fn *delete_fn,
                  void *arg, sf_err_t *err)
{
    assert (store && jobs && bulk && schedules);
    assert (delete_fn);
    //  An answer to a request sent before a restart is lost for good (a
    //  worker's queued reply reaches the new scheduler before its hello,
    //  and is refused): those requests are due again at the first tick
    if (sf_store_exec (store, err, "UPDATE retention_deletes SET sent = 0"
                       " WHERE state = 'pending'", "") < 0)
        return NULL;
    sf_retention_t *self = (sf_retention_t *) zmalloc (sizeof (sf_retention_t));
    self->store = store;
    self->jobs = jobs;
    self->bulk = bulk;
    self->schedules = schedules;
    self->delete_fn = delete_fn;
    self->arg = arg;
    return self;
}

void
sf_retention_destroy (sf_retention_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Sending deletions

typedef struct {
    char *request_id;
    char *node;
    char *store;
    char *image_id;
    sf_image_rec_t *image;      //  NULL: no images row any more
} delete_t;

static void
s_delete_destroy (delete_t **self_p)
{
    if (*self_p) {
        delete_t *self = *self_p;
        free (self->request_id);
        free (self->node);
        free (self->store);
        free (self->image_id);
        sf_image_rec_destroy (&self->image);
        free (self);
        *self_p = NULL;
    }
}

//  The deletions due at now: pending ones never sent or unanswered for
//  too long, failed ones after the retry delay (at once if retry_failed)

static zlistx_t *
s_due (sf_retention_t *self, int64_t now, bool retry_failed, sf_err_t *err)
{
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT request_id, node, store, image_id FROM retention_deletes"
        " WHERE (state = 'pending' AND (sent = 0 OR sent + ?2 <= ?1))"
        "    OR (state = 'failed' AND (?4 OR updated + ?3 <= ?1))"
        " ORDER BY seq",
        "iiii", now, (int64_t) SF_RETENTION_RESEND_MS, (int64_t) SF_RETENTION_RETRY_MS,
        (int64_t) retry_failed);
    if (!stmt)
        return NULL;
    zlistx_t *due = zlistx_new ();
    zlistx_set_destructor (due, (zlistx_destructor_fn *) s_delete_destroy);
    int rc;
    while ((rc = sf_store_step (self->store, stmt, err)) == 1) {
        delete_t *delete = (delete_t *) zmalloc (sizeof (delete_t));
        delete->request_id = strdup (sf_store_text (stmt, 0));
        delete->node = strdup (sf_store_text (stmt, 1));
        delete->store = strdup (sf_store_text (stmt, 2));
        delete->image_id = strdup (sf_store_text (stmt, 3));
        zlistx_add_end (due, delete);
    }
    sqlite3_finalize (stmt);
    //  Each one's image, as sf_jobs has it
    delete_t *delete = (delete_t *) zlistx_first (due);
    for (; delete && rc >= 0; delete = (delete_t *) zlistx_next (due))
        rc = sf_jobs_image (self->jobs, delete->store, delete->image_id,
                            &delete->image, err);
    if (rc < 0)
        zlistx_destroy (&due);
    return due;
}

static int
s_send_due (sf_retention_t *self, int64_t now, bool retry_failed, sf_err_t *err)
{
    zlistx_t *due = s_due (self, now, retry_failed, err);
    if (!due)
        return -1;
    int sent = 0;
    delete_t *delete = (delete_t *) zlistx_first (due);
    for (; delete; delete = (delete_t *) zlistx_next (due)) {
        if (!delete->image) {
            SF_INFO (NULL, "retention: image '%s' in store '%s' is no longer listed,"
                     " nothing to delete", delete->image_id, delete->store);
            if (sf_store_exec (self->store, err,
                    "DELETE FROM retention_deletes WHERE request_id = ?1", "s",
                    delete->request_id) < 0)
                break;
            continue;
        }
        sf_err_t send_err = SF_ERR_INIT;
        int rc = self->delete_fn (self->arg, delete->node, &delete->image->image,
                                  delete->image->job_id,
                                  delete->request_id, &send_err);
        if (rc == 0) {
            sent++;
            SF_INFO (NULL, "retention: %s: asked node '%s' to delete image '%s'"
                     " in store '%s'", delete->request_id, delete->node,
                     delete->image_id, delete->store);
        }
        else
            SF_WARN (NULL, "retention: %s: cannot ask node '%s' to delete image '%s':"
                     " %s", delete->request_id, delete->node, delete->image_id,
                     send_err.text);
        if (sf_store_exec (self->store, err,
                "UPDATE retention_deletes SET attempts = attempts + 1, updated = ?2,"
                " state = CASE WHEN ?3 = 0 THEN 'pending' ELSE 'failed' END,"
                " sent = CASE WHEN ?3 = 0 THEN ?2 ELSE sent END,"
                " error_code = ?3, error_text = ?4 WHERE request_id = ?1",
                "siis", delete->request_id, now,
                (int64_t) (rc == 0? 0: send_err.code? send_err.code: SF_EIO),
                rc == 0? "": send_err.text) < 0)
            break;
    }
    bool failed = delete != NULL;
    zlistx_destroy (&due);
    return failed? -1: sent;
}

//  --------------------------------------------------------------------------
//  Pruning after a bulk

//  Queue the deletion of the images job_id made (in the caller's
//  transaction), except those queued already. Returns the number queued
//  or -1.

static int
s_queue_job (sf_retention_t *self, const char *job_id, const char *schedule,
             const char *bulk_id, int64_t now, sf_err_t *err)
{
    zlistx_t *images = sf_jobs_images (self->jobs, job_id, err);
    if (!images)
        return -1;
    int queued = 0;
    sf_image_rec_t *image = (sf_image_rec_t *) zlistx_first (images);
    for (; image && queued >= 0; image = (sf_image_rec_t *) zlistx_next (images)) {
        int rows = sf_store_exec (self->store, err,
            "INSERT INTO retention_deletes (request_id, store, image_id, node, schedule,"
            " bulk_id, state, created, updated)"
            " SELECT 'new:' || ?1 || ':' || ?2, ?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6"
            " WHERE NOT EXISTS (SELECT 1 FROM retention_deletes d"
            "  WHERE d.store = ?1 AND d.image_id = ?2)",
            "sssssi", image->image.store, image->image.id, image->node, schedule,
            bulk_id, now);
        queued = rows < 0? -1: queued + rows;
    }
    zlistx_destroy (&images);
    return queued;
}

//  Does an image of job_id have to stay for a chain (sf_chain_needed)? 1
//  with why, 0, or -1

static int
s_chain_needed (sf_retention_t *self, const char *job_id, char *why, size_t size,
                sf_err_t *err)
{
    zlistx_t *images = sf_jobs_images (self->jobs, job_id, err);
    if (!images)
        return -1;
    int rc = 0;
    sf_image_rec_t *image = (sf_image_rec_t *) zlistx_first (images);
    for (; image && rc == 0; image = (sf_image_rec_t *) zlistx_next (images))
        rc = sf_chain_needed (self->store, image->image.store, image->image.id, why, size,
                              err);
    zlistx_destroy (&images);
    return rc;
}

//  Queue the deletion of the images of instance's dropped backups, made
//  by the bulks bulk_ids of schedule (in the caller's transaction).
//  Returns the number queued or -1.

static int
s_prune_instance (sf_retention_t *self, const char *schedule, zlistx_t *bulk_ids,
                  const char *bulk_id, const sf_keep_t *keep,
                  const sf_job_rec_t *instance, int64_t now, sf_err_t *err)
{
    zlistx_t *backups = sf_jobs_backups (self->jobs, bulk_ids, instance->node,
                                         instance->instance_uuid, err);
    if (!backups)
        return -1;
    size_t size = zlistx_size (backups);
    int64_t *times = (int64_t *) zmalloc ((size + 1) * sizeof (int64_t));
    bool *kept = (bool *) zmalloc ((size + 1) * sizeof (bool));
    size_t index = 0;
    sf_backup_rec_t *backup = (sf_backup_rec_t *) zlistx_first (backups);
    for (; backup; backup = (sf_backup_rec_t *) zlistx_next (backups))
        times [index++] = backup->created;
    sf_retention_apply (keep, times, size, kept);
    int queued = 0;
    //  Newest first: a point's increments are decided before it, so a point
    //  that a kept increment builds on is kept too (never a broken chain)
    index = size;
    backup = (sf_backup_rec_t *) zlistx_last (backups);
    for (; backup && queued >= 0; backup = (sf_backup_rec_t *) zlistx_prev (backups)) {
        if (kept [--index])
            continue;
        char why [300] = "";
        int needed = s_chain_needed (self, backup->job_id, why, sizeof (why), err);
        if (needed < 0) {
            queued = -1;
            continue;
        }
        if (needed) {
            SF_INFO (NULL, "retention: schedule '%s': instance '%s' on node '%s': job"
                     " '%s' is kept: %s", schedule, instance->instance_uuid,
                     instance->node, backup->job_id, why);
            continue;
        }
        int rows = s_queue_job (self, backup->job_id, schedule, bulk_id, now, err);
        if (rows < 0)
            queued = -1;
        else
        if (rows > 0) {
            SF_INFO (NULL, "retention: schedule '%s': instance '%s' on node '%s': job"
                     " '%s' (%zu backups) is pruned, %d image(s)", schedule,
                     instance->instance_uuid, instance->node, backup->job_id, size, rows);
            queued += rows;
        }
    }
    free (times);
    free (kept);
    zlistx_destroy (&backups);
    return queued;
}

//  The schedule of bulk_id and its rules: 1 if there is something to
//  prune, 0 if not (logged), -1 on a database error

static int
s_bulk_rules (sf_retention_t *self, const char *bulk_id, char *schedule,
              size_t schedule_size, int64_t *schedule_seq, sf_keep_t *keep,
              sf_err_t *err)
{
    int rc = sf_bulk_schedule (self->bulk, bulk_id, schedule, schedule_size,
                               schedule_seq, err);
    if (rc == 0)
        SF_WARN (NULL, "retention: no bulk '%s'", bulk_id);
    if (rc != 1 || !*schedule)
        return rc < 0? -1: 0;   //  No such bulk, or not a scheduled one
    //  By identity: a schedule added again under the name is another one
    rc = *schedule_seq > 0? sf_schedules_keep (self->schedules, *schedule_seq, keep, err): 0;
    if (rc == 0)
        SF_INFO (NULL, "retention: bulk '%s': schedule '%s' was removed,"
                 " nothing pruned", bulk_id, schedule);
    if (rc != 1)
        return rc;
    sf_jobs_counts_t counts;
    if (sf_jobs_bulk_counts (self->jobs, bulk_id, &counts, err))
        return -1;
    if (counts.jobs [SF_JOBS_DONE] == 0) {
        SF_NOTICE (NULL, "retention: bulk '%s' of schedule '%s' has no job done,"
                   " nothing pruned", bulk_id, schedule);
        return 0;
    }
    if (keep->last <= 0 && keep->daily <= 0 && keep->weekly <= 0 && keep->monthly <= 0)
        return 0;               //  Keeps everything
    return 1;
}

//  Queue the deletions of what the rules drop after bulk_id of schedule,
//  in one transaction. Returns 0 or -1 with err set.

static int
s_prune (sf_retention_t *self, const char *bulk_id, const char *schedule,
         int64_t schedule_seq, const sf_keep_t *keep, int64_t now, sf_err_t *err)
{
    zlistx_t *instances = sf_jobs_done_instances (self->jobs, bulk_id, err);
    zlistx_t *bulk_ids = instances? sf_bulk_of_schedule (self->bulk, schedule_seq, err)
                                  : NULL;
    int rc = bulk_ids? 0: -1;
    if (rc == 0 && sf_store_begin (self->store, err) == 0) {
        int queued = 0;
        const sf_job_rec_t *instance = (const sf_job_rec_t *) zlistx_first (instances);
        for (; instance && rc == 0;
             instance = (const sf_job_rec_t *) zlistx_next (instances)) {
            int count = s_prune_instance (self, schedule, bulk_ids, bulk_id, keep,
                                          instance, now, err);
            if (count < 0)
                rc = -1;
            else
                queued += count;
        }
        //  Request ids from the rows' own sequence (never reused)
        if (rc == 0 && sf_store_exec (self->store, err,
                "UPDATE retention_deletes SET request_id = 'D' || seq"
                " WHERE request_id LIKE 'new:%'", "") < 0)
            rc = -1;
        if (rc == 0)
            rc = sf_store_commit (self->store, err);
        else
            sf_store_rollback (self->store);
        if (rc == 0)
            SF_INFO (NULL, "retention: bulk '%s' of schedule '%s': %zu instance(s),"
                     " %d image(s) to delete", bulk_id, schedule,
                     zlistx_size (instances), queued);
    }
    zlistx_destroy (&bulk_ids);
    zlistx_destroy (&instances);
    return rc;
}

int
sf_retention_bulk_done (sf_retention_t *self, const char *bulk_id, sf_err_t *err)
{
    assert (self);
    assert (bulk_id);
    int64_t now = sf_time_now_ms ();
    char schedule [SF_SCHEDULES_MAX_NAME + 1];
    int64_t schedule_seq = 0;
    sf_keep_t keep;
    int rc = s_bulk_rules (self, bulk_id, schedule, sizeof (schedule), &schedule_seq,
                           &keep, err);
    if (rc < 0)
        return -1;
    if (rc == 1 && s_prune (self, bulk_id, schedule, schedule_seq, &keep, now, err) < 0)
        return -1;
    return s_send_due (self, now, true, err);
}
//  --------------------------------------------------------------------------
//  Answers

//  Whether the answer msg from node is one to act on: the deletion was
//  asked of node, and the image it names (if any) is the one asked for.
//  Returns 1 if so, else 0 with err set to why not

static int
s_answer_matches (const sf_image_deleted_t *msg, const char *node, const char *asked,
                  const char *store, const char *image, sf_err_t *err)
{
    const char *request_id = msg->request_id? msg->request_id: "";
    if (!streq (node, asked))
        return sf_err_set (err, SF_ESTATE, "deletion '%s' was asked of node '%s', not '%s'",
                           request_id, asked, node) + 1;
    const sf_image_t *named = msg->image;
    if (named && ((named->store && *named->store && !streq (named->store, store))
              ||  (named->id && *named->id && !streq (named->id, image))))
        return sf_err_set (err, SF_ESTATE, "deletion '%s' was of image '%s' in store '%s', "
                           "not of the one the answer names", request_id, image, store) + 1;
    return 1;
}

int
sf_retention_deleted (sf_retention_t *self, const char *from,
                      const sf_image_deleted_t *msg, sf_err_t *err)
{
    assert (self);
    assert (from && msg);
    const char *request_id = msg->request_id? msg->request_id: "";
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT store, image_id, node FROM retention_deletes WHERE request_id = ?1",
        "s", request_id);
    if (!stmt)
        return -1;
    int rc = sf_store_step (self->store, stmt, err);
    char *store = rc == 1? strdup (sf_store_text (stmt, 0)): NULL;
    char *image = rc == 1? strdup (sf_store_text (stmt, 1)): NULL;
    char *node = rc == 1? strdup (sf_store_text (stmt, 2)): NULL;
    sqlite3_finalize (stmt);
    if (rc == 0)
        sf_err_set (err, SF_ENOENT, "no deletion '%s' is pending", request_id);
    else
    if (rc == 1 && !s_answer_matches (msg, from, node, store, image, err))
        rc = 0;
    if (rc != 1) {
        free (store);
        free (image);
        free (node);
        return rc < 0? -1: 1;   //  Ignored: the caller counts and logs it
    }

    int64_t now = sf_time_now_ms ();
    const sf_error_info_t *error = msg->error;
    if (!error || error->code == 0) {
        if (sf_store_begin (self->store, err) == 0) {
            if (sf_jobs_image_forget (self->jobs, store, image, err) < 0
            ||  sf_store_exec (self->store, err,
                    "DELETE FROM retention_deletes WHERE request_id = ?1", "s",
                    request_id) < 0) {
                sf_store_rollback (self->store);
                rc = -1;
            }
            else
                rc = sf_store_commit (self->store, err);
        }
        else
            rc = -1;
        if (rc == 0)
            SF_INFO (NULL, "retention: %s: node '%s' deleted image '%s' in store '%s'",
                     request_id, node, image, store);
    }
    else {
        const char *text = error->text && *error->text? error->text: "no reason given";
        SF_WARN (NULL, "retention: %s: node '%s' could not delete image '%s' in store"
                 " '%s': %s: %s (retried later)", request_id, node, image, store,
                 sf_err_name (error->code), text);
        rc = sf_store_exec (self->store, err,
                "UPDATE retention_deletes SET state = 'failed', error_code = ?2,"
                " error_text = ?3, updated = ?4 WHERE request_id = ?1",
                "sisi", request_id, (int64_t) error->code, text, now) < 0? -1: 0;
    }
    free (store);
    free (image);
    free (node);
    return rc;
}

int
sf_retention_tick (sf_retention_t *self, int64_t now_ms, sf_err_t *err)
{
    assert (self);
    return s_send_due (self, now_ms, false, err);
}

json_t *
sf_retention_pending_json (sf_retention_t *self, sf_err_t *err)
{
    assert (self);
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT request_id, store, image_id, node, schedule, bulk_id, state, attempts,"
        " error_code, error_text FROM retention_deletes ORDER BY seq", "");
    if (!stmt)
        return NULL;
    json_t *list = json_array ();
    int rc;
    while ((rc = sf_store_step (self->store, stmt, err)) == 1) {
        json_t *error = sqlite3_column_int (stmt, 8) == 0 && sf_store_text (stmt, 9) [0] == 0
                      ? json_null ()
                      : json_pack ("{s:I, s:o}", "code", sqlite3_column_int64 (stmt, 8),
                                   "text", sf_store_json_string (sf_store_text (stmt, 9)));
        json_array_append_new (list, json_pack ("{s:o, s:o, s:o, s:o, s:o, s:o, s:o,"
                                                " s:I, s:o}",
            "request_id", sf_store_json_string (sf_store_text (stmt, 0)),
            "store", sf_store_json_string (sf_store_text (stmt, 1)),
            "image_id", sf_store_json_string (sf_store_text (stmt, 2)),
            "node", sf_store_json_string (sf_store_text (stmt, 3)),
            "schedule", sf_store_json_string (sf_store_text (stmt, 4)),
            "bulk_id", sf_store_json_string (sf_store_text (stmt, 5)),
            "state", sf_store_json_string (sf_store_text (stmt, 6)),
            "attempts", sqlite3_column_int64 (stmt, 7),
            "error", error));
    }
    sqlite3_finalize (stmt);
    if (rc < 0)
        json_decref (list);
    return rc < 0? NULL: list;
}

//  --------------------------------------------------------------------------
//  Self test

//  Local time of a day at noon (no DST edge)

static int64_t
s_day (int year, int month, int day, int hour)
{
    struct tm tm = { 0 };
    tm.tm_year = year - 1900, tm.tm_mon = month - 1, tm.tm_mday = day;
    tm.tm_hour = hour, tm.tm_isdst = -1;
    return (int64_t) mktime (&tm) * 1000;
}

//  Apply keep to times and compare with expect, a string of 'k' and 'r'
//  (one per time, same order)

static void
s_check (const char *name, int64_t last, int64_t daily, int64_t weekly,
         int64_t monthly, const int64_t *times, size_t n, const char *expect,
         bool verbose)
{
    sf_keep_t keep = { last, daily, weekly, monthly };
    bool kept [64];
    assert (n <= 64 && strlen (expect) == n);
    sf_retention_apply (&keep, times, n, kept);
    char got [65];
    for (size_t i = 0; i < n; i++)
        got [i] = kept [i]? 'k': 'r';
    got [n] = 0;
    if (verbose || !streq (got, expect))
        printf ("\n    %s: expect %s got %s", name, expect, got);
    assert (streq (got, expect));
}

static void
s_test_rules (bool verbose)
{
    //  Four backups a day on 10 consecutive days (Mon 2024-01-01 ... Wed
    //  2024-01-10), oldest first: index = (day - 1) * 4 + slot
    int64_t times [40];
    for (int day = 1; day <= 10; day++)
        for (int slot = 0; slot < 4; slot++)
            times [(day - 1) * 4 + slot] = s_day (2024, 1, day, 8 + slot * 3);
    //  All zero: keep everything
    s_check ("none", 0, 0, 0, 0, times, 8, "kkkkkkkk", verbose);
    //  keep-last 3: the three newest
    s_check ("last3", 3, 0, 0, 0, times, 8, "rrrrrkkk", verbose);
    //  keep-last larger than the list
    s_check ("last9", 9, 0, 0, 0, times, 3, "kkk", verbose);
    //  keep-daily 2 over three days: the newest of each of the last two days
    s_check ("daily2", 0, 2, 0, 0, times, 12, "rrrrrrrkrrrk", verbose);
    //  keep-last 2 + keep-daily 2: last keeps both newest of day 3, so day 3
    //  is already covered and daily keeps day 2 and day 1's newest
    s_check ("last2daily2", 2, 2, 0, 0, times, 12, "rrrkrrrkrrkk", verbose);
    //  keep-last 1 + keep-daily 1: day 3 covered by last, daily then keeps
    //  one more day (day 2)
    s_check ("last1daily1", 1, 1, 0, 0, times, 12, "rrrrrrrkrrrk", verbose);
    //  keep-weekly 2 over days 1..10 (ISO weeks: 1-7 week 1, 8-10 week 2):
    //  the newest of day 7 and of day 10
    s_check ("weekly2", 0, 0, 2, 0, times, 40,
             "rrrrrrrrrrrrrrrrrrrrrrrrrrrkrrrrrrrrrrrk", verbose);
    //  keep-daily 3 + keep-weekly 2: days 10, 9, 8 kept daily (week 2
    //  covered), weekly keeps week 1 (day 7) and there is no third week
    s_check ("daily3weekly2", 0, 3, 2, 0, times, 40,
             "rrrrrrrrrrrrrrrrrrrrrrrrrrrkrrrkrrrkrrrk", verbose);

    //  Months: one backup on the 1st and the 15th of Jan..Apr 2024
    int64_t months [8];
    for (int month = 1; month <= 4; month++) {
        months [(month - 1) * 2] = s_day (2024, month, 1, 12);
        months [(month - 1) * 2 + 1] = s_day (2024, month, 15, 12);
    }
    s_check ("monthly2", 0, 0, 0, 2, months, 8, "rrrrrkrk", verbose);
    s_check ("monthly9", 0, 0, 0, 9, months, 8, "rkrkrkrk", verbose);
    //  keep-last 1 keeps Apr 15, keep-monthly 2: April covered, so March
    //  and February
    s_check ("last1monthly2", 1, 0, 0, 2, months, 8, "rrrkrkrk", verbose);
    //  Gaps do not count: only periods with a backup are counted
    int64_t sparse [3] = { s_day (2023, 6, 1, 12), s_day (2024, 1, 3, 12),
                           s_day (2024, 1, 3, 13) };
    s_check ("sparse-daily2", 0, 2, 0, 0, sparse, 3, "krk", verbose);
    //  Order of the input does not matter
    int64_t shuffled [4] = { times [5], times [0], times [7], times [2] };
    s_check ("shuffled-last2", 2, 0, 0, 0, shuffled, 4, "krkr", verbose);
    //  Same time twice: the later index counts as newer
    int64_t same [2] = { times [0], times [0] };
    s_check ("same-last1", 1, 0, 0, 0, same, 2, "rk", verbose);
    s_check ("empty", 1, 1, 1, 1, NULL, 0, "", verbose);
}

//  The delete callback of the test: records the requests, fails for node
//  "down"

typedef struct {
    zlistx_t *requests;         //  "node request_id store image_id"
} test_sink_t;

static int
s_test_delete (void *arg, const char *node, const sf_image_t *image, const char *job_id,
               const char *request_id, sf_err_t *err)
{
    test_sink_t *sink = (test_sink_t *) arg;
    assert (job_id && *job_id);
    if (streq (node, "down"))
        return sf_err_set (err, SF_ENODE, "node '%s' is down", node);
    zlistx_add_end (sink->requests,
                    zsys_sprintf ("%s %s %s %s", node, request_id, image->store, image->id));
    return 0;
}

//  The parts retention reads through, on store (their callbacks are never
//  called: nothing is dispatched, no schedule ticks)

typedef struct {
    sf_peers_t *peers;
    zsock_t *router;
    sf_outbox_t *outbox;
    sf_dispatch_t *dispatch;
    sf_jobs_t *jobs;
    sf_bulk_t *bulk;
    sf_schedules_t *schedules;
} test_parts_t;

static json_t *
s_test_fire (void *arg, const char *schedule, int64_t schedule_seq, json_t *select,
             const char *strategy, int priority, int64_t window_end_ms, sf_err_t *err)
{
    (void) arg, (void) schedule, (void) select, (void) strategy, (void) priority;
    (void) window_end_ms, (void) schedule_seq;
    assert (false);
    sf_err_set (err, SF_EINVAL, "not in this test");
    return NULL;
}

static void
s_test_parts_new (test_parts_t *parts, sf_store_t *store)
{
    sf_err_t err = SF_ERR_INIT;
    sf_limits_t limits = { 0 };
    parts->peers = sf_peers_new ();
    parts->router = zsock_new (ZMQ_ROUTER);
    assert (parts->router);
    parts->outbox = sf_outbox_new (parts->router, parts->peers);
    parts->jobs = sf_jobs_new (store);
    parts->dispatch = sf_dispatch_new (store, parts->jobs, parts->peers, &limits,
                                       parts->outbox);
    parts->bulk = sf_bulk_new (store, parts->jobs, parts->peers, parts->dispatch,
                               &limits);
    parts->schedules = sf_schedules_new (store, parts->jobs, s_test_fire, NULL, &err);
    assert (parts->schedules);
}

static void
s_test_parts_destroy (test_parts_t *parts)
{
    sf_schedules_destroy (&parts->schedules);
    sf_bulk_destroy (&parts->bulk);
    sf_dispatch_destroy (&parts->dispatch);
    sf_jobs_destroy (&parts->jobs);
    sf_outbox_destroy (&parts->outbox);
    zsock_destroy (&parts->router);
    sf_peers_destroy (&parts->peers);
}

//  A bulk of schedule (or '') with one job per instance in states; each
//  done job made one image per disk at time at_ms

static void
s_test_bulk (sf_store_t *store, const char *bulk_id, const char *schedule,
             const char *node, const char **instances, const char **states,
             size_t n, int disks, int64_t at_ms)
{
    sf_err_t err = SF_ERR_INIT;
    //  The bulk of the schedule that has the name now
    assert (sf_store_exec (store, &err,
        "INSERT INTO bulks (id, created, select_json, schedule, schedule_seq, state)"
        " VALUES (?1, ?2, '{\"all\":true}', ?3,"
        " COALESCE ((SELECT seq FROM schedules WHERE name = ?3), 0), 'done')", "sis",
        bulk_id, at_ms, schedule) == 1);
    for (size_t i = 0; i < n; i++) {
        char job [64];
        snprintf (job, sizeof (job), "J-%s-%s", bulk_id, instances [i]);
        assert (sf_store_exec (store, &err,
            "INSERT INTO jobs (id, instance_uuid, instance_name, node, state, phase,"
            " attempt, strategy, created, updated, bulk_id)"
            " VALUES (?1, ?2, ?2, ?3, ?4, ?4, 1, 'file-cold', ?5, ?5, ?6)",
            "ssssis", job, instances [i], node, states [i], at_ms, bulk_id) == 1);
        if (!streq (states [i], "done"))
            continue;
        for (int disk = 0; disk < disks; disk++) {
            char image [96];
            snprintf (image, sizeof (image), "%s-vd%c", job, 'a' + disk);
            assert (sf_store_exec (store, &err,
                "INSERT INTO images (store, id, path, size, sha256, job_id,"
                " instance_uuid, instance_name, disk_target, format, created)"
                " VALUES ('dir', ?1, ?1, 1, '', ?2, ?3, ?3, 'vda', 'qcow2', ?4)",
                "sssi", image, job, instances [i], at_ms) == 1);
        }
    }
}

static int64_t
s_count (sf_store_t *store, const char *sql)
{
    sf_err_t err = SF_ERR_INIT;
    sqlite3_stmt *stmt = sf_store_prepare (store, &err, sql, "");
    assert (stmt && sf_store_step (store, stmt, &err) == 1);
    int64_t count = sqlite3_column_int64 (stmt, 0);
    sqlite3_finalize (stmt);
    return count;
}

//  Answer the oldest recorded request with error code (0 = deleted)

static void
s_test_answer (sf_retention_t *self, test_sink_t *sink, int code)
{
    char *request = (char *) zlistx_first (sink->requests);
    assert (request);
    char node [32], request_id [32], store [32], image_id [96];
    assert (sscanf (request, "%31s %31s %31s %95s", node, request_id, store,
                    image_id) == 4);
    sf_image_t image = SF_IMAGE_INIT;
    image.store = store, image.id = image_id;
    sf_error_info_t error = SF_ERROR_INFO_INIT;
    error.code = code, error.text = "rbd: image busy";
    sf_image_deleted_t msg = SF_IMAGE_DELETED_INIT;
    msg.request_id = request_id, msg.image = &image, msg.error = code? &error: NULL;
    sf_err_t err = SF_ERR_INIT;
    assert (sf_retention_deleted (self, node, &msg, &err) == 0);
    zlistx_delete (sink->requests, zlistx_cursor (sink->requests));
}

//  A schedule removed and added again under its name is another schedule:
//  the new one never prunes what the old one made

static void
s_test_readd (sf_retention_t *self, test_parts_t *parts, test_sink_t *sink,
              sf_store_t *store, int64_t t0)
{
    sf_err_t err = SF_ERR_INIT;
    const char *add = "{\"name\":\"S\",\"calendar\":\"daily\",\"select\":{\"all\":true},"
                      "\"keep_last\":1}";
    json_t *request = json_loads (add, 0, NULL);
    json_t *reply = sf_schedules_add (parts->schedules, request, &err);
    assert (reply);
    json_decref (reply);
    const char *instances [] = { "vm1" };
    const char *done [] = { "done" };
    s_test_bulk (store, "S1", "S", "n1", instances, done, 1, 2, t0);
    assert (sf_retention_bulk_done (self, "S1", &err) == 0);
    s_test_bulk (store, "S2", "S", "n1", instances, done, 1, 2, t0 + 1000);
    assert (sf_retention_bulk_done (self, "S2", &err) == 2);    //  S1's two disks
    while (zlistx_size (sink->requests))
        s_test_answer (self, sink, 0);
    assert (s_count (store, "SELECT COUNT (*) FROM images WHERE job_id = 'J-S2-vm1'") == 2);

    json_t *rm = json_pack ("{s:s}", "name", "S");
    reply = sf_schedules_rm (parts->schedules, rm, &err);
    assert (reply);
    json_decref (reply);
    json_decref (rm);
    reply = sf_schedules_add (parts->schedules, request, &err);
    assert (reply);
    json_decref (reply);
    json_decref (request);
    //  One run of the new S: the old S's images are all still there
    s_test_bulk (store, "S3", "S", "n1", instances, done, 1, 2, t0 + 2000);
    assert (sf_retention_bulk_done (self, "S3", &err) == 0);
    assert (zlistx_size (sink->requests) == 0);
    assert (s_count (store, "SELECT COUNT (*) FROM images WHERE job_id = 'J-S2-vm1'") == 2);
    //  A second run prunes the new S's first one, never the old S's
    s_test_bulk (store, "S4", "S", "n1", instances, done, 1, 2, t0 + 3000);
    assert (sf_retention_bulk_done (self, "S4", &err) == 2);
    char *request_text = (char *) zlistx_first (sink->requests);
    assert (strstr (request_text, "J-S3-vm1-vd"));
    assert (strstr ((char *) zlistx_next (sink->requests), "J-S3-vm1-vd"));
    while (zlistx_size (sink->requests))
        s_test_answer (self, sink, 0);
    assert (s_count (store, "SELECT COUNT (*) FROM images WHERE job_id = 'J-S2-vm1'") == 2);
    assert (s_count (store, "SELECT COUNT (*) FROM images WHERE job_id = 'J-S3-vm1'") == 0);
}

//  An instance is (node, uuid): backups of the same uuid on another node
//  are another instance's, never pruned with this one's

static void
s_test_identity (sf_retention_t *self, test_sink_t *sink, sf_store_t *store, int64_t t0)
{
    sf_err_t err = SF_ERR_INIT;
    assert (sf_store_node_hello (store, "n2", "", 2, 1, &err) == 0);
    assert (sf_store_exec (store, &err,
        "INSERT INTO schedules (name, calendar, select_json, created, keep_last)"
        " VALUES ('twin', 'daily', '{\"all\":true}', 0, 1)", "") == 1);
    const char *instances [] = { "vm-twin" };
    const char *done [] = { "done" };
    s_test_bulk (store, "T1", "twin", "n1", instances, done, 1, 1, t0);
    s_test_bulk (store, "T2", "twin", "n2", instances, done, 1, 1, t0 + 1000);
    assert (sf_retention_bulk_done (self, "T2", &err) == 0);
    assert (zlistx_size (sink->requests) == 0);
    assert (s_count (store, "SELECT COUNT (*) FROM images WHERE job_id = 'J-T1-vm-twin'") == 1);
    //  n1's next run prunes n1's first one only
    s_test_bulk (store, "T3", "twin", "n1", instances, done, 1, 1, t0 + 2000);
    assert (sf_retention_bulk_done (self, "T3", &err) == 1);
    const char *request = (const char *) zlistx_first (sink->requests);
    assert (strncmp (request, "n1 ", 3) == 0 && strstr (request, " dir J-T1-vm-twin-vda"));
    while (zlistx_size (sink->requests))
        s_test_answer (self, sink, 0);
    assert (s_count (store, "SELECT COUNT (*) FROM images WHERE job_id = 'J-T2-vm-twin'") == 1);
}

//  Chains (issue 13): a point a kept increment builds on stays; a chain no
//  kept point needs goes whole, newest first

static void
s_test_chain (sf_retention_t *self, test_sink_t *sink, sf_store_t *store, int64_t t0)
{
    sf_err_t err = SF_ERR_INIT;
    assert (sf_store_exec (store, &err,
        "INSERT INTO schedules (name, calendar, select_json, created, keep_last)"
        " VALUES ('chained', 'daily', '{\"all\":true}', 0, 1)", "") == 1);
    const char *instances [] = { "vc" };
    const char *done [] = { "done" };
    zlistx_purge (sink->requests);
    //  C1 full, C2 on C1, C3 on C2: keep-last 1 keeps C3, and so C2 and C1
    s_test_bulk (store, "C1", "chained", "n1", instances, done, 1, 1, t0);
    assert (sf_retention_bulk_done (self, "C1", &err) == 0);
    s_test_bulk (store, "C2", "chained", "n1", instances, done, 1, 1, t0 + 1000);
    assert (sf_store_exec (store, &err, "UPDATE images SET parent_id = 'J-C1-vc-vda'"
                           " WHERE id = 'J-C2-vc-vda'", "") == 1);
    assert (sf_retention_bulk_done (self, "C2", &err) == 0);
    s_test_bulk (store, "C3", "chained", "n1", instances, done, 1, 1, t0 + 2000);
    assert (sf_store_exec (store, &err, "UPDATE images SET parent_id = 'J-C2-vc-vda'"
                           " WHERE id = 'J-C3-vc-vda'", "") == 1);
    assert (sf_retention_bulk_done (self, "C3", &err) == 0);
    assert (zlistx_size (sink->requests) == 0);
    assert (s_count (store, "SELECT COUNT (*) FROM retention_deletes") == 0);
    //  C4 is full again: C3, C2 and C1 go, newest first
    s_test_bulk (store, "C4", "chained", "n1", instances, done, 1, 1, t0 + 3000);
    assert (sf_retention_bulk_done (self, "C4", &err) == 3);
    assert (zlistx_size (sink->requests) == 3);
    const char *want [] = { "J-C3-vc-vda", "J-C2-vc-vda", "J-C1-vc-vda" };
    const char *request = (const char *) zlistx_first (sink->requests);
    for (int i = 0; i < 3; i++, request = (const char *) zlistx_next (sink->requests))
        assert (request && strstr (request, want [i]));
    //  C5 on C4 and C6 on C5: keep-last 1 keeps C6, C5 as its base and C4
    //  as C5's
    s_test_bulk (store, "C5", "chained", "n1", instances, done, 1, 1, t0 + 4000);
    assert (sf_store_exec (store, &err, "UPDATE images SET parent_id = 'J-C4-vc-vda'"
                           " WHERE id = 'J-C5-vc-vda'", "") == 1);
    s_test_bulk (store, "C6", "chained", "n1", instances, done, 1, 1, t0 + 5000);
    assert (sf_store_exec (store, &err, "UPDATE images SET parent_id = 'J-C5-vc-vda'"
                           " WHERE id = 'J-C6-vc-vda'", "") == 1);
    zlistx_purge (sink->requests);
    assert (sf_retention_bulk_done (self, "C6", &err) == 0);
    assert (zlistx_size (sink->requests) == 0);
}

static void
s_test_prune (bool verbose)
{
    (void) verbose;
    sf_err_t err = SF_ERR_INIT;
    char path [] = "/tmp/sf_retention_test_XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    close (fd);
    sf_store_t *store = sf_store_new (path, &err);
    assert (store);
    assert (sf_store_node_hello (store, "n1", "", 2, 1, &err) == 0);
    assert (sf_store_node_hello (store, "down", "", 2, 1, &err) == 0);
    test_sink_t sink = { zlistx_new () };
    zlistx_set_destructor (sink.requests, (zlistx_destructor_fn *) zstr_free);
    test_parts_t parts;
    s_test_parts_new (&parts, store);
    sf_retention_t *self = sf_retention_new (store, parts.jobs, parts.bulk,
                                             parts.schedules, s_test_delete, &sink, &err);
    assert (self);
    assert (sf_store_exec (store, &err,
        "INSERT INTO schedules (name, calendar, select_json, created, keep_last)"
        " VALUES ('nightly', 'daily', '{\"all\":true}', 0, 1),"
        "        ('keepall', 'daily', '{\"all\":true}', 0, 0)", "") == 2);

    //  Run 1 of nightly: vm1 and vm2 done (two disks each), vm3 failed
    const char *instances [] = { "vm1", "vm2", "vm3" };
    const char *run1 [] = { "done", "done", "failed" };
    const char *run2 [] = { "done", "failed", "done" };
    const char *failed [] = { "failed", "failed", "failed" };
    int64_t t0 = s_day (2024, 3, 1, 12);
    s_test_bulk (store, "B1", "nightly", "n1", instances, run1, 3, 2, t0);
    assert (sf_retention_bulk_done (self, "B1", &err) == 0);
    assert (zlistx_size (sink.requests) == 0);
    //  An unscheduled bulk of the same instances is never pruned, nor counted
    s_test_bulk (store, "B2", "", "n1", instances, run1, 3, 1, t0 + 1000);
    assert (sf_retention_bulk_done (self, "B2", &err) == 0);
    //  Run 2: vm1 done again -> its run-1 images go (keep-last 1); vm2 failed
    //  this time -> untouched; vm3 has only this run
    s_test_bulk (store, "B3", "nightly", "n1", instances, run2, 3, 2, t0 + 2000);
    assert (sf_retention_bulk_done (self, "B3", &err) == 2);
    assert (zlistx_size (sink.requests) == 2);
    assert (streq ((char *) zlistx_first (sink.requests), "n1 D1 dir J-B1-vm1-vda"));
    assert (streq ((char *) zlistx_next (sink.requests), "n1 D2 dir J-B1-vm1-vdb"));
    json_t *pending = sf_retention_pending_json (self, &err);
    assert (json_array_size (pending) == 2);
    json_t *first = json_array_get (pending, 0);
    assert (streq (json_string_value (json_object_get (first, "state")), "pending"));
    assert (streq (json_string_value (json_object_get (first, "bulk_id")), "B3"));
    assert (json_is_null (json_object_get (first, "error")));
    json_decref (pending);
    //  Done again: nothing new (already pending, not due for a resend)
    assert (sf_retention_bulk_done (self, "B3", &err) == 0);
    //  D1 deleted, D2 fails: the images row of D1 goes, D2's stays
    s_test_answer (self, &sink, 0);
    s_test_answer (self, &sink, SF_ECEPH);
    assert (s_count (store, "SELECT COUNT (*) FROM images WHERE job_id = 'J-B1-vm1'") == 1);
    pending = sf_retention_pending_json (self, &err);
    assert (json_array_size (pending) == 1);
    first = json_array_get (pending, 0);
    assert (streq (json_string_value (json_object_get (first, "request_id")), "D2"));
    assert (streq (json_string_value (json_object_get (first, "state")), "failed"));
    assert (json_integer_value (json_object_get (json_object_get (first, "error"),
                                                 "code")) == SF_ECEPH);
    json_decref (pending);
    //  An unknown answer is ignored
    sf_image_deleted_t stray = SF_IMAGE_DELETED_INIT;
    stray.request_id = "D99";
    assert (sf_retention_deleted (self, "n1", &stray, &err) == 1);
    assert (err.code == SF_ENOENT);
    //  An answer from another node than the one asked is ignored: D2 is
    //  still failed, its image listed
    stray.request_id = "D2";
    assert (sf_retention_deleted (self, "down", &stray, &err) == 1);
    assert (err.code == SF_ESTATE && strstr (err.text, "asked of node 'n1', not 'down'"));
    //  So is one from the right node that names another image
    sf_image_t other = SF_IMAGE_INIT;
    other.store = "dir", other.id = "J-B1-vm2-vda";
    stray.image = &other;
    assert (sf_retention_deleted (self, "n1", &stray, &err) == 1);
    assert (err.code == SF_ESTATE && strstr (err.text, "not of the one the answer names"));
    stray.image = NULL;
    assert (s_count (store, "SELECT COUNT (*) FROM retention_deletes WHERE"
                     " request_id = 'D2' AND state = 'failed'") == 1);
    assert (s_count (store, "SELECT COUNT (*) FROM images WHERE job_id = 'J-B1-vm1'") == 1);
    //  The tick retries the failure only after the delay
    int64_t now = sf_time_now_ms ();
    assert (sf_retention_tick (self, now, &err) == 0);
    assert (sf_retention_tick (self, now + SF_RETENTION_RETRY_MS + 1000, &err) == 1);
    assert (streq ((char *) zlistx_first (sink.requests), "n1 D2 dir J-B1-vm1-vdb"));
    s_test_answer (self, &sink, 0);
    assert (s_count (store, "SELECT COUNT (*) FROM images WHERE job_id = 'J-B1-vm1'") == 0);
    assert (s_count (store, "SELECT COUNT (*) FROM retention_deletes") == 0);
    //  Unanswered requests are resent after the resend delay
    s_test_bulk (store, "B4", "nightly", "n1", instances, run2, 3, 1, t0 + 3000);
    assert (sf_retention_bulk_done (self, "B4", &err) == 4);  //  vm1 and vm3 of B3
    zlistx_purge (sink.requests);
    assert (sf_retention_tick (self, now + 1000, &err) == 0);
    assert (sf_retention_tick (self, now + SF_RETENTION_RESEND_MS + 60000, &err) == 4);
    while (zlistx_size (sink.requests))
        s_test_answer (self, &sink, 0);
    //  B1's vm2 (never pruned: vm2 failed since), B2 (unscheduled), B4
    assert (s_count (store, "SELECT COUNT (*) FROM images") == 2 + 2 + 2);
    //  A bulk with no job done prunes nothing
    s_test_bulk (store, "B5", "nightly", "n1", instances, failed, 3, 1, t0 + 4000);
    assert (sf_retention_bulk_done (self, "B5", &err) == 0);
    //  A schedule that keeps everything, and an unknown bulk
    s_test_bulk (store, "B6", "keepall", "n1", instances, run1, 3, 1, t0 + 5000);
    s_test_bulk (store, "B7", "keepall", "n1", instances, run1, 3, 1, t0 + 6000);
    assert (sf_retention_bulk_done (self, "B7", &err) == 0);
    assert (sf_retention_bulk_done (self, "B0", &err) == 0);
    //  A node that is down: the deletion is recorded as failed, retried
    //  at the next bulk_done
    const char *one [] = { "vm9" };
    const char *done [] = { "done" };
    s_test_bulk (store, "B8", "nightly", "down", one, done, 1, 1, t0 + 7000);
    s_test_bulk (store, "B9", "nightly", "down", one, done, 1, 1, t0 + 8000);
    assert (sf_retention_bulk_done (self, "B9", &err) == 0);
    pending = sf_retention_pending_json (self, &err);
    assert (json_array_size (pending) == 1);
    first = json_array_get (pending, 0);
    assert (streq (json_string_value (json_object_get (first, "state")), "failed"));
    assert (json_integer_value (json_object_get (json_object_get (first, "error"),
                                                 "code")) == SF_ENODE);
    assert (json_integer_value (json_object_get (first, "attempts")) == 1);
    json_decref (pending);
    assert (sf_retention_bulk_done (self, "B7", &err) == 0);
    assert (s_count (store, "SELECT attempts FROM retention_deletes") == 2);
    //  The image vanished meanwhile: the deletion is dropped
    assert (sf_store_exec (store, &err, "DELETE FROM images WHERE job_id = 'J-B8-vm9'",
                           "") == 1);
    assert (sf_retention_bulk_done (self, "B7", &err) == 0);
    assert (s_count (store, "SELECT COUNT (*) FROM retention_deletes") == 0);
    //  Removed schedule: nothing pruned
    assert (sf_store_exec (store, &err, "DELETE FROM schedules WHERE name = 'nightly'",
                           "") == 1);
    s_test_bulk (store, "B10", "nightly", "n1", instances, run1, 3, 1, t0 + 9000);
    assert (sf_retention_bulk_done (self, "B10", &err) == 0);
    assert (s_count (store, "SELECT COUNT (*) FROM retention_deletes") == 0);

    s_test_readd (self, &parts, &sink, store, t0 + 20000);
    s_test_identity (self, &sink, store, t0 + 30000);
    s_test_chain (self, &sink, store, t0 + 40000);

    //  The table survives a restart
    sf_retention_destroy (&self);
    assert (self == NULL);
    self = sf_retention_new (store, parts.jobs, parts.bulk, parts.schedules,
                             s_test_delete, &sink, &err);
    assert (self);
    sf_retention_destroy (&self);
    s_test_parts_destroy (&parts);
    zlistx_destroy (&sink.requests);
    sf_store_destroy (&store);
    unlink (path);
    char wal [64];
    snprintf (wal, sizeof (wal), "%s-wal", path);
    unlink (wal);
    snprintf (wal, sizeof (wal), "%s-shm", path);
    unlink (wal);
}

void
sf_retention_test (bool verbose)
{
    printf (" * sf_retention: ");
    //  @selftest
    s_test_rules (verbose);
    s_test_prune (verbose);
    //  @end
    printf ("OK\n");
}
