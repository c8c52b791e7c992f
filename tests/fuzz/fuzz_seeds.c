/*  =========================================================================
    fuzz_seeds - writes the seed corpus of fuzz_wire: one valid envelope of
    every body type, filled as the daemons fill them

    Run once when the protocol changes and commit what it writes:
        build-fuzz/tests/fuzz/fuzz_seeds tests/fuzz/corpus/fuzz_wire
    The files are named after the body (hello.bin, job_result.bin, ...).
    =========================================================================
*/
#include "sf_core.h"

static const char *s_dir;

static void
    s_write_as (sf_envelope_t *env, const char *suffix);

static void
s_write (sf_envelope_t *env)
{
    s_write_as (env, "");
}

//  The same, into <body><suffix>.bin (a second seed of one body type)

static void
s_write_as (sf_envelope_t *env, const char *suffix)
{
    sf_err_t err = SF_ERR_INIT;
    zframe_t *frame = sf_wire_encode (env, &err);
    assert (frame);
    //  What we write must pass our own decoder
    sf_envelope_t *copy = sf_wire_decode (frame, &err);
    if (!copy)
        fprintf (stderr, "fuzz_seeds: %s: %s\n", sf_wire_body_name (env->body_case), err.text);
    assert (copy);
    sf_wire_free (&copy);
    char *path = zsys_sprintf ("%s/%s%s.bin", s_dir, sf_wire_body_name (env->body_case),
                               suffix);
    FILE *file = fopen (path, "wb");
    assert (file);
    assert (fwrite (zframe_data (frame), 1, zframe_size (frame), file) == zframe_size (frame));
    fclose (file);
    zstr_free (&path);
    zframe_destroy (&frame);
}

