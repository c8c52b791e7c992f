/*  =========================================================================
    sf_restore - one restore job as a zactor (see the header)
    =========================================================================
*/
#include "sf_worker_classes.h"
#include "sf_stor_fake.h"         //  the self test

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

SF_LOG_MODULE ("worker.restore");

#define S_TICK_MS   1000            //  how often qemu-img's progress is looked at
#define S_RECORDS   "restores"      //  <workdir>/restores/<job>: the temp directory
#define S_TEMP_FILE "image"         //  the new file inside the temp directory
#define S_RBD_LINE  "rbd "          //  a record's line for an RBD temp image
#define S_RBD_REMOVE_MS 45000       //  retries of a temp image's removal

typedef struct {
    sf_readback_t rb;               //  The pipe, the bucket, the image's fd (open
                                    //  once: hashed, then converted)
    char *job_id, *catalog_id, *workdir, *store_driver, *store_dir;
    uint32_t attempt;
    uint64_t rate_limit;
    int64_t stall_ms;
    bool wait_grant;
    //  What to restore where (copied from the Restore)
    char *to_file, *to_rbd, *format;
    char *as_domain, *domain_xml, *uri;
    char note [400];                //  ok result's text (the defined domain)
    bool flatten;
    sf_stor_t *stor;                //  Borrowed: RBD sources and targets (NULL: off)
    sf_stor_spec_t source;          //  An RBD image's id, parsed
    sf_stor_obj_t parent;           //  Its parent snapshot (kind 0: none)
    sf_stor_spec_t target;          //  to_rbd, parsed
    sf_stor_spec_t rbd_temp;        //  The new image's temp name beside it
    bool rbd_temp_made;             //  It may exist: removed unless published
    sf_logctx_t ctx;
    //  Made on the way
    char *real_parent;              //  Owned: the target's directory, resolved
    const char *base;               //  The target's last component (in to_file)
    char *temp_dir;                 //  Owned: real_parent/.sf-restore-<cat>-<job>.d
    char *temp_file;                //  Owned: temp_dir/image
    char *record;                   //  Owned: <workdir>/restores/<job>
    bool temp_made, recorded, published;
    char *fd_source;                //  Owned: what qemu-img reads of a dir image,
                                    //  "/dev/fd/3" or, for an increment, the fd on
                                    //  its chain (json:)
    uint64_t convert_ms, upload_ms, bytes;
    sf_err_t err;
} restore_t;

//  --------------------------------------------------------------------------
//  Messages to the owner

static void
s_send_result (restore_t *self, bool ok)
{
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    result.job_id = self->job_id;
    result.attempt = self->attempt;
    result.ok = ok;
    result.strategy = SF_WIRE_RESTORE;
    result.consistency = "";
    result.convert_ms = self->convert_ms;
    result.upload_ms = self->upload_ms;
    result.bytes = ok ? self->bytes : 0;
    result.method = SF_WIRE_RESTORE;
    char note [160] = "";
    if (ok && streq (self->rb.image.store, "rbd"))
        snprintf (note, sizeof (note), "an RBD clone has no stored hash: not checked");
    sf_error_info_t error = SF_ERROR_INFO_INIT;
    if (ok && *self->note) {
        error.text = self->note;
        result.error = &error;
    }
    if (!ok) {
        sf_text_utf8_fix (self->err.text);
        error.code = self->err.code ? self->err.code : SF_EIO;
        error.text = self->err.text;
        result.error = &error;
    }
    else
    if (*note) {
        error.text = note;      //  an ok result's note
        result.error = &error;
    }
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_RESULT, &result);
    sf_jobmsg_send (self->rb.pipe, &self->ctx, "RESULT", &env);
}

//  --------------------------------------------------------------------------
//  Checks before anything is made

//  True if path is dir or inside it (both resolved)

static bool
s_under (const char *path, const char *dir)
{
    size_t length = strlen (dir);
    while (length > 1 && dir [length - 1] == '/')
        length--;
    return strncmp (path, dir, length) == 0
        && (path [length] == 0 || path [length] == '/' || length == 1);
}

//  An image id of the dir store: a lowercase UUID

static bool
s_uuid_valid (const char *id)
{
    if (strlen (id) != 36)
        return false;
    for (int i = 0; i < 36; i++)
        if ((i == 8 || i == 13 || i == 18 || i == 23) ? id [i] != '-'
                                                      : !strchr ("0123456789abcdef", id [i]))
            return false;
    return true;
}

//  The image: a file of our dir store, named for its id

static int s_check_rbd_image (restore_t *self);
static int s_check_rbd_target (restore_t *self);

static int
s_check_image (restore_t *self)
{
    if (streq (self->rb.image.store, "rbd"))
        return s_check_rbd_image (self);
    if (!streq (self->rb.image.store, "dir") || !streq (self->store_driver, "dir"))
        return sf_err_set (&self->err, SF_ENOTSUP, "image '%s' is in store '%s' and this "
                           "node's store is '%s': only dir-store images can be restored yet",
                           self->rb.image.id, self->rb.image.store, self->store_driver);
    if (!s_uuid_valid (self->rb.image.id))
        return sf_err_set (&self->err, SF_EINVAL, "image id '%.64s' is not one of a dir "
                           "store (a lowercase UUID)", self->rb.image.id);
    char *path = sf_readback_store_path (&self->rb, self->store_dir, self->rb.image.id);
    if (!path)
        return -1;
    if (!streq (path, self->rb.image.path)) {
        sf_err_set (&self->err, SF_EINVAL, "image '%s' is recorded at '%.200s', not in "
                    "this node's store ('%.200s')", self->rb.image.id, self->rb.image.path,
                    path);
        zstr_free (&path);
        return -1;
    }
    zstr_free (&path);
    struct stat st;
    if (sf_readback_open (&self->rb, self->rb.image.path, &st))
        return sf_err_set (&self->err, errno == ENOENT ? SF_ENOENT : SF_ESTORE,
                           "cannot open image '%s' ('%s'): %s", self->rb.image.id,
                           self->rb.image.path, strerror (errno));
    if (!S_ISREG (st.st_mode))
        return sf_err_set (&self->err, SF_ESTORE, "image '%s' is not a regular file",
                           self->rb.image.id);
    if ((uint64_t) st.st_size != self->rb.image.size)
        return sf_err_set (&self->err, SF_ESTORE, "image '%s' is %" PRIu64 " bytes, its "
                           "record says %" PRIu64 "; not restored", self->rb.image.id,
                           (uint64_t) st.st_size, self->rb.image.size);
    return 0;
}

//  --as-domain: the XML has the image's disk, the name is free; without a
//  target, the file goes beside the original's disk

static int
s_check_domain (restore_t *self)
{
    sf_hv_domxml_t spec = { .name = self->as_domain, .disk_target = self->rb.image.disk_target,
                            .file = "/restored", .format = self->format };
    char *source = NULL;
    char *xml = sf_hv_domxml_copy (self->domain_xml, &spec, &source, NULL, &self->err);
    free (xml);
    if (!xml)
        return sf_err_prefix (&self->err, "cannot define domain '%s'", self->as_domain);
    if (!*self->to_file) {
        const char *slash = strrchr (source, '/');
        if (*source != '/' || !slash) {
            sf_err_set (&self->err, SF_EINVAL, "the original's disk '%s' has no file path to "
                        "put the restored file beside; name it (--to)",
                        self->rb.image.disk_target);
            free (source);
            return -1;
        }
        free (self->to_file);
        self->to_file = zsys_sprintf ("%.*s/%s.%s", (int) (slash - source), source,
                                      self->as_domain, self->format);
    }
    free (source);
    sf_hv_t *hv = sf_hv_new (self->uri, &self->err);
    bool exists = true;
    int rc = hv ? sf_hv_name_exists (hv, self->as_domain, &exists, &self->err) : -1;
    sf_hv_destroy (&hv);
    if (rc == 0 && exists)
        rc = sf_err_set (&self->err, SF_EEXIST, "a domain named '%s' exists; nothing "
                         "restored", self->as_domain);
    return rc;
}

