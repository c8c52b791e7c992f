/*  =========================================================================
    sf_task_live - the live copies of a job's file disks (strategy
    file-live, and the file disks of mixed): the guest is held (frozen or
    paused) only while the copy's instant is fixed, and runs while the
    bytes are copied

    Two methods, tried in this order:
    - libvirt's push backup (virDomainBackupBegin): begun inside the
      window, a point-in-time copy into <scratch>/<target>.qcow2 that QEMU
      writes while the guest runs. The copy is read only once QEMU has let
      go of it (`qemu-img info` without -U opens it): JOB_COMPLETED comes
      before QEMU has flushed the target (notes/libvirt.md).
    - where the backup API is refused (or [hypervisor] backup_api = false):
      an external disk-only snapshot inside the window puts the guest on a
      new top layer <scratch>/<target>.overlay.qcow2; the old layer, read
      only from then on, is converted like file-cold's disk (no pause); an
      active shallow commit + pivot then puts the guest back on its own
      file and the overlay is removed.
    The targets are made before the window (qemu-img create), the overlays
    only once the fallback is certain (before the window with backup_api =
    false, else inside it, after the refusal), each given to the owner of
    the disk's file, the user QEMU writes as; the scratch directory is then
    0711 so that QEMU can reach them.
    A failed or cancelled job aborts its backup job and commits every
    overlay back; an overlay the guest cannot be moved off is kept (never
    removed under a running guest) and the error says so. A worker killed
    while a guest is on an overlay leaves the scratch directory with the
    overlay in place: scratch cleaning never removes a file it does not
    know (sf_task_scratch_clean), and the restarted worker warns about it.
    =========================================================================
*/
#include "sf_worker_classes.h"
#include "sf_task_priv.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

SF_LOG_MODULE ("worker.task");

#define S_RELEASE_MS    30000       //  QEMU lets go of a finished target
#define S_COMMIT_MS     120000      //  an overlay's commit is ready

static bool
s_is_file (const sf_hv_disk_t *disk)
{
    return disk->type == SF_DISK_FILE || disk->type == SF_DISK_BLOCK;
}

//  A disk copied live: a file disk, or with [storage.rbd] snapshot =
//  backup an RBD disk too (QEMU reads it through its own Ceph client)

static bool
s_is_live (task_t *self, const sf_hv_disk_t *disk)
{
    return s_is_file (disk) || (self->rbd_backup && disk->type == SF_DISK_RBD);
}

//  Whom QEMU writes as, for a disk without a file (RBD): the owner of the
//  domain's QEMU process (the one whose command line has "-uuid UUID"),
//  else the worker's user

static bool
s_is_qemu_of (const char *pid, const char *uuid)
{
    char path [64], line [65536];
    snprintf (path, sizeof (path), "/proc/%s/cmdline", pid);
    FILE *file = fopen (path, "re");
    size_t size = file ? fread (line, 1, sizeof (line) - 1, file) : 0;
    if (file)
        fclose (file);
    line [size] = 0;
    for (size_t at = 0; at < size; at += strlen (line + at) + 1)
        if (streq (line + at, "-uuid") && at + 6 < size && streq (line + at + 6, uuid))
            return true;
    return false;
}

static void
s_qemu_owner (task_t *self, struct stat *st)
{
    st->st_uid = geteuid ();
    st->st_gid = getegid ();
    DIR *dir = opendir ("/proc");
    struct dirent *entry;
    while (dir && (entry = readdir (dir))) {
        if (strspn (entry->d_name, "0123456789") != strlen (entry->d_name)
        ||  !s_is_qemu_of (entry->d_name, self->domain->uuid))
            continue;
        char path [64];
        struct stat proc;
        snprintf (path, sizeof (path), "/proc/%s", entry->d_name);
        if (stat (path, &proc) == 0) {
            st->st_uid = proc.st_uid;
            st->st_gid = proc.st_gid;
        }
        break;
    }
    if (dir)
        closedir (dir);
}

bool
sf_task_live_wanted (task_t *self)
{
    if (self->kind != S_FILE_LIVE && self->kind != S_MIXED)
        return false;
    sf_hv_disk_t *disk = (sf_hv_disk_t *) zlistx_first (self->domain->disks);
    for (; disk; disk = (sf_hv_disk_t *) zlistx_next (self->domain->disks))
        if (sf_hv_disk_is_data (disk) && s_is_live (self, disk))
            return true;
    return false;
}

