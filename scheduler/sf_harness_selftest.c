/*  =========================================================================
    sf_harness_selftest - test harness: a scheduler running in-process,
    fake workers and an admin client (test code, see the header)

    The scheduler runs as a zactor on its own thread, exactly the object
    main() runs; only the endpoints (inproc:// or tcp://127.0.0.1:*) and
    the database (a temporary file) differ.
    =========================================================================
*/
#include "sf_sched_classes.h"
#include "sf_harness_selftest.h"

struct _sf_harness_t {
    sf_schedcfg_t cfg;          //  Owned strings
    char *bind;                 //  Owned: endpoints as configured, so that
    char *admin_bind;           //  a restart binds free ports again
    zactor_t *actor;            //  Owned: the scheduler
    zsock_t *admin;             //  Owned: admin client (DEALER)
    int next_id;                //  Admin request ids
    char *keys;                 //  Owned: key directory if CURVE, else NULL
    zcert_t *server;            //  Owned: the scheduler's key pair (CURVE)
    zcert_t *admin_cert;        //  Owned: the enrolled admin's (CURVE)
};

//  --------------------------------------------------------------------------
//  Lifecycle

static void
s_set (char **field, const char *value)
{
    free (*field);
    *field = strdup (value);
}

static void
s_start (sf_harness_t *self)
{
    s_set (&self->cfg.bind, self->bind);
    s_set (&self->cfg.admin_bind, self->admin_bind);
    self->actor = zactor_new (sf_sched_actor, &self->cfg);
    assert (self->actor);
    //  Learn the endpoints as bound (ephemeral tcp ports resolved)
    zstr_send (self->actor, "ENDPOINTS");
    char *workers = NULL, *admin = NULL;
    int rc = zstr_recvx (self->actor, &workers, &admin, NULL);
    assert (rc == 2);           //  Else the scheduler did not start: see stderr
    s_set (&self->cfg.bind, workers);
    s_set (&self->cfg.admin_bind, admin);
    zstr_free (&workers);
    zstr_free (&admin);
    self->admin = zsock_new (ZMQ_DEALER);
    assert (self->admin);
    if (self->keys)
        sf_cert_client (self->admin, self->admin_cert, self->server);
    int rc_connect = zsock_connect (self->admin, "%s", self->cfg.admin_bind);
    assert (rc_connect == 0);
    zsock_set_rcvtimeo (self->admin, 5000);
    zsock_set_linger (self->admin, 0);
}

static void
s_stop (sf_harness_t *self)
{
    zsock_destroy (&self->admin);
    zactor_destroy (&self->actor);
}

//  A key pair named name in the key directory, enrolled in subdir (if
//  not NULL)

static zcert_t *
s_keygen (sf_harness_t *self, const char *name, const char *subdir)
{
    sf_err_t err = SF_ERR_INIT;
    char *path = zsys_sprintf ("%s/%s", self->keys, name);
    if (sf_cert_keygen (path, name, &err))
        fprintf (stderr, "%s\n", err.text);
    zcert_t *cert = sf_cert_load (path, true, &err);
    assert (cert);
    zstr_free (&path);
    if (subdir) {
        path = zsys_sprintf ("%s/%s/%s", self->keys, subdir, name);
        int rc = zcert_save_public (cert, path);
        assert (rc == 0);
        zstr_free (&path);
    }
    return cert;
}

//  CURVE: keys for the scheduler and an admin, allow-list directories

