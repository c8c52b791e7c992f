/*  =========================================================================
    sf_store_selftest - the self test of sf_store (the database: schema and
    migrations, nodes, instances and their ambiguity, the files' modes)
    =========================================================================
*/
#include "sf_sched_classes.h"
#include <sys/stat.h>

//  Self test of sf_store_secure_files: loose modes are fixed, a symlink
//  and a file that is not ours are refused

static void
s_test_secure_files (void)
{
    sf_err_t err = SF_ERR_INIT;
    char dir [] = "/tmp/sf_store_secure_XXXXXX";
    assert (mkdtemp (dir));
    char *db = zsys_sprintf ("%s/s.db", dir);
    char *wal = zsys_sprintf ("%s/s.db-wal", dir);
    char *shm = zsys_sprintf ("%s/s.db-shm", dir);
    assert (sf_store_secure_files (db, &err) == 0);         //  None exist yet
    int fd = open (db, O_CREAT | O_WRONLY, 0644);
    assert (fd >= 0);
    fchmod (fd, 0666);
    close (fd);
    fd = open (wal, O_CREAT | O_WRONLY, 0644);
    assert (fd >= 0);
    fchmod (fd, 0644);
    close (fd);
    assert (sf_store_secure_files (db, &err) == 0);
    struct stat st;
    assert (stat (db, &st) == 0 && (st.st_mode & 0777) == 0600);
    assert (stat (wal, &st) == 0 && (st.st_mode & 0777) == 0600);
    //  An existing database opens with its -wal and -shm private too
    sf_store_t *store = sf_store_new (db, &err);
    assert (store);
    assert (stat (shm, &st) == 0 && (st.st_mode & 077) == 0);
    sf_store_destroy (&store);
    unlink (shm);
    //  A symlink in the database's place is refused
    assert (symlink (db, shm) == 0);
    assert (sf_store_secure_files (db, &err) == -1);
    assert (strstr (err.text, "s.db-shm' cannot be opened") && strstr (err.text, "symlink"));
    unlink (shm);
    //  A file of another user is refused (root can make one: daemon's)
    if (geteuid () == 0 && chown (db, 1, 1) == 0) {
        assert (sf_store_secure_files (db, &err) == -1);
        assert (strstr (err.text, "belongs to uid 1") && strstr (err.text, "not ours"));
    }
    else
        printf ("(cannot chown: the test of another user's file does not run) ");
    unlink (wal);
    unlink (db);
    rmdir (dir);
    zstr_free (&db);
    zstr_free (&wal);
    zstr_free (&shm);
}


