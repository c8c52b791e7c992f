/*  =========================================================================
    sf_verify_selftest - the self test of sf_verify (and restore
    --as-domain's scheduler side): through the admin endpoint of a
    scheduler running in-process, against a fake worker (sf_harness)

    Test code, compiled into sched_selftest only.
    =========================================================================
*/
#include "sf_sched_classes.h"
#include "sf_harness_selftest.h"

#define IMAGE "0f8e6b1c-0000-4000-8000-000000000001"
#define SHA "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define XML "<domain type='qemu'><name>vm1</name><devices/></domain>"

static void
s_refused (sf_harness_t *harness, const char *request, int code, const char *text)
{
    int64_t rows = sf_harness_job_rows (harness);
    json_t *reply = sf_harness_admin (harness, "%s", request);
    if (sf_harness_int (reply, "error.code") != code
    ||  !strstr (sf_harness_str (reply, "error.text"), text))
        fprintf (stderr, "\n%s: expected %d '%s', got %d '%s'\n", request, code, text,
                 (int) sf_harness_int (reply, "error.code"),
                 sf_harness_str (reply, "error.text"));
    assert (sf_harness_int (reply, "error.code") == code);
    json_decref (reply);
    assert (sf_harness_job_rows (harness) == rows);
}

//  J<n>'s result: image IMAGE-like of vm1 (as sf_harness_result), with xml

static void
s_snapshot_result (zsock_t *worker, const char *id, const char *xml)
{
    char uuid [40], path [64];
    snprintf (uuid, sizeof (uuid), "0f8e6b1c-0000-4000-8000-%012llu",
              strtoull (id + 1, NULL, 10));
    snprintf (path, sizeof (path), "/images/%s.qcow2", uuid);
    sf_image_t image = SF_IMAGE_INIT;
    image.store = "dir", image.id = uuid, image.path = path;
    image.size = 1 << 20, image.disk_target = "vda", image.format = "qcow2";
    image.sha256 = SHA;
    sf_image_t *images [] = { &image };
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    result.job_id = (char *) id, result.attempt = 1, result.ok = 1;
    result.strategy = "file-cold", result.consistency = "paused", result.resumed = 1;
    result.n_images = 1, result.images = images, result.bytes = 1 << 20;
    result.domain_xml = (char *) xml;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_RESULT, &result);
    sf_harness_send (worker, &env);
}

//  Receive the next JobAssign (skipping others)

static sf_envelope_t *
s_assign (zsock_t *worker)
{
    sf_envelope_t *env = sf_harness_recv (worker, 2000);
    while (env && env->body_case != SF_BODY_JOB_ASSIGN) {
        sf_wire_free (&env);
        env = sf_harness_recv (worker, 2000);
    }
    assert (env);
    return env;
}

