/*  =========================================================================
    sf_task_rbd - the RBD steps of a snapshot job (sf_task's pipeline)

    Before the pause: parse every RBD disk's image, open it (so that the
    snapshot in the window is one request, and the cluster is connected
    before any pause), claim the job in the leftovers journal and record
    every object it will make. In the window: snapshot every image. After
    it: export the snapshots through the converter (mode export) or
    protect and clone them (mode clone: the clone is the image). Success
    forgets the clones' entry (they are the product) or removes the
    exported snapshots; failure removes what the job made, or leaves it to
    the leftovers sweeper. Every Ceph call is bounded by op_timeout; a
    failed one fails the job with SF_ECEPH ("timed out" in the text if it
    was a timeout).
    =========================================================================
*/
#include "sf_worker_classes.h"
#include "sf_task_priv.h"
#include "sf_conv_fake.h"                   //  the self-test's doubles
#include "sf_stor_fake.h"

SF_LOG_MODULE ("worker.task");

//  A Ceph call failed: the job fails with SF_ECEPH, a timeout included
//  (the text says "timed out"). Returns -1.

static int
s_ceph_failed (task_t *self)
{
    if (self->err.code == SF_ETIMEDOUT) {
        self->err.code = SF_ECEPH;
        self->ceph_timeout = true;
    }
    return -1;
}


//  The objects of rbd the job makes, as the leftovers journal lists them

static sf_stor_obj_t
s_snap_obj (const rbd_t *rbd)
{
    sf_stor_obj_t obj = { .kind = SF_STOR_SNAP, .spec = rbd->spec };
    snprintf (obj.snap, sizeof (obj.snap), "%s", rbd->snap);
    return obj;
}

static sf_stor_obj_t
s_clone_obj (const rbd_t *rbd)
{
    return (sf_stor_obj_t) { .kind = SF_STOR_CLONE, .spec = rbd->clone };
}

//  Record every object the job will make or has made, but none that was
//  there before it (foreign: not ours, never removed)

static int
s_record (task_t *self)
{
    sf_stor_obj_t objs [2 * SF_WIRE_MAX_DISKS];
    size_t count = 0;
    for (size_t i = 0; i < self->n_rbds; i++) {
        if (!self->rbds [i].snap_foreign)
            objs [count++] = s_snap_obj (&self->rbds [i]);
        if (!self->export_mode && !self->rbds [i].clone_foreign)
            objs [count++] = s_clone_obj (&self->rbds [i]);
    }
    if (sf_leftover_record (self->leftovers, self->job_id, self->catalog_id, objs, count,
                            &self->err))
        return -1;
    self->recorded = true;
    return 0;
}

//  obj exists though the job was to make it: the job stops, and obj
//  leaves the record (so that no cleanup touches it). Returns -1.

static int
s_foreign (task_t *self, rbd_t *rbd, const sf_stor_obj_t *obj)
{
    char name [520];
    sf_stor_spec_str (&obj->spec, name, sizeof (name));
    if (obj->kind == SF_STOR_SNAP)
        rbd->snap_foreign = true;
    else
        rbd->clone_foreign = true;
    //  Out of the record; if that cannot be written, no entry at all: the
    //  job's own objects then leak rather than anyone else's going
    if (self->recorded && s_record (self)) {
        SF_ERROR (&self->ctx, "%s; the job's Ceph objects are left in place", self->err.text);
        sf_err_t err = SF_ERR_INIT;
        if (sf_leftover_forget (self->leftovers, self->job_id, &err))
            SF_ERROR (&self->ctx, "%s", err.text);
        self->recorded = false;
    }
    if (obj->kind == SF_STOR_SNAP)
        return sf_err_set (&self->err, SF_EEXIST, "snapshot '%s@%s' already exists; not "
                           "ours, left alone", name, obj->snap);
    return sf_err_set (&self->err, SF_EEXIST, "image '%s' already exists; not ours, left "
                       "alone", name);
}

//  Every object the job will make must be absent now: an object of that
//  name is not ours (a job never adopts one), and the job stops before
//  it records or pauses anything

static int
s_check_absent (task_t *self)
{
    for (size_t i = 0; i < self->n_rbds; i++) {
        rbd_t *rbd = &self->rbds [i];
        sf_stor_obj_t objs [2] = { s_snap_obj (rbd), s_clone_obj (rbd) };
        for (size_t k = 0; k < (self->export_mode ? 1 : 2); k++) {
            bool exists = false;
            if (sf_stor_obj_exists (self->stor, &objs [k], &exists, &self->err))
                return s_ceph_failed (self);
            if (exists)
                return s_foreign (self, rbd, &objs [k]);
        }
    }
    return 0;
}

