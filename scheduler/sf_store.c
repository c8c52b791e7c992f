/*  =========================================================================
    sf_store - the scheduler's SQLite database: connection, schema, nodes
    and instances

    Why synchronous=FULL with WAL: NORMAL would let a power cut lose the
    last commits, and the scheduler acts on (and acknowledges) what it has
    committed, so a lost commit could run a job twice. The cost is one
    fsync of the WAL per commit.
    =========================================================================
*/
#include "sf_sched_classes.h"

//  sf_store_exec keeps its statements prepared: the hot paths (job events,
//  assignments) run the same few statements hundreds of thousands of times
#define CACHE_SIZE 64

struct _sf_store_t {
    sqlite3 *db;                //  Owned connection
    char *path;                 //  Owned, for messages
    sqlite3_stmt *cache [CACHE_SIZE];   //  Owned, by sf_store_exec
    const char *cache_sql [CACHE_SIZE]; //  The caller's SQL text pointers
    size_t cache_next;          //  Slot to reuse next when full
    char catalog_id [SF_NAMING_ID_LEN + 1];     //  From table catalog
};

SF_LOG_MODULE ("sched.store");

//  Migration N brings user_version from N to N + 1. Never edit a shipped
//  migration: append a new one.

static const char *s_migrations [] = {
    //  1: initial schema
    "CREATE TABLE nodes ("
    "  name TEXT PRIMARY KEY,"
    "  state TEXT NOT NULL CHECK (state IN ('up', 'down')),"
    "  last_seen INTEGER NOT NULL,"
    "  software TEXT NOT NULL DEFAULT '',"
    "  max_jobs INTEGER NOT NULL DEFAULT 0,"
    "  running_jobs INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE instances ("
    "  node TEXT NOT NULL REFERENCES nodes (name) ON DELETE CASCADE,"
    "  uuid TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  storage_class TEXT NOT NULL,"
    "  disks TEXT NOT NULL,"
    "  PRIMARY KEY (node, uuid));"
    "CREATE INDEX instances_name ON instances (name);"
    "CREATE INDEX instances_uuid ON instances (uuid);"
    "CREATE TABLE jobs ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  instance_uuid TEXT NOT NULL,"
    "  instance_name TEXT NOT NULL,"
    "  node TEXT NOT NULL REFERENCES nodes (name),"
    "  state TEXT NOT NULL"
    "    CHECK (state IN ('queued', 'running', 'done', 'failed')),"
    "  phase TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  strategy TEXT NOT NULL,"
    "  consistency TEXT NOT NULL DEFAULT '',"
    "  pause_ms INTEGER NOT NULL DEFAULT 0,"
    "  convert_ms INTEGER NOT NULL DEFAULT 0,"
    "  upload_ms INTEGER NOT NULL DEFAULT 0,"
    "  bytes INTEGER NOT NULL DEFAULT 0,"
    "  error_code INTEGER NOT NULL DEFAULT 0,"
    "  error_text TEXT NOT NULL DEFAULT '',"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL);"
    "CREATE INDEX jobs_node_state ON jobs (node, state);"
    "CREATE INDEX jobs_instance_state ON jobs (instance_uuid, state);"
    "CREATE TABLE job_events ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  job_id TEXT NOT NULL REFERENCES jobs (id),"
    "  phase TEXT NOT NULL,"
    "  ms INTEGER NOT NULL DEFAULT 0,"
    "  bytes INTEGER NOT NULL DEFAULT 0,"
    "  at_ms INTEGER NOT NULL,"
    "  text TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX job_events_job ON job_events (job_id);"
    "CREATE TABLE images ("
    "  store TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  path TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  job_id TEXT NOT NULL REFERENCES jobs (id),"
    "  instance_uuid TEXT NOT NULL,"
    "  instance_name TEXT NOT NULL,"
    "  disk_target TEXT NOT NULL,"
    "  format TEXT NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  PRIMARY KEY (store, id));"
    "CREATE INDEX images_job ON images (job_id);",
    //  2: a job can be done with a note (an ok result that carries text)
    "ALTER TABLE jobs ADD COLUMN note TEXT NOT NULL DEFAULT '';",
    //  3: fleet scheduling: bulks, job priority/deadline/window, the state
    //  'skipped' (a CHECK cannot be altered: the jobs table is rebuilt),
    //  instance tags
    "CREATE TABLE bulks ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  created INTEGER NOT NULL,"
    "  select_json TEXT NOT NULL,"
    "  strategy TEXT NOT NULL DEFAULT '',"
    "  priority INTEGER NOT NULL DEFAULT 0,"
    "  deadline INTEGER NOT NULL DEFAULT 0,"
    "  window_end INTEGER NOT NULL DEFAULT 0,"
    "  schedule TEXT NOT NULL DEFAULT '',"
    "  state TEXT NOT NULL CHECK (state IN ('running', 'done')),"
    "  total INTEGER NOT NULL DEFAULT 0,"
    "  finished INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX bulks_schedule ON bulks (schedule);"
    "CREATE TABLE jobs_v3 ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  instance_uuid TEXT NOT NULL,"
    "  instance_name TEXT NOT NULL,"
    "  node TEXT NOT NULL REFERENCES nodes (name),"
    "  state TEXT NOT NULL"
    "    CHECK (state IN ('queued', 'running', 'done', 'failed', 'skipped')),"
    "  phase TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  strategy TEXT NOT NULL,"
    "  consistency TEXT NOT NULL DEFAULT '',"
    "  pause_ms INTEGER NOT NULL DEFAULT 0,"
    "  convert_ms INTEGER NOT NULL DEFAULT 0,"
    "  upload_ms INTEGER NOT NULL DEFAULT 0,"
    "  bytes INTEGER NOT NULL DEFAULT 0,"
    "  error_code INTEGER NOT NULL DEFAULT 0,"
    "  error_text TEXT NOT NULL DEFAULT '',"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  note TEXT NOT NULL DEFAULT '',"
    "  bulk_id TEXT NOT NULL DEFAULT '',"
    "  priority INTEGER NOT NULL DEFAULT 0,"
    "  deadline INTEGER NOT NULL DEFAULT 0,"
    "  window_end INTEGER NOT NULL DEFAULT 0,"
    "  est_bytes INTEGER NOT NULL DEFAULT 0);"
    "INSERT INTO jobs_v3 (seq, id, instance_uuid, instance_name, node, state, phase,"
    "  attempt, strategy, consistency, pause_ms, convert_ms, upload_ms, bytes, error_code,"
    "  error_text, created, updated, note)"
    "  SELECT seq, id, instance_uuid, instance_name, node, state, phase, attempt, strategy,"
    "  consistency, pause_ms, convert_ms, upload_ms, bytes, error_code, error_text,"
    "  created, updated, note FROM jobs;"
    "DROP TABLE jobs;"
    "ALTER TABLE jobs_v3 RENAME TO jobs;"
    "CREATE INDEX jobs_node_state ON jobs (node, state);"
    "CREATE INDEX jobs_instance_state ON jobs (instance_uuid, state);"
    "CREATE INDEX jobs_bulk ON jobs (bulk_id);"
    "CREATE INDEX jobs_state ON jobs (state);"
    "ALTER TABLE instances ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';",
    //  4: schedules (sf_schedules). Schedulers of version 3 created it
    //  themselves, with this same definition: IF NOT EXISTS keeps theirs
    "CREATE TABLE IF NOT EXISTS schedules ("
    "  name TEXT PRIMARY KEY,"
    "  calendar TEXT NOT NULL,"
    "  select_json TEXT NOT NULL,"
    "  strategy TEXT NOT NULL DEFAULT '',"
    "  priority INTEGER NOT NULL DEFAULT 0,"
    "  window_ms INTEGER NOT NULL DEFAULT 0,"
    "  keep_last INTEGER NOT NULL DEFAULT 0,"
    "  keep_daily INTEGER NOT NULL DEFAULT 0,"
    "  keep_weekly INTEGER NOT NULL DEFAULT 0,"
    "  keep_monthly INTEGER NOT NULL DEFAULT 0,"
    "  created INTEGER NOT NULL,"
    "  elapse INTEGER NOT NULL DEFAULT 0,"
    "  last_run INTEGER NOT NULL DEFAULT 0,"
    "  last_bulk TEXT NOT NULL DEFAULT '',"
    "  last_error TEXT NOT NULL DEFAULT '');",
    //  5: retention_deletes (sf_retention), the same way as 4
    "CREATE TABLE IF NOT EXISTS retention_deletes ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  request_id TEXT NOT NULL UNIQUE,"
    "  store TEXT NOT NULL,"
    "  image_id TEXT NOT NULL,"
    "  node TEXT NOT NULL,"
    "  schedule TEXT NOT NULL,"
    "  bulk_id TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('pending', 'failed')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  sent INTEGER NOT NULL DEFAULT 0,"
    "  error_code INTEGER NOT NULL DEFAULT 0,"
    "  error_text TEXT NOT NULL DEFAULT '',"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  UNIQUE (store, image_id));",
    //  6: the catalogue id (sf_naming), one random row for the life of the
    //  database. Images made before it carry names without one: the
    //  workers refuse to delete them (they cannot be proven ours)
    "CREATE TABLE catalog ("
    "  one INTEGER PRIMARY KEY CHECK (one = 1),"
    "  id TEXT NOT NULL);"
    "INSERT INTO catalog VALUES (1, lower (hex (randomblob (8))));",
    //  7: a schedule's identity is seq (AUTOINCREMENT: a schedule removed
    //  and added again under its name gets a new one), and every bulk it
    //  fires records it in schedule_seq, which retention prunes by. An
    //  older bulk belongs to the schedule of its name only if that was
    //  created before it (a bulk of a removed namesake is nobody's: kept)
    "CREATE TABLE schedules_v7 ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  name TEXT NOT NULL UNIQUE,"
    "  calendar TEXT NOT NULL,"
    "  select_json TEXT NOT NULL,"
    "  strategy TEXT NOT NULL DEFAULT '',"
    "  priority INTEGER NOT NULL DEFAULT 0,"
    "  window_ms INTEGER NOT NULL DEFAULT 0,"
    "  keep_last INTEGER NOT NULL DEFAULT 0,"
    "  keep_daily INTEGER NOT NULL DEFAULT 0,"
    "  keep_weekly INTEGER NOT NULL DEFAULT 0,"
    "  keep_monthly INTEGER NOT NULL DEFAULT 0,"
    "  created INTEGER NOT NULL,"
    "  elapse INTEGER NOT NULL DEFAULT 0,"
    "  last_run INTEGER NOT NULL DEFAULT 0,"
    "  last_bulk TEXT NOT NULL DEFAULT '',"
    "  last_error TEXT NOT NULL DEFAULT '');"
    "INSERT INTO schedules_v7 (name, calendar, select_json, strategy, priority, window_ms,"
    "  keep_last, keep_daily, keep_weekly, keep_monthly, created, elapse, last_run,"
    "  last_bulk, last_error)"
    "  SELECT name, calendar, select_json, strategy, priority, window_ms, keep_last,"
    "  keep_daily, keep_weekly, keep_monthly, created, elapse, last_run, last_bulk,"
    "  last_error FROM schedules ORDER BY created, name;"
    "DROP TABLE schedules;"
    "ALTER TABLE schedules_v7 RENAME TO schedules;"
    "ALTER TABLE bulks ADD COLUMN schedule_seq INTEGER NOT NULL DEFAULT 0;"
    "UPDATE bulks SET schedule_seq = COALESCE ((SELECT s.seq FROM schedules s"
    "  WHERE s.name = bulks.schedule AND s.created <= bulks.created), 0)"
    "  WHERE schedule <> '';"
    "CREATE INDEX bulks_schedule_seq ON bulks (schedule_seq);",
    //  8: an instance is (node, uuid); a uuid that several nodes report is
    //  ambiguous on each of them, with the reason (see s_ambiguity)
    "ALTER TABLE instances ADD COLUMN ambiguous TEXT NOT NULL DEFAULT '';"
    "UPDATE instances SET ambiguous = COALESCE ((SELECT 'uuid also reported by node'"
    "  || CASE WHEN COUNT (*) > 1 THEN 's ' ELSE ' ' END"
    "  || group_concat ('''' || o.node || '''', ', ') FROM instances o"
    "  WHERE o.uuid = instances.uuid AND o.node <> instances.node), '');",
    //  9: cancel and retries. The state 'cancelled' (the jobs table is
    //  rebuilt, as in 3); cancel_at: when the operator asked (0 never);
    //  not_before: a retry's backoff ends then (0 none); attempt_started:
    //  when the current attempt was sent; job_attempts: how each attempt
    //  ended
    "CREATE TABLE jobs_v9 ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  instance_uuid TEXT NOT NULL,"
    "  instance_name TEXT NOT NULL,"
    "  node TEXT NOT NULL REFERENCES nodes (name),"
    "  state TEXT NOT NULL CHECK (state IN"
    "    ('queued', 'running', 'done', 'failed', 'skipped', 'cancelled')),"
    "  phase TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  strategy TEXT NOT NULL,"
    "  consistency TEXT NOT NULL DEFAULT '',"
    "  pause_ms INTEGER NOT NULL DEFAULT 0,"
    "  convert_ms INTEGER NOT NULL DEFAULT 0,"
    "  upload_ms INTEGER NOT NULL DEFAULT 0,"
    "  bytes INTEGER NOT NULL DEFAULT 0,"
    "  error_code INTEGER NOT NULL DEFAULT 0,"
    "  error_text TEXT NOT NULL DEFAULT '',"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  note TEXT NOT NULL DEFAULT '',"
    "  bulk_id TEXT NOT NULL DEFAULT '',"
    "  priority INTEGER NOT NULL DEFAULT 0,"
    "  deadline INTEGER NOT NULL DEFAULT 0,"
    "  window_end INTEGER NOT NULL DEFAULT 0,"
    "  est_bytes INTEGER NOT NULL DEFAULT 0,"
    "  cancel_at INTEGER NOT NULL DEFAULT 0,"
    "  not_before INTEGER NOT NULL DEFAULT 0,"
    "  attempt_started INTEGER NOT NULL DEFAULT 0);"
    "INSERT INTO jobs_v9 (seq, id, instance_uuid, instance_name, node, state, phase,"
    "  attempt, strategy, consistency, pause_ms, convert_ms, upload_ms, bytes, error_code,"
    "  error_text, created, updated, note, bulk_id, priority, deadline, window_end,"
    "  est_bytes, attempt_started)"
    "  SELECT seq, id, instance_uuid, instance_name, node, state, phase, attempt, strategy,"
    "  consistency, pause_ms, convert_ms, upload_ms, bytes, error_code, error_text,"
    "  created, updated, note, bulk_id, priority, deadline, window_end, est_bytes,"
    "  CASE WHEN phase = 'waiting' THEN 0 ELSE created END FROM jobs;"
    "DROP TABLE jobs;"
    "ALTER TABLE jobs_v9 RENAME TO jobs;"
    "CREATE INDEX jobs_node_state ON jobs (node, state);"
    "CREATE INDEX jobs_instance_state ON jobs (instance_uuid, state);"
    "CREATE INDEX jobs_bulk ON jobs (bulk_id);"
    "CREATE INDEX jobs_state ON jobs (state);"
    "CREATE TABLE job_attempts ("
    "  job_id TEXT NOT NULL REFERENCES jobs (id),"
    "  attempt INTEGER NOT NULL,"
    "  node TEXT NOT NULL,"
    "  error_code INTEGER NOT NULL DEFAULT 0,"
    "  error_text TEXT NOT NULL DEFAULT '',"
    "  started INTEGER NOT NULL DEFAULT 0,"
    "  ended INTEGER NOT NULL,"
    "  PRIMARY KEY (job_id, attempt));",
    //  10: the reconciler marks an image whose object its node's listing
    //  lacks: missing = when it was first found missing (ms), 0 = present
    "ALTER TABLE images ADD COLUMN missing INTEGER NOT NULL DEFAULT 0;",
    //  11: a node's max_pause (from its hello), and the pause slots kept
    //  for jobs that ended without word from their node (sf_dispatch)
    "ALTER TABLE nodes ADD COLUMN max_pause_ms INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE pause_holds ("
    "  job_id TEXT PRIMARY KEY,"
    "  node TEXT NOT NULL,"
    "  until_ms INTEGER NOT NULL);",
    //  12: restores (issue 13): what a job of strategy 'restore' restores
    //  (an image, by store and id) to where, in which format
    "CREATE TABLE restores ("
    "  job_id TEXT PRIMARY KEY REFERENCES jobs (id),"
    "  image_store TEXT NOT NULL,"
    "  image_id TEXT NOT NULL,"
    "  target TEXT NOT NULL,"
    "  format TEXT NOT NULL);",
    //  13: issue 13, the guest kept with its images and their checks: the
    //  domain XML a snapshot job reported (restore --as-domain, verify
    //  --boot copy it); the domain a restore defines; the verifications of
    //  images (one per verify job: ok = -1 until its result); how many
    //  images of each run a schedule verifies, and the last bulk sampled
    "CREATE TABLE instance_xml ("
    "  job_id TEXT PRIMARY KEY,"
    "  xml TEXT NOT NULL);"
    "ALTER TABLE restores ADD COLUMN as_domain TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE verifications ("
    "  job_id TEXT PRIMARY KEY,"
    "  image_store TEXT NOT NULL,"
    "  image_id TEXT NOT NULL,"
    "  boot INTEGER NOT NULL,"
    "  ok INTEGER NOT NULL DEFAULT -1,"
    "  hash_ok INTEGER NOT NULL DEFAULT 0,"
    "  check_ok INTEGER NOT NULL DEFAULT 0,"
    "  booted INTEGER NOT NULL DEFAULT 0,"
    "  time_to_life_ms INTEGER NOT NULL DEFAULT 0,"
    "  text TEXT NOT NULL DEFAULT '',"
    "  at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX verifications_image ON verifications (image_store, image_id, at);"
    "ALTER TABLE schedules ADD COLUMN verify_sample INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE schedules ADD COLUMN verified_bulk TEXT NOT NULL DEFAULT '';",
    //  14: chains (issue 13): an image's parent (the image of the same store
    //  it is a qcow2 overlay on, '' for a full one), its own bytes and the
    //  checkpoint made with it; why a job offered an incremental run ran a
    //  full one; a job asked to be full (snapshot --full)
    "ALTER TABLE images ADD COLUMN parent_id TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE images ADD COLUMN own_bytes INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE images ADD COLUMN checkpoint TEXT NOT NULL DEFAULT '';"
    "UPDATE images SET own_bytes = size WHERE store <> 'rbd';"
    "CREATE INDEX images_parent ON images (store, parent_id);"
    "ALTER TABLE jobs ADD COLUMN full_reason TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE jobs ADD COLUMN full INTEGER NOT NULL DEFAULT 0;",
    //  15: how a job made its images (JobResult.method); a restore to RBD
    //  (its target 'rbd:POOL/NAME') as a flattened copy
    ("ALTER TABLE jobs ADD COLUMN method TEXT NOT NULL DEFAULT '';"
     "ALTER TABLE restores ADD COLUMN flatten INTEGER NOT NULL DEFAULT 0;"),
};
#define MIGRATIONS ((int) (sizeof (s_migrations) / sizeof (s_migrations [0])))
static_assert (MIGRATIONS == SF_STORE_VERSION, "one migration per schema version");

