/*  =========================================================================
    sf_restore - the restore command (see the header)
    =========================================================================
*/
#include "sf_sched_classes.h"

SF_LOG_MODULE ("sched.restore");

//  The image a restore names, as the store has it
typedef struct {
    char store [16];
    char id [600];
    char sha256 [80];
    uint64_t size;
    int64_t missing;
    char instance_uuid [256];
    char instance_name [256];
    char node [256];            //  of the job that made it, "" if forgotten
    char job_id [64];           //  the job that made it
} image_t;

//  Find the image id (in any store). Returns 0 with *image filled, or -1
//  with err set (no such image, or one in two stores).

static int
s_image (sf_store_t *store, const char *id, image_t *image, sf_err_t *err)
{
    sqlite3_stmt *stmt = sf_store_prepare (store, err,
        "SELECT i.store, i.id, i.sha256, i.size, i.missing, i.instance_uuid,"
        " i.instance_name, COALESCE (j.node, ''), i.job_id FROM images i"
        " LEFT JOIN jobs j ON j.id = i.job_id WHERE i.id = ?1 ORDER BY i.store", "s", id);
    if (!stmt)
        return -1;
    int rows = 0, rc;
    while ((rc = sf_store_step (store, stmt, err)) == 1 && ++rows == 1) {
        snprintf (image->store, sizeof (image->store), "%s", sf_store_text (stmt, 0));
        snprintf (image->id, sizeof (image->id), "%s", sf_store_text (stmt, 1));
        snprintf (image->sha256, sizeof (image->sha256), "%s", sf_store_text (stmt, 2));
        image->size = (uint64_t) sqlite3_column_int64 (stmt, 3);
        image->missing = sqlite3_column_int64 (stmt, 4);
        snprintf (image->instance_uuid, sizeof (image->instance_uuid), "%s",
                  sf_store_text (stmt, 5));
        snprintf (image->instance_name, sizeof (image->instance_name), "%s",
                  sf_store_text (stmt, 6));
        snprintf (image->node, sizeof (image->node), "%s", sf_store_text (stmt, 7));
        snprintf (image->job_id, sizeof (image->job_id), "%s", sf_store_text (stmt, 8));
    }
    sqlite3_finalize (stmt);
    if (rc < 0)
        return -1;
    if (rows == 0)
        return sf_err_set (err, SF_ENOENT, "no image '%.200s' (see 'snapfleet images')", id);
    if (rows > 1)
        return sf_err_set (err, SF_EINVAL, "image id '%.200s' is in %d stores; cannot tell "
                           "which to restore", id, rows);
    return 0;
}

//  Can a restore of image run (its store, its state, its hash)?

static int
s_check_image (const image_t *image, sf_err_t *err)
{
    if (!streq (image->store, "dir"))
        return sf_err_set (err, SF_ENOTSUP, "image '%s' is in store '%s': only images of a "
                           "dir store can be restored yet", image->id, image->store);
    if (image->missing)
        return sf_err_set (err, SF_ESTATE, "image '%s' is missing from its store (the "
                           "reconciler found it gone); not restored", image->id);
    if (strlen (image->sha256) != 64 || strspn (image->sha256, "0123456789abcdef") != 64)
        return sf_err_set (err, SF_ESTATE, "image '%s' has no recorded SHA-256 to check "
                           "it against; not restored", image->id);
    return 0;
}

static int
s_check_node (sf_store_t *store, const char *node, sf_err_t *err)
{
    if (!*node)
        return sf_err_set (err, SF_ENOENT, "the job that made the image is forgotten; "
                           "name the node that holds it (--node)");
    sqlite3_stmt *stmt = sf_store_prepare (store, err,
        "SELECT 1 FROM nodes WHERE name = ?1", "s", node);
    if (!stmt)
        return -1;
    int rc = sf_store_step (store, stmt, err);
    sqlite3_finalize (stmt);
    if (rc == 0)
        return sf_err_set (err, SF_ENOENT, "unknown node '%.200s'", node);
    return rc < 0? -1: 0;
}

//  restore --as-domain: a name snapfleet may define, the guest's XML kept
//  with the image, and an image that is its job's only one (a job of
//  several disks would need a file for each: not done yet)

