/*  =========================================================================
    sf_task - one snapshot job as a zactor

    The job is a straight pipeline of steps on a task_t; each step returns
    0 or -1 with task->err set, and one failure path (s_fail) undoes what
    the steps did, in order of urgency: resume the guest, stop the guard,
    drop the journal entry, roll back stored images, remove scratch files.
    The pipe is passed to every long step as its cancel socket, so a CANCEL
    or $TERM stops qemu-img or a copy at once.
    =========================================================================
*/
#include "sf_worker_classes.h"

#include <dirent.h>
#include <sys/statvfs.h>
#include <unistd.h>

//  One converted disk
typedef struct {
    const sf_hv_disk_t *disk;       //  Borrowed from task->domain
    char *path;                     //  Owned, scratch file
    uint64_t bytes;
} part_t;

typedef struct {
    zsock_t *pipe;                  //  Borrowed, the actor pipe
    char *job_id, *uuid, *strategy, *uri, *workdir, *exe, *conv_driver, *run_id;
    char *store_driver, *store_path;
    uint32_t attempt;
    int64_t max_pause_ms;
    bool cold;                      //  file-cold (else offline)
    sf_logctx_t ctx;                //  job_id, vm name (borrowed from here)
    sf_hv_t *hv;                    //  Owned
    sf_conv_t *conv;                //  Owned
    sf_imgstore_t *store;           //  Owned
    sf_hv_domain_t *domain;         //  Owned
    char *scratch;                  //  Owned, <workdir>/<job_id>
    part_t parts [SF_WIRE_MAX_DISKS];
    size_t n_parts;
    sf_image_rec_t images [SF_WIRE_MAX_DISKS];
    size_t n_images;
    //  Pause state
    bool was_paused;                //  paused by someone else before the job
    bool paused;                    //  we suspended it and have not resumed
    bool journaled;                 //  our journal entry exists
    bool stuck;                     //  resume failed, guard too
    sf_proc_t *guard;               //  Owned, while paused
    int64_t pause_start;            //  mono ms, just before the suspend call
    int64_t pause_deadline;         //  mono ms
    //  Results
    uint64_t pause_ms, convert_ms, upload_ms, bytes;
    bool resumed;                   //  confirmed running at the end
    char note [256];                //  result text on success, if any
    sf_err_t err;
} task_t;

SF_LOG_MODULE ("worker.task");

//  --------------------------------------------------------------------------
//  Messages to the owner

static void
s_send (task_t *self, const char *kind, sf_envelope_t *env)
{
    sf_err_t err = SF_ERR_INIT;
    zframe_t *frame = sf_wire_encode (env, &err);
    if (!frame) {
        SF_ERROR (&self->ctx, "cannot encode %s: %s", kind, err.text);
        return;
    }
    zsock_send (self->pipe, "sf", kind, frame);
    zframe_destroy (&frame);
}

static void
s_emit (task_t *self, int phase, uint64_t ms, uint64_t bytes, const char *text)
{
    sf_job_event_t event = SF_JOB_EVENT_INIT;
    event.job_id = self->job_id;
    event.attempt = self->attempt;
    event.phase = phase;
    event.ms = ms;
    event.bytes = bytes;
    event.at_ms = (uint64_t) sf_time_now_ms ();
    char clean [512];
    snprintf (clean, sizeof (clean), "%s", text ? text : "");
    event.text = sf_text_utf8_fix (clean);
    sf_envelope_t env = SF_ENVELOPE_INIT;
    env.body_case = SF_BODY_JOB_EVENT;
    env.job_event = &event;
    SF_DEBUG (&self->ctx, "phase %s ms=%" PRIu64 " bytes=%" PRIu64,
              sf_wire_phase_name (phase), ms, bytes);
    s_send (self, "EVENT", &env);
}