//  --as-domain: the new file goes to the owner of the original's disk
//  file (whom QEMU runs as), if that file is still there

static int
s_give (restore_t *self)
{
    sf_hv_domxml_t spec = { .name = self->as_domain, .disk_target = self->rb.image.disk_target,
                            .file = "/restored", .format = self->format };
    char *source = NULL;
    sf_err_t err = SF_ERR_INIT;
    free (sf_hv_domxml_copy (self->domain_xml, &spec, &source, NULL, &err));
    struct stat st;
    int rc = 0;
    if (source && *source == '/' && stat (source, &st) == 0
    &&  (st.st_uid != geteuid () || st.st_gid != getegid ())
    &&  chown (self->temp_file, st.st_uid, st.st_gid))
        rc = sf_err_set (&self->err, SF_EIO, "cannot give '%s' to uid %u gid %u (the "
                         "owner of the original's disk): %s", self->temp_file,
                         (unsigned) st.st_uid, (unsigned) st.st_gid, strerror (errno));
    free (source);
    return rc;
}

//  --as-domain, once the file has its name: define the domain; a failed
//  define removes the file

static int
s_define (restore_t *self)
{
    sf_hv_domxml_t spec = { .name = self->as_domain, .disk_target = self->rb.image.disk_target,
                            .file = self->to_file, .format = self->format };
    int dropped = 0;
    char uuid [64] = "";
    char *xml = sf_hv_domxml_copy (self->domain_xml, &spec, NULL, &dropped, &self->err);
    sf_hv_t *hv = xml ? sf_hv_new (self->uri, &self->err) : NULL;
    int rc = hv ? sf_hv_define (hv, self->as_domain, xml, uuid, sizeof (uuid), &self->err)
                : -1;
    sf_hv_destroy (&hv);
    free (xml);
    if (rc) {
        char *target = zsys_sprintf ("%s/%s", self->real_parent, self->base);
        if (unlink (target) && errno != ENOENT)
            SF_ERROR (&self->ctx, "cannot remove '%s' after the failed define: %s", target,
                      strerror (errno));
        else
            self->published = false;
        zstr_free (&target);
        sf_fsync_path (self->real_parent);
        return sf_err_prefix (&self->err, "restored file removed; cannot define domain "
                              "'%s'", self->as_domain);
    }
    snprintf (self->note, sizeof (self->note), "defined domain %s (uuid %s, not started) on "
              "%.200s%s", self->as_domain, uuid, self->to_file,
              dropped ? "; the original's other data disks left out" : "");
    SF_NOTICE (&self->ctx, "%s", self->note);
    return 0;
}

//  An increment (issue 13) is a qcow2 overlay whose backing file is the
//  previous point, by its name in the same store ("<uuid>.qcow2"): qemu-img
//  reads the hashed fd on top of that file of this store (the layers below
//  it are found the same way, by their own headers). The backing name is
//  read from the qcow2 header (QEMU's spec: offset at byte 8, size at 16).

static int
s_chain (restore_t *self)
{
    unsigned char header [20];
    if (pread (self->rb.fd, header, sizeof (header), 0) != (ssize_t) sizeof (header))
        return sf_err_set (&self->err, SF_ESTORE, "cannot read the header of image '%s'",
                           self->rb.image.id);
    uint64_t offset = 0;
    for (int i = 8; i < 16; i++)
        offset = (offset << 8) | header [i];
    uint32_t size = (uint32_t) header [16] << 24 | (uint32_t) header [17] << 16
                  | (uint32_t) header [18] << 8 | header [19];
    if (offset == 0 || size == 0) {
        self->fd_source = strdup ("/dev/fd/3");
        return 0;
    }
    char name [128] = "";
    if (size >= sizeof (name)
    ||  pread (self->rb.fd, name, size, (off_t) offset) != (ssize_t) size)
        return sf_err_set (&self->err, SF_ESTORE, "image '%s' has a backing file name "
                           "that is not one of this store's images", self->rb.image.id);
    name [size] = 0;
    const char *dot = strrchr (name, '.');
    char id [128];
    snprintf (id, sizeof (id), "%.*s", dot ? (int) (dot - name) : 0, name);
    if (!dot || !streq (dot, ".qcow2") || !s_uuid_valid (id))
        return sf_err_set (&self->err, SF_ESTORE, "image '%s' has backing file '%.64s', "
                           "not an image of this store; not restored", self->rb.image.id, name);
    char *store = realpath (self->store_dir, NULL);
    if (!store)
        return sf_err_set (&self->err, SF_ESTORE, "image store '%s' is not readable: %s",
                           self->store_dir, strerror (errno));
    //  The store's path goes into JSON as it is: nothing to escape in it
    bool plain = strcspn (store, "\"\\") == strlen (store);
    for (const char *c = store; *c; c++)
        if ((unsigned char) *c < 0x20)
            plain = false;
    char *base = zsys_sprintf ("%s/%s", store, name);
    free (store);
    struct stat st;
    int rc = 0;
    if (!plain)
        rc = sf_err_set (&self->err, SF_ESTORE, "the store's path has a quote, backslash "
                         "or control character: cannot name it to qemu-img");
    else
    if (lstat (base, &st) || !S_ISREG (st.st_mode))
        rc = sf_err_set (&self->err, SF_ENOENT, "image '%s' is an increment on image %s, "
                         "which is gone from the store; not restored", self->rb.image.id, id);
    else {
        self->fd_source = zsys_sprintf ("json:{\"driver\":\"qcow2\",\"file\":{\"driver\":"
                                     "\"file\",\"filename\":\"/dev/fd/3\"},\"backing\":"
                                     "{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\","
                                     "\"filename\":\"%s\"}}}", base);
        SF_INFO (&self->ctx, "image %s is an increment on image %s: restored with its chain",
                 self->rb.image.id, id);
    }
    zstr_free (&base);
    return rc;
}

//  The target: its directory exists, outside the workdir and the store;
//  the target does not exist

static int
s_check_target (restore_t *self)
{
    if (*self->to_rbd)
        return s_check_rbd_target (self);
    if (*self->as_domain && s_check_domain (self))
        return -1;
    if (sf_wire_path_check (self->to_file, "target", &self->err))
        return -1;
    free (self->real_parent);       //  checked again after the grant
    self->real_parent = NULL;
    const char *slash = strrchr (self->to_file, '/');
    self->base = slash + 1;
    if (strlen (self->base) > 255)
        return sf_err_set (&self->err, SF_EINVAL, "target's file name is longer than 255 "
                           "bytes");
    char *parent = strndup (self->to_file, slash == self->to_file ? 1
                                           : (size_t) (slash - self->to_file));
    self->real_parent = realpath (parent, NULL);
    struct stat st;
    if (!self->real_parent || stat (self->real_parent, &st) || !S_ISDIR (st.st_mode)) {
        sf_err_set (&self->err, SF_ENOENT, "target directory '%.200s' does not exist on "
                    "this node (%s)", parent, strerror (self->real_parent ? ENOTDIR : errno));
        free (parent);
        return -1;
    }
    free (parent);
    char *workdir = realpath (self->workdir, NULL);
    char *store = realpath (self->store_dir, NULL);
    bool refused = (workdir && s_under (self->real_parent, workdir))
                || (store && s_under (self->real_parent, store));
    free (workdir);
    free (store);
    if (refused)
        return sf_err_set (&self->err, SF_EINVAL, "target '%.200s' is in the worker's "
                           "workdir or image store; not restored there", self->to_file);
    char *target = zsys_sprintf ("%s/%s", self->real_parent, self->base);
    int rc = lstat (target, &st);
    int saved = errno;
    zstr_free (&target);
    if (rc == 0)
        return sf_err_set (&self->err, SF_EEXIST, "target '%.200s' exists; not "
                           "overwritten", self->to_file);
    if (saved != ENOENT)
        return sf_err_set (&self->err, SF_EIO, "cannot look at target '%.200s': %s",
                           self->to_file, strerror (saved));
    return 0;
}

