/*  =========================================================================
    sf_admin_selftest - the self test of sf_admin: malformed requests over
    a real socket

    Test code, compiled into sched_selftest only: it drives a scheduler
    running in-process through sf_harness (see sf_harness_selftest.h).
    =========================================================================
*/
#include "sf_sched_classes.h"
#include "sf_harness_selftest.h"

//  --------------------------------------------------------------------------
//  Self test: malformed requests over a real socket

typedef struct {
    const char *request;
    int code;                   //  Expected error code
    const char *text;           //  Expected start of the error text
} bad_case_t;

static const bad_case_t s_bad_cases [] = {
    { "hello", SF_EPROTO, "request is not valid JSON" },
    { "", SF_EPROTO, "request is not valid JSON" },
    { "[1,2]", SF_EPROTO, "request must be a JSON object" },
    { "{\"cmd\":\"nodes\",\"cmd\":\"jobs\"}", SF_EPROTO, "request is not valid JSON" },
    { "{\"cmd\":5}", SF_EINVAL, "request needs a string 'cmd'" },
    { "{}", SF_EINVAL, "request needs a string 'cmd'" },
    { "{\"cmd\":\"format_disk\"}", SF_EINVAL, "unknown command 'format_disk'" },
    { "{\"cmd\":\"nodes\",\"verbose\":true}", SF_EINVAL,
      "unknown argument 'verbose' for command 'nodes'" },
    { "{\"cmd\":\"snapshot\"}", SF_EINVAL, "command 'snapshot' needs argument 'instance'" },
    { "{\"cmd\":\"snapshot\",\"instance\":42}", SF_EINVAL,
      "argument 'instance' must be a string" },
    { "{\"cmd\":\"snapshot\",\"instance\":\"vm1\",\"strategy\":\"\"}", SF_EINVAL,
      "argument 'strategy' must be 1 to" },
    { "{\"cmd\":\"snapshot\",\"instance\":\"vm1\",\"strategy\":null}", SF_EINVAL,
      "argument 'strategy' must be a string" },
    { "{\"cmd\":\"instances\",\"node\":\"\"}", SF_EINVAL, "argument 'node' must be 1 to" },
    { "{\"cmd\":\"status\",\"id\":[1]}", SF_EINVAL, "'id' must be an integer" },
    //  Numbers are range-checked before any arithmetic: max + 1, min - 1,
    //  INT64_MAX, INT64_MIN, UINT64_MAX, floats, strings that are no numbers
#define PLAN "{\"cmd\":\"plan\",\"select\":{\"all\":true},"
    { PLAN "\"priority\":1000001}", SF_EINVAL,
      "argument 'priority' must be between -1000000 and 1000000, not 1000001" },
    { PLAN "\"priority\":-1000001}", SF_EINVAL, "argument 'priority' must be between" },
    { PLAN "\"priority\":9223372036854775807}", SF_EINVAL,
      "argument 'priority' must be between -1000000 and 1000000, not 9223372036854775807" },
    { PLAN "\"priority\":-9223372036854775808}", SF_EINVAL,
      "argument 'priority' must be between" },
    { PLAN "\"priority\":\"9223372036854775807\"}", SF_EINVAL,
      "argument 'priority' must be an integer between" },
    { PLAN "\"priority\":\"-2000000\"}", SF_EINVAL,
      "argument 'priority' must be between -1000000 and 1000000, not -2000000" },
    { PLAN "\"priority\":1.5}", SF_EINVAL, "argument 'priority' must be an integer" },
    { PLAN "\"priority\":\"1e3\"}", SF_EINVAL, "argument 'priority' must be an integer" },
    { PLAN "\"priority\":\" 5\"}", SF_EINVAL, "argument 'priority' must be an integer" },
    { PLAN "\"priority\":true}", SF_EINVAL, "argument 'priority' must be an integer" },
    { PLAN "\"deadline\":-1}", SF_EINVAL,
      "argument 'deadline' must be between 0 and 253402300799999, not -1" },
    { PLAN "\"deadline\":253402300800000}", SF_EINVAL, "argument 'deadline' must be between" },
    { PLAN "\"deadline\":18446744073709551615}", SF_EPROTO, "request is not valid JSON" },
    { PLAN "\"window\":-1}", SF_EINVAL, "argument 'window' must be between 0 and 31622400000" },
    { PLAN "\"window\":31622400001}", SF_EINVAL, "argument 'window' must be between" },
    { "{\"cmd\":\"bulk_create\",\"select\":{\"all\":true},\"window\":9223372036854775807}",
      SF_EINVAL, "argument 'window' must be between" },
    //  Found by tests/fuzz (fuzz_admin): now + window overflowed
    { "{\"cmd\":\"plan\",\"select\":{\"all\":true},\"window\":9223372036854775807}",
      SF_EINVAL, "argument 'window' must be between" },
    { "{\"cmd\":\"bulk_create\",\"select\":{\"all\":true},\"deadline\":"
      "-1000000000000000000}", SF_EINVAL, "argument 'deadline' must be between" },
    { "{\"cmd\":\"gc\",\"dry_run\":2}", SF_EINVAL,
      "argument 'dry_run' must be between 0 and 1, not 2" },
    { "{\"cmd\":\"gc\",\"node\":7}", SF_EINVAL, "argument 'node' must be a string" },
    { "{\"cmd\":\"gc\",\"force\":1}", SF_EINVAL, "unknown argument 'force'" },
    { "{\"cmd\":\"gc_show\"}", SF_EINVAL, "command 'gc_show' needs argument 'run'" },
    { NULL }
};

