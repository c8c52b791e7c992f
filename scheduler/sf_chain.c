/*  =========================================================================
    sf_chain - incremental chains (see the header)
    =========================================================================
*/
#include "sf_sched_classes.h"

SF_LOG_MODULE ("sched.chain");

//  --------------------------------------------------------------------------
//  The offer

static char *
s_dup (sqlite3_stmt *stmt, int col)
{
    return strdup (sf_store_text (stmt, col));
}

//  The newest point of job_id's instance on its node (a done job with a
//  stored image, not job_id itself): its id into point; 1, 0 if none, -1

static int
s_newest_point (sf_store_t *store, const char *job_id, char *point, size_t size,
                sf_err_t *err)
{
    sqlite3_stmt *stmt = sf_store_prepare (store, err,
        "SELECT p.id FROM jobs j JOIN jobs p ON p.instance_uuid = j.instance_uuid"
        " AND p.node = j.node AND p.id <> j.id AND p.state = 'done'"
        " WHERE j.id = ?1 AND j.full = 0 AND EXISTS (SELECT 1 FROM images i WHERE i.job_id = p.id"
        "  AND i.store <> 'rbd')"
        " ORDER BY p.seq DESC LIMIT 1", "s", job_id);
    if (!stmt)
        return -1;
    int rc = sf_store_step (store, stmt, err);
    if (rc == 1)
        snprintf (point, size, "%s", sf_store_text (stmt, 0));
    sqlite3_finalize (stmt);
    return rc;
}

int64_t
sf_chain_depth (sf_store_t *store, const char *image_store, const char *image_id,
                sf_err_t *err)
{
    assert (store && image_store && image_id);
    sqlite3_stmt *stmt = sf_store_prepare (store, err,
        "WITH RECURSIVE up (id, parent, depth) AS ("
        "  SELECT id, parent_id, 0 FROM images WHERE store = ?1 AND id = ?2"
        "  UNION ALL SELECT i.id, i.parent_id, up.depth + 1 FROM images i, up"
        "  WHERE i.store = ?1 AND i.id = up.parent AND up.parent <> '' AND up.depth < 100000)"
        " SELECT MAX (depth) FROM up", "ss", image_store, image_id);
    if (!stmt)
        return -1;
    int rc = sf_store_step (store, stmt, err);
    int64_t depth = rc == 1? sqlite3_column_int64 (stmt, 0): 0;
    sqlite3_finalize (stmt);
    return rc < 0? -1: depth;
}

int
sf_chain_offer (sf_store_t *store, const char *job_id, int64_t max_chain,
                sf_incremental_t **incr_p, sf_err_t *err)
{
    assert (store && job_id && incr_p);
    *incr_p = NULL;
    if (max_chain <= 0)
        return 0;
    char point [256];
    int rc = s_newest_point (store, job_id, point, sizeof (point), err);
    if (rc != 1)
        return rc;
    //  Every image of the point must qualify: one that does not spoils it
    sqlite3_stmt *stmt = sf_store_prepare (store, err,
        "SELECT i.store, i.id, i.path, i.size, i.sha256, i.disk_target, i.format,"
        " i.checkpoint, (j.strategy = 'file-live' AND i.store = 'dir' AND i.missing = 0"
        "  AND i.checkpoint <> '' AND i.format = 'qcow2'"
        "  AND NOT EXISTS (SELECT 1 FROM retention_deletes d"
        "   WHERE d.store = i.store AND d.image_id = i.id))"
        " FROM images i JOIN jobs j ON j.id = i.job_id WHERE i.job_id = ?1"
        " ORDER BY i.rowid", "s", point);
    if (!stmt)
        return -1;
    sf_incremental_t *incr = (sf_incremental_t *) zmalloc (sizeof (sf_incremental_t));
    *incr = (sf_incremental_t) SF_INCREMENTAL_INIT;
    incr->disks = (sf_incremental_disk_t **) zmalloc (SF_WIRE_MAX_DISKS
                                                      * sizeof (sf_incremental_disk_t *));
    bool fits = true;
    while ((rc = sf_store_step (store, stmt, err)) == 1) {
        if (!sqlite3_column_int (stmt, 8) || incr->n_disks >= SF_WIRE_MAX_DISKS
        ||  !sf_wire_checkpoint_valid (sf_store_text (stmt, 7))) {
            fits = false;
            continue;
        }
        sf_image_t *image = sf_imgrec_image (stmt, 0);
        sf_incremental_disk_t *disk = (sf_incremental_disk_t *)
            zmalloc (sizeof (sf_incremental_disk_t));
        *disk = (sf_incremental_disk_t) SF_INCREMENTAL_DISK_INIT;
        disk->image = image;
        disk->checkpoint = s_dup (stmt, 7);
        incr->disks [incr->n_disks++] = disk;
    }
    sqlite3_finalize (stmt);
    //  A chain at its longest: this run is full again
    for (size_t i = 0; rc == 0 && fits && i < incr->n_disks; i++) {
        int64_t depth = sf_chain_depth (store, incr->disks [i]->image->store,
                                        incr->disks [i]->image->id, err);
        if (depth < 0)
            rc = -1;
        else
        if (depth + 1 > max_chain) {
            SF_INFO (NULL, "job '%s': a full copy, its instance's chain has %" PRId64
                     " increments ([retention] max_chain = %" PRId64 ")", job_id, depth,
                     max_chain);
            fits = false;
        }
    }
    if (rc < 0 || !fits || incr->n_disks == 0) {
        sf_chain_offer_free (&incr);
        return rc < 0? -1: 0;
    }
    *incr_p = incr;
    return 1;
}