//  --------------------------------------------------------------------------
//  Before the pause

//  A new qcow2 at path of size bytes (on backing with its format, not
//  opened: QEMU holds it), owned as owner is, mode 0600

static int
s_create (task_t *self, const char *path, const sf_hv_disk_t *backing, uint64_t size)
{
    //  Given to the disk file's owner, whom QEMU writes as
    const sf_hv_disk_t *disk = NULL;
    for (size_t i = 0; i < self->n_lives; i++)
        if (streq (self->lives [i].target, path) || streq (self->lives [i].overlay, path))
            disk = self->lives [i].disk;
    assert (disk);
    struct stat st;
    const struct stat *owner = &st;
    if (!s_is_file (disk))
        s_qemu_owner (self, &st);
    else
    if (stat (disk->source, &st))
        return sf_err_set (&self->err, SF_EIO, "cannot read the owner of disk '%s' "
                           "('%s'): %s", disk->target, disk->source, strerror (errno));
    char size_text [32];
    snprintf (size_text, sizeof (size_text), "%" PRIu64, size);
    char *argv [16];
    int argc = 0;
    argv [argc++] = "qemu-img";
    argv [argc++] = "create";
    argv [argc++] = "-q";
    argv [argc++] = "-f";
    argv [argc++] = "qcow2";
    if (backing) {
        argv [argc++] = "-u";
        argv [argc++] = "-F";
        argv [argc++] = (char *) sf_hv_disk_format (backing);
        argv [argc++] = "-b";
        argv [argc++] = backing->source;
    }
    argv [argc++] = "--";
    argv [argc++] = (char *) path;
    argv [argc++] = size_text;
    argv [argc] = NULL;
    sf_err_t err = SF_ERR_INIT;
    sf_proc_t *proc = sf_proc_run (argv, self->pipe, sf_time_mono_ms () + 60000, &err);
    if (!proc) {
        self->err = err;
        return sf_err_prefix (&self->err, "cannot create '%s'", path);
    }
    sf_proc_destroy (&proc);
    int fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int rc = fd < 0 ? -1 : 0;
    if (rc == 0 && (owner->st_uid != geteuid () || owner->st_gid != getegid ()))
        rc = fchown (fd, owner->st_uid, owner->st_gid);
    if (rc == 0)
        rc = fchmod (fd, 0600);
    if (fd >= 0)
        close (fd);
    if (rc)
        return sf_err_set (&self->err, SF_EIO, "cannot give '%s' to uid %u gid %u (the "
                           "owner of the disk, whom QEMU writes as): %s", path,
                           (unsigned) owner->st_uid, (unsigned) owner->st_gid,
                           strerror (errno));
    return 0;
}

//  The overlay of live: a qcow2 on the disk's file

static int
s_overlay (task_t *self, live_t *live)
{
    if (live->overlay_made)
        return 0;
    if (s_create (self, live->overlay, live->disk, live->disk->virtual_size))
        return -1;
    live->overlay_made = true;
    return 0;
}

//  --------------------------------------------------------------------------
//  Incremental copies (issue 13): every backup makes a checkpoint
//  (snapfleet-<catalogue>-<job>, a persistent bitmap per disk); offered a previous
//  point with its checkpoint, the backup copies only what changed since,
//  and the copy becomes a qcow2 overlay on the previous point's image (by
//  relative name: both live in the store's directory). Anything that
//  breaks the chain makes it a full copy, and the reason is kept.

void
sf_task_live_offer (task_t *self, const sf_incremental_t *incremental)
{
    if (!incremental)
        return;
    for (size_t i = 0; i < incremental->n_disks && i < SF_WIRE_MAX_DISKS; i++) {
        const sf_image_t *base = incremental->disks [i]->image;
        incr_t *incr = &self->incrs [self->n_incrs++];
        incr->target = strdup (base->disk_target);
        incr->base_id = strdup (base->id);
        incr->base_path = strdup (base->path ? base->path : "");
        incr->checkpoint = strdup (incremental->disks [i]->checkpoint);
    }
}

