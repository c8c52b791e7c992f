/*  =========================================================================
    sf_cli - the CLI's connection to the scheduler's admin endpoint

    Why DEALER and not REQ: a REQ socket that never got its reply is stuck
    in the wrong state and must be recreated; a DEALER can time out, send
    again and ignore a late answer to an earlier request.
    =========================================================================
*/
#include "sf_core.h"
#include "sf_cli.h"

struct _sf_cli_t {
    zsock_t *dealer;            //  Owned
    char *endpoint;             //  Owned, for messages
    bool curve;                 //  For messages: a refused key looks unreachable
    int timeout_ms;
    int64_t next_id;
};

sf_cli_t *
sf_cli_new (const char *endpoint, zcert_t *cert, zcert_t *server, int timeout_ms,
            sf_err_t *err)
{
    assert (endpoint);
    assert (!cert == !server);
    sf_cli_t *self = (sf_cli_t *) zmalloc (sizeof (sf_cli_t));
    self->endpoint = strdup (endpoint);
    self->timeout_ms = timeout_ms;
    self->dealer = zsock_new (ZMQ_DEALER);
    assert (self->dealer);
    self->curve = cert != NULL;
    if (cert)
        sf_cert_client (self->dealer, cert, server);
    zsock_set_linger (self->dealer, 0);
    zsock_set_sndtimeo (self->dealer, timeout_ms);
    sf_auth_bound (self->dealer, SF_AUTH_CLI_MAX, SF_AUTH_CLI_HWM, SF_AUTH_CLI_HWM);
    if (zsock_connect (self->dealer, "%s", endpoint) == -1) {
        sf_err_set (err, SF_EINVAL, "invalid admin endpoint '%s': %s", endpoint,
                    zmq_strerror (zmq_errno ()));
        sf_cli_destroy (&self);
    }
    return self;
}

void
sf_cli_destroy (sf_cli_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_cli_t *self = *self_p;
        zsock_destroy (&self->dealer);
        free (self->endpoint);
        free (self);
        *self_p = NULL;
    }
}

//  No answer. With CURVE, a scheduler that refused our key (not enrolled)
//  or that is not the one whose key we pin looks exactly like this.

static void
s_unreachable (sf_cli_t *self, sf_err_t *err)
{
    if (self->curve)
        sf_err_set (err, SF_ETIMEDOUT, "cannot reach scheduler at '%s' (or it refused "
                    "our key: is it enrolled in its admins directory, and is "
                    "--server-key its public key?)", self->endpoint);
    else
        sf_err_set (err, SF_ETIMEDOUT, "cannot reach scheduler at '%s'", self->endpoint);
}

//  Wait for the reply with our id until the deadline

static json_t *
s_receive (sf_cli_t *self, json_int_t id, sf_err_t *err)
{
    int64_t deadline = sf_time_mono_ms () + self->timeout_ms;
    zpoller_t *poller = zpoller_new (self->dealer, NULL);
    json_t *reply = NULL;
    while (!reply) {
        int64_t left = deadline - sf_time_mono_ms ();
        if (left <= 0 || !zpoller_wait (poller, (int) left)) {
            s_unreachable (self, err);
            break;
        }
        zmsg_t *msg = zmsg_recv (self->dealer);
        zframe_t *frame = msg? zmsg_last (msg): NULL;
        if (frame)
            reply = json_loadb ((const char *) zframe_data (frame), zframe_size (frame),
                                0, NULL);
        zmsg_destroy (&msg);
        if (!json_is_object (reply)) {
            json_decref (reply);
            reply = NULL;
            sf_err_set (err, SF_EPROTO, "invalid reply from scheduler at '%s'",
                        self->endpoint);
            break;
        }
        if (json_integer_value (json_object_get (reply, "id")) != id) {
            json_decref (reply);        //  Late answer to an earlier request
            reply = NULL;
        }
    }
    zpoller_destroy (&poller);
    return reply;
}

static int
s_reply_error (json_t *reply, sf_err_t *err)
{
    json_t *error = json_object_get (reply, "error");
    const char *text = json_string_value (json_object_get (error, "text"));
    json_t *code = json_object_get (error, "code");
    if (!text || !json_is_integer (code))
        return sf_err_set (err, SF_EPROTO, "invalid error reply from scheduler");
    return sf_err_set (err, (int) json_integer_value (code), "%s", text);
}

int
sf_cli_call (sf_cli_t *self, json_t *request, json_t **reply_p, sf_err_t *err)
{
    assert (self);
    assert (json_is_object (request));
    json_int_t id = ++self->next_id;
    json_object_set_new (request, "id", json_integer (id));
    char *text = json_dumps (request, JSON_COMPACT);
    assert (text);
    int rc = zstr_send (self->dealer, text);
    free (text);
    if (rc) {
        s_unreachable (self, err);
        return SF_CLI_UNAVAILABLE;
    }
    json_t *reply = s_receive (self, id, err);
    if (!reply)
        return err->code == SF_ETIMEDOUT? SF_CLI_UNAVAILABLE: SF_CLI_FAILED;
    if (!json_is_true (json_object_get (reply, "ok"))) {
        s_reply_error (reply, err);
        json_decref (reply);
        return SF_CLI_FAILED;
    }
    *reply_p = reply;
    return SF_CLI_OK;
}

//  --------------------------------------------------------------------------
//  Bulk snapshots, plans and schedules

//  Read exactly count digits at *p into *value; advance *p

static bool
s_digits (const char **p, int count, int *value)
{
    *value = 0;
    for (int i = 0; i < count; i++, (*p)++) {
        if (!isdigit ((unsigned char) **p))
            return false;
        *value = *value * 10 + (**p - '0');
    }
    return true;
}

int
sf_cli_parse_time (const char *text, int64_t now_ms, int64_t *epoch_ms)
{
    assert (text);
    if (*text == '+') {
        int64_t ms;
        if (!isdigit ((unsigned char) text [1]) || sf_parse_duration_ms (text + 1, &ms))
            return -1;
        *epoch_ms = now_ms + ms;
        return 0;
    }
    const char *p = text;
    size_t len = strlen (text);
    if (len > 0 && strspn (text, "0123456789") == len) {
        if (len > 12)           //  Beyond year 33000
            return -1;
        *epoch_ms = (int64_t) strtoll (text, NULL, 10) * 1000;
        return 0;
    }
    time_t now = (time_t) (now_ms / 1000);
    struct tm tm;
    localtime_r (&now, &tm);
    int year = 0, month = 0, day = 0, hour, minute, second = 0;
    bool date = len > 5;
    if (date) {
        if (!s_digits (&p, 4, &year) || *p++ != '-' || !s_digits (&p, 2, &month)
        ||  *p++ != '-' || !s_digits (&p, 2, &day) || (*p != 'T' && *p != ' '))
            return -1;
        p++;
    }
    if (!s_digits (&p, 2, &hour) || *p++ != ':' || !s_digits (&p, 2, &minute))
        return -1;
    if (date && *p == ':' && (p++, !s_digits (&p, 2, &second)))
        return -1;
    bool utc = date && *p == 'Z';
    if (utc)
        p++;
    if (*p || hour > 23 || minute > 59 || second > 59)
        return -1;
    if (date) {
        if (year < 1970 || month < 1 || month > 12 || day < 1 || day > 31)
            return -1;
        tm = (struct tm) { .tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day,
                           .tm_hour = hour, .tm_min = minute, .tm_sec = second,
                           .tm_isdst = -1 };
    }
    else {
        tm.tm_hour = hour;
        tm.tm_min = minute;
        tm.tm_sec = 0;
        tm.tm_isdst = -1;
    }
    struct tm want = tm;
    time_t when = utc? timegm (&tm): mktime (&tm);
    if (when == (time_t) -1 || tm.tm_mday != want.tm_mday)
        return -1;              //  E.g. February 30th, normalized away
    if (!date && (int64_t) when * 1000 <= now_ms) {
        tm = want;
        tm.tm_mday++;           //  Tomorrow, at the same wall-clock time
        when = mktime (&tm);
    }
    *epoch_ms = (int64_t) when * 1000;
    return 0;
}