//  --------------------------------------------------------------------------
//  The temp directory and its record

static int
s_write_line (FILE *file, void *arg)
{
    return fprintf (file, "%s\n", (const char *) arg) < 0 ? -1 : 0;
}

static int
s_make_temp (restore_t *self)
{
    if (*self->to_rbd) {
        //  The temp image's name, durable before it can exist
        char *records = zsys_sprintf ("%s/" S_RECORDS, self->workdir);
        int rc = sf_dir_make (records, SF_DIR_MODE);
        self->record = zsys_sprintf ("%s/%s", records, self->job_id);
        zstr_free (&records);
        if (rc)
            return sf_err_set (&self->err, SF_EIO, "cannot make '%s': %s", self->record,
                               strerror (errno));
        char spec [520];
        char *line = zsys_sprintf (S_RBD_LINE "%s", sf_stor_spec_str (&self->rbd_temp, spec,
                                                                      sizeof (spec)));
        rc = sf_file_replace (self->record, "restore record ", s_write_line, line, &self->err);
        zstr_free (&line);
        if (rc)
            return -1;
        self->recorded = true;
        self->rbd_temp_made = true;
        return 0;
    }
    self->temp_dir = zsys_sprintf ("%s/.sf-restore-%s-%s.d", self->real_parent,
                                   self->catalog_id, self->job_id);
    self->temp_file = zsys_sprintf ("%s/" S_TEMP_FILE, self->temp_dir);
    char *records = zsys_sprintf ("%s/" S_RECORDS, self->workdir);
    int rc = sf_dir_make (records, SF_DIR_MODE);
    self->record = zsys_sprintf ("%s/%s", records, self->job_id);
    zstr_free (&records);
    if (rc)
        return sf_err_set (&self->err, SF_EIO, "cannot make '%s': %s", self->record,
                           strerror (errno));
    //  Durable before the directory exists: a restart finds what to sweep
    if (sf_file_replace (self->record, "restore record ", s_write_line, self->temp_dir,
                         &self->err))
        return -1;
    self->recorded = true;
    if (mkdir (self->temp_dir, 0700))
        return sf_err_set (&self->err, errno == EEXIST ? SF_EEXIST : SF_EIO,
                           "cannot make temp directory '%.200s': %s", self->temp_dir,
                           strerror (errno));
    self->temp_made = true;
    return 0;
}

//  Remove the temp RBD image (its name is this job's: s_check_rbd_target);
//  absent is fine. A qemu-img stopped mid-copy (or killed with a worker)
//  leaves its watch on the image until the OSD times it out (30 s): Ceph
//  refuses the removal till then, so it is tried for S_RBD_REMOVE_MS.
//  Returns 0 or -1 (logged)

static int
s_rbd_temp_remove (restore_t *self)
{
    char spec [520];
    sf_stor_spec_str (&self->rbd_temp, spec, sizeof (spec));
    sf_err_t err = SF_ERR_INIT;
    int64_t deadline = sf_time_mono_ms () + S_RBD_REMOVE_MS;
    while (sf_stor_clone_remove (self->stor, &self->rbd_temp, &err)
       &&  sf_time_mono_ms () < deadline) {
        SF_DEBUG (&self->ctx, "cannot remove RBD image '%s' yet: %s", spec, err.text);
        sf_err_clear (&err);
        zclock_sleep (2000);
    }
    if (err.code) {
        SF_WARN (&self->ctx, "cannot remove RBD image '%s' (the next start tries again): %s",
                 spec, err.text);
        return -1;
    }
    return 0;
}

//  Remove the temp directory (our file in it only) and the record

static void
s_cleanup (restore_t *self)
{
    if (self->temp_made) {
        if (unlink (self->temp_file) && errno != ENOENT)
            SF_WARN (&self->ctx, "cannot remove '%s': %s", self->temp_file, strerror (errno));
        if (rmdir (self->temp_dir) && errno != ENOENT)
            SF_WARN (&self->ctx, "cannot remove '%s': %s", self->temp_dir, strerror (errno));
        else
            self->temp_made = false;
        sf_fsync_path (self->real_parent);
    }
    if (self->rbd_temp_made && !self->published && s_rbd_temp_remove (self) == 0)
        self->rbd_temp_made = false;
    if (self->published)
        self->rbd_temp_made = false;
    if (self->recorded && !self->temp_made && !self->rbd_temp_made) {
        if (unlink (self->record) && errno != ENOENT)
            SF_WARN (&self->ctx, "cannot remove '%s': %s", self->record, strerror (errno));
        self->recorded = false;
    }
}

//  --------------------------------------------------------------------------
//  Hash, convert, publish

static int
s_hash (restore_t *self)
{
    char hex [65];
    if (sf_readback_hash (&self->rb, self->rb.image.size, self->rb.image.id, hex))
        return -1;
    if (!streq (hex, self->rb.image.sha256))
        return sf_err_set (&self->err, SF_ESTORE, "image %s does not match its recorded "
                           "SHA-256; not restored", self->rb.image.id);
    return 0;
}

//  qemu-img convert from src (NULL: the open dir image as /dev/fd/3, with
//  its chain for an increment) in
//  src_format to dst in self->format; 0 or -1 with self->err

static int
s_qemu_convert (restore_t *self, const char *src, const char *src_format, const char *dst)
{
    //  The tighter of [conversion] rate_limit and the grant's rate
    uint64_t rate = sf_readback_rate (&self->rb, self->rate_limit);
    char rate_text [32];
    snprintf (rate_text, sizeof (rate_text), "%" PRIu64, rate);
    char *argv [] = { "qemu-img", "convert", "-p", "-f", (char *) src_format, "-O",
                      self->format, "-r", rate_text, "--",
                      src? (char *) src: self->fd_source, (char *) dst, NULL };
    if (!rate)
        memmove (argv + 7, argv + 9, 4 * sizeof (char *));
    sf_proc_t *proc = src? sf_proc_new (argv, SF_PROC_CAPTURE, &self->err)
                         : sf_proc_new_pass (argv, SF_PROC_CAPTURE, self->rb.fd, &self->err);
    if (!proc)
        return -1;
    self->rb.converting = true;
    self->rb.qemu_rate = rate;
    int rc = sf_readback_watch (&self->rb, proc, dst, self->stall_ms, S_TICK_MS);
    self->rb.converting = false;
    if (rc)
        sf_proc_stop (proc, 2000);
    else
        rc = sf_proc_check (proc, &self->err);
    sf_proc_destroy (&proc);
    if (rc)
        return sf_err_prefix (&self->err, "cannot convert image '%s'", self->rb.image.id);
    return 0;
}

static int
s_convert (restore_t *self)
{
    char *src = NULL;
    if (streq (self->rb.image.store, "rbd"))
        src = sf_stor_image_uri (self->stor, &self->source);
    int rc = s_qemu_convert (self, src, self->rb.image.format, self->temp_file);
    zstr_free (&src);
    if (rc)
        return -1;
    //  The mode of the store's images, whatever qemu-img and the umask made;
    //  durable before it gets its name
    struct stat st;
    if (chmod (self->temp_file, SF_FILE_MODE)
    ||  sf_fsync_path (self->temp_file) || stat (self->temp_file, &st))
        return sf_err_set (&self->err, SF_EIO, "cannot fsync '%s': %s", self->temp_file,
                           strerror (errno));
    self->bytes = (uint64_t) st.st_size;
    return 0;
}

