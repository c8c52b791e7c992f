/*  =========================================================================
    sf_task - one snapshot job as a zactor

    Every strategy is one straight pipeline of steps on a task_t; a step
    that has nothing to do for the strategy or the disks returns at once.
    Each step returns 0 or -1 with task->err set, and one failure path
    (s_fail) undoes what the steps did, in order of urgency: thaw or resume
    the guest, stop the guard, drop the journal entry, roll back stored
    images, remove the job's Ceph snapshots and clones (or leave them to
    the leftovers sweeper), remove scratch files.
    The pipe is passed to every long step as its cancel socket, so a CANCEL
    or $TERM stops qemu-img or a copy at once; a Ceph call is bounded by
    op_timeout instead.
    The RBD steps are in sf_task_rbd.c; the task's state and what the two
    files share are in the private sf_task_priv.h.
    =========================================================================
*/
#include "sf_worker_classes.h"
#include "sf_task_priv.h"
#include "sf_conv_fake.h"                   //  the self-test's converter

#include <dirent.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

SF_LOG_MODULE ("worker.task");

//  --------------------------------------------------------------------------
//  Messages to the owner

static void
s_emit (task_t *self, int phase, uint64_t ms, uint64_t bytes, const char *text)
{
    sf_jobmsg_event (self->pipe, &self->ctx, self->job_id, self->attempt, phase, ms, bytes,
                     text);
}

//  How the job made its images (JobResult.method)

static const char *
s_method (task_t *self, char *buf, size_t size)
{
    const char *file = self->live == LIVE_BACKUP ? "backup-api"
                     : self->live == LIVE_SNAPSHOT ? "external-snapshot" : "convert";
    const char *rbd = self->export_mode ? "rbd-export" : "rbd-snapshot";
    if (self->kind == S_MIXED)
        snprintf (buf, size, "%s-and-%s", rbd, file);
    else
        snprintf (buf, size, "%s", self->kind == S_RBD ? rbd
                                 : self->kind == S_FILE_LIVE ? file : "convert");
    return buf;
}

static void
s_send_result (task_t *self, bool ok)
{
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    result.job_id = self->job_id;
    result.attempt = self->attempt;
    result.ok = ok;
    result.strategy = self->strategy;
    char method [SF_WIRE_MAX_METHOD + 1];
    result.method = ok ? (char *) s_method (self, method, sizeof (method)) : "";
    result.consistency = (char *) self->consistency;
    result.pause_ms = self->pause_ms;
    result.convert_ms = self->convert_ms;
    result.upload_ms = self->upload_ms;
    result.bytes = self->bytes;
    result.resumed = self->resumed;
    result.retryable = !ok && self->retryable;
    sf_image_t images [SF_WIRE_MAX_DISKS];
    sf_image_t *image_ptrs [SF_WIRE_MAX_DISKS];
    for (size_t i = 0; i < self->n_images; i++) {
        sf_image_rec_t *rec = &self->images [i];
        images [i] = (sf_image_t) SF_IMAGE_INIT;
        images [i].store = rec->store;
        images [i].id = rec->id;
        images [i].path = rec->path;
        images [i].size = rec->size;
        images [i].sha256 = rec->sha256;
        images [i].disk_target = rec->disk_target;
        images [i].format = rec->format;
        images [i].own_bytes = streq (rec->store, "rbd") ? 0 : rec->size;
        const char *parent_id = "", *checkpoint = "";
        sf_task_live_chain (self, rec->disk_target, &parent_id, &checkpoint);
        images [i].parent_id = (char *) parent_id;
        images [i].checkpoint = (char *) checkpoint;
        image_ptrs [i] = &images [i];
    }
    result.n_images = self->n_images;
    result.images = image_ptrs;
    if (ok && self->domain_xml)
        result.domain_xml = self->domain_xml;
    result.full_reason = self->full_reason;
    sf_error_info_t error = SF_ERROR_INFO_INIT;
    sf_text_utf8_fix (self->err.text);
    sf_text_utf8_fix (self->note);
    if (!ok || *self->note) {
        error.code = ok ? SF_OK : self->err.code;
        error.text = ok ? self->note : self->err.text;
        result.error = &error;
    }
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_RESULT, &result);
    sf_jobmsg_send (self->pipe, &self->ctx, "RESULT", &env);
}

//  A CANCEL (or $TERM) waits on the pipe? A stray RATE or GRANT is read
//  and only sets the rate.

static bool
s_cancelled (task_t *self)
{
    while (zsock_events (self->pipe) & ZMQ_POLLIN)
        if (sf_bucket_recv (self->bucket, self->pipe) == SF_BUCKET_STOP)
            return sf_err_set (&self->err, SF_ECANCELED, "job cancelled") == -1;
    return false;
}

bool
sf_task_cancelled (task_t *self)
{
    return s_cancelled (self);
}

//  Add a note to the result text (success) or the log

void
sf_task_note (task_t *self, const char *text)
{
    size_t len = strlen (self->note);
    snprintf (self->note + len, sizeof (self->note) - len, "%s%s", len ? "; " : "", text);
}

//  --------------------------------------------------------------------------
//  Steps before the pause: nothing to undo but scratch files and the
//  leftovers claim

//  The guest's inactive XML goes with the images (restore --as-domain and
//  verify --boot make copies of the guest from it): kept at the start, as
//  the guest is defined for the point in time the images hold. One that
//  cannot be had or is too large is a note, not a failure.

static void
s_keep_xml (task_t *self)
{
    sf_err_t err = SF_ERR_INIT;
    char *xml = NULL;
    if (sf_hv_domain_xml (self->hv, self->uuid, &xml, &err) == 0
    &&  (strlen (xml) > SF_WIRE_MAX_XML || !sf_utf8_valid (xml)))
        sf_err_set (&err, SF_EINVAL, "%s", strlen (xml) > SF_WIRE_MAX_XML
                    ? "larger than 64 KiB" : "not valid UTF-8");
    if (err.code) {
        SF_WARN (&self->ctx, "the guest's XML is not kept with its images: %s", err.text);
        sf_task_note (self, "domain XML not kept");
        free (xml);
        return;
    }
    self->domain_xml = xml;
}

static bool
s_is_file (const sf_hv_disk_t *disk)
{
    return disk->type == SF_DISK_FILE || disk->type == SF_DISK_BLOCK;
}