void
sf_chain_offer_free (sf_incremental_t **incr_p)
{
    assert (incr_p);
    sf_incremental_t *incr = *incr_p;
    if (!incr)
        return;
    for (size_t i = 0; i < incr->n_disks; i++) {
        sf_imgrec_image_free (&incr->disks [i]->image);
        free (incr->disks [i]->checkpoint);
        free (incr->disks [i]);
    }
    free (incr->disks);
    free (incr);
    *incr_p = NULL;
}

//  --------------------------------------------------------------------------
//  A result's parent

int
sf_chain_check_parent (sf_store_t *store, const char *job_id, const sf_image_t *image,
                       sf_err_t *refusal, sf_err_t *err)
{
    assert (store && job_id && image && refusal);
    if (!image->parent_id || !*image->parent_id)
        return 0;
    sqlite3_stmt *stmt = sf_store_prepare (store, err,
        "SELECT COUNT (*) FROM images p JOIN jobs pj ON pj.id = p.job_id, jobs j"
        " WHERE j.id = ?1 AND p.store = ?2 AND p.id = ?3 AND p.disk_target = ?4"
        " AND p.instance_uuid = j.instance_uuid AND pj.node = j.node AND pj.seq < j.seq",
        "ssss", job_id, image->store? image->store: "", image->parent_id,
        image->disk_target? image->disk_target: "");
    if (!stmt)
        return -1;
    int rc = sf_store_step (store, stmt, err);
    int64_t count = rc == 1? sqlite3_column_int64 (stmt, 0): 0;
    sqlite3_finalize (stmt);
    if (rc < 0)
        return -1;
    if (count == 1)
        return 0;
    sf_err_set (refusal, SF_EPROTO, "image '%.64s' of job '%s' is an increment on '%.64s', "
                "which is not an earlier image of the same disk, instance, node and store "
                "in the catalogue", image->id? image->id: "", job_id, image->parent_id);
    return 1;
}

//  --------------------------------------------------------------------------
//  Retention

