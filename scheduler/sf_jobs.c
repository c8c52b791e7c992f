/*  =========================================================================
    sf_jobs - snapshot jobs, their phase events and the images they made

    The fencing check and the change it guards run in one transaction, so
    a message that passes the check cannot race with the node being
    declared down (both happen on the scheduler's one thread anyway; the
    transaction makes it hold across a crash too).
    =========================================================================
*/
#include "sf_sched_classes.h"

struct _sf_jobs_t {
    sf_store_t *store;          //  Borrowed from the scheduler
    zlistx_t *ended;            //  Ids of jobs ended since the last take
    zlistx_t *retried;          //  Ids of jobs queued for a new attempt
    int64_t max_attempts;       //  Retry policy (sf_jobs_set_retry)
    int64_t backoff_ms;
};

SF_LOG_MODULE ("sched.jobs");

#define JOB_COLUMNS \
    "id, instance_name, instance_uuid, node, state, phase, attempt, strategy," \
    " consistency, pause_ms, convert_ms, upload_ms, bytes, created, updated," \
    " error_code, error_text, note, bulk_id, priority, deadline, window_end, full_reason," \
    " method"
#define JOB_COLUMNS_COUNT 24    //  a column after JOB_COLUMNS has this index

//  --------------------------------------------------------------------------
//  Constructor and destructor

sf_jobs_t *
sf_jobs_new (sf_store_t *store)
{
    assert (store);
    sf_jobs_t *self = (sf_jobs_t *) zmalloc (sizeof (sf_jobs_t));
    self->store = store;
    self->ended = zlistx_new ();
    zlistx_set_destructor (self->ended, (zlistx_destructor_fn *) zstr_free);
    self->retried = zlistx_new ();
    zlistx_set_destructor (self->retried, (zlistx_destructor_fn *) zstr_free);
    self->max_attempts = 1;
    return self;
}

void
sf_jobs_destroy (sf_jobs_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        zlistx_destroy (&(*self_p)->ended);
        zlistx_destroy (&(*self_p)->retried);
        free (*self_p);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Creating and finding jobs

int
sf_jobs_create (sf_jobs_t *self, const sf_job_spec_t *spec, char *id,
                size_t id_size, sf_err_t *err)
{
    assert (self);
    assert (spec && spec->instance_uuid && spec->node && spec->strategy);
    int64_t now = sf_time_now_ms ();
    if (sf_store_begin (self->store, err))
        return -1;
    //  The id comes from the row's own sequence (AUTOINCREMENT: never reused)
    if (sf_store_exec (self->store, err,
            "INSERT INTO jobs (id, instance_uuid, instance_name, node, state, phase,"
            " attempt, strategy, created, updated, bulk_id, priority, deadline,"
            " window_end, est_bytes, full)"
            " VALUES ('', ?1, ?2, ?3, 'queued', ?4, 1, ?5, ?6, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            "sssssisiiiui", spec->instance_uuid, spec->instance_name? spec->instance_name: "",
            spec->node, spec->waiting? "waiting": "assigned", spec->strategy, now,
            spec->bulk_id? spec->bulk_id: "", (int64_t) spec->priority,
            spec->deadline_ms, spec->window_end_ms, spec->est_bytes,
            (int64_t) spec->full) < 0)
        goto failed;
    int64_t seq = sqlite3_last_insert_rowid (sf_store_db (self->store));
    if (sf_store_exec (self->store, err, "UPDATE jobs SET id = 'J' || seq WHERE seq = ?1",
                       "i", seq) < 0)
        goto failed;
    if (sf_store_commit (self->store, err))
        return -1;
    snprintf (id, id_size, "J%" PRId64, seq);
    return 0;
 failed:
    sf_store_rollback (self->store);
    return -1;
}

int
sf_jobs_active (sf_jobs_t *self, const char *node, const char *instance_uuid,
                char *id, size_t id_size, sf_err_t *err)
{
    assert (self && node && instance_uuid);
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT id FROM jobs WHERE instance_uuid = ?1 AND node = ?2"
        " AND state IN ('queued', 'running') AND strategy NOT IN ('" SF_WIRE_RESTORE "', '" SF_WIRE_VERIFY "')"
        " ORDER BY seq LIMIT 1",
        "ss", instance_uuid, node);
    if (!stmt)
        return -1;
    int rc = sf_store_step (self->store, stmt, err);
    if (rc == 1)
        snprintf (id, id_size, "%s", sf_store_text (stmt, 0));
    sqlite3_finalize (stmt);
    return rc;
}

//  --------------------------------------------------------------------------
//  Fencing: is this message about a job node may still report on?

//  If running is not NULL it says whether the job is in state 'running'.

static int
s_fence (sf_jobs_t *self, const char *id, const char *node, uint32_t attempt,
         bool *running, sf_err_t *err)
{
    sqlite3_stmt *stmt = sf_store_query (self->store, err,
        "SELECT node, attempt, state, phase FROM jobs WHERE id = ?1", "s", id);
    if (!stmt)
        return -1;
    int rc = sf_store_step (self->store, stmt, err);
    if (rc == 0)
        sf_err_set (err, SF_ENOENT, "no job '%s'", id);
    else
    if (rc == 1) {
        const char *owner = sf_store_text (stmt, 0);
        int64_t current = sqlite3_column_int64 (stmt, 1);
        const char *state = sf_store_text (stmt, 2);
        if (!streq (owner, node))
            rc = sf_err_set (err, SF_ESTATE, "job '%s' is assigned to node '%s', not '%s'",
                             id, owner, node);
        else
        if (current != attempt)
            rc = sf_err_set (err, SF_ESTATE, "stale attempt %u of job '%s' (current %" PRId64 ")",
                             attempt, id, current);
        else
        if (streq (sf_store_text (stmt, 3), "waiting"))
            rc = sf_err_set (err, SF_ESTATE, "job '%s' was not sent to node '%s'", id, node);
        else
        if (streq (state, "done") || streq (state, "failed") || streq (state, "skipped")
        ||  streq (state, "cancelled"))
            rc = sf_err_set (err, SF_ESTATE, "job '%s' has already %s", id,
                             streq (state, "done")? "finished"
                           : streq (state, "cancelled")? "been cancelled": state);
        else
        if (running)
            *running = streq (state, "running");
    }
    sf_store_done (stmt);
    return rc == 1? 0: -1;
}

//  --------------------------------------------------------------------------
//  Events

//  One UPDATE per event. The state column is set only when it changes (the
//  first event): setting it rewrites the three indexes that hold it, which
//  made every event dirty random index pages and the commits slow.