const char *
sf_store_migration (int index)
{
    assert (index >= 0 && index < MIGRATIONS);
    return s_migrations [index];
}

//  --------------------------------------------------------------------------
//  Connection helpers

static int
s_db_error (sf_store_t *self, sf_err_t *err, const char *what)
{
    return sf_err_set (err, SF_EDB, "database '%s': %s: %s", self->path, what,
                       sqlite3_errmsg (self->db));
}

int
sf_store_script (sf_store_t *self, const char *sql, sf_err_t *err)
{
    char *message = NULL;
    if (sqlite3_exec (self->db, sql, NULL, NULL, &message) != SQLITE_OK) {
        sf_err_set (err, SF_EDB, "database '%s': %s", self->path,
                    message? message: sqlite3_errmsg (self->db));
        sqlite3_free (message);
        return -1;
    }
    return 0;
}

int
sf_store_user_version (sf_store_t *self, int *version, sf_err_t *err)
{
    sqlite3_stmt *stmt = sf_store_prepare (self, err, "PRAGMA user_version", "");
    if (!stmt)
        return -1;
    int rc = sf_store_step (self, stmt, err);
    if (rc == 1)
        *version = sqlite3_column_int (stmt, 0);
    sqlite3_finalize (stmt);
    return rc == 1? 0: -1;
}