static void
s_test_inventory (sf_store_t *store)
{
    sf_err_t err = SF_ERR_INIT;
    sf_disk_t disk = SF_DISK_INIT;
    disk.target = "vda";
    disk.type = SF_DISK_FILE;
    disk.source = "/img/vm1.qcow2";
    disk.format = "qcow2";
    disk.virtual_size = 10ull << 30;
    char *chain [] = { "/img/base.qcow2" };
    disk.n_backing_chain = 1;
    disk.backing_chain = chain;
    sf_disk_t *disks [] = { &disk };
    sf_instance_t vm1 = SF_INSTANCE_INIT, vm2 = SF_INSTANCE_INIT;
    vm1.uuid = "u1", vm1.name = "vm1", vm1.state = SF_STATE_RUNNING;
    vm1.storage_class = "file", vm1.n_disks = 1, vm1.disks = disks;
    vm2.uuid = "u2", vm2.name = "vm2", vm2.state = SF_STATE_SHUTOFF;
    vm2.storage_class = "rbd";
    sf_instance_t vm3 = SF_INSTANCE_INIT;
    vm3.uuid = "u3", vm3.name = "vm3", vm3.state = SF_STATE_OTHER;
    vm3.storage_class = "file", vm3.n_disks = 1, vm3.disks = disks;
    sf_instance_t *list [] = { &vm1, &vm2, &vm3 };
    sf_inventory_t inventory = SF_INVENTORY_INIT;
    inventory.n_instances = 3;
    inventory.instances = list;
    assert (sf_store_inventory (store, "n1", &inventory, &err) == 0);

    json_t *all = sf_store_instances_json (store, NULL, NULL, &err);
    assert (json_array_size (all) == 3);
    //  No strategy for an instance that cannot be captured: null
    assert (json_is_null (json_object_get (json_array_get (all, 2), "strategy")));
    json_t *first = json_array_get (all, 0);
    assert (streq (json_string_value (json_object_get (first, "strategy")), "file-live"));
    json_t *jdisk = json_array_get (json_object_get (first, "disks"), 0);
    assert (json_integer_value (json_object_get (jdisk, "virtual_size")) == 10ll << 30);
    assert (streq (json_string_value (json_object_get (jdisk, "type")), "file"));
    assert (json_array_size (json_object_get (jdisk, "backing_chain")) == 1);
    //  A shut-off instance on RBD is captured offline
    assert (streq (json_string_value (json_object_get (json_array_get (all, 1), "strategy")),
                   "offline"));
    json_decref (all);

    //  The same as typed records
    zlistx_t *recs = sf_store_instances (store, "n1", "vm1", &err);
    assert (recs && zlistx_size (recs) == 1);
    sf_instance_rec_t *rec = (sf_instance_rec_t *) zlistx_first (recs);
    assert (streq (rec->uuid, "u1") && streq (rec->node, "n1"));
    assert (streq (rec->state, "running") && streq (rec->storage_class, "file"));
    assert (rec->n_disks == 1 && streq (rec->disks [0].type, "file"));
    assert (streq (rec->disks [0].source, "/img/vm1.qcow2"));
    assert (streq (rec->disks [0].target, "vda"));
    assert (rec->disks [0].virtual_size == 10ll << 30);
    assert (zhashx_size (rec->tags) == 0);
    zlistx_destroy (&recs);

    json_t *found = sf_store_instances_json (store, NULL, "u2", &err);
    assert (json_array_size (found) == 1);
    json_decref (found);
    found = sf_store_instances_json (store, "n2", NULL, &err);
    assert (json_array_size (found) == 0);
    json_decref (found);

    //  A new inventory replaces the old one
    inventory.n_instances = 1;
    assert (sf_store_inventory (store, "n1", &inventory, &err) == 0);
    all = sf_store_instances_json (store, NULL, NULL, &err);
    assert (json_array_size (all) == 1);
    json_decref (all);
    //  Inventory of a node never seen violates the foreign key: nothing kept
    assert (sf_store_inventory (store, "ghost", &inventory, &err) == -1);
    assert (err.code == SF_EDB);
}

//  The ambiguous column of uuid on node, "" if clear ("-" if no such row).
//  Caller frees.

static char *
s_test_ambiguous (sf_store_t *store, const char *node, const char *uuid)
{
    sf_err_t err = SF_ERR_INIT;
    zlistx_t *recs = sf_store_instances (store, node, uuid, &err);
    assert (recs);
    sf_instance_rec_t *rec = (sf_instance_rec_t *) zlistx_first (recs);
    char *ambiguous = strdup (rec? rec->ambiguous: "-");
    assert (!rec || streq (rec->uuid, uuid));
    zlistx_destroy (&recs);
    return ambiguous;
}

//  Send node an inventory of one instance uuid named name

static void
s_test_one (sf_store_t *store, const char *node, const char *uuid, const char *name)
{
    sf_err_t err = SF_ERR_INIT;
    sf_instance_t vm = SF_INSTANCE_INIT;
    vm.uuid = (char *) uuid, vm.name = (char *) name, vm.storage_class = "file";
    sf_instance_t *list [] = { &vm };
    sf_inventory_t inventory = SF_INVENTORY_INIT;
    inventory.n_instances = uuid? 1: 0, inventory.instances = list;
    assert (sf_store_inventory (store, node, &inventory, &err) == 0);
}

//  An instance is (node, uuid): another node's inventory never overwrites
//  a row, and a uuid two nodes report is ambiguous on both until one does