//  RBD disks: names; open every image now, so that a snapshot in the
//  window is a single request (this also connects to the cluster before
//  any pause); then claim the job (which cleans what an earlier attempt
//  left), check that no name the job will make exists, and record them

int
sf_task_rbd_prepare (task_t *self)
{
    sf_hv_disk_t *disk = (sf_hv_disk_t *) zlistx_first (self->domain->disks);
    for (; disk; disk = (sf_hv_disk_t *) zlistx_next (self->domain->disks)) {
        if (!sf_hv_disk_is_data (disk) || disk->type != SF_DISK_RBD)
            continue;
        if (self->rbd_backup) {
            //  Copied live (sf_task_live): its size for the backup target
            sf_stor_spec_t spec;
            if (sf_stor_spec_parse (disk->source, &spec, &self->err))
                return sf_err_prefix (&self->err, "disk '%s'", disk->target);
            if (sf_stor_size (self->stor, &spec, &disk->virtual_size, &self->err))
                return s_ceph_failed (self);
            continue;
        }
        rbd_t *rbd = &self->rbds [self->n_rbds++];
        rbd->disk = disk;
        if (sf_stor_spec_parse (disk->source, &rbd->spec, &self->err))
            return sf_err_prefix (&self->err, "disk '%s'", disk->target);
        rbd->clone = rbd->spec;
        if (*self->clone_pool) {
            snprintf (rbd->clone.pool, sizeof (rbd->clone.pool), "%s", self->clone_pool);
            *rbd->clone.nspace = 0;
        }
        if (sf_naming_snap (rbd->snap, sizeof (rbd->snap), self->catalog_id, self->job_id,
                            &self->err)
        ||  sf_naming_clone (rbd->clone.image, sizeof (rbd->clone.image), rbd->spec.image,
                             self->catalog_id, self->job_id, &self->err))
            return sf_err_prefix (&self->err, "disk '%s'", disk->target);
        rbd->image = sf_stor_image_open (self->stor, &rbd->spec, &self->err);
        if (!rbd->image)
            return s_ceph_failed (self);
        disk->virtual_size = sf_stor_image_size (rbd->image);
    }
    if (self->n_rbds == 0)
        return 0;
    if (sf_leftover_claim (self->leftovers, self->job_id, &self->err))
        return s_ceph_failed (self);
    self->claimed = true;
    return s_check_absent (self) || s_record (self) ? -1 : 0;
}


//  In the window: every disk's snapshot at once (sf_stor_images_snap_create:
//  one thread per disk, as librbd 16.2 has no aio snapshot create), so the
//  guest waits for one monitor round whatever the number of disks. A disk
//  that fails fails the job: the others' snapshots are ours and go with
//  its cleanup, after the guest runs again; a snapshot name that existed
//  is not ours and stays. Where the node's recent rounds reached
//  S_SLOW_ROUND_MS (Ceph's default monitor batches for 1 s: a round waits
//  up to that, depending on when it comes), the job's note says so.

#define S_SLOW_ROUND_MS     500

int
sf_task_rbd_snapshot (task_t *self)
{
    if (self->n_rbds == 0)
        return 0;
    sf_stor_image_t *images [SF_WIRE_MAX_DISKS];
    sf_err_t errs [SF_WIRE_MAX_DISKS];
    for (size_t i = 0; i < self->n_rbds; i++)
        images [i] = self->rbds [i].image;
    int64_t start = sf_time_mono_ms ();
    self->made = true;
    //  Every disk has the job's one snapshot name (sf_naming_snap)
    int rc = sf_stor_images_snap_create (self->stor, images, self->n_rbds,
                                         self->rbds [0].snap, errs, &self->err);
    self->rbd_round_ms = sf_time_mono_ms () - start;
    self->rbd_recent_ms = sf_stor_snap_round_ms (self->stor);
    if (rc) {
        rbd_t *foreign = NULL;
        for (size_t i = 0; i < self->n_rbds; i++) {
            if (errs [i].code == SF_ETIMEDOUT)
                self->ceph_timeout = true;
            if (errs [i].code == SF_EEXIST) {
                self->rbds [i].snap_foreign = true;
                foreign = foreign ? foreign : &self->rbds [i];
            }
        }
        if (foreign) {
            sf_err_t first = self->err;
            sf_stor_obj_t obj = s_snap_obj (foreign);
            s_foreign (self, foreign, &obj);    //  out of the record, all of them
            if (first.code == SF_EEXIST)
                return -1;
            self->err = first;
        }
        if (self->err.code == SF_ETIMEDOUT)
            self->err.code = SF_ECEPH;
        return -1;
    }
    SF_DEBUG (&self->ctx, "%zu snapshot(s) '%s' at once in %" PRId64 " ms", self->n_rbds,
              self->rbds [0].snap, self->rbd_round_ms);
    if (self->rbd_recent_ms >= S_SLOW_ROUND_MS) {
        char text [160];
        sf_task_rbd_wait_text (self, text, sizeof (text));
        sf_task_note (self, text);
    }
    return 0;
}

