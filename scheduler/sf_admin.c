/*  =========================================================================
    sf_admin - the scheduler's admin endpoint (what the snapfleet CLI
    talks to)

    JSON rather than protobuf: the CLI's output is JSON anyway, the
    commands are few and small, and an operator can poke the endpoint with
    any ZeroMQ client while debugging. Every request is size-checked before
    it is parsed and type-checked after, so no input can crash or stall
    the scheduler.
    =========================================================================
*/
#include "sf_sched_classes.h"

struct _sf_admin_t {
    sf_admin_parts_t parts;     //  Borrowed, each
    zsock_t *router;            //  Owned
};

SF_LOG_MODULE ("sched.admin");

//  libzmq drops a connection that sends a frame larger than this; between
//  SF_ADMIN_MAX_REQUEST and this the client gets an error reply instead
#define MAX_FRAME SF_AUTH_ADMIN_MAX
#define MAX_ARG 4096

typedef json_t *(command_fn) (sf_admin_t *self, json_t *request, sf_err_t *err);

//  An argument: its name, then ':' and its type: s string, i integer (or
//  a decimal string), o object. A command without args checks its own.
typedef struct {
    const char *name;
    const char *args [8];       //  Allowed arguments, NULL-terminated
    const char *required;       //  Required argument, or NULL
    command_fn *run;            //  Returns the payload object, or NULL + err
    bool own_args;              //  The command checks every argument itself
} command_t;

//  --------------------------------------------------------------------------
//  Commands

static json_t *
s_wrap (const char *key, json_t *value)
{
    return value? json_pack ("{s:o}", key, value): NULL;
}

static const char *
s_arg (json_t *request, const char *key)
{
    return json_string_value (json_object_get (request, key));
}

static json_t *
s_cmd_nodes (sf_admin_t *self, json_t *request, sf_err_t *err)
{
    (void) request;
    return s_wrap ("nodes", sf_store_nodes_json (self->parts.store, err));
}

static int64_t s_int_arg (json_t *request, const char *key, int64_t dflt);

//  A page of a list: {key: rows, "more": bool, "next": cursor or null}

static json_t *
s_page (const char *key, json_t *rows, char *next)
{
    if (!rows)
        return NULL;
    json_t *page = json_pack ("{s:o, s:b, s:o}", key, rows, "more", next != NULL,
                              "next", next? json_string (next): json_null ());
    free (next);
    return page;
}

static json_t *
s_cmd_instances (sf_admin_t *self, json_t *request, sf_err_t *err)
{
    char *next = NULL;
    json_t *rows = sf_store_instances_page (self->parts.store, s_arg (request, "node"),
                                            s_arg (request, "after"),
                                            s_int_arg (request, "limit",
                                                       SF_ADMIN_DEFAULT_LIMIT), &next, err);
    return s_page ("instances", rows, next);
}

static json_t *
s_cmd_snapshot (sf_admin_t *self, json_t *request, sf_err_t *err)
{
    return s_wrap ("job", sf_bulk_one (self->parts.bulk, s_arg (request, "instance"),
                                           s_arg (request, "strategy"),
                                           s_int_arg (request, "full", 0) == 1,
                                           err));
}

static json_t *
s_cmd_restore (sf_admin_t *self, json_t *request, sf_err_t *err)
{
    if (s_arg (request, "to") && s_arg (request, "rbd"))
        return sf_err_set (err, SF_EINVAL, "command 'restore' takes one of arguments 'to' "
                           "(the file to make) and 'rbd' (the RBD image to make)"), NULL;
    if (!s_arg (request, "to") && !s_arg (request, "rbd") && !s_arg (request, "as_domain"))
        return sf_err_set (err, SF_EINVAL, "command 'restore' needs argument 'to' (the "
                           "file to make), 'rbd' (the RBD image to make) or 'as_domain' "
                           "(the domain to define)"), NULL;
    if (s_arg (request, "rbd") && s_arg (request, "as_domain"))
        return sf_err_set (err, SF_EINVAL, "command 'restore': 'as_domain' defines a domain "
                           "on a restored file, not on an RBD image"), NULL;
    json_t *flatten = json_object_get (request, "flatten");
    sf_restore_req_t req = {
        .image_id = s_arg (request, "image"), .target = s_arg (request, "to"),
        .to_rbd = s_arg (request, "rbd"), .flatten = json_is_true (flatten),
        .node = s_arg (request, "node"), .format = s_arg (request, "format"),
        .as_domain = s_arg (request, "as_domain"), .peers = self->parts.peers
    };
    return s_wrap ("job", sf_restore_start (self->parts.store, self->parts.jobs,
                                            self->parts.dispatch, &req, err));
}

