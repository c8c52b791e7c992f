/*  =========================================================================
    snapfleet_opts - what the CLI's commands share: option parsing, the
    requests they send, field access and printing helpers

    JSON output is the scheduler's reply payload as is (one document, byte
    sizes as integers); tables are for people (aligned, sizes and durations
    human-readable).
    =========================================================================
*/
#include "snapfleet_opts.h"

//  --------------------------------------------------------------------------
//  Options

//  Long options; the codes are what snapfleet_cmd_t.options lists
static const struct option s_options [] = {
    { "format", required_argument, NULL, 'f' },
    { "timeout", required_argument, NULL, 't' },
    { "help", no_argument, NULL, 'h' },
    { "node", required_argument, NULL, 'n' },
    { "instance", required_argument, NULL, 'i' },
    { "wait", no_argument, NULL, 'w' },
    { "strategy", required_argument, NULL, 's' },
    { "all", no_argument, NULL, 'a' },
    { "tag", required_argument, NULL, 'g' },
    { "priority", required_argument, NULL, 'p' },
    { "deadline", required_argument, NULL, 'd' },
    { "window", required_argument, NULL, 'W' },
    { "calendar", required_argument, NULL, 'c' },
    { "keep-last", required_argument, NULL, 'L' },
    { "keep-daily", required_argument, NULL, 'D' },
    { "keep-weekly", required_argument, NULL, 'K' },
    { "keep-monthly", required_argument, NULL, 'M' },
    { "jobs", no_argument, NULL, 'j' },
    { "limit", required_argument, NULL, 'l' },
    { "after", required_argument, NULL, 'A' },
    { "bulk", required_argument, NULL, 'B' },
    { "dry-run", no_argument, NULL, 'R' },
    { "show", required_argument, NULL, 'S' },
    { "to", required_argument, NULL, 'T' },
    { "as-domain", required_argument, NULL, 'X' },
    { "boot", no_argument, NULL, 'b' },
    { "verify", required_argument, NULL, 'V' },
    { "rbd", required_argument, NULL, 'r' },
    { "flatten", no_argument, NULL, 'F' },
    { "full", no_argument, NULL, 'U' },
    { NULL, 0, NULL, 0 }
};

static int
s_parse (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv,
         snapfleet_opts_t *opts)
{
    memset (opts, 0, sizeof (*opts));
    opts->select.instances = app->slots;
    optind = 0;                 //  GNU getopt: start over on the command's argv
    opterr = 0;
    int opt, index = -1;
    while ((opt = getopt_long (argc, argv, ":hf:", s_options, &index)) != -1) {
        if (opt == ':')
            return snapfleet_usage_error (cmd, "option '%s' needs a value", argv [optind - 1]);
        if (opt == '?')
            return snapfleet_usage_error (cmd, "unknown option '%s' for '%s'",
                                          argv [optind - 1], cmd->name);
        if (!strchr (cmd->options, opt))
            return snapfleet_usage_error (cmd, "option '--%s' does not apply to '%s'",
                                          s_options [index].name, cmd->name);
        sf_cli_args_t *select = &opts->select;
        switch (opt) {
            case 'h': opts->help = true; break;
            case 'f':
                //  restore --format qcow2|raw: the new file's format
                if (streq (cmd->name, "restore")
                &&  (streq (optarg, "qcow2") || streq (optarg, "raw"))) {
                    opts->image_format = optarg;
                    break;
                }
                if (streq (cmd->name, "restore")
                &&  !streq (optarg, "table") && !streq (optarg, "json"))
                    return snapfleet_usage_error (cmd, "--format must be 'qcow2' or 'raw' "
                                                  "(the file's) or 'table' or 'json' (the "
                                                  "output's), not '%s'", optarg);
                if (snapfleet_parse_format (app, optarg))
                    return SF_CLI_USAGE;
                break;
            case 't':
                if (snapfleet_parse_seconds ("--timeout", optarg,
                                             streq (cmd->name, "snapshot")
                                             || streq (cmd->name, "restore")
                                             || streq (cmd->name, "verify")
                                             ? &opts->wait_ms: &app->timeout_ms))
                    return SF_CLI_USAGE;
                break;
            case 'n': select->node = optarg; break;
            case 'i': select->instances [select->instance_count++] = optarg; break;
            case 'w': opts->wait = true; break;
            case 's': select->strategy = optarg; break;
            case 'a': select->all = true; break;
            case 'g': select->tag = optarg; break;
            case 'p': select->priority = optarg; break;
            case 'd': select->deadline = optarg; break;
            case 'W': select->window = optarg; break;
            case 'c': opts->calendar = optarg; break;
            case 'L': select->keep [0] = optarg; break;
            case 'D': select->keep [1] = optarg; break;
            case 'K': select->keep [2] = optarg; break;
            case 'M': select->keep [3] = optarg; break;
            case 'j': opts->jobs = true; break;
            case 'l': opts->limit = optarg; break;
            case 'A': opts->after = optarg; break;
            case 'B': opts->bulk = optarg; break;
            case 'R': opts->dry_run = true; break;
            case 'S': opts->show = optarg; break;
            case 'T': opts->to = optarg; break;
            case 'X': opts->as_domain = optarg; break;
            case 'b': opts->boot = true; break;
            case 'V': opts->verify_sample = optarg; break;
            case 'r': opts->rbd = optarg; break;
            case 'F': opts->flatten = true; break;
            case 'U': select->full = true; break;
        }
    }
    opts->first = optind;
    return SF_CLI_OK;
}

