/*  =========================================================================
    sf_restore - the restore command (see the header)
    =========================================================================
*/
#include "sf_sched_classes.h"

SF_LOG_MODULE ("sched.restore");

//  Can a restore of image run (its store, its state, its hash)? An RBD
//  clone has no hash (no bytes were copied); only it can be flattened

static int
s_check_image (const sf_imgrec_t *image, const sf_restore_req_t *req, sf_err_t *err)
{
    bool rbd = streq (image->store, "rbd");
    if (!rbd && !streq (image->store, "dir"))
        return sf_err_set (err, SF_ENOTSUP, "image '%s' is in store '%s': only images of a "
                           "dir store and RBD clones can be restored yet", image->id,
                           image->store);
    if (req->flatten && !rbd)
        return sf_err_set (err, SF_EINVAL, "--flatten applies to an RBD clone; image '%s' "
                           "is in store '%s'", image->id, image->store);
    if (image->missing)
        return sf_err_set (err, SF_ESTATE, "image '%s' is missing from its store (the "
                           "reconciler found it gone); not restored", image->id);
    if (rbd)
        return 0;
    if (strlen (image->sha256) != 64 || strspn (image->sha256, "0123456789abcdef") != 64)
        return sf_err_set (err, SF_ESTATE, "image '%s' has no recorded SHA-256 to check "
                           "it against; not restored", image->id);
    return 0;
}

//  restore --as-domain: a name snapfleet may define, the guest's XML kept
//  with the image, and an image that is its job's only one (a job of
//  several disks would need a file for each: not done yet)

static int
s_check_domain (sf_store_t *store, const sf_imgrec_t *image, const char *name,
                sf_err_t *err)
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

//  The node of a restore that reads or writes RBD: --node, else the node
//  whose job made the image if it is up with a Ceph cluster, else any
//  node that is up with the same cluster (any cluster if that is
//  unknown), else the image's node (the job waits for it). A node that is
//  up without a cluster is refused. Writes node into buf.

static int
s_rbd_node (const sf_restore_req_t *req, const sf_imgrec_t *image, char *buf, size_t size,
            sf_err_t *err)
{
    const char *node = req->node? req->node: image->node;
    sf_peer_t *peer = req->peers && *node? sf_peers_by_name (req->peers, node): NULL;
    const char *cluster = peer? peer->ceph_cluster: "";
    bool usable = peer && peer->up && *peer->ceph_cluster;
    if (!usable && !req->node && req->peers && streq (image->store, "rbd"))
        for (sf_peer_t *other = sf_peers_first (req->peers); other && !usable;
             other = sf_peers_next (req->peers))
            if (other->up && *other->ceph_cluster
            &&  (!*cluster || streq (cluster, other->ceph_cluster))) {
                node = other->name;
                peer = other;
                usable = true;
            }
    if (peer && peer->up && !*peer->ceph_cluster)
        return sf_err_set (err, SF_EINVAL, "node '%.200s' has no Ceph cluster (RBD support "
                           "is off there); a restore %s RBD needs one%s", node,
                           streq (image->store, "rbd")? "from": "to",
                           req->node? "": " (name another with --node)");
    if (!*node)
        return sf_err_set (err, SF_ENOENT, "no node with a Ceph cluster is up; name one "
                           "(--node)");
    snprintf (buf, size, "%s", node);
    return 0;
}

//  Create the job and its restore row in one transaction; id gets its id

static int
s_create (sf_store_t *store, sf_jobs_t *jobs, const sf_imgrec_t *image, const char *node,
          const char *target, const char *format, bool flatten, const char *as_domain,
          char *id, size_t size,
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
    ||  sf_restores_add (store, id, image->store, image->id, target, format, flatten, err)
    ||  (as_domain && sf_store_exec (store, err, "UPDATE restores SET as_domain = ?2"
                                     " WHERE job_id = ?1", "ss", id, as_domain) < 0)) {
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
    bool to_rbd = req->to_rbd && *req->to_rbd;
    const char *format = req->format? req->format: to_rbd? "raw": "qcow2";
    if (!req->image_id || !*req->image_id) {
        sf_err_set (err, SF_EINVAL, "name the image to restore");
        return NULL;
    }
    if (to_rbd && req->target) {
        sf_err_set (err, SF_EINVAL, "give one target: a file (--to FILE) or an RBD image "
                    "(--rbd POOL/NAME)");
        return NULL;
    }
    if (!to_rbd && !req->target && !req->as_domain) {
        sf_err_set (err, SF_EINVAL, "name the file to make (--to), the RBD image to make "
                    "(--rbd) or the domain to define (--as-domain)");
        return NULL;
    }
    if (to_rbd && req->as_domain) {
        sf_err_set (err, SF_EINVAL, "--as-domain defines a domain on a restored file, not "
                    "on an RBD image");
        return NULL;
    }
    if (to_rbd? sf_wire_rbd_name_check (req->to_rbd, "RBD target", err)
              : req->target && sf_wire_path_check (req->target, "target", err))
        return NULL;
    if (!sf_wire_restore_format_valid (format)) {
        sf_err_set (err, SF_EINVAL, "format must be 'qcow2' or 'raw', not '%.32s'", format);
        return NULL;
    }
    if (to_rbd && !streq (format, "raw")) {
        sf_err_set (err, SF_EINVAL, "an RBD image is raw: --format %s does not apply to "
                    "--rbd", format);
        return NULL;
    }
    if (req->flatten && !to_rbd) {
        sf_err_set (err, SF_EINVAL, "--flatten applies to a restore to RBD (--rbd)");
        return NULL;
    }
    sf_imgrec_t image;
    if (sf_imgrec_find (store, req->image_id, "restore", &image, err)
    ||  s_check_image (&image, req, err)
    ||  (req->as_domain && s_check_domain (store, &image, req->as_domain, err)))
        return NULL;
    char node_buf [256];
    const char *node = req->node? req->node: image.node;
    if (to_rbd || streq (image.store, "rbd")) {
        if (s_rbd_node (req, &image, node_buf, sizeof (node_buf), err))
            return NULL;
        node = node_buf;
    }
    if (sf_imgrec_check_node (store, node, err))
        return NULL;
    char *target = to_rbd? zsys_sprintf (SF_RESTORES_RBD "%s", req->to_rbd)
                         : strdup (req->target? req->target: "");
    int busy = *target? sf_restores_target_busy (store, node, target, err): 0;
    if (busy) {
        if (busy > 0 && to_rbd)
            sf_err_set (err, SF_EBUSY, "another restore writes '%.200s'", target);
        else
        if (busy > 0)
            sf_err_set (err, SF_EBUSY, "another restore on node '%s' writes '%.200s'", node,
                        target);
        zstr_free (&target);
        return NULL;
    }
    char id [32];
    if (s_create (store, jobs, &image, node, target, format, req->flatten, req->as_domain, id,
                  sizeof (id), err)) {
        zstr_free (&target);
        return NULL;
    }
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
        SF_NOTICE (&ctx, "restore of image '%s' to '%s' (%s%s)%s%s queued", image.id,
                   *target? target: "beside the original's disk", format,
                   req->flatten? ", flattened": "", req->as_domain? " as domain ": "",
                   req->as_domain? req->as_domain: "");
    zstr_free (&target);
    sf_dispatch_pump (dispatch);
    return sf_jobs_json (jobs, id, err);
}