static int64_t
    s_int_arg (json_t *request, const char *key, int64_t dflt);

static json_t *
s_cmd_verify (sf_admin_t *self, json_t *request, sf_err_t *err)
{
    sf_verify_req_t req = {
        .image_id = s_arg (request, "image"), .node = s_arg (request, "node"),
        .boot = s_int_arg (request, "boot", 0) != 0
    };
    return s_wrap ("job", sf_verify_start (self->parts.store, self->parts.jobs,
                                           self->parts.dispatch, &req, err));
}

static json_t *
s_cmd_jobs (sf_admin_t *self, json_t *request, sf_err_t *err)
{
    char *next = NULL;
    json_t *rows = sf_jobs_page_json (self->parts.jobs, s_arg (request, "after"),
                                      s_int_arg (request, "limit", SF_ADMIN_DEFAULT_LIMIT),
                                      &next, err);
    return s_page ("jobs", rows, next);
}

static json_t *
s_cmd_job_show (sf_admin_t *self, json_t *request, sf_err_t *err)
{
    return s_wrap ("job", sf_jobs_json (self->parts.jobs,
                                        s_arg (request, "job_id"), err));
}

static json_t *
s_cmd_images (sf_admin_t *self, json_t *request, sf_err_t *err)
{
    char *next = NULL;
    json_t *rows = sf_jobs_images_page_json (self->parts.jobs, s_arg (request, "after"),
                                             s_int_arg (request, "limit",
                                                        SF_ADMIN_DEFAULT_LIMIT),
                                             &next, err);
    return s_page ("images", rows, next);
}

static json_t *
s_cmd_status (sf_admin_t *self, json_t *request, sf_err_t *err)
{
    (void) request;
    (void) err;
    const sf_stats_t *stats = self->parts.stats;
    uint64_t unenrolled = self->parts.auth? sf_auth_refused (self->parts.auth): 0;
    json_t *status = json_pack ("{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
        "version", SF_VERSION,
        "curve", self->parts.auth != NULL,
        "unenrolled", (json_int_t) unenrolled,
        "worker_misnamed", (json_int_t) stats->worker_misnamed,
        "nodes_up", (json_int_t) sf_peers_up_count (self->parts.peers),
        "peers_refused", (json_int_t) sf_peers_refused (self->parts.peers),
        "worker_invalid", (json_int_t) stats->worker_invalid,
        "worker_unknown", (json_int_t) stats->worker_unknown,
        "worker_unexpected", (json_int_t) stats->worker_unexpected,
        "worker_fenced", (json_int_t) stats->worker_fenced,
        "admin_requests", (json_int_t) stats->admin_requests,
        "admin_invalid", (json_int_t) stats->admin_invalid);
    return s_wrap ("status", status);
}

//  The range of every integer argument, checked before the command runs
//  (so that no sum or conversion of it can overflow)

typedef struct {
    const char *name;
    int64_t min, max;
} range_t;

#define MAX_PRIORITY    1000000
#define MAX_WINDOW_MS   (366LL * 24 * 3600 * 1000)
#define MAX_TIME_MS     253402300799999LL       //  9999-12-31, ms since the epoch