//  Parse an integer option value into *value within [low, high]

static int
s_int_option (const char *option, const char *text, long low, long high, long *value,
              sf_err_t *err)
{
    char *end = NULL;
    errno = 0;
    *value = strtol (text, &end, 10);
    if (errno || end == text || *end || *value < low || *value > high)
        return sf_err_set (err, SF_EINVAL, "%s must be an integer from %ld to %ld, not '%s'",
                           option, low, high, text);
    return 0;
}

static json_t *
s_select (const sf_cli_args_t *args, sf_err_t *err)
{
    int kinds = (args->instance_count > 0) + (args->node != NULL) + args->all
              + (args->tag != NULL);
    if (kinds != 1) {
        sf_err_set (err, SF_EINVAL, kinds? "give only one kind of selector: --instance "
                    "(repeatable), --node, --all or --tag": "select instances with "
                    "--instance NAME (repeatable), --node N, --all or --tag KEY=VALUE");
        return NULL;
    }
    if (args->all)
        return json_pack ("{s:b}", "all", 1);
    if (args->node) {
        if (!*args->node) {
            sf_err_set (err, SF_EINVAL, "--node needs a node name");
            return NULL;
        }
        return json_pack ("{s:s}", "node", args->node);
    }
    if (args->tag) {
        const char *equals = strchr (args->tag, '=');
        if (!equals || equals == args->tag) {
            sf_err_set (err, SF_EINVAL, "--tag must be KEY=VALUE, not '%s'", args->tag);
            return NULL;
        }
        return json_pack ("{s:s}", "tag", args->tag);
    }
    json_t *names = json_array ();
    for (size_t index = 0; index < args->instance_count; index++) {
        if (!*args->instances [index]) {
            json_decref (names);
            sf_err_set (err, SF_EINVAL, "--instance needs a name or uuid");
            return NULL;
        }
        json_array_append_new (names, json_string (args->instances [index]));
    }
    return json_pack ("{s:o}", "instances", names);
}

json_t *
sf_cli_select_request (const char *cmd, const sf_cli_args_t *args, int64_t now_ms,
                       sf_err_t *err)
{
    assert (cmd);
    assert (args);
    static const char *keep_names [4] = { "keep_last", "keep_daily", "keep_weekly",
                                          "keep_monthly" };
    json_t *select = s_select (args, err);
    if (!select)
        return NULL;
    json_t *request = json_pack ("{s:s, s:o}", "cmd", cmd, "select", select);
    long number;
    int64_t ms;
    if (args->strategy) {
        if (!*args->strategy)
            goto bad_strategy;
        json_object_set_new (request, "strategy", json_string (args->strategy));
    }
    if (args->full)
        json_object_set_new (request, "full", json_integer (1));
    if (args->priority) {
        if (s_int_option ("--priority", args->priority, -1000000, 1000000, &number, err))
            goto failed;
        json_object_set_new (request, "priority", json_integer (number));
    }
    if (args->deadline) {
        if (sf_cli_parse_time (args->deadline, now_ms, &ms)) {
            sf_err_set (err, SF_EINVAL, "--deadline: cannot read '%s' as a time; give +30m, "
                        "YYYY-MM-DDTHH:MM[:SS][Z], HH:MM or epoch seconds", args->deadline);
            goto failed;
        }
        if (ms <= now_ms) {
            char when [32];
            sf_err_set (err, SF_EINVAL, "--deadline '%s' (%s) is not in the future",
                        args->deadline, sf_time_rfc3339 (ms, when, sizeof (when)));
            goto failed;
        }
        json_object_set_new (request, "deadline", json_integer (ms));
    }
    if (args->window) {
        if (sf_parse_duration_ms (args->window, &ms) || ms <= 0) {
            sf_err_set (err, SF_EINVAL, "--window must be a duration such as 90m or 2h, "
                        "not '%s'", args->window);
            goto failed;
        }
        json_object_set_new (request, "window", json_integer (ms));
    }
    for (int index = 0; index < 4; index++)
        if (args->keep [index]) {
            char option [32];
            snprintf (option, sizeof (option), "--keep-%s", keep_names [index] + 5);
            if (s_int_option (option, args->keep [index], 0, 1000000, &number, err))
                goto failed;
            json_object_set_new (request, keep_names [index], json_integer (number));
        }
    return request;

bad_strategy:
    sf_err_set (err, SF_EINVAL, "--strategy needs a strategy name");
failed:
    json_decref (request);
    return NULL;
}

static int64_t
s_count (json_t *bulk, const char *key)
{
    return json_integer_value (json_object_get (bulk, key));
}

static bool
s_ended (const char *state)
{
    return state && (streq (state, "done") || streq (state, "failed")
                     || streq (state, "skipped") || streq (state, "cancelled"));
}

bool
sf_cli_bulk_finished (json_t *bulk)
{
    const char *state = json_string_value (json_object_get (bulk, "state"));
    int64_t total = s_count (bulk, "total");
    int64_t ended = s_count (bulk, "done") + s_count (bulk, "failed")
                  + s_count (bulk, "skipped") + s_count (bulk, "cancelled");
    return (state && streq (state, "done")) || (total > 0 && ended >= total);
}

//  A short duration: "45s", "1m20s", "2h05m"

static char *
s_short_duration (int64_t ms, char *buf, size_t size)
{
    int64_t seconds = (ms + 999) / 1000;
    if (seconds < 60)
        snprintf (buf, size, "%" PRId64 "s", seconds < 0? 0: seconds);
    else
    if (seconds < 3600)
        snprintf (buf, size, "%" PRId64 "m%02" PRId64 "s", seconds / 60, seconds % 60);
    else
        snprintf (buf, size, "%" PRId64 "h%02" PRId64 "m", seconds / 3600, seconds / 60 % 60);
    return buf;
}

#define SF_CLI_BAR_WIDTH 20

