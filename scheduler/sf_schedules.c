/*  =========================================================================
    sf_schedules - schedules: a calendar (systemd OnCalendar), a selection
    of instances, a window and keep-* rules; firing, catch-up

    The table holds the last consumed elapse of each schedule (epoch s);
    the next one is computed from it (or from the creation time) with
    sf_calendar_next. The tick is cheap between elapses: it remembers the
    earliest next elapse and only reads the table when that is due (or
    every minute, in case the clock jumped).
    =========================================================================
*/
#include "sf_sched_classes.h"

struct _sf_schedules_t {
    sf_store_t *store;              //  Borrowed from the scheduler
    sf_jobs_t *jobs;                //  Borrowed: counts a last bulk's jobs
    sf_schedules_fire_fn *fire;     //  Creates a bulk
    void *arg;                      //  For fire
    int64_t due_ms;                 //  Earliest next elapse, 0 = unknown
    int64_t checked_ms;             //  When due_ms was computed
    int64_t clock_ms;               //  Test clock for add/list, 0 = real
    bool started;                   //  sf_schedules_start was called
    sf_schedules_verify_fn *verify; //  Samples of the runs, NULL = none
    void *verify_arg;
};

SF_LOG_MODULE ("sched.schedules");

#define SCHEDULE_COLUMNS \
    "name, calendar, select_json, strategy, priority, window_ms, keep_last," \
    " keep_daily, keep_weekly, keep_monthly, created, elapse, last_run, last_bulk," \
    " last_error, verify_sample"

//  Largest keep-* value, priority magnitude and window accepted
#define MAX_KEEP        1000000
#define MAX_PRIORITY    1000000
#define MAX_WINDOW_MS   (366LL * 24 * 3600 * 1000)
#define MAX_INSTANCES   4096
#define MAX_SAMPLE      100             //  images verified per run

//  Recheck the table at least this often, whatever due_ms says
#define RECHECK_MS      60000

//  --------------------------------------------------------------------------
//  Constructor and destructor

sf_schedules_t *
sf_schedules_new (sf_store_t *store, sf_jobs_t *jobs, sf_schedules_fire_fn *fire,
                  void *arg, sf_err_t *err)
{
    assert (store);
    assert (jobs);
    assert (fire);
    (void) err;                 //  Nothing fails: sf_store made the table
    sf_schedules_t *self = (sf_schedules_t *) zmalloc (sizeof (sf_schedules_t));
    self->store = store;
    self->jobs = jobs;
    self->fire = fire;
    self->arg = arg;
    return self;
}

void
sf_schedules_set_verify (sf_schedules_t *self, sf_schedules_verify_fn *verify, void *arg)
{
    assert (self);
    self->verify = verify;
    self->verify_arg = arg;
}