static const range_t s_ranges [] = {
    { "priority", -MAX_PRIORITY, MAX_PRIORITY },
    { "deadline", 0, MAX_TIME_MS },
    { "window", 0, MAX_WINDOW_MS },
    { "limit", 1, SF_ADMIN_MAX_LIMIT },
    { "dry_run", 0, 1 },
    { "boot", 0, 1 },
    { "full", 0, 1 },
    { NULL }
};

//  Integer value of argument key (a JSON integer or a decimal string), or
//  dflt if absent. s_check_args has checked it against its range.

static int64_t
s_int_arg (json_t *request, const char *key, int64_t dflt)
{
    json_t *value = json_object_get (request, key);
    if (json_is_integer (value))
        return json_integer_value (value);
    return value? strtoll (json_string_value (value), NULL, 10): dflt;
}

static void
s_bulk_opts (json_t *request, sf_bulk_opts_t *opts)
{
    memset (opts, 0, sizeof (*opts));
    opts->strategy = s_arg (request, "strategy");
    opts->full = s_int_arg (request, "full", 0) == 1;
    opts->priority = (int) s_int_arg (request, "priority", 0);
    opts->deadline_ms = s_int_arg (request, "deadline", 0);
    int64_t window = s_int_arg (request, "window", 0);
    opts->window_end_ms = window > 0? sf_time_now_ms () + window: 0;
}

static json_t *
s_cmd_bulk_create (sf_admin_t *self, json_t *request, sf_err_t *err)
{
    sf_bulk_opts_t opts;
    s_bulk_opts (request, &opts);
    return s_wrap ("bulk", sf_bulk_create (self->parts.bulk,
                                             json_object_get (request, "select"), &opts, err));
}

static json_t *
s_cmd_bulk_show (sf_admin_t *self, json_t *request, sf_err_t *err)
{
    return s_wrap ("bulk", sf_bulk_json (self->parts.bulk,
                                                  s_arg (request, "bulk_id"), true, err));
}

static json_t *
s_cmd_bulks (sf_admin_t *self, json_t *request, sf_err_t *err)
{
    (void) request;
    return s_wrap ("bulks", sf_bulk_list_json (self->parts.bulk, err));
}

static json_t *
s_cmd_plan (sf_admin_t *self, json_t *request, sf_err_t *err)
{
    sf_bulk_opts_t opts;
    s_bulk_opts (request, &opts);
    return s_wrap ("plan", sf_bulk_plan (self->parts.bulk,
                                             json_object_get (request, "select"), &opts, err));
}

static json_t *
s_cmd_schedule_add (sf_admin_t *self, json_t *request, sf_err_t *err)
{
    return sf_schedules_add (self->parts.schedules, request, err);
}

static json_t *
s_cmd_schedule_list (sf_admin_t *self, json_t *request, sf_err_t *err)
{
    return sf_schedules_list (self->parts.schedules, request, err);
}

static json_t *
s_cmd_schedule_rm (sf_admin_t *self, json_t *request, sf_err_t *err)
{
    return sf_schedules_rm (self->parts.schedules, request, err);
}

static json_t *
s_cmd_limits (sf_admin_t *self, json_t *request, sf_err_t *err)
{
    (void) request;
    (void) err;
    sf_admit_stats_t stats;
    sf_dispatch_stats (self->parts.dispatch, &stats);
    return json_pack ("{s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
        "admission",
        "queued", (json_int_t) stats.queued, "running", (json_int_t) stats.running,
        "paused", (json_int_t) stats.paused, "paused_max", (json_int_t) stats.paused_max,
        "uploads", (json_int_t) stats.uploads, "uploads_max", (json_int_t) stats.uploads_max,
        "node_paused_max", (json_int_t) stats.node_paused_max,
        "node_uploads_max", (json_int_t) stats.node_uploads_max,
        "store_uploads_max", (json_int_t) stats.store_uploads_max,
        "snap_ops_max", (json_int_t) stats.snap_ops_max,
        "bandwidth", (json_int_t) stats.bandwidth,
        "bandwidth_max", (json_int_t) stats.bandwidth_max);
}