static void
s_curve_setup (sf_harness_t *self)
{
    char dir [] = "/tmp/sf_harness_keys.XXXXXX";
    assert (mkdtemp (dir));
    self->keys = strdup (dir);
    char *workers = zsys_sprintf ("%s/workers", dir);
    char *admins = zsys_sprintf ("%s/admins", dir);
    assert (zsys_dir_create ("%s", workers) == 0 && zsys_dir_create ("%s", admins) == 0);
    self->server = s_keygen (self, "scheduler", NULL);
    self->admin_cert = s_keygen (self, "admin", "admins");
    char *cert = zsys_sprintf ("%s/scheduler", dir);
    s_set (&self->cfg.cert, cert);
    s_set (&self->cfg.workers, workers);
    s_set (&self->cfg.admins, admins);
    self->cfg.insecure = false;
    zstr_free (&cert);
    zstr_free (&workers);
    zstr_free (&admins);
}

sf_harness_t *
sf_harness_new (const char *name, int64_t node_timeout_ms)
{
    assert (name);
    sf_harness_t *self = (sf_harness_t *) zmalloc (sizeof (sf_harness_t));
    sf_schedcfg_init (&self->cfg);
    char text [256];
    bool curve = strncmp (name, "curve", 5) == 0;
    bool tcp = curve || strncmp (name, "tcp", 3) == 0;
    snprintf (text, sizeof (text), tcp? "tcp://127.0.0.1:*": "inproc://%s-workers", name);
    self->bind = strdup (text);
    snprintf (text, sizeof (text), tcp? "tcp://127.0.0.1:*": "inproc://%s-admin", name);
    self->admin_bind = strdup (text);
    snprintf (text, sizeof (text), "/tmp/sf_harness_%s_%d.db", name, (int) getpid ());
    s_set (&self->cfg.database, text);
    unlink (text);
    self->cfg.heartbeat_ms = 100;
    self->cfg.node_timeout_ms = node_timeout_ms;
    self->cfg.insecure = true;     //  inproc, or tcp on 127.0.0.1
    self->cfg.gc_interval_ms = 0;  //  no reconciler runs the tests did not ask for
    if (curve)
        s_curve_setup (self);
    s_start (self);
    return self;
}

static void
s_unlink_db (const char *path)
{
    char file [300];
    const char *suffixes [] = { "", "-wal", "-shm", NULL };
    for (int i = 0; suffixes [i]; i++) {
        snprintf (file, sizeof (file), "%s%s", path, suffixes [i]);
        unlink (file);
    }
}

void
sf_harness_destroy (sf_harness_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_harness_t *self = *self_p;
        s_stop (self);
        s_unlink_db (self->cfg.database);
        sf_schedcfg_release (&self->cfg);
        if (self->keys) {
            zdir_t *dir = zdir_new (self->keys, NULL);
            zdir_remove (dir, true);
            zdir_destroy (&dir);
        }
        free (self->keys);
        zcert_destroy (&self->server);
        zcert_destroy (&self->admin_cert);
        free (self->bind);
        free (self->admin_bind);
        free (self);
        *self_p = NULL;
    }
}

void
sf_harness_restart (sf_harness_t *self)
{
    assert (self);
    s_stop (self);
    s_start (self);
}

sf_schedcfg_t *
sf_harness_cfg (sf_harness_t *self)
{
    assert (self);
    return &self->cfg;
}

const char *
sf_harness_admin_endpoint (sf_harness_t *self)
{
    assert (self);
    return self->cfg.admin_bind;
}

//  --------------------------------------------------------------------------
//  Workers

zsock_t *
sf_harness_worker (sf_harness_t *self)
{
    assert (self);
    zsock_t *worker = zsock_new_dealer (self->cfg.bind);
    assert (worker);
    zsock_set_linger (worker, 0);
    return worker;
}

//  A DEALER with a new key pair named key (enrolled in subdir if not
//  NULL), connected to endpoint

static zsock_t *
s_client (sf_harness_t *self, const char *key, const char *subdir, const char *endpoint)
{
    zcert_t *cert = s_keygen (self, key, subdir);
    zsock_t *client = zsock_new (ZMQ_DEALER);
    assert (client);
    zsock_set_linger (client, 0);
    sf_cert_client (client, cert, self->server);
    zcert_destroy (&cert);
    int rc = zsock_connect (client, "%s", endpoint);
    assert (rc == 0);
    return client;
}