static json_t *
s_test_call (zsock_t *client, const void *data, size_t size)
{
    zframe_t *frame = zframe_new (data, size);
    int rc = zframe_send (&frame, client, 0);
    assert (rc == 0);
    char *text = zstr_recv (client);
    assert (text);
    json_t *reply = json_loads (text, 0, NULL);
    assert (reply);
    zstr_free (&text);
    return reply;
}

static void
s_test_expect_error (json_t *reply, int code, const char *text)
{
    assert (json_is_false (json_object_get (reply, "ok")));
    assert (json_integer_value (sf_harness_get (reply, "error.code")) == code);
    const char *got = json_string_value (sf_harness_get (reply, "error.text"));
    if (!got || strncmp (got, text, strlen (text)))
        fprintf (stderr, "\nexpected '%s', got '%s'\n", text, got? got: "(null)");
    assert (got && strncmp (got, text, strlen (text)) == 0);
}

static void
s_test_frames (zsock_t *client, const char *endpoint)
{
    //  Too large, binary, several frames
    size_t size = SF_ADMIN_MAX_REQUEST + 1;
    char *large = (char *) zmalloc (size);
    memset (large, ' ', size);
    json_t *reply = s_test_call (client, large, size);
    s_test_expect_error (reply, SF_EPROTO, "request of 65537 bytes exceeds");
    json_decref (reply);
    free (large);
    reply = s_test_call (client, "\0\xff\x01{", 4);
    s_test_expect_error (reply, SF_EPROTO, "request is not valid JSON");
    json_decref (reply);
    zstr_sendx (client, "{\"cmd\":\"nodes\"}", "{\"cmd\":\"jobs\"}", "x", NULL);
    char *text = zstr_recv (client);
    reply = json_loads (text, 0, NULL);
    zstr_free (&text);
    s_test_expect_error (reply, SF_EPROTO, "request must be one frame, not 3");
    json_decref (reply);

    //  A REQ client gets its delimiter back
    zsock_t *req = zsock_new_req (endpoint);
    zstr_send (req, "{\"cmd\":\"jobs\",\"id\":\"r1\"}");
    text = zstr_recv (req);
    assert (text && streq (text, "{\"ok\":true,\"jobs\":[],\"more\":false,\"next\":null,\"id\":\"r1\"}"));
    zstr_free (&text);
    zsock_destroy (&req);
}

//  Run sql (printf-style) on the harness scheduler's database, on a
//  connection of our own (as another writer would)