static void
s_test_ambiguity (sf_store_t *store)
{
    sf_err_t err = SF_ERR_INIT;
    assert (sf_store_node_hello (store, "n4", "", 1, 1, &err) == 0);
    assert (sf_store_node_hello (store, "n5", "", 1, 1, &err) == 0);
    char *value = s_test_ambiguous (store, "n1", "u1");
    assert (streq (value, ""));
    free (value);
    s_test_one (store, "n4", "u1", "impostor");
    value = s_test_ambiguous (store, "n1", "u1");
    assert (streq (value, "uuid also reported by node 'n4'"));
    free (value);
    value = s_test_ambiguous (store, "n4", "u1");
    assert (streq (value, "uuid also reported by node 'n1'"));
    free (value);
    //  n1's row is n1's: its name and disks unchanged
    zlistx_t *recs = sf_store_instances (store, "n1", "u1", &err);
    sf_instance_rec_t *rec = (sf_instance_rec_t *) zlistx_first (recs);
    assert (streq (rec->name, "vm1") && rec->n_disks == 1);
    zlistx_destroy (&recs);
    json_t *all = sf_store_instances_json (store, NULL, "u1", &err);
    assert (json_array_size (all) == 2);
    json_t *row = json_array_get (all, 1);  //  By name: impostor, vm1
    assert (streq (json_string_value (json_object_get (row, "node")), "n1"));
    assert (streq (json_string_value (json_object_get (row, "ambiguous")),
                   "uuid also reported by node 'n4'"));
    json_decref (all);
    //  A third node
    s_test_one (store, "n5", "u1", "vm1");
    value = s_test_ambiguous (store, "n1", "u1");
    assert (streq (value, "uuid also reported by nodes 'n4', 'n5'"));
    free (value);
    //  n4 and n5 stop reporting it: clear again, and n1's row still there
    s_test_one (store, "n4", NULL, NULL);
    value = s_test_ambiguous (store, "n5", "u1");
    assert (streq (value, "uuid also reported by node 'n1'"));
    free (value);
    s_test_one (store, "n5", "u5", "vm5");
    value = s_test_ambiguous (store, "n1", "u1");
    assert (streq (value, ""));
    free (value);
    all = sf_store_instances_json (store, "n1", NULL, &err);
    assert (json_is_null (json_object_get (json_array_get (all, 0), "ambiguous")));
    json_decref (all);
    assert (sf_store_exec (store, &err, "DELETE FROM nodes WHERE name IN ('n4', 'n5')",
                           "") == 2);
}

//  The database at path as an older scheduler left it (the first scripts
//  migrations, then sql, which sets user_version), opened by this build:
//  upgraded to SF_STORE_VERSION

static sf_store_t *
s_test_open_old (const char *path, int scripts, const char *sql)
{
    sf_err_t err = SF_ERR_INIT;
    sqlite3 *db = NULL;
    int rc = sqlite3_open (path, &db);
    assert (rc == SQLITE_OK);
    for (int version = 0; version < scripts; version++) {
        rc = sqlite3_exec (db, sf_store_migration (version), NULL, NULL, NULL);
        assert (rc == SQLITE_OK);
    }
    rc = sqlite3_exec (db, sql, NULL, NULL, NULL);
    assert (rc == SQLITE_OK);
    sqlite3_close (db);
    sf_store_t *store = sf_store_new (path, &err);
    assert (store);
    int version = 0;
    assert (sf_store_user_version (store, &version, &err) == 0 && version == SF_STORE_VERSION);
    return store;
}

//  The first column of the one row that sql returns, as text. Caller frees.

static char *
s_test_value (sf_store_t *store, const char *sql)
{
    sf_err_t err = SF_ERR_INIT;
    sqlite3_stmt *stmt = sf_store_prepare (store, &err, sql, "");
    assert (stmt && sf_store_step (store, stmt, &err) == 1);
    char *value = strdup (sf_store_text (stmt, 0));
    sqlite3_finalize (stmt);
    return value;
}

//  A database written by a version 1 scheduler is upgraded in place

static void
s_test_upgrade (const char *path)
{
    sf_store_t *store = s_test_open_old (path, 1, "PRAGMA user_version = 1;"
        "INSERT INTO nodes (name, state, last_seen) VALUES ('n1', 'up', 1);"
        "INSERT INTO jobs (id, instance_uuid, instance_name, node, state,"
        " phase, attempt, strategy, created, updated)"
        " VALUES ('J1', 'u1', 'vm1', 'n1', 'done', 'done', 1, 'file-cold', 1, 1);");
    char *value = s_test_value (store, "SELECT note FROM jobs WHERE id = 'J1'");
    assert (streq (value, ""));
    free (value);
    //  The tables of migrations 4 and 5 are there, empty
    value = s_test_value (store, "SELECT (SELECT COUNT (*) FROM schedules)"
                          " + (SELECT COUNT (*) FROM retention_deletes)");
    assert (streq (value, "0"));
    free (value);
    sf_store_destroy (&store);
}