zsock_t *
sf_harness_worker_key (sf_harness_t *self, const char *key, bool enrolled)
{
    assert (self && self->keys && key);
    return s_client (self, key, enrolled? "workers": NULL, self->cfg.bind);
}

zsock_t *
sf_harness_admin_key (sf_harness_t *self, const char *key, bool enrolled)
{
    assert (self && self->keys && key);
    return s_client (self, key, enrolled? "admins": NULL, self->cfg.admin_bind);
}

void
sf_harness_send (zsock_t *worker, sf_envelope_t *env)
{
    sf_err_t err = SF_ERR_INIT;
    int rc = sf_wire_send (zsock_resolve (worker), NULL, env, &err);
    assert (rc == 0);
}

sf_envelope_t *
sf_harness_recv_any (zsock_t *worker, int timeout_ms)
{
    zpoller_t *poller = zpoller_new (worker, NULL);
    void *ready = zpoller_wait (poller, timeout_ms);
    zpoller_destroy (&poller);
    if (!ready)
        return NULL;
    sf_err_t err = SF_ERR_INIT;
    sf_envelope_t *env = sf_wire_recv (zsock_resolve (worker), NULL, &err);
    assert (env);
    return env;
}

sf_envelope_t *
sf_harness_recv (zsock_t *worker, int timeout_ms)
{
    int64_t deadline = sf_time_mono_ms () + timeout_ms;
    while (true) {
        int64_t left = deadline - sf_time_mono_ms ();
        sf_envelope_t *env = sf_harness_recv_any (worker, left > 0? (int) left: 0);
        if (!env || env->body_case != SF_BODY_ACKS)
            return env;
        sf_wire_free (&env);
    }
}

//  Split a comma-separated list in place into at most max items

static size_t
s_split (char *list, char **items, size_t max)
{
    size_t count = 0;
    char *save = NULL;
    for (char *item = strtok_r (list, ",", &save); item && count < max;
         item = strtok_r (NULL, ",", &save))
        items [count++] = item;
    return count;
}

void
sf_harness_hello_with (zsock_t *worker, const char *node, const char *strategies,
                       const char *running_jobs)
{
    sf_harness_hello_known (worker, node, strategies, running_jobs, NULL);
}

void
sf_harness_hello_known (zsock_t *worker, const char *node, const char *strategies,
                        const char *running_jobs, const char *finished_jobs)
{
    char *strategy_list = strdup (strategies? strategies: "file-live,file-cold,offline");
    char *job_list = strdup (running_jobs? running_jobs: "");
    char *finished_list = strdup (finished_jobs? finished_jobs: "");
    char *strategy_items [8], *job_items [16], *finished_items [16];
    sf_hello_t hello = SF_HELLO_INIT;
    hello.node = (char *) node;
    hello.software = "fake-worker 0";
    hello.max_jobs = 8;
    hello.strategies = strategy_items;
    hello.n_strategies = s_split (strategy_list, strategy_items, 8);
    hello.running_jobs = job_items;
    hello.n_running_jobs = s_split (job_list, job_items, 16);
    hello.finished_jobs = finished_items;
    hello.n_finished_jobs = s_split (finished_list, finished_items, 16);
    sf_envelope_t env = sf_wire_envelope (SF_BODY_HELLO, &hello);
    sf_harness_send (worker, &env);
    free (strategy_list);
    free (job_list);
    free (finished_list);
    sf_envelope_t *reply = sf_harness_recv (worker, 5000);
    assert (reply && reply->body_case == SF_BODY_WELCOME);
    assert (reply->welcome->heartbeat_ms == 100);
    sf_wire_free (&reply);
}

void
sf_harness_hello (zsock_t *worker, const char *node)
{
    sf_harness_hello_with (worker, node, NULL, NULL);
}