static int
s_check_domain (sf_store_t *store, const image_t *image, const char *name, sf_err_t *err)
{
    if (!sf_naming_domain_valid (name))
        return sf_err_set (err, SF_EINVAL, "domain name '%.200s' is not one snapfleet defines "
                           "(1-128 of A-Z a-z 0-9 . _ : -, not starting with '.', '-' or "
                           "'snapfleet-')", name);
    sqlite3_stmt *stmt = sf_store_prepare (store, err,
        "SELECT (SELECT COUNT (*) FROM images WHERE job_id = ?1),"
        " (SELECT COUNT (*) FROM instance_xml WHERE job_id = ?1)", "s", image->job_id);
    if (!stmt)
        return -1;
    int rc = sf_store_step (store, stmt, err);
    int64_t images = rc == 1? sqlite3_column_int64 (stmt, 0): 0;
    int64_t xml = rc == 1? sqlite3_column_int64 (stmt, 1): 0;
    sqlite3_finalize (stmt);
    if (rc < 0)
        return -1;
    if (!xml)
        return sf_err_set (err, SF_ESTATE, "the job that made image '%s' kept no domain "
                           "XML (made before snapfleet kept it, or the guest's XML could "
                           "not be read); restore it with --to alone", image->id);
    if (images > 1)
        return sf_err_set (err, SF_ENOTSUP, "image '%s' is one of %" PRId64 " disks its job "
                           "made: --as-domain restores single-disk guests only yet; restore "
                           "each disk with --to", image->id, images);
    return 0;
}

//  Create the job and its restore row in one transaction; id gets its id

static int
s_create (sf_store_t *store, sf_jobs_t *jobs, const image_t *image, const char *node,
          const sf_restore_req_t *req, const char *format, char *id, size_t size,
          sf_err_t *err)
{
    sf_job_spec_t spec = {
        .instance_uuid = image->instance_uuid, .instance_name = image->instance_name,
        .node = node, .strategy = SF_WIRE_RESTORE, .bulk_id = "",
        .est_bytes = image->size, .waiting = true
    };
    if (sf_store_begin (store, err))
        return -1;
    if (sf_jobs_create (jobs, &spec, id, size, err)
    ||  sf_restores_add (store, id, image->store, image->id, req->target? req->target: "",
                         format, err)
    ||  (req->as_domain && sf_store_exec (store, err, "UPDATE restores SET as_domain = ?2"
                                          " WHERE job_id = ?1", "ss", id, req->as_domain) < 0)) {
        sf_store_rollback (store);
        return -1;
    }
    return sf_store_commit (store, err);
}

json_t *
sf_restore_start (sf_store_t *store, sf_jobs_t *jobs, sf_dispatch_t *dispatch,
                  const sf_restore_req_t *req, sf_err_t *err)
{
    assert (store && jobs && dispatch && req);
    const char *format = req->format? req->format: "qcow2";
    if (!req->image_id || !*req->image_id) {
        sf_err_set (err, SF_EINVAL, "name the image to restore");
        return NULL;
    }
    if (!req->target && !req->as_domain) {
        sf_err_set (err, SF_EINVAL, "name the file to make (--to), or the domain to define "
                    "(--as-domain)");
        return NULL;
    }
    if (req->target && sf_wire_path_check (req->target, "target", err))
        return NULL;
    if (!sf_wire_restore_format_valid (format)) {
        sf_err_set (err, SF_EINVAL, "format must be 'qcow2' or 'raw', not '%.32s'", format);
        return NULL;
    }
    image_t image;
    if (s_image (store, req->image_id, &image, err) || s_check_image (&image, err)
    ||  (req->as_domain && s_check_domain (store, &image, req->as_domain, err)))
        return NULL;
    const char *node = req->node? req->node: image.node;
    if (s_check_node (store, node, err))
        return NULL;
    int busy = req->target? sf_restores_target_busy (store, node, req->target, err): 0;
    if (busy)
        return busy < 0? NULL: (sf_err_set (err, SF_EBUSY, "another restore on node '%s' "
                                            "writes '%.200s'", node, req->target), NULL);
    char id [32];
    if (s_create (store, jobs, &image, node, req, format, id, sizeof (id), err))
        return NULL;
    sf_dispatch_job_t job = {
        .admit = { .id = id, .node = node, .seq = strtoull (id + 1, NULL, 10) },
        .bulk_id = "", .instance_uuid = image.instance_uuid, .strategy = SF_WIRE_RESTORE,
        .attempt = 1
    };
    sf_restores_admit (image.size, &job.admit);
    sf_logctx_t ctx = { .node = node, .job_id = id };
    if (sf_dispatch_queue (dispatch, &job)) {
        SF_ERROR (&ctx, "admission refused the restore job");
        sf_jobs_fail (jobs, id, SF_ESTATE, "admission refused the job", err);
    }
    else
        SF_NOTICE (&ctx, "restore of image '%s' to '%s' (%s)%s%s queued", image.id,
                   req->target? req->target: "beside the original's disk", format,
                   req->as_domain? " as domain ": "", req->as_domain? req->as_domain: "");
    sf_dispatch_pump (dispatch);
    return sf_jobs_json (jobs, id, err);
}