//  What the monitor's wait cost the guest, for the RESUMED event and the
//  note: "RBD snapshot (4 disks at once) waited 980 ms for the Ceph
//  monitor", and when this round was shorter than the node's recent
//  longest, "(up to 1010 ms in this node's recent rounds)"; "" if those
//  stayed under S_SLOW_ROUND_MS.

const char *
sf_task_rbd_wait_text (task_t *self, char *buf, size_t size)
{
    assert (buf && size);
    *buf = 0;
    if (self->n_rbds == 0 || self->rbd_recent_ms < S_SLOW_ROUND_MS)
        return buf;
    char disks [40] = "", recent [80] = "";
    if (self->n_rbds > 1)
        snprintf (disks, sizeof (disks), " (%zu disks at once)", self->n_rbds);
    if (self->rbd_recent_ms > self->rbd_round_ms)
        snprintf (recent, sizeof (recent), " (up to %" PRId64 " ms in this node's recent "
                  "rounds)", self->rbd_recent_ms);
    snprintf (buf, size, "RBD snapshot%s waited %" PRId64 " ms for the Ceph monitor%s",
              disks, self->rbd_round_ms, recent);
    return buf;
}

void
sf_task_rbd_close (task_t *self)
{
    for (size_t i = 0; i < self->n_rbds; i++)
        sf_stor_image_close (self->stor, &self->rbds [i].image);
}


int
sf_task_rbd_export (task_t *self)
{
    if (!self->export_mode || self->n_rbds == 0)
        return 0;
    int64_t start = sf_time_mono_ms ();
    for (size_t i = 0; i < self->n_rbds; i++) {
        rbd_t *rbd = &self->rbds [i];
        char *uri = sf_stor_snap_uri (self->stor, &rbd->spec, rbd->snap);
        int rc = sf_task_convert_one (self, rbd->disk, uri, "raw", 0);
        zstr_free (&uri);
        if (rc)
            return sf_err_prefix (&self->err, "cannot export snapshot '%s' of '%s'",
                                  rbd->snap, rbd->disk->source);
    }
    self->convert_ms += (uint64_t) (sf_time_mono_ms () - start);
    return 0;
}


//  Clone mode: protect the snapshot and clone it; the clone is the image

int
sf_task_rbd_clone (task_t *self, rbd_t *rbd)
{
    if (sf_stor_snap_protect (self->stor, &rbd->spec, rbd->snap, &self->err))
        return s_ceph_failed (self);
    if (sf_stor_clone (self->stor, &rbd->spec, rbd->snap, &rbd->clone, &self->err)) {
        if (self->err.code != SF_EEXIST)
            return s_ceph_failed (self);
        sf_stor_obj_t obj = s_clone_obj (rbd);
        return s_foreign (self, rbd, &obj);
    }
    sf_image_rec_t *rec = &self->images [self->n_images++];
    char clone [520];
    sf_stor_spec_str (&rbd->clone, clone, sizeof (clone));
    snprintf (rec->store, sizeof (rec->store), "rbd");
    snprintf (rec->id, sizeof (rec->id), "%s", clone);
    rec->path = zsys_sprintf ("rbd:%s", clone);
    rec->size = rbd->disk->virtual_size;
    *rec->sha256 = 0;           //  no bytes were copied
    rec->disk_target = strdup (rbd->disk->target);
    snprintf (rec->format, sizeof (rec->format), "raw");
    return 0;
}


//  The job succeeded: clones and their snapshots are its product (the
//  entry goes); exported snapshots are removed. A removal that fails now
//  is the sweeper's, and a note; the images are fine.

void
sf_task_rbd_finish (task_t *self)
{
    if (!self->recorded)
        return;
    sf_err_t err = SF_ERR_INIT;
    if (self->export_mode) {
        if (sf_leftover_clean (self->leftovers, self->job_id, false, &err)) {
            SF_WARN (&self->ctx, "snapshots left for the leftovers sweeper: %s", err.text);
            sf_task_note (self, "the RBD snapshots stay until Ceph answers (leftovers sweeper)");
        }
    }
    else
    if (sf_leftover_forget (self->leftovers, self->job_id, &err))
        SF_ERROR (&self->ctx, "%s", err.text);
    self->recorded = false;
}


//  Remove what the failed job made in Ceph; what cannot go now stays in
//  the leftovers journal