void
sf_task_live_chain (task_t *self, const char *disk_target, const char **parent_id,
                    const char **checkpoint)
{
    *parent_id = *checkpoint = "";
    for (size_t i = 0; i < self->n_lives; i++) {
        live_t *live = &self->lives [i];
        if (!streq (live->disk->target, disk_target) || self->live != LIVE_BACKUP)
            continue;
        *checkpoint = self->checkpoint;
        if (live->base && *self->since)
            *parent_id = live->base->base_id;
    }
}

//  Why the previous point offered for live cannot be built on ("" if it
//  can): its image in the store, of the disk's size

static const char *
s_incr_check_one (task_t *self, live_t *live, zlistx_t *ids, char *why, size_t size)
{
    const incr_t *incr = NULL;
    for (size_t i = 0; i < self->n_incrs; i++)
        if (streq (self->incrs [i].target, live->disk->target))
            incr = &self->incrs [i];
    *why = 0;
    if (!incr)
        snprintf (why, size, "no previous point of disk '%s' was offered",
                  live->disk->target);
    else
    if (!streq (incr->checkpoint, self->incrs [0].checkpoint))
        snprintf (why, size, "the disks' previous points have different checkpoints");
    if (*why)
        return why;
    const char *name = strrchr (incr->base_path, '/');
    char *expect = zsys_sprintf ("%s.qcow2", incr->base_id);
    bool present = false;
    for (char *id = (char *) zlistx_first (ids); id; id = (char *) zlistx_next (ids))
        if (streq (id, incr->base_id))
            present = true;
    //  Listed (its metadata is there) and its file too
    struct stat st;
    if (present && (lstat (incr->base_path, &st) || !S_ISREG (st.st_mode)))
        present = false;
    if (!present || !name || !streq (name + 1, expect))
        snprintf (why, size, "the previous point of disk '%s' (image %s) is gone from the "
                  "store", live->disk->target, incr->base_id);
    zstr_free (&expect);
    if (*why)
        return why;
    //  The whole chain below it must open, and be as large as the disk
    sf_hv_disk_t *base = sf_hv_disk_new ();
    base->source = strdup (incr->base_path);
    base->format = strdup ("qcow2");
    sf_err_t err = SF_ERR_INIT;
    if (sf_hv_disk_probe (base, self->pipe, &err))
        snprintf (why, size, "the previous point of disk '%s' (image %s) cannot be read: "
                  "%.150s", live->disk->target, incr->base_id, err.text);
    else
    if (base->virtual_size != live->disk->virtual_size)
        snprintf (why, size, "disk '%s' changed size (%" PRIu64 " bytes, its previous "
                  "point %" PRIu64 ")", live->disk->target, live->disk->virtual_size,
                  base->virtual_size);
    sf_hv_disk_destroy (&base);
    if (!*why)
        live->base = incr;
    return why;
}

//  Before the window: this job's checkpoint name, and whether the copy
//  can be incremental (self->since) or why not (self->full_reason)

static void
s_incr_decide (task_t *self)
{
    *self->since = 0;
    //  Named for the catalogue and the job, as its RBD snapshots are: a
    //  worker deletes only its own catalogue's
    snprintf (self->checkpoint, sizeof (self->checkpoint), "%s%s-%s",
              SF_WIRE_CHECKPOINT_PREFIX, self->catalog_id, self->job_id);
    if (!sf_naming_id_valid (self->catalog_id) || !sf_wire_checkpoint_valid (self->checkpoint))
        *self->checkpoint = 0;          //  a job id no checkpoint can be named after
    if (self->n_incrs == 0)
        return;
    char why [sizeof (self->full_reason)] = "";
    sf_err_t err = SF_ERR_INIT;
    zlistx_t *ids = sf_imgstore_list (self->store, &err);
    if (!ids)
        snprintf (why, sizeof (why), "cannot list the store: %.200s", err.text);
    for (size_t i = 0; i < self->n_lives && !*why; i++)
        s_incr_check_one (self, &self->lives [i], ids, why, sizeof (why));
    zlistx_destroy (&ids);
    if (!*why) {
        zlistx_t *names = sf_hv_checkpoint_list (self->hv, self->uuid, &err);
        bool found = false;
        for (char *name = names ? (char *) zlistx_first (names) : NULL; name;
             name = (char *) zlistx_next (names))
            if (streq (name, self->incrs [0].checkpoint))
                found = true;
        if (!names)
            snprintf (why, sizeof (why), "cannot list the checkpoints: %.200s", err.text);
        else
        if (!found)
            snprintf (why, sizeof (why), "checkpoint '%s' is gone from the domain (restarted "
                      "as a new domain, or removed)", self->incrs [0].checkpoint);
        zlistx_destroy (&names);
    }
    if (*why) {
        for (size_t i = 0; i < self->n_lives; i++)
            self->lives [i].base = NULL;
        snprintf (self->full_reason, sizeof (self->full_reason), "%s", why);
        SF_NOTICE (&self->ctx, "full copy instead of an incremental one: %s", why);
        return;
    }
    snprintf (self->since, sizeof (self->since), "%s", self->incrs [0].checkpoint);
}