static int
s_apply_event (sf_jobs_t *self, const sf_job_event_t *event, bool running, sf_err_t *err)
{
    const char *phase = sf_wire_phase_name (event->phase);
    int64_t now = sf_time_now_ms ();
    int64_t at = event->at_ms > 0 && event->at_ms < INT64_MAX? (int64_t) event->at_ms: now;
    if (sf_store_exec (self->store, err,
            "INSERT INTO job_events (job_id, phase, ms, bytes, at_ms, text)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            "ssuuis", event->job_id, phase, (uint64_t) event->ms,
            (uint64_t) event->bytes, at, event->text? event->text: "") < 0)
        return -1;
    if (!running && sf_store_exec (self->store, err,
            "UPDATE jobs SET state = 'running' WHERE id = ?1", "s", event->job_id) < 0)
        return -1;
    //  Every statement binds the same parameters
    const char *sql = "UPDATE jobs SET phase = ?2, updated = ?3"
                      " WHERE id = ?1 AND ?4 IS NOT NULL AND ?5 IS NOT NULL";
    if (event->phase == SF_PHASE_RESUMED)
        sql = "UPDATE jobs SET phase = ?2, updated = ?3, pause_ms = ?4"
              " WHERE id = ?1 AND ?5 IS NOT NULL";
    else
    if (event->phase == SF_PHASE_CONVERTED)
        sql = "UPDATE jobs SET phase = ?2, updated = ?3, convert_ms = ?4, bytes = ?5"
              " WHERE id = ?1";
    else
    if (event->phase == SF_PHASE_UPLOADED)
        sql = "UPDATE jobs SET phase = ?2, updated = ?3, upload_ms = ?4, bytes = ?5"
              " WHERE id = ?1";
    return sf_store_exec (self->store, err, sql, "ssiuu", event->job_id, phase, now,
                          (uint64_t) event->ms, (uint64_t) event->bytes) < 0? -1: 0;
}

//  Whether event is recorded already (a worker replays what it sent until
//  it is acknowledged): same job, phase and at_ms. 1, 0, or -1 with err.

static int
s_event_known (sf_jobs_t *self, const sf_job_event_t *event, sf_err_t *err)
{
    if (event->at_ms == 0 || event->at_ms >= INT64_MAX)
        return 0;               //  stamped on arrival: cannot be told apart
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT 1 FROM job_events WHERE job_id = ?1 AND phase = ?2 AND at_ms = ?3 LIMIT 1",
        "ssi", event->job_id, sf_wire_phase_name (event->phase), (int64_t) event->at_ms);
    if (!stmt)
        return -1;
    int rc = sf_store_step (self->store, stmt, err);
    sqlite3_finalize (stmt);
    return rc;
}

int
sf_jobs_event (sf_jobs_t *self, const char *node, const sf_job_event_t *event,
               sf_err_t *err)
{
    assert (self);
    assert (event && event->job_id);
    if (sf_store_begin (self->store, err))
        return -1;
    bool running = false;
    int known = 0;
    if (s_fence (self, event->job_id, node, event->attempt, &running, err)
    ||  (known = s_event_known (self, event, err)) < 0
    ||  (!known && s_apply_event (self, event, running, err))) {
        sf_store_rollback (self->store);
        return -1;
    }
    if (sf_store_commit (self->store, err))
        return -1;
    return known;
}

//  --------------------------------------------------------------------------
//  Results


static int
s_insert_image (sf_jobs_t *self, const sf_job_result_t *result,
                const sf_image_t *image, int64_t now, sf_err_t *err)
{
    if (!image->id || !*image->id)
        return sf_err_set (err, SF_EPROTO, "image without an id in result of job '%s'",
                           result->job_id);
    int rc = sf_store_exec (self->store, err,
        "INSERT OR REPLACE INTO images (store, id, path, size, sha256, job_id,"
        " instance_uuid, instance_name, disk_target, format, created, parent_id,"
        " own_bytes, checkpoint)"
        " SELECT ?1, ?2, ?3, ?4, ?5, id, instance_uuid, instance_name, ?6, ?7, ?8, ?10,"
        " ?11, ?12 FROM jobs WHERE id = ?9",
        "sssusssissus", image->store? image->store: "", image->id,
        image->path? image->path: "", (uint64_t) image->size,
        image->sha256? image->sha256: "", image->disk_target? image->disk_target: "",
        image->format? image->format: "", now, result->job_id,
        image->parent_id? image->parent_id: "", (uint64_t) image->own_bytes,
        image->checkpoint? image->checkpoint: "");
    return rc < 0? -1: 0;
}

//  The note of an ok result: its error text, if any (a worker says e.g.
//  why it paused instead of freezing). An ok result with an error code is
//  contradictory; it stays done (its images exist) and the code is kept in
//  the note. Writes into buf; returns the note ("" for none).

static const char *
s_result_note (const sf_job_result_t *result, char *buf, size_t size)
{
    const sf_error_info_t *error = result->error;
    if (!result->ok || !error || !error->text || !*error->text)
        return "";
    if (error->code == 0)
        return error->text;
    snprintf (buf, size, "%s: %s", sf_err_name (error->code), error->text);
    return buf;
}

//  Whether image (checked) is recorded for another job than result's: 1
//  with refusal set if it is, 0 if not, -1 with err set

static int
s_image_taken (sf_jobs_t *self, const sf_job_result_t *result, const sf_image_t *image,
               sf_err_t *refusal, sf_err_t *err)
{
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT job_id FROM images WHERE store = ?1 AND id = ?2 AND job_id <> ?3",
        "sss", image->store, image->id, result->job_id);
    if (!stmt)
        return -1;
    int rc = sf_store_step (self->store, stmt, err);
    if (rc == 1)
        sf_err_set (refusal, SF_EPROTO, "worker reported image '%s' that is not job %s's: "
                    "it is job %s's", image->id, result->job_id, sf_store_text (stmt, 0));
    sqlite3_finalize (stmt);
    return rc;
}

//  The images of result against its job (sf_imgcheck): 0 if they are
//  the job's, 1 if not (refusal set), -1 with err set

static int
s_check_images (sf_jobs_t *self, const char *node, const char *node_store,
                const sf_job_result_t *result, sf_err_t *refusal, sf_err_t *err)
{
    if (result->n_images == 0)
        return 0;
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT strategy, instance_uuid FROM jobs WHERE id = ?1", "s", result->job_id);
    if (!stmt)
        return -1;
    int rc = sf_store_step (self->store, stmt, err);
    char *strategy = rc == 1? strdup (sf_store_text (stmt, 0)): NULL;
    char *uuid = rc == 1? strdup (sf_store_text (stmt, 1)): NULL;
    sqlite3_finalize (stmt);
    //  A restore or a verification makes no image
    if (rc == 1 && (streq (strategy, SF_WIRE_RESTORE) || streq (strategy, SF_WIRE_VERIFY))) {
        sf_err_set (refusal, SF_EPROTO, "worker reported image '%.100s' for %s job "
                    "'%s', which makes none", result->images [0]->id? result->images [0]->id
                                                                    : "", strategy,
                    result->job_id);
        free (strategy);
        free (uuid);
        return 1;
    }
    zlistx_t *instances = rc == 1? sf_store_instances (self->store, node, uuid, err): NULL;
    if (instances) {
        sf_instance_rec_t *instance = (sf_instance_rec_t *) zlistx_first (instances);
        while (instance && !streq (instance->uuid, uuid))
            instance = (sf_instance_rec_t *) zlistx_next (instances);
        sf_imgcheck_job_t job = {
            .catalog_id = sf_store_catalog_id (self->store), .job_id = result->job_id,
            .strategy = strategy, .node_store = node_store, .instance = instance
        };
        rc = sf_imgcheck_images (&job, result->images, result->n_images, refusal)? 1: 0;
    }
    else
        rc = -1;
    //  An image another job made is not this one's
    for (size_t i = 0; rc == 0 && i < result->n_images; i++)
        rc = s_image_taken (self, result, result->images [i], refusal, err);
    //  An increment's parent is an earlier image of the same disk
    for (size_t i = 0; rc == 0 && i < result->n_images; i++)
        rc = sf_chain_check_parent (self->store, result->job_id, result->images [i],
                                    refusal, err);
    zlistx_destroy (&instances);
    free (strategy);
    free (uuid);
    return rc;
}