void
sf_task_rbd_cleanup (task_t *self)
{
    if (!self->recorded)
        return;
    sf_err_t err = SF_ERR_INIT;
    self->recorded = false;
    if (!self->made) {          //  nothing was created: no call to Ceph needed
        if (sf_leftover_forget (self->leftovers, self->job_id, &err))
            SF_ERROR (&self->ctx, "%s", err.text);
        return;
    }
    //  After a timeout a creation may still land in the cluster: settle
    char *path = sf_leftover_path (self->leftovers, self->job_id);
    if (sf_leftover_clean (self->leftovers, self->job_id, self->ceph_timeout, &err)) {
        SF_WARN (&self->ctx, "cannot remove the job's Ceph objects now (the sweeper retries "
                 "from '%s'): %s", path, err.text);
        size_t len = strlen (self->err.text);
        snprintf (self->err.text + len, sizeof (self->err.text) - len, "; snapshots left "
                  "for cleanup in '%s'", path);
    }
    zstr_free (&path);
}


//  --------------------------------------------------------------------------
//  Self test: the RBD strategies against the fake cluster (sf_task_test
//  runs it)

//  Run one job to its result (sf_task_test_job_text without the text)

static sf_envelope_t *
s_test_job (sf_task_args_t *args, char *phases, bool cancel_when_paused)
{
    return sf_task_test_job_text (args, phases, cancel_when_paused, NULL, 0);
}


typedef struct {
    sf_stor_fake_t *fake;
    sf_stor_t *stor;
    sf_leftover_t *leftovers;
    char *workdir;
    char *store;
} rbd_env_t;

static void
s_test_no_journal (const char *workdir, const char *uuid)
{
    char *journal = sf_guard_journal_path (workdir, uuid);
    assert (!zsys_file_exists (journal));
    zstr_free (&journal);
}

//  rbd, clone mode: frozen (the mock has an "agent"), both snapshots
//  inside the window and taken at once (the window holds one snapshot's
//  time, not two), clones are the images

static void
s_test_rbd_clone (sf_task_args_t *args, rbd_env_t *env)
{
    char phases [16], paused [512];
    sf_stor_fake_delay (env->fake, 300);        //  each snapshot takes 300 ms
    args->job_id = "R1";
    sf_envelope_t *res_env = sf_task_test_job_text (args, phases, false, paused, sizeof (paused));
    sf_job_result_t *res = res_env->job_result;
    assert (res->ok && res->resumed && streq (phases, "qprcu") && !res->error);
    assert (streq (res->strategy, "rbd") && streq (res->consistency, "frozen"));
    assert (streq (res->method, "rbd-snapshot"));
    assert (streq (paused, "frozen"));
    assert (res->pause_ms >= 300);              //  both snapshots inside the window
    assert (res->pause_ms < 600);               //  at once, not one after the other
    assert (res->n_images == 2 && res->bytes == 0);
    sf_image_t *img = res->images [0];
    assert (streq (img->store, "rbd"));
    assert (streq (img->id, "rbd/ceph-a-snapfleet-" SF_TEST_CATALOG "-R1"));
    assert (streq (img->path, "rbd:rbd/ceph-a-snapfleet-" SF_TEST_CATALOG "-R1"));
    assert (streq (img->format, "raw"));
    assert (streq (img->sha256, "") && img->size == 4 << 20);
    assert (streq (img->disk_target, "vda"));
    assert (streq (res->images [1]->id, "rbd/ceph-b-snapfleet-" SF_TEST_CATALOG "-R1"));
    assert (sf_stor_fake_has (env->fake, "rbd/ceph-a@snapfleet-" SF_TEST_CATALOG "-R1!"));
    assert (sf_stor_fake_has (env->fake, "rbd/ceph-b@snapfleet-" SF_TEST_CATALOG "-R1!"));
    assert (sf_stor_fake_has (env->fake, "rbd/ceph-b-snapfleet-" SF_TEST_CATALOG "-R1"));
    assert (sf_stor_fake_objects (env->fake) == 4);
    assert (sf_leftover_count (env->leftovers) == 0);   //  the product is kept
    s_test_no_journal (args->workdir, SF_TEST_CEPH_UUID);
    sf_wire_free (&res_env);

    //  No agent: paused instead, and the PAUSED event says why; clones go
    //  to clone_pool. A slow round (a monitor as shipped) is in the note.
    sf_stor_fake_delay (env->fake, 600);
    args->job_id = "R2";
    args->no_freeze = true;
    args->clone_pool = "backup";
    res_env = sf_task_test_job_text (args, phases, false, paused, sizeof (paused));
    res = res_env->job_result;
    assert (res->ok && res->resumed && streq (res->consistency, "paused"));
    assert (streq (paused, "freeze unavailable (disabled for this test): paused instead"));
    assert (res->pause_ms >= 600 && res->pause_ms < 1200);
    assert (res->error && res->error->code == SF_OK);
    int waited = 0;
    assert (sscanf (res->error->text, "RBD snapshot (2 disks at once) waited %d ms for the "
                    "Ceph monitor", &waited) == 1);
    assert (waited >= 600 && waited < 1200);
    assert (streq (res->images [0]->id, "backup/ceph-a-snapfleet-" SF_TEST_CATALOG "-R2"));
    assert (sf_stor_fake_has (env->fake, "backup/ceph-b-snapfleet-" SF_TEST_CATALOG "-R2"));
    s_test_no_journal (args->workdir, SF_TEST_CEPH_UUID);
    sf_wire_free (&res_env);
    args->no_freeze = false;
    args->clone_pool = NULL;
    sf_stor_fake_delay (env->fake, 0);

    //  Clone mode stores no bytes: no upload grant to wait for
    args->job_id = "R6";
    uint64_t bytes = 0;
    res_env = sf_task_test_job_grant (args, phases, 0, 0, 0, &bytes);
    assert (res_env->job_result->ok && streq (phases, "qprcu"));
    //  A quick round after a slow one: the note still names the slow one
    res = res_env->job_result;
    int quick = 0, slow = 0;
    assert (res->error && sscanf (res->error->text, "RBD snapshot (2 disks at once) waited "
                                  "%d ms for the Ceph monitor (up to %d ms in this node's "
                                  "recent rounds)", &quick, &slow) == 2);
    assert (quick < slow && slow >= 600);
    sf_wire_free (&res_env);
}

