/*  =========================================================================
    sf_store - the scheduler's SQLite database: connection, schema, nodes
    and instances

    One connection, owned by the scheduler's main thread. WAL journal,
    synchronous=FULL (a commit is on disk before we act on it or answer),
    foreign keys on, a busy timeout. The schema is versioned with PRAGMA
    user_version; migrations run in order, each in its own transaction.
    Jobs, events and images live in sf_jobs, which uses this connection.

    Every table comes from these migrations; the class named writes it.
    Tables (version 11):
      nodes      name, state up|down, last_seen, software, max_jobs,
                 running_jobs, max_pause_ms (version 11) (sf_store)
      instances  node, uuid (the key: an instance is (node, uuid)), name,
                 state, storage_class, disks (JSON), tags (JSON, version
                 3), ambiguous ('' or why: the uuid is also reported by
                 another node, version 8) (sf_store)
      jobs       id "J<seq>", instance_uuid, instance_name, node, state,
                 phase, attempt, strategy, consistency, timings, bytes,
                 error_code, error_text, created, updated, note (text of
                 an ok result, version 2), bulk_id, priority, deadline,
                 window_end, est_bytes (version 3), state 'cancelled',
                 cancel_at, not_before, attempt_started (version 9) (sf_jobs)
      job_events job_id, phase, ms, bytes, at_ms, text (sf_jobs)
      job_attempts  job_id, attempt, node, error_code, error_text, started,
                 ended: how each attempt of a job ended (version 9) (sf_jobs)
      images     store, id, path, size, sha256, job_id, instance_uuid,
                 instance_name, disk_target, format, created (sf_jobs)
      bulks      id, created, select_json, strategy, priority, deadline,
                 window_end, schedule, state, total, finished (version 3),
                 schedule_seq (the schedule's identity, version 7) (sf_bulk)
      schedules  see sf_schedules.h (version 4; seq, version 7) (sf_schedules)
      retention_deletes  see sf_retention.h (version 5) (sf_retention)
      pause_holds  job_id, node, until_ms: pause slots kept for jobs that
                 ended without word from their node (version 11)
                 (sf_dispatch)
    Times are integer ms since the epoch; sizes integer bytes.
    =========================================================================
*/
#ifndef SF_STORE_H_INCLUDED
#define SF_STORE_H_INCLUDED

#include <jansson.h>
#include <sqlite3.h>

typedef struct _sf_store_t sf_store_t;

//  Schema version this build writes (PRAGMA user_version after migration)
#define SF_STORE_VERSION 15

//  Open (creating if needed) the database at path and migrate it to
//  SF_STORE_VERSION. Returns NULL with err set (SF_EDB) if it cannot be
//  opened, is not a database, or has a newer schema than this build.
//  Caller owns the result.
sf_store_t *
    sf_store_new (const char *path, sf_err_t *err);

//  Close the database. Nullifies *self_p.
void
    sf_store_destroy (sf_store_t **self_p);

//  The catalogue id of this database: SF_NAMING_ID_LEN random lowercase
//  hex digits, made once by migration 6 and never changed. Every object a
//  job makes is named from it (sf_naming), so a fresh database never meets
//  an older one's objects. Borrowed; valid while self lives.
const char *
    sf_store_catalog_id (sf_store_t *self);

//  The raw connection, for sf_jobs. Borrowed; valid while self lives.
sqlite3 *
    sf_store_db (sf_store_t *self);

//  Transactions nest (SQLite savepoints): begin, then exactly one of
//  commit or rollback. The outermost commit is durable when it returns.
//  Return 0 or -1 with err set (SF_EDB).
int
    sf_store_begin (sf_store_t *self, sf_err_t *err);
int
    sf_store_commit (sf_store_t *self, sf_err_t *err);
void
    sf_store_rollback (sf_store_t *self);

//  Prepare sql and bind parameters ?1, ?2, ... from the varargs described
//  by types: 's' const char * (NULL binds NULL), 'i' int64_t, 'u' uint64_t
//  (clamped to INT64_MAX). Returns the statement (caller finalizes it) or
//  NULL with err set.
sqlite3_stmt *
    sf_store_prepare (sf_store_t *self, sf_err_t *err, const char *sql,
                      const char *types, ...);