//  Apply result; if refusal is not NULL its images were refused: the job
//  fails with it and no image row is written

static int
s_apply_result (sf_jobs_t *self, const sf_job_result_t *result,
                const sf_err_t *refusal, sf_err_t *err)
{
    int64_t now = sf_time_now_ms ();
    int code = 0;
    const char *text = "";
    bool ok = result->ok && !refusal;
    if (refusal) {
        code = refusal->code;
        text = refusal->text;
    }
    else
    if (!result->ok) {
        code = result->error && result->error->code? result->error->code: SF_EIO;
        text = result->error && result->error->text && *result->error->text
             ? result->error->text: "worker reported a failure without an error";
    }
    char buf [1024];
    const char *note = ok? s_result_note (result, buf, sizeof (buf)): "";
    //  A zero timing in the result keeps what the phase events reported
    if (sf_store_exec (self->store, err,
            "UPDATE jobs SET state = ?2, phase = ?2,"
            " strategy = CASE WHEN ?3 = '' THEN strategy ELSE ?3 END,"
            " consistency = ?4,"
            " pause_ms = CASE WHEN ?5 > 0 THEN ?5 ELSE pause_ms END,"
            " convert_ms = CASE WHEN ?6 > 0 THEN ?6 ELSE convert_ms END,"
            " upload_ms = CASE WHEN ?7 > 0 THEN ?7 ELSE upload_ms END,"
            " bytes = CASE WHEN ?8 > 0 THEN ?8 ELSE bytes END,"
            " error_code = ?9, error_text = ?10, updated = ?11, note = ?12,"
            " full_reason = ?13, method = ?14 WHERE id = ?1",
            "ssssuuuuisisss", result->job_id, ok? "done": "failed",
            refusal || !result->strategy? "": result->strategy,
            result->consistency? result->consistency: "",
            (uint64_t) result->pause_ms, (uint64_t) result->convert_ms,
            (uint64_t) result->upload_ms, (uint64_t) result->bytes,
            (int64_t) code, text, now, note,
            result->full_reason? result->full_reason: "",
            result->method? result->method: "") < 0)
        return -1;
    for (size_t i = 0; !refusal && i < result->n_images; i++)
        if (s_insert_image (self, result, result->images [i], now, err))
            return -1;
    //  The guest's XML goes with the images (restore --as-domain, verify
    //  --boot); a verification's findings with its image
    if (ok && result->n_images && result->domain_xml && *result->domain_xml
    &&  sf_store_exec (self->store, err, "INSERT OR REPLACE INTO instance_xml (job_id, xml)"
                       " VALUES (?1, ?2)", "ss", result->job_id, result->domain_xml) < 0)
        return -1;
    if (!refusal && sf_verifies_result (self->store, result, now, err))
        return -1;
    return 0;
}

int
sf_jobs_result (sf_jobs_t *self, const char *node, const char *node_store,
                const sf_job_result_t *result, sf_err_t *err)
{
    assert (self);
    assert (result && result->job_id);
    if (sf_store_begin (self->store, err))
        return -1;
    sf_err_t refusal = SF_ERR_INIT;
    int refused = 0, retried = 0;
    if (s_fence (self, result->job_id, node, result->attempt, NULL, err)
    ||  (refused = s_check_images (self, node, node_store, result, &refusal, err)) < 0
    ||  (!refused && (retried = sf_jobs_retry_result (self, result, err)) < 0)
    ||  (!retried && (s_apply_result (self, result, refused? &refusal: NULL, err)
                  ||  sf_jobs_result_ended (self, result->job_id, err)))) {
        sf_store_rollback (self->store);
        return -1;
    }
    if (sf_store_commit (self->store, err))
        return -1;
    zlistx_add_end (retried? self->retried: self->ended, strdup (result->job_id));
    if (refused)
        *err = refusal;
    return refused;
}

//  --------------------------------------------------------------------------
//  Failing jobs from the scheduler's side

#define UNFINISHED SF_JOBS_UNFINISHED

//  Fail one job if it is unfinished, in the caller's transaction

static int
s_end_one (sf_jobs_t *self, const char *id, const char *state, int code,
           const char *text, sf_err_t *err)
{
    int64_t now = sf_time_now_ms ();
    if (sf_store_exec (self->store, err,
            "INSERT INTO job_events (job_id, phase, at_ms, text)"
            " SELECT id, ?4, ?2, ?3 FROM jobs WHERE id = ?1 AND " UNFINISHED,
            "siss", id, now, text, state) < 0
    ||  sf_jobs_attempt_ended (self, id, code, text, now, err))
        return -1;
    //  A job whose cancel was asked for ends cancelled, whatever failed it
    int changed = sf_store_exec (self->store, err,
            "UPDATE jobs SET"
            " state = CASE WHEN ?5 = 'failed' AND cancel_at > 0 THEN 'cancelled' ELSE ?5 END,"
            " phase = CASE WHEN ?5 = 'failed' AND cancel_at > 0 THEN 'cancelled' ELSE ?5 END,"
            " error_code = ?2, error_text = ?3, updated = ?4 WHERE id = ?1 AND " UNFINISHED,
            "sisis", id, (int64_t) code, text, now, state);
    if (changed < 0)
        return -1;
    if (changed > 0)
        zlistx_add_end (self->ended, strdup (id));
    return 0;
}

static int
s_fail_one (sf_jobs_t *self, const char *id, int code, const char *text, sf_err_t *err)
{
    return s_end_one (self, id, "failed", code, text, err);
}

int
sf_jobs_fail (sf_jobs_t *self, const char *id, int code, const char *text,
              sf_err_t *err)
{
    assert (self);
    if (sf_store_begin (self->store, err))
        return -1;
    if (s_fail_one (self, id, code, text, err)) {
        sf_store_rollback (self->store);
        return -1;
    }
    return sf_store_commit (self->store, err);
}

//  Ids of the node's unfinished jobs, oldest first (only those handed to
//  the node, not those still waiting for admission, if handed); NULL with
//  err set

static zlistx_t *
s_unfinished (sf_jobs_t *self, const char *node, bool handed, sf_err_t *err)
{
    return sf_store_strings (self->store, err, handed
        ? "SELECT id FROM jobs WHERE node = ?1 AND " UNFINISHED " AND phase <> 'waiting'"
          " ORDER BY seq"
        : "SELECT id FROM jobs WHERE node = ?1 AND " UNFINISHED " ORDER BY seq", "s", node);
}

static bool
s_listed (char **ids, size_t count, const char *id)
{
    for (size_t i = 0; i < count; i++)
        if (ids [i] && streq (ids [i], id))
            return true;
    return false;
}

//  Append to strangers the ids listed that are not in unfinished

static void
s_strangers (zlistx_t *unfinished, char **ids, size_t count, zlistx_t *strangers)
{
    for (size_t i = 0; strangers && i < count; i++) {
        bool known = false;
        for (const char *id = (const char *) zlistx_first (unfinished); id && !known;
             id = (const char *) zlistx_next (unfinished))
            known = ids [i] && streq (ids [i], id);
        if (!known && ids [i])
            zlistx_add_end (strangers, strdup (ids [i]));
    }
}

