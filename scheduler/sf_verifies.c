/*  =========================================================================
    sf_verifies - the verifications table (see the header)
    =========================================================================
*/
#include "sf_sched_classes.h"

SF_LOG_MODULE ("sched.verifies");

int
sf_verifies_add (sf_store_t *store, const char *job_id, const char *image_store,
                 const char *image_id, bool boot, sf_err_t *err)
{
    assert (store && job_id && image_store && image_id);
    return sf_store_exec (store, err,
        "INSERT INTO verifications (job_id, image_store, image_id, boot)"
        " VALUES (?1, ?2, ?3, ?4)", "sssi", job_id, image_store, image_id,
        (int64_t) boot) < 0? -1: 0;
}

int
sf_verifies_result (sf_store_t *store, const sf_job_result_t *result, int64_t now,
                    sf_err_t *err)
{
    assert (store && result && result->job_id);
    const sf_verify_result_t *found = result->verify;
    const char *text = found && found->text && *found->text? found->text
                     : result->error && result->error->text? result->error->text: "";
    return sf_store_exec (store, err,
        "UPDATE verifications SET ok = ?2, hash_ok = ?3, check_ok = ?4, booted = ?5,"
        " time_to_life_ms = ?6, text = ?7, at = ?8 WHERE job_id = ?1",
        "siiiiisi", result->job_id, (int64_t) (result->ok && found),
        (int64_t) (found && found->hash_ok), (int64_t) (found && found->check_ok),
        (int64_t) (found && found->booted),
        (int64_t) (found? found->time_to_life_ms: 0), text, now) < 0? -1: 0;
}

static char *
s_dup (sqlite3_stmt *stmt, int col)
{
    return strdup (sf_store_text (stmt, col));
}

int
sf_verifies_load (sf_store_t *store, const char *job_id, sf_verify_t **verify_p,
                  sf_err_t *err)
{
    assert (store && job_id && verify_p);
    *verify_p = NULL;
    sqlite3_stmt *stmt = sf_store_prepare (store, err,
        "SELECT v.boot, i.store, i.id, i.path, i.size, i.sha256, i.disk_target, i.format,"
        " COALESCE (x.xml, '') FROM verifications v JOIN images i"
        " ON i.store = v.image_store AND i.id = v.image_id"
        " LEFT JOIN instance_xml x ON x.job_id = i.job_id WHERE v.job_id = ?1", "s", job_id);
    if (!stmt)
        return -1;
    int rc = sf_store_step (store, stmt, err);
    if (rc == 1) {
        sf_image_t *image = sf_imgrec_image (stmt, 1);
        sf_verify_t *verify = (sf_verify_t *) zmalloc (sizeof (sf_verify_t));
        *verify = (sf_verify_t) SF_VERIFY_INIT;
        verify->image = image;
        verify->boot = sqlite3_column_int64 (stmt, 0) != 0;
        verify->domain_xml = verify->boot? s_dup (stmt, 8): strdup ("");
        verify->life_pattern = strdup ("");
        *verify_p = verify;
    }
    sqlite3_finalize (stmt);
    return rc;
}

void
sf_verifies_free (sf_verify_t **verify_p)
{
    assert (verify_p);
    sf_verify_t *verify = *verify_p;
    if (!verify)
        return;
    sf_image_t *image = verify->image;
    sf_imgrec_image_free (&image);
    free (verify->domain_xml);
    free (verify->life_pattern);
    free (verify);
    *verify_p = NULL;
}

void
sf_verifies_admit_job (sf_store_t *store, const char *job_id, sf_admit_job_t *job)
{
    sf_err_t err = SF_ERR_INIT;
    int64_t size = 0;
    sqlite3_stmt *stmt = sf_store_prepare (store, &err,
        "SELECT i.size FROM verifications v JOIN images i ON i.store = v.image_store"
        " AND i.id = v.image_id WHERE v.job_id = ?1", "s", job_id);
    if (stmt && sf_store_step (store, stmt, &err) == 1)
        size = sqlite3_column_int64 (stmt, 0);
    sqlite3_finalize (stmt);
    if (err.code)
        SF_WARN (NULL, "verify job '%s': %s", job_id, err.text);
    sf_restores_admit ((uint64_t) size, job);
}

#define COLUMNS "image_store, image_id, boot, ok, hash_ok, check_ok, booted," \
                " time_to_life_ms, text, job_id, at"

static json_t *
s_row (sqlite3_stmt *stmt)
{
    int64_t ok = sqlite3_column_int64 (stmt, 3);
    return json_pack ("{s:s, s:s, s:b, s:o, s:b, s:b, s:b, s:I, s:s}",
        "image_store", sf_store_text (stmt, 0), "image_id", sf_store_text (stmt, 1),
        "boot", (int) sqlite3_column_int64 (stmt, 2),
        "ok", ok < 0? json_null (): json_boolean (ok),
        "hash_ok", (int) sqlite3_column_int64 (stmt, 4),
        "check_ok", (int) sqlite3_column_int64 (stmt, 5),
        "booted", (int) sqlite3_column_int64 (stmt, 6),
        "time_to_life_ms", (json_int_t) sqlite3_column_int64 (stmt, 7),
        "text", sf_store_text (stmt, 8));
}

json_t *
sf_verifies_json (sf_store_t *store, const char *job_id, sf_err_t *err)
{
    assert (store && job_id);
    sqlite3_stmt *stmt = sf_store_prepare (store, err,
        "SELECT " COLUMNS " FROM verifications WHERE job_id = ?1", "s", job_id);
    if (!stmt)
        return NULL;
    int rc = sf_store_step (store, stmt, err);
    json_t *json = rc == 1? s_row (stmt): rc == 0? json_object (): NULL;
    sqlite3_finalize (stmt);
    return json;
}

json_t *
sf_verifies_last_json (sf_store_t *store, const char *image_store, const char *image_id,
                       sf_err_t *err)
{
    assert (store && image_store && image_id);
    sqlite3_stmt *stmt = sf_store_prepare (store, err,
        "SELECT " COLUMNS " FROM verifications WHERE image_store = ?1 AND image_id = ?2"
        " AND ok >= 0 ORDER BY at DESC, rowid DESC LIMIT 1", "ss", image_store, image_id);
    if (!stmt)
        return NULL;
    int rc = sf_store_step (store, stmt, err);
    json_t *json = NULL;
    if (rc == 1) {
        json = s_row (stmt);
        json_object_set_new (json, "job_id", json_string (sf_store_text (stmt, 9)));
        json_object_set_new (json, "at", json_integer (sqlite3_column_int64 (stmt, 10)));
    }
    else
    if (rc == 0)
        json = json_null ();
    sqlite3_finalize (stmt);
    return json;
}