static int
s_publish (restore_t *self)
{
    char *target = zsys_sprintf ("%s/%s", self->real_parent, self->base);
    int rc = link (self->temp_file, target);
    int saved = errno;
    zstr_free (&target);
    if (rc)
        return sf_err_set (&self->err, saved == EEXIST ? SF_EEXIST : SF_EIO,
                           "cannot give the restored file its name '%.200s': %s%s",
                           self->to_file, strerror (saved),
                           saved == EEXIST ? " (made while we restored; not overwritten)" : "");
    self->published = true;
    sf_fsync_path (self->real_parent);
    return 0;
}

//  --------------------------------------------------------------------------
//  The actor

static int s_make_rbd (restore_t *self);
static int s_publish_rbd (restore_t *self);

static int
s_run (restore_t *self)
{
    if (s_check_target (self) || s_check_image (self)
    ||  (!streq (self->rb.image.store, "rbd") && s_chain (self)))
        return -1;
    sf_readback_emit (&self->rb, SF_PHASE_QUEUED, 0, 0, NULL);
    if (sf_readback_wait_grant (&self->rb, self->wait_grant, self->rb.image.size))
        return -1;
    //  The target may have come while we waited
    if (s_check_target (self) || s_make_temp (self))
        return -1;
    int64_t start = sf_time_mono_ms ();
    bool rbd_source = streq (self->rb.image.store, "rbd");
    if ((!rbd_source && s_hash (self))
    ||  (*self->to_rbd? s_make_rbd (self): s_convert (self)))
        return -1;
    self->convert_ms = (uint64_t) (sf_time_mono_ms () - start);
    sf_readback_emit (&self->rb, SF_PHASE_CONVERTED, self->convert_ms, self->bytes,
            !rbd_source? "hash checked"
            : *self->to_rbd && !self->flatten? "cloned from its parent snapshot (no bytes "
                                               "copied; an RBD clone has no stored hash)"
            : "copied (an RBD clone has no stored hash)");
    //  A cancel that came during the conversion still wins
    if (sf_readback_poll_pipe (&self->rb))
        return -1;
    start = sf_time_mono_ms ();
    if (*self->to_rbd? s_publish_rbd (self)
    :   (*self->as_domain && s_give (self)) || s_publish (self)
    ||  (*self->as_domain && s_define (self)))
        return -1;
    self->upload_ms = (uint64_t) (sf_time_mono_ms () - start);
    sf_readback_emit (&self->rb, SF_PHASE_UPLOADED, self->upload_ms, self->bytes,
            *self->to_rbd? self->to_rbd: self->to_file);
    return 0;
}

//  --------------------------------------------------------------------------
//  RBD: an RBD clone as the source, a new RBD image as the target

static int
s_need_stor (restore_t *self, const char *what)
{
    return self->stor? 0: sf_err_set (&self->err, SF_ENOTSUP, "%s, but RBD support is off "
                                      "on this node ([storage.rbd] ceph_conf)", what);
}

//  The image: an RBD image that exists; for a new clone (to_rbd without
//  flatten) a clone whose parent snapshot Ceph names

static int
s_check_rbd_image (restore_t *self)
{
    if (s_need_stor (self, "the image is in RBD")
    ||  sf_stor_spec_parse (self->rb.image.id, &self->source, &self->err))
        return -1;
    bool exists = false, is_clone = false;
    if (sf_stor_parent (self->stor, &self->source, &exists, &is_clone, &self->parent,
                        &self->err))
        return sf_err_prefix (&self->err, "cannot look at image '%s'", self->rb.image.id);
    if (!exists)
        return sf_err_set (&self->err, SF_ENOENT, "RBD image '%s' does not exist (removed "
                           "outside snapfleet?); not restored", self->rb.image.id);
    if (*self->to_rbd && !self->flatten && self->parent.kind != SF_STOR_SNAP)
        return sf_err_set (&self->err, SF_ESTATE, "RBD image '%s' has no parent snapshot to "
                           "clone (flattened?); restore it with --flatten", self->rb.image.id);
    return 0;
}

//  The target: a name that no image has (checked again by the rename,
//  which never replaces one); the temp image beside it is named for the
//  job: .sf-restore-<catalogue>-<job>

static int
s_check_rbd_target (restore_t *self)
{
    if (s_need_stor (self, "restore to RBD")
    ||  sf_stor_spec_parse (self->to_rbd, &self->target, &self->err))
        return -1;
    self->rbd_temp = self->target;
    if (snprintf (self->rbd_temp.image, sizeof (self->rbd_temp.image), ".sf-restore-%s-%s",
                  self->catalog_id, self->job_id) >= (int) sizeof (self->rbd_temp.image))
        return sf_err_set (&self->err, SF_EINVAL, "job id '%.64s' is too long", self->job_id);
    bool exists = false, is_clone = false;
    if (sf_stor_parent (self->stor, &self->target, &exists, &is_clone, NULL, &self->err))
        return sf_err_prefix (&self->err, "cannot look at target '%.200s'", self->to_rbd);
    if (exists)
        return sf_err_set (&self->err, SF_EEXIST, "RBD image '%.200s' exists; not "
                           "overwritten", self->to_rbd);
    return 0;
}

//  Make the temp image: a clone of the source's parent snapshot, or a
//  copy of the bytes (qemu-img creates it, and fails if it exists)

static int
s_make_rbd (restore_t *self)
{
    //  One that a killed attempt of this job left (its name is the job's)
    if (s_rbd_temp_remove (self))
        return sf_err_set (&self->err, SF_ECEPH, "cannot remove the temp image a previous "
                           "attempt left (see the worker's log)");
    char *dst = sf_stor_image_uri (self->stor, &self->rbd_temp);
    int rc = 0;
    if (streq (self->rb.image.store, "rbd") && !self->flatten) {
        rc = sf_stor_clone (self->stor, &self->parent.spec, self->parent.snap,
                            &self->rbd_temp, &self->err);
        self->bytes = 0;
    }
    else {
        char *src = streq (self->rb.image.store, "rbd")
                  ? sf_stor_image_uri (self->stor, &self->source): NULL;
        rc = s_qemu_convert (self, src, self->rb.image.format, dst);
        zstr_free (&src);
        if (rc == 0)
            rc = sf_stor_size (self->stor, &self->rbd_temp, &self->bytes, &self->err);
    }
    zstr_free (&dst);
    return rc;
}

static int
s_publish_rbd (restore_t *self)
{
    if (sf_stor_rename (self->stor, &self->rbd_temp, self->target.image, &self->err)) {
        if (self->err.code == SF_EEXIST)
            return sf_err_set (&self->err, SF_EEXIST, "RBD image '%.200s' was made while we "
                               "restored; not overwritten", self->to_rbd);
        return sf_err_prefix (&self->err, "cannot give the restored image its name");
    }
    self->published = true;
    return 0;
}