//  As sf_store_prepare, for a query run very often: the statement stays
//  prepared (keyed by the sql pointer). The caller steps it and then
//  hands it back with sf_store_done, never sqlite3_finalize.
sqlite3_stmt *
    sf_store_query (sf_store_t *self, sf_err_t *err, const char *sql,
                    const char *types, ...);
void
    sf_store_done (sqlite3_stmt *stmt);

//  Step stmt once. Returns 1 for a row, 0 when done, -1 with err set.
int
    sf_store_step (sf_store_t *self, sqlite3_stmt *stmt, sf_err_t *err);

//  Prepare, bind (as sf_store_prepare), run to completion and finalize.
//  Returns the number of rows changed, or -1 with err set.
int
    sf_store_exec (sf_store_t *self, sf_err_t *err, const char *sql,
                   const char *types, ...);

//  Prepare, bind (as sf_store_prepare) and run a query, and finalize it.
//  Returns the first column of its rows, in order, as a list of strings
//  (the list frees them; caller owns it), or NULL with err set.
zlistx_t *
    sf_store_strings (sf_store_t *self, sf_err_t *err, const char *sql,
                      const char *types, ...);

//  Text of column col, "" for NULL. Valid until the next step/finalize.
const char *
    sf_store_text (sqlite3_stmt *stmt, int col);

//  Text from workers is not checked for UTF-8 on the wire, and JSON needs
//  it. Returns a JSON string of text with every invalid byte replaced by
//  '?' (NULL text gives ""). Caller owns the result. Every string bound
//  through sf_store_prepare is cleaned the same way, so what the database
//  holds is always valid UTF-8.
json_t *
    sf_store_json_string (const char *text);

//  --------------------------------------------------------------------------
//  Nodes

//  A worker said hello: insert or update the node, state up. Returns 0 or
//  -1 with err set.
int
    sf_store_node_hello (sf_store_t *self, const char *name,
                         const char *software, int64_t max_jobs,
                         int64_t now_ms, sf_err_t *err);

//  Record the node's last message time and its running job count.
int
    sf_store_node_seen (sf_store_t *self, const char *name, int64_t now_ms,
                        int64_t running_jobs, sf_err_t *err);

//  Set the node's state, "up" or "down". Returns 0 or -1 with err set
//  (SF_ENOENT if there is no such node).
int
    sf_store_node_state (sf_store_t *self, const char *name,
                         const char *state, sf_err_t *err);

//  Record the node's max_pause (ms, from its hello: how long its guard
//  lets a guest stay paused). Returns 0 (also for an unknown node) or -1
//  with err set.
int
    sf_store_node_set_max_pause (sf_store_t *self, const char *name,
                                 int64_t max_pause_ms, sf_err_t *err);

//  The node's max_pause in ms as last recorded, 0 if unknown (no node, or
//  a worker that did not say), or -1 with err set.
int64_t
    sf_store_node_max_pause (sf_store_t *self, const char *name, sf_err_t *err);

//  Names of the nodes in state up, as a list of strings. Caller owns the
//  list. Returns NULL with err set on a database error.
zlistx_t *
    sf_store_nodes_up (sf_store_t *self, sf_err_t *err);

//  The nodes as the CLI shows them: an array of {"name","state",
//  "last_seen","instances","running_jobs"}. Caller owns the result.
json_t *
    sf_store_nodes_json (sf_store_t *self, sf_err_t *err);

//  Make the database file at path and its -wal and -shm files private
//  before they are opened: each that exists must be a regular file (not a
//  symlink) owned by this user, and is chmod-ed to 0600 if its mode lets
//  anyone else in (SQLite gives -wal and -shm the database's mode).
//  Returns 0, or -1 with err set (SF_EIO, naming the file and why).
int
    sf_store_secure_files (const char *path, sf_err_t *err);

//  --------------------------------------------------------------------------
//  Instances

//  Replace the node's instances with the inventory, in one transaction.
//  Another node's rows are never changed, except their ambiguity: every
//  row of a uuid that more than one node reports is ambiguous, with the
//  reason "uuid also reported by node 'n2'" ("by nodes 'n2', 'n3'"), until
//  only one node reports it. Returns 0 or -1 with err set (and the old
//  inventory kept).
int
    sf_store_inventory (sf_store_t *self, const char *node,
                        const sf_inventory_t *inventory, sf_err_t *err);