//  --------------------------------------------------------------------------
//  Messages a fake worker sends

void
sf_harness_inventory (zsock_t *worker, const char *suffix)
{
    char uuid1 [32], uuid2 [32], uuid3 [32], uuid4 [32];
    snprintf (uuid1, sizeof (uuid1), "u-vm1%s", suffix);
    snprintf (uuid2, sizeof (uuid2), "u-rbd%s", suffix);
    snprintf (uuid3, sizeof (uuid3), "u-off%s", suffix);
    snprintf (uuid4, sizeof (uuid4), "u-mix%s", suffix);
    sf_disk_t disk = SF_DISK_INIT, rbd = SF_DISK_INIT, second = SF_DISK_INIT;
    disk.target = "vda", disk.type = SF_DISK_FILE, disk.source = "/img/a.qcow2";
    disk.format = "qcow2", disk.virtual_size = 1 << 20;
    rbd.target = "vda", rbd.type = SF_DISK_RBD, rbd.source = "rbd/vm2";
    rbd.format = "raw", rbd.virtual_size = 1 << 30;
    second.target = "vdb", second.type = SF_DISK_FILE, second.source = "/img/b.qcow2";
    second.format = "qcow2", second.virtual_size = 1 << 20;
    sf_disk_t *disks [] = { &disk }, *rbd_disks [] = { &rbd }, *mixed [] = { &rbd, &second };
    sf_instance_t vm1 = SF_INSTANCE_INIT, vm2 = SF_INSTANCE_INIT, vm3 = SF_INSTANCE_INIT;
    sf_instance_t vm4 = SF_INSTANCE_INIT;
    vm1.uuid = uuid1, vm1.name = "vm1", vm1.state = SF_STATE_RUNNING;
    vm1.storage_class = "file", vm1.n_disks = 1, vm1.disks = disks;
    vm2.uuid = uuid2, vm2.name = "vm2", vm2.state = SF_STATE_RUNNING;
    vm2.storage_class = "rbd", vm2.n_disks = 1, vm2.disks = rbd_disks;
    vm3.uuid = uuid3, vm3.name = "vm3", vm3.state = SF_STATE_SHUTOFF;
    vm3.storage_class = "file", vm3.n_disks = 1, vm3.disks = disks;
    vm4.uuid = uuid4, vm4.name = "vm4", vm4.state = SF_STATE_RUNNING;
    vm4.storage_class = "mixed", vm4.n_disks = 2, vm4.disks = mixed;
    sf_instance_t *list [] = { &vm1, &vm2, &vm3, &vm4 };
    sf_inventory_t inventory = SF_INVENTORY_INIT;
    inventory.n_instances = 4;
    inventory.instances = list;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_INVENTORY, &inventory);
    sf_harness_send (worker, &env);
}

void
sf_harness_two_nodes (sf_harness_t *self, const char *suffix2, zsock_t **n1_p,
                      zsock_t **n2_p)
{
    assert (self && suffix2 && n1_p && n2_p);
    *n1_p = sf_harness_worker (self);
    *n2_p = sf_harness_worker (self);
    sf_harness_hello (*n1_p, "n1");
    sf_harness_inventory (*n1_p, "");
    sf_harness_hello (*n2_p, "n2");
    sf_harness_inventory (*n2_p, suffix2);
    json_t *reply = sf_harness_admin_until (self, "{\"cmd\":\"instances\",\"node\":\"n2\"}",
                                            "instances.3.name", "vm4", 2000);
    assert (streq (sf_harness_str (reply, "instances.3.name"), "vm4"));
    json_decref (reply);
}

void
sf_harness_beat (zsock_t *worker)
{
    sf_heartbeat_t beat = SF_HEARTBEAT_INIT;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_HEARTBEAT, &beat);
    sf_harness_send (worker, &env);
}