//  A database written by a version 3 scheduler, whose sf_schedules and
//  sf_retention created their tables themselves, keeps those tables and
//  their rows

static void
s_test_upgrade_v3 (const char *path)
{
    sf_err_t err = SF_ERR_INIT;
    //  Schema 3, then the two tables as the version 3 classes made them at
    //  start (migrations 4 and 5 are their statements word for word), but
    //  user_version stays 3
    sf_store_t *store = s_test_open_old (path, 5, "PRAGMA user_version = 3;"
        "INSERT INTO schedules (name, calendar, select_json, created, keep_last)"
        " VALUES ('nightly', 'daily', '{\"all\":true}', 1, 2);"
        "INSERT INTO retention_deletes (request_id, store, image_id, node, schedule,"
        " bulk_id, state, created, updated)"
        " VALUES ('D1', 'dir', 'I1', 'n1', 'nightly', 'B1', 'pending', 1, 1);");
    char *value = s_test_value (store, "SELECT keep_last || ' ' || (SELECT request_id"
                                " FROM retention_deletes) FROM schedules WHERE name = 'nightly'");
    assert (streq (value, "2 D1"));
    free (value);
    //  Both tables are the ones the migrations would make: still writable
    assert (sf_store_exec (store, &err, "UPDATE retention_deletes SET sent = 0"
                           " WHERE state = 'pending'", "") == 1);
    sf_store_destroy (&store);
}

//  A database of version 6: every schedule gets its identity, and a bulk
//  is its schedule's only if that schedule existed when the bulk was made

static void
s_test_upgrade_v6 (const char *path)
{
    sf_store_t *store = s_test_open_old (path, 6, "PRAGMA user_version = 6;"
        "INSERT INTO schedules (name, calendar, select_json, created)"
        " VALUES ('nightly', 'daily', '{}', 100), ('weekly', 'weekly', '{}', 10);"
        "INSERT INTO bulks (id, created, select_json, schedule, state)"
        " VALUES ('B1', 50, '{}', 'nightly', 'done'), ('B2', 150, '{}', 'nightly', 'done'),"
        " ('B3', 160, '{}', '', 'done'), ('B4', 170, '{}', 'weekly', 'running');");
    char *value = s_test_value (store, "SELECT group_concat (name || '=' || seq, ' ')"
                                " FROM (SELECT * FROM schedules ORDER BY seq)");
    assert (streq (value, "weekly=1 nightly=2"));
    free (value);
    value = s_test_value (store, "SELECT group_concat (id || '=' || schedule_seq, ' ')"
                          " FROM (SELECT * FROM bulks ORDER BY seq)");
    assert (streq (value, "B1=0 B2=2 B3=0 B4=1"));
    free (value);
    //  A schedule added again after a removal never gets an old identity
    sf_err_t err = SF_ERR_INIT;
    assert (sf_store_exec (store, &err, "DELETE FROM schedules WHERE name = 'nightly'",
                           "") == 1);
    assert (sf_store_exec (store, &err, "INSERT INTO schedules (name, calendar,"
                           " select_json, created) VALUES ('nightly', 'daily', '{}', 200)",
                           "") == 1);
    value = s_test_value (store, "SELECT seq FROM schedules WHERE name = 'nightly'");
    assert (streq (value, "3"));
    free (value);
    sf_store_destroy (&store);
}

//  A database of version 8 with jobs, events and images: the jobs table is
//  rebuilt with the state 'cancelled' and the columns of cancel and
//  retries; every row, event and image stays, and job_attempts is empty;
//  its images are present (missing 0) after migration 10 (the reconciler's
//  mark)

