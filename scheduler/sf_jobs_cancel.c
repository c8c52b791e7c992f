/*  =========================================================================
    sf_jobs_cancel - the methods of sf_jobs for cancel and retries (see
    "Cancel and retries" in sf_jobs.h), in a file of their own

    Each runs in the caller's transaction (the hooks: a result, a job the
    scheduler ends) or in its own (sf_jobs_cancel), on sf_jobs' store.
    =========================================================================
*/
#include "sf_sched_classes.h"

SF_LOG_MODULE ("sched.jobs");

static json_t *
s_time (int64_t ms)
{
    char buf [40];
    return ms > 0? json_string (sf_time_rfc3339 (ms, buf, sizeof (buf))): json_null ();
}

int64_t
sf_jobs_backoff (int64_t backoff_ms, uint32_t attempt)
{
    int64_t delay = backoff_ms > 0? backoff_ms: 0;
    for (uint32_t i = 1; i < attempt && delay < SF_JOBS_BACKOFF_MAX; i++)
        delay *= 2;
    return delay < SF_JOBS_BACKOFF_MAX? delay: SF_JOBS_BACKOFF_MAX;
}

//  The current attempt of job id ended with code and text at now: its row
//  in job_attempts (only for an attempt that was sent to its node)

int
sf_jobs_attempt_ended (sf_jobs_t *self, const char *id, int64_t code, const char *text,
                       int64_t now, sf_err_t *err)
{
    assert (self && id && text);
    return sf_store_exec (sf_jobs_store (self), err,
        "INSERT OR REPLACE INTO job_attempts (job_id, attempt, node, error_code,"
        " error_text, started, ended)"
        " SELECT id, attempt, node, ?2, ?3, attempt_started, ?4 FROM jobs"
        " WHERE id = ?1 AND " SF_JOBS_UNFINISHED " AND phase <> 'waiting'",
        "sisi", id, code, text, now) < 0? -1: 0;
}

//  A result of attempt N was applied to job id (in its transaction): the
//  attempt's row; a failure of a job whose cancel was asked for is a
//  cancel; a last failure after retries says so

int
sf_jobs_result_ended (sf_jobs_t *self, const char *id, sf_err_t *err)
{
    if (sf_store_exec (sf_jobs_store (self), err,
            "INSERT OR REPLACE INTO job_attempts (job_id, attempt, node, error_code,"
            " error_text, started, ended)"
            " SELECT id, attempt, node, error_code, error_text, attempt_started, updated"
            " FROM jobs WHERE id = ?1", "s", id) < 0
    ||  sf_store_exec (sf_jobs_store (self), err,
            "UPDATE jobs SET state = 'cancelled', phase = 'cancelled'"
            " WHERE id = ?1 AND state = 'failed' AND cancel_at > 0", "s", id) < 0
    ||  sf_store_exec (sf_jobs_store (self), err,
            "UPDATE jobs SET error_text = error_text || ' (after ' || attempt || ' attempts)'"
            " WHERE id = ?1 AND state = 'failed' AND attempt > 1", "s", id) < 0)
        return -1;
    return 0;
}

//  A failed result that may pass: queue the job for its next attempt if
//  the policy, its cancel and its window allow. Returns 1 if it did, 0 if
//  the result is to be applied as it is, -1 with err set.