void
sf_schedules_destroy (sf_schedules_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

static int64_t
s_now (sf_schedules_t *self)
{
    return self->clock_ms? self->clock_ms: sf_time_now_ms ();
}

//  --------------------------------------------------------------------------
//  Calendar helpers

//  The first elapse strictly after after_s, or -1 for none

static int64_t
s_next (sf_calendar_t *calendar, int64_t after_s)
{
    int64_t next = sf_calendar_next (calendar, after_s);
    if (next >= 0 && next <= after_s)       //  Whatever "after" means there
        next = sf_calendar_next (calendar, after_s + 1);
    return next;
}

//  The latest elapse at or before now_s, given first, the first one after
//  the anchor (first <= now_s). Looks back from now with a doubling step,
//  so a schedule that elapses every second and was down for a month costs
//  a few dozen calls, not millions.

static int64_t
s_latest (sf_calendar_t *calendar, int64_t first, int64_t now_s)
{
    int64_t elapse = first;
    int64_t next = s_next (calendar, elapse);
    if (next < 0 || next > now_s)
        return elapse;
    for (int64_t step = 1; now_s - step > first; step *= 2) {
        int64_t found = s_next (calendar, now_s - step);
        if (found >= 0 && found <= now_s) {
            elapse = found;
            break;
        }
    }
    while ((next = s_next (calendar, elapse)) >= 0 && next <= now_s)
        elapse = next;
    return elapse;
}

//  --------------------------------------------------------------------------
//  Request validation

//  A number argument: a JSON integer or a decimal string, within [min, max].
//  Returns 0 (value set, or left as is if absent) or -1 with err set.

static int
s_number (json_t *request, const char *key, int64_t min, int64_t max,
          int64_t *value, sf_err_t *err)
{
    json_t *item = json_object_get (request, key);
    if (!item)
        return 0;
    int64_t number = 0;
    if (json_is_integer (item))
        number = json_integer_value (item);
    else
    if (json_is_string (item)) {
        const char *text = json_string_value (item);
        char *end = NULL;
        errno = 0;
        long long parsed = strtoll (text, &end, 10);
        if (!*text || *end || errno || !(isdigit ((unsigned char) *text) || *text == '-'))
            return sf_err_set (err, SF_EINVAL, "'%s' must be an integer, not '%.64s'",
                               key, text);
        number = parsed;
    }
    else
        return sf_err_set (err, SF_EINVAL, "'%s' must be an integer", key);
    if (number < min || number > max)
        return sf_err_set (err, SF_EINVAL, "'%s' must be between %" PRId64 " and %"
                           PRId64 ", not %" PRId64, key, min, max, number);
    *value = number;
    return 0;
}

//  Only keys in allowed (NULL-terminated), plus "cmd" and "id"

static int
s_check_keys (json_t *request, const char **allowed, sf_err_t *err)
{
    const char *key;
    json_t *value;
    json_object_foreach (request, key, value) {
        (void) value;
        bool known = streq (key, "cmd") || streq (key, "id");
        for (const char **scan = allowed; *scan && !known; scan++)
            known = streq (key, *scan);
        if (!known)
            return sf_err_set (err, SF_EINVAL, "unknown argument '%.64s'", key);
    }
    return 0;
}

static int
s_check_name (json_t *request, const char **name, sf_err_t *err)
{
    json_t *item = json_object_get (request, "name");
    if (!json_is_string (item))
        return sf_err_set (err, SF_EINVAL, "'name' must be given as a string");
    *name = json_string_value (item);
    if (strlen (*name) > SF_SCHEDULES_MAX_NAME || !sf_name_is_safe (*name))
        return sf_err_set (err, SF_EINVAL, "schedule name '%.64s' is not a safe name"
                           " (1..%d of A-Z a-z 0-9 . _ : -, not starting with . or -)",
                           *name, SF_SCHEDULES_MAX_NAME);
    return 0;
}

//  A selection: {"all":true} | {"node":N} | {"tag":"K=V"} | {"instances":[..]}

static int
s_check_select (json_t *select, sf_err_t *err)
{
    if (!json_is_object (select) || json_object_size (select) != 1)
        return sf_err_set (err, SF_EINVAL, "'select' must be one of {\"all\":true},"
                           " {\"node\":NAME}, {\"tag\":\"KEY=VALUE\"},"
                           " {\"instances\":[NAME, ...]}");
    json_t *item;
    if ((item = json_object_get (select, "all"))) {
        if (!json_is_true (item))
            return sf_err_set (err, SF_EINVAL, "select 'all' must be true");
    }
    else
    if ((item = json_object_get (select, "node"))) {
        if (!json_is_string (item) || !sf_name_is_safe (json_string_value (item)))
            return sf_err_set (err, SF_EINVAL, "select 'node' must be a node name");
    }
    else
    if ((item = json_object_get (select, "tag"))) {
        const char *tag = json_string_value (item);
        const char *equal = tag? strchr (tag, '='): NULL;
        if (!equal || equal == tag || strlen (tag) > SF_WIRE_MAX_STRING)
            return sf_err_set (err, SF_EINVAL, "select 'tag' must be \"KEY=VALUE\"");
    }
    else
    if ((item = json_object_get (select, "instances"))) {
        if (!json_is_array (item) || json_array_size (item) == 0
        ||  json_array_size (item) > MAX_INSTANCES)
            return sf_err_set (err, SF_EINVAL, "select 'instances' must be a list of"
                               " 1 to %d names", MAX_INSTANCES);
        size_t index;
        json_t *name;
        json_array_foreach (item, index, name) {
            const char *text = json_string_value (name);
            if (!text || !*text || strlen (text) > SF_WIRE_MAX_STRING)
                return sf_err_set (err, SF_EINVAL, "select 'instances' entry %zu is"
                                   " not a name", index + 1);
        }
    }
    else
        return sf_err_set (err, SF_EINVAL, "select: unknown selector '%.64s'",
                           json_object_iter_key (json_object_iter (select)));
    return 0;
}

//  --------------------------------------------------------------------------
//  A schedule as the CLI shows it (SCHED), from a row of SCHEDULE_COLUMNS

static json_t *
s_int_or_null (int64_t value)
{
    return value? json_integer (value): json_null ();
}

static json_t *
s_text_or_null (const char *text)
{
    return *text? sf_store_json_string (text): json_null ();
}

static json_t *
s_row_json (sf_schedules_t *self, sqlite3_stmt *stmt)
{
    const char *calendar = sf_store_text (stmt, 1);
    sf_err_t err = SF_ERR_INIT;
    sf_calendar_t *parsed = sf_calendar_parse (calendar, &err);
    json_t *normalized = json_null ();
    json_t *next_run = json_null ();
    if (parsed) {
        normalized = sf_store_json_string (sf_calendar_normalized (parsed));
        int64_t elapse = sqlite3_column_int64 (stmt, 11);
        int64_t anchor = elapse? elapse: sqlite3_column_int64 (stmt, 10) / 1000;
        int64_t now_s = s_now (self) / 1000;
        int64_t next = s_next (parsed, anchor > now_s? anchor: now_s);
        if (next >= 0)
            next_run = json_integer (next * 1000);
        sf_calendar_destroy (&parsed);
    }
    json_t *select = json_loads (sf_store_text (stmt, 2), 0, NULL);
    return json_pack ("{s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:{s:I, s:I, s:I, s:I},"
                      " s:I, s:o, s:o, s:o, s:o}",
        "name", sf_store_json_string (sf_store_text (stmt, 0)),
        "calendar", sf_store_json_string (calendar),
        "normalized", normalized,
        "select", select? select: json_null (),
        "strategy", s_text_or_null (sf_store_text (stmt, 3)),
        "priority", sqlite3_column_int64 (stmt, 4),
        "window_ms", sqlite3_column_int64 (stmt, 5),
        "keep",
            "last", sqlite3_column_int64 (stmt, 6),
            "daily", sqlite3_column_int64 (stmt, 7),
            "weekly", sqlite3_column_int64 (stmt, 8),
            "monthly", sqlite3_column_int64 (stmt, 9),
        "verify", sqlite3_column_int64 (stmt, 15),
        "next_run", next_run,
        "last_run", s_int_or_null (sqlite3_column_int64 (stmt, 12)),
        "last_bulk", s_text_or_null (sf_store_text (stmt, 13)),
        "last_error", s_text_or_null (sf_store_text (stmt, 14)));
}

//  The schedule name as SCHED, NULL with err set (SF_ENOENT if none)

static json_t *
s_schedule_json (sf_schedules_t *self, const char *name, sf_err_t *err)
{
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT " SCHEDULE_COLUMNS " FROM schedules WHERE name = ?1", "s", name);
    if (!stmt)
        return NULL;
    int rc = sf_store_step (self->store, stmt, err);
    json_t *schedule = rc == 1? s_row_json (self, stmt): NULL;
    sqlite3_finalize (stmt);
    if (rc == 0)
        sf_err_set (err, SF_ENOENT, "no schedule '%s'", name);
    return schedule;
}

//  --------------------------------------------------------------------------
//  Admin commands

json_t *
sf_schedules_add (sf_schedules_t *self, json_t *request, sf_err_t *err)
{
    assert (self);
    static const char *allowed [] = { "name", "calendar", "select", "strategy",
        "priority", "window", "keep_last", "keep_daily", "keep_weekly", "keep_monthly",
        "verify", NULL };
    if (!json_is_object (request)) {
        sf_err_set (err, SF_EINVAL, "request must be an object");
        return NULL;
    }
    const char *name;
    if (s_check_keys (request, allowed, err) || s_check_name (request, &name, err))
        return NULL;
    const char *calendar = json_string_value (json_object_get (request, "calendar"));
    if (!calendar || !*calendar) {
        sf_err_set (err, SF_EINVAL, "'calendar' must be given as a string");
        return NULL;
    }
    if (strlen (calendar) > SF_SCHEDULES_MAX_CALENDAR) {
        sf_err_set (err, SF_EINVAL, "'calendar' is longer than %d characters",
                    SF_SCHEDULES_MAX_CALENDAR);
        return NULL;
    }
    json_t *select = json_object_get (request, "select");
    if (!select) {
        sf_err_set (err, SF_EINVAL, "'select' must be given");
        return NULL;
    }
    if (s_check_select (select, err))
        return NULL;
    json_t *item = json_object_get (request, "strategy");
    const char *strategy = "";
    if (item && !json_is_null (item)) {
        strategy = json_string_value (item);
        if (!strategy || !sf_strategy_known (strategy)) {
            sf_err_set (err, SF_EINVAL, "unknown strategy '%.64s'",
                        strategy? strategy: "(not a string)");
            return NULL;
        }
    }
    int64_t priority = 0, window = 0, sample = 0;
    sf_keep_t keep = { 0, 0, 0, 0 };
    if (s_number (request, "priority", -MAX_PRIORITY, MAX_PRIORITY, &priority, err)
    ||  s_number (request, "window", 1, MAX_WINDOW_MS, &window, err)
    ||  s_number (request, "keep_last", 0, MAX_KEEP, &keep.last, err)
    ||  s_number (request, "keep_daily", 0, MAX_KEEP, &keep.daily, err)
    ||  s_number (request, "keep_weekly", 0, MAX_KEEP, &keep.weekly, err)
    ||  s_number (request, "keep_monthly", 0, MAX_KEEP, &keep.monthly, err)
    ||  s_number (request, "verify", 0, MAX_SAMPLE, &sample, err))
        return NULL;

    sf_calendar_t *parsed = sf_calendar_parse (calendar, err);
    if (!parsed) {
        sf_err_prefix (err, "calendar '%.64s'", calendar);
        err->code = SF_EINVAL;
        return NULL;
    }
    int64_t now = s_now (self);
    int64_t next = s_next (parsed, now / 1000);
    sf_calendar_destroy (&parsed);
    if (next < 0) {
        sf_err_set (err, SF_EINVAL, "calendar '%.64s' never elapses after now", calendar);
        return NULL;
    }
    char *select_json = json_dumps (select, JSON_COMPACT | JSON_SORT_KEYS);
    int rc = sf_store_exec (self->store, err,
        "INSERT INTO schedules (name, calendar, select_json, strategy, priority,"
        " window_ms, keep_last, keep_daily, keep_weekly, keep_monthly, created, verify_sample)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        " ON CONFLICT (name) DO NOTHING",
        "ssssiiiiiiii", name, calendar, select_json, strategy, priority, window,
        keep.last, keep.daily, keep.weekly, keep.monthly, now, sample);
    free (select_json);
    if (rc == 0)
        sf_err_set (err, SF_EEXIST, "schedule '%s' exists", name);
    if (rc != 1)
        return NULL;
    self->due_ms = 0;
    json_t *schedule = s_schedule_json (self, name, err);
    if (!schedule)
        return NULL;
    SF_INFO (NULL, "schedule '%s' added: calendar '%s', next run at %" PRId64,
             name, calendar, next * 1000);
    return json_pack ("{s:o}", "schedule", schedule);
}

json_t *
sf_schedules_list (sf_schedules_t *self, json_t *request, sf_err_t *err)
{
    assert (self);
    static const char *allowed [] = { NULL };
    if (request && s_check_keys (request, allowed, err))
        return NULL;
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT " SCHEDULE_COLUMNS " FROM schedules ORDER BY name", "");
    if (!stmt)
        return NULL;
    json_t *list = json_array ();
    int rc;
    while ((rc = sf_store_step (self->store, stmt, err)) == 1)
        json_array_append_new (list, s_row_json (self, stmt));
    sqlite3_finalize (stmt);
    if (rc < 0) {
        json_decref (list);
        return NULL;
    }
    return json_pack ("{s:o}", "schedules", list);
}

json_t *
sf_schedules_rm (sf_schedules_t *self, json_t *request, sf_err_t *err)
{
    assert (self);
    static const char *allowed [] = { "name", NULL };
    const char *name;
    if (!json_is_object (request)) {
        sf_err_set (err, SF_EINVAL, "request must be an object");
        return NULL;
    }
    if (s_check_keys (request, allowed, err) || s_check_name (request, &name, err))
        return NULL;
    int rc = sf_store_exec (self->store, err, "DELETE FROM schedules WHERE name = ?1",
                            "s", name);
    if (rc == 0)
        sf_err_set (err, SF_ENOENT, "no schedule '%s'", name);
    if (rc != 1)
        return NULL;
    self->due_ms = 0;
    SF_INFO (NULL, "schedule '%s' removed", name);
    return json_pack ("{s:s}", "removed", name);
}

int
sf_schedules_keep (sf_schedules_t *self, int64_t seq, sf_keep_t *keep,
                   sf_err_t *err)
{
    assert (self && keep);
    memset (keep, 0, sizeof (*keep));
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT keep_last, keep_daily, keep_weekly, keep_monthly FROM schedules"
        " WHERE seq = ?1", "i", seq);
    if (!stmt)
        return -1;
    int rc = sf_store_step (self->store, stmt, err);
    if (rc == 1) {
        keep->last = sqlite3_column_int64 (stmt, 0);
        keep->daily = sqlite3_column_int64 (stmt, 1);
        keep->weekly = sqlite3_column_int64 (stmt, 2);
        keep->monthly = sqlite3_column_int64 (stmt, 3);
    }
    sqlite3_finalize (stmt);
    return rc;
}