//  In the window: the backup, incremental where it can be, with this
//  job's checkpoint where the disks take one. A refused incremental
//  backup (a bitmap missing or broken) becomes a full one; a refused
//  checkpoint (a raw disk has no place for a bitmap) a backup without one.

static int
s_incr_begin (task_t *self, const sf_hv_live_t *disks, size_t count, sf_err_t *err)
{
    const char *since = *self->since ? self->since : NULL;
    const char *name = *self->checkpoint ? self->checkpoint : NULL;
    if (sf_hv_backup_begin_cp (self->hv, self->uuid, disks, count, since, name, err) == 0)
        return 0;
    if (since) {
        snprintf (self->full_reason, sizeof (self->full_reason), "incremental backup from "
                  "checkpoint '%.100s' refused: %.150s", since, err->text);
        SF_NOTICE (&self->ctx, "%s; a full copy instead", self->full_reason);
        *self->since = 0;
        sf_err_clear (err);
        if (sf_hv_backup_begin_cp (self->hv, self->uuid, disks, count, NULL, name, err) == 0)
            return 0;
    }
    if (!name)
        return -1;
    SF_NOTICE (&self->ctx, "backup with checkpoint '%s' refused (%s): without one", name,
               err->text);
    char text [300];
    snprintf (text, sizeof (text), "no checkpoint (%.200s): the next copy is full too",
              err->text);
    sf_task_note (self, text);
    *self->checkpoint = 0;
    sf_err_clear (err);
    return sf_hv_backup_begin (self->hv, self->uuid, disks, count, err);
}

//  After the copy: each increment becomes an overlay on its previous
//  point (qemu-img rebase -u: the header only), by the name the previous
//  point has in the store's directory

static int
s_incr_rebase (task_t *self, live_t *live)
{
    if (!live->base || !*self->since)
        return 0;
    char *backing = zsys_sprintf ("%s.qcow2", live->base->base_id);
    char *argv [] = { "qemu-img", "rebase", "-u", "-f", "qcow2", "-F", "qcow2", "-b",
                      backing, "--", live->target, NULL };
    sf_err_t err = SF_ERR_INIT;
    sf_proc_t *proc = sf_proc_run (argv, self->pipe, sf_time_mono_ms () + 60000, &err);
    sf_proc_destroy (&proc);
    zstr_free (&backing);
    if (err.code) {
        self->err = err;
        return sf_err_prefix (&self->err, "cannot put the increment of disk '%s' on its "
                              "previous point", live->disk->target);
    }
    return 0;
}

//  After the copy: this catalogue's checkpoints other than this job's and
//  the one it was based on go (their bitmaps cost the guest's writes);
//  never another tool's or another catalogue's

static void
s_incr_prune (task_t *self)
{
    if (!*self->checkpoint)
        return;
    sf_err_t err = SF_ERR_INIT;
    zlistx_t *names = sf_hv_checkpoint_list (self->hv, self->uuid, &err);
    if (!names) {
        SF_WARN (&self->ctx, "cannot list the checkpoints: %s", err.text);
        return;
    }
    char ours [64];
    snprintf (ours, sizeof (ours), "%s%s-", SF_WIRE_CHECKPOINT_PREFIX, self->catalog_id);
    for (char *name = (char *) zlistx_first (names); name;
         name = (char *) zlistx_next (names)) {
        if (!sf_wire_checkpoint_valid (name) || strncmp (name, ours, strlen (ours)) != 0
        ||  streq (name, self->checkpoint)
        ||  (self->n_incrs && streq (name, self->incrs [0].checkpoint)))
            continue;
        if (sf_hv_checkpoint_delete (self->hv, self->uuid, name, &err))
            SF_WARN (&self->ctx, "cannot delete checkpoint '%s': %s", name, err.text);
        else
            SF_DEBUG (&self->ctx, "checkpoint '%s' deleted", name);
    }
    zlistx_destroy (&names);
}

