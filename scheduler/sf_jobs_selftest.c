/*  =========================================================================
    sf_jobs_selftest - the self test of sf_jobs: creation, events and
    fencing, results and their images (refused when not the job's),
    reconciliation, notes, what retention reads
    =========================================================================
*/
#include "sf_sched_classes.h"
#include "sf_harness_selftest.h"

static const char *
s_get (json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

static json_int_t
s_int (json_t *object, const char *key)
{
    return json_integer_value (json_object_get (object, key));
}

#define TEST_SHA "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

//  A dir image of disk target as a worker reports it: id a uuid made of
//  letter and n, path /images/<id>.qcow2. Writes id and path into bufs.

static void
s_test_image (sf_image_t *image, char letter, int n, const char *target, char id [40],
              char path [96])
{
    snprintf (id, 40, "%c%07d-0000-4000-8000-000000000000", letter, n);
    snprintf (path, 96, "/images/%s.qcow2", id);
    *image = (sf_image_t) SF_IMAGE_INIT;
    image->store = "dir", image->id = id, image->path = path, image->size = 10 + n;
    image->sha256 = TEST_SHA, image->disk_target = (char *) target;
    image->format = "qcow2";
}

//  Node n1 reports vm1 (u1) and vm7 (u7), each with disks vda and vdb

static void
s_test_inventory (sf_store_t *store)
{
    sf_err_t err = SF_ERR_INIT;
    sf_disk_t vda = SF_DISK_INIT, vdb = SF_DISK_INIT;
    vda.target = "vda", vda.type = SF_DISK_FILE, vda.source = "/img/a.qcow2";
    vdb.target = "vdb", vdb.type = SF_DISK_FILE, vdb.source = "/img/b.qcow2";
    sf_disk_t *disks [] = { &vda, &vdb };
    sf_instance_t vm1 = SF_INSTANCE_INIT, vm7 = SF_INSTANCE_INIT;
    vm1.uuid = "u1", vm1.name = "vm1", vm1.storage_class = "file";
    vm1.n_disks = 2, vm1.disks = disks;
    vm7 = vm1;
    vm7.uuid = "u7", vm7.name = "vm7";
    sf_instance_t *list [] = { &vm1, &vm7 };
    sf_inventory_t inventory = SF_INVENTORY_INIT;
    inventory.n_instances = 2, inventory.instances = list;
    assert (sf_store_inventory (store, "n1", &inventory, &err) == 0);
}

static void
s_test_result (sf_jobs_t *jobs, const char *id)
{
    sf_err_t err = SF_ERR_INIT;
    sf_image_t image;
    char image_id [40], path [96];
    s_test_image (&image, 'c', 1, "vda", image_id, path);
    image.size = 5ull << 32;
    sf_image_t *images [] = { &image };
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    result.job_id = (char *) id, result.attempt = 1, result.ok = 1;
    result.strategy = "file-cold", result.consistency = "paused";
    result.convert_ms = 900, result.upload_ms = 40, result.bytes = 5ull << 32;
    result.n_images = 1, result.images = images, result.resumed = 1;
    assert (sf_jobs_result (jobs, "n2", NULL, &result, &err) == -1);      //  Wrong node
    assert (err.code == SF_ESTATE && strstr (err.text, "assigned to node 'n1', not 'n2'"));
    assert (sf_jobs_result (jobs, "n1", "dir@n1", &result, &err) == 0);
    assert (sf_jobs_result (jobs, "n1", NULL, &result, &err) == -1);      //  Already done
    assert (err.code == SF_ESTATE && strstr (err.text, "already finished"));

    json_t *job = sf_jobs_json (jobs, id, &err);
    assert (job);
    assert (streq (s_get (job, "state"), "done"));
    assert (streq (s_get (job, "consistency"), "paused"));
    assert (s_int (job, "pause_ms") == 120);      //  Kept from the event
    assert (s_int (job, "convert_ms") == 900);
    assert (s_int (job, "bytes") == 5ll << 32);
    assert (json_is_null (json_object_get (job, "error")));
    assert (json_is_null (json_object_get (job, "note")));
    json_t *first = json_object_get (job, "image");
    assert (streq (s_get (first, "id"), image_id));
    assert (json_object_size (first) == 5);
    assert (s_int (first, "size") == 5ll << 32);
    assert (json_array_size (json_object_get (job, "images")) == 1);
    json_decref (job);

    json_t *all = sf_jobs_images_json (jobs, &err);
    assert (json_array_size (all) == 1);
    assert (streq (s_get (json_array_get (all, 0), "instance"), "vm1"));
    assert (streq (s_get (json_array_get (all, 0), "job_id"), id));
    json_decref (all);
}

static void
s_test_events (sf_jobs_t *jobs, const char *id)
{
    sf_err_t err = SF_ERR_INIT;
    sf_job_event_t event = SF_JOB_EVENT_INIT;
    event.job_id = (char *) id, event.attempt = 1, event.phase = SF_PHASE_QUEUED;
    assert (sf_jobs_event (jobs, "n1", &event, &err) == 0);
    event.phase = SF_PHASE_RESUMED, event.ms = 120;
    assert (sf_jobs_event (jobs, "n1", &event, &err) == 0);
    //  Fenced: stale attempt, other node, unknown job
    event.attempt = 2;
    assert (sf_jobs_event (jobs, "n1", &event, &err) == -1);
    assert (err.code == SF_ESTATE && strstr (err.text, "stale attempt 2"));
    event.attempt = 1;
    assert (sf_jobs_event (jobs, "n2", &event, &err) == -1);
    assert (err.code == SF_ESTATE && strstr (err.text, "assigned to node 'n1'"));
    event.job_id = "J999";
    assert (sf_jobs_event (jobs, "n1", &event, &err) == -1);
    assert (err.code == SF_ENOENT);

    json_t *job = sf_jobs_json (jobs, id, &err);
    assert (streq (s_get (job, "state"), "running"));
    assert (streq (s_get (job, "phase"), "resumed"));
    assert (s_int (job, "pause_ms") == 120);
    json_t *events = json_object_get (job, "events");
    assert (json_array_size (events) == 2);
    assert (streq (s_get (json_array_get (events, 1), "phase"), "resumed"));
    json_decref (job);
}

//  A worker says hello again: listed jobs (running or finished) stay, one
//  it never received (no event) is to be sent again, one it no longer
//  knows fails

static void
s_test_reconcile (sf_jobs_t *jobs, sf_store_t *store)
{
    sf_err_t err = SF_ERR_INIT;
    assert (sf_store_node_hello (store, "n2", "", 2, 1, &err) == 0);
    sf_job_spec_t spec = { .instance_uuid = "u1", .instance_name = "vm1", .node = "n1",
                           .strategy = "file-cold" };
    sf_job_spec_t other = { .instance_uuid = "u7", .instance_name = "vm7", .node = "n2",
                            .strategy = "rbd" };
    char kept [32], finished [32], gone [32], unsent [32], elsewhere [32], waiting [32];
    assert (sf_jobs_create (jobs, &spec, kept, sizeof (kept), &err) == 0);
    assert (sf_jobs_create (jobs, &spec, finished, sizeof (finished), &err) == 0);
    assert (sf_jobs_create (jobs, &spec, gone, sizeof (gone), &err) == 0);
    assert (sf_jobs_create (jobs, &spec, unsent, sizeof (unsent), &err) == 0);
    sf_job_spec_t queued = spec;
    queued.waiting = true;                  //  not sent to the node yet
    assert (sf_jobs_create (jobs, &queued, waiting, sizeof (waiting), &err) == 0);
    assert (sf_jobs_create (jobs, &other, elsewhere, sizeof (elsewhere), &err) == 0);
    const char *with_events [] = { kept, finished, gone };
    for (size_t i = 0; i < 3; i++) {
        sf_job_event_t event = SF_JOB_EVENT_INIT;
        event.job_id = (char *) with_events [i], event.attempt = 1;
        event.phase = SF_PHASE_PAUSED;
        assert (sf_jobs_event (jobs, "n1", &event, &err) == 0);
    }

    char *running [] = { kept, "J1", NULL, elsewhere, "J99" };
    char *done [] = { finished };
    sf_jobs_known_t known = { running, 5, done, 1 };
    zlistx_t *lost = zlistx_new ();
    zlistx_set_destructor (lost, (zlistx_destructor_fn *) zstr_free);
    zlistx_t *resend = zlistx_new ();
    zlistx_set_destructor (resend, (zlistx_destructor_fn *) zstr_free);
    zlistx_t *strangers = zlistx_new ();
    zlistx_set_destructor (strangers, (zlistx_destructor_fn *) zstr_free);
    assert (sf_jobs_reconcile (jobs, "n1", &known, lost, resend, strangers, &err) == 1);
    assert (zlistx_size (lost) == 1 && streq ((char *) zlistx_first (lost), gone));
    assert (zlistx_size (resend) == 1 && streq ((char *) zlistx_first (resend), unsent));
    assert (zlistx_size (strangers) == 3);
    assert (streq ((char *) zlistx_first (strangers), "J1"));          //  Done
    assert (streq ((char *) zlistx_next (strangers), elsewhere));      //  Not n1's
    assert (streq ((char *) zlistx_next (strangers), "J99"));          //  Unknown
    zlistx_destroy (&lost);
    zlistx_destroy (&strangers);

    json_t *job = sf_jobs_json (jobs, kept, &err);
    assert (streq (s_get (job, "state"), "running"));
    assert (streq (s_get (job, "phase"), "paused"));
    json_decref (job);
    job = sf_jobs_json (jobs, finished, &err);
    assert (streq (s_get (job, "state"), "running"));
    json_decref (job);
    job = sf_jobs_json (jobs, unsent, &err);
    assert (streq (s_get (job, "state"), "queued") && streq (s_get (job, "phase"), "assigned"));
    json_decref (job);
    job = sf_jobs_json (jobs, gone, &err);
    assert (streq (s_get (job, "state"), "failed"));
    json_t *error = json_object_get (job, "error");
    assert (s_int (error, "code") == SF_ENODE);
    char text [100];
    snprintf (text, sizeof (text), "worker on node 'n1' no longer knows job '%s' (its "
              "journal was lost)", gone);
    assert (streq (s_get (error, "text"), text));
    json_t *events = json_object_get (job, "events");
    assert (streq (s_get (json_array_get (events, json_array_size (events) - 1), "phase"),
                   "failed"));
    json_decref (job);
    job = sf_jobs_json (jobs, elsewhere, &err);
    assert (streq (s_get (job, "state"), "queued"));
    json_decref (job);

    //  Hello without jobs: what had events fails, the unsent one is to be
    //  sent again (not failed); no lists
    sf_jobs_known_t none = { NULL, 0, NULL, 0 };
    zlistx_purge (resend);
    assert (sf_jobs_reconcile (jobs, "n1", &none, NULL, resend, NULL, &err) == 2);
    assert (zlistx_size (resend) == 1);
    assert (sf_jobs_reconcile (jobs, "n1", &none, NULL, NULL, NULL, &err) == 0);
    zlistx_destroy (&resend);
    job = sf_jobs_json (jobs, kept, &err);
    assert (streq (s_get (job, "state"), "failed"));
    json_decref (job);
    job = sf_jobs_json (jobs, unsent, &err);
    assert (streq (s_get (job, "state"), "queued"));
    json_decref (job);
    assert (sf_jobs_fail (jobs, unsent, SF_ECANCELED, "test over", &err) == 0);
    //  The job waiting for admission was never the worker's: it stays
    job = sf_jobs_json (jobs, waiting, &err);
    assert (streq (s_get (job, "state"), "queued") && streq (s_get (job, "phase"), "waiting"));
    json_decref (job);
    assert (sf_jobs_reconcile (jobs, "n2", &known, NULL, NULL, NULL, &err) == 0);
}

//  A worker replays what was not acknowledged: an event recorded already
//  adds no row (1), a result of a finished job changes nothing (fenced)

static void
s_test_replay (sf_jobs_t *jobs)
{
    sf_err_t err = SF_ERR_INIT;
    sf_job_spec_t spec = { .instance_uuid = "u8", .instance_name = "vm8", .node = "n2",
                           .strategy = "file-cold" };
    char id [32];
    assert (sf_jobs_create (jobs, &spec, id, sizeof (id), &err) == 0);
    sf_job_event_t event = sf_wire_job_event (id, 1, SF_PHASE_PAUSED, 5, 0);
    assert (event.at_ms > 0);
    assert (sf_jobs_event (jobs, "n2", &event, &err) == 0);
    assert (sf_jobs_event (jobs, "n2", &event, &err) == 1);
    event.at_ms++;                          //  another event of that phase
    assert (sf_jobs_event (jobs, "n2", &event, &err) == 0);
    json_t *job = sf_jobs_json (jobs, id, &err);
    assert (json_array_size (json_object_get (job, "events")) == 2);
    json_decref (job);
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    result.job_id = id, result.attempt = 1, result.ok = 1, result.strategy = "file-cold";
    assert (sf_jobs_result (jobs, "n2", NULL, &result, &err) == 0);
    zlistx_t *images = sf_jobs_images (jobs, id, &err);
    size_t count = zlistx_size (images);
    zlistx_destroy (&images);
    assert (sf_jobs_result (jobs, "n2", NULL, &result, &err) == -1);
    assert (err.code == SF_ESTATE && strstr (err.text, "has already finished"));
    images = sf_jobs_images (jobs, id, &err);
    assert (zlistx_size (images) == count);
    zlistx_destroy (&images);
    assert (sf_jobs_event (jobs, "n2", &event, &err) == -1 && err.code == SF_ESTATE);
    job = sf_jobs_json (jobs, id, &err);
    assert (streq (s_get (job, "state"), "done"));
    assert (json_array_size (json_object_get (job, "events")) == 2);
    json_decref (job);
}

//  An ok result with text is done, with the text as its note

static void
s_test_note (sf_jobs_t *jobs)
{
    sf_err_t err = SF_ERR_INIT;
    sf_job_spec_t spec = { .instance_uuid = "u5", .instance_name = "vm5", .node = "n2",
                           .strategy = "rbd" };
    char id [32];
    assert (sf_jobs_create (jobs, &spec, id, sizeof (id), &err) == 0);
    sf_error_info_t info = SF_ERROR_INFO_INIT;
    info.text = "freeze unavailable (QEMU guest agent is not configured): paused instead";
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    result.job_id = id, result.attempt = 1, result.ok = 1;
    result.strategy = "rbd", result.consistency = "paused", result.error = &info;
    assert (sf_jobs_result (jobs, "n2", NULL, &result, &err) == 0);
    json_t *job = sf_jobs_json (jobs, id, &err);
    assert (streq (s_get (job, "state"), "done"));
    assert (json_is_null (json_object_get (job, "error")));
    assert (streq (s_get (job, "note"), info.text));
    json_decref (job);

    //  A contradictory ok result with an error code: done, code in the note
    assert (sf_jobs_create (jobs, &spec, id, sizeof (id), &err) == 0);
    result.job_id = id, info.code = SF_EIO, info.text = "odd";
    assert (sf_jobs_result (jobs, "n2", NULL, &result, &err) == 0);
    job = sf_jobs_json (jobs, id, &err);
    assert (streq (s_get (job, "state"), "done"));
    assert (streq (s_get (job, "note"), "EIO: odd"));
    json_decref (job);

    //  A failed result has an error, never a note
    assert (sf_jobs_create (jobs, &spec, id, sizeof (id), &err) == 0);
    result.job_id = id, result.ok = 0, info.code = SF_ECEPH, info.text = "ceph: down";
    assert (sf_jobs_result (jobs, "n2", NULL, &result, &err) == 0);
    job = sf_jobs_json (jobs, id, &err);
    assert (streq (s_get (job, "state"), "failed"));
    assert (json_is_null (json_object_get (job, "note")));
    assert (s_int (json_object_get (job, "error"), "code") == SF_ECEPH);
    json_decref (job);
}

//  What retention reads: an instance's backups in some bulks, a job's
//  images, one image; and forgetting one

static void
s_test_retention_reads (sf_jobs_t *jobs)
{
    sf_err_t err = SF_ERR_INIT;
    const char *bulks [] = { "B1", "B2", "B3" };
    char ids [3][32], names [2][40], paths [2][96];
    for (int i = 0; i < 3; i++) {
        sf_job_spec_t spec = { .instance_uuid = "u7", .instance_name = "vm7",
                               .node = "n1", .strategy = "file-cold",
                               .bulk_id = bulks [i] };
        assert (sf_jobs_create (jobs, &spec, ids [i], sizeof (ids [i]), &err) == 0);
        sf_image_t disks [2];
        sf_image_t *images [2] = { &disks [0], &disks [1] };
        for (int disk = 0; disk < 2; disk++)
            s_test_image (&disks [disk], (char) ('b' - disk), i, disk? "vdb": "vda",
                          names [disk], paths [disk]);
        sf_job_result_t result = SF_JOB_RESULT_INIT;
        result.job_id = ids [i], result.attempt = 1, result.ok = 1;
        result.strategy = "file-cold", result.consistency = "paused";
        result.n_images = 2, result.images = images;
        assert (sf_jobs_result (jobs, "n1", "dir@n1", &result, &err) == 0);
    }
    zlistx_t *instances = sf_jobs_done_instances (jobs, "B2", &err);
    assert (zlistx_size (instances) == 1);
    sf_job_rec_t *done = (sf_job_rec_t *) zlistx_first (instances);
    assert (streq (done->instance_uuid, "u7") && streq (done->node, "n1"));
    zlistx_destroy (&instances);

    //  Backups in B1 and B3 only, oldest first
    zlistx_t *bulk_ids = zlistx_new ();
    zlistx_add_end (bulk_ids, "B3");
    zlistx_add_end (bulk_ids, "B1");
    zlistx_t *backups = sf_jobs_backups (jobs, bulk_ids, "n1", "u7", &err);
    assert (zlistx_size (backups) == 2);
    sf_backup_rec_t *backup = (sf_backup_rec_t *) zlistx_first (backups);
    assert (streq (backup->job_id, ids [0]) && backup->created > 0);
    backup = (sf_backup_rec_t *) zlistx_next (backups);
    assert (streq (backup->job_id, ids [2]));
    zlistx_destroy (&backups);
    backups = sf_jobs_backups (jobs, bulk_ids, "n1", "u9", &err);
    assert (zlistx_size (backups) == 0);
    zlistx_destroy (&backups);
    //  The same uuid on another node is another instance: none of these
    backups = sf_jobs_backups (jobs, bulk_ids, "n2", "u7", &err);
    assert (zlistx_size (backups) == 0);
    zlistx_destroy (&backups);
    zlistx_destroy (&bulk_ids);

    //  A job's images by store and id, with its node
    zlistx_t *images = sf_jobs_images (jobs, ids [1], &err);
    assert (zlistx_size (images) == 2);
    sf_image_rec_t *rec = (sf_image_rec_t *) zlistx_first (images);
    assert (streq (rec->image.id, "a0000001-0000-4000-8000-000000000000"));
    assert (streq (rec->node, "n1"));
    assert (streq (rec->job_id, ids [1]) && rec->image.size == 11);
    rec = (sf_image_rec_t *) zlistx_next (images);
    assert (streq (rec->image.id, "b0000001-0000-4000-8000-000000000000"));
    assert (streq (rec->image.format, "qcow2") && streq (rec->image.disk_target, "vda"));
    zlistx_destroy (&images);

    //  One image; forgotten, it is gone
    const char *b2 = "b0000002-0000-4000-8000-000000000000";
    assert (sf_jobs_image (jobs, "dir", b2, &rec, &err) == 1);
    assert (streq (rec->image.path, "/images/b0000002-0000-4000-8000-000000000000.qcow2"));
    assert (streq (rec->job_id, ids [2]));
    sf_image_rec_destroy (&rec);
    assert (rec == NULL);
    assert (sf_jobs_image_forget (jobs, "dir", b2, &err) == 0);
    assert (sf_jobs_image (jobs, "dir", b2, &rec, &err) == 0 && rec == NULL);
    assert (sf_jobs_image_forget (jobs, "dir", b2, &err) == 0);
    images = sf_jobs_images (jobs, ids [2], &err);
    assert (zlistx_size (images) == 1);
    zlistx_destroy (&images);
}

//  A result whose images are not the job's fails the job and writes no
//  image row; a job still waiting for admission takes no message

static void
s_test_refused (sf_jobs_t *jobs)
{
    sf_err_t err = SF_ERR_INIT;
    sf_job_spec_t spec = { .instance_uuid = "u1", .instance_name = "vm1", .node = "n1",
                           .strategy = "file-cold" };
    char id [32];
    assert (sf_jobs_create (jobs, &spec, id, sizeof (id), &err) == 0);
    sf_image_t good, bad;
    char good_id [40], good_path [96], bad_id [40], bad_path [96];
    s_test_image (&good, 'd', 1, "vda", good_id, good_path);
    s_test_image (&bad, 'd', 2, "vdb", bad_id, bad_path);
    bad.path = "/var/lib/libvirt/images/vm1-disk.qcow2";     //  Not the store's file
    sf_image_t *images [] = { &good, &bad };
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    result.job_id = id, result.attempt = 1, result.ok = 1, result.strategy = "file-cold";
    result.n_images = 2, result.images = images;
    assert (sf_jobs_result (jobs, "n1", "dir@n1", &result, &err) == 1);
    assert (err.code == SF_EPROTO);
    char text [200];
    snprintf (text, sizeof (text), "worker reported image '%s' that is not job %s's: ",
              bad_id, id);
    assert (strncmp (err.text, text, strlen (text)) == 0);
    json_t *job = sf_jobs_json (jobs, id, &err);
    assert (streq (s_get (job, "state"), "failed"));
    assert (s_int (json_object_get (job, "error"), "code") == SF_EPROTO);
    assert (strncmp (s_get (json_object_get (job, "error"), "text"), text,
                     strlen (text)) == 0);
    assert (json_array_size (json_object_get (job, "images")) == 0);
    json_decref (job);
    sf_image_rec_t *rec = NULL;
    assert (sf_jobs_image (jobs, "dir", good_id, &rec, &err) == 0 && !rec);
    assert (sf_jobs_image (jobs, "dir", bad_id, &rec, &err) == 0 && !rec);
    zlistx_t *ended = sf_jobs_take_ended (jobs);
    assert (streq ((char *) zlistx_last (ended), id));
    zlistx_destroy (&ended);

    //  An image another job made (J1's, from s_test_result)
    assert (sf_jobs_create (jobs, &spec, id, sizeof (id), &err) == 0);
    s_test_image (&good, 'c', 1, "vda", good_id, good_path);
    result.job_id = id, result.n_images = 1;
    assert (sf_jobs_result (jobs, "n1", "dir@n1", &result, &err) == 1);
    assert (strstr (err.text, "that is not job") && strstr (err.text, "it is job J1's"));
    assert (sf_jobs_image (jobs, "dir", good_id, &rec, &err) == 1 && streq (rec->job_id, "J1"));
    sf_image_rec_destroy (&rec);

    //  Waiting for admission: not sent, so no node may report on it
    spec.waiting = true;
    assert (sf_jobs_create (jobs, &spec, id, sizeof (id), &err) == 0);
    sf_job_event_t event = sf_wire_job_event (id, 1, SF_PHASE_PAUSED, 0, 0);
    assert (sf_jobs_event (jobs, "n1", &event, &err) == -1);
    assert (err.code == SF_ESTATE && strstr (err.text, "was not sent to node 'n1'"));
    assert (sf_jobs_fail (jobs, id, SF_ECANCELED, "test", &err) == 0);
}

//  --------------------------------------------------------------------------
//  Cancel and retries

//  A failed result of attempt of job id from n1: code, text, retryable

static int
s_test_failed (sf_jobs_t *jobs, const char *id, uint32_t attempt, int code,
               const char *text, bool retryable, sf_err_t *err)
{
    sf_error_info_t error = SF_ERROR_INFO_INIT;
    error.code = code, error.text = (char *) text;
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    result.job_id = (char *) id, result.attempt = attempt, result.ok = 0;
    result.strategy = "file-cold", result.error = &error, result.retryable = retryable;
    return sf_jobs_result (jobs, "n1", "dir@n1", &result, err);
}

//  A new job of vm1 on n1, waiting (for admission) or sent; writes its id

static void
s_test_job (sf_jobs_t *jobs, bool waiting, int64_t window_end_ms, char *id)
{
    sf_err_t err = SF_ERR_INIT;
    sf_job_spec_t spec = { .instance_uuid = "u1", .instance_name = "vm1", .node = "n1",
                           .strategy = "file-cold", .waiting = waiting,
                           .window_end_ms = window_end_ms };
    assert (sf_jobs_create (jobs, &spec, id, 32, &err) == 0);
    if (!waiting)
        assert (sf_jobs_assigned (jobs, id, &err) == 0);
}

//  Whether list (of strings) holds exactly id; destroys it

static bool
s_test_only (zlistx_t *list, const char *id)
{
    bool only = zlistx_size (list) == 1 && streq ((char *) zlistx_first (list), id);
    zlistx_destroy (&list);
    return only;
}

static char *
s_test_state (sf_jobs_t *jobs, const char *id, const char *key)
{
    sf_err_t err = SF_ERR_INIT;
    json_t *job = sf_jobs_json (jobs, id, &err);
    assert (job);
    json_t *value = sf_harness_get (job, key);
    char *text = json_is_string (value)? strdup (json_string_value (value))
               : json_is_integer (value)? zsys_sprintf ("%" JSON_INTEGER_FORMAT,
                                                        json_integer_value (value))
               : strdup (!value || json_is_null (value)? "null": "?");
    json_decref (job);
    return text;
}

static void
s_test_expect (sf_jobs_t *jobs, const char *id, const char *key, const char *expected)
{
    char *value = s_test_state (jobs, id, key);
    if (!streq (value, expected) && !(*expected == '~' && strstr (value, expected + 1)))
        fprintf (stderr, "\njob %s: %s is '%s', not '%s'\n", id, key, value, expected);
    assert (streq (value, expected) || (*expected == '~' && strstr (value, expected + 1)));
    free (value);
}

static void
s_test_cancel (sf_jobs_t *jobs)
{
    sf_err_t err = SF_ERR_INIT;
    char id [32], node [64];
    uint32_t attempt = 0;
    zlistx_destroy (&(zlistx_t *) { sf_jobs_take_ended (jobs) });
    //  Unknown: nothing changes
    assert (sf_jobs_cancel (jobs, "J999", node, sizeof (node), &attempt, &err) == -1);
    assert (err.code == SF_ENOENT && streq (err.text, "no job 'J999'"));
    //  Waiting (never sent): cancelled at once, no attempt row
    s_test_job (jobs, true, 0, id);
    assert (sf_jobs_cancel (jobs, id, node, sizeof (node), &attempt, &err)
            == SF_JOBS_CANCEL_NOW);
    s_test_expect (jobs, id, "state", "cancelled");
    s_test_expect (jobs, id, "error.code", "14");
    s_test_expect (jobs, id, "error.text", "~before it was sent to node 'n1'");
    s_test_expect (jobs, id, "attempts.0", "null");
    assert (s_test_only (sf_jobs_take_ended (jobs), id));
    //  Ended: a clear error naming its state, nothing changes
    assert (sf_jobs_cancel (jobs, id, node, sizeof (node), &attempt, &err) == -1);
    assert (err.code == SF_ESTATE && strstr (err.text, "has already ended: cancelled"));
    //  Messages about it are fenced
    sf_job_event_t event = sf_wire_job_event (id, 1, SF_PHASE_PAUSED, 0, 0);
    assert (sf_jobs_event (jobs, "n1", &event, &err) == -1 && err.code == SF_ESTATE);
    assert (strstr (err.text, "was not sent") || strstr (err.text, "been cancelled"));

    //  Sent: recorded, to be sent to its node; asked twice, the same answer
    s_test_job (jobs, false, 0, id);
    assert (sf_jobs_cancel (jobs, id, node, sizeof (node), &attempt, &err)
            == SF_JOBS_CANCEL_SEND);
    assert (streq (node, "n1") && attempt == 1);
    assert (sf_jobs_cancel (jobs, id, node, sizeof (node), &attempt, &err)
            == SF_JOBS_CANCEL_SEND);
    s_test_expect (jobs, id, "state", "queued");
    zlistx_t *cancelling = sf_jobs_cancelling (jobs, "n1", &err);
    assert (zlistx_size (cancelling) == 1);
    assert (streq (((sf_job_rec_t *) zlistx_first (cancelling))->id, id));
    zlistx_destroy (&cancelling);
    cancelling = sf_jobs_cancelling (jobs, "n2", &err);
    assert (zlistx_size (cancelling) == 0);
    zlistx_destroy (&cancelling);
    //  Its failed result (SF_ECANCELED) ends it cancelled with the text,
    //  and never retried (retryable or not)
    sf_jobs_set_retry (jobs, 3, 1000);
    assert (s_test_failed (jobs, id, 1, SF_ECANCELED, "job cancelled", true, &err) == 0);
    s_test_expect (jobs, id, "state", "cancelled");
    s_test_expect (jobs, id, "error.text", "job cancelled");
    s_test_expect (jobs, id, "attempts.0.error.name", "ECANCELED");
    assert (s_test_only (sf_jobs_take_ended (jobs), id));
    assert (s_test_failed (jobs, id, 1, SF_ECANCELED, "again", false, &err) == -1);
    assert (err.code == SF_ESTATE && strstr (err.text, "has already been cancelled"));
    zlistx_t *retried = sf_jobs_take_retried (jobs);
    assert (zlistx_size (retried) == 0);
    zlistx_destroy (&retried);

    //  SF_ECANCELED that nobody asked for (the worker stopped): failed
    s_test_job (jobs, false, 0, id);
    assert (s_test_failed (jobs, id, 1, SF_ECANCELED, "job cancelled", false, &err) == 0);
    s_test_expect (jobs, id, "state", "failed");

    //  A job whose cancel was asked for and that the scheduler fails (its
    //  node is down) ends cancelled too, with that reason
    s_test_job (jobs, false, 0, id);
    assert (sf_jobs_cancel (jobs, id, node, sizeof (node), &attempt, &err)
            == SF_JOBS_CANCEL_SEND);
    assert (sf_jobs_fail (jobs, id, SF_ENODE, "node 'n1' is down", &err) == 0);
    s_test_expect (jobs, id, "state", "cancelled");
    s_test_expect (jobs, id, "error.text", "node 'n1' is down");
    s_test_expect (jobs, id, "attempts.0.error.text", "node 'n1' is down");
    zlistx_destroy (&(zlistx_t *) { sf_jobs_take_ended (jobs) });
    sf_jobs_set_retry (jobs, 1, 0);
}

static void
s_test_retry (sf_jobs_t *jobs)
{
    sf_err_t err = SF_ERR_INIT;
    char id [32], node [64];
    uint32_t attempt = 0;
    zlistx_destroy (&(zlistx_t *) { sf_jobs_take_ended (jobs) });
    assert (sf_jobs_backoff (30000, 1) == 30000 && sf_jobs_backoff (30000, 2) == 60000);
    assert (sf_jobs_backoff (30000, 6) == SF_JOBS_BACKOFF_MAX);
    assert (sf_jobs_backoff (30000, 4000000000u) == SF_JOBS_BACKOFF_MAX);
    assert (sf_jobs_backoff (0, 3) == 0);

    //  No retries by default: a retryable failure fails
    s_test_job (jobs, false, 0, id);
    assert (s_test_failed (jobs, id, 1, SF_ESTORE, "store down", true, &err) == 0);
    s_test_expect (jobs, id, "state", "failed");
    s_test_expect (jobs, id, "error.text", "store down");
    assert (s_test_only (sf_jobs_take_ended (jobs), id));

    //  Three attempts: each retryable failure is a new attempt after its
    //  backoff (1 s, then 2 s), the last one fails "after 3 attempts"
    sf_jobs_set_retry (jobs, 3, 1000);
    s_test_job (jobs, false, 0, id);
    int64_t before = sf_time_now_ms ();
    assert (s_test_failed (jobs, id, 1, SF_ESTORE, "cannot write to image directory",
                           true, &err) == 0);
    s_test_expect (jobs, id, "state", "queued");
    s_test_expect (jobs, id, "phase", "waiting");
    s_test_expect (jobs, id, "attempt", "2");
    s_test_expect (jobs, id, "attempts.0.attempt", "1");
    s_test_expect (jobs, id, "attempts.0.node", "n1");
    s_test_expect (jobs, id, "attempts.0.error.text", "cannot write to image directory");
    assert (s_test_only (sf_jobs_take_retried (jobs), id));
    zlistx_t *ended = sf_jobs_take_ended (jobs);
    assert (zlistx_size (ended) == 0);
    zlistx_destroy (&ended);
    sf_job_rec_t *rec = NULL;
    assert (sf_jobs_rec (jobs, id, &rec, &err) == 1);
    assert (rec->attempt == 2 && streq (rec->phase, "waiting"));
    assert (rec->not_before_ms >= before + 1000 && rec->not_before_ms <= sf_time_now_ms () + 1000);
    sf_job_rec_destroy (&rec);
    //  The old attempt's messages are dropped, and so are the new one's
    //  until it is sent
    assert (s_test_failed (jobs, id, 1, SF_ESTORE, "again", true, &err) == -1);
    assert (err.code == SF_ESTATE && strstr (err.text, "stale attempt 1"));
    assert (s_test_failed (jobs, id, 2, SF_ESTORE, "again", true, &err) == -1);
    assert (err.code == SF_ESTATE && strstr (err.text, "was not sent"));
    assert (sf_jobs_assigned (jobs, id, &err) == 0);
    assert (s_test_failed (jobs, id, 2, SF_ECEPH, "ceph down", true, &err) == 0);
    assert (sf_jobs_rec (jobs, id, &rec, &err) == 1);
    assert (rec->attempt == 3 && rec->not_before_ms >= sf_time_now_ms () + 1500);
    sf_job_rec_destroy (&rec);
    zlistx_destroy (&(zlistx_t *) { sf_jobs_take_retried (jobs) });
    assert (sf_jobs_assigned (jobs, id, &err) == 0);
    assert (s_test_failed (jobs, id, 3, SF_ESTORE, "store down", true, &err) == 0);
    s_test_expect (jobs, id, "state", "failed");
    s_test_expect (jobs, id, "error.text", "store down (after 3 attempts)");
    s_test_expect (jobs, id, "attempts.1.error.name", "ECEPH");
    s_test_expect (jobs, id, "attempts.2.error.text", "store down");
    s_test_expect (jobs, id, "attempts.3", "null");
    assert (s_test_only (sf_jobs_take_ended (jobs), id));

    //  A retry that succeeds: done, no error, both attempts listed
    s_test_job (jobs, false, 0, id);
    assert (s_test_failed (jobs, id, 1, SF_ESTORE, "store down", true, &err) == 0);
    assert (sf_jobs_assigned (jobs, id, &err) == 0);
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    result.job_id = id, result.attempt = 2, result.ok = 1, result.strategy = "offline";
    assert (sf_jobs_result (jobs, "n1", "dir@n1", &result, &err) == 0);
    s_test_expect (jobs, id, "state", "done");
    s_test_expect (jobs, id, "error", "null");
    s_test_expect (jobs, id, "attempts.0.error.text", "store down");
    s_test_expect (jobs, id, "attempts.1.error", "null");

    //  A failure that is not retryable is final at once
    s_test_job (jobs, false, 0, id);
    assert (s_test_failed (jobs, id, 1, SF_EHV, "no such domain", false, &err) == 0);
    s_test_expect (jobs, id, "state", "failed");

    //  No retry past the window: the backoff would end after it
    s_test_job (jobs, false, sf_time_now_ms () + 500, id);
    assert (s_test_failed (jobs, id, 1, SF_ESTORE, "store down", true, &err) == 0);
    s_test_expect (jobs, id, "state", "failed");

    //  Cancelled in its backoff: cancelled at once
    s_test_job (jobs, false, 0, id);
    assert (s_test_failed (jobs, id, 1, SF_ESTORE, "store down", true, &err) == 0);
    assert (sf_jobs_cancel (jobs, id, node, sizeof (node), &attempt, &err)
            == SF_JOBS_CANCEL_NOW);
    s_test_expect (jobs, id, "state", "cancelled");
    assert (sf_jobs_rec (jobs, id, &rec, &err) == 0 && rec == NULL);
    zlistx_destroy (&(zlistx_t *) { sf_jobs_take_ended (jobs) });
    zlistx_destroy (&(zlistx_t *) { sf_jobs_take_retried (jobs) });
    sf_jobs_set_retry (jobs, 1, 0);
}

void
sf_jobs_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_jobs: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    char path [] = "/tmp/sf_jobs_test_XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    close (fd);
    sf_store_t *store = sf_store_new (path, &err);
    assert (store);
    assert (sf_store_node_hello (store, "n1", "", 2, 1, &err) == 0);
    s_test_inventory (store);
    sf_jobs_t *jobs = sf_jobs_new (store);

    sf_job_spec_t spec = { .instance_uuid = "u1", .instance_name = "vm1", .node = "n1",
                           .strategy = "file-cold" };
    char id [32], id2 [32], active [32];
    assert (sf_jobs_create (jobs, &spec, id, sizeof (id), &err) == 0);
    assert (streq (id, "J1"));
    assert (sf_jobs_active (jobs, "n1", "u1", active, sizeof (active), &err) == 1);
    assert (streq (active, "J1"));
    assert (sf_jobs_active (jobs, "n1", "u9", active, sizeof (active), &err) == 0);
    //  The same uuid on another node is another instance
    assert (sf_jobs_active (jobs, "n2", "u1", active, sizeof (active), &err) == 0);
    zhashx_t *busy = sf_jobs_busy (jobs, &err);
    assert (streq (sf_jobs_busy_job (busy, "n1", "u1"), "J1"));
    assert (sf_jobs_busy_job (busy, "n2", "u1") == NULL);
    zhashx_destroy (&busy);
    json_t *job = sf_jobs_json (jobs, id, &err);
    assert (streq (s_get (job, "state"), "queued"));
    assert (s_int (job, "attempt") == 1);
    assert (json_is_null (json_object_get (job, "image")));
    assert (json_object_size (job) == 27);        //  With its attempts, full_reason, method
    assert (json_is_null (json_object_get (job, "method")));
    assert (json_array_size (json_object_get (job, "attempts")) == 0);
    assert (json_is_null (json_object_get (job, "note")));
    assert (json_is_null (json_object_get (job, "full_reason")));
    json_decref (job);
    assert (sf_jobs_json (jobs, "J77", &err) == NULL && err.code == SF_ENOENT);

    s_test_events (jobs, id);
    s_test_result (jobs, id);

    //  A job on a node that goes down fails, and only unfinished jobs do
    assert (sf_jobs_create (jobs, &spec, id2, sizeof (id2), &err) == 0);
    assert (streq (id2, "J2"));
    assert (sf_jobs_fail_node (jobs, "n1", SF_ENODE, "node 'n1' stopped heartbeating",
                               &err) == 1);
    job = sf_jobs_json (jobs, id2, &err);
    assert (streq (s_get (job, "state"), "failed"));
    json_t *error = json_object_get (job, "error");
    assert (s_int (error, "code") == SF_ENODE);
    assert (streq (s_get (error, "text"), "node 'n1' stopped heartbeating"));
    json_decref (job);
    assert (sf_jobs_fail (jobs, id2, SF_EIO, "again", &err) == 0);   //  No-op
    json_t *list = sf_jobs_list_json (jobs, &err);
    assert (json_array_size (list) == 2);
    assert (streq (s_get (json_array_get (list, 0), "state"), "done"));
    json_decref (list);

    sf_jobs_destroy (&jobs);
    assert (jobs == NULL);
    sf_store_destroy (&store);
    //  Ids survive a restart and are never reused
    store = sf_store_new (path, &err);
    jobs = sf_jobs_new (store);
    assert (sf_jobs_create (jobs, &spec, id, sizeof (id), &err) == 0);
    assert (streq (id, "J3"));
    assert (sf_jobs_fail (jobs, id, SF_ECANCELED, "test", &err) == 0);
    s_test_reconcile (jobs, store);
    s_test_replay (jobs);
    s_test_note (jobs);
    s_test_retention_reads (jobs);
    s_test_refused (jobs);
    s_test_cancel (jobs);
    s_test_retry (jobs);
    sf_jobs_destroy (&jobs);
    sf_store_destroy (&store);
    unlink (path);
    //  @end
    printf ("OK\n");
}