int
sf_jobs_reconcile (sf_jobs_t *self, const char *node, const sf_jobs_known_t *known,
                   zlistx_t *lost, zlistx_t *resend, zlistx_t *strangers, sf_err_t *err)
{
    assert (self);
    assert (node && known);
    assert (known->running || known->n_running == 0);
    assert (known->finished || known->n_finished == 0);
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT id, phase FROM jobs WHERE node = ?1 AND " UNFINISHED
        " AND phase <> 'waiting' ORDER BY seq", "s", node);
    if (!stmt)
        return -1;
    zlistx_t *unfinished = zlistx_new ();
    zlistx_set_destructor (unfinished, (zlistx_destructor_fn *) zstr_free);
    zlistx_t *unsent = zlistx_new ();
    zlistx_set_destructor (unsent, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_comparator (unsent, (zlistx_comparator_fn *) strcmp);
    int rc;
    while ((rc = sf_store_step (self->store, stmt, err)) == 1) {
        const char *id = sf_store_text (stmt, 0);
        zlistx_add_end (unfinished, strdup (id));
        if (streq (sf_store_text (stmt, 1), "assigned"))
            zlistx_add_end (unsent, strdup (id));
    }
    sqlite3_finalize (stmt);
    int failed = 0;
    for (const char *id = (const char *) zlistx_first (unfinished); rc == 0 && id;
         id = (const char *) zlistx_next (unfinished)) {
        //  Listed: it runs there, or its result comes in the replay
        if (s_listed (known->running, known->n_running, id)
        ||  s_listed (known->finished, known->n_finished, id))
            continue;
        //  No event ever came: the worker never received it
        if (zlistx_find (unsent, (void *) id)) {
            if (resend)
                zlistx_add_end (resend, strdup (id));
            continue;
        }
        char text [256];
        snprintf (text, sizeof (text), "worker on node '%s' no longer knows job '%s' "
                  "(its journal was lost)", node, id);
        if (s_fail_one (self, id, SF_ENODE, text, err))
            rc = -1;
        else {
            failed++;
            if (lost)
                zlistx_add_end (lost, strdup (id));
        }
    }
    //  A finished job that is no longer unfinished here is one whose
    //  result we recorded and whose Ack was lost: no stranger
    if (rc == 0)
        s_strangers (unfinished, known->running, known->n_running, strangers);
    zlistx_destroy (&unfinished);
    zlistx_destroy (&unsent);
    return rc < 0? -1: failed;
}

int
sf_jobs_fail_node (sf_jobs_t *self, const char *node, int code, const char *text,
                   sf_err_t *err)
{
    assert (self);
    zlistx_t *ids = s_unfinished (self, node, false, err);
    if (!ids)
        return -1;
    int failed = 0;
    for (const char *id = (const char *) zlistx_first (ids); id;
         id = (const char *) zlistx_next (ids)) {
        if (s_fail_one (self, id, code, text, err)) {
            failed = -1;
            break;
        }
        failed++;
    }
    zlistx_destroy (&ids);
    return failed;
}

int
sf_jobs_skip (sf_jobs_t *self, const char *id, const char *reason, sf_err_t *err)
{
    assert (self);
    if (sf_store_begin (self->store, err))
        return -1;
    if (s_end_one (self, id, "skipped", SF_ETIMEDOUT, reason, err)) {
        sf_store_rollback (self->store);
        return -1;
    }
    return sf_store_commit (self->store, err);
}

int
sf_jobs_assigned (sf_jobs_t *self, const char *id, sf_err_t *err)
{
    assert (self);
    return sf_store_exec (self->store, err,
        "UPDATE jobs SET phase = 'assigned', updated = ?2, attempt_started = ?2,"
        " not_before = 0 WHERE id = ?1 AND state = 'queued'", "si", id,
        sf_time_now_ms ()) < 0? -1: 0;
}

zlistx_t *
sf_jobs_take_ended (sf_jobs_t *self)
{
    assert (self);
    zlistx_t *ended = self->ended;
    self->ended = zlistx_new ();
    zlistx_set_destructor (self->ended, (zlistx_destructor_fn *) zstr_free);
    return ended;
}

int
sf_jobs_uploading (sf_jobs_t *self, const char *id, sf_err_t *err)
{
    assert (self && id);
    return sf_store_exec (self->store, err,
        "UPDATE jobs SET phase = 'uploading', updated = ?2 WHERE id = ?1"
        " AND " UNFINISHED, "si", id, sf_time_now_ms ()) < 0? -1: 0;
}

int
sf_jobs_requeue (sf_jobs_t *self, const char *id, sf_err_t *err)
{
    assert (self && id);
    return sf_store_exec (self->store, err,
        "UPDATE jobs SET phase = 'waiting', updated = ?2 WHERE id = ?1"
        " AND state = 'queued'", "si", id, sf_time_now_ms ()) < 0? -1: 0;
}

//  --------------------------------------------------------------------------
//  Queries for admission and bulks

void
sf_jobs_model (sf_jobs_t *self, sf_plan_model_t *model)
{
    assert (self && model);
    memset (model, 0, sizeof (*model));
    sf_err_t err = SF_ERR_INIT;
    sqlite3_stmt *stmt = sf_store_prepare (self->store, &err,
        "SELECT SUM (bytes), SUM (convert_ms), SUM (upload_ms) FROM (SELECT bytes,"
        " convert_ms, upload_ms FROM jobs WHERE state = 'done' AND bytes > 0"
        " AND strategy IN ('file-cold', 'offline') ORDER BY seq DESC LIMIT 50)", "");
    if (stmt && sf_store_step (self->store, stmt, &err) == 1) {
        double bytes = sqlite3_column_double (stmt, 0);
        double convert_ms = sqlite3_column_double (stmt, 1);
        double upload_ms = sqlite3_column_double (stmt, 2);
        if (bytes > 0 && convert_ms > 0)
            model->convert_bps = bytes * 1000 / convert_ms;
        if (bytes > 0 && upload_ms > 0)
            model->upload_bps = bytes * 1000 / upload_ms;
    }
    sqlite3_finalize (stmt);
    stmt = sf_store_prepare (self->store, &err,
        "SELECT AVG (pause_ms) FROM (SELECT pause_ms FROM jobs WHERE state = 'done'"
        " AND strategy = 'rbd' AND pause_ms > 0 ORDER BY seq DESC LIMIT 50)", "");
    if (stmt && sf_store_step (self->store, stmt, &err) == 1)
        model->rbd_capture_ms = sqlite3_column_int64 (stmt, 0);
    sqlite3_finalize (stmt);
}

zhashx_t *
sf_jobs_busy (sf_jobs_t *self, sf_err_t *err)
{
    assert (self);
    //  Node names never contain '/' (sf_name_is_safe): "node/uuid" is a key
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT node || '/' || instance_uuid, id FROM jobs WHERE " UNFINISHED
        " AND strategy NOT IN ('" SF_WIRE_RESTORE "', '" SF_WIRE_VERIFY "')", "");
    if (!stmt)
        return NULL;
    zhashx_t *busy = zhashx_new ();
    zhashx_set_destructor (busy, (zhashx_destructor_fn *) zstr_free);
    zhashx_set_duplicator (busy, (zhashx_duplicator_fn *) strdup);
    int rc;
    while ((rc = sf_store_step (self->store, stmt, err)) == 1)
        zhashx_insert (busy, sf_store_text (stmt, 0), (void *) sf_store_text (stmt, 1));
    sqlite3_finalize (stmt);
    if (rc < 0)
        zhashx_destroy (&busy);
    return busy;
}