static void
s_test_exec (sf_harness_t *harness, const char *format, ...)
{
    char *path = sf_harness_sql (harness, "SELECT file FROM pragma_database_list"
                                          " WHERE name = 'main'");
    assert (path);
    va_list args;
    va_start (args, format);
    char *sql = zsys_vprintf (format, args);
    va_end (args);
    sqlite3 *db = NULL;
    int rc = sqlite3_open (path, &db);
    assert (rc == SQLITE_OK);
    sqlite3_busy_timeout (db, 5000);
    rc = sqlite3_exec (db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        fprintf (stderr, "\n%s: %s\n", sql, sqlite3_errmsg (db));
    assert (rc == SQLITE_OK);
    sqlite3_close (db);
    zstr_free (&sql);
    free (path);
}

//  Walk the pages of cmd (limit rows each) and return the key of every
//  row joined by ','; *pages_p the number of pages. Caller frees it.

static char *
s_test_pages (sf_harness_t *harness, const char *cmd, const char *list, const char *key,
              int limit, int *pages_p)
{
    char *joined = strdup ("");
    char *after = NULL;
    *pages_p = 0;
    while (true) {
        json_t *request = json_pack ("{s:s, s:i}", "cmd", cmd, "limit", limit);
        if (after)
            json_object_set_new (request, "after", json_string (after));
        char *text = json_dumps (request, JSON_COMPACT);
        json_decref (request);
        json_t *reply = sf_harness_admin (harness, "%s", text);
        free (text);
        assert (json_is_true (json_object_get (reply, "ok")));
        json_t *rows = json_object_get (reply, list);
        assert ((int) json_array_size (rows) <= limit);
        size_t index;
        json_t *row;
        json_array_foreach (rows, index, row) {
            char *longer = zsys_sprintf ("%s%s%s", joined, *joined? ",": "",
                                         json_string_value (json_object_get (row, key)));
            free (joined);
            joined = longer;
        }
        (*pages_p)++;
        free (after);
        after = NULL;
        bool more = json_is_true (json_object_get (reply, "more"));
        const char *next = json_string_value (json_object_get (reply, "next"));
        assert (more == (next != NULL));
        if (more) {
            assert ((int) json_array_size (rows) == limit);
            after = strdup (next);
        }
        json_decref (reply);
        if (!more)
            break;
    }
    return joined;
}

//  jobs, instances and images come in pages that together hold every
//  row once, in order; bad cursors and limits are refused

static void
s_test_pagination (sf_harness_t *harness)
{
    s_test_exec (harness, "INSERT INTO nodes (name, state, last_seen)"
                                   " VALUES ('pg', 'down', 0)");
    const char *names [] = { "vm-e", "vm-b", "vm-d", "vm-a", "vm-c" };
    for (int i = 0; i < 5; i++) {
        s_test_exec (harness, "INSERT INTO instances (node, uuid, name, state,"
                              " storage_class, disks) VALUES ('pg', 'u%d', '%s', 'running',"
                              " 'file', '[]')", i, names [i]);
        s_test_exec (harness, "INSERT INTO jobs (id, instance_uuid, instance_name,"
                              " node, state, phase, attempt, strategy, created, updated)"
                              " VALUES ('PG%d', 'u%d', '%s', 'pg', 'done', 'done', 1,"
                              " 'file-cold', %d, %d)", i, i, names [i], i, i);
        s_test_exec (harness, "INSERT INTO images (store, id, path, size, sha256,"
                              " job_id, instance_uuid, instance_name, disk_target, format,"
                              " created) VALUES ('s', 'img%d', 'p', 1, '', 'PG%d', 'u%d',"
                              " '%s', 'vda', 'raw', %d)", 4 - i, i, i, names [i], 100 - i);
    }
    int pages;
    char *all = s_test_pages (harness, "jobs", "jobs", "job_id", 2, &pages);
    assert (streq (all, "PG0,PG1,PG2,PG3,PG4") && pages == 3);
    free (all);
    all = s_test_pages (harness, "jobs", "jobs", "job_id", 5, &pages);
    assert (streq (all, "PG0,PG1,PG2,PG3,PG4") && pages == 1);
    free (all);
    all = s_test_pages (harness, "instances", "instances", "name", 2, &pages);
    assert (streq (all, "vm-a,vm-b,vm-c,vm-d,vm-e") && pages == 3);
    free (all);
    all = s_test_pages (harness, "images", "images", "id", 3, &pages);
    assert (streq (all, "img0,img1,img2,img3,img4") && pages == 2);
    free (all);

    //  A cursor is a stable key: a row added before it is not seen again
    json_t *reply = sf_harness_admin (harness, "{\"cmd\":\"instances\",\"limit\":2}");
    char *next = strdup (json_string_value (json_object_get (reply, "next")));
    json_decref (reply);
    s_test_exec (harness, "INSERT INTO instances (node, uuid, name, state,"
                          " storage_class, disks) VALUES ('pg', 'u9', 'vm-0', 'running',"
                          " 'file', '[]')");
    json_t *request = json_pack ("{s:s, s:s, s:i}", "cmd", "instances", "after", next,
                                 "limit", 10);
    char *text = json_dumps (request, JSON_COMPACT);
    reply = sf_harness_admin (harness, "%s", text);
    assert (json_array_size (json_object_get (reply, "instances")) == 3);
    assert (streq (sf_harness_str (reply, "instances.0.name"), "vm-c"));
    assert (json_is_false (json_object_get (reply, "more")));
    assert (json_is_null (json_object_get (reply, "next")));
    json_decref (reply);
    json_decref (request);
    free (text);
    free (next);

    //  Bad cursors and limits
    const struct { const char *request; const char *error; } bad [] = {
        { "{\"cmd\":\"jobs\",\"after\":\"abc\"}", "'abc' is not a cursor of the jobs" },
        { "{\"cmd\":\"jobs\",\"after\":\"-1\"}", "'-1' is not a cursor of the jobs" },
        { "{\"cmd\":\"instances\",\"after\":\"[1,2,3]\"}", "'[1,2,3]' is not a cursor" },
        { "{\"cmd\":\"images\",\"after\":\"[\\\"a\\\",\\\"b\\\",\\\"c\\\"]\"}",
          "'[\"a\",\"b\",\"c\"]' is not a cursor" },
        { "{\"cmd\":\"jobs\",\"limit\":0}", "argument 'limit' must be between 1 and 10000" },
        { "{\"cmd\":\"jobs\",\"limit\":10001}", "argument 'limit' must be between 1 and" },
        { "{\"cmd\":\"images\",\"limit\":-1}", "argument 'limit' must be between" },
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad [0]); i++) {
        reply = sf_harness_admin (harness, "%s", bad [i].request);
        s_test_expect_error (reply, SF_EINVAL, bad [i].error);
        json_decref (reply);
    }
}