int
snapfleet_start (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv,
                 int positionals, snapfleet_opts_t *opts, int *rc)
{
    *rc = s_parse (app, cmd, argc, argv, opts);
    if (*rc)
        return -1;
    if (opts->help) {
        printf ("usage: snapfleet %s\n\n%s", cmd->synopsis, cmd->help);
        return -1;
    }
    if (positionals >= 0 && argc - opts->first != positionals) {
        *rc = snapfleet_usage_error (cmd, "'%s' takes no arguments, got '%s'",
                                     cmd->name, argv [opts->first]);
        return -1;
    }
    return 0;
}

int
snapfleet_parse_format (snapfleet_t *app, const char *value)
{
    if (streq (value, "json"))
        app->json = true;
    else
    if (streq (value, "table"))
        app->json = false;
    else {
        fprintf (stderr, "snapfleet: --format must be 'table' or 'json', not '%s'\n", value);
        return -1;
    }
    return 0;
}

int
snapfleet_parse_seconds (const char *option, const char *value, int *ms)
{
    char *end = NULL;
    errno = 0;
    double seconds = strtod (value, &end);
    int64_t duration_ms;
    if ((errno || end == value || *end) && !sf_parse_duration_ms (value, &duration_ms)) {
        errno = 0;
        seconds = duration_ms / 1000.0;
        end = "";
    }
    if (errno || end == value || *end || !(seconds > 0) || seconds > 86400 * 365) {
        fprintf (stderr, "snapfleet: %s must be a positive number of seconds or a "
                 "duration such as 90s or 5m, not '%s'\n", option, value);
        return -1;
    }
    *ms = (int) (seconds * 1000 + 0.5);
    if (*ms < 1)
        *ms = 1;
    return 0;
}

int
snapfleet_usage_error (const snapfleet_cmd_t *cmd, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fputs ("snapfleet: ", stderr);
    vfprintf (stderr, format, args);
    va_end (args);
    if (cmd)
        fprintf (stderr, "\nusage: snapfleet %s\nsee 'snapfleet %s --help'\n",
                 cmd->synopsis, cmd->name);
    else
        fprintf (stderr, "\n%ssee 'snapfleet --help'\n", SNAPFLEET_USAGE);
    return SF_CLI_USAGE;
}

//  --------------------------------------------------------------------------
//  Requests