//  cancel: {"job_ids":[ids]} or {"bulk_id":id}; checks its own arguments
//  (a list of strings is no type of s_check_args)

#define CANCEL_MAX_IDS 1000

static int
s_cancel_args (json_t *request, sf_err_t *err)
{
    const char *key;
    json_t *value;
    json_object_foreach (request, key, value)
        if (!streq (key, "cmd") && !streq (key, "id") && !streq (key, "job_ids")
        &&  !streq (key, "bulk_id"))
            return sf_err_set (err, SF_EINVAL, "unknown argument '%.64s' for command "
                               "'cancel'", key);
    json_t *ids = json_object_get (request, "job_ids");
    json_t *bulk = json_object_get (request, "bulk_id");
    if (!ids == !bulk)
        return sf_err_set (err, SF_EINVAL, "command 'cancel' needs either 'job_ids' or "
                           "'bulk_id'");
    if (bulk && (!json_is_string (bulk) || json_string_length (bulk) == 0
             ||  json_string_length (bulk) > 64))
        return sf_err_set (err, SF_EINVAL, "argument 'bulk_id' must be a string of 1 to "
                           "64 bytes");
    if (ids && (!json_is_array (ids) || json_array_size (ids) == 0
            ||  json_array_size (ids) > CANCEL_MAX_IDS))
        return sf_err_set (err, SF_EINVAL, "argument 'job_ids' must be a list of 1 to %d "
                           "job ids", CANCEL_MAX_IDS);
    size_t index;
    json_array_foreach (ids, index, value)
        if (!json_is_string (value) || json_string_length (value) == 0
        ||  json_string_length (value) > 64)
            return sf_err_set (err, SF_EINVAL, "argument 'job_ids' must hold job ids "
                               "(strings of 1 to 64 bytes)");
    return 0;
}

static json_t *
s_cmd_cancel (sf_admin_t *self, json_t *request, sf_err_t *err)
{
    if (s_cancel_args (request, err))
        return NULL;
    const char *bulk_id = s_arg (request, "bulk_id");
    if (bulk_id)
        return s_wrap ("cancel", sf_bulk_cancel (self->parts.bulk, bulk_id, err));
    zlistx_t *ids = zlistx_new ();
    size_t index;
    json_t *value;
    json_array_foreach (json_object_get (request, "job_ids"), index, value)
        zlistx_add_end (ids, (void *) json_string_value (value));
    json_t *answers = sf_dispatch_cancel (self->parts.dispatch, ids);
    zlistx_destroy (&ids);
    return s_wrap ("cancel", answers);
}

//  The reconciler: a run starts at once and is read back by id (no admin
//  request waits on a node)

static json_t *
s_cmd_gc (sf_admin_t *self, json_t *request, sf_err_t *err)
{
    if (!self->parts.gc) {
        sf_err_set (err, SF_ENOTSUP, "this scheduler has no reconciler");
        return NULL;
    }
    const char *node = s_arg (request, "node");
    zlistx_t *nodes = sf_gc_connected (self->parts.peers);
    if (node) {
        bool found = false;
        for (const char *name = (const char *) zlistx_first (nodes); name && !found;
             name = (const char *) zlistx_next (nodes))
            found = streq (name, node);
        zlistx_purge (nodes);
        if (!found) {
            zlistx_destroy (&nodes);
            sf_err_set (err, SF_ENODE, "node '%.64s' is not connected", node);
            return NULL;
        }
        zlistx_add_end (nodes, strdup (node));
    }
    const char *id = sf_gc_start (self->parts.gc, nodes, s_int_arg (request, "dry_run", 0) == 1,
                                  false, err);
    zlistx_destroy (&nodes);
    return id ? s_wrap ("gc", sf_gc_run_json (self->parts.gc, id, err)) : NULL;
}