const char *
sf_jobs_busy_job (zhashx_t *busy, const char *node, const char *uuid)
{
    assert (busy && node && uuid);
    char *key = zsys_sprintf ("%s/%s", node, uuid);
    const char *id = (const char *) zhashx_lookup (busy, key);
    zstr_free (&key);
    return id;
}

void
sf_job_rec_destroy (sf_job_rec_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_job_rec_t *self = *self_p;
        free (self->id);
        free (self->node);
        free (self->strategy);
        free (self->phase);
        free (self->bulk_id);
        free (self->instance_uuid);
        free (self);
        *self_p = NULL;
    }
}

//  The jobs that stmt selects (SF_JOBS_REC_COLUMNS) as sf_job_rec_t, and
//  finalize it. Caller owns the list; NULL with err set.

static zlistx_t *
s_job_recs (sf_jobs_t *self, sqlite3_stmt *stmt, sf_err_t *err)
{
    if (!stmt)
        return NULL;
    zlistx_t *list = zlistx_new ();
    zlistx_set_destructor (list, (zlistx_destructor_fn *) sf_job_rec_destroy);
    int rc;
    while ((rc = sf_store_step (self->store, stmt, err)) == 1) {
        sf_job_rec_t *rec = (sf_job_rec_t *) zmalloc (sizeof (sf_job_rec_t));
        rec->id = strdup (sf_store_text (stmt, 0));
        rec->node = strdup (sf_store_text (stmt, 1));
        rec->strategy = strdup (sf_store_text (stmt, 2));
        rec->phase = strdup (sf_store_text (stmt, 3));
        rec->priority = (int) sqlite3_column_int64 (stmt, 4);
        rec->deadline_ms = sqlite3_column_int64 (stmt, 5);
        rec->window_end_ms = sqlite3_column_int64 (stmt, 6);
        rec->bulk_id = strdup (sf_store_text (stmt, 7));
        rec->instance_uuid = strdup (sf_store_text (stmt, 8));
        rec->attempt = (uint32_t) sqlite3_column_int64 (stmt, 9);
        rec->not_before_ms = sqlite3_column_int64 (stmt, 10);
        zlistx_add_end (list, rec);
    }
    sqlite3_finalize (stmt);
    if (rc < 0)
        zlistx_destroy (&list);
    return list;
}

zlistx_t *
sf_jobs_unfinished (sf_jobs_t *self, sf_err_t *err)
{
    assert (self);
    return s_job_recs (self, sf_store_prepare (self->store, err,
        "SELECT " SF_JOBS_REC_COLUMNS " FROM jobs WHERE " UNFINISHED
        " ORDER BY phase = 'uploading' DESC, seq", ""), err);
}

const char *sf_jobs_state_names [SF_JOBS_STATES] = {
    "queued", "running", "done", "failed", "skipped", "cancelled"
};

int
sf_jobs_bulk_counts (sf_jobs_t *self, const char *bulk_id, sf_jobs_counts_t *counts,
                     sf_err_t *err)
{
    assert (self && bulk_id && counts);
    memset (counts, 0, sizeof (*counts));
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT state, COUNT (*), SUM (bytes), SUM (est_bytes),"
        " MIN (CASE WHEN phase = 'waiting' THEN NULL ELSE updated END)"
        " FROM jobs WHERE bulk_id = ?1 GROUP BY state", "s", bulk_id);
    if (!stmt)
        return -1;
    int rc;
    while ((rc = sf_store_step (self->store, stmt, err)) == 1)
        for (int i = 0; i < SF_JOBS_STATES; i++)
            if (streq (sf_store_text (stmt, 0), sf_jobs_state_names [i])) {
                counts->jobs [i] = sqlite3_column_int64 (stmt, 1);
                counts->bytes += sqlite3_column_int64 (stmt, 2);
                counts->est_bytes += sqlite3_column_int64 (stmt, 3);
                if (i >= 2)
                    counts->ended_est_bytes += sqlite3_column_int64 (stmt, 3);
            }
    sqlite3_finalize (stmt);
    return rc < 0? -1: 0;
}

json_t *
sf_jobs_bulk_json (sf_jobs_t *self, const char *bulk_id, bool failures, sf_err_t *err)
{
    assert (self && bulk_id);
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT id, instance_name, node, state, phase, strategy, bytes, error_code,"
        " error_text FROM jobs WHERE bulk_id = ?1 AND (?2 = 0 OR state IN"
        " ('failed', 'skipped', 'cancelled')) ORDER BY seq", "si", bulk_id, (int64_t) failures);
    if (!stmt)
        return NULL;
    json_t *list = json_array ();
    int rc;
    while ((rc = sf_store_step (self->store, stmt, err)) == 1) {
        int64_t code = sqlite3_column_int64 (stmt, 7);
        json_t *error = code? json_pack ("{s:I, s:s}", "code", (json_int_t) code,
                                         "text", sf_store_text (stmt, 8))
                            : json_null ();
        json_t *entry = failures
            ? json_pack ("{s:s, s:s, s:s, s:s, s:o}", "job_id", sf_store_text (stmt, 0),
                         "instance", sf_store_text (stmt, 1), "node", sf_store_text (stmt, 2),
                         "state", sf_store_text (stmt, 3), "error", error)
            : json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o}",
                         "job_id", sf_store_text (stmt, 0),
                         "instance", sf_store_text (stmt, 1), "node", sf_store_text (stmt, 2),
                         "state", sf_store_text (stmt, 3), "phase", sf_store_text (stmt, 4),
                         "strategy", sf_store_text (stmt, 5),
                         "bytes", (json_int_t) sqlite3_column_int64 (stmt, 6),
                         "error", error);
        json_array_append_new (list, entry);
    }
    sqlite3_finalize (stmt);
    if (rc < 0)
        json_decref (list);
    return rc < 0? NULL: list;
}

//  --------------------------------------------------------------------------
//  JSON views

static json_t *
s_time_json (int64_t ms)
{
    char buf [40];
    return ms > 0? json_string (sf_time_rfc3339 (ms, buf, sizeof (buf))): json_null ();
}

static json_t *
s_events_json (sf_jobs_t *self, const char *id, sf_err_t *err)
{
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT phase, ms, bytes, at_ms, text FROM job_events WHERE job_id = ?1"
        " ORDER BY seq", "s", id);
    if (!stmt)
        return NULL;
    json_t *events = json_array ();
    int rc;
    while ((rc = sf_store_step (self->store, stmt, err)) == 1) {
        //  The text carries what the worker wants the operator to see, e.g.
        //  "freeze unavailable (...): paused instead"; null when none
        const char *text = sf_store_text (stmt, 4);
        json_array_append_new (events, json_pack ("{s:s, s:I, s:I, s:o, s:o}",
            "phase", sf_store_text (stmt, 0),
            "ms", (json_int_t) sqlite3_column_int64 (stmt, 1),
            "bytes", (json_int_t) sqlite3_column_int64 (stmt, 2),
            "at", s_time_json (sqlite3_column_int64 (stmt, 3)),
            "text", text && *text? json_string (text): json_null ()));
    }
    sqlite3_finalize (stmt);
    if (rc < 0)
        json_decref (events);
    return rc < 0? NULL: events;
}

static json_t *
s_string_or_null (const char *text)
{
    return *text? json_string (text): json_null ();
}

