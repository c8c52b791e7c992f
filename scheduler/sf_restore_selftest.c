/*  =========================================================================
    sf_restore_selftest - the self test of sf_restore: restores through the
    admin endpoint of a scheduler running in-process, against a fake worker
    (sf_harness)

    Test code, compiled into sched_selftest only.
    =========================================================================
*/
#include "sf_sched_classes.h"
#include "sf_harness_selftest.h"

#define IMAGE "0f8e6b1c-0000-4000-8000-000000000001"
#define SHA "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

//  A restore request that must be refused with code and a text containing
//  text; no job is made

static void
s_refused (sf_harness_t *harness, const char *args, int code, const char *text)
{
    int64_t rows = sf_harness_job_rows (harness);
    json_t *reply = sf_harness_admin (harness, "{\"cmd\":\"restore\"%s}", args);
    if (sf_harness_int (reply, "error.code") != code
    ||  !strstr (sf_harness_str (reply, "error.text"), text))
        fprintf (stderr, "\n%s: expected %d '%s', got %d '%s'\n", args, code, text,
                 (int) sf_harness_int (reply, "error.code"),
                 sf_harness_str (reply, "error.text"));
    assert (json_is_false (json_object_get (reply, "ok")));
    assert (sf_harness_int (reply, "error.code") == code);
    assert (strstr (sf_harness_str (reply, "error.text"), text));
    json_decref (reply);
    assert (sf_harness_job_rows (harness) == rows);
}

//  Write to the scheduler's database from a connection of our own