static int
s_check_foreign_keys (sf_store_t *self, sf_err_t *err)
{
    sqlite3_stmt *stmt = sf_store_prepare (self, err, "PRAGMA foreign_key_check", "");
    if (!stmt)
        return -1;
    int rc = sf_store_step (self, stmt, err);
    if (rc == 1)
        sf_err_set (err, SF_EDB, "database '%s': a row of table '%s' refers to a missing "
                    "row", self->path, sf_store_text (stmt, 0));
    sqlite3_finalize (stmt);
    return rc == 0? 0: -1;
}

static int
s_migrate (sf_store_t *self, sf_err_t *err)
{
    int version = 0;
    if (sf_store_user_version (self, &version, err))
        return -1;
    if (version > MIGRATIONS)
        return sf_err_set (err, SF_EDB,
                           "database '%s' has schema version %d, newer than this "
                           "scheduler's %d", self->path, version, MIGRATIONS);
    //  The SQLite way to rebuild a table that others reference: foreign
    //  keys off (only possible outside a transaction), rebuild, check
    if (version < MIGRATIONS
    &&  sf_store_script (self, "PRAGMA foreign_keys = OFF;", err))
        return -1;
    for (; version < MIGRATIONS; version++) {
        char bump [64];
        snprintf (bump, sizeof (bump), "PRAGMA user_version = %d;", version + 1);
        if (sf_store_script (self, "BEGIN IMMEDIATE;", err))
            return -1;
        if (sf_store_script (self, s_migrations [version], err)
        ||  s_check_foreign_keys (self, err)
        ||  sf_store_script (self, bump, err)
        ||  sf_store_script (self, "COMMIT;", err)) {
            sf_store_script (self, "ROLLBACK;", NULL);
            return sf_err_prefix (err, "migration to schema version %d", version + 1);
        }
        SF_INFO (NULL, "database '%s' migrated to schema version %d",
                 self->path, version + 1);
    }
    return sf_store_script (self, "PRAGMA foreign_keys = ON;", err);
}