static json_t *
s_cmd_gc_show (sf_admin_t *self, json_t *request, sf_err_t *err)
{
    if (!self->parts.gc) {
        sf_err_set (err, SF_ENOTSUP, "this scheduler has no reconciler");
        return NULL;
    }
    return s_wrap ("gc", sf_gc_run_json (self->parts.gc, s_arg (request, "run"), err));
}

#define PAGE_ARGS "limit:i", "after:s", NULL
#define BULK_ARGS "select:o", "strategy:s", "priority:i", "deadline:i", "window:i", \
                  "full:i", NULL

static const command_t s_commands [] = {
    { "nodes",      { NULL },           NULL,       s_cmd_nodes, false },
    { "instances",  { "node:s", PAGE_ARGS }, NULL,    s_cmd_instances, false },
    { "snapshot",   { "instance:s", "strategy:s", "full:i", NULL }, "instance", s_cmd_snapshot,
                    false },
    { "restore",    { "image:s", "to:s", "rbd:s", "flatten:b", "node:s", "format:s",
                      "as_domain:s", NULL }, "image",
                    s_cmd_restore, false },
    { "verify",     { "image:s", "node:s", "boot:i", NULL }, "image", s_cmd_verify, false },
    { "jobs",       { PAGE_ARGS },      NULL,       s_cmd_jobs, false },
    { "job_show",   { "job_id:s", NULL }, "job_id",   s_cmd_job_show, false },
    { "images",     { PAGE_ARGS },      NULL,       s_cmd_images, false },
    { "status",     { NULL },           NULL,       s_cmd_status, false },
    { "bulk_create", { BULK_ARGS },      "select",   s_cmd_bulk_create, false },
    { "bulk_show",  { "bulk_id:s", NULL }, "bulk_id", s_cmd_bulk_show, false },
    { "bulks",      { NULL },           NULL,       s_cmd_bulks, false },
    { "plan",       { BULK_ARGS },      "select",   s_cmd_plan, false },
    { "limits",     { NULL },           NULL,       s_cmd_limits, false },
    { "gc",         { "dry_run:i", "node:s", NULL }, NULL, s_cmd_gc, false },
    { "gc_show",    { "run:s", NULL },  "run",      s_cmd_gc_show, false },
    { "schedule_add", { NULL },         NULL,       s_cmd_schedule_add, true },
    { "schedule_list", { NULL },        NULL,       s_cmd_schedule_list, true },
    { "schedule_rm", { NULL },          NULL,       s_cmd_schedule_rm, true },
    { "cancel",     { NULL },           NULL,       s_cmd_cancel, true },
    { NULL }
};

//  --------------------------------------------------------------------------
//  Parsing and checking a request

//  The type letter of argument key, 0 if the command has no such argument

static char
s_arg_type (const command_t *command, const char *key)
{
    size_t length = strlen (key);
    for (int i = 0; command->args [i]; i++)
        if (strncmp (command->args [i], key, length) == 0
        &&  command->args [i][length] == ':')
            return command->args [i][length + 1];
    return 0;
}

static bool
s_is_decimal (const char *text)
{
    if (*text == '-')
        text++;
    if (!*text || strlen (text) > 18)
        return false;
    for (; *text; text++)
        if (!isdigit ((unsigned char) *text))
            return false;
    return true;
}

//  Integer argument key: a JSON integer or a decimal string (at most 18
//  digits, so it cannot overflow) within its range in s_ranges

static int
s_check_int (const char *key, json_t *value, sf_err_t *err)
{
    const range_t *range = s_ranges;
    while (range->name && !streq (range->name, key))
        range++;
    assert (range->name);       //  Every 'i' argument has a range
    int64_t number;
    if (json_is_integer (value))
        number = json_integer_value (value);
    else
    if (json_is_string (value) && s_is_decimal (json_string_value (value)))
        number = strtoll (json_string_value (value), NULL, 10);
    else
        return sf_err_set (err, SF_EINVAL, "argument '%s' must be an integer between %"
                           PRId64 " and %" PRId64, key, range->min, range->max);
    if (number < range->min || number > range->max)
        return sf_err_set (err, SF_EINVAL, "argument '%s' must be between %" PRId64
                           " and %" PRId64 ", not %" PRId64, key, range->min,
                           range->max, number);
    return 0;
}