static void
s_test_upgrade_v8 (const char *path)
{
    sf_err_t err = SF_ERR_INIT;
    sf_store_t *store = s_test_open_old (path, 8, "PRAGMA user_version = 8;"
        "INSERT INTO nodes (name, state, last_seen) VALUES ('n1', 'up', 1);"
        "INSERT INTO jobs (id, instance_uuid, instance_name, node, state, phase, attempt,"
        " strategy, created, updated, note, bulk_id, priority, deadline, window_end,"
        " est_bytes, error_code, error_text)"
        " VALUES ('J1', 'u1', 'vm1', 'n1', 'done', 'done', 1, 'file-cold', 10, 11, 'n',"
        " 'B1', 5, 100, 200, 300, 0, ''),"
        " ('J2', 'u2', 'vm2', 'n1', 'queued', 'waiting', 1, 'offline', 20, 21, '', '', 0,"
        " 0, 0, 0, 0, ''),"
        " ('J3', 'u3', 'vm3', 'n1', 'running', 'paused', 2, 'rbd', 30, 31, '', '', 0, 0,"
        " 0, 0, 0, ''),"
        " ('J4', 'u4', 'vm4', 'n1', 'failed', 'failed', 1, 'rbd', 40, 41, '', '', 0, 0,"
        " 0, 0, 5, 'boom');"
        "UPDATE jobs SET seq = seq + 6;"
        "INSERT INTO job_events (job_id, phase, at_ms) VALUES ('J1', 'queued', 10);"
        "INSERT INTO images (store, id, path, size, sha256, job_id, instance_uuid,"
        " instance_name, disk_target, format, created)"
        " VALUES ('dir', 'i1', '/p', 1, '', 'J1', 'u1', 'vm1', 'vda', 'qcow2', 12);");
    char *value = s_test_value (store, "SELECT group_concat (seq || ':' || id || ':' || state"
        " || ':' || attempt || ':' || cancel_at || ':' || not_before || ':'"
        " || attempt_started, ' ') FROM (SELECT * FROM jobs ORDER BY seq)");
    assert (streq (value, "7:J1:done:1:0:0:10 8:J2:queued:1:0:0:0 9:J3:running:2:0:0:30 "
                          "10:J4:failed:1:0:0:40"));
    free (value);
    value = s_test_value (store, "SELECT note || bulk_id || priority || deadline"
                          " || window_end || est_bytes FROM jobs WHERE id = 'J1'");
    assert (streq (value, "nB15100200300"));
    free (value);
    value = s_test_value (store, "SELECT error_code || error_text FROM jobs WHERE id = 'J4'");
    assert (streq (value, "5boom"));
    free (value);
    value = s_test_value (store, "SELECT (SELECT COUNT (*) FROM job_events)"
                          " || (SELECT COUNT (*) FROM images) || (SELECT COUNT (*)"
                          " FROM job_attempts)");
    assert (streq (value, "110"));
    free (value);
    //  The new state is allowed, an unknown one still is not; ids go on
    assert (sf_store_exec (store, &err, "UPDATE jobs SET state = 'cancelled'"
                           " WHERE id = 'J2'", "") == 1);
    assert (sf_store_exec (store, &err, "UPDATE jobs SET state = 'lost'"
                           " WHERE id = 'J2'", "") == -1);
    assert (sf_store_exec (store, &err, "INSERT INTO jobs (id, instance_uuid, instance_name,"
                           " node, state, phase, attempt, strategy, created, updated)"
                           " VALUES ('', 'u5', 'vm5', 'n1', 'queued', 'waiting', 1, 'rbd',"
                           " 1, 1)", "") == 1);
    value = s_test_value (store, "SELECT MAX (seq) FROM jobs");
    assert (streq (value, "11"));
    free (value);
    //  Foreign keys still hold: an attempt of no job is refused
    assert (sf_store_exec (store, &err, "INSERT INTO job_attempts (job_id, attempt, node,"
                           " ended) VALUES ('J99', 1, 'n1', 1)", "") == -1);
    value = s_test_value (store, "SELECT id || '=' || missing FROM images");
    assert (streq (value, "i1=0"));
    free (value);
    sf_store_destroy (&store);
}

//  Remove the database at path and its WAL files

static void
s_test_unlink (const char *path)
{
    char wal [256];
    unlink (path);
    snprintf (wal, sizeof (wal), "%s-wal", path);
    unlink (wal);
    snprintf (wal, sizeof (wal), "%s-shm", path);
    unlink (wal);
}