static int
s_configure (sf_store_t *self, sf_err_t *err)
{
    if (sqlite3_busy_timeout (self->db, 5000) != SQLITE_OK)
        return s_db_error (self, err, "cannot set busy timeout");
    sqlite3_stmt *stmt = sf_store_prepare (self, err, "PRAGMA journal_mode = WAL", "");
    if (!stmt)
        return -1;
    int rc = sf_store_step (self, stmt, err);
    bool wal = rc == 1 && streq (sf_store_text (stmt, 0), "wal");
    sqlite3_finalize (stmt);
    if (rc != 1)
        return -1;
    if (!wal)
        return sf_err_set (err, SF_EDB, "database '%s': cannot enable WAL journal",
                           self->path);
    //  64 MiB of page cache: a bulk of 100,000 jobs (5 indexes) then stays
    //  in memory instead of spilling pages to the WAL mid-transaction
    return sf_store_script (self, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
                          " PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;"
                          " PRAGMA wal_autocheckpoint = 16384; PRAGMA journal_size_limit = 67108864;", err);
}

static int
s_load_catalog (sf_store_t *self, sf_err_t *err)
{
    sqlite3_stmt *stmt = sf_store_prepare (self, err, "SELECT id FROM catalog", "");
    if (!stmt)
        return -1;
    int rc = sf_store_step (self, stmt, err);
    if (rc == 1)
        snprintf (self->catalog_id, sizeof (self->catalog_id), "%s", sf_store_text (stmt, 0));
    sqlite3_finalize (stmt);
    if (rc == 1 && !sf_naming_id_valid (self->catalog_id))
        return sf_err_set (err, SF_EDB, "database '%s': catalogue id '%s' is not %d hex "
                           "digits", self->path, self->catalog_id, SF_NAMING_ID_LEN);
    if (rc == 0)
        return sf_err_set (err, SF_EDB, "database '%s' has no catalogue id", self->path);
    return rc == 1? 0: -1;
}

//  --------------------------------------------------------------------------
//  Constructor

sf_store_t *
sf_store_new (const char *path, sf_err_t *err)
{
    assert (path);
    sf_store_t *self = (sf_store_t *) zmalloc (sizeof (sf_store_t));
    self->path = strdup (path);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2 (path, &self->db, flags, NULL) != SQLITE_OK) {
        s_db_error (self, err, "cannot open");
        sf_store_destroy (&self);
    }
    else
    if (s_configure (self, err) || s_migrate (self, err) || s_load_catalog (self, err))
        sf_store_destroy (&self);
    return self;
}

const char *
sf_store_catalog_id (sf_store_t *self)
{
    assert (self);
    return self->catalog_id;
}

//  --------------------------------------------------------------------------
//  Destructor

void
sf_store_destroy (sf_store_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_store_t *self = *self_p;
        for (size_t i = 0; i < CACHE_SIZE; i++)
            sqlite3_finalize (self->cache [i]);
        sqlite3_close_v2 (self->db);
        free (self->path);
        free (self);
        *self_p = NULL;
    }
}

sqlite3 *
sf_store_db (sf_store_t *self)
{
    assert (self);
    return self->db;
}

//  --------------------------------------------------------------------------
//  Transactions: savepoints nest, and the outermost RELEASE commits

int
sf_store_begin (sf_store_t *self, sf_err_t *err)
{
    assert (self);
    return sf_store_script (self, "SAVEPOINT sf;", err);
}

int
sf_store_commit (sf_store_t *self, sf_err_t *err)
{
    assert (self);
    if (sf_store_script (self, "RELEASE sf;", err)) {
        sf_store_rollback (self);
        return -1;
    }
    return 0;
}

void
sf_store_rollback (sf_store_t *self)
{
    assert (self);
    if (sf_store_script (self, "ROLLBACK TO sf; RELEASE sf;", NULL))
        SF_ERROR (NULL, "database '%s': rollback failed: %s", self->path,
                  sqlite3_errmsg (self->db));
}

//  --------------------------------------------------------------------------
//  UTF-8

//  Length of the valid UTF-8 sequence at text, 0 if invalid