static json_t *
s_job_images_json (sf_jobs_t *self, const char *id, sf_err_t *err)
{
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT store, id, path, size, sha256, disk_target, format, parent_id, own_bytes,"
        " checkpoint FROM images WHERE job_id = ?1 ORDER BY rowid", "s", id);
    if (!stmt)
        return NULL;
    json_t *images = json_array ();
    int rc;
    while ((rc = sf_store_step (self->store, stmt, err)) == 1)
        json_array_append_new (images, json_pack ("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:o,"
            " s:I, s:o}",
            "store", sf_store_text (stmt, 0),
            "id", sf_store_text (stmt, 1),
            "path", sf_store_text (stmt, 2),
            "size", (json_int_t) sqlite3_column_int64 (stmt, 3),
            "sha256", sf_store_text (stmt, 4),
            "disk_target", sf_store_text (stmt, 5),
            "format", sf_store_text (stmt, 6),
            "parent", s_string_or_null (sf_store_text (stmt, 7)),
            "own_bytes", (json_int_t) sqlite3_column_int64 (stmt, 8),
            "checkpoint", s_string_or_null (sf_store_text (stmt, 9))));
    sqlite3_finalize (stmt);
    if (rc < 0)
        json_decref (images);
    return rc < 0? NULL: images;
}

//  The job's "image": the first image's store, id, path, size, sha256

static json_t *
s_first_image (json_t *images)
{
    json_t *first = json_array_get (images, 0);
    if (!first)
        return json_null ();
    return json_pack ("{s:O, s:O, s:O, s:O, s:O}",
        "store", json_object_get (first, "store"),
        "id", json_object_get (first, "id"),
        "path", json_object_get (first, "path"),
        "size", json_object_get (first, "size"),
        "sha256", json_object_get (first, "sha256"));
}

//  Build the job object from a row of JOB_COLUMNS

static json_t *
s_job_json (sf_jobs_t *self, sqlite3_stmt *stmt, sf_err_t *err)
{
    const char *id = sf_store_text (stmt, 0);
    json_t *events = s_events_json (self, id, err);
    json_t *images = events? s_job_images_json (self, id, err): NULL;
    if (!images) {
        json_decref (events);
        return NULL;
    }
    int64_t code = sqlite3_column_int64 (stmt, 15);
    json_t *error = code? json_pack ("{s:I, s:s}", "code", (json_int_t) code,
                                     "text", sf_store_text (stmt, 16))
                        : json_null ();
    json_t *job = json_object ();
    static const char *texts [] = { "job_id", "instance", "instance_uuid", "node",
                                    "state", "phase" };
    for (int col = 0; col < 6; col++)
        json_object_set_new (job, texts [col], json_string (sf_store_text (stmt, col)));
    json_object_set_new (job, "attempt", json_integer (sqlite3_column_int64 (stmt, 6)));
    json_object_set_new (job, "strategy", json_string (sf_store_text (stmt, 7)));
    json_object_set_new (job, "consistency", s_string_or_null (sf_store_text (stmt, 8)));
    static const char *numbers [] = { "pause_ms", "convert_ms", "upload_ms", "bytes" };
    for (int col = 9; col < 13; col++)
        json_object_set_new (job, numbers [col - 9],
                             json_integer (sqlite3_column_int64 (stmt, col)));
    json_object_set_new (job, "created", s_time_json (sqlite3_column_int64 (stmt, 13)));
    json_object_set_new (job, "updated", s_time_json (sqlite3_column_int64 (stmt, 14)));
    json_object_set_new (job, "error", error);
    json_object_set_new (job, "note", s_string_or_null (sf_store_text (stmt, 17)));
    json_object_set_new (job, "bulk_id", s_string_or_null (sf_store_text (stmt, 18)));
    json_object_set_new (job, "priority", json_integer (sqlite3_column_int64 (stmt, 19)));
    json_object_set_new (job, "deadline", s_time_json (sqlite3_column_int64 (stmt, 20)));
    json_object_set_new (job, "window_end", s_time_json (sqlite3_column_int64 (stmt, 21)));
    json_object_set_new (job, "full_reason", s_string_or_null (sf_store_text (stmt, 22)));
    json_object_set_new (job, "method", s_string_or_null (sf_store_text (stmt, 23)));
    json_object_set_new (job, "events", events);
    json_object_set_new (job, "image", s_first_image (images));
    json_object_set_new (job, "images", images);
    return job;
}

json_t *
sf_jobs_json (sf_jobs_t *self, const char *id, sf_err_t *err)
{
    assert (self);
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1", "s", id);
    if (!stmt)
        return NULL;
    json_t *job = NULL;
    int rc = sf_store_step (self->store, stmt, err);
    if (rc == 1)
        job = s_job_json (self, stmt, err);
    else
    if (rc == 0)
        sf_err_set (err, SF_ENOENT, "no job '%s'", id);
    sqlite3_finalize (stmt);
    json_t *attempts = job? sf_jobs_attempts_json (self, id, err): NULL;
    if (job && !attempts)
        json_decref (job);
    else
    if (job)
        json_object_set_new (job, "attempts", attempts);
    //  A restore says what it restores where
    json_t *restore = NULL;
    if (attempts && streq (json_string_value (json_object_get (job, "strategy")),
                           SF_WIRE_RESTORE)
    &&  !(restore = sf_restores_json (self->store, id, err))) {
        json_decref (job);
        return NULL;
    }
    if (restore)
        json_object_set_new (job, "restore", restore);
    //  A verification says what it checks and what it found
    json_t *verify = NULL;
    if (attempts && streq (json_string_value (json_object_get (job, "strategy")),
                           SF_WIRE_VERIFY)
    &&  !(verify = sf_verifies_json (self->store, id, err))) {
        json_decref (job);
        return NULL;
    }
    if (verify)
        json_object_set_new (job, "verify", verify);
    return attempts? job: NULL;
}

json_t *
sf_jobs_list_json (sf_jobs_t *self, sf_err_t *err)
{
    assert (self);
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT " JOB_COLUMNS " FROM jobs ORDER BY seq", "");
    if (!stmt)
        return NULL;
    json_t *jobs = json_array ();
    int rc;
    while ((rc = sf_store_step (self->store, stmt, err)) == 1) {
        json_t *job = s_job_json (self, stmt, err);
        if (!job) {
            rc = -1;
            break;
        }
        json_array_append_new (jobs, job);
    }
    sqlite3_finalize (stmt);
    if (rc < 0)
        json_decref (jobs);
    return rc < 0? NULL: jobs;
}

//  An image row (store, id, path, size, sha256, job_id, instance_name,
//  disk_target, created, missing, parent_id, own_bytes, checkpoint, and its
//  last ended verification) as the CLI shows it; missing is null, or when
//  the reconciler found its object gone; verify is null, or {job_id, ok,
//  boot, booted, time_to_life_ms, text, at}
#define IMAGE_ROW \
    "images.store, images.id, images.path, images.size, images.sha256," \
    " images.job_id, images.instance_name, images.disk_target, images.created," \
    " images.missing, images.parent_id, images.own_bytes, images.checkpoint, v.job_id, v.ok, v.boot, v.booted, v.time_to_life_ms, v.text, v.at" \
    " FROM images LEFT JOIN verifications v ON v.rowid = (SELECT rowid FROM" \
    " verifications w WHERE w.image_store = images.store AND w.image_id = images.id" \
    " AND w.ok >= 0 ORDER BY w.at DESC, w.rowid DESC LIMIT 1)"