int
snapfleet_call (snapfleet_t *app, json_t *request, json_t **reply_p)
{
    sf_err_t err = SF_ERR_INIT;
    if (!app->cli) {
        zcert_t *cert = NULL, *server = NULL;
        if (!app->insecure
        &&  (!(cert = sf_cert_load (app->cert, true, &err))
        ||   !(server = sf_cert_load (app->server_key, false, &err)))) {
            fprintf (stderr, "snapfleet: %s (--cert, --server-key)\n", err.text);
            zcert_destroy (&cert);
            return SF_CLI_USAGE;
        }
        app->cli = sf_cli_new (app->admin, cert, server, app->timeout_ms, &err);
        zcert_destroy (&cert);
        zcert_destroy (&server);
        if (!app->cli) {
            fprintf (stderr, "snapfleet: %s\n", err.text);
            return SF_CLI_USAGE;
        }
    }
    int rc = sf_cli_call (app->cli, request, reply_p, &err);
    if (rc != SF_CLI_OK) {
        //  The scheduler's error text may quote a peer's string
        char *text = sf_log_escape_dup (err.text);
        fprintf (stderr, "snapfleet: %s\n", text);
        free (text);
    }
    return rc;
}

int
snapfleet_request (snapfleet_t *app, const char *name, const char *key, const char *value,
                   json_t **reply_p)
{
    json_t *request = json_pack ("{s:s}", "cmd", name);
    if (key && value)
        json_object_set_new (request, key, json_string (value));
    int rc = snapfleet_call (app, request, reply_p);
    json_decref (request);
    return rc;
}

static bool
s_job_ended (json_t *job)
{
    const char *state = snapfleet_str (job, "state");
    return streq (state, "done") || streq (state, "failed") || streq (state, "cancelled")
        || streq (state, "skipped");
}

int
snapfleet_wait_job (snapfleet_t *app, json_t **job_p, int wait_ms, bool progress)
{
    int64_t deadline = sf_time_mono_ms () + wait_ms;
    int64_t answered = sf_time_mono_ms ();      //  the scheduler's last answer
    char id [64];
    snprintf (id, sizeof (id), "%s", snapfleet_str (*job_p, "job_id"));
    char phase [64] = "";
    while (!s_job_ended (*job_p)) {
        if (progress && !streq (phase, snapfleet_str (*job_p, "phase"))) {
            snprintf (phase, sizeof (phase), "%s", snapfleet_str (*job_p, "phase"));
            fprintf (stderr, "%s: %s, phase %s\n", id, snapfleet_str (*job_p, "state"), phase);
        }
        if (wait_ms && sf_time_mono_ms () >= deadline) {
            fprintf (stderr, "snapfleet: timed out after %.1fs waiting for job '%s' "
                     "(state %s, phase %s); it goes on\n", wait_ms / 1000.0, id,
                     snapfleet_str (*job_p, "state"), snapfleet_str (*job_p, "phase"));
            return SF_CLI_TEMPFAIL;
        }
        zclock_sleep (SNAPFLEET_WAIT_POLL_MS);
        //  A scheduler busy for longer than one request's timeout (a flood
        //  of messages, a slow disk) is asked again, for up to
        //  SNAPFLEET_WAIT_PATIENCE_MS of silence; then it is unreachable
        json_t *reply = NULL;
        int rc = SF_CLI_UNAVAILABLE;
        if (app->cli && sf_time_mono_ms () - answered < SNAPFLEET_WAIT_PATIENCE_MS) {
            sf_err_t err = SF_ERR_INIT;
            json_t *request = json_pack ("{s:s, s:s}", "cmd", "job_show", "job_id", id);
            rc = sf_cli_call (app->cli, request, &reply, &err);
            json_decref (request);
            if (rc == SF_CLI_UNAVAILABLE)
                continue;
        }
        if (rc != SF_CLI_OK
        &&  (rc = snapfleet_request (app, "job_show", "job_id", id, &reply)))
            return rc;
        answered = sf_time_mono_ms ();
        json_decref (*job_p);
        *job_p = json_incref (json_object_get (reply, "job"));
        json_decref (reply);
    }
    return SF_CLI_OK;
}