//  --------------------------------------------------------------------------
//  Firing

typedef struct {
    int64_t seq;                //  Identity
    char *name;
    char *calendar;
    char *select_json;
    char *strategy;
    int64_t priority;
    int64_t window_ms;
    int64_t anchor;             //  Last consumed elapse or creation, epoch s
    int64_t unfinished;         //  Queued or running jobs of its last bulk
    char *last_bulk;
    int64_t sample;             //  Images of each run to verify
    char *verified_bulk;        //  The last bulk sampled
} row_t;

static void
s_row_destroy (row_t **self_p)
{
    if (*self_p) {
        row_t *self = *self_p;
        free (self->name);
        free (self->calendar);
        free (self->select_json);
        free (self->strategy);
        free (self->last_bulk);
        free (self->verified_bulk);
        free (self);
        *self_p = NULL;
    }
}

//  Count the queued and running jobs of each row's last bulk. Returns 0
//  or -1 with err set.

static int
s_count_unfinished (sf_schedules_t *self, zlistx_t *rows, sf_err_t *err)
{
    row_t *row = (row_t *) zlistx_first (rows);
    for (; row; row = (row_t *) zlistx_next (rows)) {
        if (!*row->last_bulk)
            continue;
        sf_jobs_counts_t counts;
        if (sf_jobs_bulk_counts (self->jobs, row->last_bulk, &counts, err))
            return -1;
        row->unfinished = counts.jobs [SF_JOBS_QUEUED] + counts.jobs [SF_JOBS_RUNNING];
    }
    return 0;
}