int
sf_jobs_retry_result (sf_jobs_t *self, const sf_job_result_t *result, sf_err_t *err)
{
    int64_t max_attempts, backoff_ms;
    sf_jobs_retry_policy (self, &max_attempts, &backoff_ms);
    if (result->ok || !result->retryable || (int64_t) result->attempt >= max_attempts)
        return 0;
    sqlite3_stmt *stmt = sf_store_prepare (sf_jobs_store (self), err,
        "SELECT cancel_at, window_end, node FROM jobs WHERE id = ?1", "s", result->job_id);
    if (!stmt)
        return -1;
    int rc = sf_store_step (sf_jobs_store (self), stmt, err);
    int64_t now = sf_time_now_ms ();
    int64_t delay = sf_jobs_backoff (backoff_ms, result->attempt);
    bool cancelled = rc == 1 && sqlite3_column_int64 (stmt, 0) > 0;
    int64_t window_end = rc == 1? sqlite3_column_int64 (stmt, 1): 0;
    char node [256];
    snprintf (node, sizeof (node), "%s", rc == 1? sf_store_text (stmt, 2): "");
    sqlite3_finalize (stmt);
    if (rc <= 0)
        return rc;
    sf_logctx_t ctx = { .node = node, .job_id = result->job_id };
    if (cancelled || (window_end > 0 && now + delay >= window_end)) {
        SF_INFO (&ctx, "attempt %u failed; no retry: %s", result->attempt,
                 cancelled? "its cancel was asked for": "its window ends before");
        return 0;
    }
    int code = result->error && result->error->code? result->error->code: SF_EIO;
    const char *text = result->error && result->error->text && *result->error->text
                     ? result->error->text: "worker reported a failure without an error";
    char note [512];
    snprintf (note, sizeof (note), "attempt %u failed (%s: %s); attempt %u in %" PRId64 "s",
              result->attempt, sf_err_name (code), text, result->attempt + 1,
              (delay + 999) / 1000);
    if (sf_jobs_attempt_ended (self, result->job_id, code, text, now, err)
    ||  sf_store_exec (sf_jobs_store (self), err,
            "INSERT INTO job_events (job_id, phase, at_ms, text)"
            " VALUES (?1, 'retry', ?2, ?3)", "sis", result->job_id, now, note) < 0
    ||  sf_store_exec (sf_jobs_store (self), err,
            "UPDATE jobs SET state = 'queued', phase = 'waiting', attempt = attempt + 1,"
            " not_before = ?2, updated = ?3, error_code = ?4, error_text = ?5,"
            " attempt_started = 0 WHERE id = ?1", "siiis", result->job_id, now + delay,
            now, (int64_t) code, text) < 0)
        return -1;
    SF_NOTICE (&ctx, "%s", note);
    return 1;
}

int
sf_jobs_cancel (sf_jobs_t *self, const char *id, char *node, size_t size,
                uint32_t *attempt, sf_err_t *err)
{
    assert (self && id && node && attempt);
    if (sf_store_begin (sf_jobs_store (self), err))
        return -1;
    sqlite3_stmt *stmt = sf_store_prepare (sf_jobs_store (self), err,
        "SELECT state, phase, node, attempt FROM jobs WHERE id = ?1", "s", id);
    int rc = stmt? sf_store_step (sf_jobs_store (self), stmt, err): -1;
    char state [32] = "", phase [32] = "";
    if (rc == 1) {
        snprintf (state, sizeof (state), "%s", sf_store_text (stmt, 0));
        snprintf (phase, sizeof (phase), "%s", sf_store_text (stmt, 1));
        snprintf (node, size, "%s", sf_store_text (stmt, 2));
        *attempt = (uint32_t) sqlite3_column_int64 (stmt, 3);
    }
    sqlite3_finalize (stmt);
    if (rc == 0)
        rc = sf_err_set (err, SF_ENOENT, "no job '%s'", id);
    else
    if (rc == 1 && !streq (state, "queued") && !streq (state, "running"))
        rc = sf_err_set (err, SF_ESTATE, "job '%s' has already ended: %s", id, state);
    else
    if (rc == 1 && streq (phase, "waiting")) {
        char text [256];
        snprintf (text, sizeof (text), "cancelled by the operator before it was sent to "
                  "node '%s'", node);
        rc = sf_jobs_end_one (self, id, "cancelled", SF_ECANCELED, text, err)? -1
           : SF_JOBS_CANCEL_NOW;
    }
    else
    if (rc == 1) {
        int64_t now = sf_time_now_ms ();
        rc = sf_store_exec (sf_jobs_store (self), err,
                "INSERT INTO job_events (job_id, phase, at_ms, text)"
                " SELECT id, 'cancel', ?2, 'cancel asked for; sent to node ' || node"
                " FROM jobs WHERE id = ?1 AND cancel_at = 0", "si", id, now) < 0
          || sf_store_exec (sf_jobs_store (self), err,
                "UPDATE jobs SET cancel_at = ?2, updated = ?2 WHERE id = ?1"
                " AND cancel_at = 0", "si", id, now) < 0? -1: SF_JOBS_CANCEL_SEND;
    }
    if (rc < 0) {
        sf_store_rollback (sf_jobs_store (self));
        return -1;
    }
    return sf_store_commit (sf_jobs_store (self), err)? -1: rc;
}