int
sf_chain_needed (sf_store_t *store, const char *image_store, const char *image_id,
                 char *why, size_t size, sf_err_t *err)
{
    assert (store && image_store && image_id && why);
    *why = 0;
    //  A child that stays
    sqlite3_stmt *stmt = sf_store_prepare (store, err,
        "SELECT c.id, c.job_id FROM images c WHERE c.store = ?1 AND c.parent_id = ?2"
        " AND NOT EXISTS (SELECT 1 FROM retention_deletes d"
        "  WHERE d.store = c.store AND d.image_id = c.id) LIMIT 1",
        "ss", image_store, image_id);
    if (!stmt)
        return -1;
    int rc = sf_store_step (store, stmt, err);
    if (rc == 1)
        snprintf (why, size, "base of %s (job %s)", sf_store_text (stmt, 0),
                  sf_store_text (stmt, 1));
    sqlite3_finalize (stmt);
    if (rc != 0)
        return rc;
    //  An unfinished file-live job of its instance on its node, whose
    //  newest point it belongs to, may be building on it now
    stmt = sf_store_prepare (store, err,
        "SELECT u.id FROM images i JOIN jobs p ON p.id = i.job_id"
        " JOIN jobs u ON u.instance_uuid = p.instance_uuid AND u.node = p.node"
        "  AND u.strategy = 'file-live' AND u.seq > p.seq"
        "  AND u.state NOT IN ('done', 'failed', 'skipped', 'cancelled')"
        " WHERE i.store = ?1 AND i.id = ?2 AND i.checkpoint <> ''"
        " AND NOT EXISTS (SELECT 1 FROM jobs q WHERE q.instance_uuid = p.instance_uuid"
        "  AND q.node = p.node AND q.seq > p.seq AND q.seq < u.seq AND q.state = 'done'"
        "  AND EXISTS (SELECT 1 FROM images k WHERE k.job_id = q.id))"
        " LIMIT 1", "ss", image_store, image_id);
    if (!stmt)
        return -1;
    rc = sf_store_step (store, stmt, err);
    if (rc == 1)
        snprintf (why, size, "base of the running job %s", sf_store_text (stmt, 0));
    sqlite3_finalize (stmt);
    return rc;
}

//  --------------------------------------------------------------------------
//  Self test