char *
sf_cli_bulk_bar (json_t *bulk, char *buf, size_t size)
{
    int64_t total = s_count (bulk, "total");
    int64_t done = s_count (bulk, "done");
    int64_t failed = s_count (bulk, "failed");
    int64_t skipped = s_count (bulk, "skipped");
    int64_t cancelled = s_count (bulk, "cancelled");
    int64_t ended = done + failed + skipped + cancelled;
    int filled = total > 0? (int) (ended * SF_CLI_BAR_WIDTH / total): SF_CLI_BAR_WIDTH;
    if (filled > SF_CLI_BAR_WIDTH)
        filled = SF_CLI_BAR_WIDTH;
    char bar [SF_CLI_BAR_WIDTH + 1];
    memset (bar, '#', filled);
    memset (bar + filled, '.', SF_CLI_BAR_WIDTH - filled);
    bar [SF_CLI_BAR_WIDTH] = 0;
    char bytes [32], rate [32], eta [32];
    sf_format_size ((uint64_t) s_count (bulk, "bytes"), bytes, sizeof (bytes));
    sf_format_size ((uint64_t) s_count (bulk, "throughput_bps"), rate, sizeof (rate));
    json_t *eta_ms = json_object_get (bulk, "eta_ms");
    if (sf_cli_bulk_finished (bulk))
        *eta = 0;
    else
    if (json_is_integer (eta_ms)) {
        strcpy (eta, "  ETA ");
        s_short_duration (json_integer_value (eta_ms), eta + 6, sizeof (eta) - 6);
    }
    else
        strcpy (eta, "  ETA ?");
    char cancels [48] = "";
    if (cancelled)
        snprintf (cancels, sizeof (cancels), ", %" PRId64 " cancelled", cancelled);
    snprintf (buf, size, "[%s] %" PRId64 "/%" PRId64 " done, %" PRId64 " failed, %" PRId64
              " skipped%s  %s  %s/s%s", bar, done, total, failed, skipped, cancels, bytes,
              rate, eta);
    return buf;
}

json_t *
sf_cli_bulk_events (json_t *before, json_t *after)
{
    assert (after);
    json_t *events = json_array ();
    json_t *bulk_id = json_object_get (after, "bulk_id");
    //  job_id -> state in the earlier view
    json_t *earlier = json_object ();
    size_t index;
    json_t *job;
    json_array_foreach (json_object_get (before, "jobs"), index, job) {
        const char *id = json_string_value (json_object_get (job, "job_id"));
        if (id)
            json_object_set (earlier, id, json_object_get (job, "state"));
    }
    json_array_foreach (json_object_get (after, "jobs"), index, job) {
        const char *id = json_string_value (json_object_get (job, "job_id"));
        const char *state = json_string_value (json_object_get (job, "state"));
        if (!id || !s_ended (state)
        ||  s_ended (json_string_value (json_object_get (earlier, id))))
            continue;
        json_t *event = json_pack ("{s:s, s:O}", "event", "job", "bulk_id", bulk_id);
        static const char *keys [] = { "job_id", "instance", "node", "state", "strategy",
                                       "bytes", "error", NULL };
        for (const char **key = keys; *key; key++) {
            json_t *value = json_object_get (job, *key);
            json_object_set (event, *key, value? value: json_null ());
        }
        json_array_append_new (events, event);
    }
    json_decref (earlier);
    static const char *counts [] = { "total", "queued", "running", "done", "failed",
                                     "skipped", "cancelled", NULL };
    bool changed = before == NULL;
    for (const char **key = counts; *key && !changed; key++)
        changed = s_count (before, *key) != s_count (after, *key);
    if (changed) {
        json_t *event = json_pack ("{s:s, s:O}", "event", "progress", "bulk_id", bulk_id);
        static const char *keys [] = { "state", "total", "queued", "running", "done",
                                       "failed", "skipped", "cancelled", "bytes", "bytes_total",
                                       "throughput_bps", "eta_ms", NULL };
        for (const char **key = keys; *key; key++) {
            json_t *value = json_object_get (after, *key);
            json_object_set (event, *key, value? value: json_null ());
        }
        json_array_append_new (events, event);
    }
    if (sf_cli_bulk_finished (after))
        json_array_append_new (events, json_pack ("{s:s, s:O}", "event", "done",
                                                  "bulk", after));
    return events;
}

void
sf_cli_bulk_render (json_t *bulk, json_t *events, bool tty, int width, FILE *out)
{
    if (tty) {
        char line [256];
        sf_cli_bulk_bar (bulk, line, sizeof (line));
        if (width > 1 && strlen (line) >= (size_t) width)
            line [width - 1] = 0;       //  A wrapped line cannot be redrawn
        fprintf (out, "\r%s\033[K", line);
    }
    else {
        size_t index;
        json_t *event;
        json_array_foreach (events, index, event) {
            json_dumpf (event, out, JSON_COMPACT | JSON_PRESERVE_ORDER);
            fputc ('\n', out);
        }
    }
    fflush (out);
}

int
sf_cli_bulk_wait (sf_cli_t *self, json_t **bulk_p, int poll_ms, int wait_ms,
                  sf_cli_bulk_fn *fn, void *arg, sf_err_t *err)
{
    assert (self);
    assert (bulk_p && *bulk_p);
    int64_t deadline = sf_time_mono_ms () + wait_ms;
    json_t *before = NULL;
    int rc = SF_CLI_OK;
    char id [64];
    snprintf (id, sizeof (id), "%s", json_string_value (json_object_get (*bulk_p, "bulk_id"))
                                     ? json_string_value (json_object_get (*bulk_p, "bulk_id"))
                                     : "");
    while (true) {
        if (fn) {
            json_t *events = sf_cli_bulk_events (before, *bulk_p);
            fn (*bulk_p, events, arg);
            json_decref (events);
        }
        if (sf_cli_bulk_finished (*bulk_p))
            break;
        if (wait_ms && sf_time_mono_ms () + poll_ms > deadline) {
            rc = SF_CLI_TEMPFAIL;
            sf_err_set (err, SF_ETIMEDOUT, "timed out after %.1fs waiting for bulk '%s' "
                        "(%" PRId64 " of %" PRId64 " jobs ended); it goes on",
                        wait_ms / 1000.0, id, s_count (*bulk_p, "done")
                        + s_count (*bulk_p, "failed") + s_count (*bulk_p, "skipped")
                        + s_count (*bulk_p, "cancelled"),
                        s_count (*bulk_p, "total"));
            break;
        }
        zclock_sleep (poll_ms);
        json_t *request = json_pack ("{s:s, s:s}", "cmd", "bulk_show", "bulk_id", id);
        json_t *reply = NULL;
        rc = sf_cli_call (self, request, &reply, err);
        json_decref (request);
        if (rc)
            break;
        json_t *bulk = json_object_get (reply, "bulk");
        if (!json_is_object (bulk)) {
            json_decref (reply);
            rc = SF_CLI_FAILED;
            sf_err_set (err, SF_EPROTO, "invalid bulk_show reply from scheduler");
            break;
        }
        json_decref (before);
        before = *bulk_p;
        *bulk_p = json_incref (bulk);
        json_decref (reply);
    }
    json_decref (before);
    return rc;
}

