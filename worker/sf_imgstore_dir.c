/*  =========================================================================
    sf_imgstore_dir - the "dir" image store

    <path>/<id>.qcow2 and <path>/<id>.json (contract.md, "Image store
    dir"). Before the upload starts, <id>.pending names the catalogue and
    job (as the JSON will), so that what a crash leaves (<id>.qcow2.tmp,
    or <id>.qcow2 without its JSON) can be proven ours and removed by the
    reconciler (sf_reconcile); it goes once the JSON is there. Each is written as <name>.tmp, fsynced, renamed, and the
    directory fsynced (sf_file_commit, sf_file_replace); the JSON goes
    last, so a reader that trusts only images with a JSON never sees a
    half image, even after a crash. An image on the store's own file
    system (the worker's scratch, as a rule) is adopted: hard-linked as
    <id>.qcow2.tmp, hashed in place, then committed as above; any other
    is copied, with write-behind (below).
    =========================================================================
*/
#include "sf_worker_classes.h"
#include "sf_imgstore_driver.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char *path;                 //  Owned, as configured
} dir_t;

//  One image being stored
typedef struct {
    char *dir;                  //  Owned, the real directory
    char *image_tmp;            //  Owned, <id>.qcow2.tmp
    char *image;                //  Owned, <id>.qcow2
    char *pending;              //  Owned, <id>.pending
    int fd;                     //  image_tmp, -1 once closed
    off_t written;              //  bytes written to fd
    off_t started;              //  writeback started up to here
    off_t dropped;              //  written back and out of the cache up to here
} upload_t;

//  Write-behind: the disk writes while the copy goes on, rather than all
//  at the final fsync (the kernel's own writeback would start only at
//  vm.dirty_background_ratio, GiBs on a large host). Every S_WB_STEP
//  bytes, writeback starts for them; what lies S_WB_LAG behind is waited
//  for and dropped from the page cache (nobody reads a new image soon),
//  so a copy dirties at most about S_WB_LAG of memory and the fsync at
//  commit has little left to do.
#define S_WB_STEP   ((off_t) 16 << 20)
#define S_WB_LAG    ((off_t) 64 << 20)

SF_LOG_MODULE ("worker.imgstore");

static int
s_dir_new (const sf_imgstore_cfg_t *cfg, void **priv, sf_err_t *err)
{
    if (!cfg->path || !*cfg->path)
        return sf_err_set (err, SF_ESTORE, "image store 'dir' needs a path");
    dir_t *dir = (dir_t *) zmalloc (sizeof (dir_t));
    dir->path = strdup (cfg->path);
    *priv = dir;
    return 0;
}

static void
s_dir_destroy (void **priv)
{
    dir_t *dir = (dir_t *) *priv;
    free (dir->path);
    free (dir);
    *priv = NULL;
}

//  The directory, made if absent, as a real path the caller frees; NULL
//  with err if it cannot be written

static char *
s_dir_real (dir_t *dir, sf_err_t *err)
{
    if (sf_dir_make (dir->path, SF_DIR_MODE)) {
        sf_err_set (err, SF_ESTORE, "cannot create image directory '%s': %s", dir->path,
                    strerror (errno));
        return NULL;
    }
    char *real = realpath (dir->path, NULL);
    if (!real || access (real, W_OK)) {
        sf_err_set (err, SF_ESTORE, "cannot write to image directory '%s': %s", dir->path,
                    strerror (errno));
        free (real);
        return NULL;
    }
    return real;
}