void
sf_chain_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_chain: ");
    //  @selftest
    char path [] = "/tmp/sf_chain_test_XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    close (fd);
    unlink (path);
    sf_err_t err = SF_ERR_INIT;
    sf_store_t *store = sf_store_new (path, &err);
    assert (store);
    //  vm1 on n1: J1 full (file-live, checkpoint), J2 an increment on it,
    //  J3 file-cold, J4 running; vm2: J5 file-live without a checkpoint
    assert (sf_store_script (store,
        "INSERT INTO nodes (name, state, last_seen) VALUES ('n1', 'up', 1), ('n2', 'up', 1);"
        "INSERT INTO jobs (id, instance_uuid, instance_name, node, state, phase, attempt,"
        " strategy, created, updated) VALUES"
        " ('J1', 'u1', 'vm1', 'n1', 'done', 'done', 1, 'file-live', 1, 1),"
        " ('J2', 'u1', 'vm1', 'n1', 'done', 'done', 1, 'file-live', 2, 2),"
        " ('J4', 'u1', 'vm1', 'n1', 'running', 'queued', 1, 'file-live', 3, 3),"
        " ('J5', 'u2', 'vm2', 'n1', 'done', 'done', 1, 'file-live', 1, 1),"
        " ('J6', 'u2', 'vm2', 'n1', 'queued', 'queued', 1, 'file-live', 4, 4);"
        "INSERT INTO images (store, id, path, size, sha256, job_id, instance_uuid,"
        " instance_name, disk_target, format, created, parent_id, own_bytes, checkpoint)"
        " VALUES"
        " ('dir', 'i1', '/s/i1.qcow2', 100, 'h1', 'J1', 'u1', 'vm1', 'vda', 'qcow2', 1,"
        "  '', 100, 'snapfleet-J1'),"
        " ('dir', 'i2', '/s/i2.qcow2', 5, 'h2', 'J2', 'u1', 'vm1', 'vda', 'qcow2', 2,"
        "  'i1', 5, 'snapfleet-J2'),"
        " ('dir', 'i5', '/s/i5.qcow2', 100, 'h5', 'J5', 'u2', 'vm2', 'vda', 'qcow2', 1,"
        "  '', 100, '');", &err) == 0);
    //  J4 builds on J2's point; J6 gets nothing (no checkpoint)
    sf_incremental_t *incr = NULL;
    assert (sf_chain_offer (store, "J4", SF_CHAIN_MAX, &incr, &err) == 1 && incr);
    assert (incr->n_disks == 1 && streq (incr->disks [0]->image->id, "i2"));
    assert (streq (incr->disks [0]->checkpoint, "snapfleet-J2"));
    assert (streq (incr->disks [0]->image->disk_target, "vda"));
    sf_chain_offer_free (&incr);
    assert (incr == NULL);
    //  i2 is one increment on i1: a chain of at most 1 is full again
    assert (sf_chain_depth (store, "dir", "i2", &err) == 1);
    assert (sf_chain_depth (store, "dir", "i1", &err) == 0);
    assert (sf_chain_offer (store, "J4", 2, &incr, &err) == 1);
    sf_chain_offer_free (&incr);
    assert (sf_chain_offer (store, "J4", 1, &incr, &err) == 0 && !incr);
    assert (sf_chain_offer (store, "J4", 0, &incr, &err) == 0 && !incr);
    assert (sf_chain_offer (store, "J6", SF_CHAIN_MAX, &incr, &err) == 0 && !incr);
    //  A job asked to be full gets no offer
    assert (sf_store_exec (store, &err, "UPDATE jobs SET full = 1 WHERE id = 'J4'", "") == 1);
    assert (sf_chain_offer (store, "J4", SF_CHAIN_MAX, &incr, &err) == 0 && !incr);
    assert (sf_store_exec (store, &err, "UPDATE jobs SET full = 0 WHERE id = 'J4'", "") == 1);
    assert (sf_chain_offer (store, "nosuch", SF_CHAIN_MAX, &incr, &err) == 0 && !incr);
    //  Parents: an earlier image of the same disk and instance only
    sf_image_t image = SF_IMAGE_INIT;
    image.store = "dir", image.id = "i4", image.disk_target = "vda", image.parent_id = "i2";
    sf_err_t refusal = SF_ERR_INIT;
    assert (sf_chain_check_parent (store, "J4", &image, &refusal, &err) == 0);
    image.parent_id = "i5";                 //  another instance's
    assert (sf_chain_check_parent (store, "J4", &image, &refusal, &err) == 1);
    assert (strstr (refusal.text, "not an earlier image"));
    image.parent_id = "gone";
    assert (sf_chain_check_parent (store, "J4", &image, &refusal, &err) == 1);
    image.parent_id = "i2", image.disk_target = "vdb";
    assert (sf_chain_check_parent (store, "J4", &image, &refusal, &err) == 1);
    image.parent_id = "";
    assert (sf_chain_check_parent (store, "J4", &image, &refusal, &err) == 0);
    //  Retention: i1 is the base of i2; i2 the base of the running J4; i5
    //  nothing's
    char why [200];
    assert (sf_chain_needed (store, "dir", "i1", why, sizeof (why), &err) == 1);
    assert (streq (why, "base of i2 (job J2)"));
    assert (sf_chain_needed (store, "dir", "i2", why, sizeof (why), &err) == 1);
    assert (streq (why, "base of the running job J4"));
    assert (sf_chain_needed (store, "dir", "i5", why, sizeof (why), &err) == 0);
    //  Once i2 is queued for deletion it needs i1 no more; the offer skips it
    assert (sf_store_exec (store, &err, "UPDATE jobs SET state = 'done' WHERE id = 'J4'",
                           "") == 1);
    assert (sf_chain_needed (store, "dir", "i2", why, sizeof (why), &err) == 0);
    assert (sf_store_exec (store, &err,
        "INSERT INTO retention_deletes (request_id, store, image_id, node, schedule,"
        " bulk_id, state, created, updated) VALUES ('D1', 'dir', 'i2', 'n1', 's', 'b',"
        " 'pending', 1, 1)", "") == 1);
    assert (sf_chain_needed (store, "dir", "i1", why, sizeof (why), &err) == 0);
    assert (sf_store_exec (store, &err, "UPDATE jobs SET state = 'running' WHERE id = 'J4'",
                           "") == 1);
    assert (sf_chain_offer (store, "J4", SF_CHAIN_MAX, &incr, &err) == 0 && !incr);
    sf_store_destroy (&store);
    char *wal = zsys_sprintf ("%s-wal", path), *shm = zsys_sprintf ("%s-shm", path);
    unlink (path);
    unlink (wal);
    unlink (shm);
    zstr_free (&wal);
    zstr_free (&shm);
    //  @end
    printf ("OK\n");
}