//  mixed: one window holds the RBD snapshot and the file conversion (the
//  fake converter takes 300 ms); export mode; offline

static void
s_test_rbd_more (sf_task_args_t *args, rbd_env_t *env)
{
    char phases [16];
    args->job_id = "R3";
    args->strategy = "mixed";
    args->instance_uuid = SF_TEST_MIX_UUID;
    sf_stor_fake_delay (env->fake, 100);
    char paused [512];
    sf_envelope_t *res_env = sf_task_test_job_text (args, phases, false, paused, sizeof (paused));
    sf_job_result_t *res = res_env->job_result;
    assert (res->ok && streq (phases, "qprcu") && streq (res->consistency, "frozen"));
    assert (streq (paused, "frozen, and paused while the file disks are copied"));
    assert (res->pause_ms >= 400 && res->convert_ms >= 300 && res->resumed);
    assert (res->n_images == 2);
    assert (streq (res->images [0]->store, "rbd") && streq (res->images [1]->store, "dir"));
    assert (streq (res->images [1]->disk_target, "vdb"));
    assert (res->bytes == res->images [1]->size && res->bytes > 0);
    sf_wire_free (&res_env);
    sf_stor_fake_delay (env->fake, 0);

    //  Export: the snapshot goes through qemu-img into the dir store, and
    //  no snapshot is left in the pool
    args->job_id = "R4";
    args->rbd_mode = "export";
    size_t before = sf_stor_fake_objects (env->fake);
    res_env = s_test_job (args, phases, false);
    res = res_env->job_result;
    assert (res->ok && streq (phases, "qprcu") && res->n_images == 2);
    assert (streq (res->images [0]->store, "dir") && streq (res->images [0]->disk_target, "vda"));
    assert (strlen (res->images [0]->sha256) == 64);
    assert (!sf_stor_fake_has (env->fake, "rbd/mix-a@snapfleet-" SF_TEST_CATALOG "-R4"));
    assert (sf_stor_fake_objects (env->fake) == before);
    assert (sf_leftover_count (env->leftovers) == 0);
    sf_wire_free (&res_env);
    args->rbd_mode = NULL;

    //  Offline: no pause, the snapshot and its clone
    args->job_id = "R5";
    args->strategy = "offline";
    args->instance_uuid = SF_TEST_CEPHOFF_UUID;
    res_env = s_test_job (args, phases, false);
    res = res_env->job_result;
    assert (res->ok && streq (phases, "qcu") && streq (res->consistency, "offline"));
    assert (res->pause_ms == 0 && res->n_images == 1);
    assert (sf_stor_fake_has (env->fake, "rbd/off-a-snapfleet-" SF_TEST_CATALOG "-R5"));
    sf_wire_free (&res_env);
    args->strategy = "rbd";
    args->instance_uuid = SF_TEST_CEPH_UUID;
}

//  Every failure thaws or resumes the guest and leaves nothing in Ceph