static size_t
s_utf8_length (const unsigned char *text)
{
    unsigned char lead = text [0];
    size_t length;
    uint32_t point;
    if (lead < 0x80)
        return 1;
    if (lead >= 0xC2 && lead <= 0xDF)
        length = 2, point = lead & 0x1F;
    else
    if (lead >= 0xE0 && lead <= 0xEF)
        length = 3, point = lead & 0x0F;
    else
    if (lead >= 0xF0 && lead <= 0xF4)
        length = 4, point = lead & 0x07;
    else
        return 0;
    for (size_t i = 1; i < length; i++) {
        if ((text [i] & 0xC0) != 0x80)
            return 0;           //  Also stops at the terminating NUL
        point = (point << 6) | (text [i] & 0x3F);
    }
    bool overlong = (length == 3 && point < 0x800) || (length == 4 && point < 0x10000);
    if (overlong || (point >= 0xD800 && point <= 0xDFFF) || point > 0x10FFFF)
        return 0;
    return length;
}

//  Copy of text with invalid bytes replaced by '?', or NULL if text is
//  valid already (the common case: no copy)

static char *
s_utf8_clean (const char *text)
{
    const unsigned char *scan = (const unsigned char *) text;
    while (*scan && s_utf8_length (scan))
        scan += s_utf8_length (scan);
    if (!*scan)
        return NULL;
    char *copy = strdup (text);
    unsigned char *cursor = (unsigned char *) copy;
    while (*cursor) {
        size_t length = s_utf8_length (cursor);
        if (length)
            cursor += length;
        else
            *cursor++ = '?';
    }
    return copy;
}

json_t *
sf_store_json_string (const char *text)
{
    if (!text)
        return json_string ("");
    char *clean = s_utf8_clean (text);
    json_t *string = json_string (clean? clean: text);
    free (clean);
    assert (string);
    return string;
}

//  --------------------------------------------------------------------------
//  Statements

static int
s_bind_va (sf_store_t *self, sf_err_t *err, sqlite3_stmt *stmt, const char *types,
           va_list args)
{
    int rc = SQLITE_OK;
    for (int index = 1; *types && rc == SQLITE_OK; types++, index++) {
        if (*types == 's') {
            const char *text = va_arg (args, const char *);
            char *clean = text? s_utf8_clean (text): NULL;
            rc = sqlite3_bind_text (stmt, index, clean? clean: text, -1, SQLITE_TRANSIENT);
            free (clean);
        }
        else
        if (*types == 'i')
            rc = sqlite3_bind_int64 (stmt, index, va_arg (args, int64_t));
        else {
            assert (*types == 'u');
            uint64_t value = va_arg (args, uint64_t);
            rc = sqlite3_bind_int64 (stmt, index,
                                     value > INT64_MAX? INT64_MAX: (int64_t) value);
        }
    }
    return rc == SQLITE_OK? 0: s_db_error (self, err, "cannot bind parameter");
}

static sqlite3_stmt *
s_prepare_va (sf_store_t *self, sf_err_t *err, const char *sql, const char *types,
              va_list args)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2 (self->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        s_db_error (self, err, "cannot prepare statement");
        return NULL;
    }
    if (s_bind_va (self, err, stmt, types, args)) {
        sqlite3_finalize (stmt);
        return NULL;
    }
    return stmt;
}

//  The cached statement for sql (the same pointer and text), prepared
//  on first use; NULL with err set

static sqlite3_stmt *
s_cached (sf_store_t *self, const char *sql, sf_err_t *err)
{
    for (size_t i = 0; i < CACHE_SIZE; i++)
        if (self->cache_sql [i] == sql && self->cache [i]
        &&  streq (sqlite3_sql (self->cache [i]), sql))
            return self->cache [i];
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2 (self->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        s_db_error (self, err, "cannot prepare statement");
        return NULL;
    }
    size_t slot = self->cache_next;
    self->cache_next = (self->cache_next + 1) % CACHE_SIZE;
    sqlite3_finalize (self->cache [slot]);
    self->cache [slot] = stmt;
    self->cache_sql [slot] = sql;
    return stmt;
}

sqlite3_stmt *
sf_store_prepare (sf_store_t *self, sf_err_t *err, const char *sql,
                  const char *types, ...)
{
    assert (self);
    va_list args;
    va_start (args, types);
    sqlite3_stmt *stmt = s_prepare_va (self, err, sql, types, args);
    va_end (args);
    return stmt;
}

int
sf_store_step (sf_store_t *self, sqlite3_stmt *stmt, sf_err_t *err)
{
    assert (self);
    int rc = sqlite3_step (stmt);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return s_db_error (self, err, "statement failed");
}

sqlite3_stmt *
sf_store_query (sf_store_t *self, sf_err_t *err, const char *sql, const char *types, ...)
{
    assert (self);
    sqlite3_stmt *stmt = s_cached (self, sql, err);
    if (!stmt)
        return NULL;
    va_list args;
    va_start (args, types);
    int rc = s_bind_va (self, err, stmt, types, args);
    va_end (args);
    if (rc) {
        sf_store_done (stmt);
        return NULL;
    }
    return stmt;
}

void
sf_store_done (sqlite3_stmt *stmt)
{
    if (stmt) {
        sqlite3_reset (stmt);
        sqlite3_clear_bindings (stmt);
    }
}

int
sf_store_exec (sf_store_t *self, sf_err_t *err, const char *sql,
               const char *types, ...)
{
    assert (self);
    sqlite3_stmt *stmt = s_cached (self, sql, err);
    if (!stmt)
        return -1;
    va_list args;
    va_start (args, types);
    int rc = s_bind_va (self, err, stmt, types, args);
    va_end (args);
    while (rc == 0 && (rc = sf_store_step (self, stmt, err)) == 1)
        ;
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return rc == 0? sqlite3_changes (self->db): -1;
}

zlistx_t *
sf_store_strings (sf_store_t *self, sf_err_t *err, const char *sql,
                  const char *types, ...)
{
    assert (self);
    va_list args;
    va_start (args, types);
    sqlite3_stmt *stmt = s_prepare_va (self, err, sql, types, args);
    va_end (args);
    if (!stmt)
        return NULL;
    zlistx_t *strings = zlistx_new ();
    zlistx_set_destructor (strings, (zlistx_destructor_fn *) zstr_free);
    int rc;
    while ((rc = sf_store_step (self, stmt, err)) == 1)
        zlistx_add_end (strings, strdup (sf_store_text (stmt, 0)));
    sqlite3_finalize (stmt);
    if (rc < 0)
        zlistx_destroy (&strings);
    return strings;
}

const char *
sf_store_text (sqlite3_stmt *stmt, int col)
{
    const char *text = (const char *) sqlite3_column_text (stmt, col);
    return text? text: "";
}

//  --------------------------------------------------------------------------
//  Nodes

int
sf_store_node_hello (sf_store_t *self, const char *name, const char *software,
                     int64_t max_jobs, int64_t now_ms, sf_err_t *err)
{
    assert (self);
    int rc = sf_store_exec (self, err,
        "INSERT INTO nodes (name, state, last_seen, software, max_jobs)"
        " VALUES (?1, 'up', ?2, ?3, ?4)"
        " ON CONFLICT (name) DO UPDATE SET state = 'up', last_seen = ?2,"
        " software = ?3, max_jobs = ?4",
        "sisi", name, now_ms, software? software: "", max_jobs);
    return rc < 0? -1: 0;
}