static int
s_open (task_t *self)
{
    if (!sf_name_is_safe (self->job_id) || streq (self->job_id, "paused")
    ||  streq (self->job_id, "leftovers"))
        return sf_err_set (&self->err, SF_EINVAL, "job id '%s' is not a safe name",
                           self->job_id);
    if (!sf_naming_id_valid (self->catalog_id))
        return sf_err_set (&self->err, SF_EPROTO, "job '%s' came without a valid catalogue "
                           "id (16 hex digits), so its objects cannot be named; nothing "
                           "done", self->job_id);
    if (!(self->hv = sf_hv_new (self->uri, &self->err))
    ||  sf_imgstore_check (self->store, &self->err))
        return -1;
    self->domain = sf_hv_lookup (self->hv, self->uuid, SF_HV_SIZES, &self->err);
    if (!self->domain) {
        if (self->err.code == SF_ENOENT)
            sf_err_set (&self->err, SF_ENOENT, "unknown instance '%s'", self->uuid);
        return -1;
    }
    self->ctx.vm = self->domain->name;
    if (sf_hv_strategy_check (self->domain, self->strategy, &self->err))
        return -1;
    s_keep_xml (self);
    size_t disks = 0;
    sf_hv_disk_t *disk = (sf_hv_disk_t *) zlistx_first (self->domain->disks);
    for (; disk; disk = (sf_hv_disk_t *) zlistx_next (self->domain->disks)) {
        if (!sf_hv_disk_is_data (disk))
            continue;
        disks++;
        if (!sf_name_is_safe (disk->target))
            return sf_err_set (&self->err, SF_EINVAL, "disk target '%s' is not a safe name",
                               disk->target);
        if (disk->type == SF_DISK_RBD && !self->stor)
            return sf_err_set (&self->err, SF_ENOTSUP, "instance '%s' has RBD disks, but "
                               "RBD support is off on this node ([storage.rbd] ceph_conf "
                               "is empty)", self->domain->name);
        if (!s_is_file (disk) && disk->type != SF_DISK_RBD)
            return sf_err_set (&self->err, SF_ENOTSUP, "disk '%s' of '%s' is neither a "
                               "file, a block device nor RBD (%s '%s'); cannot snapshot it",
                               disk->target, self->domain->name,
                               *disk->protocol ? disk->protocol : "type", disk->source);
    }
    if (disks == 0)
        return sf_err_set (&self->err, SF_ESTATE, "instance '%s' has no disk to snapshot",
                           self->domain->name);
    return 0;
}

//  Scratch directories hold only <target>.qcow2 and <target>.qcow2.tmp;
//  anything else means the path is not ours, and it is left alone.

static bool
s_scratch_file (const char *name)
{
    size_t stem = strspn (name, "abcdefghijklmnopqrstuvwxyz0123456789");
    return stem >= 1 && stem <= 32
        && (streq (name + stem, ".qcow2") || streq (name + stem, ".qcow2.tmp"));
}

int
sf_task_scratch_clean (const char *path)
{
    assert (path);
    const char *slash = strrchr (path, '/');
    char *dir = slash ? zsys_sprintf ("%.*s", (int) (slash - path), path) : strdup (".");
    int rc = sf_dir_remove_at (*dir ? dir : "/", slash ? slash + 1 : path, s_scratch_file);
    free (dir);
    return rc;
}

bool
sf_task_scratch_has_overlay (const char *path)
{
    assert (path);
    DIR *dir = opendir (path);
    bool found = false;
    struct dirent *entry;
    while (dir && !found && (entry = readdir (dir))) {
        size_t len = strlen (entry->d_name);
        found = len > 14 && streq (entry->d_name + len - 14, ".overlay.qcow2");
    }
    if (dir)
        closedir (dir);
    return found;
}

static void
s_remove_scratch (task_t *self)
{
    if (self->scratch && sf_task_scratch_clean (self->scratch))
        SF_WARN (&self->ctx, "scratch directory '%s' holds files that are not ours; "
                 "left in place", self->scratch);
}

//  Fresh scratch directory with room for every disk that is copied at its
//  virtual size (a qcow2 of the whole chain is at most that plus metadata):
//  file disks, and RBD disks in export mode.

