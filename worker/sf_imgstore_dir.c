/*  =========================================================================
    sf_imgstore_dir - the "dir" image store

    <path>/<id>.qcow2 and <path>/<id>.json (contract.md, "Image store
    dir"). Each is written as <name>.tmp, fsynced, renamed, and the
    directory fsynced; the JSON goes last, so a reader that trusts only
    images with a JSON never sees a half image, even after a crash. The
    image is copied (not renamed from scratch) so that it is hashed while
    it streams, as an upload to a remote store will be.
    =========================================================================
*/
#include "sf_worker_classes.h"

#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_CHUNK SF_IMGSTORE_CHUNK

typedef struct {
    char *path;                 //  Owned, absolute directory
} dir_t;

SF_LOG_MODULE ("worker.imgstore");

static int
s_dir_open (sf_imgstore_t *self, const sf_imgstore_cfg_t *cfg, sf_err_t *err)
{
    if (!cfg->path || !*cfg->path)
        return sf_err_set (err, SF_ESTORE, "image store 'dir' needs a path");
    if (sodium_init () == -1)
        return sf_err_set (err, SF_ESTORE, "cannot initialise libsodium");
    if (zsys_dir_create ("%s", cfg->path))
        return sf_err_set (err, SF_ESTORE, "cannot create image directory '%s': %s",
                           cfg->path, strerror (errno));
    char *real = realpath (cfg->path, NULL);
    if (!real || access (real, W_OK)) {
        sf_err_set (err, SF_ESTORE, "cannot write to image directory '%s': %s", cfg->path,
                    strerror (errno));
        free (real);
        return -1;
    }
    dir_t *dir = (dir_t *) zmalloc (sizeof (dir_t));
    dir->path = real;
    sf_imgstore_set_priv (self, dir);
    return 0;
}

static void
s_dir_close (sf_imgstore_t *self)
{
    dir_t *dir = (dir_t *) sf_imgstore_priv (self);
    free (dir->path);
    free (dir);
    sf_imgstore_set_priv (self, NULL);
}

//  fsync a directory so that a rename in it is durable

static int
s_sync_dir (const char *path, sf_err_t *err)
{
    int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd == -1 || fsync (fd)) {
        int error = errno;
        if (fd != -1)
            close (fd);
        return sf_err_set (err, SF_ESTORE, "cannot sync directory '%s': %s", path,
                           strerror (error));
    }
    close (fd);
    return 0;
}

static int
s_write_all (int fd, const char *data, size_t size)
{
    while (size) {
        ssize_t done = write (fd, data, size);
        if (done == -1 && errno == EINTR)
            continue;
        if (done <= 0)
            return -1;
        data += done;
        size -= (size_t) done;
    }
    return 0;
}

//  A message on cancel? Without a bucket any message cancels (and stays
//  there for the owner); with one, each is read: RATE and GRANT set the
//  rate, anything else cancels.

static bool
s_stopped (zsock_t *cancel, sf_bucket_t *bucket)
{
    while (cancel && (zsock_events (cancel) & ZMQ_POLLIN)) {
        if (!bucket || sf_bucket_recv (bucket, cancel) == SF_BUCKET_STOP)
            return true;
    }
    return false;
}

//  Wait off what the bucket is owed for the bytes just moved, still
//  answering the cancel socket. Returns true if cancelled.

static bool
s_throttle (zsock_t *cancel, sf_bucket_t *bucket, uint64_t bytes)
{
    if (!bucket)
        return false;
    sf_bucket_take (bucket, bytes);
    while (sf_bucket_sleep (bucket, cancel))
        if (s_stopped (cancel, bucket))
            return true;
    return false;
}

//  Stream src into dst (created exclusively), hashing as it goes, at the
//  bucket's rate, then fsync. Sets *size and hex. On failure dst may exist;
//  the caller unlinks.