static void
s_send_result (task_t *self, bool ok)
{
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    result.job_id = self->job_id;
    result.attempt = self->attempt;
    result.ok = ok;
    result.strategy = self->strategy;
    result.consistency = self->cold ? "paused" : "offline";
    result.pause_ms = self->pause_ms;
    result.convert_ms = self->convert_ms;
    result.upload_ms = self->upload_ms;
    result.bytes = self->bytes;
    result.resumed = self->resumed;
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
        image_ptrs [i] = &images [i];
    }
    result.n_images = self->n_images;
    result.images = image_ptrs;
    sf_error_info_t error = SF_ERROR_INFO_INIT;
    sf_text_utf8_fix (self->err.text);
    sf_text_utf8_fix (self->note);
    if (!ok || *self->note) {
        error.code = ok ? SF_OK : self->err.code;
        error.text = ok ? self->note : self->err.text;
        result.error = &error;
    }
    sf_envelope_t env = SF_ENVELOPE_INIT;
    env.body_case = SF_BODY_JOB_RESULT;
    env.job_result = &result;
    s_send (self, "RESULT", &env);
}

static bool
s_cancelled (task_t *self)
{
    if (zsock_events (self->pipe) & ZMQ_POLLIN)
        return sf_err_set (&self->err, SF_ECANCELED, "job cancelled") == -1;
    return false;
}

//  --------------------------------------------------------------------------
//  Steps before the pause: nothing to undo but scratch files

static int
s_open (task_t *self)
{
    if (!sf_name_is_safe (self->job_id) || streq (self->job_id, "paused"))
        return sf_err_set (&self->err, SF_EINVAL, "job id '%s' is not a safe name",
                           self->job_id);
    sf_imgstore_cfg_t store_cfg = { self->store_driver, self->store_path };
    if (!(self->hv = sf_hv_new (self->uri, &self->err))
    ||  !(self->conv = sf_conv_new (self->conv_driver, &self->err))
    ||  !(self->store = sf_imgstore_new (&store_cfg, &self->err)))
        return -1;
    self->domain = sf_hv_lookup (self->hv, self->uuid, SF_HV_SIZES, &self->err);
    if (!self->domain) {
        if (self->err.code == SF_ENOENT)
            sf_err_set (&self->err, SF_ENOENT, "unknown instance '%s'", self->uuid);
        return -1;
    }
    self->ctx.vm = self->domain->name;
    return sf_hv_strategy_check (self->domain, self->strategy, &self->err);
}

//  Scratch directories hold only <target>.qcow2 and <target>.qcow2.tmp;
//  anything else means the path is not ours, and it is left alone.

int
sf_task_scratch_clean (const char *path)
{
    assert (path);
    DIR *dir = opendir (path);
    if (!dir)
        return errno == ENOENT ? 0 : -1;
    bool foreign = false;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        const char *name = entry->d_name;
        if (streq (name, ".") || streq (name, ".."))
            continue;
        size_t len = strlen (name);
        bool ours = entry->d_type == DT_REG
                 && ((len > 6 && streq (name + len - 6, ".qcow2"))
                 ||  (len > 10 && streq (name + len - 10, ".qcow2.tmp")));
        char *file = zsys_sprintf ("%s/%s", path, name);
        if (!ours || unlink (file))
            foreign = true;
        zstr_free (&file);
    }
    closedir (dir);
    return !foreign && rmdir (path) == 0 ? 0 : -1;
}

static void
s_remove_scratch (task_t *self)
{
    if (self->scratch && sf_task_scratch_clean (self->scratch))
        SF_WARN (&self->ctx, "scratch directory '%s' holds files that are not ours; "
                 "left in place", self->scratch);
}

//  Fresh scratch directory with room for every disk at its virtual size
//  (a qcow2 of the whole chain is at most that plus metadata).

static int
s_scratch (task_t *self)
{
    self->scratch = zsys_sprintf ("%s/%s", self->workdir, self->job_id);
    if (sf_task_scratch_clean (self->scratch))  //  leftover of a killed worker?
        return sf_err_set (&self->err, SF_EEXIST, "scratch directory '%s' exists and holds "
                           "files that are not a job's", self->scratch);
    if (zsys_dir_create ("%s", self->scratch))
        return sf_err_set (&self->err, SF_EIO, "cannot create scratch directory '%s': %s",
                           self->scratch, strerror (errno));
    uint64_t need = 0;
    sf_hv_disk_t *disk = (sf_hv_disk_t *) zlistx_first (self->domain->disks);
    for (; disk; disk = (sf_hv_disk_t *) zlistx_next (self->domain->disks))
        if (sf_hv_disk_is_data (disk))
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
//  Pause and resume

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
    sf_guard_entry_t entry = { .deadline_ms = sf_time_now_ms () + self->max_pause_ms };
    snprintf (entry.uuid, sizeof (entry.uuid), "%s", self->domain->uuid);
    snprintf (entry.run_id, sizeof (entry.run_id), "%s", self->run_id);
    snprintf (entry.job_id, sizeof (entry.job_id), "%s", self->job_id);
    if (sf_guard_journal_write (self->workdir, &entry, &self->err))
        return -1;
    self->journaled = true;
    char *journal = sf_guard_journal_path (self->workdir, entry.uuid);
    self->guard = sf_guard_spawn (self->exe, self->uri, entry.uuid, entry.deadline_ms,
                                  journal, &self->err);
    zstr_free (&journal);
    if (!self->guard)
        return -1;
    self->pause_start = sf_time_mono_ms ();
    self->pause_deadline = self->pause_start + self->max_pause_ms;
    if (sf_hv_suspend (self->hv, self->uuid, &self->err))
        return -1;
    self->paused = true;
    s_emit (self, SF_PHASE_PAUSED, 0, 0, NULL);
    return 0;
}

