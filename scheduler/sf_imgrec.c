/*  =========================================================================
    sf_imgrec - an image's record in the store (see the header)
    =========================================================================
*/
#include "sf_sched_classes.h"

SF_LOG_MODULE ("sched.imgrec");

int
sf_imgrec_find (sf_store_t *store, const char *id, const char *verb, sf_imgrec_t *image,
                sf_err_t *err)
{
    assert (store && id && verb && image);
    sqlite3_stmt *stmt = sf_store_prepare (store, err,
        "SELECT i.store, i.id, i.sha256, i.size, i.missing, i.instance_uuid,"
        " i.instance_name, COALESCE (j.node, ''), i.job_id,"
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
        snprintf (image->job_id, sizeof (image->job_id), "%s", sf_store_text (stmt, 8));
        image->job_images = sqlite3_column_int64 (stmt, 9);
        image->xml = sqlite3_column_int64 (stmt, 10);
    }
    sqlite3_finalize (stmt);
    if (rc < 0)
        return -1;
    if (rows == 0)
        return sf_err_set (err, SF_ENOENT, "no image '%.200s' (see 'snapfleet images')", id);
    if (rows > 1)
        return sf_err_set (err, SF_EINVAL, "image id '%.200s' is in %d stores; cannot tell "
                           "which to %s", id, rows, verb);
    return 0;
}

int
sf_imgrec_check_node (sf_store_t *store, const char *node, sf_err_t *err)
{
    assert (store && node);
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

static char *
s_dup (sqlite3_stmt *stmt, int col)
{
    return strdup (sf_store_text (stmt, col));
}

sf_image_t *
sf_imgrec_image (sqlite3_stmt *stmt, int col)
{
    assert (stmt && col >= 0);
    sf_image_t *image = (sf_image_t *) zmalloc (sizeof (sf_image_t));
    *image = (sf_image_t) SF_IMAGE_INIT;
    image->store = s_dup (stmt, col);
    image->id = s_dup (stmt, col + 1);
    image->path = s_dup (stmt, col + 2);
    image->size = (uint64_t) sqlite3_column_int64 (stmt, col + 3);
    image->sha256 = s_dup (stmt, col + 4);
    image->disk_target = s_dup (stmt, col + 5);
    image->format = s_dup (stmt, col + 6);
    return image;
}

void
sf_imgrec_image_free (sf_image_t **image_p)
{
    assert (image_p);
    sf_image_t *image = *image_p;
    if (!image)
        return;
    free (image->store);
    free (image->id);
    free (image->path);
    free (image->sha256);
    free (image->disk_target);
    free (image->format);
    free (image);
    *image_p = NULL;
}

//  --------------------------------------------------------------------------
//  Self test: a store with an image in one store, one in two, one whose
//  job is forgotten

void
sf_imgrec_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_imgrec: ");
    //  @selftest
    char path [] = "/tmp/sf_imgrec_test_XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    close (fd);
    unlink (path);
    sf_err_t err = SF_ERR_INIT;
    sf_store_t *store = sf_store_new (path, &err);
    assert (store);
    assert (sf_store_script (store,
        "INSERT INTO nodes (name, state, last_seen) VALUES ('n1', 'up', 1);"
        "INSERT INTO jobs (id, instance_uuid, instance_name, node, state, phase, attempt,"
        " strategy, created, updated) VALUES"
        " ('J1', 'u1', 'vm1', 'n1', 'done', 'done', 1, 'file-cold', 1, 1);"
        "INSERT INTO instance_xml (job_id, xml) VALUES ('J1', '<domain/>');"
        "INSERT INTO images (store, id, path, size, sha256, job_id, instance_uuid,"
        " instance_name, disk_target, format, created) VALUES"
        " ('dir', 'i1', '/s/i1.qcow2', 100, 'h1', 'J1', 'u1', 'vm1', 'vda', 'qcow2', 1),"
        " ('dir', 'i2', '/s/i2.qcow2', 5, 'h2', 'J1', 'u1', 'vm1', 'vdb', 'qcow2', 1),"
        " ('glance', 'i2', 'g', 5, 'h2', 'J1', 'u1', 'vm1', 'vdb', 'qcow2', 1);", &err) == 0);
    //  Found, with its job's node, disks and XML
    sf_imgrec_t image;
    assert (sf_imgrec_find (store, "i1", "restore", &image, &err) == 0);
    assert (streq (image.store, "dir") && streq (image.sha256, "h1") && image.size == 100);
    assert (streq (image.node, "n1") && streq (image.job_id, "J1"));
    assert (streq (image.instance_name, "vm1") && image.missing == 0);
    assert (image.job_images == 3 && image.xml == 1);
    //  In two stores: refused, with the verb; none: refused
    assert (sf_imgrec_find (store, "i2", "verify", &image, &err) == -1);
    assert (err.code == SF_EINVAL && strstr (err.text, "cannot tell which to verify"));
    assert (sf_imgrec_find (store, "i9", "verify", &image, &err) == -1);
    assert (err.code == SF_ENOENT && strstr (err.text, "no image 'i9'"));
    //  Nodes: known, unknown, none
    assert (sf_imgrec_check_node (store, "n1", &err) == 0);
    assert (sf_imgrec_check_node (store, "n9", &err) == -1 && err.code == SF_ENOENT);
    assert (strstr (err.text, "unknown node 'n9'"));
    assert (sf_imgrec_check_node (store, "", &err) == -1 && strstr (err.text, "--node"));
    //  A row's columns as an sf_image_t
    sqlite3_stmt *stmt = sf_store_prepare (store, &err,
        "SELECT 7, store, id, path, size, sha256, disk_target, format FROM images"
        " WHERE id = 'i1'", "");
    assert (stmt && sf_store_step (store, stmt, &err) == 1);
    sf_image_t *row = sf_imgrec_image (stmt, 1);
    sqlite3_finalize (stmt);
    assert (streq (row->store, "dir") && streq (row->id, "i1"));
    assert (streq (row->path, "/s/i1.qcow2") && row->size == 100);
    assert (streq (row->sha256, "h1") && streq (row->disk_target, "vda"));
    assert (streq (row->format, "qcow2"));
    sf_imgrec_image_free (&row);
    assert (row == NULL);
    sf_imgrec_image_free (&row);
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