int
snapfleet_call_job (snapfleet_t *app, json_t *request, bool wait, int wait_ms,
                    bool progress, json_t **job_p)
{
    assert (app && request && job_p);
    *job_p = NULL;
    json_t *reply = NULL;
    int rc = snapfleet_call (app, request, &reply);
    if (rc)
        return rc;
    json_t *job = json_incref (json_object_get (reply, "job"));
    json_decref (reply);
    if (wait && (rc = snapfleet_wait_job (app, &job, wait_ms, progress))) {
        json_decref (job);
        return rc;
    }
    *job_p = job;
    return SF_CLI_OK;
}

void
snapfleet_job_failure (json_t *job, const char *text)
{
    char *escaped = sf_log_escape_dup (text);
    fprintf (stderr, "snapfleet: job %s %s: %s\n", snapfleet_str (job, "job_id"),
             snapfleet_str (job, "state"), escaped);
    free (escaped);
}

int
snapfleet_show (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv,
                const snapfleet_opts_t *opts, json_t **reply_p)
{
    int count = argc - opts->first;
    if (count == 0 || !streq (argv [opts->first], "show"))
        return snapfleet_usage_error (cmd, "'%s' needs a subcommand: show", cmd->name);
    if (count != 2)
        return snapfleet_usage_error (cmd, "'%s show' takes one %s id", cmd->name, cmd->name);
    char request [32], key [32];
    snprintf (request, sizeof (request), "%s_show", cmd->name);
    snprintf (key, sizeof (key), "%s_id", cmd->name);
    return snapfleet_request (app, request, key, argv [opts->first + 1], reply_p);
}

json_t *
snapfleet_select_request (const snapfleet_cmd_t *cmd, const char *name,
                          const snapfleet_opts_t *opts)
{
    sf_err_t err = SF_ERR_INIT;
    json_t *request = sf_cli_select_request (name, &opts->select, sf_time_now_ms (), &err);
    if (!request)
        snapfleet_usage_error (cmd, "%s", err.text);
    return request;
}

//  --------------------------------------------------------------------------
//  Fields and printing

const char *
snapfleet_str (json_t *object, const char *key)
{
    const char *text = json_string_value (json_object_get (object, key));
    return text? text: "";
}

int64_t
snapfleet_int (json_t *object, const char *key)
{
    return json_integer_value (json_object_get (object, key));
}

