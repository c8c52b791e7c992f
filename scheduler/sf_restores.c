/*  =========================================================================
    sf_restores - the restores table (see the header)
    =========================================================================
*/
#include "sf_sched_classes.h"

SF_LOG_MODULE ("sched.restores");

int
sf_restores_add (sf_store_t *store, const char *job_id, const char *image_store,
                 const char *image_id, const char *target, const char *format,
                 bool flatten, sf_err_t *err)
{
    assert (store && job_id && image_store && image_id && target && format);
    return sf_store_exec (store, err,
        "INSERT INTO restores (job_id, image_store, image_id, target, format, flatten)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6)", "sssssi", job_id, image_store, image_id, target,
        format, (int64_t) flatten) < 0? -1: 0;
}

static char *
s_dup (sqlite3_stmt *stmt, int col)
{
    return strdup (sf_store_text (stmt, col));
}

int
sf_restores_load (sf_store_t *store, const char *job_id, sf_restore_t **restore_p,
                  sf_err_t *err)
{
    assert (store && job_id && restore_p);
    *restore_p = NULL;
    sqlite3_stmt *stmt = sf_store_prepare (store, err,
        "SELECT r.target, r.format, i.store, i.id, i.path, i.size, i.sha256,"
        " i.disk_target, i.format, r.flatten, r.as_domain, COALESCE (x.xml, '') FROM restores r"
        " JOIN images i ON i.store = r.image_store AND i.id = r.image_id"
        " LEFT JOIN instance_xml x ON x.job_id = i.job_id WHERE r.job_id = ?1", "s", job_id);
    if (!stmt)
        return -1;
    int rc = sf_store_step (store, stmt, err);
    if (rc == 1) {
        sf_image_t *image = sf_imgrec_image (stmt, 2);
        sf_restore_t *restore = (sf_restore_t *) zmalloc (sizeof (sf_restore_t));
        *restore = (sf_restore_t) SF_RESTORE_INIT;
        restore->image = image;
        //  An RBD target is kept as "rbd:POOL/NAME"
        const char *target = sf_store_text (stmt, 0);
        bool rbd = strncmp (target, SF_RESTORES_RBD, strlen (SF_RESTORES_RBD)) == 0;
        restore->to_file = strdup (rbd? "": target);
        restore->to_rbd = strdup (rbd? target + strlen (SF_RESTORES_RBD): "");
        restore->format = s_dup (stmt, 1);
        restore->flatten = sqlite3_column_int64 (stmt, 9) != 0;
        restore->as_domain = s_dup (stmt, 10);
        //  The XML goes with --as-domain only (sf_wire: the two together)
        restore->domain_xml = *restore->as_domain? s_dup (stmt, 11): strdup ("");
        *restore_p = restore;
    }
    sqlite3_finalize (stmt);
    return rc;
}

void
sf_restores_free (sf_restore_t **restore_p)
{
    assert (restore_p);
    sf_restore_t *restore = *restore_p;
    if (!restore)
        return;
    sf_image_t *image = restore->image;
    sf_imgrec_image_free (&image);
    free (restore->to_file);
    free (restore->to_rbd);
    free (restore->format);
    free (restore->as_domain);
    free (restore->domain_xml);
    free (restore);
    *restore_p = NULL;
}

//  A restore's capture is its hash check and conversion, after the grant:
//  before it, it only checks its target (a second)
#define CAPTURE_MS 1000

void
sf_restores_admit (uint64_t size, sf_admit_job_t *job)
{
    assert (job);
    job->pausing = false;
    job->snap_op = false;
    job->scratch_bytes = 0;
    job->upload_bytes = size? size: 1;      //  it always waits for its grant
    job->capture_ms = CAPTURE_MS;
    job->upload_bps = 0;
}

void
sf_restores_admit_job (sf_store_t *store, const char *job_id, sf_admit_job_t *job)
{
    sf_err_t err = SF_ERR_INIT;
    sf_restore_t *restore = NULL;
    if (sf_restores_load (store, job_id, &restore, &err) < 0)
        SF_WARN (NULL, "restore job '%s': %s", job_id, err.text);
    sf_restores_admit (restore? restore->image->size: 0, job);
    sf_restores_free (&restore);
}

json_t *
sf_restores_json (sf_store_t *store, const char *job_id, sf_err_t *err)
{
    assert (store && job_id);
    sqlite3_stmt *stmt = sf_store_prepare (store, err,
        "SELECT image_store, image_id, target, format, flatten, as_domain FROM restores"
        " WHERE job_id = ?1", "s", job_id);
    if (!stmt)
        return NULL;
    json_t *json = NULL;
    int rc = sf_store_step (store, stmt, err);
    if (rc == 1)
        json = json_pack ("{s:s, s:s, s:s, s:s, s:b, s:s}", "image_store",
                          sf_store_text (stmt, 0), "image_id", sf_store_text (stmt, 1),
                          "target", sf_store_text (stmt, 2), "format", sf_store_text (stmt, 3),
                          "flatten", sqlite3_column_int64 (stmt, 4) != 0,
                          "as_domain", sf_store_text (stmt, 5));
    else
    if (rc == 0)
        json = json_object ();
    sqlite3_finalize (stmt);
    return json;
}

int
sf_restores_target_busy (sf_store_t *store, const char *node, const char *target,
                         sf_err_t *err)
{
    assert (store && node && target);
    sqlite3_stmt *stmt = sf_store_prepare (store, err,
        "SELECT 1 FROM restores r JOIN jobs j ON j.id = r.job_id"
        " WHERE (j.node = ?1 OR r.target LIKE 'rbd:%') AND r.target = ?2"
        " AND j.state IN ('queued', 'running')", "ss", node, target);
    if (!stmt)
        return -1;
    int rc = sf_store_step (store, stmt, err);
    sqlite3_finalize (stmt);
    return rc;
}