int
main (int argc, char *argv [])
{
    if (argc != 2) {
        fprintf (stderr, "usage: fuzz_seeds DIR\n");
        return 2;
    }
    s_dir = argv [1];
    const char *catalog = "0f1e2d3c4b5a6978";
    char snap [128], clone [256];
    sf_err_t err = SF_ERR_INIT;
    assert (sf_naming_snap (snap, sizeof (snap), catalog, "J42", &err) == 0);
    assert (sf_naming_clone (clone, sizeof (clone), "vm2-disk", catalog, "J42", &err) == 0);

    char *strategies [] = { "file-cold", "offline", "rbd" };
    char *running [] = { "J41", "J42" };
    sf_hello_t hello = SF_HELLO_INIT;
    hello.node = "hv01", hello.software = "snapfleet-worker 0.1.0", hello.max_jobs = 4;
    hello.strategies = strategies, hello.n_strategies = 3;
    hello.running_jobs = running, hello.n_running_jobs = 2;
    hello.store = "dir@hv01", hello.ceph_cluster = "5b1e7a42-0000-4000-8000-000000000001";
    hello.scratch_free = 1ull << 34;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_HELLO, &hello);
    s_write (&env);

    sf_welcome_t welcome = SF_WELCOME_INIT;
    welcome.heartbeat_ms = 5000;
    env = sf_wire_envelope (SF_BODY_WELCOME, &welcome);
    s_write (&env);

    sf_heartbeat_t beat = SF_HEARTBEAT_INIT;
    beat.seq = 17, beat.running_jobs = 1, beat.scratch_free = 1ull << 33;
    env = sf_wire_envelope (SF_BODY_HEARTBEAT, &beat);
    s_write (&env);

    char *chain [] = { "/var/lib/libvirt/images/base.qcow2" };
    sf_disk_t file = SF_DISK_INIT, rbd = SF_DISK_INIT;
    file.target = "vda", file.type = SF_DISK_FILE, file.device = "disk";
    file.source = "/var/lib/libvirt/images/vm1.qcow2", file.format = "qcow2";
    file.virtual_size = 10ull << 30, file.allocated_size = 3ull << 30;
    file.backing_chain = chain, file.n_backing_chain = 1;
    rbd.target = "vdb", rbd.type = SF_DISK_RBD, rbd.device = "disk";
    rbd.source = "rbd/vm2-disk", rbd.format = "raw", rbd.virtual_size = 20ull << 30;
    sf_disk_t *disks [] = { &file, &rbd };
    sf_tag_t tag = SF_TAG_INIT;
    tag.key = "tier", tag.value = "gold";
    sf_tag_t *tags [] = { &tag };
    sf_instance_t vm1 = SF_INSTANCE_INIT, vm2 = SF_INSTANCE_INIT;
    vm1.uuid = "6f1c2b6e-8d1a-4c53-9a57-2f1b0e0c0a01", vm1.name = "vm1";
    vm1.state = SF_STATE_RUNNING, vm1.storage_class = "mixed";
    vm1.disks = disks, vm1.n_disks = 2, vm1.tags = tags, vm1.n_tags = 1;
    vm2.uuid = "6f1c2b6e-8d1a-4c53-9a57-2f1b0e0c0a02", vm2.name = "vm2";
    vm2.state = SF_STATE_SHUTOFF, vm2.storage_class = "none";
    sf_instance_t *instances [] = { &vm1, &vm2 };
    sf_inventory_t inventory = SF_INVENTORY_INIT;
    inventory.instances = instances, inventory.n_instances = 2;
    env = sf_wire_envelope (SF_BODY_INVENTORY, &inventory);
    s_write (&env);

    sf_job_assign_t assign = SF_JOB_ASSIGN_INIT;
    assign.job_id = "J42", assign.attempt = 1, assign.instance_uuid = vm1.uuid;
    assign.strategy = "file-cold", assign.wait_upload_grant = 1;
    assign.scratch_bytes = 3ull << 30, assign.catalog_id = (char *) catalog;
    env = sf_wire_envelope (SF_BODY_JOB_ASSIGN, &assign);
    s_write (&env);
    //  A restore (issue 13): its image and target
    sf_image_t source = SF_IMAGE_INIT;
    source.store = "dir", source.id = "0b5e0c35-2d1f-4c6a-9d43-1b2f3a4c5d6e";
    source.path = "/var/lib/snapfleet/images/0b5e0c35-2d1f-4c6a-9d43-1b2f3a4c5d6e.qcow2";
    source.size = 1u << 30, source.disk_target = "vda", source.format = "qcow2";
    source.sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    sf_restore_t restore = SF_RESTORE_INIT;
    restore.image = &source, restore.to_file = "/srv/restored/vm1.img";
    restore.to_rbd = "", restore.format = "raw";
    assign.strategy = SF_WIRE_RESTORE, assign.scratch_bytes = 0, assign.restore = &restore;
    env = sf_wire_envelope (SF_BODY_JOB_ASSIGN, &assign);
    s_write_as (&env, "-restore");
    assign.restore = NULL;

    sf_job_cancel_t cancel = SF_JOB_CANCEL_INIT;
    cancel.job_id = "J42", cancel.attempt = 1;
    env = sf_wire_envelope (SF_BODY_JOB_CANCEL, &cancel);
    s_write (&env);

    sf_job_event_t event = sf_wire_job_event ("J42", 1, SF_PHASE_CONVERTED, 1500, 3ull << 30);
    event.text = "converted vda";
    env = sf_wire_envelope (SF_BODY_JOB_EVENT, &event);
    s_write (&env);

    sf_image_t image = SF_IMAGE_INIT, rbd_image = SF_IMAGE_INIT;
    image.store = "dir@hv01", image.id = "J42-vda", image.path = "vm1/J42-vda.qcow2";
    image.size = 3ull << 30, image.disk_target = "vda", image.format = "qcow2";
    image.sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    rbd_image.store = "rbd", rbd_image.id = clone, rbd_image.path = "rbd";
    rbd_image.size = 20ull << 30, rbd_image.disk_target = "vdb", rbd_image.format = "raw";
    sf_image_t *images [] = { &image, &rbd_image };
    sf_error_info_t note = SF_ERROR_INFO_INIT;
    note.text = "guest agent not answering: crash-consistent";
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    result.job_id = "J42", result.attempt = 1, result.ok = 1, result.strategy = "file-cold";
    result.consistency = "paused", result.pause_ms = 150, result.convert_ms = 1500;
    result.upload_ms = 900, result.bytes = 23ull << 30, result.resumed = 1;
    result.images = images, result.n_images = 2, result.error = &note;
    env = sf_wire_envelope (SF_BODY_JOB_RESULT, &result);
    s_write (&env);

    sf_error_info_t error = SF_ERROR_INFO_INIT;
    error.code = SF_EPROTO, error.text = "expected 1 body frame, got 2";
    env = sf_wire_envelope (SF_BODY_ERROR, &error);
    s_write (&env);

    sf_job_grant_t grant = SF_JOB_GRANT_INIT;
    grant.job_id = "J42", grant.attempt = 1, grant.rate_bps = 64 << 20;
    env = sf_wire_envelope (SF_BODY_JOB_GRANT, &grant);
    s_write (&env);

    sf_image_delete_t delete = SF_IMAGE_DELETE_INIT;
    delete.request_id = "D7", delete.image = &rbd_image;
    delete.catalog_id = (char *) catalog, delete.job_id = "J42";
    env = sf_wire_envelope (SF_BODY_IMAGE_DELETE, &delete);
    s_write (&env);

    sf_error_info_t gone = SF_ERROR_INFO_INIT;
    gone.code = SF_ENOENT, gone.text = "no such image";
    sf_image_deleted_t deleted = SF_IMAGE_DELETED_INIT;
    deleted.request_id = "D7", deleted.image = &rbd_image, deleted.error = &gone;
    env = sf_wire_envelope (SF_BODY_IMAGE_DELETED, &deleted);
    s_write (&env);

    sf_rate_applied_t applied = sf_wire_rate_applied (&grant);
    env = sf_wire_envelope (SF_BODY_RATE_APPLIED, &applied);
    s_write (&env);

    //  The reconciler's messages
    sf_gc_list_t gc_list = SF_GC_LIST_INIT;
    gc_list.request_id = "G3.0a1b2c3d", gc_list.catalog_id = (char *) catalog;
    env = sf_wire_envelope (SF_BODY_GC_LIST, &gc_list);
    s_write (&env);
    char snap_name [300];
    snprintf (snap_name, sizeof (snap_name), "rbd/vm2-disk@%s", snap);
    sf_holding_t held [3] = { SF_HOLDING_INIT, SF_HOLDING_INIT, SF_HOLDING_INIT };
    held [0].kind = SF_HOLDING_TEMP, held [0].name = "0b6e1f00-0000-4000-8000-000000000042";
    held [1].kind = SF_HOLDING_SNAP, held [1].name = snap_name;
    held [2].kind = SF_HOLDING_SCRATCH, held [2].name = "J42";
    sf_holding_t *held_ptrs [3];
    for (int i = 0; i < 3; i++) {
        held [i].job_id = "J42", held [i].bytes = 1 << 20, held [i].age_ms = 3600000;
        held_ptrs [i] = &held [i];
    }
    sf_gc_holdings_t holdings = SF_GC_HOLDINGS_INIT;
    holdings.request_id = "G3.0a1b2c3d", holdings.holdings = held_ptrs, holdings.n_holdings = 3;
    holdings.store_complete = holdings.rbd_complete = 1;
    env = sf_wire_envelope (SF_BODY_GC_HOLDINGS, &holdings);
    s_write (&env);
    sf_gc_remove_t remove = SF_GC_REMOVE_INIT;
    remove.request_id = "G3.0a1b2c3d", remove.catalog_id = (char *) catalog;
    remove.holdings = held_ptrs, remove.n_holdings = 3;
    env = sf_wire_envelope (SF_BODY_GC_REMOVE, &remove);
    s_write (&env);
    held [2].error = "scratch directory holds files that are not ours";
    sf_gc_removed_t removed = SF_GC_REMOVED_INIT;
    removed.request_id = "G3.0a1b2c3d", removed.removed = held_ptrs, removed.n_removed = 2;
    removed.failed = held_ptrs + 2, removed.n_failed = 1;
    env = sf_wire_envelope (SF_BODY_GC_REMOVED, &removed);
    s_write (&env);
    return 0;
}
