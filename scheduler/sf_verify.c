/*  =========================================================================
    sf_verify - the verify command (see the header)
    =========================================================================
*/
#include "sf_sched_classes.h"

SF_LOG_MODULE ("sched.verify");

static int
s_check (const sf_imgrec_t *image, bool boot, sf_err_t *err)
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

json_t *
sf_verify_start (sf_store_t *store, sf_jobs_t *jobs, sf_dispatch_t *dispatch,
                 const sf_verify_req_t *req, sf_err_t *err)
{
    assert (store && jobs && dispatch && req);
    if (!req->image_id || !*req->image_id) {
        sf_err_set (err, SF_EINVAL, "name the image to verify");
        return NULL;
    }
    sf_imgrec_t image;
    if (sf_imgrec_find (store, req->image_id, "verify", &image, err) || s_check (&image, req->boot, err))
        return NULL;
    const char *node = req->node? req->node: image.node;
    if (sf_imgrec_check_node (store, node, err))
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
