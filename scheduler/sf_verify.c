/*  =========================================================================
    sf_verify - the verify command (see the header)
    =========================================================================
*/
#include "sf_sched_classes.h"

SF_LOG_MODULE ("sched.verify");

//  The image a verification names, as the store has it
typedef struct {
    char store [16];
    char id [600];
    char sha256 [80];
    uint64_t size;
    int64_t missing;
    char instance_uuid [256];
    char instance_name [256];
    char node [256];            //  of the job that made it, "" if forgotten
    int64_t job_images;         //  images its job made
    int64_t xml;                //  1 if its job kept the guest's XML
} image_t;

static int
s_image (sf_store_t *store, const char *id, image_t *image, sf_err_t *err)
{
    sqlite3_stmt *stmt = sf_store_prepare (store, err,
        "SELECT i.store, i.id, i.sha256, i.size, i.missing, i.instance_uuid,"
        " i.instance_name, COALESCE (j.node, ''),"
        " (SELECT COUNT (*) FROM images o WHERE o.job_id = i.job_id),"
        " (SELECT COUNT (*) FROM instance_xml x WHERE x.job_id = i.job_id)"
        " FROM images i LEFT JOIN jobs j ON j.id = i.job_id WHERE i.id = ?1"
        " ORDER BY i.store", "s", id);
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
        image->job_images = sqlite3_column_int64 (stmt, 8);
        image->xml = sqlite3_column_int64 (stmt, 9);
    }
    sqlite3_finalize (stmt);
    if (rc < 0)
        return -1;
    if (rows == 0)
        return sf_err_set (err, SF_ENOENT, "no image '%.200s' (see 'snapfleet images')", id);
    if (rows > 1)
        return sf_err_set (err, SF_EINVAL, "image id '%.200s' is in %d stores; cannot tell "
                           "which to verify", id, rows);
    return 0;
}

static int
s_check (const image_t *image, bool boot, sf_err_t *err)
{
    if (!streq (image->store, "dir"))
        return sf_err_set (err, SF_ENOTSUP, "image '%s' is in store '%s': only images of a "
                           "dir store can be verified yet", image->id, image->store);
    if (image->missing)
        return sf_err_set (err, SF_ESTATE, "image '%s' is missing from its store (the "
                           "reconciler found it gone); not verified", image->id);
    if (strlen (image->sha256) != 64 || strspn (image->sha256, "0123456789abcdef") != 64)
        return sf_err_set (err, SF_ESTATE, "image '%s' has no recorded SHA-256 to check "
                           "it against; not verified", image->id);
    if (boot && !image->xml)
        return sf_err_set (err, SF_ESTATE, "the job that made image '%s' kept no domain "
                           "XML, so no copy of the guest can boot; verify it without --boot",
                           image->id);
    if (boot && image->job_images > 1)
        return sf_err_set (err, SF_ENOTSUP, "image '%s' is one of %" PRId64 " disks its job "
                           "made: --boot boots single-disk guests only yet", image->id,
                           image->job_images);
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

json_t *
sf_verify_start (sf_store_t *store, sf_jobs_t *jobs, sf_dispatch_t *dispatch,
                 const sf_verify_req_t *req, sf_err_t *err)
{
    assert (store && jobs && dispatch && req);
    if (!req->image_id || !*req->image_id) {
        sf_err_set (err, SF_EINVAL, "name the image to verify");
        return NULL;
    }
    image_t image;
    if (s_image (store, req->image_id, &image, err) || s_check (&image, req->boot, err))
        return NULL;
    const char *node = req->node? req->node: image.node;
    if (s_check_node (store, node, err))
        return NULL;
    sf_job_spec_t spec = {
        .instance_uuid = image.instance_uuid, .instance_name = image.instance_name,
        .node = node, .strategy = SF_WIRE_VERIFY, .bulk_id = "",
        .est_bytes = image.size, .waiting = true
    };
    char id [32];
    if (sf_store_begin (store, err))
        return NULL;
    if (sf_jobs_create (jobs, &spec, id, sizeof (id), err)
    ||  sf_verifies_add (store, id, image.store, image.id, req->boot, err)) {
        sf_store_rollback (store);
        return NULL;
    }
    if (sf_store_commit (store, err))
        return NULL;
    sf_dispatch_job_t job = {
        .admit = { .id = id, .node = node, .seq = strtoull (id + 1, NULL, 10) },
        .bulk_id = "", .instance_uuid = image.instance_uuid, .strategy = SF_WIRE_VERIFY,
        .attempt = 1
    };
    sf_restores_admit (image.size, &job.admit);
    sf_logctx_t ctx = { .node = node, .job_id = id };
    if (sf_dispatch_queue (dispatch, &job)) {
        SF_ERROR (&ctx, "admission refused the verify job");
        sf_jobs_fail (jobs, id, SF_ESTATE, "admission refused the job", err);
    }
    else
        SF_NOTICE (&ctx, "verification of image '%s'%s queued", image.id,
                   req->boot? " with a boot": "");
    sf_dispatch_pump (dispatch);
    return sf_jobs_json (jobs, id, err);
}