static void
s_actor (zsock_t *pipe, void *arg)
{
    const sf_restore_args_t *args = (const sf_restore_args_t *) arg;
    const sf_restore_t *restore = args->restore;
    restore_t self_ = {
        .attempt = args->attempt, .rate_limit = args->rate_limit,
        .stall_ms = args->stall_ms > 0 ? args->stall_ms : 120000,
        .wait_grant = args->wait_upload_grant, .err = SF_ERR_INIT
    };
    restore_t *self = &self_;
    self->job_id = sf_strdup0 (args->job_id);
    self->catalog_id = sf_strdup0 (args->catalog_id);
    self->workdir = sf_strdup0 (args->workdir);
    self->store_driver = sf_strdup0 (args->store_driver);
    self->store_dir = sf_strdup0 (args->store_dir);
    self->to_file = sf_strdup0 (restore->to_file);
    self->to_rbd = sf_strdup0 (restore->to_rbd);
    self->format = sf_strdup0 (restore->format);
    self->as_domain = sf_strdup0 (restore->as_domain);
    self->domain_xml = sf_strdup0 (restore->domain_xml);
    self->uri = sf_strdup0 (args->uri);
    self->flatten = restore->flatten;
    self->stor = args->stor;
    self->ctx.job_id = self->job_id;
    sf_readback_init (&self->rb, pipe, &self->ctx, &self->err, "restore", self->job_id,
                      self->attempt);
    sf_readback_set_image (&self->rb, restore->image);
    zsock_signal (pipe, 0);     //  args are copied: the owner may free them

    bool ok = sf_naming_id_valid (self->catalog_id) && sf_name_is_safe (self->job_id)
            ? s_run (self) == 0
            : sf_err_set (&self->err, SF_EPROTO, "restore without a valid catalogue or "
                          "job id") == 0;
    if (!ok && self->published)
        SF_ERROR (&self->ctx, "restore failed after publishing '%s'", self->to_file);
    s_cleanup (self);
    if (ok)
        SF_INFO (&self->ctx, "image %s restored to '%s' (%s, %" PRIu64 " bytes, %" PRIu64
                 " ms)", self->rb.image.id, *self->to_rbd? self->to_rbd: self->to_file,
                 self->format, self->bytes,
                 self->convert_ms + self->upload_ms);
    else
        SF_WARN (&self->ctx, "restore failed: %s", self->err.text);
    s_send_result (self, ok);
    zstr_free (&self->fd_source);
    sf_readback_fini (&self->rb);
    free (self->real_parent);
    zstr_free (&self->temp_dir);
    zstr_free (&self->temp_file);
    zstr_free (&self->record);
    char **strings [] = { &self->job_id, &self->catalog_id, &self->workdir,
                          &self->store_driver, &self->store_dir, &self->to_file,
                          &self->to_rbd, &self->format, &self->as_domain,
                          &self->domain_xml, &self->uri };
    for (size_t i = 0; i < sizeof (strings) / sizeof (strings [0]); i++)
        zstr_free (strings [i]);
}

zactor_t *
sf_restore_new (const sf_restore_args_t *args)
{
    assert (args && args->job_id && args->restore && args->restore->image);
    assert (args->workdir && args->store_driver && args->store_dir);
    return zactor_new (s_actor, (void *) args);
}

//  --------------------------------------------------------------------------
//  Sweep

//  Is dir (a record's content) the temp directory of a restore of job?

static bool
s_temp_of (const char *dir, const char *job)
{
    const char *slash = strrchr (dir, '/');
    if (*dir != '/' || !slash)
        return false;
    const char *name = slash + 1;
    const char *prefix = ".sf-restore-";
    if (strncmp (name, prefix, strlen (prefix)))
        return false;
    const char *catalog = name + strlen (prefix);
    if (strlen (catalog) < SF_NAMING_ID_LEN + 1 || catalog [SF_NAMING_ID_LEN] != '-')
        return false;
    char id [SF_NAMING_ID_LEN + 1];
    snprintf (id, sizeof (id), "%.*s", SF_NAMING_ID_LEN, catalog);
    const char *tail = catalog + SF_NAMING_ID_LEN + 1;
    size_t length = strlen (job);
    return sf_naming_id_valid (id) && strncmp (tail, job, length) == 0
        && streq (tail + length, ".d");
}

static bool
s_temp_file (const char *name)
{
    return streq (name, S_TEMP_FILE);
}

//  A record's RBD temp image ("rbd POOL/[NS/].sf-restore-<cat>-<job>"):
//  removed if its name is the job's; 0 if it is gone, -1 if not

static int
s_sweep_rbd (const char *line, const char *job, sf_stor_t *stor, sf_logctx_t *ctx)
{
    sf_stor_spec_t spec;
    sf_err_t err = SF_ERR_INIT;
    char *dir = NULL;
    if (sf_stor_spec_parse (line + strlen (S_RBD_LINE), &spec, &err) == 0)
        dir = zsys_sprintf ("/%s.d", spec.image);
    if (!dir || !s_temp_of (dir, job)) {
        SF_WARN (ctx, "restore record names '%s', not a temp image of its job; left in "
                 "place", line);
        zstr_free (&dir);
        return -1;
    }
    zstr_free (&dir);
    if (!stor) {
        SF_WARN (ctx, "a killed restore left RBD image '%s', but RBD support is off; left "
                 "in place", line + strlen (S_RBD_LINE));
        return -1;
    }
    if (sf_stor_clone_remove (stor, &spec, &err)) {
        SF_WARN (ctx, "cannot remove RBD image '%s' a killed restore left: %s",
                 line + strlen (S_RBD_LINE), err.text);
        return -1;
    }
    SF_NOTICE (ctx, "removed what a killed restore left: RBD image '%s'",
               line + strlen (S_RBD_LINE));
    return 0;
}

int
sf_restore_sweep (const char *workdir, sf_stor_t *stor)
{
    assert (workdir);
    char *records = zsys_sprintf ("%s/" S_RECORDS, workdir);
    DIR *dir = opendir (records);
    int swept = 0;
    struct dirent *entry;
    while (dir && (entry = readdir (dir))) {
        if (!sf_name_is_safe (entry->d_name))
            continue;
        char *record = zsys_sprintf ("%s/%s", records, entry->d_name);
        size_t length = strlen (entry->d_name);
        if (length > 4 && streq (entry->d_name + length - 4, ".tmp")) {
            //  A record whose write was cut: its directory was never made
            unlink (record);
            zstr_free (&record);
            continue;
        }
        char line [SF_WIRE_MAX_PATH + 64] = "";
        FILE *file = fopen (record, "re");
        bool read = file && fgets (line, sizeof (line), file) != NULL;
        if (file)
            fclose (file);
        line [strcspn (line, "\n")] = 0;
        sf_logctx_t ctx = { .job_id = entry->d_name };
        if (read && strncmp (line, S_RBD_LINE, strlen (S_RBD_LINE)) == 0) {
            if (s_sweep_rbd (line, entry->d_name, stor, &ctx) == 0) {
                unlink (record);
                swept++;
            }
        }
        else
        if (!read || !s_temp_of (line, entry->d_name))
            SF_WARN (&ctx, "restore record '%s' does not name a temp directory of its "
                     "job; left in place", record);
        else {
            //  Its directory, then our file in it, never following a link
            char *slash = strrchr (line, '/');
            *slash = 0;
            int rc = sf_dir_remove_at (*line ? line : "/", slash + 1, s_temp_file);
            if (rc == 0) {
                SF_NOTICE (&ctx, "removed what a killed restore left: '%s/%s'", line,
                           slash + 1);
                unlink (record);
                swept++;
            }
            else
                SF_WARN (&ctx, "cannot remove '%s/%s' a killed restore left: %s", line,
                         slash + 1, strerror (errno));
        }
        zstr_free (&record);
    }
    if (dir)
        closedir (dir);
    zstr_free (&records);
    return swept;
}

//  --------------------------------------------------------------------------
//  Self test

#define TEST_IMAGE "0b5e0c35-2d1f-4c6a-9d43-1b2f3a4c5d6e"
#define TEST_INCR  "1c6f1d46-3e20-4d7b-8e54-2c3a4b5d6e7f"

//  Run a shell command (the self test's fixtures)
static void
s_shell (const char *command)
{
    char *argv [] = { "/bin/sh", "-c", (char *) command, NULL };
    sf_err_t err = SF_ERR_INIT;
    sf_proc_t *proc = sf_proc_run (argv, NULL, sf_time_mono_ms () + 60000, &err);
    if (!proc)
        fprintf (stderr, "\n'%s': %s\n", command, err.text);
    assert (proc);
    sf_proc_destroy (&proc);
}