void
sf_harness_event (zsock_t *worker, const char *id, uint32_t attempt, int phase,
                  uint64_t ms)
{
    sf_job_event_t event = sf_wire_job_event (id, attempt, phase, ms, 0);
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_EVENT, &event);
    sf_harness_send (worker, &env);
}

void
sf_harness_result (zsock_t *worker, const char *id, uint32_t attempt)
{
    sf_harness_result_note (worker, id, attempt, "file-cold", NULL);
}

void
sf_harness_result_note (zsock_t *worker, const char *id, uint32_t attempt,
                        const char *strategy, const char *note)
{
    //  The image a dir store makes: a uuid (from the job's number), its file
    char uuid [40], path [64];
    snprintf (uuid, sizeof (uuid), "0f8e6b1c-0000-4000-8000-%012llu",
              id [0] == 'J'? strtoull (id + 1, NULL, 10) % 1000000000000ull: 0);
    snprintf (path, sizeof (path), "/images/%s.qcow2", uuid);
    sf_image_t image = SF_IMAGE_INIT;
    image.store = "dir", image.id = uuid, image.path = path;
    image.size = 3ull << 32, image.disk_target = "vda", image.format = "qcow2";
    image.sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    sf_image_t *images [] = { &image };
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    result.job_id = (char *) id, result.attempt = attempt, result.ok = 1;
    result.strategy = (char *) strategy, result.consistency = "paused";
    result.pause_ms = 150;
    result.convert_ms = 70, result.upload_ms = 5, result.bytes = 3ull << 32;
    result.n_images = 1, result.images = images, result.resumed = 1;
    sf_error_info_t info = SF_ERROR_INFO_INIT;
    info.text = (char *) note;
    if (note)
        result.error = &info;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_RESULT, &result);
    sf_harness_send (worker, &env);
}

const char *
sf_harness_str (json_t *json, const char *path)
{
    const char *text = json_string_value (sf_harness_get (json, path));
    return text? text: "";
}

int64_t
sf_harness_int (json_t *json, const char *path)
{
    return json_integer_value (sf_harness_get (json, path));
}

//  --------------------------------------------------------------------------
//  Admin client

static json_t *
s_request (sf_harness_t *self, const char *request)
{
    //  Wrap the request with an id so that replies can be matched
    json_t *json = json_loads (request, 0, NULL);
    assert (json_is_object (json));
    int id = ++self->next_id;
    json_object_set_new (json, "id", json_integer (id));
    char *text = json_dumps (json, JSON_COMPACT);
    json_decref (json);
    zstr_send (self->admin, text);
    free (text);
    while (true) {
        char *answer = zstr_recv (self->admin);
        assert (answer);        //  No reply in 5 seconds: scheduler stuck
        json_t *reply = json_loads (answer, 0, NULL);
        zstr_free (&answer);
        assert (reply);
        if (json_integer_value (json_object_get (reply, "id")) == id)
            return reply;
        json_decref (reply);
    }
}

json_t *
sf_harness_admin (sf_harness_t *self, const char *format, ...)
{
    assert (self);
    va_list args;
    va_start (args, format);
    char *request = zsys_vprintf (format, args);
    va_end (args);
    json_t *reply = s_request (self, request);
    zstr_free (&request);
    return reply;
}

json_t *
sf_harness_get (json_t *json, const char *path)
{
    char *copy = strdup (path);
    char *save = NULL;
    for (char *key = strtok_r (copy, ".", &save); key && json;
         key = strtok_r (NULL, ".", &save))
        json = json_is_array (json)? json_array_get (json, (size_t) atoi (key))
                                   : json_object_get (json, key);
    free (copy);
    return json;
}

json_t *
sf_harness_admin_until (sf_harness_t *self, const char *request, const char *path,
                        const char *want, int timeout_ms)
{
    assert (self);
    int64_t deadline = sf_time_mono_ms () + timeout_ms;
    while (true) {
        json_t *reply = s_request (self, request);
        const char *value = json_string_value (sf_harness_get (reply, path));
        if ((value && streq (value, want)) || sf_time_mono_ms () > deadline)
            return reply;
        json_decref (reply);
        zclock_sleep (20);
    }
}