static void
s_test_rbd_failures (sf_task_args_t *args, rbd_env_t *env)
{
    char phases [16];
    size_t before = sf_stor_fake_objects (env->fake);
    //  A snapshot fails
    args->job_id = "F1";
    sf_stor_fake_fail (env->fake, "snap_create", EIO);
    sf_envelope_t *res_env = s_test_job (args, phases, false);
    sf_job_result_t *res = res_env->job_result;
    assert (!res->ok && res->resumed && streq (phases, "qp"));
    assert (res->error->code == SF_ECEPH);
    //  Either disk's call may come first to the cluster and fail
    assert (strstr (res->error->text, "ceph: cannot snapshot 'rbd/ceph-"));
    assert (strstr (res->error->text, " as 'snapfleet-" SF_TEST_CATALOG "-F1': Input/output "
                    "error; guest thawed"));
    sf_wire_free (&res_env);
    //  The other disk's snapshot was made, and removed with the job
    assert (!sf_stor_fake_has (env->fake, "rbd/ceph-a@snapfleet-" SF_TEST_CATALOG "-F1"));
    assert (!sf_stor_fake_has (env->fake, "rbd/ceph-b@snapfleet-" SF_TEST_CATALOG "-F1"));
    //  The same while paused instead of frozen
    args->job_id = "F2";
    args->no_freeze = true;
    sf_stor_fake_fail (env->fake, "snap_create", EIO);
    res_env = s_test_job (args, phases, false);
    res = res_env->job_result;
    assert (!res->ok && res->resumed && strstr (res->error->text, "; guest resumed"));
    sf_wire_free (&res_env);
    args->no_freeze = false;
    //  The clone fails after both snapshots: they are removed again
    args->job_id = "F3";
    sf_stor_fake_fail (env->fake, "clone", ENOSPC);
    res_env = s_test_job (args, phases, false);
    res = res_env->job_result;
    assert (!res->ok && res->resumed && streq (phases, "qprc"));
    assert (res->error->code == SF_ECEPH && strstr (res->error->text, "ceph: cannot clone"));
    assert (res->n_images == 0);
    assert (!sf_stor_fake_has (env->fake, "rbd/ceph-a@snapfleet-" SF_TEST_CATALOG "-F3"));
    sf_wire_free (&res_env);
    //  Cancelled inside a mixed window (during the file conversion)
    args->job_id = "F4";
    args->strategy = "mixed";
    args->instance_uuid = SF_TEST_MIX_UUID;
    res_env = s_test_job (args, phases, true);
    res = res_env->job_result;
    assert (!res->ok && res->resumed && res->error->code == SF_ECANCELED);
    assert (!sf_stor_fake_has (env->fake, "rbd/mix-a@snapfleet-" SF_TEST_CATALOG "-F4"));
    sf_wire_free (&res_env);
    args->strategy = "rbd";
    args->instance_uuid = SF_TEST_CEPH_UUID;
    assert (sf_stor_fake_objects (env->fake) == before);
    assert (sf_leftover_count (env->leftovers) == 0);
    s_test_no_journal (args->workdir, SF_TEST_CEPH_UUID);

    //  The cluster goes away at the snapshot: the job fails at op_timeout
    //  with SF_ECEPH, the guest is thawed, the objects are journaled; once
    //  the cluster is back the sweeper removes them
    args->job_id = "F5";
    sf_stor_fake_hang_at (env->fake, "snap_create");
    int64_t start = sf_time_mono_ms ();
    res_env = s_test_job (args, phases, false);
    res = res_env->job_result;
    assert (!res->ok && res->resumed && res->error->code == SF_ECEPH);
    assert (strstr (res->error->text, "ceph: snapshot of 'rbd/ceph-a' timed out after "
                    "1s (cluster unreachable?)"));
    assert (strstr (res->error->text, "; guest thawed"));
    assert (strstr (res->error->text, "snapshots left for cleanup in"));
    assert (res->pause_ms >= 1000 && res->pause_ms < 6000);
    assert (sf_time_mono_ms () - start < 10000);
    sf_wire_free (&res_env);
    assert (sf_leftover_count (env->leftovers) == 1);
    char *entry = sf_leftover_path (env->leftovers, "F5");
    char *cmd = zsys_sprintf ("grep -q '^snap rbd/ceph-a@snapfleet-" SF_TEST_CATALOG
                              "-F5$' %s && grep -q '^clone rbd/ceph-b-snapfleet-"
                              SF_TEST_CATALOG "-F5$' %s", entry, entry);
    assert (system (cmd) == 0);         //  test check only
    zstr_free (&cmd);
    zstr_free (&entry);
    s_test_no_journal (args->workdir, SF_TEST_CEPH_UUID);
    assert (sf_leftover_sweep (env->leftovers) == 0);  //  still away
    sf_stor_fake_hang (env->fake, false);
    for (int i = 0; i < 500 && sf_stor_hung (env->stor); i++)
        zclock_sleep (10);
    //  It did happen
    assert (sf_stor_fake_has (env->fake, "rbd/ceph-a@snapfleet-" SF_TEST_CATALOG "-F5"));
    assert (sf_leftover_sweep (env->leftovers) == 1);
    assert (sf_leftover_count (env->leftovers) == 1);                  //  settling
    zclock_sleep (250);
    assert (sf_leftover_sweep (env->leftovers) == 0);
    assert (sf_leftover_count (env->leftovers) == 0);
    assert (sf_stor_fake_objects (env->fake) == before);

    //  The cluster is away before the window: nothing paused, nothing left
    args->job_id = "F6";
    sf_stor_fake_hang (env->fake, true);
    res_env = s_test_job (args, phases, false);
    res = res_env->job_result;
    assert (!res->ok && streq (phases, "q") && res->error->code == SF_ECEPH);
    assert (strstr (res->error->text, "opening of 'rbd/ceph-a' timed out"));
    sf_wire_free (&res_env);
    sf_stor_fake_hang (env->fake, false);
    for (int i = 0; i < 500 && sf_stor_hung (env->stor); i++)
        zclock_sleep (10);
    assert (sf_leftover_count (env->leftovers) == 0);

    //  Not for this instance or this node
    args->job_id = "F7";
    args->strategy = "mixed";
    res_env = s_test_job (args, phases, false);
    assert (res_env->job_result->error->code == SF_EINVAL);
    assert (strstr (res_env->job_result->error->text, "(storage class rbd, running)"));
    sf_wire_free (&res_env);
    args->strategy = "rbd";
    sf_stor_t *stor = args->stor;
    args->stor = NULL;
    res_env = s_test_job (args, phases, false);
    assert (res_env->job_result->error->code == SF_ENOTSUP);
    assert (strstr (res_env->job_result->error->text, "RBD support is off"));
    sf_wire_free (&res_env);
    args->stor = stor;
}