//  gc through the admin endpoint and a worker: the run is started at once,
//  the worker gets GcList, its answer is decided against the catalogue,
//  and gc_show reads the run; a dry run asks for no removal; a node that
//  is not connected, or none at all, is an error

static void
s_test_gc (sf_harness_t *harness)
{
    json_t *reply = sf_harness_admin (harness, "{\"cmd\":\"gc\"}");
    s_test_expect_error (reply, SF_EINVAL, "no node to reconcile");
    json_decref (reply);
    reply = sf_harness_admin (harness, "{\"cmd\":\"gc\",\"node\":\"n9\"}");
    s_test_expect_error (reply, SF_ENODE, "node 'n9' is not connected");
    json_decref (reply);
    reply = sf_harness_admin (harness, "{\"cmd\":\"gc_show\",\"run\":\"G99\"}");
    s_test_expect_error (reply, SF_ENOENT, "no gc run 'G99'");
    json_decref (reply);

    zsock_t *worker = sf_harness_worker (harness);
    sf_harness_hello (worker, "gc1");
    reply = sf_harness_admin (harness, "{\"cmd\":\"gc\",\"dry_run\":1}");
    assert (json_is_true (json_object_get (reply, "ok")));
    char run [32];
    snprintf (run, sizeof (run), "%s", json_string_value (sf_harness_get (reply, "gc.id")));
    assert (streq (json_string_value (sf_harness_get (reply, "gc.state")), "running"));
    json_decref (reply);
    sf_envelope_t *env = sf_harness_recv (worker, 5000);
    while (env && env->body_case != SF_BODY_GC_LIST) {
        sf_wire_free (&env);
        env = sf_harness_recv (worker, 5000);
    }
    assert (env && sf_naming_id_valid (env->gc_list->catalog_id));
    sf_holding_t held = SF_HOLDING_INIT;
    held.kind = SF_HOLDING_TEMP, held.name = "0b6e1f00", held.job_id = "J77";
    held.bytes = 4096, held.age_ms = 24 * 3600 * 1000;
    sf_holding_t *ptrs [] = { &held };
    sf_gc_holdings_t holdings = SF_GC_HOLDINGS_INIT;
    holdings.request_id = env->gc_list->request_id;
    holdings.holdings = ptrs, holdings.n_holdings = 1;
    holdings.store_complete = holdings.rbd_complete = true;
    sf_envelope_t answer = sf_wire_envelope (SF_BODY_GC_HOLDINGS, &holdings);
    sf_harness_send (worker, &answer);
    sf_wire_free (&env);
    char request [64];
    snprintf (request, sizeof (request), "{\"cmd\":\"gc_show\",\"run\":\"%s\"}", run);
    reply = sf_harness_admin_until (harness, request, "gc.state", "done", 5000);
    assert (streq (json_string_value (sf_harness_get (reply, "gc.nodes.0.state")), "done"));
    assert (streq (json_string_value (sf_harness_get (reply, "gc.nodes.0.orphans.0.reason")),
                   "job J77 unknown to this catalogue"));
    assert (json_array_size (sf_harness_get (reply, "gc.nodes.0.removed")) == 0);
    json_decref (reply);
    //  A dry run sends no GcRemove
    env = sf_harness_recv (worker, 300);
    assert (!env || env->body_case != SF_BODY_GC_REMOVE);
    sf_wire_free (&env);
    zsock_destroy (&worker);
}