int
sf_task_live_prepare (task_t *self)
{
    if (!sf_task_live_wanted (self))
        return 0;
    //  QEMU (another user) must reach the files, not list the directory
    if (chmod (self->scratch, 0711))
        return sf_err_set (&self->err, SF_EIO, "cannot open scratch directory '%s' to "
                           "QEMU: %s", self->scratch, strerror (errno));
    sf_hv_disk_t *disk = (sf_hv_disk_t *) zlistx_first (self->domain->disks);
    for (; disk; disk = (sf_hv_disk_t *) zlistx_next (self->domain->disks)) {
        if (!sf_hv_disk_is_data (disk) || !s_is_live (self, disk))
            continue;
        live_t *live = &self->lives [self->n_lives++];
        live->disk = disk;
        live->target = zsys_sprintf ("%s/%s.qcow2", self->scratch, disk->target);
        live->overlay = zsys_sprintf ("%s/%s.overlay.qcow2", self->scratch, disk->target);
        //  The overlay only where the fallback is certain: an unused one
        //  left by a killed worker would look like a guest still on it
        if (sf_hv_backup_api ()
            ? s_create (self, live->target, NULL, disk->virtual_size)
            : s_overlay (self, live))
            return -1;
    }
    if (sf_hv_backup_api ())
        s_incr_decide (self);
    return 0;
}

//  --------------------------------------------------------------------------
//  In the window

//  Every disk of the domain, with a path for the live ones: their backup
//  targets, or their overlays

static size_t
s_live_disks (task_t *self, sf_hv_live_t *disks, bool overlays)
{
    size_t count = 0;
    sf_hv_disk_t *disk = (sf_hv_disk_t *) zlistx_first (self->domain->disks);
    for (; disk && count < SF_WIRE_MAX_DISKS;
           disk = (sf_hv_disk_t *) zlistx_next (self->domain->disks)) {
        disks [count].target = disk->target;
        disks [count].path = NULL;
        for (size_t i = 0; i < self->n_lives; i++)
            if (self->lives [i].disk == disk)
                disks [count].path = overlays ? self->lives [i].overlay
                                              : self->lives [i].target;
        count++;
    }
    return count;
}