//  The instances as the CLI shows them: an array of {"uuid","name","node",
//  "state","storage_class","strategy","disks":[...],"tags","ambiguous"},
//  strategy null when none applies, ambiguous null or the reason. Only node's instances if node is not NULL; only those
//  whose uuid or name equals match if match is not NULL. Caller owns the
//  result.
json_t *
    sf_store_instances_json (sf_store_t *self, const char *node,
                             const char *match, sf_err_t *err);

//  One page of the instances as above (node may be NULL, no match), in
//  the order (name, node, uuid): at most limit of them after the cursor
//  after (NULL: from the start). *next_p is set to the cursor of the last
//  one if more follow, else NULL (caller frees it). A cursor is the text
//  of a JSON array [name, node, uuid]; another is SF_EINVAL.
json_t *
    sf_store_instances_page (sf_store_t *self, const char *node, const char *after,
                             int64_t limit, char **next_p, sf_err_t *err);

//  Pages of rows, for the list commands: a row's JSON object and its
//  cursor (caller frees), from a row of stmt
typedef json_t *(sf_store_row_fn) (void *arg, sqlite3_stmt *stmt, sf_err_t *err);
typedef char *(sf_store_cursor_fn) (sqlite3_stmt *stmt);

//  Step stmt (a query with LIMIT limit + 1; finalized here) and return
//  the array of the first limit rows made by row; *next_p is the cursor
//  of the last of them if one more row came, else NULL. NULL with err set
//  on an error.
json_t *
    sf_store_page (sf_store_t *self, sqlite3_stmt *stmt, int64_t limit,
                   sf_store_row_fn *row, sf_store_cursor_fn *cursor, void *arg,
                   char **next_p, sf_err_t *err);

//  Parse cursor text after: a JSON array whose items have the JSON types
//  in types ('s' string, 'i' integer). Returns it (caller decrefs) or
//  NULL with err set (SF_EINVAL naming it).
json_t *
    sf_store_cursor_parse (const char *after, const char *types, sf_err_t *err);

//  --------------------------------------------------------------------------
//  Instances as typed records (what the scheduler's core works on)

//  A disk of an instance, as its last inventory reported it
typedef struct {
    char *target;               //  "vda"
    char *type;                 //  "file", "block", "rbd" or "other"
    char *source;               //  Path, or pool/image for RBD
    int64_t virtual_size;       //  Bytes, 0 if unknown
    int64_t allocated_size;     //  Bytes, 0 if unknown
} sf_disk_rec_t;

//  An instance, as its node's last inventory reported it
typedef struct {
    char *uuid;
    char *name;
    char *node;
    char *state;                //  "running", "paused", "shutoff", "other"
    char *storage_class;        //  "file", "rbd", "mixed", "none", ...
    char *ambiguous;            //  "" or why it is (another node reports
                                //  its uuid too): no snapshot until not
    zhashx_t *tags;             //  Owned: key -> value (strings)
    size_t n_disks;
    sf_disk_rec_t *disks;       //  Owned array of n_disks
} sf_instance_rec_t;

//  Destroy a record. Nullifies *self_p.
void
    sf_instance_rec_destroy (sf_instance_rec_t **self_p);

//  The instances (sf_instance_rec_t) ordered by name, node and uuid: only
//  node's if node is not NULL, only those whose uuid or name equals match
//  if match is not NULL. Caller owns the list (it destroys its records);
//  NULL with err set on a database error.
zlistx_t *
    sf_store_instances (sf_store_t *self, const char *node, const char *match,
                        sf_err_t *err);

//  For sf_store's self test (sf_store_selftest.c) only:

//  Run a script of SQL statements (no result rows). Returns 0, or -1 with
//  err set (SF_EDB).
int
    sf_store_script (sf_store_t *self, const char *sql, sf_err_t *err);

//  Read PRAGMA user_version into *version. Returns 0, or -1 with err set.
int
    sf_store_user_version (sf_store_t *self, int *version, sf_err_t *err);

//  The script of migration index (0 .. SF_STORE_VERSION - 1), which
//  brings user_version from index to index + 1.
const char *
    sf_store_migration (int index);

//  Self test of this class
void
    sf_store_test (bool verbose);

#endif