//  --------------------------------------------------------------------------
//  Cancel

json_t *
sf_cli_cancel_request (const char **ids, size_t count, const char *bulk_id, sf_err_t *err)
{
    assert (ids || count == 0);
    if (count == 0 && !bulk_id)
        return sf_err_set (err, SF_EINVAL, "give the jobs to cancel (JOB...), or "
                           "--bulk ID"), NULL;
    if (count && bulk_id)
        return sf_err_set (err, SF_EINVAL, "give job ids or --bulk, not both"), NULL;
    if (bulk_id && !*bulk_id)
        return sf_err_set (err, SF_EINVAL, "--bulk needs a bulk id"), NULL;
    if (bulk_id)
        return json_pack ("{s:s, s:s}", "cmd", "cancel", "bulk_id", bulk_id);
    if (count > SF_CLI_CANCEL_MAX)
        return sf_err_set (err, SF_EINVAL, "at most %d jobs at once, not %zu",
                           SF_CLI_CANCEL_MAX, count), NULL;
    json_t *list = json_array ();
    for (size_t i = 0; i < count; i++) {
        if (!*ids [i] || strlen (ids [i]) > 64) {
            json_decref (list);
            return sf_err_set (err, SF_EINVAL, "'%.64s' is not a job id", ids [i]), NULL;
        }
        json_array_append_new (list, json_string (ids [i]));
    }
    return json_pack ("{s:s, s:o}", "cmd", "cancel", "job_ids", list);
}

int
sf_cli_cancel_status (json_t *answers)
{
    size_t index, refused = 0;
    json_t *answer;
    json_array_foreach (answers, index, answer)
    {
        const char *outcome = json_string_value (json_object_get (answer, "outcome"));
        refused += !outcome || streq (outcome, "refused");
    }
    return refused == 0? SF_CLI_OK
         : refused == json_array_size (answers)? SF_CLI_FAILED: SF_CLI_PARTIAL;
}

//  --------------------------------------------------------------------------
//  The reconciler

json_t *
sf_cli_gc_request (bool dry_run, const char *node, sf_err_t *err)
{
    if (node && !sf_name_is_safe (node)) {
        sf_err_set (err, SF_EINVAL, "--node '%.64s' is not a node name", node);
        return NULL;
    }
    json_t *request = json_pack ("{s:s}", "cmd", "gc");
    if (dry_run)
        json_object_set_new (request, "dry_run", json_integer (1));
    if (node)
        json_object_set_new (request, "node", json_string (node));
    return request;
}

bool
sf_cli_gc_finished (json_t *run)
{
    const char *state = json_string_value (json_object_get (run, "state"));
    return state && streq (state, "done");
}

int
sf_cli_gc_wait (sf_cli_t *self, json_t **run_p, int poll_ms, int wait_ms, sf_err_t *err)
{
    assert (self && run_p && *run_p);
    int64_t deadline = sf_time_mono_ms () + wait_ms;
    char id [64];
    const char *given = json_string_value (json_object_get (*run_p, "id"));
    snprintf (id, sizeof (id), "%s", given ? given : "");
    while (!sf_cli_gc_finished (*run_p)) {
        if (wait_ms && sf_time_mono_ms () + poll_ms > deadline) {
            sf_err_set (err, SF_ETIMEDOUT, "timed out after %.1fs waiting for gc run '%s'; "
                        "it goes on ('snapfleet gc --show %s')", wait_ms / 1000.0, id, id);
            return SF_CLI_TEMPFAIL;
        }
        zclock_sleep (poll_ms);
        json_t *request = json_pack ("{s:s, s:s}", "cmd", "gc_show", "run", id);
        json_t *reply = NULL;
        int rc = sf_cli_call (self, request, &reply, err);
        json_decref (request);
        if (rc)
            return rc;
        json_t *run = json_object_get (reply, "gc");
        if (!json_is_object (run)) {
            json_decref (reply);
            sf_err_set (err, SF_EPROTO, "invalid gc_show reply from scheduler");
            return SF_CLI_FAILED;
        }
        json_decref (*run_p);
        *run_p = json_incref (run);
        json_decref (reply);
    }
    return SF_CLI_OK;
}

int
sf_cli_gc_status (json_t *run)
{
    size_t index;
    json_t *node;
    json_array_foreach (json_object_get (run, "nodes"), index, node) {
        const char *state = json_string_value (json_object_get (node, "state"));
        if (!state || !streq (state, "done")
        ||  json_array_size (json_object_get (node, "failed")) > 0)
            return SF_CLI_FAILED;
    }
    return sf_cli_gc_finished (run) ? SF_CLI_OK : SF_CLI_FAILED;
}

//  --------------------------------------------------------------------------
//  Self test

//  Canned BULK views for the bulk tests: a bulk of three jobs, J1 failed at
//  once, then J2 done, then J3 skipped

static json_t *
s_test_bulk (int step)
{
    static const char *states [3][3] = {
        { "failed", "running", "queued" },
        { "failed", "done", "running" },
        { "failed", "done", "skipped" },
    };
    json_t *jobs = json_array ();
    int counts [6] = { 0 };     //  queued running done failed skipped cancelled
    static const char *names [6] = { "queued", "running", "done", "failed", "skipped",
                                     "cancelled" };
    for (int index = 0; index < 3; index++) {
        const char *state = states [step][index];
        for (int name = 0; name < 6; name++)
            counts [name] += streq (state, names [name]);
        json_t *job = json_pack ("{s:s++, s:s++, s:s, s:s, s:s, s:s, s:I}",
                                 "job_id", "J", (const char *[]) { "1", "2", "3" } [index], "",
                                 "instance", "vm", (const char *[]) { "1", "2", "3" } [index], "",
                                 "node", "n1", "state", state, "phase", "", "strategy",
                                 "file-cold", "bytes", (json_int_t) (index == 1? 3ull << 30: 0));
        json_object_set_new (job, "error", streq (state, "done")? json_null ()
                             : json_pack ("{s:i, s:s}", "code", SF_ENODE, "text", "node down"));
        json_array_append_new (jobs, job);
    }
    json_t *bulk = json_pack ("{s:s, s:I, s:s, s:n, s:i, s:n, s:n, s:i}",
                              "bulk_id", "B3", "created", (json_int_t) 1764100800000,
                              "state", step == 2? "done": "running", "schedule",
                              "priority", 0, "deadline", "window_end", "total", 3);
    for (int name = 0; name < 6; name++)
        json_object_set_new (bulk, names [name], json_integer (counts [name]));
    json_object_set_new (bulk, "bytes", json_integer (step? 3ll << 30: 0));
    json_object_set_new (bulk, "bytes_total", json_integer (6ll << 30));
    json_object_set_new (bulk, "throughput_bps", json_integer (step? 41ll << 20: 0));
    json_object_set_new (bulk, "eta_ms", step == 1? json_integer (80000): json_null ());
    json_object_set_new (bulk, "jobs", jobs);
    json_object_set_new (bulk, "failures", json_array ());
    return bulk;
}