int
sf_task_live_start (task_t *self)
{
    if (self->live_tried || !sf_task_live_wanted (self))
        return 0;
    self->live_tried = true;
    self->live_start = sf_time_mono_ms ();
    sf_hv_live_t disks [SF_WIRE_MAX_DISKS];
    char why [300];
    sf_err_t err = SF_ERR_INIT;
    if (sf_hv_backup_api ()) {
        size_t count = s_live_disks (self, disks, false);
        if (s_incr_begin (self, disks, count, &err) == 0) {
            self->live = LIVE_BACKUP;
            self->backup_running = true;
            if (*self->since)
                snprintf (self->method, sizeof (self->method), "backup API, incremental "
                          "since checkpoint '%s'", self->since);
            else
                snprintf (self->method, sizeof (self->method), "backup API%s%.300s",
                          *self->full_reason ? ", full: " : "", self->full_reason);
            if (*self->full_reason)
                sf_task_note (self, self->full_reason);
            return 0;
        }
        if (err.code != SF_ENOTSUP) {
            self->err = err;
            return sf_err_prefix (&self->err, "cannot start the backup");
        }
        snprintf (why, sizeof (why), "backup API refused (%.80s)", err.text);
    }
    else
        snprintf (why, sizeof (why), "backup API off ([hypervisor] backup_api = false)");
    if (self->rbd_backup)
        return sf_err_set (&self->err, SF_ENOTSUP, "cannot copy the RBD disks of '%s' with "
                           "the backup API ([storage.rbd] snapshot = backup): %s; set "
                           "snapshot = rbd", self->domain->name, why);
    SF_INFO (&self->ctx, "%s: external snapshot instead", why);
    //  Offered a previous point: this copy is a full one, and says why
    if (self->n_incrs && !*self->full_reason)
        snprintf (self->full_reason, sizeof (self->full_reason), "no incremental copy "
                  "without the backup API: %.300s", why);
    *self->checkpoint = *self->since = 0;
    for (size_t i = 0; i < self->n_lives; i++)
        if (s_overlay (self, &self->lives [i]))
            return -1;
    sf_err_clear (&err);
    size_t count = s_live_disks (self, disks, true);
    if (sf_hv_snapshot_external (self->hv, self->uuid, disks, count, &err) == 0) {
        self->live = LIVE_SNAPSHOT;
        for (size_t i = 0; i < self->n_lives; i++)
            self->lives [i].on_overlay = true;
        snprintf (self->method, sizeof (self->method), "%s: external snapshot + convert "
                  "+ commit", why);
        return 0;
    }
    if (err.code != SF_ENOTSUP) {
        self->err = err;
        return sf_err_prefix (&self->err, "%s; cannot take the external snapshot", why);
    }
    if (self->kind == S_MIXED) {
        snprintf (self->method, sizeof (self->method), "%s; external snapshot refused "
                  "(%s): file disks copied in the pause", why, err.text);
        SF_INFO (&self->ctx, "%s", self->method);
        return 0;
    }
    return sf_err_set (&self->err, SF_ENOTSUP, "cannot copy the file disks of '%s' while "
                       "it runs: %s; external snapshot refused (%.60s)",
                       self->domain->name, why, err.text);
}

//  --------------------------------------------------------------------------
//  After the window

static int
s_backup_wait (task_t *self)
{
    void *socket = zsock_resolve (self->pipe);
    int64_t next_log = sf_time_mono_ms () + 5000;
    while (true) {
        sf_hv_progress_t progress;
        if (sf_hv_backup_poll (self->hv, self->uuid, &progress, &self->err))
            return -1;
        if (progress.done) {
            self->backup_running = false;
            return 0;
        }
        if (sf_time_mono_ms () >= next_log) {
            SF_DEBUG (&self->ctx, "backup: %" PRIu64 " of %" PRIu64 " bytes",
                      progress.processed, progress.total);
            next_log = sf_time_mono_ms () + 5000;
        }
        zmq_pollitem_t item = { socket, 0, ZMQ_POLLIN, 0 };
        zmq_poll (&item, 1, 50);
        if (sf_task_cancelled (self))
            return -1;
    }
}

//  QEMU has let go of path once qemu-img opens it without -U

static int
s_released (task_t *self, const char *path)
{
    int64_t deadline = sf_time_mono_ms () + S_RELEASE_MS;
    char *argv [] = { "qemu-img", "info", "-f", "qcow2", "--output=json", "--",
                      (char *) path, NULL };
    while (true) {
        sf_err_t err = SF_ERR_INIT;
        sf_proc_t *proc = sf_proc_run (argv, self->pipe, deadline, &err);
        sf_proc_destroy (&proc);
        if (err.code == 0)
            return 0;
        if (err.code == SF_ECANCELED) {
            self->err = err;
            return -1;
        }
        if (sf_time_mono_ms () >= deadline) {
            self->err = err;
            return sf_err_prefix (&self->err, "QEMU did not let go of the backup '%s' "
                                  "within %d s", path, S_RELEASE_MS / 1000);
        }
        zclock_sleep (50);
    }
}

//  Put the guest back on its own files: commit every overlay it is on,
//  check that its disk's source is the file again, remove the overlay