sqlite3 *
sf_harness_lock (sf_harness_t *self)
{
    assert (self);
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2 (self->cfg.database, &db, SQLITE_OPEN_READWRITE, NULL);
    assert (rc == SQLITE_OK);
    sqlite3_busy_timeout (db, 10000);
    rc = sqlite3_exec (db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    assert (rc == SQLITE_OK);
    return db;
}

void
sf_harness_unlock (sqlite3 **db_p)
{
    assert (db_p && *db_p);
    int rc = sqlite3_exec (*db_p, "COMMIT", NULL, NULL, NULL);
    assert (rc == SQLITE_OK);
    sqlite3_close (*db_p);
    *db_p = NULL;
}

char *
sf_harness_sql (sf_harness_t *self, const char *format, ...)
{
    assert (self);
    va_list args;
    va_start (args, format);
    char *sql = zsys_vprintf (format, args);
    va_end (args);
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2 (self->cfg.database, &db, SQLITE_OPEN_READONLY, NULL);
    assert (rc == SQLITE_OK);
    sqlite3_stmt *stmt = NULL;
    rc = sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL);
    assert (rc == SQLITE_OK);
    char *value = NULL;
    rc = sqlite3_step (stmt);
    assert (rc == SQLITE_ROW || rc == SQLITE_DONE);
    if (rc == SQLITE_ROW)
        value = strdup (sqlite3_column_text (stmt, 0)
                        ? (const char *) sqlite3_column_text (stmt, 0): "");
    sqlite3_finalize (stmt);
    sqlite3_close (db);
    zstr_free (&sql);
    return value;
}

int64_t
sf_harness_job_rows (sf_harness_t *self)
{
    assert (self);
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2 (self->cfg.database, &db, SQLITE_OPEN_READONLY, NULL);
    assert (rc == SQLITE_OK);
    sqlite3_stmt *stmt = NULL;
    rc = sqlite3_prepare_v2 (db, "SELECT COUNT (*) FROM jobs", -1, &stmt, NULL);
    assert (rc == SQLITE_OK);
    rc = sqlite3_step (stmt);
    assert (rc == SQLITE_ROW);
    int64_t rows = sqlite3_column_int64 (stmt, 0);
    sqlite3_finalize (stmt);
    sqlite3_close (db);
    return rows;
}

//  --------------------------------------------------------------------------
//  Self test

void
sf_harness_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_harness: ");
    //  @selftest
    sf_harness_t *harness = sf_harness_new ("tcp-harness", 1000);
    json_t *reply = sf_harness_admin (harness, "{\"cmd\":\"status\"}");
    assert (json_is_true (json_object_get (reply, "ok")));
    assert (streq (json_string_value (sf_harness_get (reply, "status.version")), SF_VERSION));
    json_decref (reply);
    zsock_t *worker = sf_harness_worker (harness);
    sf_harness_hello (worker, "n1");
    reply = sf_harness_admin_until (harness, "{\"cmd\":\"nodes\"}", "nodes.0.name", "n1", 2000);
    assert (streq (json_string_value (sf_harness_get (reply, "nodes.0.state")), "up"));
    json_decref (reply);
    assert (sf_harness_job_rows (harness) == 0);
    zsock_destroy (&worker);

    //  Restart on the same database: the node is remembered
    sf_harness_restart (harness);
    reply = sf_harness_admin (harness, "{\"cmd\":\"nodes\"}");
    assert (streq (json_string_value (sf_harness_get (reply, "nodes.0.name")), "n1"));
    json_decref (reply);
    sf_harness_destroy (&harness);
    assert (harness == NULL);
    //  @end
    printf ("OK\n");
}