//  Collect what sf_cli_bulk_render writes for each view

static void
s_test_collect (json_t *bulk, json_t *events, void *arg)
{
    sf_cli_bulk_render (bulk, events, false, 0, (FILE *) arg);
}

//  A fake scheduler: "status" gets a stale reply first, then its own;
//  "garbage" gets bytes that are not JSON; "refuse" gets an error;
//  "bulk_show" gets the next view of s_test_bulk.

static void
s_fake_answer (zsock_t *router, zframe_t *routing_id, json_t *reply)
{
    char *text = json_dumps (reply, JSON_COMPACT);
    zframe_send (&(zframe_t *) { zframe_dup (routing_id) }, router, ZFRAME_MORE);
    zstr_send (router, text);
    free (text);
    json_decref (reply);
}

static void
s_fake_serve (zsock_t *router, int *step)
{
    zmsg_t *msg = zmsg_recv (router);
    zframe_t *routing_id = zmsg_pop (msg);
    char *body = zmsg_popstr (msg);
    json_t *request = json_loads (body, 0, NULL);
    json_int_t id = json_integer_value (json_object_get (request, "id"));
    const char *cmd = json_string_value (json_object_get (request, "cmd"));
    if (streq (cmd, "garbage")) {
        zframe_send (&(zframe_t *) { zframe_dup (routing_id) }, router, ZFRAME_MORE);
        zstr_send (router, "<html>not json</html>");
    }
    else
    if (streq (cmd, "bulk_show")) {
        json_t *reply = json_pack ("{s:b, s:I, s:o}", "ok", 1, "id", id,
                                   "bulk", s_test_bulk (*step < 2? ++*step: 2));
        s_fake_answer (router, routing_id, reply);
    }
    else
    if (streq (cmd, "gc_show")) {
        ++*step;
        json_t *reply = json_pack ("{s:b, s:I, s:{s:s, s:s, s:[{s:s, s:s, s:[]}]}}", "ok", 1,
                                   "id", id, "gc", "id", "G1", "state",
                                   *step < 3 ? "running" : "done", "nodes", "node", "n1",
                                   "state", *step < 3 ? "listing" : "done", "failed");
        s_fake_answer (router, routing_id, reply);
    }
    else
    if (streq (cmd, "refuse"))
        s_fake_answer (router, routing_id, json_pack ("{s:b, s:I, s:{s:i, s:s}}",
            "ok", 0, "id", id, "error", "code", SF_ENOENT, "text", "no instance 'x'"));
    else {
        s_fake_answer (router, routing_id, json_pack ("{s:b, s:I}", "ok", 1, "id", id - 1));
        s_fake_answer (router, routing_id, json_pack ("{s:b, s:I, s:i}", "ok", 1,
                                                      "id", id, "answer", 42));
    }
    json_decref (request);
    zstr_free (&body);
    zframe_destroy (&routing_id);
    zmsg_destroy (&msg);
}