static zlistx_t *
s_rows (sf_schedules_t *self)
{
    sf_err_t err = SF_ERR_INIT;
    sqlite3_stmt *stmt = sf_store_prepare (self->store, &err,
        "SELECT name, calendar, select_json, strategy, priority, window_ms,"
        " CASE WHEN elapse > 0 THEN elapse ELSE created / 1000 END, last_bulk, seq,"
        " verify_sample, verified_bulk FROM schedules ORDER BY name", "");
    if (!stmt) {
        SF_ERROR (NULL, "schedules: %s", err.text);
        return NULL;
    }
    zlistx_t *rows = zlistx_new ();
    zlistx_set_destructor (rows, (zlistx_destructor_fn *) s_row_destroy);
    int rc;
    while ((rc = sf_store_step (self->store, stmt, &err)) == 1) {
        row_t *row = (row_t *) zmalloc (sizeof (row_t));
        row->name = strdup (sf_store_text (stmt, 0));
        row->calendar = strdup (sf_store_text (stmt, 1));
        row->select_json = strdup (sf_store_text (stmt, 2));
        row->strategy = strdup (sf_store_text (stmt, 3));
        row->priority = sqlite3_column_int64 (stmt, 4);
        row->window_ms = sqlite3_column_int64 (stmt, 5);
        row->anchor = sqlite3_column_int64 (stmt, 6);
        row->last_bulk = strdup (sf_store_text (stmt, 7));
        row->seq = sqlite3_column_int64 (stmt, 8);
        row->sample = sqlite3_column_int64 (stmt, 9);
        row->verified_bulk = strdup (sf_store_text (stmt, 10));
        zlistx_add_end (rows, row);
    }
    sqlite3_finalize (stmt);
    if (rc == 0)
        rc = s_count_unfinished (self, rows, &err);
    if (rc < 0) {
        SF_ERROR (NULL, "schedules: %s", err.text);
        zlistx_destroy (&rows);
    }
    return rows;
}

//  Consume elapse (committed first: a crash in the fire loses this run
//  instead of repeating it), then create the bulk and record it

static void
s_fire (sf_schedules_t *self, const row_t *row, int64_t elapse, int64_t window_end,
        int64_t now)
{
    sf_err_t err = SF_ERR_INIT;
    if (sf_store_exec (self->store, &err,
            "UPDATE schedules SET elapse = ?2, last_run = ?3, last_bulk = '',"
            " last_error = '' WHERE name = ?1", "sii", row->name, elapse, now) != 1) {
        SF_ERROR (NULL, "schedule '%s': cannot record its run, not fired: %s",
                  row->name, err.text);
        return;
    }
    json_t *select = json_loads (row->select_json, 0, NULL);
    json_t *bulk = NULL;
    if (!select)
        sf_err_set (&err, SF_EDB, "stored selection is not JSON");
    else
        bulk = self->fire (self->arg, row->name, row->seq, select,
                           *row->strategy? row->strategy: NULL, (int) row->priority,
                           window_end, &err);
    json_decref (select);
    const char *bulk_id = bulk? json_string_value (json_object_get (bulk, "bulk_id")): NULL;
    if (bulk && !bulk_id)
        sf_err_set (&err, SF_EPROTO, "the bulk created has no bulk_id");
    sf_err_t db_err = SF_ERR_INIT;
    if (bulk_id) {
        SF_INFO (NULL, "schedule '%s' fired: bulk '%s' (%" PRId64 " jobs)", row->name,
                 bulk_id, (int64_t) json_integer_value (json_object_get (bulk, "total")));
        sf_store_exec (self->store, &db_err,
            "UPDATE schedules SET last_bulk = ?2 WHERE name = ?1", "ss", row->name,
            bulk_id);
    }
    else {
        SF_ERROR (NULL, "schedule '%s': cannot create its bulk: %s", row->name, err.text);
        sf_store_exec (self->store, &db_err,
            "UPDATE schedules SET last_error = ?2 WHERE name = ?1", "ss", row->name,
            err.text);
    }
    if (db_err.code)
        SF_ERROR (NULL, "schedule '%s': %s", row->name, db_err.text);
    json_decref (bulk);
}