int
sf_store_node_seen (sf_store_t *self, const char *name, int64_t now_ms,
                    int64_t running_jobs, sf_err_t *err)
{
    assert (self);
    int rc = sf_store_exec (self, err,
        "UPDATE nodes SET last_seen = ?2, running_jobs = ?3 WHERE name = ?1",
        "sii", name, now_ms, running_jobs);
    return rc < 0? -1: 0;
}

int
sf_store_node_state (sf_store_t *self, const char *name, const char *state,
                     sf_err_t *err)
{
    assert (self);
    assert (streq (state, "up") || streq (state, "down"));
    int rc = sf_store_exec (self, err, "UPDATE nodes SET state = ?2 WHERE name = ?1",
                            "ss", name, state);
    if (rc == 0)
        return sf_err_set (err, SF_ENOENT, "no node '%s'", name);
    return rc < 0? -1: 0;
}

int
sf_store_node_set_max_pause (sf_store_t *self, const char *name, int64_t max_pause_ms,
                             sf_err_t *err)
{
    assert (self);
    int rc = sf_store_exec (self, err, "UPDATE nodes SET max_pause_ms = ?2 WHERE name = ?1"
                            " AND max_pause_ms <> ?2", "si", name, max_pause_ms);
    return rc < 0? -1: 0;
}

int64_t
sf_store_node_max_pause (sf_store_t *self, const char *name, sf_err_t *err)
{
    assert (self);
    sqlite3_stmt *stmt = sf_store_prepare (self, err, "SELECT max_pause_ms FROM nodes"
                                           " WHERE name = ?1", "s", name);
    if (!stmt)
        return -1;
    int rc = sf_store_step (self, stmt, err);
    int64_t ms = rc == 1? sqlite3_column_int64 (stmt, 0): rc == 0? 0: -1;
    sqlite3_finalize (stmt);
    return ms;
}

zlistx_t *
sf_store_nodes_up (sf_store_t *self, sf_err_t *err)
{
    assert (self);
    return sf_store_strings (self, err,
        "SELECT name FROM nodes WHERE state = 'up' ORDER BY name", "");
}

//  RFC 3339 string for ms since the epoch, or JSON null for 0

static json_t *
s_time_json (int64_t ms)
{
    char buf [40];
    return ms > 0? json_string (sf_time_rfc3339 (ms, buf, sizeof (buf))): json_null ();
}

json_t *
sf_store_nodes_json (sf_store_t *self, sf_err_t *err)
{
    assert (self);
    sqlite3_stmt *stmt = sf_store_prepare (self, err,
        "SELECT name, state, last_seen, running_jobs,"
        " (SELECT COUNT (*) FROM instances i WHERE i.node = n.name)"
        " FROM nodes n ORDER BY name", "");
    if (!stmt)
        return NULL;
    json_t *nodes = json_array ();
    int rc;
    while ((rc = sf_store_step (self, stmt, err)) == 1)
        json_array_append_new (nodes, json_pack ("{s:s, s:s, s:o, s:I, s:I}",
            "name", sf_store_text (stmt, 0),
            "state", sf_store_text (stmt, 1),
            "last_seen", s_time_json (sqlite3_column_int64 (stmt, 2)),
            "instances", (json_int_t) sqlite3_column_int64 (stmt, 4),
            "running_jobs", (json_int_t) sqlite3_column_int64 (stmt, 3)));
    sqlite3_finalize (stmt);
    if (rc < 0)
        json_decref (nodes);
    return rc < 0? NULL: nodes;
}

//  --------------------------------------------------------------------------
//  Instances

static const char *
s_state_name (int state)
{
    switch (state) {
        case SF_STATE_RUNNING:  return "running";
        case SF_STATE_PAUSED:   return "paused";
        case SF_STATE_SHUTOFF:  return "shutoff";
        default:                return "other";
    }
}

static const char *
s_disk_type_name (int type)
{
    switch (type) {
        case SF_DISK_FILE:      return "file";
        case SF_DISK_BLOCK:     return "block";
        case SF_DISK_RBD:       return "rbd";
        default:                return "other";
    }
}

static json_int_t
s_clamp (uint64_t value)
{
    return value > INT64_MAX? INT64_MAX: (json_int_t) value;
}

//  The disks of an instance as the JSON text we store (the CLI's shape)

static char *
s_disks_text (const sf_instance_t *instance)
{
    json_t *disks = json_array ();
    for (size_t d = 0; d < instance->n_disks; d++) {
        const sf_disk_t *disk = instance->disks [d];
        json_t *chain = json_array ();
        for (size_t c = 0; c < disk->n_backing_chain; c++)
            json_array_append_new (chain, sf_store_json_string (disk->backing_chain [c]));
        json_array_append_new (disks, json_pack ("{s:o, s:s, s:o, s:o, s:I, s:I, s:o}",
            "target", sf_store_json_string (disk->target),
            "type", s_disk_type_name (disk->type),
            "source", sf_store_json_string (disk->source),
            "format", sf_store_json_string (disk->format),
            "virtual_size", s_clamp (disk->virtual_size),
            "allocated_size", s_clamp (disk->allocated_size),
            "backing_chain", chain));
    }
    char *text = json_dumps (disks, JSON_COMPACT);
    json_decref (disks);
    assert (text);
    return text;
}