static int
s_check_args (const command_t *command, json_t *request, sf_err_t *err)
{
    const char *key;
    json_t *value;
    json_object_foreach (request, key, value) {
        if (streq (key, "cmd") || streq (key, "id") || command->own_args)
            continue;
        char type = s_arg_type (command, key);
        if (!type)
            return sf_err_set (err, SF_EINVAL, "unknown argument '%.64s' for command '%s'",
                               key, command->name);
        if (type == 'o') {
            if (!json_is_object (value))
                return sf_err_set (err, SF_EINVAL, "argument '%s' must be an object", key);
            continue;
        }
        if (type == 'i') {
            if (s_check_int (key, value, err))
                return -1;
            continue;
        }
        if (type == 'b') {
            if (!json_is_boolean (value))
                return sf_err_set (err, SF_EINVAL, "argument '%s' must be true or false", key);
            continue;
        }
        if (!json_is_string (value))
            return sf_err_set (err, SF_EINVAL, "argument '%s' must be a string", key);
        size_t length = json_string_length (value);
        if (length == 0 || length > MAX_ARG)
            return sf_err_set (err, SF_EINVAL, "argument '%s' must be 1 to %d bytes",
                               key, MAX_ARG);
    }
    if (command->required && !json_object_get (request, command->required))
        return sf_err_set (err, SF_EINVAL, "command '%s' needs argument '%s'",
                           command->name, command->required);
    return 0;
}

static const command_t *
s_parse (const void *data, size_t size, json_t **request_p, sf_err_t *err)
{
    if (size > SF_ADMIN_MAX_REQUEST) {
        sf_err_set (err, SF_EPROTO, "request of %zu bytes exceeds the %d-byte limit",
                    size, SF_ADMIN_MAX_REQUEST);
        return NULL;
    }
    json_error_t jerr;
    json_t *request = json_loadb ((const char *) data, size, JSON_REJECT_DUPLICATES, &jerr);
    *request_p = request;
    if (!request) {
        sf_err_set (err, SF_EPROTO, "request is not valid JSON: %s", jerr.text);
        return NULL;
    }
    if (!json_is_object (request)) {
        sf_err_set (err, SF_EPROTO, "request must be a JSON object");
        return NULL;
    }
    json_t *id = json_object_get (request, "id");
    if (id && !json_is_integer (id)
           && !(json_is_string (id) && json_string_length (id) <= 256)) {
        sf_err_set (err, SF_EINVAL, "'id' must be an integer or a short string");
        return NULL;
    }
    const char *name = json_string_value (json_object_get (request, "cmd"));
    if (!name) {
        sf_err_set (err, SF_EINVAL, "request needs a string 'cmd'");
        return NULL;
    }
    for (const command_t *command = s_commands; command->name; command++)
        if (streq (command->name, name))
            return s_check_args (command, request, err)? NULL: command;
    sf_err_set (err, SF_EINVAL, "unknown command '%.64s'", name);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Executing

static json_t *
s_error_reply (const sf_err_t *err)
{
    return json_pack ("{s:b, s:{s:i, s:o}}", "ok", 0, "error", "code", err->code,
                      "text", sf_store_json_string (err->text));
}

char *
sf_admin_execute (sf_admin_t *self, const void *data, size_t size)
{
    assert (self);
    sf_stats_t *stats = self->parts.stats;
    sf_err_t err = SF_ERR_INIT;
    json_t *request = NULL, *reply = NULL;
    const command_t *command = s_parse (data, size, &request, &err);
    if (!command) {
        stats->admin_invalid++;
        if (sf_stats_may_warn (self->parts.stats))
            SF_WARN (NULL, "rejecting admin request: %s", err.text);
        reply = s_error_reply (&err);
    }
    else {
        json_t *payload = command->run (self, request, &err);
        if (payload) {
            reply = json_pack ("{s:b}", "ok", 1);
            json_object_update (reply, payload);
            json_decref (payload);
        }
        else {
            SF_INFO (NULL, "admin command '%s' failed: %s", command->name, err.text);
            reply = s_error_reply (&err);
        }
    }
    json_t *id = request? json_object_get (request, "id"): NULL;
    if (id && (json_is_integer (id) || json_is_string (id)))
        json_object_set (reply, "id", id);
    stats->admin_requests++;
    char *text = json_dumps (reply, JSON_COMPACT);
    assert (text);
    json_decref (reply);
    json_decref (request);
    return text;
}

//  --------------------------------------------------------------------------
//  The socket

sf_admin_t *
sf_admin_new (const char *endpoint, zcert_t *cert, const sf_admin_parts_t *parts,
              sf_err_t *err)
{
    assert (endpoint);
    assert (!parts->auth || cert);
    assert (parts && parts->store && parts->jobs && parts->peers && parts->dispatch
            && parts->bulk && parts->schedules && parts->stats);
    sf_admin_t *self = (sf_admin_t *) zmalloc (sizeof (sf_admin_t));
    self->parts = *parts;
    self->router = zsock_new (ZMQ_ROUTER);
    assert (self->router);
    zsock_set_router_mandatory (self->router, 1);
    zsock_set_sndtimeo (self->router, 0);
    zsock_set_linger (self->router, 0);
    sf_auth_bound (self->router, MAX_FRAME, SF_AUTH_ADMIN_HWM, SF_AUTH_ADMIN_HWM);
    if (parts->auth)
        sf_auth_server (parts->auth, self->router, cert, "admin");
    if (zsock_bind (self->router, "%s", endpoint) == -1) {
        sf_err_set (err, SF_EIO, "cannot bind admin endpoint '%s': %s", endpoint,
                    zmq_strerror (zmq_errno ()));
        sf_admin_destroy (&self);
        return NULL;
    }
    return self;
}

void
sf_admin_destroy (sf_admin_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_admin_t *self = *self_p;
        zsock_destroy (&self->router);
        free (self);
        *self_p = NULL;
    }
}