//  The previous run is still going: consume the elapse without a bulk
//  (its instances are busy; a second bulk would only fail them), like a
//  systemd timer whose service is still active

static void
s_skip (sf_schedules_t *self, const row_t *row, int64_t elapse)
{
    char text [200];
    snprintf (text, sizeof (text), "run at %" PRId64 " skipped: bulk '%s' of the"
              " previous run still has %" PRId64 " unfinished job(s)", elapse * 1000,
              row->last_bulk, row->unfinished);
    SF_NOTICE (NULL, "schedule '%s': %s", row->name, text);
    sf_err_t err = SF_ERR_INIT;
    if (sf_store_exec (self->store, &err,
            "UPDATE schedules SET elapse = ?2, last_error = ?3 WHERE name = ?1", "sis",
            row->name, elapse, text) != 1)
        SF_ERROR (NULL, "schedule '%s': cannot record a skipped run: %s", row->name,
                  err.text);
}

//  The run of row ended: verify a sample of its images, once (the bulk is
//  recorded as sampled first: a crash loses this sample, never repeats it)

static void
s_sample (sf_schedules_t *self, const row_t *row)
{
    sf_err_t err = SF_ERR_INIT;
    zlistx_t *images = NULL;
    if (sf_store_exec (self->store, &err, "UPDATE schedules SET verified_bulk = ?2"
                       " WHERE name = ?1", "ss", row->name, row->last_bulk) == 1)
        images = sf_store_strings (self->store, &err,
            "SELECT i.id FROM images i JOIN jobs j ON j.id = i.job_id WHERE j.bulk_id = ?1"
            " AND i.store = 'dir' AND i.missing = 0 AND length (i.sha256) = 64"
            " ORDER BY random () LIMIT ?2", "si", row->last_bulk, row->sample);
    if (!images)
        SF_ERROR (NULL, "schedule '%s': cannot sample its run: %s", row->name, err.text);
    const char *id = images? (const char *) zlistx_first (images): NULL;
    for (; id; id = (const char *) zlistx_next (images)) {
        if (self->verify (self->verify_arg, id, &err))
            SF_WARN (NULL, "schedule '%s': cannot verify image %s: %s", row->name, id,
                     err.text);
        else
            SF_INFO (NULL, "schedule '%s': verifying image %s of bulk '%s'", row->name, id,
                     row->last_bulk);
    }
    zlistx_destroy (&images);
}

//  Fire the schedules that are due; at start (catch_up) with the window
//  starting now. Returns the number fired.

static int
s_run (sf_schedules_t *self, int64_t now_ms, bool catch_up)
{
    zlistx_t *rows = s_rows (self);
    if (!rows)
        return 0;
    int fired = 0;
    int64_t now_s = now_ms / 1000;
    int64_t due = 0;
    row_t *row = (row_t *) zlistx_first (rows);
    for (; row; row = (row_t *) zlistx_next (rows)) {
        if (self->verify && row->sample > 0 && *row->last_bulk && row->unfinished == 0
        &&  !streq (row->last_bulk, row->verified_bulk))
            s_sample (self, row);
        sf_err_t err = SF_ERR_INIT;
        sf_calendar_t *calendar = sf_calendar_parse (row->calendar, &err);
        if (!calendar) {
            SF_ERROR (NULL, "schedule '%s': calendar '%s' no longer parses: %s",
                      row->name, row->calendar, err.text);
            continue;
        }
        int64_t first = s_next (calendar, row->anchor);
        if (first >= 0 && first <= now_s) {
            int64_t elapse = s_latest (calendar, first, now_s);
            int64_t window_end;
            if (catch_up) {
                window_end = row->window_ms? now_ms + row->window_ms: 0;
                SF_NOTICE (NULL, "schedule '%s': run(s) missed while the scheduler was"
                           " down (first %" PRId64 ", last %" PRId64 "): caught up once"
                           " now", row->name, first * 1000, elapse * 1000);
            }
            else {
                window_end = row->window_ms? elapse * 1000 + row->window_ms: 0;
                if (elapse != first)
                    SF_WARN (NULL, "schedule '%s': elapses from %" PRId64 " to %"
                             PRId64 " passed between ticks: fired once", row->name,
                             first * 1000, elapse * 1000);
            }
            if (row->unfinished > 0)
                s_skip (self, row, elapse);
            else {
                s_fire (self, row, elapse, window_end, now_ms);
                fired++;
            }
            first = s_next (calendar, elapse);
        }
        if (first >= 0 && (due == 0 || first * 1000 < due))
            due = first * 1000;
        sf_calendar_destroy (&calendar);
    }
    zlistx_destroy (&rows);
    self->due_ms = due? due: INT64_MAX;
    self->checked_ms = now_ms;
    return fired;
}

void
sf_schedules_tick (sf_schedules_t *self, int64_t now_ms)
{
    assert (self);
    if (!self->started)
        return;                     //  The catch-up comes first
    if (self->due_ms && now_ms < self->due_ms
    &&  now_ms >= self->checked_ms && now_ms - self->checked_ms < RECHECK_MS)
        return;
    s_run (self, now_ms, false);
}

int
sf_schedules_start (sf_schedules_t *self, int64_t now_ms)
{
    assert (self);
    self->started = true;
    return s_run (self, now_ms, true);
}

//  --------------------------------------------------------------------------
//  Self test

typedef struct {
    zlistx_t *calls;            //  "schedule window_end strategy priority select"
    int bulks;                  //  Bulks created so far
    bool fail;                  //  Fail the next fire
} test_sink_t;