//  Run one restore to its result. grant: answer UPLOAD_WAIT with "GRANT 0"
//  (else "CANCEL"). phases gets the event phases as letters (q w c u), and
//  "a" for the rate applied.
//  Returns the result (caller frees it).
static sf_envelope_t *
s_run_test (sf_restore_args_t *args, bool grant, char *phases)
{
    zactor_t *actor = sf_restore_new (args);
    sf_envelope_t *result = NULL;
    *phases = 0;
    while (!result) {
        char *kind = NULL;
        zframe_t *frame = NULL;
        assert (zsock_recv (actor, "sf", &kind, &frame) == 0 && kind && frame);
        if (streq (kind, "APPLIED")) {
            //  The granted rate, "0" (no limit), as the test grants it
            assert (zframe_streq (frame, "0"));
            strcat (phases, "a");
            zstr_free (&kind);
            zframe_destroy (&frame);
            continue;
        }
        sf_err_t err = SF_ERR_INIT;
        sf_envelope_t *env = sf_wire_decode (frame, &err);
        assert (env);
        if (streq (kind, "RESULT"))
            result = env;
        else {
            int phase = env->job_event->phase;
            strcat (phases, phase == SF_PHASE_QUEUED ? "q" : phase == SF_PHASE_UPLOAD_WAIT
                            ? "w" : phase == SF_PHASE_CONVERTED ? "c"
                            : phase == SF_PHASE_UPLOADED ? "u" : "?");
            if (phase == SF_PHASE_UPLOAD_WAIT) {
                assert (env->job_event->bytes == args->restore->image->size);
                if (grant)
                    zstr_sendx (actor, "GRANT", "0", NULL);
                else
                    zstr_send (actor, "CANCEL");
            }
            sf_wire_free (&env);
        }
        zstr_free (&kind);
        zframe_destroy (&frame);
    }
    zactor_destroy (&actor);
    return result;
}

static bool
s_exists (const char *format, const char *arg)
{
    char *path = zsys_sprintf (format, arg);
    struct stat st;
    bool exists = lstat (path, &st) == 0;
    zstr_free (&path);
    return exists;
}

//  The result failed with code and a text containing text
static void
s_assert_failed (sf_envelope_t **env_p, int code, const char *text)
{
    sf_envelope_t *env = *env_p;
    assert (env && env->body_case == SF_BODY_JOB_RESULT);
    const sf_job_result_t *result = env->job_result;
    if (result->ok || !result->error || result->error->code != code
    ||  !strstr (result->error->text, text))
        fprintf (stderr, "\nexpected %d '%s', got %s %d '%s'\n", code, text,
                 result->ok ? "ok" : "failed", result->error ? result->error->code : 0,
                 result->error ? result->error->text : "");
    assert (!result->ok && result->error && result->error->code == code);
    assert (strstr (result->error->text, text));
    assert (streq (result->strategy, SF_WIRE_RESTORE));
    sf_wire_free (env_p);
}

//  RBD on the fake cluster: an RBD clone restored to RBD as a new clone
//  of its parent snapshot (no bytes, no qemu-img); an existing name is
//  refused and stays; a failure removes only the temp image; the sweep
//  removes a killed restore's temp image and nothing else

static void
s_test_rbd (sf_restore_args_t *args, const char *dir)
{
    sf_err_t err = SF_ERR_INIT;
    sf_stor_fake_t *fake = sf_stor_fake_new ();
    sf_stor_cfg_t cfg = { "fake", "/etc/ceph/ceph.conf", "admin", "", 5000 };
    sf_stor_t *stor = sf_stor_new_with (&cfg, &sf_stor_fake_driver, fake, &err);
    assert (stor);
    sf_stor_fake_add (fake, "rbd/vm1", 1 << 20);
    sf_stor_fake_add (fake, "rbd/taken", 1 << 20);
    sf_stor_spec_t vm1, clone;
    assert (sf_stor_spec_parse ("rbd/vm1", &vm1, &err) == 0);
    assert (sf_stor_spec_parse ("rbd/vm1-snapfleet-0123456789abcdef-J1", &clone, &err) == 0);
    assert (sf_stor_snap_create (stor, &vm1, "snapfleet-0123456789abcdef-J1", &err) == 0);
    assert (sf_stor_snap_protect (stor, &vm1, "snapfleet-0123456789abcdef-J1", &err) == 0);
    assert (sf_stor_clone (stor, &vm1, "snapfleet-0123456789abcdef-J1", &clone, &err) == 0);
    size_t objects = sf_stor_fake_objects (fake);
    sf_image_t image = SF_IMAGE_INIT;
    image.store = "rbd", image.id = "rbd/vm1-snapfleet-0123456789abcdef-J1";
    image.path = "rbd:rbd/vm1-snapfleet-0123456789abcdef-J1";
    image.size = 1 << 20, image.sha256 = "", image.format = "raw";
    sf_restore_t restore = SF_RESTORE_INIT;
    restore.image = &image, restore.to_file = "", restore.to_rbd = "rbd/new";
    restore.format = "raw";
    sf_restore_args_t rbd_args = *args;
    rbd_args.restore = &restore, rbd_args.stor = stor, rbd_args.job_id = "J8";
    char phases [16];
    //  A temp image a killed attempt of J8 left goes first
    sf_stor_fake_add (fake, "rbd/.sf-restore-0123456789abcdef-J8", 1 << 20);
    sf_envelope_t *env = s_run_test (&rbd_args, true, phases);
    assert (env->job_result->ok && streq (phases, "qwacu"));
    assert (env->job_result->bytes == 0 && streq (env->job_result->method, "restore"));
    assert (strstr (env->job_result->error->text, "no stored hash"));
    sf_wire_free (&env);
    assert (sf_stor_fake_has (fake, "rbd/new"));
    assert (!sf_stor_fake_has (fake, "rbd/.sf-restore-0123456789abcdef-J8"));
    assert (sf_stor_fake_objects (fake) == objects + 1);    //  one clone more
    assert (!s_exists ("%s/work/restores/J8", dir));
    //  The same name again, and one that exists: refused, nothing made
    env = s_run_test (&rbd_args, true, phases);
    s_assert_failed (&env, SF_EEXIST, "RBD image 'rbd/new' exists; not overwritten");
    restore.to_rbd = "rbd/taken";
    env = s_run_test (&rbd_args, true, phases);
    s_assert_failed (&env, SF_EEXIST, "RBD image 'rbd/taken' exists; not overwritten");
    assert (sf_stor_fake_objects (fake) == objects + 1);
    //  The clone fails: its temp image (if any) goes, the record too
    restore.to_rbd = "rbd/new2";
    sf_stor_fake_fail (fake, "clone", EIO);
    env = s_run_test (&rbd_args, true, phases);
    s_assert_failed (&env, SF_ECEPH, "Input/output error");
    assert (!sf_stor_fake_has (fake, "rbd/new2"));
    assert (!s_exists ("%s/work/restores/J8", dir));
    //  The rename finds a name made meanwhile (the fake fails it): the
    //  temp image goes
    sf_stor_fake_fail (fake, "rename", EEXIST);
    env = s_run_test (&rbd_args, true, phases);
    s_assert_failed (&env, SF_EEXIST, "was made while we restored; not overwritten");
    assert (!sf_stor_fake_has (fake, "rbd/.sf-restore-0123456789abcdef-J8"));
    assert (sf_stor_fake_objects (fake) == objects + 1);
    //  A source that is not a clone cannot be cloned; a gone one fails
    image.id = "rbd/taken", image.path = "rbd:rbd/taken";
    env = s_run_test (&rbd_args, true, phases);
    s_assert_failed (&env, SF_ESTATE, "restore it with --flatten");
    image.id = "rbd/gone", image.path = "rbd:rbd/gone";
    env = s_run_test (&rbd_args, true, phases);
    s_assert_failed (&env, SF_ENOENT, "does not exist");
    //  The sweep: a killed restore's temp image goes; a record naming
    //  another image leaves it
    sf_stor_spec_t temp;
    assert (sf_stor_spec_parse ("rbd/.sf-restore-0123456789abcdef-J12", &temp, &err) == 0);
    assert (sf_stor_clone (stor, &vm1, "snapfleet-0123456789abcdef-J1", &temp, &err) == 0);
    char *cmd = zsys_sprintf ("set -e; cd %s/work/restores; "
                              "echo 'rbd rbd/.sf-restore-0123456789abcdef-J12' > J12; "
                              "echo 'rbd rbd/taken' > J13", dir);
    s_shell (cmd);
    zstr_free (&cmd);
    assert (sf_restore_sweep (args->workdir, NULL) == 0);       //  RBD off: both stay
    assert (sf_stor_fake_has (fake, "rbd/.sf-restore-0123456789abcdef-J12"));
    assert (sf_restore_sweep (args->workdir, stor) == 1);
    assert (!sf_stor_fake_has (fake, "rbd/.sf-restore-0123456789abcdef-J12"));
    assert (sf_stor_fake_has (fake, "rbd/taken"));
    assert (!s_exists ("%s/work/restores/J12", dir) && s_exists ("%s/work/restores/J13", dir));
    sf_stor_destroy (&stor);
    sf_stor_fake_destroy (&fake);
}