//  At a job's PAUSED: someone else makes the image its clone will be
//  (arg: the fake cluster, then the name)

typedef struct {
    sf_stor_fake_t *fake;
    const char *image;
} racing_t;

static void
s_test_racing (zactor_t *task, void *arg)
{
    (void) task;
    racing_t *racing = (racing_t *) arg;
    sf_stor_fake_add (racing->fake, racing->image, 1 << 20);
}

//  A job never adopts or removes what it did not make: no valid catalogue
//  id, no job; a snapshot or clone of the job's name that exists before
//  it stops it before any pause and stays; one that appears before the
//  clone is made stops it after, and stays while the job's own go

static void
s_test_rbd_foreign (sf_task_args_t *args, rbd_env_t *env)
{
    char phases [16];
    size_t before = sf_stor_fake_objects (env->fake);
    args->job_id = "X1";
    args->catalog_id = NULL;
    sf_envelope_t *res_env = s_test_job (args, phases, false);
    sf_job_result_t *res = res_env->job_result;
    assert (!res->ok && res->error->code == SF_EPROTO && streq (phases, "q"));
    assert (strstr (res->error->text, "job 'X1' came without a valid catalogue id"));
    sf_wire_free (&res_env);
    args->catalog_id = "0123456789ABCDEF";
    res_env = s_test_job (args, phases, false);
    assert (res_env->job_result->error->code == SF_EPROTO && streq (phases, "q"));
    sf_wire_free (&res_env);
    args->catalog_id = SF_TEST_CATALOG;
    assert (sf_stor_fake_objects (env->fake) == before);

    //  The snapshot's name exists
    sf_err_t err = SF_ERR_INIT;
    sf_stor_spec_t ceph_b;
    assert (sf_stor_spec_parse ("rbd/ceph-b", &ceph_b, &err) == 0);
    const char *snap = "snapfleet-" SF_TEST_CATALOG "-X2";
    assert (sf_stor_snap_create (env->stor, &ceph_b, snap, &err) == 0);
    args->job_id = "X2";
    res_env = s_test_job (args, phases, false);
    res = res_env->job_result;
    assert (!res->ok && res->error->code == SF_EEXIST && streq (phases, "q"));
    assert (streq (res->error->text, "snapshot 'rbd/ceph-b@snapfleet-" SF_TEST_CATALOG
                   "-X2' already exists; not ours, left alone"));
    sf_wire_free (&res_env);
    assert (sf_stor_fake_has (env->fake, "rbd/ceph-b@snapfleet-" SF_TEST_CATALOG "-X2"));
    assert (sf_stor_fake_objects (env->fake) == before + 1);
    assert (sf_leftover_count (env->leftovers) == 0);
    assert (sf_stor_snap_remove (env->stor, &ceph_b, snap, &err) == 0);
    //  The clone's name exists
    sf_stor_fake_add (env->fake, "rbd/ceph-a-snapfleet-" SF_TEST_CATALOG "-X3", 1 << 20);
    args->job_id = "X3";
    res_env = s_test_job (args, phases, false);
    res = res_env->job_result;
    assert (!res->ok && res->error->code == SF_EEXIST && streq (phases, "q"));
    assert (streq (res->error->text, "image 'rbd/ceph-a-snapfleet-" SF_TEST_CATALOG
                   "-X3' already exists; not ours, left alone"));
    sf_wire_free (&res_env);
    assert (sf_stor_fake_has (env->fake, "rbd/ceph-a-snapfleet-" SF_TEST_CATALOG "-X3"));
    assert (sf_leftover_count (env->leftovers) == 0);
    //  It appears while the job runs (after its check): the job's own
    //  snapshots go, that image stays
    args->job_id = "X4";
    sf_stor_fake_delay (env->fake, 200);
    racing_t racing = { env->fake, "rbd/ceph-b-snapfleet-" SF_TEST_CATALOG "-X4" };
    res_env = sf_task_test_job_with (args, phases, s_test_racing, &racing, NULL, 0);
    sf_stor_fake_delay (env->fake, 0);
    res = res_env->job_result;
    assert (!res->ok && res->error->code == SF_EEXIST && res->resumed);
    assert (strstr (res->error->text, "image 'rbd/ceph-b-snapfleet-" SF_TEST_CATALOG
                    "-X4' already exists; not ours, left alone"));
    sf_wire_free (&res_env);
    assert (sf_stor_fake_has (env->fake, "rbd/ceph-b-snapfleet-" SF_TEST_CATALOG "-X4"));
    assert (!sf_stor_fake_has (env->fake, "rbd/ceph-a-snapfleet-" SF_TEST_CATALOG "-X4"));
    assert (!sf_stor_fake_has (env->fake, "rbd/ceph-a@snapfleet-" SF_TEST_CATALOG "-X4"));
    assert (!sf_stor_fake_has (env->fake, "rbd/ceph-b@snapfleet-" SF_TEST_CATALOG "-X4"));
    assert (sf_stor_fake_objects (env->fake) == before);    //  images are not counted
    assert (sf_leftover_count (env->leftovers) == 0);
    args->job_id = "R1";
}