void
sf_store_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_store: ");
    //  @selftest
    s_test_secure_files ();
    sf_err_t err = SF_ERR_INIT;
    char path [] = "/tmp/sf_store_test_XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    close (fd);
    unlink (path);              //  Start from no file at all

    sf_store_t *store = sf_store_new (path, &err);
    assert (store);
    int version = 0;
    assert (sf_store_user_version (store, &version, &err) == 0 && version == SF_STORE_VERSION);
    char catalog [SF_NAMING_ID_LEN + 1];
    snprintf (catalog, sizeof (catalog), "%s", sf_store_catalog_id (store));
    assert (sf_naming_id_valid (catalog));
    assert (sf_store_node_hello (store, "n1", "w\xFF 0.1", 2, 1000, &err) == 0);
    assert (sf_store_node_hello (store, "n2", "w 0.1", 2, 1000, &err) == 0);
    assert (sf_store_node_state (store, "n2", "down", &err) == 0);
    assert (sf_store_node_state (store, "n9", "down", &err) == -1);
    assert (err.code == SF_ENOENT);
    assert (sf_store_node_seen (store, "n1", 2000, 1, &err) == 0);
    s_test_inventory (store);
    s_test_ambiguity (store);

    //  Invalid UTF-8 from a worker is cleaned before it is stored
    json_t *clean = sf_store_json_string ("ok\xC3\xA9 bad\xC3 \xED\xA0\x80 \xF0\x9F\x98\x80");
    assert (streq (json_string_value (clean), "ok\xC3\xA9 bad? ??? \xF0\x9F\x98\x80"));
    json_decref (clean);

    //  Rolled-back work is gone, nested commits are kept
    assert (sf_store_begin (store, &err) == 0);
    assert (sf_store_node_hello (store, "n3", "", 1, 1, &err) == 0);
    sf_store_rollback (store);
    assert (sf_store_begin (store, &err) == 0);
    assert (sf_store_begin (store, &err) == 0);
    assert (sf_store_node_state (store, "n2", "up", &err) == 0);
    assert (sf_store_commit (store, &err) == 0);
    assert (sf_store_commit (store, &err) == 0);
    sf_store_destroy (&store);
    assert (store == NULL);

    //  Reopen: durable, no migration needed, same data and catalogue id
    store = sf_store_new (path, &err);
    assert (store);
    assert (streq (sf_store_catalog_id (store), catalog));
    json_t *nodes = sf_store_nodes_json (store, &err);
    assert (json_array_size (nodes) == 2);
    json_t *n1 = json_array_get (nodes, 0);
    assert (streq (json_string_value (json_object_get (n1, "name")), "n1"));
    assert (json_integer_value (json_object_get (n1, "instances")) == 1);
    assert (json_integer_value (json_object_get (n1, "running_jobs")) == 1);
    assert (streq (json_string_value (json_object_get (n1, "last_seen")),
                   "1970-01-01T00:00:02.000Z"));
    json_decref (nodes);
    zlistx_t *up = sf_store_nodes_up (store, &err);
    assert (zlistx_size (up) == 2);
    zlistx_destroy (&up);

    //  A database from the future is refused
    assert (sf_store_script (store, "PRAGMA user_version = 99;", &err) == 0);
    sf_store_destroy (&store);
    store = sf_store_new (path, &err);
    assert (store == NULL);
    assert (err.code == SF_EDB && strstr (err.text, "schema version 99"));

    //  Not a database at all
    FILE *file = fopen (path, "w");
    fputs ("this is not a database, just a file with words in it, long enough", file);
    fclose (file);
    char wal [sizeof (path) + 8];
    snprintf (wal, sizeof (wal), "%s-wal", path);
    unlink (wal);
    store = sf_store_new (path, &err);
    assert (store == NULL && err.code == SF_EDB);
    unlink (path);
    snprintf (wal, sizeof (wal), "%s-shm", path);
    unlink (wal);

    s_test_upgrade (path);
    s_test_unlink (path);
    s_test_upgrade_v3 (path);
    s_test_unlink (path);
    s_test_upgrade_v6 (path);
    s_test_unlink (path);
    s_test_upgrade_v8 (path);
    s_test_unlink (path);
    //  @end
    printf ("OK\n");
}