void
sf_restore_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_restore: ");
    //  @selftest
    char dir [] = "/tmp/sf-restore-test-XXXXXX";
    assert (mkdtemp (dir));
    char *cmd = zsys_sprintf (
        "set -e; cd %s; mkdir work store out; "
        "qemu-img create -q -f qcow2 store/" TEST_IMAGE ".qcow2 16M; "
        "qemu-io -c 'write -P 0x5a 0 6M' -c 'write -P 0xa5 8M 64k' "
        "store/" TEST_IMAGE ".qcow2 >/dev/null; "
        "sha256sum store/" TEST_IMAGE ".qcow2 | cut -c1-64 > sha; "
        "stat -c %%s store/" TEST_IMAGE ".qcow2 > size; echo keep > out/exists", dir);
    s_shell (cmd);
    zstr_free (&cmd);
    char *path = zsys_sprintf ("%s/sha", dir);
    char sha [80] = "", size [32] = "";
    FILE *file = fopen (path, "r");
    assert (file && fgets (sha, sizeof (sha), file));
    fclose (file);
    zstr_free (&path);
    sha [strcspn (sha, "\n")] = 0;
    path = zsys_sprintf ("%s/size", dir);
    file = fopen (path, "r");
    assert (file && fgets (size, sizeof (size), file));
    fclose (file);
    zstr_free (&path);

    char *store = zsys_sprintf ("%s/store", dir);
    char *work = zsys_sprintf ("%s/work", dir);
    char *image_path = zsys_sprintf ("%s/" TEST_IMAGE ".qcow2", store);
    char *target = zsys_sprintf ("%s/out/vm1.img", dir);
    sf_image_t image = SF_IMAGE_INIT;
    image.store = "dir", image.id = TEST_IMAGE, image.path = image_path;
    image.size = strtoull (size, NULL, 10), image.sha256 = sha, image.format = "qcow2";
    sf_restore_t restore = SF_RESTORE_INIT;
    restore.image = &image, restore.to_file = target, restore.format = "raw";
    restore.to_rbd = "";
    sf_restore_args_t args = {
        .job_id = "J7", .attempt = 1, .catalog_id = "0123456789abcdef",
        .restore = &restore, .workdir = work, .store_driver = "dir", .store_dir = store,
        .rate_limit = 0, .stall_ms = 30000, .wait_upload_grant = true
    };
    char phases [16];

    //  A raw restore: the same disk, nothing else left
    sf_envelope_t *env = s_run_test (&args, true, phases);
    assert (env->job_result->ok);
    assert (streq (phases, "qwacu"));
    assert (env->job_result->bytes == 16 << 20);
    sf_wire_free (&env);
    cmd = zsys_sprintf ("set -e; cd %s; qemu-img compare -q -f qcow2 -F raw "
                        "store/" TEST_IMAGE ".qcow2 out/vm1.img; "
                        "test \"$(stat -c %%a out/vm1.img)\" = 640; "
                        "test \"$(ls -A out | sort | tr '\\n' ' ')\" = 'exists vm1.img '; "
                        "test -z \"$(ls -A work/restores)\"", dir);
    s_shell (cmd);
    zstr_free (&cmd);

    //  The same target again: refused, left as it is
    env = s_run_test (&args, true, phases);
    s_assert_failed (&env, SF_EEXIST, "exists; not overwritten");
    assert (streq (phases, ""));
    restore.to_file = zsys_sprintf ("%s/out/exists", dir);
    env = s_run_test (&args, true, phases);
    s_assert_failed (&env, SF_EEXIST, "exists; not overwritten");
    cmd = zsys_sprintf ("test \"$(cat %s/out/exists)\" = keep", dir);
    s_shell (cmd);
    zstr_free (&cmd);
    zstr_free (&restore.to_file);

    //  qcow2, and a hash that does not match: nothing made
    restore.to_file = zsys_sprintf ("%s/out/vm1.qcow2", dir);
    restore.format = "qcow2";
    char first = sha [0];
    sha [0] = first == '0' ? '1' : '0';
    env = s_run_test (&args, true, phases);
    s_assert_failed (&env, SF_ESTORE, "image " TEST_IMAGE " does not match its recorded "
                     "SHA-256; not restored");
    assert (streq (phases, "qwa"));
    assert (!s_exists ("%s/out/vm1.qcow2", dir));
    assert (!s_exists ("%s/out/.sf-restore-0123456789abcdef-J7.d", dir));
    sha [0] = first;
    //  --as-domain with a name that exists (test:///default has "test"), or
    //  an XML without the image's disk: refused before anything is made
    restore.as_domain = "test";
    restore.domain_xml = "<domain><name>vm1</name><devices><disk device='disk'>"
                         "<source file='/srv/vm1.img'/><target dev='vda'/></disk>"
                         "</devices></domain>";
    image.disk_target = "vda";
    args.uri = "test:///default";
    env = s_run_test (&args, true, phases);
    s_assert_failed (&env, SF_EEXIST, "a domain named 'test' exists; nothing restored");
    assert (streq (phases, "") && !s_exists ("%s/out/vm1.qcow2", dir));
    image.disk_target = "vdz", restore.as_domain = "vm1-back";
    env = s_run_test (&args, true, phases);
    s_assert_failed (&env, SF_EINVAL, "no data disk of target 'vdz'");
    restore.as_domain = "", restore.domain_xml = "", image.disk_target = "";
    //  Cancelled while it waits for its grant
    env = s_run_test (&args, false, phases);
    s_assert_failed (&env, SF_ECANCELED, "cancelled");
    assert (!s_exists ("%s/out/vm1.qcow2", dir));
    //  Cancelled while it hashes at a granted 1 MiB/s (6 s for the image's
    //  6 MiB): it stops at the next chunk, and nothing is left
    zactor_t *actor = sf_restore_new (&args);
    int64_t cancelled_at = 0;
    env = NULL;
    while (!env) {
        char *kind = NULL;
        zframe_t *frame = NULL;
        assert (zsock_recv (actor, "sf", &kind, &frame) == 0 && kind && frame);
        sf_err_t err = SF_ERR_INIT;
        if (streq (kind, "APPLIED")) {
            assert (zframe_streq (frame, "1048576"));
            zclock_sleep (500);             //  a few chunks into the hash
            cancelled_at = sf_time_mono_ms ();
            zstr_send (actor, "CANCEL");
        }
        else {
            sf_envelope_t *got = sf_wire_decode (frame, &err);
            assert (got);
            if (streq (kind, "RESULT"))
                env = got;
            else {
                if (got->job_event->phase == SF_PHASE_UPLOAD_WAIT)
                    zstr_sendx (actor, "GRANT", "1048576", NULL);
                assert (got->job_event->phase != SF_PHASE_CONVERTED);
                sf_wire_free (&got);
            }
        }
        zstr_free (&kind);
        zframe_destroy (&frame);
    }
    zactor_destroy (&actor);
    assert (cancelled_at && sf_time_mono_ms () - cancelled_at < 3000);
    assert (streq (env->job_result->error->text, "restore cancelled"));     //  not converting
    s_assert_failed (&env, SF_ECANCELED, "restore cancelled");
    assert (!s_exists ("%s/out/vm1.qcow2", dir));
    assert (!s_exists ("%s/out/.sf-restore-0123456789abcdef-J7.d", dir));
    assert (!s_exists ("%s/work/restores/J7", dir));
    //  Now a qcow2 restore with a rate limit
    args.rate_limit = 8 << 20;
    env = s_run_test (&args, true, phases);
    assert (env->job_result->ok);
    sf_wire_free (&env);
    cmd = zsys_sprintf ("set -e; cd %s; qemu-img check -q out/vm1.qcow2; qemu-img compare "
                        "-q store/" TEST_IMAGE ".qcow2 out/vm1.qcow2", dir);
    s_shell (cmd);
    zstr_free (&cmd);
    zstr_free (&restore.to_file);

    //  An increment (issue 13): an overlay on the image by its store name;
    //  restored whole, with its chain; with its base gone, refused
    args.rate_limit = 0;
    cmd = zsys_sprintf ("set -e; cd %s/store; qemu-img create -q -f qcow2 " TEST_INCR
                        ".qcow2 16M; qemu-io -c 'write -P 0x33 1M 64k' " TEST_INCR ".qcow2 "
                        ">/dev/null; qemu-img rebase -u -f qcow2 -F qcow2 -b " TEST_IMAGE
                        ".qcow2 " TEST_INCR ".qcow2; sha256sum " TEST_INCR ".qcow2 | "
                        "cut -c1-64 > ../sha2; stat -c %%s " TEST_INCR ".qcow2 > ../size2",
                        dir);
    s_shell (cmd);
    zstr_free (&cmd);
    char sha2 [80] = "", size2 [32] = "";
    path = zsys_sprintf ("%s/sha2", dir);
    file = fopen (path, "r");
    assert (file && fgets (sha2, sizeof (sha2), file));
    fclose (file);
    zstr_free (&path);
    sha2 [strcspn (sha2, "\n")] = 0;
    path = zsys_sprintf ("%s/size2", dir);
    file = fopen (path, "r");
    assert (file && fgets (size2, sizeof (size2), file));
    fclose (file);
    zstr_free (&path);
    char *incr_path = zsys_sprintf ("%s/" TEST_INCR ".qcow2", store);
    image.id = TEST_INCR, image.path = incr_path, image.sha256 = sha2;
    image.size = strtoull (size2, NULL, 10);
    restore.to_file = zsys_sprintf ("%s/out/incr.qcow2", dir);
    env = s_run_test (&args, true, phases);
    assert (env->job_result->ok);
    sf_wire_free (&env);
    cmd = zsys_sprintf ("set -e; cd %s; qemu-img check -q out/incr.qcow2; "
                        "! qemu-img info out/incr.qcow2 | grep -q backing; "
                        "qemu-img compare -q store/" TEST_INCR ".qcow2 out/incr.qcow2; "
                        "! qemu-img compare -q store/" TEST_IMAGE ".qcow2 out/incr.qcow2; "
                        "mv store/" TEST_IMAGE ".qcow2 store/base.moved", dir);
    s_shell (cmd);
    zstr_free (&cmd);
    zstr_free (&restore.to_file);
    restore.to_file = zsys_sprintf ("%s/out/incr2.qcow2", dir);
    env = s_run_test (&args, true, phases);
    s_assert_failed (&env, SF_ENOENT, "is an increment on image " TEST_IMAGE ", which is "
                     "gone from the store; not restored");
    assert (!s_exists ("%s/out/incr2.qcow2", dir));
    cmd = zsys_sprintf ("set -e; cd %s; mv store/base.moved store/" TEST_IMAGE ".qcow2; "
                        "rm store/" TEST_INCR ".qcow2", dir);
    s_shell (cmd);
    zstr_free (&cmd);
    zstr_free (&restore.to_file);
    zstr_free (&incr_path);
    image.id = TEST_IMAGE, image.path = image_path, image.sha256 = sha;
    image.size = strtoull (size, NULL, 10);

    //  Targets it refuses
    struct { const char *to_file, *to_rbd; int code; const char *text; } refused [] = {
        { "%s/work/x.img", "", SF_EINVAL, "is in the worker's workdir or image store" },
        { "%s/store/x.img", "", SF_EINVAL, "is in the worker's workdir or image store" },
        { "%s/nodir/x.img", "", SF_ENOENT, "does not exist on this node" },
        { "%s/out/../out/x.img", "", SF_EINVAL, "'..' component" },
        { "", "rbd/vm1", SF_ENOTSUP, "restore to RBD, but RBD support is off" },
    };
    for (size_t i = 0; i < sizeof (refused) / sizeof (refused [0]); i++) {
        restore.to_file = *refused [i].to_file ? zsys_sprintf (refused [i].to_file, dir)
                                               : strdup ("");
        restore.to_rbd = (char *) refused [i].to_rbd;
        env = s_run_test (&args, true, phases);
        s_assert_failed (&env, refused [i].code, refused [i].text);
        zstr_free (&restore.to_file);
    }
    restore.to_rbd = "";
    //  An image that is not our store's
    restore.to_file = zsys_sprintf ("%s/out/other.img", dir);
    image.path = "/etc/passwd";
    env = s_run_test (&args, true, phases);
    s_assert_failed (&env, SF_EINVAL, "not in this node's store");
    image.path = image_path;
    image.size += 1;
    env = s_run_test (&args, true, phases);
    s_assert_failed (&env, SF_ESTORE, "its record says");
    image.size -= 1;
    zstr_free (&restore.to_file);

    //  The sweep: a killed restore's temp directory goes, a record that
    //  names anything else stays (and what it names)
    cmd = zsys_sprintf ("set -e; cd %s; mkdir -p work/restores out/.sf-restore-"
                        "0123456789abcdef-J9.d; echo x > out/.sf-restore-0123456789abcdef-"
                        "J9.d/image; echo %s/out/.sf-restore-0123456789abcdef-J9.d > "
                        "work/restores/J9; echo %s/out > work/restores/J10; "
                        "echo half > work/restores/J11.tmp", dir, dir, dir);
    s_shell (cmd);
    zstr_free (&cmd);
    assert (sf_restore_sweep (work, NULL) == 1);
    assert (!s_exists ("%s/out/.sf-restore-0123456789abcdef-J9.d", dir));
    assert (!s_exists ("%s/work/restores/J9", dir));
    assert (s_exists ("%s/work/restores/J10", dir) && s_exists ("%s/out/vm1.img", dir));
    assert (!s_exists ("%s/work/restores/J11.tmp", dir));

    s_test_rbd (&args, dir);

    cmd = zsys_sprintf ("rm -rf %s", dir);
    s_shell (cmd);
    zstr_free (&cmd);
    zstr_free (&store);
    zstr_free (&work);
    zstr_free (&image_path);
    zstr_free (&target);
    //  @end
    printf ("OK\n");
}