static int
s_insert_instance (sf_store_t *self, const char *node, const sf_instance_t *instance,
                   sf_err_t *err)
{
    char *disks = s_disks_text (instance);
    json_t *tags_json = json_object ();
    for (size_t i = 0; i < instance->n_tags; i++)
        json_object_set_new (tags_json, instance->tags [i]->key,
                             sf_store_json_string (instance->tags [i]->value));
    char *tags = json_dumps (tags_json, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref (tags_json);
    const char *storage_class = instance->storage_class && *instance->storage_class
                              ? instance->storage_class: "none";
    //  The same uuid twice in one inventory: the last one wins
    int rc = sf_store_exec (self, err,
        "INSERT OR REPLACE INTO instances (node, uuid, name, state, storage_class, disks,"
        " tags) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        "sssssss", node, instance->uuid, instance->name,
        s_state_name (instance->state), storage_class, disks, tags? tags: "{}");
    free (tags);
    free (disks);
    return rc < 0? -1: 0;
}

//  Set the ambiguous column of every row of uuid: '' if one node reports
//  it, else on each row "uuid also reported by node 'n2'" (or "by nodes
//  'n2', 'n3'"), the other nodes in name order

static int
s_ambiguity (sf_store_t *self, const char *uuid, sf_err_t *err)
{
    zlistx_t *list = sf_store_strings (self, err,
        "SELECT node FROM instances WHERE uuid = ?1 ORDER BY node", "s", uuid);
    if (!list)
        return -1;
    size_t count = zlistx_size (list);
    const char **nodes = (const char **) calloc (count + 1, sizeof (char *));
    assert (nodes);
    nodes [0] = (const char *) zlistx_first (list);
    for (size_t i = 1; i < count; i++)
        nodes [i] = (const char *) zlistx_next (list);
    int rc = 0;
    if (count <= 1)
        rc = sf_store_exec (self, err, "UPDATE instances SET ambiguous = '' WHERE"
                            " uuid = ?1 AND ambiguous <> ''", "s", uuid);
    for (size_t row = 0; count > 1 && row < count && rc >= 0; row++) {
        char reason [512];
        int used = snprintf (reason, sizeof (reason), "uuid also reported by node%s ",
                             count > 2? "s": "");
        for (size_t other = 0, listed = 0; other < count; other++)
            if (other != row && used > 0 && (size_t) used < sizeof (reason))
                used += snprintf (reason + used, sizeof (reason) - (size_t) used, "%s'%s'",
                                  listed++? ", ": "", nodes [other]);
        rc = sf_store_exec (self, err, "UPDATE instances SET ambiguous = ?3"
                            " WHERE uuid = ?1 AND node = ?2", "sss", uuid, nodes [row],
                            reason);
    }
    free (nodes);
    zlistx_destroy (&list);
    return rc < 0? -1: 0;
}

int
sf_store_inventory (sf_store_t *self, const char *node,
                    const sf_inventory_t *inventory, sf_err_t *err)
{
    assert (self);
    assert (inventory);
    if (sf_store_begin (self, err))
        return -1;
    //  The uuids whose ambiguity may change: the node's old and new ones
    zlistx_t *uuids = sf_store_strings (self, err,
        "SELECT uuid FROM instances WHERE node = ?1", "s", node);
    if (!uuids)
        goto failed;
    if (sf_store_exec (self, err, "DELETE FROM instances WHERE node = ?1", "s", node) < 0)
        goto failed;
    for (size_t i = 0; i < inventory->n_instances; i++) {
        if (s_insert_instance (self, node, inventory->instances [i], err))
            goto failed;
        const char *uuid = inventory->instances [i]->uuid;
        zlistx_add_end (uuids, strdup (uuid? uuid: ""));
    }
    zlistx_set_comparator (uuids, (zlistx_comparator_fn *) strcmp);
    zlistx_sort (uuids);
    const char *previous = NULL;
    for (const char *uuid = (const char *) zlistx_first (uuids); uuid;
         uuid = (const char *) zlistx_next (uuids)) {
        if (previous && streq (previous, uuid))
            continue;
        if (s_ambiguity (self, uuid, err))
            goto failed;
        previous = uuid;
    }
    zlistx_destroy (&uuids);
    return sf_store_commit (self, err);
 failed:
    zlistx_destroy (&uuids);
    sf_store_rollback (self);
    return -1;
}

static json_t *
s_instance_json (sqlite3_stmt *stmt)
{
    const char *state = sf_store_text (stmt, 3);
    const char *storage_class = sf_store_text (stmt, 4);
    const char *strategy = sf_strategy_choose (state, storage_class, NULL);
    json_t *disks = json_loads (sf_store_text (stmt, 5), 0, NULL);
    if (!json_is_array (disks)) {
        json_decref (disks);
        disks = json_array ();
    }
    json_t *tags = json_loads (sf_store_text (stmt, 6), 0, NULL);
    if (!json_is_object (tags)) {
        json_decref (tags);
        tags = json_object ();
    }
    const char *ambiguous = sf_store_text (stmt, 7);
    return json_pack ("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o}",
        "uuid", sf_store_text (stmt, 0),
        "name", sf_store_text (stmt, 1),
        "node", sf_store_text (stmt, 2),
        "state", state,
        "storage_class", storage_class,
        "strategy", strategy? json_string (strategy): json_null (),
        "disks", disks,
        "tags", tags,
        "ambiguous", *ambiguous? json_string (ambiguous): json_null ());
}

//  The instances of node (all if NULL) whose uuid or name is match (any
//  if NULL): uuid, name, node, state, storage_class, disks, tags, ambiguous

static sqlite3_stmt *
s_instances_query (sf_store_t *self, const char *node, const char *match, sf_err_t *err)
{
    return sf_store_prepare (self, err,
        "SELECT uuid, name, node, state, storage_class, disks, tags, ambiguous"
        " FROM instances"
        " WHERE (?1 IS NULL OR node = ?1) AND (?2 IS NULL OR uuid = ?2 OR name = ?2)"
        " ORDER BY name, node, uuid",
        "ss", node, match);
}

json_t *
sf_store_instances_json (sf_store_t *self, const char *node, const char *match,
                         sf_err_t *err)
{
    assert (self);
    sqlite3_stmt *stmt = s_instances_query (self, node, match, err);
    if (!stmt)
        return NULL;
    json_t *instances = json_array ();
    int rc;
    while ((rc = sf_store_step (self, stmt, err)) == 1)
        json_array_append_new (instances, s_instance_json (stmt));
    sqlite3_finalize (stmt);
    if (rc < 0)
        json_decref (instances);
    return rc < 0? NULL: instances;
}

//  --------------------------------------------------------------------------
//  The database's files

int
sf_store_secure_files (const char *path, sf_err_t *err)
{
    assert (path);
    const char *suffixes [] = { "", "-wal", "-shm", NULL };
    for (int i = 0; suffixes [i]; i++) {
        char *name = zsys_sprintf ("%s%s", path, suffixes [i]);
        int rc = 0;
        int fd = open (name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        struct stat st;
        if (fd < 0) {
            if (errno != ENOENT)
                rc = sf_err_set (err, SF_EIO, "database file '%s' cannot be opened: %s%s",
                                 name, strerror (errno), errno == ELOOP
                                 ? " (it is a symlink)": "");
        }
        else
        if (fstat (fd, &st) || !S_ISREG (st.st_mode))
            rc = sf_err_set (err, SF_EIO, "database file '%s' is not a regular file", name);
        else
        if (st.st_uid != geteuid ())
            rc = sf_err_set (err, SF_EIO, "database file '%s' belongs to uid %u, not to "
                             "this user (%u): not ours", name, (unsigned) st.st_uid,
                             (unsigned) geteuid ());
        else
        if ((st.st_mode & 077) && fchmod (fd, st.st_mode & 0700 & ~0100))
            rc = sf_err_set (err, SF_EIO, "cannot make database file '%s' private: %s",
                             name, strerror (errno));
        if (fd >= 0)
            close (fd);
        zstr_free (&name);
        if (rc)
            return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Pages

json_t *
sf_store_page (sf_store_t *self, sqlite3_stmt *stmt, int64_t limit,
               sf_store_row_fn *row, sf_store_cursor_fn *cursor, void *arg,
               char **next_p, sf_err_t *err)
{
    assert (self && stmt && row && cursor && next_p);
    *next_p = NULL;
    json_t *rows = json_array ();
    char *last = NULL;
    int rc;
    while ((rc = sf_store_step (self, stmt, err)) == 1) {
        if ((int64_t) json_array_size (rows) == limit) {
            *next_p = last;     //  One more row: another page follows
            last = NULL;
            break;
        }
        json_t *item = row (arg, stmt, err);
        if (!item) {
            rc = -1;
            break;
        }
        json_array_append_new (rows, item);
        free (last);
        last = cursor (stmt);
    }
    free (last);
    sqlite3_finalize (stmt);
    if (rc < 0) {
        json_decref (rows);
        zstr_free (next_p);
        return NULL;
    }
    return rows;
}

json_t *
sf_store_cursor_parse (const char *after, const char *types, sf_err_t *err)
{
    assert (after && types);
    json_t *cursor = json_loads (after, 0, NULL);
    bool ok = json_is_array (cursor) && json_array_size (cursor) == strlen (types);
    for (size_t i = 0; ok && types [i]; i++) {
        json_t *item = json_array_get (cursor, i);
        ok = types [i] == 's'? json_is_string (item): json_is_integer (item);
    }
    if (!ok) {
        json_decref (cursor);
        sf_err_set (err, SF_EINVAL, "'%.64s' is not a cursor of this list (use the "
                    "'next' of the previous page)", after);
        return NULL;
    }
    return cursor;
}

static json_t *
s_instance_row (void *arg, sqlite3_stmt *stmt, sf_err_t *err)
{
    (void) arg;
    (void) err;
    return s_instance_json (stmt);
}

static char *
s_instance_cursor (sqlite3_stmt *stmt)
{
    json_t *cursor = json_pack ("[s, s, s]", sf_store_text (stmt, 1),
                                sf_store_text (stmt, 2), sf_store_text (stmt, 0));
    char *text = json_dumps (cursor, JSON_COMPACT);
    json_decref (cursor);
    return text;
}

json_t *
sf_store_instances_page (sf_store_t *self, const char *node, const char *after,
                         int64_t limit, char **next_p, sf_err_t *err)
{
    assert (self && limit > 0);
    json_t *cursor = NULL;
    if (after && !(cursor = sf_store_cursor_parse (after, "sss", err)))
        return NULL;
    sqlite3_stmt *stmt = sf_store_prepare (self, err,
        "SELECT uuid, name, node, state, storage_class, disks, tags, ambiguous"
        " FROM instances WHERE (?1 IS NULL OR node = ?1)"
        "   AND (?2 IS NULL OR (name, node, uuid) > (?2, ?3, ?4))"
        " ORDER BY name, node, uuid LIMIT ?5",
        "ssssi", node, json_string_value (json_array_get (cursor, 0)),
        json_string_value (json_array_get (cursor, 1)),
        json_string_value (json_array_get (cursor, 2)), limit + 1);
    json_decref (cursor);
    if (!stmt)
        return NULL;
    return sf_store_page (self, stmt, limit, s_instance_row, s_instance_cursor, NULL,
                          next_p, err);
}

//  --------------------------------------------------------------------------
//  Instances as typed records

void
sf_instance_rec_destroy (sf_instance_rec_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_instance_rec_t *self = *self_p;
        free (self->uuid);
        free (self->name);
        free (self->node);
        free (self->state);
        free (self->storage_class);
        free (self->ambiguous);
        zhashx_destroy (&self->tags);
        for (size_t i = 0; i < self->n_disks; i++) {
            free (self->disks [i].target);
            free (self->disks [i].type);
            free (self->disks [i].source);
        }
        free (self->disks);
        free (self);
        *self_p = NULL;
    }
}

static char *
s_json_strdup (json_t *object, const char *key)
{
    const char *text = json_string_value (json_object_get (object, key));
    return strdup (text? text: "");
}

//  The disks column (the JSON text s_disks_text wrote) into rec

static void
s_disks_rec (sf_instance_rec_t *rec, const char *text)
{
    json_t *disks = json_loads (text, 0, NULL);
    size_t count = json_is_array (disks)? json_array_size (disks): 0;
    rec->disks = (sf_disk_rec_t *) calloc (count? count: 1, sizeof (sf_disk_rec_t));
    assert (rec->disks);
    rec->n_disks = count;
    for (size_t i = 0; i < count; i++) {
        json_t *disk = json_array_get (disks, i);
        rec->disks [i].target = s_json_strdup (disk, "target");
        rec->disks [i].type = s_json_strdup (disk, "type");
        rec->disks [i].source = s_json_strdup (disk, "source");
        rec->disks [i].virtual_size = json_integer_value (json_object_get (disk,
                                                                           "virtual_size"));
        rec->disks [i].allocated_size = json_integer_value (json_object_get (disk,
                                                                             "allocated_size"));
    }
    json_decref (disks);
}

//  The tags column (a JSON object of strings) into rec

static void
s_tags_rec (sf_instance_rec_t *rec, const char *text)
{
    rec->tags = zhashx_new ();
    zhashx_set_destructor (rec->tags, (zhashx_destructor_fn *) zstr_free);
    zhashx_set_duplicator (rec->tags, (zhashx_duplicator_fn *) strdup);
    json_t *tags = json_loads (text, 0, NULL);
    const char *key;
    json_t *value;
    if (json_is_object (tags))
        json_object_foreach (tags, key, value)
            if (json_is_string (value))
                zhashx_insert (rec->tags, key, (void *) json_string_value (value));
    json_decref (tags);
}

zlistx_t *
sf_store_instances (sf_store_t *self, const char *node, const char *match, sf_err_t *err)
{
    assert (self);
    sqlite3_stmt *stmt = s_instances_query (self, node, match, err);
    if (!stmt)
        return NULL;
    zlistx_t *list = zlistx_new ();
    zlistx_set_destructor (list, (zlistx_destructor_fn *) sf_instance_rec_destroy);
    int rc;
    while ((rc = sf_store_step (self, stmt, err)) == 1) {
        sf_instance_rec_t *rec = (sf_instance_rec_t *) zmalloc (sizeof (sf_instance_rec_t));
        rec->uuid = strdup (sf_store_text (stmt, 0));
        rec->name = strdup (sf_store_text (stmt, 1));
        rec->node = strdup (sf_store_text (stmt, 2));
        rec->state = strdup (sf_store_text (stmt, 3));
        rec->storage_class = strdup (sf_store_text (stmt, 4));
        s_disks_rec (rec, sf_store_text (stmt, 5));
        s_tags_rec (rec, sf_store_text (stmt, 6));
        rec->ambiguous = strdup (sf_store_text (stmt, 7));
        zlistx_add_end (list, rec);
    }
    sqlite3_finalize (stmt);
    if (rc < 0)
        zlistx_destroy (&list);
    return list;
}