void
sf_task_rbd_test (const char *dir, const char *uri, const char *exe)
{
    sf_err_t err = SF_ERR_INIT;
    rbd_env_t env;
    env.fake = sf_stor_fake_new ();
    const char *images [] = { "rbd/ceph-a", "rbd/ceph-b", "rbd/mix-a", "rbd/off-a" };
    for (size_t i = 0; i < 4; i++)
        sf_stor_fake_add (env.fake, images [i], 4 << 20);
    sf_stor_cfg_t cfg = { NULL, "/etc/ceph/ceph.conf", "admin", "", 1000 };
    env.stor = sf_stor_new_with (&cfg, &sf_stor_fake_driver, env.fake, &err);
    sf_conv_t *conv = sf_conv_new_with (&sf_conv_fake_driver);
    env.workdir = zsys_sprintf ("%s/work-rbd", dir);
    env.store = zsys_sprintf ("%s/images-rbd", dir);
    sf_imgstore_cfg_t store_cfg = { .driver = "dir", .path = env.store };
    sf_imgstore_t *images_store = sf_imgstore_new (&store_cfg, &err);
    assert (images_store);
    env.leftovers = sf_leftover_new (env.workdir, env.stor, 200, &err);
    assert (env.stor && env.leftovers);
    sf_task_args_t args = { "R1", 1, SF_TEST_CEPH_UUID, "rbd", uri, env.workdir, exe,
                            "run-test", 60000, images_store, conv, env.stor,
                            env.leftovers, NULL, NULL, false, false, SF_TEST_CATALOG,
                            NULL, false };
    s_test_rbd_clone (&args, &env);
    s_test_rbd_more (&args, &env);
    s_test_rbd_failures (&args, &env);
    s_test_rbd_foreign (&args, &env);
    sf_leftover_destroy (&env.leftovers);
    sf_stor_destroy (&env.stor);
    sf_conv_destroy (&conv);
    sf_imgstore_destroy (&images_store);
    for (int i = 0; i < 500 && sf_stor_fake_active (env.fake); i++)
        zclock_sleep (10);
    sf_stor_fake_destroy (&env.fake);
    zstr_free (&env.workdir);
    zstr_free (&env.store);
}