static json_t *
s_test_fire (void *arg, const char *schedule, int64_t schedule_seq, json_t *select,
             const char *strategy, int priority, int64_t window_end_ms, sf_err_t *err)
{
    test_sink_t *sink = (test_sink_t *) arg;
    assert (schedule_seq > 0);
    if (sink->fail) {
        sink->fail = false;
        sf_err_set (err, SF_EDB, "test failure");
        return NULL;
    }
    char *text = json_dumps (select, JSON_COMPACT | JSON_SORT_KEYS);
    zlistx_add_end (sink->calls, zsys_sprintf ("%s %" PRId64 " %s %d %s", schedule,
                    window_end_ms, strategy? strategy: "-", priority, text));
    free (text);
    char bulk_id [32];
    snprintf (bulk_id, sizeof (bulk_id), "B%d", ++sink->bulks);
    return json_pack ("{s:s, s:i}", "bulk_id", bulk_id, "total", 3);
}

static int
s_test_verify (void *arg, const char *image_id, sf_err_t *err)
{
    (void) err;
    zlistx_add_end ((zlistx_t *) arg, strdup (image_id));
    return 0;
}

//  Run one request through add, list or rm; expect code (0 = success)

static json_t *
s_test_request (sf_schedules_t *self, const char *verb, const char *text, int code)
{
    json_error_t parse_error;
    json_t *request = json_loads (text, 0, &parse_error);
    assert (request);
    sf_err_t err = SF_ERR_INIT;
    json_t *reply = streq (verb, "add")? sf_schedules_add (self, request, &err)
                  : streq (verb, "rm")? sf_schedules_rm (self, request, &err)
                  : sf_schedules_list (self, request, &err);
    json_decref (request);
    if ((reply != NULL) != (code == 0) || (!reply && err.code != code)) {
        printf ("\n    %s %s: expected %d, got %d (%s)\n", verb, text, code,
                err.code, err.text);
        assert (false);
    }
    return reply;
}

static const char *
s_test_pop (test_sink_t *sink)
{
    static char call [512];
    char *first = (char *) zlistx_first (sink->calls);
    if (!first)
        return "";
    snprintf (call, sizeof (call), "%s", first);
    zlistx_delete (sink->calls, zlistx_cursor (sink->calls));
    return call;
}

static void
s_test_add (sf_schedules_t *self, bool verbose)
{
    //  Invalid requests
    const char *invalid [] = {
        "{\"cmd\":\"schedule_add\",\"calendar\":\"*:*:0/10\",\"select\":{\"all\":true}}",
        "{\"name\":\"a b\",\"calendar\":\"*:*:0/10\",\"select\":{\"all\":true}}",
        "{\"name\":\"\",\"calendar\":\"*:*:0/10\",\"select\":{\"all\":true}}",
        "{\"name\":\"-x\",\"calendar\":\"*:*:0/10\",\"select\":{\"all\":true}}",
        "{\"name\":\"x123456789x123456789x123456789x123456789x123456789x123456789xxxxx\","
        " \"calendar\":\"*:*:0/10\",\"select\":{\"all\":true}}",
        "{\"name\":7,\"calendar\":\"*:*:0/10\",\"select\":{\"all\":true}}",
        "{\"name\":\"x\",\"select\":{\"all\":true}}",
        "{\"name\":\"x\",\"calendar\":\"not a calendar\",\"select\":{\"all\":true}}",
        "{\"name\":\"x\",\"calendar\":\"*:*:0/10\"}",
        "{\"name\":\"x\",\"calendar\":\"*:*:0/10\",\"select\":\"all\"}",
        "{\"name\":\"x\",\"calendar\":\"*:*:0/10\",\"select\":{}}",
        "{\"name\":\"x\",\"calendar\":\"*:*:0/10\",\"select\":{\"all\":false}}",
        "{\"name\":\"x\",\"calendar\":\"*:*:0/10\",\"select\":{\"all\":true,\"node\":\"n\"}}",
        "{\"name\":\"x\",\"calendar\":\"*:*:0/10\",\"select\":{\"rack\":\"r1\"}}",
        "{\"name\":\"x\",\"calendar\":\"*:*:0/10\",\"select\":{\"node\":\"\"}}",
        "{\"name\":\"x\",\"calendar\":\"*:*:0/10\",\"select\":{\"tag\":\"tier\"}}",
        "{\"name\":\"x\",\"calendar\":\"*:*:0/10\",\"select\":{\"tag\":\"=gold\"}}",
        "{\"name\":\"x\",\"calendar\":\"*:*:0/10\",\"select\":{\"instances\":[]}}",
        "{\"name\":\"x\",\"calendar\":\"*:*:0/10\",\"select\":{\"instances\":[\"a\",3]}}",
        "{\"name\":\"x\",\"calendar\":\"*:*:0/10\",\"select\":{\"all\":true},\"keep_last\":-1}",
        "{\"name\":\"x\",\"calendar\":\"*:*:0/10\",\"select\":{\"all\":true},\"verify\":101}",
        "{\"name\":\"x\",\"calendar\":\"*:*:0/10\",\"select\":{\"all\":true},\"keep_daily\":\"2x\"}",
        "{\"name\":\"x\",\"calendar\":\"*:*:0/10\",\"select\":{\"all\":true},\"keep_weekly\":1.5}",
        "{\"name\":\"x\",\"calendar\":\"*:*:0/10\",\"select\":{\"all\":true},\"window\":0}",
        "{\"name\":\"x\",\"calendar\":\"*:*:0/10\",\"select\":{\"all\":true},\"window\":\"\"}",
        "{\"name\":\"x\",\"calendar\":\"*:*:0/10\",\"select\":{\"all\":true},\"strategy\":\"nope\"}",
        "{\"name\":\"x\",\"calendar\":\"*:*:0/10\",\"select\":{\"all\":true},\"priority\":true}",
        "{\"name\":\"x\",\"calendar\":\"*:*:0/10\",\"select\":{\"all\":true},\"every\":1}",
        NULL };
    for (const char **scan = invalid; *scan; scan++) {
        if (verbose)
            printf ("\n    invalid: %s", *scan);
        s_test_request (self, "add", *scan, SF_EINVAL);
    }
    s_test_request (self, "add", "[1]", SF_EINVAL);

    //  Valid ones: T0 is 2023-11-14 22:13:23 UTC
    json_t *reply = s_test_request (self, "add",
        "{\"cmd\":\"schedule_add\",\"id\":4,\"name\":\"often\",\"calendar\":\"*:*:0/10\","
        " \"select\":{\"all\":true},\"window\":5000,\"keep_last\":2,\"keep_daily\":\"3\"}",
        0);
    json_t *schedule = json_object_get (reply, "schedule");
    assert (streq (json_string_value (json_object_get (schedule, "name")), "often"));
    assert (streq (json_string_value (json_object_get (schedule, "calendar")), "*:*:0/10"));
    assert (json_is_string (json_object_get (schedule, "normalized")));
    assert (json_is_null (json_object_get (schedule, "strategy")));
    assert (json_integer_value (json_object_get (schedule, "priority")) == 0);
    assert (json_integer_value (json_object_get (schedule, "window_ms")) == 5000);
    json_t *keep = json_object_get (schedule, "keep");
    assert (json_integer_value (json_object_get (keep, "last")) == 2);
    assert (json_integer_value (json_object_get (keep, "daily")) == 3);
    assert (json_integer_value (json_object_get (keep, "weekly")) == 0);
    assert (json_integer_value (json_object_get (schedule, "next_run")) == 1700000010000);
    assert (json_is_null (json_object_get (schedule, "last_run")));
    assert (json_is_null (json_object_get (schedule, "last_bulk")));
    assert (json_object_size (schedule) == 13);
    json_decref (reply);
    reply = s_test_request (self, "add",
        "{\"name\":\"hourly-gold\",\"calendar\":\"*-*-* *:00:00 UTC\",\"select\":{\"tag\":\"tier=gold\"},"
        " \"strategy\":\"file-cold\",\"priority\":\"-5\",\"keep_monthly\":1}", 0);
    schedule = json_object_get (reply, "schedule");
    assert (streq (json_string_value (json_object_get (schedule, "strategy")), "file-cold"));
    assert (json_integer_value (json_object_get (schedule, "priority")) == -5);
    assert (json_integer_value (json_object_get (schedule, "next_run")) == 1700002800000);
    json_decref (reply);
    reply = s_test_request (self, "add",
        "{\"name\":\"some\",\"calendar\":\"daily\",\"select\":{\"instances\":[\"vm1\",\"vm2\"]}}",
        0);
    json_decref (reply);
    s_test_request (self, "add",
        "{\"name\":\"often\",\"calendar\":\"daily\",\"select\":{\"node\":\"n1\"}}", SF_EEXIST);

    reply = s_test_request (self, "list", "{\"cmd\":\"schedule_list\"}", 0);
    json_t *list = json_object_get (reply, "schedules");
    assert (json_array_size (list) == 3);
    assert (streq (json_string_value (json_object_get (json_array_get (list, 0), "name")),
                   "hourly-gold"));
    json_decref (reply);
    s_test_request (self, "list", "{\"name\":\"x\"}", SF_EINVAL);
    reply = s_test_request (self, "rm", "{\"name\":\"some\"}", 0);
    assert (streq (json_string_value (json_object_get (reply, "removed")), "some"));
    json_decref (reply);
    s_test_request (self, "rm", "{\"name\":\"some\"}", SF_ENOENT);
    s_test_request (self, "rm", "{\"name\":\"../x\"}", SF_EINVAL);
}