zlistx_t *
sf_jobs_cancelling (sf_jobs_t *self, const char *node, sf_err_t *err)
{
    assert (self && node);
    return sf_jobs_recs (self, sf_store_prepare (sf_jobs_store (self), err,
        "SELECT " SF_JOBS_REC_COLUMNS " FROM jobs WHERE node = ?1 AND " SF_JOBS_UNFINISHED
        " AND phase <> 'waiting' AND cancel_at > 0 ORDER BY seq", "s", node), err);
}

zlistx_t *
sf_jobs_bulk_unfinished (sf_jobs_t *self, const char *bulk_id, sf_err_t *err)
{
    assert (self && bulk_id);
    return sf_store_strings (sf_jobs_store (self), err,
        "SELECT id FROM jobs WHERE bulk_id = ?1 AND " SF_JOBS_UNFINISHED " ORDER BY seq",
        "s", bulk_id);
}

int
sf_jobs_rec (sf_jobs_t *self, const char *id, sf_job_rec_t **rec_p, sf_err_t *err)
{
    assert (self && id && rec_p);
    *rec_p = NULL;
    zlistx_t *recs = sf_jobs_recs (self, sf_store_prepare (sf_jobs_store (self), err,
        "SELECT " SF_JOBS_REC_COLUMNS " FROM jobs WHERE id = ?1 AND " SF_JOBS_UNFINISHED, "s", id),
        err);
    if (!recs)
        return -1;
    if (zlistx_first (recs))
        *rec_p = (sf_job_rec_t *) zlistx_detach_cur (recs);
    zlistx_destroy (&recs);
    return *rec_p? 1: 0;
}

//  Every attempt of job id that ended, in order: [{"attempt","node",
//  "error","started","ended"}], error null or {"code","name","text"}

json_t *
sf_jobs_attempts_json (sf_jobs_t *self, const char *id, sf_err_t *err)
{
    sqlite3_stmt *stmt = sf_store_prepare (sf_jobs_store (self), err,
        "SELECT attempt, node, error_code, error_text, started, ended FROM job_attempts"
        " WHERE job_id = ?1 ORDER BY attempt", "s", id);
    if (!stmt)
        return NULL;
    json_t *attempts = json_array ();
    int rc;
    while ((rc = sf_store_step (sf_jobs_store (self), stmt, err)) == 1) {
        int64_t code = sqlite3_column_int64 (stmt, 2);
        json_t *error = code? json_pack ("{s:I, s:s, s:s}", "code", (json_int_t) code,
                                         "name", sf_err_name ((int) code),
                                         "text", sf_store_text (stmt, 3))
                            : json_null ();
        json_array_append_new (attempts, json_pack ("{s:I, s:s, s:o, s:o, s:o}",
            "attempt", (json_int_t) sqlite3_column_int64 (stmt, 0),
            "node", sf_store_text (stmt, 1), "error", error,
            "started", s_time (sqlite3_column_int64 (stmt, 4)),
            "ended", s_time (sqlite3_column_int64 (stmt, 5))));
    }
    sqlite3_finalize (stmt);
    if (rc < 0)
        json_decref (attempts);
    return rc < 0? NULL: attempts;
}