char *
snapfleet_when (json_t *object, const char *key, char *buf, size_t size)
{
    json_t *value = json_object_get (object, key);
    if (!json_is_integer (value)) {
        snprintf (buf, size, "%s", json_is_string (value)? json_string_value (value): "-");
        return buf;
    }
    time_t when = (time_t) (json_integer_value (value) / 1000);
    struct tm tm;
    gmtime_r (&when, &tm);
    strftime (buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

char *
snapfleet_size (json_t *object, const char *key, char *buf, size_t size)
{
    return sf_format_size ((uint64_t) snapfleet_int (object, key), buf, size);
}

char *
snapfleet_ms (json_t *object, const char *key, char *buf, size_t size)
{
    if (!json_is_integer (json_object_get (object, key))) {
        snprintf (buf, size, "-");
        return buf;
    }
    return sf_table_duration (snapfleet_int (object, key), buf, size);
}

char *
snapfleet_duration (json_t *object, const char *key, char *buf, size_t size)
{
    return sf_table_duration (snapfleet_int (object, key), buf, size);
}

void
snapfleet_print_json (json_t *json)
{
    json_dumpf (json, stdout, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
    fputc ('\n', stdout);
}

void
snapfleet_print_payload (json_t *reply, const char *key)
{
    json_t *payload = json_pack ("{s:O}", key, json_object_get (reply, key));
    snapfleet_print_json (payload);
    json_decref (payload);
}

//  --------------------------------------------------------------------------
//  Lists

//  Send request and print its reply's array as JSON or as a table of
//  columns; with opts (a paginated list), the hint for the next page

static int
s_list (snapfleet_t *app, json_t *request, const char *array,
        const snapfleet_column_t *columns, const snapfleet_opts_t *opts)
{
    json_t *reply = NULL;
    int rc = snapfleet_call (app, request, &reply);
    if (rc)
        return rc;
    if (app->json) {
        json_t *payload = json_pack ("{s:O}", array, json_object_get (reply, array));
        if (opts) {
            json_object_set (payload, "more", json_object_get (reply, "more"));
            json_object_set (payload, "next", json_object_get (reply, "next"));
        }
        snapfleet_print_json (payload);
        json_decref (payload);
        json_decref (reply);
        return SF_CLI_OK;
    }
    char *headers = strdup (columns->header);
    for (const snapfleet_column_t *column = columns + 1; column->header; column++) {
        char *longer = zsys_sprintf ("%s|%s", headers, column->header);
        free (headers);
        headers = longer;
    }
    sf_table_t *table = sf_table_new (headers);
    free (headers);
    size_t index;
    json_t *row;
    json_array_foreach (json_object_get (reply, array), index, row) {
        for (const snapfleet_column_t *column = columns; column->header; column++)
            column->cell (table, row, column->key);
    }
    sf_table_print (table, stdout);
    sf_table_destroy (&table);
    const char *next = json_string_value (json_object_get (reply, "next"));
    if (opts && json_is_true (json_object_get (reply, "more")) && next) {
        //  The cursor is the scheduler's: quoted for a shell, escaped
        char *escaped = sf_log_escape_dup (next);
        fprintf (stderr, "snapfleet: more %s follow; next page: snapfleet %s%s%s "
                 "--after '%s'\n", array, json_string_value (json_object_get (request, "cmd")),
                 opts->limit? " --limit ": "", opts->limit? opts->limit: "", escaped);
        free (escaped);
    }
    json_decref (reply);
    return SF_CLI_OK;
}

int
snapfleet_list (snapfleet_t *app, const char *name, const char *key, const char *value,
                const char *array, const snapfleet_column_t *columns)
{
    json_t *request = json_pack ("{s:s}", "cmd", name);
    if (key && value)
        json_object_set_new (request, key, json_string (value));
    int rc = s_list (app, request, array, columns, NULL);
    json_decref (request);
    return rc;
}

int
snapfleet_list_page (snapfleet_t *app, const char *name, const char *key, const char *value,
                     const char *array, const snapfleet_column_t *columns,
                     const snapfleet_opts_t *opts)
{
    json_t *request = json_pack ("{s:s}", "cmd", name);
    if (key && value)
        json_object_set_new (request, key, json_string (value));
    if (opts->limit)
        json_object_set_new (request, "limit", json_string (opts->limit));
    if (opts->after)
        json_object_set_new (request, "after", json_string (opts->after));
    int rc = s_list (app, request, array, columns, opts);
    json_decref (request);
    return rc;
}

void
snapfleet_cell_str (sf_table_t *table, json_t *row, const char *key)
{
    sf_table_add (table, snapfleet_str (row, key));
}

void
snapfleet_cell_int (sf_table_t *table, json_t *row, const char *key)
{
    sf_table_addf (table, "%" PRId64, snapfleet_int (row, key));
}

void
snapfleet_cell_size (sf_table_t *table, json_t *row, const char *key)
{
    char size [32];
    sf_table_add (table, snapfleet_size (row, key, size, sizeof (size)));
}

void
snapfleet_cell_when (sf_table_t *table, json_t *row, const char *key)
{
    char when [32];
    sf_table_add (table, snapfleet_when (row, key, when, sizeof (when)));
}

void
snapfleet_cell_duration (sf_table_t *table, json_t *row, const char *key)
{
    char duration [32];
    sf_table_add (table, snapfleet_duration (row, key, duration, sizeof (duration)));
}