static void
s_fake_scheduler (zsock_t *pipe, void *args)
{
    (void) args;
    zsock_t *router = zsock_new_router ("tcp://127.0.0.1:*");
    zsock_signal (pipe, 0);
    zstr_send (pipe, zsock_endpoint (router));
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    int step = 0;               //  Views of the bulk served so far
    while (zpoller_wait (poller, -1) == router)
        s_fake_serve (router, &step);
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

static int
s_test_call (sf_cli_t *cli, const char *cmd, json_t **reply, sf_err_t *err)
{
    json_t *request = json_pack ("{s:s}", "cmd", cmd);
    int rc = sf_cli_call (cli, request, reply, err);
    json_decref (request);
    return rc;
}

//  Start a fake scheduler and connect to it; *cli_p waits up to 3 s per
//  request

static zactor_t *
s_fake_start (sf_cli_t **cli_p)
{
    sf_err_t err = SF_ERR_INIT;
    zactor_t *fake = zactor_new (s_fake_scheduler, NULL);
    char *endpoint = zstr_recv (fake);
    *cli_p = sf_cli_new (endpoint, NULL, NULL, 3000, &err);
    assert (*cli_p);
    //  A reply larger than the cap ends the connection; few wait
    assert (zsock_maxmsgsize ((*cli_p)->dealer) == SF_AUTH_CLI_MAX);
    assert (zsock_rcvhwm ((*cli_p)->dealer) == SF_AUTH_CLI_HWM);
    assert (zsock_sndhwm ((*cli_p)->dealer) == SF_AUTH_CLI_HWM);
    zstr_free (&endpoint);
    return fake;
}

//  An endpoint that is not one is refused

static void
s_test_bad_endpoint (void)
{
    sf_err_t err = SF_ERR_INIT;
    assert (sf_cli_new ("nonsense", NULL, NULL, 100, &err) == NULL);
    assert (err.code == SF_EINVAL);
}

//  Nobody answers (a socket that never reads, so that no other test can
//  take the port meanwhile): unreachable, in bounded time

static void
s_test_unreachable (void)
{
    sf_err_t err = SF_ERR_INIT;
    json_t *reply = NULL;
    zsock_t *mute = zsock_new_router ("tcp://127.0.0.1:*");
    assert (mute);
    sf_cli_t *cli = sf_cli_new (zsock_endpoint (mute), NULL, NULL, 300, &err);
    assert (cli);
    int64_t start = sf_time_mono_ms ();
    assert (s_test_call (cli, "nodes", &reply, &err) == SF_CLI_UNAVAILABLE);
    assert (sf_time_mono_ms () - start < 2000);
    assert (strstr (err.text, "cannot reach scheduler at 'tcp://127.0.0.1:"));
    sf_cli_destroy (&cli);
    zsock_destroy (&mute);
}

//  CURVE: a scheduler whose key is not the one we pin answers nothing,
//  and the message says what to check

static void
s_test_wrong_server_key (void)
{
    sf_err_t err = SF_ERR_INIT;
    json_t *reply = NULL;
    zcert_t *server = zcert_new ();
    zcert_t *pinned = zcert_new ();
    zcert_t *admin = zcert_new ();
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    zcert_apply (server, router);
    zsock_set_curve_server (router, 1);
    assert (zsock_bind (router, "tcp://127.0.0.1:*") > 0);
    sf_cli_t *cli = sf_cli_new (zsock_endpoint (router), admin, pinned, 300, &err);
    assert (cli);
    assert (s_test_call (cli, "nodes", &reply, &err) == SF_CLI_UNAVAILABLE);
    assert (strstr (err.text, "or it refused our key"));
    assert (zsock_events (router) == 0 || !(zsock_events (router) & ZMQ_POLLIN));
    sf_cli_destroy (&cli);
    zsock_destroy (&router);
    zcert_destroy (&admin);
    zcert_destroy (&pinned);
    zcert_destroy (&server);
}

//  The stale reply to an earlier request is skipped

static void
s_test_stale_reply (void)
{
    sf_err_t err = SF_ERR_INIT;
    json_t *reply = NULL;
    sf_cli_t *cli;
    zactor_t *fake = s_fake_start (&cli);
    assert (s_test_call (cli, "status", &reply, &err) == SF_CLI_OK);
    assert (json_integer_value (json_object_get (reply, "answer")) == 42);
    json_decref (reply);
    sf_cli_destroy (&cli);
    zactor_destroy (&fake);
}

//  The scheduler's error comes back with its code and text

static void
s_test_error_reply (void)
{
    sf_err_t err = SF_ERR_INIT;
    json_t *reply = NULL;
    sf_cli_t *cli;
    zactor_t *fake = s_fake_start (&cli);
    assert (s_test_call (cli, "refuse", &reply, &err) == SF_CLI_FAILED);
    assert (err.code == SF_ENOENT && streq (err.text, "no instance 'x'"));
    sf_cli_destroy (&cli);
    zactor_destroy (&fake);
}

//  A reply that is not JSON fails the call, not the connection

static void
s_test_invalid_reply (void)
{
    sf_err_t err = SF_ERR_INIT;
    json_t *reply = NULL;
    sf_cli_t *cli;
    zactor_t *fake = s_fake_start (&cli);
    assert (s_test_call (cli, "garbage", &reply, &err) == SF_CLI_FAILED);
    assert (err.code == SF_EPROTO && strstr (err.text, "invalid reply"));
    //  The connection is still usable
    assert (s_test_call (cli, "status", &reply, &err) == SF_CLI_OK);
    json_decref (reply);
    sf_cli_destroy (&cli);
    zactor_destroy (&fake);
}

//  Waiting for a bulk: three views, each with its events; the JSON lines
//  are what 'snapshot --wait' prints off a terminal

static void
s_test_bulk_wait (bool verbose)
{
    sf_err_t err = SF_ERR_INIT;
    sf_cli_t *cli;
    zactor_t *fake = s_fake_start (&cli);
    json_t *bulk = s_test_bulk (0);
    char *lines = NULL;
    size_t lines_size = 0;
    FILE *out = open_memstream (&lines, &lines_size);
    assert (sf_cli_bulk_wait (cli, &bulk, 10, 5000, s_test_collect, out, &err) == SF_CLI_OK);
    fclose (out);
    if (verbose)
        printf ("\n%s", lines);
    assert (streq (json_string_value (json_object_get (bulk, "state")), "done"));
    json_decref (bulk);
    const char *expect [] = {
        "{\"event\":\"job\",\"bulk_id\":\"B3\",\"job_id\":\"J1\",\"instance\":\"vm1\","
        "\"node\":\"n1\",\"state\":\"failed\",\"strategy\":\"file-cold\",\"bytes\":0,"
        "\"error\":{\"code\":13,\"text\":\"node down\"}}",
        "{\"event\":\"progress\",\"bulk_id\":\"B3\",\"state\":\"running\",\"total\":3,"
        "\"queued\":1,\"running\":1,\"done\":0,\"failed\":1,\"skipped\":0,"
        "\"cancelled\":0,\"bytes\":0,\"bytes_total\":6442450944,\"throughput_bps\":0,\"eta_ms\":null}",
        "{\"event\":\"job\",\"bulk_id\":\"B3\",\"job_id\":\"J2\"",
        "{\"event\":\"progress\",\"bulk_id\":\"B3\",\"state\":\"running\",\"total\":3,"
        "\"queued\":0,\"running\":1,\"done\":1,",
        "{\"event\":\"job\",\"bulk_id\":\"B3\",\"job_id\":\"J3\",\"instance\":\"vm3\","
        "\"node\":\"n1\",\"state\":\"skipped\"",
        "{\"event\":\"progress\",\"bulk_id\":\"B3\",\"state\":\"done\"",
        "{\"event\":\"done\",\"bulk\":{\"bulk_id\":\"B3\"",
        NULL
    };
    char *line = lines;
    for (const char **want = expect; *want; want++) {
        char *end = strchr (line, '\n');
        assert (end);
        *end = 0;
        if (strncmp (line, *want, strlen (*want))) {
            printf ("\nline:   %s\nwanted: %s\n", line, *want);
            fflush (stdout);
        }
        assert (strncmp (line, *want, strlen (*want)) == 0);
        json_t *event = json_loads (line, 0, NULL);
        assert (json_is_object (event));    //  Each line is one JSON object
        json_decref (event);
        line = end + 1;
    }
    assert (*line == 0);
    free (lines);
    sf_cli_destroy (&cli);
    zactor_destroy (&fake);
}

//  Waiting for a bulk timed out: the bulk goes on, exit 75

static void
s_test_bulk_wait_timeout (void)
{
    sf_err_t err = SF_ERR_INIT;
    sf_cli_t *cli;
    zactor_t *fake = s_fake_start (&cli);
    json_t *bulk = s_test_bulk (0);
    int64_t start = sf_time_mono_ms ();
    assert (sf_cli_bulk_wait (cli, &bulk, 300, 200, NULL, NULL, &err) == SF_CLI_TEMPFAIL);
    assert (sf_time_mono_ms () - start < 1000);
    assert (strstr (err.text, "timed out after 0.2s waiting for bulk 'B3' (1 of 3 jobs ended)"));
    json_decref (bulk);
    sf_cli_destroy (&cli);
    zactor_destroy (&fake);
}

//  TIME for --deadline is read in a fixed zone (CET/CEST), from
//  2026-11-25 20:00:00 UTC = 21:00 local: set that zone and return the one
//  to restore (caller owns it)

#define S_TEST_NOW 1795636800000

static char *
s_test_tz_set (void)
{
    char *saved_tz = getenv ("TZ")? strdup (getenv ("TZ")): NULL;
    setenv ("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
    tzset ();
    return saved_tz;
}

static void
s_test_tz_restore (char **saved_tz_p)
{
    if (*saved_tz_p)
        setenv ("TZ", *saved_tz_p, 1);
    else
        unsetenv ("TZ");
    free (*saved_tz_p);
    *saved_tz_p = NULL;
    tzset ();
}

//  Every form of TIME

static void
s_test_parse_time (void)
{
    char *saved_tz = s_test_tz_set ();
    int64_t now = S_TEST_NOW;
    int64_t when;
    struct { const char *text; int64_t when; } times [] = {
        { "+30m", now + 1800000 },
        { "+2h", now + 7200000 },
        { "+90", now + 90000 },
        { "2026-11-25T22:00", 1795640400000 },              //  21:00 UTC
        { "2026-11-25 22:00:30", 1795640430000 },
        { "2026-11-25T22:00:30Z", 1795644030000 },
        { "2026-07-01T12:00", 1782900000000 },              //  CEST: 10:00 UTC
        { "22:00", 1795640400000 },                         //  Today
        { "20:59", 1795723140000 },                         //  Past: tomorrow
        { "21:00", 1795723200000 },                         //  Now: tomorrow
        { "1795647600", 1795647600000 },
        { NULL, 0 }
    };
    for (int index = 0; times [index].text; index++) {
        when = 0;
        int rc = sf_cli_parse_time (times [index].text, now, &when);
        if (rc || when != times [index].when) {
            printf ("\n%s: rc %d, %" PRId64 ", wanted %" PRId64 "\n", times [index].text,
                    rc, when, times [index].when);
            fflush (stdout);
        }
        assert (rc == 0 && when == times [index].when);
    }
    s_test_tz_restore (&saved_tz);
}

//  What is not a TIME is refused

static void
s_test_parse_time_bad (void)
{
    char *saved_tz = s_test_tz_set ();
    int64_t now = S_TEST_NOW;
    int64_t when;
    const char *bad_times [] = {
        "", "+", "+-5m", "+5x", "+m", "25:00", "12:60", "2026-02-30T10:00", "2026-13-01T00:00",
        "2026-11-25T22", "2026-11-25T22:00Z5", "2026-11-25T22:00:61", "22:00Z", "2026-11-25",
        "tomorrow", "1e9", "9:00", "1969-12-31T23:00", "99999999999999", "2026-11-25T22:00:00+01",
        NULL
    };
    for (const char **text = bad_times; *text; text++) {
        if (sf_cli_parse_time (*text, now, &when) == 0)
            printf ("\naccepted: '%s'\n", *text);
        assert (sf_cli_parse_time (*text, now, &when) == -1);
    }
    s_test_tz_restore (&saved_tz);
}

//  Requests from selectors and options

static void
s_test_select_request (void)
{
    sf_err_t err = SF_ERR_INIT;
    int64_t now = S_TEST_NOW;
    const char *two [] = { "web1", "web2" };
    sf_cli_args_t args = { .instances = two, .instance_count = 2, .strategy = "rbd",
                           .priority = "5", .deadline = "+30m", .window = "2h" };
    json_t *request = sf_cli_select_request ("bulk_create", &args, now, &err);
    assert (request);
    char *text = json_dumps (request, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert (streq (text, "{\"cmd\":\"bulk_create\",\"select\":{\"instances\":[\"web1\",\"web2\"]},"
                         "\"strategy\":\"rbd\",\"priority\":5,\"deadline\":1795638600000,"
                         "\"window\":7200000}"));
    free (text);
    json_decref (request);
    //  --full goes as full: 1
    args = (sf_cli_args_t) { .all = true, .full = true };
    request = sf_cli_select_request ("bulk_create", &args, now, &err);
    text = json_dumps (request, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert (streq (text, "{\"cmd\":\"bulk_create\",\"select\":{\"all\":true},\"full\":1}"));
    free (text);
    json_decref (request);
    args = (sf_cli_args_t) { .tag = "tier=gold", .keep = { "3", NULL, "4", "0" } };
    request = sf_cli_select_request ("schedule_add", &args, now, &err);
    text = json_dumps (request, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert (streq (text, "{\"cmd\":\"schedule_add\",\"select\":{\"tag\":\"tier=gold\"},"
                         "\"keep_last\":3,\"keep_weekly\":4,\"keep_monthly\":0}"));
    free (text);
    json_decref (request);
    args = (sf_cli_args_t) { .all = true };
    request = sf_cli_select_request ("plan", &args, now, &err);
    assert (json_is_true (json_object_get (json_object_get (request, "select"), "all")));
    json_decref (request);
    args = (sf_cli_args_t) { .node = "n7" };
    request = sf_cli_select_request ("plan", &args, now, &err);
    assert (streq (json_string_value (json_object_get (json_object_get (request, "select"),
                                                       "node")), "n7"));
    json_decref (request);
}

//  Bad selectors and options are refused with a message naming the option

static void
s_test_select_request_bad (void)
{
    sf_err_t err = SF_ERR_INIT;
    int64_t now = S_TEST_NOW;
    const char *two [] = { "web1", "web2" };
    struct { sf_cli_args_t args; const char *error; } bad_args [] = {
        { { .strategy = "rbd" }, "select instances with --instance NAME (repeatable)" },
        { { .node = "n1", .all = true }, "give only one kind of selector" },
        { { .instances = two, .instance_count = 1, .tag = "a=b" }, "give only one kind" },
        { { .node = "" }, "--node needs a node name" },
        { { .tag = "tier" }, "--tag must be KEY=VALUE, not 'tier'" },
        { { .tag = "=gold" }, "--tag must be KEY=VALUE, not '=gold'" },
        { { .all = true, .strategy = "" }, "--strategy needs a strategy name" },
        { { .all = true, .priority = "high" }, "--priority must be an integer from" },
        { { .all = true, .priority = "99999999999" }, "--priority must be an integer" },
        { { .all = true, .deadline = "soon" }, "--deadline: cannot read 'soon' as a time; "
                                                "give +30m, YYYY-MM-DDTHH:MM[:SS][Z]" },
        { { .all = true, .deadline = "1000" }, "--deadline '1000' (1970-01-01T00:16:40.000Z) "
                                                "is not in the future" },
        { { .all = true, .window = "0" }, "--window must be a duration such as 90m" },
        { { .all = true, .window = "long" }, "--window must be a duration" },
        { { .all = true, .keep = { NULL, "-1" } }, "--keep-daily must be an integer from 0" },
        { { .all = true, .keep = { NULL, NULL, NULL, "x" } }, "--keep-monthly must be" },
    };
    for (size_t index = 0; index < sizeof (bad_args) / sizeof (bad_args [0]); index++) {
        err = (sf_err_t) SF_ERR_INIT;
        json_t *request = sf_cli_select_request ("bulk_create", &bad_args [index].args, now,
                                                 &err);
        if (request || !strstr (err.text, bad_args [index].error))
            printf ("\ncase %zu: %s\n", index, err.text);
        assert (!request && err.code == SF_EINVAL);
        assert (strstr (err.text, bad_args [index].error));
    }
}

//  The progress bar, as text and redrawn in place on a terminal

static void
s_test_bulk_bar (void)
{
    char bar [256];
    json_t *bulk = s_test_bulk (0);
    assert (!sf_cli_bulk_finished (bulk));
    assert (streq (sf_cli_bulk_bar (bulk, bar, sizeof (bar)),
                   "[######..............] 0/3 done, 1 failed, 0 skipped  0 B  0 B/s  ETA ?"));
    json_decref (bulk);
    bulk = s_test_bulk (1);
    assert (streq (sf_cli_bulk_bar (bulk, bar, sizeof (bar)),
                   "[#############.......] 1/3 done, 1 failed, 0 skipped  3.0 GiB  41.0 MiB/s"
                   "  ETA 1m20s"));
    char *lines = NULL;
    size_t lines_size = 0;
    FILE *out = open_memstream (&lines, &lines_size);
    sf_cli_bulk_render (bulk, NULL, true, 40, out);
    fclose (out);
    assert (streq (lines, "\r[#############.......] 1/3 done, 1 fail\033[K"));
    free (lines);
    json_decref (bulk);
    bulk = s_test_bulk (2);
    assert (sf_cli_bulk_finished (bulk));
    assert (streq (sf_cli_bulk_bar (bulk, bar, sizeof (bar)),
                   "[####################] 1/3 done, 1 failed, 1 skipped  3.0 GiB  41.0 MiB/s"));
    json_decref (bulk);
}

//  Events: nothing new between two equal views; the end is "done"

static void
s_test_bulk_events (void)
{
    json_t *bulk = s_test_bulk (2);
    json_t *events = sf_cli_bulk_events (bulk, bulk);
    assert (json_array_size (events) == 1);
    assert (streq (json_string_value (json_object_get (json_array_get (events, 0), "event")),
                   "done"));
    json_decref (events);
    json_decref (bulk);
    bulk = s_test_bulk (1);
    events = sf_cli_bulk_events (bulk, bulk);
    assert (json_array_size (events) == 0);
    json_decref (events);
    json_decref (bulk);
}

static void
s_test_cancel (void)
{
    sf_err_t err = SF_ERR_INIT;
    const char *ids [] = { "J1", "J2", "" };
    json_t *request = sf_cli_cancel_request (ids, 2, NULL, &err);
    char *text = json_dumps (request, JSON_COMPACT);
    assert (streq (text, "{\"cmd\":\"cancel\",\"job_ids\":[\"J1\",\"J2\"]}"));
    free (text);
    json_decref (request);
    request = sf_cli_cancel_request (NULL, 0, "B3", &err);
    text = json_dumps (request, JSON_COMPACT);
    assert (streq (text, "{\"cmd\":\"cancel\",\"bulk_id\":\"B3\"}"));
    free (text);
    json_decref (request);
    struct { const char **ids; size_t count; const char *bulk; const char *error; } bad [] = {
        { NULL, 0, NULL, "give the jobs to cancel (JOB...), or --bulk ID" },
        { ids, 1, "B3", "give job ids or --bulk, not both" },
        { NULL, 0, "", "--bulk needs a bulk id" },
        { ids, 3, NULL, "'' is not a job id" },
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad [0]); i++) {
        err = (sf_err_t) SF_ERR_INIT;
        assert (!sf_cli_cancel_request (bad [i].ids, bad [i].count, bad [i].bulk, &err));
        assert (err.code == SF_EINVAL && streq (err.text, bad [i].error));
    }
    const char *many [SF_CLI_CANCEL_MAX + 1];
    for (int i = 0; i <= SF_CLI_CANCEL_MAX; i++)
        many [i] = "J1";
    assert (!sf_cli_cancel_request (many, SF_CLI_CANCEL_MAX + 1, NULL, &err));
    assert (streq (err.text, "at most 1000 jobs at once, not 1001"));
    request = sf_cli_cancel_request (many, SF_CLI_CANCEL_MAX, NULL, &err);
    assert (request);
    json_decref (request);
    //  The exit status: every job, none, some
    json_t *answers = json_pack ("[{s:s}, {s:s}]", "outcome", "cancelled",
                                 "outcome", "cancel_sent");
    assert (sf_cli_cancel_status (answers) == SF_CLI_OK);
    json_array_append_new (answers, json_pack ("{s:s}", "outcome", "refused"));
    assert (sf_cli_cancel_status (answers) == SF_CLI_PARTIAL);
    json_decref (answers);
    answers = json_pack ("[{s:s}]", "outcome", "refused");
    assert (sf_cli_cancel_status (answers) == SF_CLI_FAILED);
    json_decref (answers);
    answers = json_array ();
    assert (sf_cli_cancel_status (answers) == SF_CLI_OK);    //  A bulk with none left
    json_decref (answers);
    //  A cancelled job has ended: a bulk of done + cancelled is finished
    json_t *bulk = json_pack ("{s:s, s:i, s:i, s:i}", "state", "running", "total", 2,
                              "done", 1, "cancelled", 1);
    assert (sf_cli_bulk_finished (bulk));
    char bar [256];
    assert (strstr (sf_cli_bulk_bar (bulk, bar, sizeof (bar)),
                    "] 1/2 done, 0 failed, 0 skipped, 1 cancelled "));
    json_decref (bulk);
}

//  snapfleet gc: the request, and polling a run until it is done

static void
s_test_gc (void)
{
    sf_err_t err = SF_ERR_INIT;
    json_t *request = sf_cli_gc_request (true, "n1", &err);
    char *text = json_dumps (request, JSON_COMPACT | JSON_SORT_KEYS);
    assert (streq (text, "{\"cmd\":\"gc\",\"dry_run\":1,\"node\":\"n1\"}"));
    free (text);
    json_decref (request);
    request = sf_cli_gc_request (false, NULL, &err);
    text = json_dumps (request, JSON_COMPACT | JSON_SORT_KEYS);
    assert (streq (text, "{\"cmd\":\"gc\"}"));
    free (text);
    json_decref (request);
    assert (sf_cli_gc_request (false, "../n1", &err) == NULL && err.code == SF_EINVAL);
    assert (strstr (err.text, "--node '../n1'"));
    assert (sf_cli_gc_request (false, "", &err) == NULL);

    sf_cli_t *cli;
    zactor_t *fake = s_fake_start (&cli);
    json_t *run = json_pack ("{s:s, s:s, s:[]}", "id", "G1", "state", "running", "nodes");
    assert (!sf_cli_gc_finished (run));
    assert (sf_cli_gc_wait (cli, &run, 10, 5000, &err) == SF_CLI_OK);
    assert (sf_cli_gc_finished (run) && sf_cli_gc_status (run) == SF_CLI_OK);
    json_t *node = json_array_get (json_object_get (run, "nodes"), 0);
    json_array_append_new (json_object_get (node, "failed"), json_pack ("{s:s}", "name", "x"));
    assert (sf_cli_gc_status (run) == SF_CLI_FAILED);
    json_object_set_new (node, "state", json_string ("no answer"));
    json_array_clear (json_object_get (node, "failed"));
    assert (sf_cli_gc_status (run) == SF_CLI_FAILED);
    json_decref (run);
    //  Waiting times out: exit 75, the run goes on
    run = json_pack ("{s:s, s:s, s:[]}", "id", "G1", "state", "running", "nodes");
    assert (sf_cli_gc_wait (cli, &run, 50, 20, &err) == SF_CLI_TEMPFAIL);
    assert (err.code == SF_ETIMEDOUT && strstr (err.text, "gc run 'G1'"));
    json_decref (run);
    sf_cli_destroy (&cli);
    zactor_destroy (&fake);
}

void
sf_cli_test (bool verbose)
{
    printf (" * sf_cli: ");
    //  @selftest
    s_test_bad_endpoint ();
    s_test_wrong_server_key ();
    s_test_unreachable ();
    s_test_stale_reply ();
    s_test_error_reply ();
    s_test_invalid_reply ();
    s_test_bulk_wait (verbose);
    s_test_bulk_wait_timeout ();
    s_test_parse_time ();
    s_test_parse_time_bad ();
    s_test_select_request ();
    s_test_select_request_bad ();
    s_test_bulk_bar ();
    s_test_bulk_events ();
    s_test_cancel ();
    s_test_gc ();
    //  @end
    printf ("OK\n");
}