static int
s_copy_hash (const char *src, const char *dst, zsock_t *cancel, sf_bucket_t *bucket,
             uint64_t *size, char *hex, sf_err_t *err)
{
    int rc = -1, in = -1, out = -1;
    char *buf = (char *) malloc (S_CHUNK);
    crypto_hash_sha256_state state;
    unsigned char digest [crypto_hash_sha256_BYTES];
    crypto_hash_sha256_init (&state);
    *size = 0;
    if ((in = open (src, O_RDONLY | O_CLOEXEC)) == -1) {
        sf_err_set (err, SF_ESTORE, "cannot open '%s': %s", src, strerror (errno));
        goto cleanup;
    }
    if ((out = open (dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) == -1) {
        sf_err_set (err, SF_ESTORE, "cannot create '%s': %s", dst, strerror (errno));
        goto cleanup;
    }
    while (true) {
        if (s_stopped (cancel, bucket)) {
            sf_err_set (err, SF_ECANCELED, "storing '%s' cancelled", src);
            goto cleanup;
        }
        ssize_t got = read (in, buf, S_CHUNK);
        if (got == -1 && errno == EINTR)
            continue;
        if (got == -1) {
            sf_err_set (err, SF_ESTORE, "cannot read '%s': %s", src, strerror (errno));
            goto cleanup;
        }
        if (got == 0)
            break;
        crypto_hash_sha256_update (&state, (unsigned char *) buf, (unsigned long long) got);
        if (s_write_all (out, buf, (size_t) got)) {
            sf_err_set (err, SF_ESTORE, "cannot write '%s': %s", dst, strerror (errno));
            goto cleanup;
        }
        *size += (uint64_t) got;
        if (s_throttle (cancel, bucket, (uint64_t) got)) {
            sf_err_set (err, SF_ECANCELED, "storing '%s' cancelled", src);
            goto cleanup;
        }
    }
    if (fsync (out) || close (out)) {
        out = -1;
        sf_err_set (err, SF_ESTORE, "cannot sync '%s': %s", dst, strerror (errno));
        goto cleanup;
    }
    out = -1;
    crypto_hash_sha256_final (&state, digest);
    sodium_bin2hex (hex, 65, digest, sizeof (digest));
    rc = 0;
 cleanup:
    if (in != -1)
        close (in);
    if (out != -1)
        close (out);
    free (buf);
    return rc;
}

//  Metadata document of the contract

static json_t *
s_meta_json (const sf_image_meta_t *meta, const sf_image_rec_t *rec)
{
    char created [64];
    sf_time_rfc3339 (sf_time_now_ms (), created, sizeof (created));
    json_t *doc = json_object ();
    json_object_set_new (doc, "id", json_string (rec->id));
    json_object_set_new (doc, "instance_uuid", json_string (meta->instance_uuid));
    json_object_set_new (doc, "instance_name", json_string (meta->instance_name));
    json_object_set_new (doc, "job_id", json_string (meta->job_id));
    json_object_set_new (doc, "attempt", json_integer (meta->attempt));
    json_object_set_new (doc, "strategy", json_string (meta->strategy));
    json_object_set_new (doc, "consistency", json_string (meta->consistency));
    json_object_set_new (doc, "disk_target", json_string (meta->disk_target));
    json_object_set_new (doc, "format", json_string (rec->format));
    json_object_set_new (doc, "size", json_integer ((json_int_t) rec->size));
    json_object_set_new (doc, "sha256", json_string (rec->sha256));
    json_object_set_new (doc, "created", json_string (created));
    return doc;
}

static int
s_write_json (const char *tmp, json_t *doc, sf_err_t *err)
{
    int fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd == -1)
        return sf_err_set (err, SF_ESTORE, "cannot create '%s': %s", tmp, strerror (errno));
    int rc = json_dumpfd (doc, fd, JSON_INDENT (2) | JSON_SORT_KEYS) == 0
          && s_write_all (fd, "\n", 1) == 0 && fsync (fd) == 0 ? 0 : -1;
    if (close (fd))
        rc = -1;
    if (rc)
        sf_err_set (err, SF_ESTORE, "cannot write '%s': %s", tmp, strerror (errno));
    return rc;
}

//  Publish tmp as final: rename, then make the rename durable

static int
s_publish (dir_t *dir, const char *tmp, const char *final, sf_err_t *err)
{
    if (rename (tmp, final))
        return sf_err_set (err, SF_ESTORE, "cannot rename '%s': %s", tmp, strerror (errno));
    return s_sync_dir (dir->path, err);
}

static int
s_dir_put (sf_imgstore_t *self, const sf_image_meta_t *meta, const char *src,
           zsock_t *cancel, sf_image_rec_t *rec, sf_err_t *err)
{
    dir_t *dir = (dir_t *) sf_imgstore_priv (self);
    zuuid_t *uuid = zuuid_new ();
    snprintf (rec->id, sizeof (rec->id), "%s", zuuid_str_canonical (uuid));
    zuuid_destroy (&uuid);
    for (char *c = rec->id; *c; c++)
        *c = (char) tolower ((unsigned char) *c);
    snprintf (rec->store, sizeof (rec->store), "dir");
    snprintf (rec->format, sizeof (rec->format), "qcow2");
    rec->disk_target = strdup (meta->disk_target);
    rec->path = zsys_sprintf ("%s/%s.qcow2", dir->path, rec->id);
    char *image_tmp = zsys_sprintf ("%s.tmp", rec->path);
    char *json_final = zsys_sprintf ("%s/%s.json", dir->path, rec->id);
    char *json_tmp = zsys_sprintf ("%s.tmp", json_final);
    json_t *doc = NULL;
    int rc = -1;
    if (s_copy_hash (src, image_tmp, cancel, sf_imgstore_bucket (self), &rec->size,
                     rec->sha256, err)
    ||  s_publish (dir, image_tmp, rec->path, err))
        goto cleanup;
    doc = s_meta_json (meta, rec);
    if (s_write_json (json_tmp, doc, err) || s_publish (dir, json_tmp, json_final, err))
        goto cleanup;
    rc = 0;
 cleanup:
    if (rc) {                   //  leave nothing: JSON first, then the image
        unlink (json_tmp);
        unlink (json_final);
        unlink (image_tmp);
        unlink (rec->path);
    }
    json_decref (doc);
    zstr_free (&json_tmp);
    zstr_free (&json_final);
    zstr_free (&image_tmp);
    return rc;
}

static int
s_dir_remove (sf_imgstore_t *self, const char *id, sf_err_t *err)
{
    dir_t *dir = (dir_t *) sf_imgstore_priv (self);
    if (!sf_name_is_safe (id))
        return sf_err_set (err, SF_EINVAL, "bad image id '%s'", id);
    //  The JSON goes first: without it the image no longer looks complete
    const char *suffixes [] = { ".json", ".json.tmp", ".qcow2", ".qcow2.tmp" };
    int rc = 0;
    for (size_t i = 0; i < sizeof (suffixes) / sizeof (suffixes [0]); i++) {
        char *file = zsys_sprintf ("%s/%s%s", dir->path, id, suffixes [i]);
        if (unlink (file) && errno != ENOENT)
            rc = sf_err_set (err, SF_ESTORE, "cannot remove '%s': %s", file,
                             strerror (errno));
        zstr_free (&file);
    }
    return rc;
}

const sf_imgstore_driver_t sf_imgstore_dir_driver = {
    .name   = "dir",
    .open   = s_dir_open,
    .close  = s_dir_close,
    .put    = s_dir_put,
    .remove = s_dir_remove,
};