void
sf_verify_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_verify: ");
    //  @selftest
    sf_harness_t *harness = sf_harness_new ("sf_verify_test", 5000);
    zsock_t *n1 = sf_harness_worker (harness);
    sf_harness_hello (n1, "n1");
    sf_harness_inventory (n1, "");
    json_t *reply = sf_harness_admin_until (harness, "{\"cmd\":\"instances\"}",
                                            "instances.2.name", "vm3", 2000);
    json_decref (reply);
    //  J1 makes IMAGE of vm1 and reports vm1's XML: it is kept
    reply = sf_harness_admin (harness, "{\"cmd\":\"snapshot\",\"instance\":\"vm1\"}");
    json_decref (reply);
    sf_envelope_t *env = s_assign (n1);
    sf_wire_free (&env);
    s_snapshot_result (n1, "J1", XML);
    reply = sf_harness_admin_until (harness, "{\"cmd\":\"job_show\",\"job_id\":\"J1\"}",
                                    "job.state", "done", 2000);
    json_decref (reply);
    char *xml = sf_harness_sql (harness, "SELECT xml FROM instance_xml WHERE job_id = 'J1'");
    assert (xml && streq (xml, XML));
    zstr_free (&xml);

    //  Refusals, nothing made
    s_refused (harness, "{\"cmd\":\"verify\",\"image\":\"nope\"}", SF_ENOENT, "no image");
    s_refused (harness, "{\"cmd\":\"verify\",\"image\":\"" IMAGE "\",\"node\":\"n9\"}",
               SF_ENOENT, "unknown node 'n9'");
    s_refused (harness, "{\"cmd\":\"verify\",\"image\":\"" IMAGE "\",\"boot\":2}",
               SF_EINVAL, "boot");
    s_refused (harness, "{\"cmd\":\"restore\",\"image\":\"" IMAGE "\"}", SF_EINVAL,
               "'as_domain'");
    s_refused (harness, "{\"cmd\":\"restore\",\"image\":\"" IMAGE "\",\"as_domain\":"
               "\"snapfleet-x\"}", SF_EINVAL, "not one snapfleet defines");
    s_refused (harness, "{\"cmd\":\"restore\",\"image\":\"" IMAGE "\",\"as_domain\":"
               "\"a/b\"}", SF_EINVAL, "not one snapfleet defines");

    //  verify: J2 on n1 carries the image, no XML without boot
    reply = sf_harness_admin (harness, "{\"cmd\":\"verify\",\"image\":\"" IMAGE "\"}");
    assert (streq (sf_harness_str (reply, "job.job_id"), "J2"));
    assert (streq (sf_harness_str (reply, "job.strategy"), "verify"));
    assert (streq (sf_harness_str (reply, "job.verify.image_id"), IMAGE));
    assert (json_is_null (sf_harness_get (reply, "job.verify.ok")));
    json_decref (reply);
    env = s_assign (n1);
    const sf_job_assign_t *assign = env->job_assign;
    assert (streq (assign->job_id, "J2") && assign->verify && !assign->restore);
    assert (!assign->verify->boot && streq (assign->verify->domain_xml, ""));
    assert (streq (assign->verify->image->sha256, SHA));
    sf_wire_free (&env);
    //  A verification does not make its instance busy
    reply = sf_harness_admin (harness, "{\"cmd\":\"snapshot\",\"instance\":\"vm1\"}");
    assert (streq (sf_harness_str (reply, "job.job_id"), "J3"));
    json_decref (reply);
    env = s_assign (n1);
    sf_wire_free (&env);
    //  Its finding is kept with the image
    sf_verify_result_t found = SF_VERIFY_RESULT_INIT;
    found.hash_ok = true, found.check_ok = true, found.text = "hash and qemu-img check ok";
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    result.job_id = "J2", result.attempt = 1, result.ok = true, result.strategy = "verify";
    result.verify = &found;
    sf_envelope_t made = sf_wire_envelope (SF_BODY_JOB_RESULT, &result);
    sf_harness_send (n1, &made);
    reply = sf_harness_admin_until (harness, "{\"cmd\":\"job_show\",\"job_id\":\"J2\"}",
                                    "job.state", "done", 2000);
    assert (json_is_true (sf_harness_get (reply, "job.verify.ok")));
    assert (json_is_true (sf_harness_get (reply, "job.verify.check_ok")));
    json_decref (reply);
    reply = sf_harness_admin (harness, "{\"cmd\":\"images\"}");
    assert (streq (sf_harness_str (reply, "images.0.id"), IMAGE));
    assert (streq (sf_harness_str (reply, "images.0.verify.job_id"), "J2"));
    assert (json_is_true (sf_harness_get (reply, "images.0.verify.ok")));
    json_decref (reply);

    //  verify --boot: J4 carries the XML; a failed one is the last word
    reply = sf_harness_admin (harness, "{\"cmd\":\"verify\",\"image\":\"" IMAGE "\","
                              "\"boot\":1}");
    assert (streq (sf_harness_str (reply, "job.job_id"), "J4"));
    json_decref (reply);
    env = s_assign (n1);
    assert (env->job_assign->verify->boot);
    assert (streq (env->job_assign->verify->domain_xml, XML));
    sf_wire_free (&env);
    found.check_ok = false, found.text = "qemu-img check: 1 error";
    result.job_id = "J4", result.ok = false;
    sf_error_info_t error = SF_ERROR_INFO_INIT;
    error.code = SF_ESTORE, error.text = "image failed its check";
    result.error = &error;
    made = sf_wire_envelope (SF_BODY_JOB_RESULT, &result);
    sf_harness_send (n1, &made);
    reply = sf_harness_admin_until (harness, "{\"cmd\":\"job_show\",\"job_id\":\"J4\"}",
                                    "job.state", "failed", 2000);
    assert (json_is_false (sf_harness_get (reply, "job.verify.ok")));
    assert (streq (sf_harness_str (reply, "job.verify.text"), "qemu-img check: 1 error"));
    json_decref (reply);
    reply = sf_harness_admin (harness, "{\"cmd\":\"images\"}");
    assert (streq (sf_harness_str (reply, "images.0.verify.job_id"), "J4"));
    assert (json_is_false (sf_harness_get (reply, "images.0.verify.ok")));
    json_decref (reply);

    //  A plain restore of it carries no XML (it goes with --as-domain only)
    reply = sf_harness_admin (harness, "{\"cmd\":\"restore\",\"image\":\"" IMAGE "\","
                              "\"to\":\"/srv/plain.qcow2\"}");
    assert (streq (sf_harness_str (reply, "job.job_id"), "J5"));
    json_decref (reply);
    env = s_assign (n1);
    assert (streq (env->job_assign->restore->to_file, "/srv/plain.qcow2"));
    assert (streq (env->job_assign->restore->as_domain, ""));
    assert (streq (env->job_assign->restore->domain_xml, ""));
    sf_wire_free (&env);

    //  restore --as-domain: J6 carries the name and the XML, no target
    reply = sf_harness_admin (harness, "{\"cmd\":\"restore\",\"image\":\"" IMAGE "\","
                              "\"as_domain\":\"vm1-back\"}");
    assert (streq (sf_harness_str (reply, "job.job_id"), "J6"));
    assert (streq (sf_harness_str (reply, "job.restore.as_domain"), "vm1-back"));
    json_decref (reply);
    env = s_assign (n1);
    assert (streq (env->job_assign->restore->as_domain, "vm1-back"));
    assert (streq (env->job_assign->restore->domain_xml, XML));
    assert (streq (env->job_assign->restore->to_file, ""));
    sf_wire_free (&env);
    //  An image whose job kept no XML, or one of several disks: refused
    sqlite3 *db = NULL;
    assert (sqlite3_open (sf_harness_cfg (harness)->database, &db) == SQLITE_OK);
    sqlite3_busy_timeout (db, 5000);
    assert (sqlite3_exec (db, "DELETE FROM instance_xml", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close (db);
    s_refused (harness, "{\"cmd\":\"restore\",\"image\":\"" IMAGE "\",\"as_domain\":\"x\"}",
               SF_ESTATE, "kept no domain XML");
    s_refused (harness, "{\"cmd\":\"verify\",\"image\":\"" IMAGE "\",\"boot\":1}",
               SF_ESTATE, "kept no domain XML");

    zsock_destroy (&n1);
    sf_harness_destroy (&harness);
    //  @end
    printf ("OK\n");
}