void
sf_schedules_test (bool verbose)
{
    printf (" * sf_schedules: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    char path [] = "/tmp/sf_schedules_test_XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    close (fd);
    sf_store_t *store = sf_store_new (path, &err);
    assert (store);
    test_sink_t sink = { zlistx_new (), 0, false };
    zlistx_set_destructor (sink.calls, (zlistx_destructor_fn *) zstr_free);
    sf_jobs_t *jobs = sf_jobs_new (store);
    sf_schedules_t *self = sf_schedules_new (store, jobs, s_test_fire, &sink, &err);
    assert (self);
    const int64_t t0 = 1700000003000;      //  Elapses of */10 s at ...010, ...020
    self->clock_ms = t0;
    s_test_add (self, verbose);

    //  Before start, ticks do nothing (the catch-up comes first)
    sf_schedules_tick (self, 1700000010400);
    assert (zlistx_size (sink.calls) == 0);
    assert (sf_schedules_start (self, t0 + 4000) == 0);
    //  Nothing is due before the first elapse
    sf_schedules_tick (self, t0 + 5000);
    assert (zlistx_size (sink.calls) == 0);
    //  The elapse at ...010 fires, once, window from the elapse
    sf_schedules_tick (self, 1700000010400);
    assert (streq (s_test_pop (&sink), "often 1700000015000 - 0 {\"all\":true}"));
    sf_schedules_tick (self, 1700000010900);
    sf_schedules_tick (self, 1700000019999);
    assert (zlistx_size (sink.calls) == 0);
    //  Two elapses passed between ticks (...020, ...030): one run, the latest
    sf_schedules_tick (self, 1700000035000);
    assert (streq (s_test_pop (&sink), "often 1700000035000 - 0 {\"all\":true}"));
    assert (zlistx_size (sink.calls) == 0);
    //  A fire that fails records the error and still consumes the elapse
    sink.fail = true;
    sf_schedules_tick (self, 1700000040000);
    assert (zlistx_size (sink.calls) == 0);
    self->clock_ms = 1700000041000;
    json_t *reply = s_test_request (self, "list", "{}", 0);
    json_t *often = json_array_get (json_object_get (reply, "schedules"), 1);
    assert (streq (json_string_value (json_object_get (often, "last_error")),
                   "test failure"));
    assert (json_is_null (json_object_get (often, "last_bulk")));
    assert (json_integer_value (json_object_get (often, "last_run")) == 1700000040000);
    assert (json_integer_value (json_object_get (often, "next_run")) == 1700000050000);
    json_decref (reply);
    sf_schedules_tick (self, 1700000041000);
    assert (zlistx_size (sink.calls) == 0);
    sf_schedules_tick (self, 1700000050000);
    assert (streq (s_test_pop (&sink), "often 1700000055000 - 0 {\"all\":true}"));
    //  While a job of that run (B3) is unfinished, the next elapse is skipped
    assert (sf_store_node_hello (store, "n1", "", 2, 1, &err) == 0);
    assert (sf_store_exec (store, &err,
        "INSERT INTO jobs (id, instance_uuid, instance_name, node, state, phase, attempt,"
        " strategy, created, updated, bulk_id) VALUES ('J1', 'u1', 'vm1', 'n1', 'running',"
        " 'paused', 1, 'file-cold', 0, 0, 'B3')", "") == 1);
    sf_schedules_tick (self, 1700000060000);
    assert (zlistx_size (sink.calls) == 0);
    self->clock_ms = 1700000060000;
    reply = s_test_request (self, "list", "{}", 0);
    often = json_array_get (json_object_get (reply, "schedules"), 1);
    assert (strstr (json_string_value (json_object_get (often, "last_error")), "skipped"));
    assert (streq (json_string_value (json_object_get (often, "last_bulk")), "B3"));
    json_decref (reply);
    assert (sf_store_exec (store, &err, "UPDATE jobs SET state = 'done'", "") == 1);
    //  Its run ended: a schedule with verify N verifies N of its dir
    //  images at random, once per run
    zlistx_t *verified = zlistx_new ();
    zlistx_set_destructor (verified, (zlistx_destructor_fn *) zstr_free);
    sf_schedules_set_verify (self, s_test_verify, verified);
    assert (sf_store_exec (store, &err, "UPDATE schedules SET verify_sample = 2"
                           " WHERE name = 'often'", "") == 1);
    for (int i = 0; i < 4; i++)
        assert (sf_store_exec (store, &err,
            "INSERT INTO images (store, id, path, size, sha256, job_id, instance_uuid,"
            " instance_name, disk_target, format, created) VALUES (?1, ?2, ?2, 1, ?3, 'J1',"
            " 'u1', 'vm1', 'vda', 'qcow2', 1)", "sss", i == 3? "rbd": "dir",
            i == 0? "i0": i == 1? "i1": i == 2? "i2": "rbd/i3",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") == 1);
    s_run (self, 1700000061000, false);
    assert (zlistx_size (verified) == 2);
    for (char *id = (char *) zlistx_first (verified); id;
         id = (char *) zlistx_next (verified))
        assert (streq (id, "i0") || streq (id, "i1") || streq (id, "i2"));
    s_run (self, 1700000062000, false);
    assert (zlistx_size (verified) == 2);       //  once per run
    sf_schedules_set_verify (self, NULL, NULL);
    zlistx_destroy (&verified);

    //  Restart after missing the elapses ...060 to ...100: one catch-up, its
    //  window starting now; the hourly one is not due yet
    sf_schedules_destroy (&self);
    assert (self == NULL);
    sf_jobs_destroy (&jobs);
    sf_store_destroy (&store);
    store = sf_store_new (path, &err);
    assert (store);
    jobs = sf_jobs_new (store);
    self = sf_schedules_new (store, jobs, s_test_fire, &sink, &err);
    sf_schedules_tick (self, 1700000100400);
    assert (zlistx_size (sink.calls) == 0);
    assert (sf_schedules_start (self, 1700000100500) == 1);
    assert (streq (s_test_pop (&sink), "often 1700000105500 - 0 {\"all\":true}"));
    assert (zlistx_size (sink.calls) == 0);
    assert (sf_schedules_start (self, 1700000100600) == 0);
    sf_schedules_tick (self, 1700000100700);
    assert (zlistx_size (sink.calls) == 0);
    self->clock_ms = 1700000100700;
    reply = s_test_request (self, "list", "{}", 0);
    often = json_array_get (json_object_get (reply, "schedules"), 1);
    assert (streq (json_string_value (json_object_get (often, "last_bulk")), "B4"));
    assert (json_is_null (json_object_get (often, "last_error")));
    json_decref (reply);
    //  Down for 30 days: still one catch-up, found quickly; the hourly one
    //  catches up too, with its strategy, priority and selection
    int64_t later = 1700000100700 + 30LL * 24 * 3600 * 1000;
    int64_t started = sf_time_mono_ms ();
    assert (sf_schedules_start (self, later) == 2);
    assert (sf_time_mono_ms () - started < 5000);
    assert (streq (s_test_pop (&sink), "hourly-gold 0 file-cold -5 {\"tag\":\"tier=gold\"}"));
    char expect [128];
    snprintf (expect, sizeof (expect), "often %" PRId64 " - 0 {\"all\":true}", later + 5000);
    assert (streq (s_test_pop (&sink), expect));
    //  A removed schedule no longer fires
    json_decref (s_test_request (self, "rm", "{\"name\":\"often\"}", 0));
    sf_schedules_tick (self, later + 3600LL * 1000 * 24);
    assert (streq (s_test_pop (&sink), "hourly-gold 0 file-cold -5 {\"tag\":\"tier=gold\"}"));
    assert (zlistx_size (sink.calls) == 0);

    sf_schedules_destroy (&self);
    zlistx_destroy (&sink.calls);
    sf_jobs_destroy (&jobs);
    sf_store_destroy (&store);
    unlink (path);
    char wal [64];
    snprintf (wal, sizeof (wal), "%s-wal", path);
    unlink (wal);
    snprintf (wal, sizeof (wal), "%s-shm", path);
    unlink (wal);
    //  @end
    printf ("OK\n");
}