static json_t *
s_image_verify (sqlite3_stmt *stmt)
{
    if (sqlite3_column_type (stmt, 13) == SQLITE_NULL)
        return json_null ();
    return json_pack ("{s:s, s:b, s:b, s:b, s:I, s:s, s:o}",
        "job_id", sf_store_text (stmt, 13), "ok", (int) sqlite3_column_int64 (stmt, 14),
        "boot", (int) sqlite3_column_int64 (stmt, 15),
        "booted", (int) sqlite3_column_int64 (stmt, 16),
        "time_to_life_ms", (json_int_t) sqlite3_column_int64 (stmt, 17),
        "text", sf_store_text (stmt, 18), "at", s_time_json (sqlite3_column_int64 (stmt, 19)));
}

static json_t *
s_image_row (void *arg, sqlite3_stmt *stmt, sf_err_t *err)
{
    (void) arg;
    (void) err;
    return json_pack ("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:I, s:o, s:o}",
        "store", sf_store_text (stmt, 0),
        "id", sf_store_text (stmt, 1),
        "path", sf_store_text (stmt, 2),
        "size", (json_int_t) sqlite3_column_int64 (stmt, 3),
        "sha256", sf_store_text (stmt, 4),
        "job_id", sf_store_text (stmt, 5),
        "instance", sf_store_text (stmt, 6),
        "disk_target", sf_store_text (stmt, 7),
        "created", s_time_json (sqlite3_column_int64 (stmt, 8)),
        "missing", s_time_json (sqlite3_column_int64 (stmt, 9)),
        "parent", s_string_or_null (sf_store_text (stmt, 10)),
        "own_bytes", (json_int_t) sqlite3_column_int64 (stmt, 11),
        "checkpoint", s_string_or_null (sf_store_text (stmt, 12)),
        "verify", s_image_verify (stmt));
}

json_t *
sf_jobs_images_json (sf_jobs_t *self, sf_err_t *err)
{
    assert (self);
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT " IMAGE_ROW " ORDER BY images.created, images.rowid", "");
    if (!stmt)
        return NULL;
    json_t *images = json_array ();
    int rc;
    while ((rc = sf_store_step (self->store, stmt, err)) == 1)
        json_array_append_new (images, s_image_row (NULL, stmt, err));
    sqlite3_finalize (stmt);
    if (rc < 0)
        json_decref (images);
    return rc < 0? NULL: images;
}

//  Old history

int64_t
sf_jobs_prune (sf_jobs_t *self, int64_t before_ms, int64_t batch, sf_err_t *err)
{
    assert (self && batch > 0);
    if (sf_store_begin (self->store, err))
        return -1;
    int64_t pruned = -1;
    if (sf_store_exec (self->store, err,
            "CREATE TEMP TABLE IF NOT EXISTS prune_jobs (id TEXT PRIMARY KEY)", "") < 0
    ||  sf_store_exec (self->store, err, "DELETE FROM prune_jobs", "") < 0
    ||  sf_store_exec (self->store, err,
            "INSERT INTO prune_jobs SELECT id FROM jobs"
            " WHERE state IN ('done', 'failed', 'skipped', 'cancelled') AND updated < ?1"
            "   AND NOT EXISTS (SELECT 1 FROM images WHERE images.job_id = jobs.id)"
            "   AND NOT EXISTS (SELECT 1 FROM bulks WHERE bulks.id = jobs.bulk_id"
            "                   AND bulks.state = 'running')"
            " ORDER BY seq LIMIT ?2", "ii", before_ms, batch) < 0
    ||  sf_store_exec (self->store, err,
            "DELETE FROM job_events WHERE job_id IN (SELECT id FROM prune_jobs)", "") < 0
    ||  sf_store_exec (self->store, err,
            "DELETE FROM job_attempts WHERE job_id IN (SELECT id FROM prune_jobs)", "") < 0
    ||  sf_store_exec (self->store, err,
            "DELETE FROM restores WHERE job_id IN (SELECT id FROM prune_jobs)", "") < 0
    ||  sf_store_exec (self->store, err,
            "DELETE FROM instance_xml WHERE job_id IN (SELECT id FROM prune_jobs)", "") < 0
    ||  sf_store_exec (self->store, err,
            "DELETE FROM verifications WHERE job_id IN (SELECT id FROM prune_jobs)"
            " AND NOT EXISTS (SELECT 1 FROM images i WHERE i.store = image_store"
            " AND i.id = image_id)", "") < 0
    ||  (pruned = sf_store_exec (self->store, err,
            "DELETE FROM jobs WHERE id IN (SELECT id FROM prune_jobs)", "")) < 0) {
        sf_store_rollback (self->store);
        return -1;
    }
    return sf_store_commit (self->store, err)? -1: pruned;
}

//  Pages of jobs (cursor: the seq, column 23) and images (cursor:
//  [created, store, id])

static json_t *
s_job_row (void *arg, sqlite3_stmt *stmt, sf_err_t *err)
{
    return s_job_json ((sf_jobs_t *) arg, stmt, err);
}

static char *
s_job_cursor (sqlite3_stmt *stmt)
{
    return zsys_sprintf ("%" PRId64, (int64_t) sqlite3_column_int64 (stmt, JOB_COLUMNS_COUNT));
}

json_t *
sf_jobs_page_json (sf_jobs_t *self, const char *after, int64_t limit, char **next_p,
                   sf_err_t *err)
{
    assert (self && limit > 0);
    int64_t seq = 0;
    if (after) {
        char *end = NULL;
        errno = 0;
        long long parsed = strtoll (after, &end, 10);
        if (!isdigit ((unsigned char) *after) || *end || errno || parsed < 0)
            return sf_err_set (err, SF_EINVAL, "'%.64s' is not a cursor of the jobs "
                               "(use the 'next' of the previous page)", after), NULL;
        seq = parsed;
    }
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT " JOB_COLUMNS ", seq FROM jobs WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        "ii", seq, limit + 1);
    if (!stmt)
        return NULL;
    return sf_store_page (self->store, stmt, limit, s_job_row, s_job_cursor, self,
                          next_p, err);
}

static char *
s_image_cursor (sqlite3_stmt *stmt)
{
    json_t *cursor = json_pack ("[I, s, s]", (json_int_t) sqlite3_column_int64 (stmt, 8),
                                sf_store_text (stmt, 0), sf_store_text (stmt, 1));
    char *text = json_dumps (cursor, JSON_COMPACT);
    json_decref (cursor);
    return text;
}

json_t *
sf_jobs_images_page_json (sf_jobs_t *self, const char *after, int64_t limit,
                          char **next_p, sf_err_t *err)
{
    assert (self && limit > 0);
    json_t *cursor = NULL;
    if (after && !(cursor = sf_store_cursor_parse (after, "iss", err)))
        return NULL;
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT " IMAGE_ROW
        " WHERE ?1 = 0 OR (images.created, images.store, images.id) > (?2, ?3, ?4)"
        " ORDER BY images.created, images.store, images.id LIMIT ?5",
        "iissi", (int64_t) (cursor != NULL),
        (int64_t) json_integer_value (json_array_get (cursor, 0)),
        json_string_value (json_array_get (cursor, 1)),
        json_string_value (json_array_get (cursor, 2)), limit + 1);
    json_decref (cursor);
    if (!stmt)
        return NULL;
    return sf_store_page (self->store, stmt, limit, s_image_row, s_image_cursor, NULL,
                          next_p, err);
}