static int
s_scratch (task_t *self)
{
    self->scratch = zsys_sprintf ("%s/%s", self->workdir, self->job_id);
    if (sf_task_scratch_clean (self->scratch))  //  leftover of a killed worker?
        return sf_err_set (&self->err, SF_EEXIST, "scratch directory '%s' exists and is "
                           "not a job's (a symlink, or files a job does not make); left "
                           "alone", self->scratch);
    //  mkdir never follows a symlink that appeared meanwhile: EEXIST
    if (zsys_dir_create ("%s", self->workdir) || mkdir (self->scratch, 0700))
        return sf_err_set (&self->err, SF_EIO, "cannot create scratch directory '%s': %s",
                           self->scratch, strerror (errno));
    uint64_t need = 0;
    sf_hv_disk_t *disk = (sf_hv_disk_t *) zlistx_first (self->domain->disks);
    for (; disk; disk = (sf_hv_disk_t *) zlistx_next (self->domain->disks))
        if (sf_hv_disk_is_data (disk) && (s_is_file (disk) || self->export_mode))
            need += disk->virtual_size;
    struct statvfs vfs;
    if (statvfs (self->scratch, &vfs))
        return sf_err_set (&self->err, SF_EIO, "cannot check free space in '%s': %s",
                           self->workdir, strerror (errno));
    uint64_t have = (uint64_t) vfs.f_bavail * vfs.f_frsize;
    if (have < need) {
        char need_text [32], have_text [32];
        return sf_err_set (&self->err, SF_EBUSY, "not enough scratch space in '%s': "
                           "the disks need %s, %s free", self->workdir,
                           sf_format_size (need, need_text, sizeof (need_text)),
                           sf_format_size (have, have_text, sizeof (have_text)));
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Pause (or freeze) and resume (or thaw)

//  file-cold suspends. rbd and mixed freeze the filesystems through the
//  guest agent if one answers, else suspend, and say why in PAUSED.
//  file-live freezes if an agent answers, else holds nothing. The
//  journal entry and the guard come first either way, so that a worker
//  that dies in the window leaves a guest that is thawed and resumed.

static int
    s_resume (task_t *self, bool report, sf_err_t *err);

static int
s_pause (task_t *self)
{
    if (self->domain->state == SF_HV_PAUSED) {
        self->was_paused = true;
        snprintf (self->note, sizeof (self->note), "instance '%s' was already paused "
                  "before the job; left paused", self->domain->name);
        SF_NOTICE (&self->ctx, "%s", self->note);
        s_emit (self, SF_PHASE_PAUSED, 0, 0, self->note);
        return 0;
    }
    bool try_freeze = self->kind != S_FILE_COLD;
    sf_guard_entry_t entry = { .deadline_ms = sf_time_now_ms () + self->max_pause_ms,
                               .frozen = try_freeze };
    snprintf (entry.uuid, sizeof (entry.uuid), "%s", self->domain->uuid);
    snprintf (entry.run_id, sizeof (entry.run_id), "%s", self->run_id);
    snprintf (entry.job_id, sizeof (entry.job_id), "%s", self->job_id);
    //  From here the guest may be paused: a worker restarted after this
    //  cannot say it was not, and reports the job not retryable
    if (sf_joblog_pausing (self->joblog, self->job_id, self->attempt, &self->err)
    ||  sf_guard_journal_write (self->workdir, &entry, &self->err))
        return -1;
    self->journaled = true;
    char *journal = sf_guard_journal_path (self->workdir, entry.uuid);
    self->guard = sf_guard_spawn (self->exe, self->uri, entry.uuid, entry.deadline_ms,
                                  journal, try_freeze, &self->err);
    zstr_free (&journal);
    if (!self->guard)
        return -1;
    char why [300] = "";
    if (try_freeze) {
        sf_err_t freeze_err = SF_ERR_INIT;
        self->pause_start = sf_time_mono_ms ();
        self->pause_deadline = self->pause_start + self->max_pause_ms;
        if (self->no_freeze)
            sf_err_set (&freeze_err, SF_ENOTSUP, "disabled for this test");
        else
        if (sf_hv_fs_freeze (self->hv, self->uuid, &freeze_err) == 0) {
            self->frozen = true;
            self->consistency = "frozen";
            //  A freeze stops the guest's filesystems, not every writer (raw
            //  devices, the page cache of unfrozen mounts). So mixed
            //  suspends too, after the freeze (the agent needs running
            //  vCPUs): its RBD snapshots and its file disks' copies (their
            //  live start, or qemu-img reading a running QEMU's files where
            //  no live copy is available) must come from one instant, and
            //  only stopped vCPUs keep every disk still between them
            const char *text = "frozen";
            if (self->kind == S_MIXED) {
                self->suspended = true;
                if (sf_hv_suspend (self->hv, self->uuid, &self->err))
                    return -1;
                self->paused = true;
                if (sf_task_live_start (self))
                    return -1;
                text = self->live == LIVE_NONE
                     ? "frozen, and paused while the file disks are copied"
                     : "frozen, and paused while the RBD snapshots are taken and the "
                       "file disks' live copies start";
            }
            uint64_t took = (uint64_t) (sf_time_mono_ms () - self->pause_start);
            s_emit (self, SF_PHASE_PAUSED, took, 0, text);
            return 0;
        }
        //  file-live: the backup's (or the external snapshot's) start is
        //  one QEMU transaction over every disk, which fixes their instant
        //  by itself; a pause around it would add nothing to the image but
        //  the call's 40-275 ms (notes/libvirt.md), so there is none
        if (self->kind == S_FILE_LIVE) {
            snprintf (why, sizeof (why), "freeze unavailable (%.120s): not paused; the "
                      "copy's start is one instant of every disk (crash-consistent)",
                      freeze_err.text);
            SF_INFO (&self->ctx, "%s", why);
            sf_err_t stop_err = SF_ERR_INIT;
            if (s_resume (self, false, &stop_err))
                SF_WARN (&self->ctx, "%s", stop_err.text);
            self->consistency = "crash";
            s_emit (self, SF_PHASE_PAUSED, 0, 0, why);
            return 0;
        }
        snprintf (why, sizeof (why), "freeze unavailable (%s): paused instead",
                  freeze_err.text);
        SF_INFO (&self->ctx, "%s", why);
    }
    self->pause_start = sf_time_mono_ms ();
    self->pause_deadline = self->pause_start + self->max_pause_ms;
    self->suspended = true;         //  even if the call fails: it may have taken
    if (sf_hv_suspend (self->hv, self->uuid, &self->err))
        return -1;
    self->paused = true;
    self->consistency = "paused";
    s_emit (self, SF_PHASE_PAUSED, (uint64_t) (sf_time_mono_ms () - self->pause_start), 0,
            *why ? why : NULL);
    return 0;
}

//  Thaw or resume what we froze or paused; stand the guard down; drop the
//  journal entry. With report, RESUMED goes out as soon as the guest runs,
//  before the guard is stopped, so the scheduler frees the pause slot at
//  once. Returns 0, or -1 with err set to why the guest may still be
//  frozen or paused.

static int
s_resume (task_t *self, bool report, sf_err_t *err)
{
    int rc = 0;
    bool held = self->paused || self->frozen;
    bool thawing = self->frozen;
    //  vCPUs first: the guest agent that thaws runs inside the guest
    if (self->paused) {
        rc = sf_hv_resume (self->hv, self->uuid, err);
        self->pause_ms = (uint64_t) (sf_time_mono_ms () - self->pause_start);
        self->paused = false;
    }
    if (self->frozen) {
        if (rc == 0)
            rc = sf_hv_fs_thaw (self->hv, self->uuid, err);
        self->pause_ms = (uint64_t) (sf_time_mono_ms () - self->pause_start);
        self->frozen = false;   //  else the guard thaws, after resuming
    }
    if (held && rc == 0 && report) {
        //  "thawed", and what the Ceph monitor's round cost the guest
        char wait [200], text [240];
        sf_task_rbd_wait_text (self, wait, sizeof (wait));
        snprintf (text, sizeof (text), "%s%s%s", thawing ? "thawed" : "",
                  thawing && *wait ? "; " : "", wait);
        s_emit (self, SF_PHASE_RESUMED, self->pause_ms, 0, *text ? text : NULL);
    }
    if (self->guard) {
        //  On a failed resume the guard, told to stop, tries once more
        int code = sf_guard_stop (&self->guard);
        if (rc && code == SF_GUARD_EXIT_RESUMED) {
            SF_WARN (&self->ctx, "the pause guard resumed the guest after: %s", err->text);
            rc = 0;
            if (report)
                s_emit (self, SF_PHASE_RESUMED, self->pause_ms, 0, "resumed by the guard");
        }
    }
    if (rc)
        self->stuck = true;     //  keep the journal: a restart tries again
    if (self->journaled && !self->stuck) {
        sf_err_t journal_err = SF_ERR_INIT;
        if (sf_guard_journal_remove (self->workdir, self->domain->uuid, &journal_err))
            SF_ERROR (&self->ctx, "%s", journal_err.text);
        self->journaled = false;
    }
    return rc;
}

//  How a failed resume or thaw is reported

static const char *
s_resume_failed (task_t *self)
{
    return streq (self->consistency, "frozen")
         ? "thaw FAILED, instance's filesystems may still be frozen"
         : "resume FAILED, instance may still be paused";
}

//  The images are only consistent if the guest stayed paused (or, offline,
//  stayed off) for the whole window. A freeze cannot be checked from here.

static int
s_check_still (task_t *self)
{
    if (self->was_paused || (self->pausing && !self->paused))
        return 0;
    int state;
    int expect = self->pausing ? SF_HV_PAUSED : SF_HV_SHUTOFF;
    if (sf_hv_state (self->hv, self->uuid, &state, &self->err))
        return -1;
    if (state != expect)
        return sf_err_set (&self->err, SF_ESTATE, "instance '%s' became %s during the "
                           "snapshot (expected %s); images discarded", self->domain->name,
                           sf_hv_state_name (state), sf_hv_state_name (expect));
    return 0;
}

//  --------------------------------------------------------------------------
//  Inside the window: RBD snapshots, then file conversions

//  Convert disk (as given, or source/format overridden) into a new part

int
sf_task_convert_one (task_t *self, const sf_hv_disk_t *disk, const char *source,
               const char *format, int64_t deadline)
{
    part_t *part = &self->parts [self->n_parts++];
    part->disk = disk;
    part->path = zsys_sprintf ("%s/%s.qcow2", self->scratch, disk->target);
    sf_hv_disk_t *from = NULL;
    if (source) {
        from = sf_hv_disk_new ();
        from->target = strdup (disk->target);
        from->type = SF_DISK_FILE;
        from->source = strdup (source);
        from->format = strdup (format);
        from->virtual_size = disk->virtual_size;
    }
    int rc = sf_conv_convert (self->conv, from ? from : disk, part->path, self->pipe,
                              deadline, &part->bytes, &self->err);
    sf_hv_disk_destroy (&from);
    if (rc == 0)
        self->bytes += part->bytes;
    return rc;
}

static int
s_convert (task_t *self)
{
    int64_t start = sf_time_mono_ms ();
    int64_t deadline = self->paused || self->frozen ? self->pause_deadline : 0;
    sf_hv_disk_t *disk = (sf_hv_disk_t *) zlistx_first (self->domain->disks);
    for (; disk; disk = (sf_hv_disk_t *) zlistx_next (self->domain->disks)) {
        if (!sf_hv_disk_is_data (disk) || !s_is_file (disk) || self->live != LIVE_NONE)
            continue;
        if (sf_task_convert_one (self, disk, NULL, NULL, deadline)) {
            //  (a stalled qemu-img is SF_ETIMEDOUT too, with its own words)
            if (self->err.code == SF_ETIMEDOUT && deadline && sf_time_mono_ms () >= deadline)
                sf_err_set (&self->err, SF_ETIMEDOUT, "conversion of disk '%s' took "
                            "longer than max_pause (%" PRId64 " ms)", disk->target,
                            self->max_pause_ms);
            return -1;
        }
    }
    self->convert_ms += (uint64_t) (sf_time_mono_ms () - start);
    return 0;
}

//  The window: everything that must come from one instant

static int
s_window (task_t *self)
{
    if (self->pausing && s_pause (self))
        return -1;
    if (sf_task_live_start (self) || sf_task_rbd_snapshot (self) || s_convert (self)
    ||  s_check_still (self))
        return -1;
    if (self->paused || self->frozen || self->guard) {
        if (s_resume (self, true, &self->err))
            return sf_err_prefix (&self->err, "%s", s_resume_failed (self));
        SF_INFO (&self->ctx, "guest %s for %" PRIu64 " ms", self->consistency,
                 self->pause_ms);
    }
    else
    if (self->pausing)
        s_emit (self, SF_PHASE_RESUMED, 0, 0, self->note);
    sf_task_rbd_close (self);
    return 0;
}

//  --------------------------------------------------------------------------
//  After the window: export or clone the snapshots, store the images

//  Store the part converted from disk

static int
s_store (task_t *self, part_t *part)
{
    sf_image_meta_t meta = { self->domain->uuid, self->domain->name, self->job_id,
                             self->attempt, self->strategy, self->consistency,
                             part->disk->target, self->catalog_id };
    if (sf_imgstore_put (self->store, &meta, part->path, self->pipe, self->bucket,
                         &self->images [self->n_images], &self->err))
        return sf_err_prefix (&self->err, "cannot store disk '%s'", part->disk->target);
    self->n_images++;
    unlink (part->path);        //  scratch space back as soon as possible
    return 0;
}

//  The capture is over. With wait_upload_grant and bytes to store: say
//  how many (UPLOAD_WAIT) and wait for the scheduler's grant; its rate
//  goes into the bucket the image store's copy takes from.

static int
s_wait_grant (task_t *self)
{
    if (!self->wait_grant || self->n_parts == 0)
        return 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < self->n_parts; i++)
        bytes += self->parts [i].bytes;
    s_emit (self, SF_PHASE_UPLOAD_WAIT, 0, bytes, NULL);
    int64_t start = sf_time_mono_ms ();
    while (true) {
        sf_bucket_msg_t msg = sf_bucket_recv (self->bucket, self->pipe);
        if (msg == SF_BUCKET_GRANT)
            break;
        if (msg == SF_BUCKET_STOP)
            return sf_err_set (&self->err, SF_ECANCELED,
                               "job cancelled while waiting for an upload grant");
    }
    char rate [32] = "unlimited";
    if (sf_bucket_rate (self->bucket)) {
        sf_format_size (sf_bucket_rate (self->bucket), rate, sizeof (rate) - 2);
        strcat (rate, "/s");
    }
    SF_INFO (&self->ctx, "upload of %" PRIu64 " bytes granted after %" PRId64 " ms at %s",
             bytes, sf_time_mono_ms () - start, rate);
    return 0;
}

//  One image per data disk, in the domain's disk order: a converted part
//  goes to the image store, an RBD snapshot is cloned

static int
s_upload (task_t *self)
{
    int64_t start = sf_time_mono_ms ();
    sf_hv_disk_t *disk = (sf_hv_disk_t *) zlistx_first (self->domain->disks);
    for (; disk; disk = (sf_hv_disk_t *) zlistx_next (self->domain->disks)) {
        for (size_t i = 0; i < self->n_parts; i++)
            if (self->parts [i].disk == disk && s_store (self, &self->parts [i]))
                return -1;
        for (size_t i = 0; !self->export_mode && i < self->n_rbds; i++)
            if (self->rbds [i].disk == disk && sf_task_rbd_clone (self, &self->rbds [i]))
                return -1;
    }
    uint64_t stored = 0;
    for (size_t i = 0; i < self->n_images; i++)
        if (!streq (self->images [i].store, "rbd"))
            stored += self->images [i].size;
    self->upload_ms = (uint64_t) (sf_time_mono_ms () - start);
    self->bytes = stored;
    s_emit (self, SF_PHASE_UPLOADED, self->upload_ms, stored, NULL);
    return 0;
}

static void
s_rollback_images (task_t *self)
{
    for (size_t i = 0; i < self->n_images; i++) {
        sf_err_t err = SF_ERR_INIT;
        //  Clones go with the job's other Ceph objects (sf_task_rbd_cleanup)
        if (!streq (self->images [i].store, "rbd")
        &&  sf_imgstore_remove (self->store, self->images [i].id, self->catalog_id,
                                self->job_id, &err))
            SF_ERROR (&self->ctx, "cannot roll back image '%s': %s", self->images [i].id,
                      err.text);
        sf_image_rec_release (&self->images [i]);
    }
    self->n_images = 0;
}

//  --------------------------------------------------------------------------
//  The pipeline

//  Undo everything and report. The guest comes first.

static void
s_fail (task_t *self)
{
    if (self->paused || self->frozen || self->guard || self->journaled) {
        bool had_paused = self->paused || self->frozen;
        const char *failed = s_resume_failed (self);
        sf_err_t resume_err = SF_ERR_INIT;
        if (s_resume (self, false, &resume_err))
            sf_err_prefix (&self->err, "%s (%s); after", failed, resume_err.text);
        else
        if (had_paused) {
            size_t len = strlen (self->err.text);
            snprintf (self->err.text + len, sizeof (self->err.text) - len, "; guest %s",
                      streq (self->consistency, "frozen") ? "thawed" : "resumed");
        }
    }
    sf_task_live_cleanup (self);
    s_rollback_images (self);
    sf_task_rbd_close (self);
    sf_task_rbd_cleanup (self);
    s_remove_scratch (self);
    if (self->pausing && self->hv && !self->was_paused) {
        int state;
        self->resumed = sf_hv_state (self->hv, self->uuid, &state, NULL) == 0
                     && state == SF_HV_RUNNING;
    }
    SF_ERROR (&self->ctx, "job failed: %s", self->err.text);
    s_send_result (self, false);
}

static int
s_run_steps (task_t *self)
{
    if (s_open (self) || sf_task_rbd_prepare (self)) {
        //  Nothing paused or made yet: an image store or Ceph cluster that
        //  cannot be reached may be back for the next attempt
        self->retryable = self->err.code == SF_ESTORE || self->err.code == SF_ECEPH;
        return -1;
    }
    if (s_scratch (self) || sf_task_live_prepare (self) || s_cancelled (self)
    ||  s_window (self) || sf_task_live_finish (self) || sf_task_rbd_export (self))
        return -1;
    s_emit (self, SF_PHASE_CONVERTED, self->convert_ms, self->bytes,
            *self->method ? self->method : NULL);
    if (s_wait_grant (self) || s_upload (self)) {
        //  The image store went away mid-upload: the failure removes what the
        //  job made, so another attempt is safe, unless this one suspended
        //  the guest (a job pauses a guest once at most)
        self->retryable = self->err.code == SF_ESTORE && !self->suspended;
        return -1;
    }
    sf_task_rbd_finish (self);
    if (!self->pausing)
        return 0;
    int state = 0;
    if (sf_hv_state (self->hv, self->uuid, &state, &self->err))
        return -1;
    self->resumed = state == SF_HV_RUNNING;
    if (!self->resumed && !self->was_paused) {
        char text [200];
        snprintf (text, sizeof (text), "instance '%s' is %s after the job (it was "
                  "resumed; something else changed it)", self->domain->name,
                  sf_hv_state_name (state));
        sf_task_note (self, text);
    }
    return 0;
}

static void
s_run (task_t *self)
{
    s_emit (self, SF_PHASE_QUEUED, 0, 0, NULL);
    if (s_run_steps (self))
        s_fail (self);
    else {
        s_remove_scratch (self);
        SF_INFO (&self->ctx, "job done (%s): %zu image(s), %" PRIu64 " bytes, pause %"
                 PRIu64 " ms, convert %" PRIu64 " ms, store %" PRIu64 " ms",
                 self->consistency, self->n_images, self->bytes, self->pause_ms,
                 self->convert_ms, self->upload_ms);
        s_send_result (self, true);
    }
    if (self->claimed)
        sf_leftover_release (self->leftovers, self->job_id);
    self->claimed = false;
}

//  --------------------------------------------------------------------------
//  Actor

static task_t *
s_task_new (const sf_task_args_t *args)
{
    task_t *self = (task_t *) zmalloc (sizeof (task_t));
    self->job_id = strdup (args->job_id);
    self->attempt = args->attempt;
    self->uuid = strdup (args->instance_uuid);
    self->strategy = strdup (args->strategy);
    self->uri = strdup (args->uri);
    self->workdir = strdup (args->workdir);
    self->exe = strdup (args->exe);
    self->run_id = strdup (args->run_id);
    if (sf_naming_id_valid (args->catalog_id))
        snprintf (self->catalog_id, sizeof (self->catalog_id), "%s", args->catalog_id);
    self->conv = args->conv;
    self->store = args->store;
    self->max_pause_ms = args->max_pause_ms;
    self->kind = streq (args->strategy, "file-live") ? S_FILE_LIVE
               : streq (args->strategy, "rbd") ? S_RBD
               : streq (args->strategy, "mixed") ? S_MIXED
               : streq (args->strategy, "offline") ? S_OFFLINE : S_FILE_COLD;
    self->pausing = self->kind != S_OFFLINE;
    self->consistency = self->pausing ? "paused" : "offline";
    self->no_freeze = args->no_freeze;
    self->wait_grant = args->wait_upload_grant;
    self->bucket = sf_bucket_new (0, SF_IMGSTORE_CHUNK);
    self->stor = args->stor;
    self->leftovers = args->leftovers;
    self->joblog = args->joblog;
    self->export_mode = args->rbd_mode && streq (args->rbd_mode, "export");
    //  [storage.rbd] snapshot = backup: the RBD disks are copied live like
    //  file disks (sf_task_live), so rbd and mixed run as file-live
    if (args->rbd_backup && (self->kind == S_RBD || self->kind == S_MIXED)) {
        self->rbd_backup = true;
        self->kind = S_FILE_LIVE;
    }
    self->clone_pool = strdup (args->clone_pool ? args->clone_pool : "");
    self->ctx.job_id = self->job_id;
    return self;
}

static void
s_task_destroy (task_t **self_p)
{
    task_t *self = *self_p;
    assert (!self->guard && !self->paused && !self->frozen && !self->claimed);
    sf_task_rbd_close (self);
    sf_task_live_destroy (self);
    for (size_t i = 0; i < self->n_parts; i++)
        free (self->parts [i].path);
    for (size_t i = 0; i < self->n_images; i++)
        sf_image_rec_release (&self->images [i]);
    sf_hv_domain_destroy (&self->domain);
    free (self->domain_xml);
    sf_bucket_destroy (&self->bucket);
    sf_hv_destroy (&self->hv);
    free (self->scratch);
    free (self->job_id);
    free (self->uuid);
    free (self->strategy);
    free (self->uri);
    free (self->workdir);
    free (self->exe);
    free (self->run_id);
    free (self->clone_pool);
    free (self);
    *self_p = NULL;
}

//  What the actor is started with
typedef struct {
    const sf_task_args_t *args;
    const sf_incremental_t *incremental;
} start_t;

static void
s_task_actor (zsock_t *pipe, void *arg)
{
    const start_t *start = (const start_t *) arg;
    task_t *self = s_task_new (start->args);
    sf_task_live_offer (self, start->incremental);
    self->pipe = pipe;
    zsock_signal (pipe, 0);
    s_run (self);
    //  Wait for the owner to end us (unless a step read its $TERM); a late
    //  CANCEL changes nothing
    while (!sf_bucket_terminated (self->bucket)) {
        char *command = zstr_recv (pipe);
        bool stop = !command || streq (command, "$TERM");
        zstr_free (&command);
        if (stop)
            break;
    }
    s_task_destroy (&self);
}

zactor_t *
sf_task_new (const sf_task_args_t *args)
{
    return sf_task_new_incremental (args, NULL);
}

zactor_t *
sf_task_new_incremental (const sf_task_args_t *args, const sf_incremental_t *incremental)
{
    assert (args && args->job_id && args->instance_uuid && args->strategy);
    assert (args->uri && args->workdir && args->exe && args->run_id && args->conv);
    assert (args->store);
    assert (!args->stor || args->leftovers);
    //  zactor_new returns once the actor has copied what it needs
    start_t start = { args, incremental };
    return zactor_new (s_task_actor, &start);
}

//  --------------------------------------------------------------------------
//  Self test

static void
s_test_domain (FILE *file, const char *name, const char *uuid, int runstate,
               const char *disk, const char *format)
{
    fprintf (file,
        "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\n"
        " <name>%s</name><uuid>%s</uuid><memory>65536</memory>\n"
        " <os><type>hvm</type></os><devices>\n"
        "  <disk type='file' device='disk'><driver name='qemu' type='%s'/>\n"
        "   <source file='%s'/><target dev='vda' bus='virtio'/></disk>\n"
        "  <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/></disk>\n"
        " </devices><test:runstate>%d</test:runstate>\n</domain>\n",
        name, uuid, format, disk, runstate);
}

//  A domain whose vda is RBD image rbd_a; vdb is RBD if second has no
//  '/' at the start, a qcow2 file if it does, absent if NULL

static void
s_test_rbd_domain (FILE *file, const char *name, const char *uuid, int runstate,
                   const char *rbd_a, const char *second)
{
    fprintf (file,
        "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\n"
        " <name>%s</name><uuid>%s</uuid><memory>65536</memory>\n"
        " <os><type>hvm</type></os><devices>\n"
        "  <disk type='network' device='disk'><driver name='qemu' type='raw'/>\n"
        "   <source protocol='rbd' name='%s'><host name='127.0.0.1'/></source>\n"
        "   <target dev='vda' bus='virtio'/></disk>\n", name, uuid, rbd_a);
    if (second && *second == '/')
        fprintf (file,
            "  <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\n"
            "   <source file='%s'/><target dev='vdb' bus='virtio'/></disk>\n", second);
    else
    if (second)
        fprintf (file,
            "  <disk type='network' device='disk'><driver name='qemu' type='raw'/>\n"
            "   <source protocol='rbd' name='%s'><host name='127.0.0.1'/></source>\n"
            "   <target dev='vdb' bus='virtio'/></disk>\n", second);
    fprintf (file, " </devices><test:runstate>%d</test:runstate>\n</domain>\n", runstate);
}

char *
sf_task_test_node (const char *dir)
{
    char *cmd = zsys_sprintf (
        "cd %s && head -c 4194304 /dev/urandom > base.raw && "
        "qemu-img create -q -f qcow2 -F raw -b %s/base.raw run.qcow2 && "
        "qemu-img create -q -f qcow2 held.qcow2 2M && "
        "head -c 1048576 /dev/urandom > off.raw && "
        "qemu-img create -q -f qcow2 huge.qcow2 1P && "
        "qemu-img create -q -f qcow2 mix.qcow2 2M", dir, dir);
    int rc = system (cmd);              //  test setup only, not product code
    assert (rc == 0);
    zstr_free (&cmd);
    char *path = zsys_sprintf ("%s/node.xml", dir);
    FILE *file = fopen (path, "w");
    assert (file);
    fprintf (file, "<node>\n");
    char *disk = zsys_sprintf ("%s/run.qcow2", dir);
    s_test_domain (file, "run", SF_TEST_RUN_UUID, 1, disk, "qcow2");
    zstr_free (&disk);
    disk = zsys_sprintf ("%s/held.qcow2", dir);
    s_test_domain (file, "held", SF_TEST_HELD_UUID, 3, disk, "qcow2");
    zstr_free (&disk);
    disk = zsys_sprintf ("%s/off.raw", dir);
    s_test_domain (file, "off", SF_TEST_OFF_UUID, 5, disk, "raw");
    zstr_free (&disk);
    disk = zsys_sprintf ("%s/huge.qcow2", dir);
    s_test_domain (file, "huge", SF_TEST_HUGE_UUID, 1, disk, "qcow2");
    zstr_free (&disk);
    s_test_rbd_domain (file, "ceph", SF_TEST_CEPH_UUID, 1, "rbd/ceph-a", "rbd/ceph-b");
    disk = zsys_sprintf ("%s/mix.qcow2", dir);
    s_test_rbd_domain (file, "mix", SF_TEST_MIX_UUID, 1, "rbd/mix-a", disk);
    zstr_free (&disk);
    s_test_rbd_domain (file, "cephoff", SF_TEST_CEPHOFF_UUID, 5, "rbd/off-a", NULL);
    fprintf (file, "</node>\n");
    fclose (file);
    char *uri = zsys_sprintf ("test://%s", path);
    zstr_free (&path);
    return uri;
}

//  Run one job to its result; return the decoded result. phases gets the
//  event phases in order as letters (q p r c u), for compact asserts.

static void
s_test_cancel (zactor_t *task, void *arg)
{
    (void) arg;
    zstr_send (task, "CANCEL");
}

sf_envelope_t *
sf_task_test_job_text (sf_task_args_t *args, char *phases, bool cancel_when_paused,
                 char *paused_text, size_t size)
{
    return sf_task_test_job_with (args, phases, cancel_when_paused ? s_test_cancel : NULL,
                                  NULL, paused_text, size);
}

sf_envelope_t *
sf_task_test_job_with (sf_task_args_t *args, char *phases, sf_task_test_paused_fn *on_paused,
                       void *arg, char *paused_text, size_t size)
{
    zactor_t *task = sf_task_new (args);
    assert (task);
    sf_envelope_t *result = NULL;
    size_t count = 0;
    while (!result) {
        char *kind = NULL;
        zframe_t *frame = NULL;
        assert (zsock_recv (task, "sf", &kind, &frame) == 0);
        sf_err_t err = SF_ERR_INIT;
        sf_envelope_t *env = sf_wire_decode (frame, &err);
        assert (env);
        if (streq (kind, "RESULT")) {
            assert (env->body_case == SF_BODY_JOB_RESULT);
            assert (streq (env->job_result->job_id, args->job_id));
            result = env;
        }
        else {
            assert (env->body_case == SF_BODY_JOB_EVENT);
            phases [count++] = "?qprcudfw" [env->job_event->phase];
            if (env->job_event->phase == SF_PHASE_PAUSED && paused_text)
                snprintf (paused_text, size, "%s", env->job_event->text);
            if (on_paused && env->job_event->phase == SF_PHASE_PAUSED)
                on_paused (task, arg);
            sf_wire_free (&env);
        }
        phases [count] = 0;
        zstr_free (&kind);
        zframe_destroy (&frame);
    }
    zactor_destroy (&task);
    return result;
}

static sf_envelope_t *
s_test_job (sf_task_args_t *args, char *phases, bool cancel_when_paused)
{
    return sf_task_test_job_text (args, phases, cancel_when_paused, NULL, 0);
}

static int
s_test_count (const char *dir)
{
    zdir_t *listing = zsys_file_exists (dir) ? zdir_new (dir, NULL) : NULL;
    int count = listing ? (int) zdir_count (listing) : 0;
    zdir_destroy (&listing);
    return count;
}

static void
s_test_cold (sf_task_args_t *args, const char *store)
{
    char phases [16];
    sf_envelope_t *env = s_test_job (args, phases, false);
    sf_job_result_t *res = env->job_result;
    assert (res->ok && res->resumed && streq (phases, "qprcu"));
    assert (streq (res->strategy, "file-cold") && streq (res->consistency, "paused"));
    //  The guest's inactive XML goes with its images
    assert (res->domain_xml && strstr (res->domain_xml, "<domain")
            && strstr (res->domain_xml, args->instance_uuid));
    assert (streq (res->method, "convert"));
    assert (res->n_images == 1 && !res->error);
    assert (streq (res->images [0]->disk_target, "vda"));
    assert (streq (res->images [0]->store, "dir") && res->images [0]->size == res->bytes);
    //  The image is a standalone, clean qcow2 equal to the disk
    char *cmd = zsys_sprintf ("qemu-img check -q %s && qemu-img compare -q "
                              "-f qcow2 -F qcow2 %s/../run.qcow2 %s", res->images [0]->path,
                              store, res->images [0]->path);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    assert (s_test_count (store) == 2);         //  .qcow2 + .json
    char *scratch = zsys_sprintf ("%s/%s", args->workdir, args->job_id);
    assert (!zsys_file_exists (scratch));
    char *journal = sf_guard_journal_path (args->workdir, SF_TEST_RUN_UUID);
    assert (!zsys_file_exists (journal));
    zstr_free (&journal);
    zstr_free (&scratch);
    sf_wire_free (&env);
}

static void
s_test_failures (sf_task_args_t *args, const char *store)
{
    char phases [16];
    //  Strategy does not fit; unknown instance; no room for scratch
    args->strategy = "offline";
    sf_envelope_t *env = s_test_job (args, phases, false);
    assert (!env->job_result->ok && env->job_result->error->code == SF_EINVAL);
    assert (strstr (env->job_result->error->text, "'offline' does not fit instance 'run' "
                    "(storage class file, running)"));
    sf_wire_free (&env);
    args->strategy = "file-cold";
    args->instance_uuid = "00000000-0000-0000-0000-00000000dead";
    env = s_test_job (args, phases, false);
    assert (env->job_result->error->code == SF_ENOENT);
    assert (strstr (env->job_result->error->text, "unknown instance"));
    assert (!env->job_result->retryable);
    sf_wire_free (&env);
    args->instance_uuid = SF_TEST_HUGE_UUID;
    env = s_test_job (args, phases, false);
    assert (strstr (env->job_result->error->text, "not enough scratch space"));
    assert (streq (phases, "q"));               //  checked before any pause
    assert (!env->job_result->retryable);
    sf_wire_free (&env);
    assert (!env);
    //  The image store cannot be written (its path is a file): failed before
    //  any pause, retryable; the unknown instance above is not
    args->instance_uuid = SF_TEST_RUN_UUID;
    char *aside = zsys_sprintf ("%s.aside", store);
    assert (rename (store, aside) == 0);
    FILE *blocker = fopen (store, "w");
    assert (blocker);
    fclose (blocker);
    env = s_test_job (args, phases, false);
    assert (!env->job_result->ok && env->job_result->error->code == SF_ESTORE);
    assert (env->job_result->retryable && streq (phases, "q") && env->job_result->pause_ms == 0);
    sf_wire_free (&env);
    assert (unlink (store) == 0 && rename (aside, store) == 0);
    zstr_free (&aside);

    //  Cancelled while paused: qemu-img stopped, guest resumed, nothing kept
    args->instance_uuid = SF_TEST_RUN_UUID;
    sf_conv_t *qemu = args->conv;
    sf_conv_t *fake = sf_conv_new_with (&sf_conv_fake_driver);
    args->conv = fake;
    env = s_test_job (args, phases, true);
    assert (!env->job_result->ok && env->job_result->error->code == SF_ECANCELED);
    assert (!env->job_result->retryable);       //  paused first: never retried
    assert (strstr (env->job_result->error->text, "; guest resumed"));
    assert (env->job_result->resumed && env->job_result->n_images == 0);
    assert (env->job_result->pause_ms < 60000);     //  the mock resumes in microseconds
    sf_wire_free (&env);
    //  Conversion longer than max_pause
    args->max_pause_ms = 100;
    env = s_test_job (args, phases, false);
    assert (env->job_result->error->code == SF_ETIMEDOUT);
    assert (strstr (env->job_result->error->text, "longer than max_pause"));
    assert (env->job_result->resumed);
    sf_wire_free (&env);
    args->max_pause_ms = 60000;
    args->conv = qemu;
    sf_conv_destroy (&fake);
    assert (s_test_count (store) == 0);
    assert (s_test_count (args->workdir) <= 1);     //  at most paused/
}

//  --------------------------------------------------------------------------
//  Upload grants

//  Run one job that waits for its upload grant. On UPLOAD_WAIT (its bytes
//  go to *wait_bytes): rate < 0 cancels, rate < -1 abandons the task (the
//  owner destroys it: returns NULL); else grants rate and, if change_ms,
//  sends RATE new_rate that much later.

sf_envelope_t *
sf_task_test_job_grant (sf_task_args_t *args, char *phases, int64_t rate, int change_ms,
                  uint64_t new_rate, uint64_t *wait_bytes)
{
    args->wait_upload_grant = true;
    zactor_t *task = sf_task_new (args);
    assert (task);
    sf_envelope_t *result = NULL;
    size_t count = 0;
    while (!result && task) {
        char *kind = NULL;
        zframe_t *frame = NULL;
        assert (zsock_recv (task, "sf", &kind, &frame) == 0);
        sf_err_t err = SF_ERR_INIT;
        sf_envelope_t *env = sf_wire_decode (frame, &err);
        assert (env);
        if (streq (kind, "RESULT"))
            result = env;
        else {
            sf_job_event_t *event = env->job_event;
            phases [count++] = "?qprcudfw" [event->phase];
            if (event->phase == SF_PHASE_UPLOAD_WAIT) {
                *wait_bytes = event->bytes;
                if (rate < -1)
                    zactor_destroy (&task);
                else
                if (rate < 0)
                    zstr_send (task, "CANCEL");
                else {
                    char text [32];
                    snprintf (text, sizeof (text), "%" PRId64, rate);
                    zstr_sendx (task, "GRANT", text, NULL);
                    if (change_ms) {
                        zclock_sleep (change_ms);
                        snprintf (text, sizeof (text), "%" PRIu64, new_rate);
                        zstr_sendx (task, "RATE", text, NULL);
                    }
                }
            }
            sf_wire_free (&env);
        }
        phases [count] = 0;
        zstr_free (&kind);
        zframe_destroy (&frame);
    }
    zactor_destroy (&task);
    args->wait_upload_grant = false;
    return result;
}

//  Wait, grant at 2 MiB/s, store; a rate change mid-upload; cancelled and
//  abandoned while waiting; nothing to store: no wait

static void
s_test_grant (sf_task_args_t *args, const char *store)
{
    char phases [16];
    uint64_t bytes = 0;
    args->job_id = "G1";
    int64_t start = sf_time_mono_ms ();
    sf_envelope_t *env = sf_task_test_job_grant (args, phases, 2 << 20, 0, 0, &bytes);
    sf_job_result_t *res = env->job_result;
    assert (res->ok && res->resumed && streq (phases, "qprcwu"));
    assert (res->n_images == 1 && bytes == res->bytes && bytes > (4 << 20));
    //  (bytes - the burst of one chunk) at 2 MiB/s, plus the fsync
    uint64_t expect = (bytes - SF_IMGSTORE_CHUNK) * 1000 / (2 << 20);
    assert (res->upload_ms >= expect * 95 / 100 && res->upload_ms < expect + 10000);
    assert ((uint64_t) (sf_time_mono_ms () - start) >= res->upload_ms);
    char *cmd = zsys_sprintf ("qemu-img check -q %s", res->images [0]->path);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    sf_wire_free (&env);

    //  Granted at 128 KiB/s (about 25 s for this disk), lifted after 500 ms:
    //  the RATE message changes the rate and cancels nothing
    args->job_id = "G2";
    env = sf_task_test_job_grant (args, phases, 128 << 10, 500, 0, &bytes);
    res = env->job_result;
    assert (res->ok && streq (phases, "qprcwu") && res->n_images == 1);
    assert (res->upload_ms >= 400 && res->upload_ms < 15000);
    cmd = zsys_sprintf ("qemu-img check -q %s", res->images [0]->path);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    sf_wire_free (&env);
    //  Slowed down mid-upload: 8 MiB/s, then 1 MiB/s after 100 ms
    args->job_id = "G3";
    env = sf_task_test_job_grant (args, phases, 8 << 20, 100, 1 << 20, &bytes);
    res = env->job_result;
    assert (res->ok && streq (phases, "qprcwu"));
    assert (res->upload_ms >= 1500 && res->upload_ms < 20000);
    sf_wire_free (&env);
    cmd = zsys_sprintf ("rm -f %s/*", store);
    assert (system (cmd) == 0);
    zstr_free (&cmd);

    //  Cancelled while waiting: nothing stored, scratch removed
    args->job_id = "G4";
    env = sf_task_test_job_grant (args, phases, -1, 0, 0, &bytes);
    res = env->job_result;
    assert (!res->ok && res->error->code == SF_ECANCELED && streq (phases, "qprcw"));
    assert (strstr (res->error->text, "waiting for an upload grant"));
    assert (res->resumed && res->n_images == 0);
    assert (s_test_count (store) == 0);
    char *scratch = zsys_sprintf ("%s/G4", args->workdir);
    assert (!zsys_file_exists (scratch));
    zstr_free (&scratch);
    sf_wire_free (&env);
    //  Abandoned while waiting: the owner's $TERM ends it at once
    args->job_id = "G5";
    start = sf_time_mono_ms ();
    env = sf_task_test_job_grant (args, phases, -2, 0, 0, &bytes);
    assert (env == NULL && sf_time_mono_ms () - start < 30000);
    scratch = zsys_sprintf ("%s/G5", args->workdir);
    assert (!zsys_file_exists (scratch));
    zstr_free (&scratch);
    assert (s_test_count (store) == 0);
    args->job_id = "J1";
}

//  Scratch cleaning never follows a symlink: one in place of a job's
//  scratch directory (a job of that id fails before any pause), one inside
//  it with a job's file name; the files they point to stay

static void
s_test_scratch_links (sf_task_args_t *args, const char *dir, const char *workdir)
{
    char *cmd = zsys_sprintf (
        "mkdir -p %s/precious %s/S3 && echo keep > %s/precious/vda.qcow2 && "
        "ln -s %s/precious %s/S2 && ln -s %s/precious %s/S4 && "
        "ln -s %s/precious/vda.qcow2 %s/S3/vda.qcow2",
        dir, workdir, dir, dir, workdir, dir, workdir, dir, workdir);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    char *path = zsys_sprintf ("%s/S2", workdir);
    assert (sf_task_scratch_clean (path) == -1);
    zstr_free (&path);
    path = zsys_sprintf ("%s/S3", workdir);
    assert (sf_task_scratch_clean (path) == -1);
    zstr_free (&path);
    char phases [16];
    const char *job_id = args->job_id;
    args->job_id = "S4";
    args->instance_uuid = SF_TEST_OFF_UUID;
    args->strategy = "offline";
    sf_envelope_t *env = s_test_job (args, phases, false);
    assert (!env->job_result->ok && env->job_result->error->code == SF_EEXIST);
    assert (strstr (env->job_result->error->text, "/S4' exists and is not a job's (a "
                    "symlink, or files a job does not make); left alone"));
    assert (streq (phases, "q"));
    sf_wire_free (&env);
    args->job_id = job_id;
    cmd = zsys_sprintf ("test \"$(cat %s/precious/vda.qcow2)\" = keep && test -L %s/S2 && "
                        "test -L %s/S4 && test -L %s/S3/vda.qcow2 && rm -r %s/S2 %s/S3 %s/S4",
                        dir, workdir, workdir, workdir, workdir, workdir, workdir);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
}

void
sf_task_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_task: ");
    //  @selftest
    char dir [] = "/tmp/sf-task-test-XXXXXX";
    assert (mkdtemp (dir));
    char *uri = sf_task_test_node (dir);
    char *workdir = zsys_sprintf ("%s/work", dir);
    char *store = zsys_sprintf ("%s/images", dir);
    char exe [4096];
    ssize_t len = readlink ("/proc/self/exe", exe, sizeof (exe) - 1);
    assert (len > 0);
    exe [len] = 0;
    sf_err_t err = SF_ERR_INIT;
    sf_conv_t *conv = sf_conv_new (NULL, &err);
    assert (conv);
    sf_imgstore_cfg_t store_cfg = { .driver = "dir", .path = store };
    sf_imgstore_t *images_store = sf_imgstore_new (&store_cfg, &err);
    assert (images_store);
    sf_task_args_t args = { "J1", 1, SF_TEST_RUN_UUID, "file-cold", uri, workdir, exe,
                            "run-test", 60000, images_store, conv, NULL, NULL, NULL,
                            NULL, false, false, SF_TEST_CATALOG, NULL, false };
    s_test_cold (&args, store);
    char *cmd = zsys_sprintf ("rm -f %s/*", store);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    s_test_failures (&args, store);
    s_test_grant (&args, store);

    //  Paused by someone else: converted as it is and left paused
    char phases [16];
    args.instance_uuid = SF_TEST_HELD_UUID;
    sf_envelope_t *env = s_test_job (&args, phases, false);
    assert (env->job_result->ok && !env->job_result->resumed);
    assert (env->job_result->pause_ms == 0 && streq (phases, "qprcu"));
    assert (env->job_result->error && env->job_result->error->code == SF_OK);
    assert (strstr (env->job_result->error->text, "already paused before the job"));
    sf_wire_free (&env);
    //  Offline: no pause
    args.instance_uuid = SF_TEST_OFF_UUID;
    args.strategy = "offline";
    env = s_test_job (&args, phases, false);
    assert (env->job_result->ok && streq (phases, "qcu"));
    assert (streq (env->job_result->consistency, "offline") && !env->job_result->resumed);
    assert (env->job_result->n_images == 1 && !env->job_result->error);
    sf_wire_free (&env);
    //  Scratch cleaning removes only what a job makes
    char *scratch = zsys_sprintf ("%s/S1", workdir);
    cmd = zsys_sprintf ("mkdir -p %s && touch %s/vda.qcow2 %s/vdb.qcow2.tmp", scratch,
                        scratch, scratch);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    assert (sf_task_scratch_clean (scratch) == 0 && !zsys_file_exists (scratch));
    assert (sf_task_scratch_clean (scratch) == 0);
    cmd = zsys_sprintf ("mkdir -p %s && touch %s/vda.qcow2 %s/data.db", scratch, scratch,
                        scratch);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    assert (sf_task_scratch_clean (scratch) == -1);
    cmd = zsys_sprintf ("test -f %s/data.db && test ! -f %s/vda.qcow2", scratch, scratch);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    //  A file-live overlay is never removed (a guest may run on it)
    assert (!sf_task_scratch_has_overlay (scratch));
    cmd = zsys_sprintf ("rm %s/data.db && touch %s/vda.qcow2 %s/vda.overlay.qcow2", scratch,
                        scratch, scratch);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    assert (sf_task_scratch_has_overlay (scratch));
    assert (sf_task_scratch_clean (scratch) == -1);
    cmd = zsys_sprintf ("test -f %s/vda.overlay.qcow2 && test ! -f %s/vda.qcow2 && "
                        "touch %s/data.db", scratch, scratch, scratch);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    zstr_free (&scratch);
    s_test_scratch_links (&args, dir, workdir);
    //  file-live where neither the backup API nor external snapshots exist
    //  (test://): a clear error, the guest resumed, nothing left
    args.job_id = "L1";
    args.instance_uuid = SF_TEST_RUN_UUID;
    args.strategy = "file-live";
    char paused [300];
    env = sf_task_test_job_text (&args, phases, false, paused, sizeof (paused));
    assert (!env->job_result->ok && env->job_result->error->code == SF_ENOTSUP);
    assert (strstr (env->job_result->error->text, "cannot copy the file disks of 'run' "
                    "while it runs: backup API refused ("));
    assert (strstr (env->job_result->error->text, "); external snapshot refused ("));
    assert (strstr (env->job_result->error->text, "; guest thawed"));
    assert (env->job_result->resumed && streq (phases, "qp") && streq (paused, "frozen"));
    sf_wire_free (&env);
    sf_hv_set_backup_api (false);
    env = s_test_job (&args, phases, false);
    assert (!env->job_result->ok && env->job_result->error->code == SF_ENOTSUP);
    assert (strstr (env->job_result->error->text, "backup API off ([hypervisor] "
                    "backup_api = false); external snapshot refused ("));
    sf_wire_free (&env);
    sf_hv_set_backup_api (true);
    scratch = zsys_sprintf ("%s/L1", workdir);
    assert (!zsys_file_exists (scratch));
    zstr_free (&scratch);
    args.strategy = "file-cold";
    //  RBD, mixed, offline with RBD disks (fake cluster)
    sf_task_rbd_test (dir, uri, exe);
    //  An unsafe job id never becomes a path
    args.job_id = "paused";
    env = s_test_job (&args, phases, false);
    assert (!env->job_result->ok && env->job_result->error->code == SF_EINVAL);
    sf_wire_free (&env);
    args.job_id = "../x";
    env = s_test_job (&args, phases, false);
    assert (!env->job_result->ok && env->job_result->error->code == SF_EINVAL);
    sf_wire_free (&env);

    cmd = zsys_sprintf ("rm -rf %s", dir);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    sf_conv_destroy (&conv);
    sf_imgstore_destroy (&images_store);
    zstr_free (&store);
    zstr_free (&workdir);
    zstr_free (&uri);
    //  @end
    printf ("OK\n");
}