//  Resume what we paused; stand the guard down; drop the journal entry.
//  With report, RESUMED goes out as soon as the guest runs, before the
//  guard is stopped, so the scheduler frees the pause slot at once.
//  Returns 0, or -1 with err set to why the guest may still be paused.

static int
s_resume (task_t *self, bool report, sf_err_t *err)
{
    int rc = 0;
    if (self->paused) {
        rc = sf_hv_resume (self->hv, self->uuid, err);
        self->pause_ms = (uint64_t) (sf_time_mono_ms () - self->pause_start);
        self->paused = false;
        if (rc == 0 && report)
            s_emit (self, SF_PHASE_RESUMED, self->pause_ms, 0, NULL);
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

//  The image is only consistent if the guest stayed paused (or, offline,
//  stayed off) for the whole conversion

static int
s_check_still (task_t *self)
{
    int state;
    int expect = self->cold ? SF_HV_PAUSED : SF_HV_SHUTOFF;
    if (sf_hv_state (self->hv, self->uuid, &state, &self->err))
        return -1;
    if (state != expect)
        return sf_err_set (&self->err, SF_ESTATE, "instance '%s' became %s during the "
                           "conversion (expected %s); image discarded", self->domain->name,
                           sf_hv_state_name (state), sf_hv_state_name (expect));
    return 0;
}

//  --------------------------------------------------------------------------
//  Convert and store

static int
s_convert (task_t *self)
{
    int64_t start = sf_time_mono_ms ();
    int64_t deadline = self->paused ? self->pause_deadline : 0;
    sf_hv_disk_t *disk = (sf_hv_disk_t *) zlistx_first (self->domain->disks);
    for (; disk; disk = (sf_hv_disk_t *) zlistx_next (self->domain->disks)) {
        if (!sf_hv_disk_is_data (disk))
            continue;
        if (!sf_name_is_safe (disk->target))
            return sf_err_set (&self->err, SF_EINVAL, "disk target '%s' is not a safe name",
                               disk->target);
        part_t *part = &self->parts [self->n_parts++];
        part->disk = disk;
        part->path = zsys_sprintf ("%s/%s.qcow2", self->scratch, disk->target);
        if (sf_conv_convert (self->conv, disk, part->path, self->pipe, deadline,
                             &part->bytes, &self->err)) {
            if (self->err.code == SF_ETIMEDOUT)
                sf_err_set (&self->err, SF_ETIMEDOUT, "conversion of disk '%s' took "
                            "longer than max_pause (%" PRId64 " ms)", disk->target,
                            self->max_pause_ms);
            return -1;
        }
        self->bytes += part->bytes;
    }
    self->convert_ms = (uint64_t) (sf_time_mono_ms () - start);
    if (self->n_parts == 0)
        return sf_err_set (&self->err, SF_ESTATE, "instance '%s' has no disk to snapshot",
                           self->domain->name);
    if (self->was_paused)
        return 0;               //  it is someone else's pause: nothing to check
    return s_check_still (self);
}

static int
s_store (task_t *self)
{
    int64_t start = sf_time_mono_ms ();
    uint64_t stored = 0;
    for (size_t i = 0; i < self->n_parts; i++) {
        part_t *part = &self->parts [i];
        sf_image_meta_t meta = { self->domain->uuid, self->domain->name, self->job_id,
                                 self->attempt, self->strategy,
                                 self->cold ? "paused" : "offline", part->disk->target };
        if (sf_imgstore_put (self->store, &meta, part->path, self->pipe,
                             &self->images [self->n_images], &self->err))
            return sf_err_prefix (&self->err, "cannot store disk '%s'", part->disk->target);
        stored += self->images [self->n_images++].size;
        unlink (part->path);    //  scratch space back as soon as possible
    }
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
        if (sf_imgstore_remove (self->store, self->images [i].id, &err))
            SF_ERROR (&self->ctx, "cannot roll back image '%s': %s", self->images [i].id,
                      err.text);
        sf_image_rec_release (&self->images [i]);
    }
    self->n_images = 0;
}

//  --------------------------------------------------------------------------
//  The pipelines

//  Undo everything and report. The guest comes first.

static void
s_fail (task_t *self)
{
    if (self->paused || self->guard || self->journaled) {
        bool had_paused = self->paused;
        sf_err_t resume_err = SF_ERR_INIT;
        if (s_resume (self, false, &resume_err))
            sf_err_prefix (&self->err, "resume FAILED, instance may still be paused (%s); "
                           "after", resume_err.text);
        else
        if (had_paused)
            snprintf (self->err.text + strlen (self->err.text),
                      sizeof (self->err.text) - strlen (self->err.text), "; guest resumed");
    }
    s_rollback_images (self);
    s_remove_scratch (self);
    if (self->cold && self->hv && !self->was_paused) {
        int state;
        self->resumed = sf_hv_state (self->hv, self->uuid, &state, NULL) == 0
                     && state == SF_HV_RUNNING;
    }
    SF_ERROR (&self->ctx, "job failed: %s", self->err.text);
    s_send_result (self, false);
}

static int
s_run_cold (task_t *self)
{
    if (s_pause (self) || s_convert (self))
        return -1;
    if (self->paused || self->guard) {
        if (s_resume (self, true, &self->err))
            return sf_err_prefix (&self->err, "resume FAILED, instance may still be paused");
        SF_INFO (&self->ctx, "guest paused for %" PRIu64 " ms", self->pause_ms);
    }
    else
        s_emit (self, SF_PHASE_RESUMED, 0, 0, self->note);
    s_emit (self, SF_PHASE_CONVERTED, self->convert_ms, self->bytes, NULL);
    if (s_store (self))
        return -1;
    int state = 0;
    if (sf_hv_state (self->hv, self->uuid, &state, &self->err))
        return -1;
    self->resumed = state == SF_HV_RUNNING;
    if (!self->resumed && !self->was_paused)
        snprintf (self->note, sizeof (self->note), "instance '%s' is %s after the job "
                  "(it was resumed; something else changed it)", self->domain->name,
                  sf_hv_state_name (state));
    return 0;
}

static int
s_run_offline (task_t *self)
{
    if (s_convert (self))
        return -1;
    s_emit (self, SF_PHASE_CONVERTED, self->convert_ms, self->bytes, NULL);
    return s_store (self);
}

static void
s_run (task_t *self)
{
    s_emit (self, SF_PHASE_QUEUED, 0, 0, NULL);
    if (s_open (self) || s_scratch (self) || s_cancelled (self)
    ||  (self->cold ? s_run_cold (self) : s_run_offline (self))) {
        s_fail (self);
        return;
    }
    s_remove_scratch (self);
    SF_INFO (&self->ctx, "job done: %zu image(s), %" PRIu64 " bytes, pause %" PRIu64
             " ms, convert %" PRIu64 " ms, store %" PRIu64 " ms", self->n_images,
             self->bytes, self->pause_ms, self->convert_ms, self->upload_ms);
    s_send_result (self, true);
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
    self->conv_driver = args->conv_driver ? strdup (args->conv_driver) : NULL;
    self->store_driver = strdup (args->store.driver ? args->store.driver : "");
    self->store_path = strdup (args->store.path ? args->store.path : "");
    self->max_pause_ms = args->max_pause_ms;
    self->cold = streq (args->strategy, "file-cold");
    self->ctx.job_id = self->job_id;
    return self;
}

static void
s_task_destroy (task_t **self_p)
{
    task_t *self = *self_p;
    assert (!self->guard && !self->paused);
    for (size_t i = 0; i < self->n_parts; i++)
        free (self->parts [i].path);
    for (size_t i = 0; i < self->n_images; i++)
        sf_image_rec_release (&self->images [i]);
    sf_hv_domain_destroy (&self->domain);
    sf_imgstore_destroy (&self->store);
    sf_conv_destroy (&self->conv);
    sf_hv_destroy (&self->hv);
    free (self->scratch);
    free (self->job_id);
    free (self->uuid);
    free (self->strategy);
    free (self->uri);
    free (self->workdir);
    free (self->exe);
    free (self->run_id);
    free (self->conv_driver);
    free (self->store_driver);
    free (self->store_path);
    free (self);
    *self_p = NULL;
}

static void
s_task_actor (zsock_t *pipe, void *args)
{
    task_t *self = s_task_new ((const sf_task_args_t *) args);
    self->pipe = pipe;
    zsock_signal (pipe, 0);
    s_run (self);
    //  Wait for the owner to end us; a late CANCEL changes nothing
    while (true) {
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
    assert (args && args->job_id && args->instance_uuid && args->strategy);
    assert (args->uri && args->workdir && args->exe && args->run_id);
    return zactor_new (s_task_actor, (void *) args);
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

char *
sf_task_test_node (const char *dir)
{
    char *cmd = zsys_sprintf (
        "cd %s && head -c 4194304 /dev/urandom > base.raw && "
        "qemu-img create -q -f qcow2 -F raw -b %s/base.raw run.qcow2 && "
        "qemu-img create -q -f qcow2 held.qcow2 2M && "
        "head -c 1048576 /dev/urandom > off.raw && "
        "qemu-img create -q -f qcow2 huge.qcow2 1P", dir, dir);
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
    fprintf (file, "</node>\n");
    fclose (file);
    char *uri = zsys_sprintf ("test://%s", path);
    zstr_free (&path);
    return uri;
}

//  Run one job to its result; return the decoded result. phases gets the
//  event phases in order as letters (q p r c u), for compact asserts.

static sf_envelope_t *
s_test_job (sf_task_args_t *args, char *phases, bool cancel_when_paused)
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
            phases [count++] = "?qprcudf" [env->job_event->phase];
            if (cancel_when_paused && env->job_event->phase == SF_PHASE_PAUSED)
                zstr_send (task, "CANCEL");
            sf_wire_free (&env);
        }
        phases [count] = 0;
        zstr_free (&kind);
        zframe_destroy (&frame);
    }
    zactor_destroy (&task);
    return result;
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
    assert (!env->job_result->ok && env->job_result->error->code == SF_ESTATE);
    assert (strstr (env->job_result->error->text, "'run' is running"));
    sf_wire_free (&env);
    args->strategy = "file-cold";
    args->instance_uuid = "00000000-0000-0000-0000-00000000dead";
    env = s_test_job (args, phases, false);
    assert (env->job_result->error->code == SF_ENOENT);
    assert (strstr (env->job_result->error->text, "unknown instance"));
    sf_wire_free (&env);
    args->instance_uuid = SF_TEST_HUGE_UUID;
    env = s_test_job (args, phases, false);
    assert (strstr (env->job_result->error->text, "not enough scratch space"));
    assert (streq (phases, "q"));               //  checked before any pause
    sf_wire_free (&env);

    //  Cancelled while paused: qemu-img stopped, guest resumed, nothing kept
    args->instance_uuid = SF_TEST_RUN_UUID;
    args->conv_driver = "fake";
    env = s_test_job (args, phases, true);
    assert (!env->job_result->ok && env->job_result->error->code == SF_ECANCELED);
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
    args->conv_driver = NULL;
    assert (s_test_count (store) == 0);
    assert (s_test_count (args->workdir) <= 1);     //  at most paused/
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
    sf_task_args_t args = { "J1", 1, SF_TEST_RUN_UUID, "file-cold", uri, workdir, exe,
                            "run-test", 60000, { "dir", store }, NULL };
    s_test_cold (&args, store);
    char *cmd = zsys_sprintf ("rm -f %s/*", store);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    s_test_failures (&args, store);

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
    zstr_free (&scratch);
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
    zstr_free (&store);
    zstr_free (&workdir);
    zstr_free (&uri);
    //  @end
    printf ("OK\n");
}