//  --------------------------------------------------------------------------
//  What retention reads and forgets

#define IMAGE_COLUMNS \
    "i.store, i.id, i.path, i.size, i.sha256, i.disk_target, i.format, i.job_id," \
    " j.node"

void
sf_image_rec_destroy (sf_image_rec_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_image_rec_t *self = *self_p;
        free (self->image.store);
        free (self->image.id);
        free (self->image.path);
        free (self->image.sha256);
        free (self->image.disk_target);
        free (self->image.format);
        free (self->job_id);
        free (self->node);
        free (self);
        *self_p = NULL;
    }
}

static sf_image_rec_t *
s_image_rec_new (sqlite3_stmt *stmt)
{
    sf_image_rec_t *self = (sf_image_rec_t *) zmalloc (sizeof (sf_image_rec_t));
    sf_image_t init = SF_IMAGE_INIT;
    self->image = init;
    self->image.store = strdup (sf_store_text (stmt, 0));
    self->image.id = strdup (sf_store_text (stmt, 1));
    self->image.path = strdup (sf_store_text (stmt, 2));
    self->image.size = (uint64_t) sqlite3_column_int64 (stmt, 3);
    self->image.sha256 = strdup (sf_store_text (stmt, 4));
    self->image.disk_target = strdup (sf_store_text (stmt, 5));
    self->image.format = strdup (sf_store_text (stmt, 6));
    self->job_id = strdup (sf_store_text (stmt, 7));
    self->node = strdup (sf_store_text (stmt, 8));
    return self;
}

int
sf_jobs_image (sf_jobs_t *self, const char *store, const char *id,
               sf_image_rec_t **rec_p, sf_err_t *err)
{
    assert (self && store && id && rec_p);
    *rec_p = NULL;
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT " IMAGE_COLUMNS " FROM images i LEFT JOIN jobs j ON j.id = i.job_id"
        " WHERE i.store = ?1 AND i.id = ?2", "ss", store, id);
    if (!stmt)
        return -1;
    int rc = sf_store_step (self->store, stmt, err);
    if (rc == 1)
        *rec_p = s_image_rec_new (stmt);
    sqlite3_finalize (stmt);
    return rc;
}

zlistx_t *
sf_jobs_images (sf_jobs_t *self, const char *job_id, sf_err_t *err)
{
    assert (self && job_id);
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT " IMAGE_COLUMNS " FROM images i JOIN jobs j ON i.job_id = j.id"
        " WHERE i.job_id = ?1 ORDER BY i.store, i.id", "s", job_id);
    if (!stmt)
        return NULL;
    zlistx_t *images = zlistx_new ();
    zlistx_set_destructor (images, (zlistx_destructor_fn *) sf_image_rec_destroy);
    int rc;
    while ((rc = sf_store_step (self->store, stmt, err)) == 1)
        zlistx_add_end (images, s_image_rec_new (stmt));
    sqlite3_finalize (stmt);
    if (rc < 0)
        zlistx_destroy (&images);
    return images;
}

int
sf_jobs_image_forget (sf_jobs_t *self, const char *store, const char *id,
                      sf_err_t *err)
{
    assert (self && store && id);
    return sf_store_exec (self->store, err,
        "DELETE FROM images WHERE store = ?1 AND id = ?2", "ss", store, id) < 0? -1: 0;
}

void
sf_backup_rec_destroy (sf_backup_rec_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free ((*self_p)->job_id);
        free (*self_p);
        *self_p = NULL;
    }
}

zlistx_t *
sf_jobs_backups (sf_jobs_t *self, zlistx_t *bulk_ids, const char *node,
                 const char *instance_uuid, sf_err_t *err)
{
    assert (self && bulk_ids && node && instance_uuid);
    //  The bulk ids go in as one JSON array, read back with json_each
    json_t *ids = json_array ();
    const char *bulk_id = (const char *) zlistx_first (bulk_ids);
    for (; bulk_id; bulk_id = (const char *) zlistx_next (bulk_ids))
        json_array_append_new (ids, json_string (bulk_id));
    char *ids_json = json_dumps (ids, JSON_COMPACT);
    json_decref (ids);
    assert (ids_json);
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT j.id, MIN (i.created) FROM images i JOIN jobs j ON i.job_id = j.id"
        " WHERE j.bulk_id IN (SELECT value FROM json_each (?1))"
        " AND j.instance_uuid = ?2 AND j.node = ?3 AND j.state = 'done'"
        " GROUP BY j.id ORDER BY j.seq",
        "sss", ids_json, instance_uuid, node);
    free (ids_json);
    if (!stmt)
        return NULL;
    zlistx_t *backups = zlistx_new ();
    zlistx_set_destructor (backups, (zlistx_destructor_fn *) sf_backup_rec_destroy);
    int rc;
    while ((rc = sf_store_step (self->store, stmt, err)) == 1) {
        sf_backup_rec_t *backup = (sf_backup_rec_t *) zmalloc (sizeof (sf_backup_rec_t));
        backup->job_id = strdup (sf_store_text (stmt, 0));
        backup->created = sqlite3_column_int64 (stmt, 1);
        zlistx_add_end (backups, backup);
    }
    sqlite3_finalize (stmt);
    if (rc < 0)
        zlistx_destroy (&backups);
    return backups;
}

zlistx_t *
sf_jobs_done_instances (sf_jobs_t *self, const char *bulk_id, sf_err_t *err)
{
    assert (self && bulk_id);
    //  One done job per instance, which is (node, uuid)
    return s_job_recs (self, sf_store_prepare (self->store, err,
        "SELECT " SF_JOBS_REC_COLUMNS " FROM jobs WHERE bulk_id = ?1 AND state = 'done'"
        " GROUP BY node, instance_uuid ORDER BY node, instance_uuid", "s", bulk_id), err);
}

//  --------------------------------------------------------------------------
//  What sf_jobs_cancel.c (cancel and retries) uses of this file

void
sf_jobs_set_retry (sf_jobs_t *self, int64_t max_attempts, int64_t backoff_ms)
{
    assert (self);
    self->max_attempts = max_attempts > 0? max_attempts: 1;
    self->backoff_ms = backoff_ms > 0? backoff_ms: 0;
}

void
sf_jobs_retry_policy (sf_jobs_t *self, int64_t *max_attempts, int64_t *backoff_ms)
{
    assert (self && max_attempts && backoff_ms);
    *max_attempts = self->max_attempts;
    *backoff_ms = self->backoff_ms;
}

zlistx_t *
sf_jobs_take_retried (sf_jobs_t *self)
{
    assert (self);
    zlistx_t *retried = self->retried;
    self->retried = zlistx_new ();
    zlistx_set_destructor (self->retried, (zlistx_destructor_fn *) zstr_free);
    return retried;
}

sf_store_t *
sf_jobs_store (sf_jobs_t *self)
{
    assert (self);
    return self->store;
}

int
sf_jobs_end_one (sf_jobs_t *self, const char *id, const char *state, int code,
                 const char *text, sf_err_t *err)
{
    assert (self && id && state && text);
    return s_end_one (self, id, state, code, text, err);
}

zlistx_t *
sf_jobs_recs (sf_jobs_t *self, sqlite3_stmt *stmt, sf_err_t *err)
{
    assert (self);
    return s_job_recs (self, stmt, err);
}