void
sf_admin_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_admin: ");
    //  @selftest
    sf_harness_t *harness = sf_harness_new ("sf_admin_test", 5000);
    zsock_t *client = zsock_new_dealer (sf_harness_admin_endpoint (harness));
    assert (client);
    zsock_set_rcvtimeo (client, 5000);
    int invalid = 0;
    for (const bad_case_t *bad = s_bad_cases; bad->request; bad++, invalid++) {
        json_t *reply = s_test_call (client, bad->request, strlen (bad->request));
        s_test_expect_error (reply, bad->code, bad->text);
        json_decref (reply);
    }
    s_test_frames (client, sf_harness_admin_endpoint (harness));
    invalid += 3;

    //  The boundary values themselves are accepted
    const char *good_numbers [] = {
        PLAN "\"priority\":1000000}", PLAN "\"priority\":-1000000}",
        PLAN "\"priority\":\"-1000000\"}", PLAN "\"priority\":0}",
        PLAN "\"deadline\":0}", PLAN "\"deadline\":253402300799999}",
        PLAN "\"window\":0}", PLAN "\"window\":31622400000}", NULL
    };
    for (int i = 0; good_numbers [i]; i++) {
        json_t *reply = sf_harness_admin (harness, "%s", good_numbers [i]);
        if (!json_is_true (json_object_get (reply, "ok")))
            fprintf (stderr, "\n%s: %s\n", good_numbers [i],
                     json_string_value (sf_harness_get (reply, "error.text")));
        assert (json_is_true (json_object_get (reply, "ok")));
        json_decref (reply);
    }

    //  Valid requests on an empty scheduler
    json_t *reply = sf_harness_admin (harness, "{\"cmd\":\"job_show\",\"job_id\":\"J9\"}");
    s_test_expect_error (reply, SF_ENOENT, "no job 'J9'");
    json_decref (reply);
    //  A well-formed request with an unknown strategy fails in the command
    reply = sf_harness_admin (harness,
        "{\"cmd\":\"snapshot\",\"instance\":\"vm1\",\"strategy\":\"warp\"}");
    s_test_expect_error (reply, SF_EINVAL,
                         "unknown strategy 'warp' (known: file-live, file-cold, rbd, mixed, offline)");
    json_decref (reply);
    reply = sf_harness_admin (harness, "{\"cmd\":\"images\"}");
    assert (json_is_true (json_object_get (reply, "ok")));
    assert (json_array_size (json_object_get (reply, "images")) == 0);
    json_decref (reply);
    reply = sf_harness_admin (harness, "{\"cmd\":\"instances\",\"node\":\"n1\"}");
    assert (json_array_size (json_object_get (reply, "instances")) == 0);
    json_decref (reply);
    reply = sf_harness_admin (harness, "{\"cmd\":\"status\"}");
    assert (json_integer_value (sf_harness_get (reply, "status.admin_invalid")) == invalid);
    assert (json_integer_value (sf_harness_get (reply, "status.peers_refused")) == 0);
    json_decref (reply);
    //  cancel checks its own arguments: each refusal names what is wrong
    const struct { const char *request; int code; const char *text; } cancels [] = {
        { "{\"cmd\":\"cancel\"}", SF_EINVAL,
          "command 'cancel' needs either 'job_ids' or 'bulk_id'" },
        { "{\"cmd\":\"cancel\",\"job_ids\":[\"J1\"],\"bulk_id\":\"B1\"}", SF_EINVAL,
          "command 'cancel' needs either 'job_ids' or 'bulk_id'" },
        { "{\"cmd\":\"cancel\",\"job_ids\":[]}", SF_EINVAL,
          "argument 'job_ids' must be a list of 1 to 1000 job ids" },
        { "{\"cmd\":\"cancel\",\"job_ids\":{}}", SF_EINVAL,
          "argument 'job_ids' must be a list of 1 to 1000 job ids" },
        { "{\"cmd\":\"cancel\",\"job_ids\":[\"J1\",null]}", SF_EINVAL,
          "argument 'job_ids' must hold job ids (strings of 1 to 64 bytes)" },
        { "{\"cmd\":\"cancel\",\"job_ids\":[\"\"]}", SF_EINVAL,
          "argument 'job_ids' must hold job ids" },
        { "{\"cmd\":\"cancel\",\"bulk_id\":7}", SF_EINVAL,
          "argument 'bulk_id' must be a string of 1 to 64 bytes" },
        { "{\"cmd\":\"cancel\",\"bulk_id\":\"B1\",\"all\":true}", SF_EINVAL,
          "unknown argument 'all' for command 'cancel'" },
        { "{\"cmd\":\"cancel\",\"bulk_id\":\"B1\"}", SF_ENOENT, "no bulk 'B1'" },
    };
    for (size_t i = 0; i < sizeof (cancels) / sizeof (cancels [0]); i++) {
        reply = sf_harness_admin (harness, "%s", cancels [i].request);
        s_test_expect_error (reply, cancels [i].code, cancels [i].text);
        json_decref (reply);
    }
    //  1001 ids are too many; an unknown job is refused in the answer
    json_t *ids = json_array ();
    for (int i = 0; i < 1001; i++)
        json_array_append_new (ids, json_string ("J1"));
    json_t *request = json_pack ("{s:s, s:o}", "cmd", "cancel", "job_ids", ids);
    char *text = json_dumps (request, JSON_COMPACT);
    reply = sf_harness_admin (harness, "%s", text);
    s_test_expect_error (reply, SF_EINVAL, "argument 'job_ids' must be a list of 1 to 1000");
    json_decref (reply);
    free (text);
    json_decref (request);
    reply = sf_harness_admin (harness, "{\"cmd\":\"cancel\",\"job_ids\":[\"J9\"]}");
    assert (json_is_true (json_object_get (reply, "ok")));
    assert (streq (sf_harness_str (reply, "cancel.0.outcome"), "refused"));
    assert (sf_harness_int (reply, "cancel.0.error.code") == SF_ENOENT);
    assert (streq (sf_harness_str (reply, "cancel.0.error.text"), "no job 'J9'"));
    json_decref (reply);
    s_test_pagination (harness);
    s_test_gc (harness);

    zsock_destroy (&client);
    sf_harness_destroy (&harness);
    //  @end
    printf ("OK\n");
}