static int
s_dir_check (void *priv, sf_err_t *err)
{
    char *real = s_dir_real ((dir_t *) priv, err);
    free (real);
    return real ? 0 : -1;
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
    json_object_set_new (doc, "catalog_id", json_string (meta->catalog_id ? meta->catalog_id
                                                                          : ""));
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
s_write_json (FILE *file, void *arg)
{
    if (json_dumpf ((json_t *) arg, file, JSON_INDENT (2) | JSON_SORT_KEYS))
        return -1;
    return fputc ('\n', file) == EOF ? -1 : 0;
}

static void
s_upload_free (upload_t *upload)
{
    if (upload->fd != -1)
        close (upload->fd);
    zstr_free (&upload->dir);
    zstr_free (&upload->image_tmp);
    zstr_free (&upload->image);
    zstr_free (&upload->pending);
    free (upload);
}

//  The pending sidecar: the id, catalogue and job, as in the JSON

static json_t *
s_pending_json (const sf_image_meta_t *meta, const char *id)
{
    return json_pack ("{s:s, s:s, s:s}", "id", id, "job_id", meta->job_id ? meta->job_id : "",
                      "catalog_id", meta->catalog_id ? meta->catalog_id : "");
}

//  The names of a new image, and its pending sidecar written: the start
//  of an open or an adopt. Returns the upload (fd -1) or NULL with err.

static upload_t *
s_dir_begin (void *priv, const sf_image_meta_t *meta, sf_image_rec_t *rec, sf_err_t *err)
{
    char *real = s_dir_real ((dir_t *) priv, err);
    if (!real)
        return NULL;
    zuuid_t *uuid = zuuid_new ();
    snprintf (rec->id, sizeof (rec->id), "%s", zuuid_str_canonical (uuid));
    zuuid_destroy (&uuid);
    for (char *c = rec->id; *c; c++)
        *c = (char) tolower ((unsigned char) *c);
    upload_t *upload = (upload_t *) zmalloc (sizeof (upload_t));
    upload->dir = real;
    upload->image = zsys_sprintf ("%s/%s.qcow2", real, rec->id);
    upload->image_tmp = zsys_sprintf ("%s.tmp", upload->image);
    upload->pending = zsys_sprintf ("%s/%s.pending", real, rec->id);
    rec->path = strdup (upload->image);
    upload->fd = -1;
    json_t *pending = s_pending_json (meta, rec->id);
    int rc = sf_file_replace (upload->pending, "", s_write_json, pending, err);
    json_decref (pending);
    if (rc) {
        if (err)
            err->code = SF_ESTORE;
        s_upload_free (upload);
        return NULL;
    }
    return upload;
}

static int
s_dir_open (void *priv, const sf_image_meta_t *meta, sf_image_rec_t *rec, void **upload_p,
            sf_err_t *err)
{
    upload_t *upload = s_dir_begin (priv, meta, rec, err);
    if (!upload)
        return -1;
    upload->fd = sf_file_create_tmp (upload->image_tmp, SF_FILE_MODE);
    if (upload->fd == -1) {
        unlink (upload->pending);
        sf_err_set (err, SF_ESTORE, "cannot create '%s': %s", upload->image_tmp,
                    strerror (errno));
        s_upload_free (upload);
        return -1;
    }
    *upload_p = upload;
    return 0;
}

//  The file open at fd becomes the image without a copy: a hard link to
//  it is the upload's temp name (the same inode, made through /proc so
//  that it is the file that was opened and checked, never a symlink put
//  in its place). Only on the store's file system (EXDEV otherwise):
//  then SF_ENOTSUP, nothing left, and the caller copies. What is still
//  dirty of it is written behind the caller's hashing (s_dir_advance), as
//  a copy is behind its writes; commit's fsync waits for the rest.

static int
s_dir_adopt (void *priv, const sf_image_meta_t *meta, int fd, sf_image_rec_t *rec,
             void **upload_p, sf_err_t *err)
{
    struct stat st, dir_st;
    char *real = s_dir_real ((dir_t *) priv, err);
    if (!real)
        return -1;
    bool same_fs = fstat (fd, &st) == 0 && S_ISREG (st.st_mode)
                && stat (real, &dir_st) == 0 && st.st_dev == dir_st.st_dev;
    free (real);
    if (!same_fs)
        return sf_err_set (err, SF_ENOTSUP, "not on the image store's file system");
    upload_t *upload = s_dir_begin (priv, meta, rec, err);
    if (!upload)
        return -1;
    char proc [64];
    snprintf (proc, sizeof (proc), "/proc/self/fd/%d", fd);
    if (linkat (AT_FDCWD, proc, AT_FDCWD, upload->image_tmp, AT_SYMLINK_FOLLOW)) {
        int error = errno;
        unlink (upload->pending);
        s_upload_free (upload);
        return sf_err_set (err, SF_ENOTSUP, "cannot link into the image store: %s",
                           strerror (error));
    }
    upload->fd = open (upload->image_tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (upload->fd == -1 || fchmod (upload->fd, SF_FILE_MODE)) {
        sf_err_set (err, SF_ESTORE, "cannot open '%s': %s", upload->image_tmp,
                    strerror (errno));
        unlink (upload->image_tmp);
        unlink (upload->pending);
        s_upload_free (upload);
        return -1;
    }
    *upload_p = upload;
    return 0;
}

//  Write-behind of the size bytes after upload->written (written, or an
//  adopted file's bytes the caller has read). Hints only: a failure
//  shows at the fsync of commit.

static void
s_dir_behind (upload_t *upload, size_t size)
{
    upload->written += (off_t) size;
    if (upload->written - upload->started < S_WB_STEP)
        return;
    sync_file_range (upload->fd, upload->started, upload->written - upload->started,
                     SYNC_FILE_RANGE_WRITE);
    upload->started = upload->written;
    off_t upto = upload->started - S_WB_LAG;
    if (upto > upload->dropped) {
        sync_file_range (upload->fd, upload->dropped, upto - upload->dropped,
                         SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE
                         | SYNC_FILE_RANGE_WAIT_AFTER);
        posix_fadvise (upload->fd, upload->dropped, upto - upload->dropped,
                       POSIX_FADV_DONTNEED);
        upload->dropped = upto;
    }
}

static int
s_dir_write (void *upload_, const char *data, size_t size, sf_err_t *err)
{
    upload_t *upload = (upload_t *) upload_;
    if (s_write_all (upload->fd, data, size))
        return sf_err_set (err, SF_ESTORE, "cannot write '%s': %s", upload->image_tmp,
                           strerror (errno));
    s_dir_behind (upload, size);
    return 0;
}

static void
s_dir_advance (void *upload, size_t size)
{
    s_dir_behind ((upload_t *) upload, size);
}

//  The image first (fsync, rename, directory fsync), then its JSON the
//  same way: an image with a JSON is complete

static int
s_dir_commit (void *upload_, const sf_image_meta_t *meta, const sf_image_rec_t *rec,
              sf_err_t *err)
{
    upload_t *upload = (upload_t *) upload_;
    int fd = upload->fd;
    upload->fd = -1;
    int synced = fsync (fd) == 0 ? 0 : errno;
    if (!synced)                //  nobody reads a new image soon
        posix_fadvise (fd, 0, 0, POSIX_FADV_DONTNEED);
    if (close (fd) && !synced)
        synced = errno;
    if (synced)
        return sf_err_set (err, SF_ESTORE, "cannot sync '%s': %s", upload->image_tmp,
                           strerror (synced));
    if (sf_file_commit (upload->image_tmp, upload->image))
        return sf_err_set (err, SF_ESTORE, "cannot commit '%s': %s", upload->image,
                           strerror (errno));
    char *json = zsys_sprintf ("%s/%s.json", upload->dir, rec->id);
    json_t *doc = s_meta_json (meta, rec);
    int rc = sf_file_replace (json, "", s_write_json, doc, err);
    if (rc) {                   //  the JSON goes; abort removes the image
        unlink (json);
        if (err)
            err->code = SF_ESTORE;
    }
    json_decref (doc);
    zstr_free (&json);
    if (rc == 0) {
        unlink (upload->pending);   //  the JSON says it all now
        s_upload_free (upload);
    }
    return rc;
}

static void
s_dir_abort (void *upload_)
{
    upload_t *upload = (upload_t *) upload_;
    if (upload->fd != -1) {
        close (upload->fd);
        upload->fd = -1;
    }
    unlink (upload->image_tmp);
    unlink (upload->image);
    unlink (upload->pending);
    s_upload_free (upload);
}

//  Is <id>.json in the directory dfd a regular file (not a symlink) whose
//  id, job_id and catalog_id are the request's, and <id>.qcow2 absent or a
//  regular file? Returns 0 with *gone if neither exists, or -1 with err
//  (SF_EINVAL) saying why not.

static int
s_dir_owned (int dfd, const char *id, const char *catalog_id, const char *job_id,
             bool *gone, sf_err_t *err)
{
    const char *why = NULL;
    *gone = false;
    char *image = zsys_sprintf ("%s.qcow2", id), *meta = zsys_sprintf ("%s.json", id);
    struct stat image_st;
    bool has_image = fstatat (dfd, image, &image_st, AT_SYMLINK_NOFOLLOW) == 0;
    int fd = openat (dfd, meta, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd == -1 && errno == ENOENT) {
        //  An incomplete entry: its pending sidecar says whose it is
        zstr_free (&meta);
        meta = zsys_sprintf ("%s.pending", id);
        fd = openat (dfd, meta, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd == -1 && errno == ENOENT) {
            char *tmp = zsys_sprintf ("%s.qcow2.tmp", id);
            struct stat tmp_st;
            if (fstatat (dfd, tmp, &tmp_st, AT_SYMLINK_NOFOLLOW) == 0)
                has_image = true;   //  a temp file without a sidecar: not provably ours
            zstr_free (&tmp);
            errno = ENOENT;
        }
    }
    struct stat meta_st;
    json_t *doc = NULL;
    if (fd == -1 && errno == ENOENT && !has_image)
        *gone = true;
    else
    if (fd == -1)
        why = errno == ENOENT ? "it has no metadata" : "its metadata is not a regular file";
    else
    if (fstat (fd, &meta_st) || !S_ISREG (meta_st.st_mode))
        why = "its metadata is not a regular file";
    else
    if (!(doc = json_loadfd (fd, 0, NULL)) || !json_is_object (doc))
        why = "its metadata cannot be read";
    else
    if (!json_is_string (json_object_get (doc, "id"))
    ||  !streq (json_string_value (json_object_get (doc, "id")), id))
        why = "its metadata names another image";
    else
    if (!json_is_string (json_object_get (doc, "job_id"))
    ||  !streq (json_string_value (json_object_get (doc, "job_id")), job_id)
    ||  !json_is_string (json_object_get (doc, "catalog_id"))
    ||  !streq (json_string_value (json_object_get (doc, "catalog_id")), catalog_id))
        why = "its metadata names another job or catalogue";
    else
    if (has_image && !S_ISREG (image_st.st_mode))
        why = "its image is not a regular file";
    json_decref (doc);
    if (fd != -1)
        close (fd);
    zstr_free (&image);
    zstr_free (&meta);
    if (why)
        return sf_err_set (err, SF_EINVAL, "image '%s' is not one snapfleet made for job %s; "
                           "not deleted (%s)", id, job_id, why);
    return 0;
}

static int
s_dir_delete (void *priv, const char *id, const char *catalog_id, const char *job_id,
              sf_err_t *err)
{
    if (!sf_name_is_safe (id) || strstr (id, ".."))
        return sf_err_set (err, SF_EINVAL, "image '%s' is not one snapfleet made for job %s; "
                           "not deleted (not an image id of the store)", id, job_id);
    char *real = s_dir_real ((dir_t *) priv, err);
    if (!real)
        return -1;
    int dfd = open (real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool gone = false;
    int rc = 0;
    if (dfd == -1)
        rc = sf_err_set (err, SF_ESTORE, "cannot open image directory '%s': %s", real,
                         strerror (errno));
    else
        rc = s_dir_owned (dfd, id, catalog_id, job_id, &gone, err);
    //  The JSON goes first: without it the image no longer looks complete.
    //  unlinkat never follows a symlink: a link goes, not its target.
    const char *suffixes [] = { ".json", ".json.tmp", ".qcow2", ".qcow2.tmp", ".pending",
                                ".pending.tmp" };
    for (size_t i = 0; rc == 0 && !gone && i < sizeof (suffixes) / sizeof (suffixes [0]);
         i++) {
        char *file = zsys_sprintf ("%s%s", id, suffixes [i]);
        if (unlinkat (dfd, file, 0) && errno != ENOENT)
            rc = sf_err_set (err, SF_ESTORE, "cannot remove '%s/%s': %s", real, file,
                             strerror (errno));
        zstr_free (&file);
    }
    if (dfd != -1)
        close (dfd);
    free (real);
    return rc;
}

//  A complete image is one with a JSON

static int
s_dir_list (void *priv, zlistx_t *ids, sf_err_t *err)
{
    char *real = s_dir_real ((dir_t *) priv, err);
    if (!real)
        return -1;
    DIR *dir = opendir (real);
    if (!dir) {
        sf_err_set (err, SF_ESTORE, "cannot read image directory '%s': %s", real,
                    strerror (errno));
        free (real);
        return -1;
    }
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        size_t len = strlen (entry->d_name);
        if (len > 5 && streq (entry->d_name + len - 5, ".json"))
            zlistx_add_end (ids, zsys_sprintf ("%.*s", (int) len - 5, entry->d_name));
    }
    closedir (dir);
    free (real);
    return 0;
}

const sf_imgstore_driver_t sf_imgstore_dir_driver = {
    .name    = "dir",
    .new     = s_dir_new,
    .destroy = s_dir_destroy,
    .check   = s_dir_check,
    .open    = s_dir_open,
    .adopt   = s_dir_adopt,
    .write   = s_dir_write,
    .advance = s_dir_advance,
    .commit  = s_dir_commit,
    .abort   = s_dir_abort,
    .delete  = s_dir_delete,
    .list    = s_dir_list,
};