static int
s_commit_all (task_t *self, sf_err_t *err)
{
    int rc = 0;
    for (size_t i = 0; i < self->n_lives; i++) {
        live_t *live = &self->lives [i];
        if (!live->on_overlay)
            continue;
        sf_err_t one = SF_ERR_INIT;
        int64_t start = sf_time_mono_ms ();
        if (sf_hv_commit (self->hv, self->uuid, live->disk->target,
                          start + S_COMMIT_MS, &one) == 0) {
            sf_hv_domain_t *now = sf_hv_lookup (self->hv, self->uuid, 0, &one);
            sf_hv_disk_t *disk = now ? (sf_hv_disk_t *) zlistx_first (now->disks) : NULL;
            while (disk && !streq (disk->target, live->disk->target))
                disk = (sf_hv_disk_t *) zlistx_next (now->disks);
            if (disk && streq (disk->source, live->disk->source))
                live->on_overlay = false;
            else
            if (now)
                sf_err_set (&one, SF_EHV, "after the commit disk '%s' is on '%s', not on "
                            "'%s'", live->disk->target, disk ? disk->source : "?",
                            live->disk->source);
            sf_hv_domain_destroy (&now);
        }
        if (live->on_overlay) {
            if (rc == 0)
                *err = one;
            rc = -1;
            SF_ERROR (&self->ctx, "disk '%s' stays on the overlay '%s' (kept): %s",
                      live->disk->target, live->overlay, one.text);
            continue;
        }
        SF_DEBUG (&self->ctx, "disk '%s' committed back in %" PRId64 " ms",
                  live->disk->target, sf_time_mono_ms () - start);
        unlink (live->overlay);
    }
    return rc;
}

static void
s_add_part (task_t *self, live_t *live)
{
    struct stat st;
    part_t *part = &self->parts [self->n_parts++];
    part->disk = live->disk;
    part->path = strdup (live->target);
    part->bytes = stat (live->target, &st) == 0 ? (uint64_t) st.st_size : 0;
    self->bytes += part->bytes;
}

int
sf_task_live_finish (task_t *self)
{
    if (self->live == LIVE_NONE)
        return 0;
    if (self->live == LIVE_BACKUP) {
        if (s_backup_wait (self))
            return sf_err_prefix (&self->err, "while the backup ran");
        for (size_t i = 0; i < self->n_lives; i++) {
            if (s_released (self, self->lives [i].target)
            ||  s_incr_rebase (self, &self->lives [i]))
                return -1;
            s_add_part (self, &self->lives [i]);
        }
        s_incr_prune (self);
    }
    else {
        //  The old layers are read-only now: convert them as file-cold
        //  does, while the guest runs on the overlays
        for (size_t i = 0; i < self->n_lives; i++) {
            unlink (self->lives [i].target);    //  the unused backup target
            if (sf_task_convert_one (self, self->lives [i].disk, NULL, NULL, 0))
                return -1;
        }
        if (s_commit_all (self, &self->err))
            return sf_err_prefix (&self->err, "cannot put the guest back on its disk");
    }
    //  From the copy's start (in the window) to its end
    self->convert_ms += (uint64_t) (sf_time_mono_ms () - self->live_start);
    SF_INFO (&self->ctx, "file disks copied live (%s) in %" PRIu64 " ms", self->method,
             self->convert_ms);
    return 0;
}

void
sf_task_live_cleanup (task_t *self)
{
    if (self->backup_running && self->hv) {
        sf_err_t err = SF_ERR_INIT;
        if (sf_hv_backup_abort (self->hv, self->uuid, &err))
            SF_ERROR (&self->ctx, "%s", err.text);
        else
            SF_INFO (&self->ctx, "backup job aborted");
        self->backup_running = false;
    }
    bool kept = false;
    if (self->hv) {
        sf_err_t err = SF_ERR_INIT;
        kept = s_commit_all (self, &err) != 0;
        if (kept)
            sf_err_prefix (&self->err, "the guest is still on a snapfleet overlay in '%s' "
                           "(%s), kept; after", self->scratch, err.text);
    }
    for (size_t i = 0; i < self->n_lives; i++)
        if (self->lives [i].overlay_made && !self->lives [i].on_overlay)
            unlink (self->lives [i].overlay);
}

void
sf_task_live_destroy (task_t *self)
{
    for (size_t i = 0; i < self->n_incrs; i++) {
        zstr_free (&self->incrs [i].target);
        zstr_free (&self->incrs [i].base_id);
        zstr_free (&self->incrs [i].base_path);
        zstr_free (&self->incrs [i].checkpoint);
    }
    self->n_incrs = 0;
    for (size_t i = 0; i < self->n_lives; i++) {
        zstr_free (&self->lives [i].target);
        zstr_free (&self->lives [i].overlay);
    }
    self->n_lives = 0;
}