zsock_t *
sf_admin_sock (sf_admin_t *self)
{
    assert (self);
    return self->router;
}

//  Frames: [routing id, body] from DEALER, [routing id, "", body] from REQ

void
sf_admin_handle (sf_admin_t *self)
{
    assert (self);
    zmsg_t *msg = zmsg_recv (self->router);
    if (!msg)
        return;                 //  Interrupted
    zframe_t *routing_id = zmsg_pop (msg);
    zframe_t *delimiter = NULL;
    if (zmsg_size (msg) == 2 && zframe_size (zmsg_first (msg)) == 0)
        delimiter = zmsg_pop (msg);
    char *text;
    if (zmsg_size (msg) == 1) {
        zframe_t *body = zmsg_first (msg);
        text = sf_admin_execute (self, zframe_data (body), zframe_size (body));
    }
    else {
        sf_err_t err = SF_ERR_INIT;
        sf_err_set (&err, SF_EPROTO, "request must be one frame, not %zu", zmsg_size (msg));
        self->parts.stats->admin_invalid++;
        if (sf_stats_may_warn (self->parts.stats))
            SF_WARN (NULL, "rejecting admin request: %s", err.text);
        json_t *reply = s_error_reply (&err);
        text = json_dumps (reply, JSON_COMPACT);
        json_decref (reply);
    }
    zmsg_destroy (&msg);
    zmsg_t *answer = zmsg_new ();
    zmsg_append (answer, &routing_id);
    if (delimiter)
        zmsg_append (answer, &delimiter);
    zmsg_addstr (answer, text);
    free (text);
    if (zmsg_send (&answer, self->router)) {
        SF_INFO (NULL, "cannot answer admin client (gone?): %s", zmq_strerror (zmq_errno ()));
        zmsg_destroy (&answer);
    }
}