static void
s_sql (sf_harness_t *harness, const char *sql)
{
    sqlite3 *db = NULL;
    assert (sqlite3_open (sf_harness_cfg (harness)->database, &db) == SQLITE_OK);
    sqlite3_busy_timeout (db, 5000);
    assert (sqlite3_exec (db, sql, NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close (db);
}

//  A node with a Ceph cluster (its hello says so) takes the restores that
//  read or write RBD: an RBD clone to a file and to RBD (flattened), a dir
//  image to RBD only on a node with the cluster

static void
s_test_rbd (sf_harness_t *harness)
{
    zsock_t *c1 = sf_harness_worker (harness);
    char *strategies [] = { "rbd" };
    sf_hello_t hello = SF_HELLO_INIT;
    hello.node = "c1", hello.software = "fake-worker 0", hello.max_jobs = 8;
    hello.strategies = strategies, hello.n_strategies = 1;
    hello.ceph_cluster = "5e5f7a3c-0000-4000-8000-00000000fa4e";
    sf_envelope_t made = sf_wire_envelope (SF_BODY_HELLO, &hello);
    sf_harness_send (c1, &made);
    sf_envelope_t *env = sf_harness_recv (c1, 5000);
    assert (env && env->body_case == SF_BODY_WELCOME);
    sf_wire_free (&env);
    //  The clone to a file: on c1 (n1, whose job made it, has no cluster)
    json_t *reply = sf_harness_admin (harness, "{\"cmd\":\"restore\",\"image\":"
                                      "\"rbd/vm1-clone\",\"to\":\"/srv/clone.raw\","
                                      "\"format\":\"raw\"}");
    assert (json_is_true (json_object_get (reply, "ok")));
    assert (streq (sf_harness_str (reply, "job.node"), "c1"));
    json_decref (reply);
    do {
        sf_wire_free (&env);
        env = sf_harness_recv (c1, 2000);
    } while (env && env->body_case != SF_BODY_JOB_ASSIGN);
    assert (env && env->job_assign->restore);
    const sf_restore_t *restore = env->job_assign->restore;
    assert (streq (restore->image->store, "rbd") && streq (restore->image->sha256, ""));
    assert (streq (restore->image->path, "rbd:rbd/vm1-clone"));
    assert (streq (restore->to_file, "/srv/clone.raw") && !restore->flatten);
    sf_wire_free (&env);
    //  To RBD, flattened: format raw, the target kept as rbd:POOL/NAME
    reply = sf_harness_admin (harness, "{\"cmd\":\"restore\",\"image\":\"rbd/vm1-clone\","
                              "\"rbd\":\"rbd/vm1-back\",\"flatten\":true}");
    assert (json_is_true (json_object_get (reply, "ok")));
    assert (streq (sf_harness_str (reply, "job.node"), "c1"));
    assert (streq (sf_harness_str (reply, "job.restore.target"), "rbd:rbd/vm1-back"));
    assert (streq (sf_harness_str (reply, "job.restore.format"), "raw"));
    assert (json_is_true (json_object_get (json_object_get (json_object_get (reply, "job"),
                                                            "restore"), "flatten")));
    json_decref (reply);
    do {
        sf_wire_free (&env);
        env = sf_harness_recv (c1, 2000);
    } while (env && env->body_case != SF_BODY_JOB_ASSIGN);
    assert (env && env->job_assign->restore);
    restore = env->job_assign->restore;
    assert (streq (restore->to_rbd, "rbd/vm1-back") && streq (restore->to_file, ""));
    assert (restore->flatten && streq (restore->format, "raw"));
    sf_wire_free (&env);
    //  The same RBD target from any node: busy
    s_refused (harness, ",\"image\":\"rbd/vm1-clone\",\"rbd\":\"rbd/vm1-back\"", SF_EBUSY,
               "another restore writes 'rbd:rbd/vm1-back'");
    //  A dir image to RBD on the node with the cluster, when named
    reply = sf_harness_admin (harness, "{\"cmd\":\"restore\",\"image\":\"" IMAGE "\","
                              "\"rbd\":\"rbd/from-dir\",\"node\":\"c1\"}");
    assert (json_is_true (json_object_get (reply, "ok")));
    assert (streq (sf_harness_str (reply, "job.node"), "c1"));
    json_decref (reply);
    zsock_destroy (&c1);
}

void
sf_restore_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_restore: ");
    //  @selftest
    sf_harness_t *harness = sf_harness_new ("sf_restore_test", 5000);
    zsock_t *n1 = sf_harness_worker (harness);
    sf_harness_hello (n1, "n1");
    sf_harness_inventory (n1, "");
    json_t *reply = sf_harness_admin_until (harness, "{\"cmd\":\"instances\"}",
                                            "instances.2.name", "vm3", 2000);
    json_decref (reply);

    //  J1 makes image IMAGE of vm1 on n1
    reply = sf_harness_admin (harness, "{\"cmd\":\"snapshot\",\"instance\":\"vm1\"}");
    assert (streq (sf_harness_str (reply, "job.job_id"), "J1"));
    json_decref (reply);
    sf_envelope_t *env = sf_harness_recv (n1, 2000);
    assert (env && env->body_case == SF_BODY_JOB_ASSIGN && !env->job_assign->restore);
    sf_wire_free (&env);
    sf_harness_result (n1, "J1", 1);
    reply = sf_harness_admin_until (harness, "{\"cmd\":\"job_show\",\"job_id\":\"J1\"}",
                                    "job.state", "done", 2000);
    json_decref (reply);

    //  Refusals: nothing is made
    s_refused (harness, ",\"image\":\"nope\",\"to\":\"/srv/vm1.img\"", SF_ENOENT,
               "no image 'nope'");
    s_refused (harness, ",\"image\":\"" IMAGE "\"", SF_EINVAL, "needs argument 'to'");
    s_refused (harness, ",\"image\":\"" IMAGE "\",\"to\":\"/srv/x\",\"rbd\":\"rbd/x\"",
               SF_EINVAL, "takes one of arguments 'to'");
    s_refused (harness, ",\"image\":\"" IMAGE "\",\"rbd\":\"rbd/x\",\"as_domain\":\"v\"",
               SF_EINVAL, "not on an RBD image");
    s_refused (harness, ",\"to\":\"/srv/vm1.img\"", SF_EINVAL, "needs argument 'image'");
    s_refused (harness, ",\"image\":\"" IMAGE "\",\"to\":\"srv/vm1.img\"", SF_EINVAL,
               "target 'srv/vm1.img' is not an absolute path");
    s_refused (harness, ",\"image\":\"" IMAGE "\",\"to\":\"/srv/../etc/x\"", SF_EINVAL,
               "'..' component");
    s_refused (harness, ",\"image\":\"" IMAGE "\",\"to\":\"/srv/x\",\"node\":\"n9\"",
               SF_ENOENT, "unknown node 'n9'");
    s_refused (harness, ",\"image\":\"" IMAGE "\",\"to\":\"/srv/x\",\"format\":\"vmdk\"",
               SF_EINVAL, "format must be 'qcow2' or 'raw', not 'vmdk'");
    s_refused (harness, ",\"image\":\"" IMAGE "\",\"to\":\"/srv/x\",\"verbose\":\"1\"",
               SF_EINVAL, "unknown argument 'verbose'");
    s_sql (harness, "INSERT INTO images (store, id, path, size, sha256, job_id,"
           " instance_uuid, instance_name, disk_target, format, created) VALUES"
           " ('rbd', 'rbd/vm1-clone', 'rbd:rbd/vm1-clone', 1, '', 'J1', 'u-vm1', 'vm1', 'vda',"
           " 'raw', 1), ('glance', 'g1', 'g1', 1, '', 'J1', 'u-vm1', 'vm1', 'vda', 'raw', 1)");
    s_refused (harness, ",\"image\":\"g1\",\"to\":\"/srv/x\"", SF_ENOTSUP,
               "is in store 'glance': only images of a dir store and RBD clones");
    //  RBD: n1 is up without a Ceph cluster
    s_refused (harness, ",\"image\":\"rbd/vm1-clone\",\"to\":\"/srv/x\"", SF_EINVAL,
               "node 'n1' has no Ceph cluster (RBD support is off there); a restore from "
               "RBD needs one (name another with --node)");
    s_refused (harness, ",\"image\":\"" IMAGE "\",\"rbd\":\"rbd/new\"", SF_EINVAL,
               "node 'n1' has no Ceph cluster (RBD support is off there); a restore to RBD");
    s_refused (harness, ",\"image\":\"" IMAGE "\",\"rbd\":\"rbd/new\",\"flatten\":true",
               SF_EINVAL, "--flatten applies to an RBD clone");
    s_refused (harness, ",\"image\":\"rbd/vm1-clone\",\"to\":\"/srv/x\",\"flatten\":true",
               SF_EINVAL, "--flatten applies to a restore to RBD");
    s_refused (harness, ",\"image\":\"rbd/vm1-clone\",\"rbd\":\"rbd/new\","
               "\"flatten\":\"yes\"", SF_EINVAL, "argument 'flatten' must be true or false");
    s_refused (harness, ",\"image\":\"rbd/vm1-clone\",\"rbd\":\"rbd/new\","
               "\"format\":\"qcow2\"", SF_EINVAL, "an RBD image is raw");
    s_refused (harness, ",\"image\":\"rbd/vm1-clone\",\"rbd\":\"rbd/a@b\"", SF_EINVAL,
               "RBD target 'rbd/a@b' has");
    s_refused (harness, ",\"image\":\"rbd/vm1-clone\",\"rbd\":\"new\"", SF_EINVAL,
               "is not POOL/NAME");
    s_sql (harness, "INSERT INTO images (store, id, path, size, sha256, job_id,"
           " instance_uuid, instance_name, disk_target, format, created) VALUES"
           " ('dir', 'nohash', '/images/nohash.qcow2', 1, '', 'J1', 'u-vm1', 'vm1', 'vda',"
           " 'qcow2', 1)");
    s_refused (harness, ",\"image\":\"nohash\",\"to\":\"/srv/x\"", SF_ESTATE,
               "has no recorded SHA-256");
    //  A restore is not a snapshot strategy
    reply = sf_harness_admin (harness, "{\"cmd\":\"snapshot\",\"instance\":\"vm1\","
                              "\"strategy\":\"restore\"}");
    assert (sf_harness_int (reply, "error.code") == SF_EINVAL);
    assert (strstr (sf_harness_str (reply, "error.text"), "unknown strategy 'restore'"));
    json_decref (reply);
    assert (sf_harness_job_rows (harness) == 1);

    //  A restore to a raw file: J2 on n1, the node that made the image
    reply = sf_harness_admin (harness, "{\"cmd\":\"restore\",\"image\":\"" IMAGE "\","
                              "\"to\":\"/srv/restored/vm1.img\",\"format\":\"raw\"}");
    assert (json_is_true (json_object_get (reply, "ok")));
    assert (streq (sf_harness_str (reply, "job.job_id"), "J2"));
    assert (streq (sf_harness_str (reply, "job.strategy"), "restore"));
    assert (streq (sf_harness_str (reply, "job.node"), "n1"));
    assert (streq (sf_harness_str (reply, "job.instance"), "vm1"));
    assert (streq (sf_harness_str (reply, "job.restore.target"), "/srv/restored/vm1.img"));
    assert (streq (sf_harness_str (reply, "job.restore.image_id"), IMAGE));
    assert (streq (sf_harness_str (reply, "job.restore.format"), "raw"));
    json_decref (reply);
    env = sf_harness_recv (n1, 2000);
    assert (env && env->body_case == SF_BODY_JOB_ASSIGN);
    const sf_job_assign_t *assign = env->job_assign;
    assert (streq (assign->job_id, "J2") && streq (assign->strategy, "restore"));
    assert (assign->wait_upload_grant && assign->scratch_bytes == 0);
    assert (assign->restore && streq (assign->restore->to_file, "/srv/restored/vm1.img"));
    assert (streq (assign->restore->format, "raw"));
    assert (streq (assign->restore->image->id, IMAGE));
    assert (streq (assign->restore->image->path, "/images/" IMAGE ".qcow2"));
    assert (streq (assign->restore->image->format, "qcow2"));
    assert (assign->restore->image->size == 3ull << 32);
    assert (strlen (assign->restore->image->sha256) == 64);
    sf_wire_free (&env);

    //  The same target again while J2 runs: refused
    s_refused (harness, ",\"image\":\"" IMAGE "\",\"to\":\"/srv/restored/vm1.img\"",
               SF_EBUSY, "another restore on node 'n1' writes '/srv/restored/vm1.img'");
    //  A restore does not make its instance busy: vm1 can be snapshotted
    reply = sf_harness_admin (harness, "{\"cmd\":\"snapshot\",\"instance\":\"vm1\"}");
    assert (streq (sf_harness_str (reply, "job.job_id"), "J3"));
    json_decref (reply);
    env = sf_harness_recv (n1, 2000);
    assert (env && env->body_case == SF_BODY_JOB_ASSIGN);
    assert (streq (env->job_assign->job_id, "J3") && !env->job_assign->restore);
    sf_wire_free (&env);

    //  It waits for an upload slot like an upload, then stores nothing
    sf_harness_event (n1, "J2", 1, SF_PHASE_QUEUED, 0);
    sf_harness_event (n1, "J2", 1, SF_PHASE_UPLOAD_WAIT, 0);
    env = sf_harness_recv (n1, 2000);
    assert (env && env->body_case == SF_BODY_JOB_GRANT);
    assert (streq (env->job_grant->job_id, "J2"));
    sf_wire_free (&env);
    sf_harness_event (n1, "J2", 1, SF_PHASE_CONVERTED, 40);
    sf_harness_event (n1, "J2", 1, SF_PHASE_UPLOADED, 2);
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    result.job_id = "J2", result.attempt = 1, result.ok = true;
    result.strategy = "restore", result.convert_ms = 40, result.bytes = 1 << 20;
    result.method = "restore";
    env = NULL;
    sf_envelope_t made = sf_wire_envelope (SF_BODY_JOB_RESULT, &result);
    sf_harness_send (n1, &made);
    reply = sf_harness_admin_until (harness, "{\"cmd\":\"job_show\",\"job_id\":\"J2\"}",
                                    "job.state", "done", 2000);
    assert (streq (sf_harness_str (reply, "job.state"), "done"));
    assert (sf_harness_int (reply, "job.bytes") == 1 << 20);
    assert (streq (sf_harness_str (reply, "job.method"), "restore"));
    assert (streq (sf_harness_str (reply, "job.restore.target"), "/srv/restored/vm1.img"));
    json_decref (reply);
    //  The images are as they were: a restore makes none
    char *count = sf_harness_sql (harness, "SELECT COUNT (*) FROM images WHERE job_id = 'J2'");
    assert (count && streq (count, "0"));
    zstr_free (&count);

    //  A worker that reports an image for a restore gets the job failed,
    //  and no image row
    reply = sf_harness_admin (harness, "{\"cmd\":\"restore\",\"image\":\"" IMAGE "\","
                              "\"to\":\"/srv/restored/liar.img\"}");
    const char *liar = sf_harness_str (reply, "job.job_id");
    assert (streq (liar, "J4"));
    json_decref (reply);
    env = sf_harness_recv (n1, 2000);
    assert (env && env->body_case == SF_BODY_JOB_ASSIGN);
    sf_wire_free (&env);
    sf_harness_result_note (n1, "J4", 1, "restore", NULL);
    reply = sf_harness_admin_until (harness, "{\"cmd\":\"job_show\",\"job_id\":\"J4\"}",
                                    "job.state", "failed", 2000);
    assert (sf_harness_int (reply, "job.error.code") == SF_EPROTO);
    assert (strstr (sf_harness_str (reply, "job.error.text"), "for restore job 'J4', which "
                                    "makes none"));
    json_decref (reply);
    count = sf_harness_sql (harness, "SELECT COUNT (*) FROM images WHERE job_id = 'J4'");
    assert (count && streq (count, "0"));
    zstr_free (&count);

    //  After a restart the restore of an unfinished job is assigned again
    //  with its restore (J5 is never received: the worker says hello
    //  without it)
    reply = sf_harness_admin (harness, "{\"cmd\":\"restore\",\"image\":\"" IMAGE "\","
                              "\"to\":\"/srv/restored/again.qcow2\",\"node\":\"n1\"}");
    assert (streq (sf_harness_str (reply, "job.job_id"), "J5"));
    assert (streq (sf_harness_str (reply, "job.restore.format"), "qcow2"));
    json_decref (reply);
    env = sf_harness_recv (n1, 2000);
    assert (env && env->body_case == SF_BODY_JOB_ASSIGN);
    assert (streq (env->job_assign->job_id, "J5"));
    sf_wire_free (&env);
    //  J6 restores an image that retention deletes before J6 reaches its
    //  node: the resent assign has nothing to restore, and J6 fails
    s_sql (harness, "INSERT INTO images (store, id, path, size, sha256, job_id,"
           " instance_uuid, instance_name, disk_target, format, created) VALUES"
           " ('dir', 'doomed', '/images/doomed.qcow2', 1, '" SHA "', 'J1', 'u-vm1',"
           " 'vm1', 'vda', 'qcow2', 1)");
    reply = sf_harness_admin (harness, "{\"cmd\":\"restore\",\"image\":\"doomed\","
                              "\"to\":\"/srv/restored/doomed\"}");
    assert (streq (sf_harness_str (reply, "job.job_id"), "J6"));
    json_decref (reply);
    env = sf_harness_recv (n1, 2000);
    assert (env && env->body_case == SF_BODY_JOB_ASSIGN);
    assert (streq (env->job_assign->job_id, "J6"));
    sf_wire_free (&env);
    s_sql (harness, "DELETE FROM images WHERE id = 'doomed'");
    zsock_destroy (&n1);
    sf_harness_restart (harness);
    n1 = sf_harness_worker (harness);
    sf_harness_hello_with (n1, "n1", NULL, "J3");
    env = sf_harness_recv (n1, 2000);
    while (env && env->body_case != SF_BODY_JOB_ASSIGN) {
        sf_wire_free (&env);
        env = sf_harness_recv (n1, 2000);
    }
    assert (env && streq (env->job_assign->job_id, "J5"));
    assert (env->job_assign->restore);
    assert (streq (env->job_assign->restore->to_file, "/srv/restored/again.qcow2"));
    assert (streq (env->job_assign->restore->format, "qcow2"));
    sf_wire_free (&env);
    reply = sf_harness_admin_until (harness, "{\"cmd\":\"job_show\",\"job_id\":\"J6\"}",
                                    "job.state", "failed", 2000);
    assert (streq (sf_harness_str (reply, "job.state"), "failed"));
    assert (sf_harness_int (reply, "job.error.code") == SF_ENOENT);
    assert (strstr (sf_harness_str (reply, "job.error.text"), "the image to restore is gone"));
    json_decref (reply);
    env = sf_harness_recv (n1, 300);
    assert (!env || !(env->body_case == SF_BODY_JOB_ASSIGN
                      && streq (env->job_assign->job_id, "J6")));
    sf_wire_free (&env);

    s_test_rbd (harness);
    zsock_destroy (&n1);
    sf_harness_destroy (&harness);
    //  @end
    printf ("OK\n");
}
