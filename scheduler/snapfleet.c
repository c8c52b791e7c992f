/*  =========================================================================
    snapfleet - the operator CLI: global options, command dispatch and the
    helpers every command shares

    snapfleet [--admin ENDPOINT] [--format table|json] [--timeout SECS]
              COMMAND [ARGS]

    Output goes to stdout (a table, or one JSON document); errors go to
    stderr as one line "snapfleet: ...". Exit status: 0 ok, 1 failed,
    2 usage, 69 scheduler unreachable, 75 --wait timed out.
    =========================================================================
*/
#include "snapfleet.h"

static const char *s_usage =
    "usage: snapfleet [--admin ENDPOINT] [--format table|json] [--timeout SECS]\n"
    "                 COMMAND [ARGS]\n";

static const char *s_options =
    "Options:\n"
    "  --admin ENDPOINT  the scheduler's admin endpoint (default: $SNAPFLEET_ADMIN,\n"
    "                    else " SNAPFLEET_DEFAULT_ADMIN ")\n"
    "  --format FORMAT   'table' for people (default) or 'json': one document on\n"
    "                    stdout, sizes in bytes, durations in ms; also accepted\n"
    "                    after the command\n"
    "  --timeout SECS    how long to wait for each answer from the scheduler\n"
    "                    (default 5)\n"
    "  -h, --help        show this help; 'snapfleet COMMAND --help' for a command\n"
    "  --version         show the version\n"
    "\n"
    "Exit status: 0 success, 1 the operation failed, 2 usage error,\n"
    "69 scheduler unreachable, 75 'snapshot --wait' timed out.\n";

static void
s_print_help (FILE *out)
{
    fputs (s_usage, out);
    fputs ("\nShow and drive a snapfleet scheduler through its admin endpoint.\n"
           "\nCommands:\n", out);
    for (const snapfleet_cmd_t *cmd = snapfleet_cmds; cmd->name; cmd++) {
        if (strlen (cmd->synopsis) <= 28)
            fprintf (out, "  %-28s  %s\n", cmd->synopsis, cmd->summary);
        else
            fprintf (out, "  %s\n  %-28s  %s\n", cmd->synopsis, "", cmd->summary);
    }
    fputs ("\n", out);
    fputs (s_options, out);
}

//  --------------------------------------------------------------------------
//  Helpers shared by the commands

int
snapfleet_call (snapfleet_t *app, json_t *request, json_t **reply_p)
{
    sf_err_t err = SF_ERR_INIT;
    if (!app->cli) {
        app->cli = sf_cli_new (app->admin, app->timeout_ms, &err);
        if (!app->cli) {
            fprintf (stderr, "snapfleet: %s\n", err.text);
            return SF_CLI_USAGE;
        }
    }
    int rc = sf_cli_call (app->cli, request, reply_p, &err);
    if (rc != SF_CLI_OK)
        fprintf (stderr, "snapfleet: %s\n", err.text);
    return rc;
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
        fprintf (stderr, "\n%ssee 'snapfleet --help'\n", s_usage);
    return SF_CLI_USAGE;
}

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

void
snapfleet_print_json (json_t *json)
{
    json_dumpf (json, stdout, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
    fputc ('\n', stdout);
}

//  --------------------------------------------------------------------------
//  Global options and dispatch

enum { OPT_ADMIN = 256, OPT_FORMAT, OPT_TIMEOUT, OPT_VERSION };

static int
s_parse_global (snapfleet_t *app, int argc, char **argv, bool *done)
{
    static const struct option options [] = {
        { "admin", required_argument, NULL, OPT_ADMIN },
        { "format", required_argument, NULL, OPT_FORMAT },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, OPT_VERSION },
        { NULL, 0, NULL, 0 }
    };
    opterr = 0;
    int opt;
    //  '+': stop at the command, whose options are its own
    while ((opt = getopt_long (argc, argv, "+:h", options, NULL)) != -1) {
        if (opt == 'h' || opt == OPT_VERSION) {
            if (opt == 'h')
                s_print_help (stdout);
            else
                printf ("snapfleet %s\n", SF_VERSION);
            *done = true;
            return SF_CLI_OK;
        }
        if (opt == OPT_ADMIN)
            app->admin = optarg;
        else
        if (opt == OPT_FORMAT && snapfleet_parse_format (app, optarg))
            return SF_CLI_USAGE;
        else
        if (opt == OPT_TIMEOUT && snapfleet_parse_seconds ("--timeout", optarg,
                                                           &app->timeout_ms))
            return SF_CLI_USAGE;
        else
        if (opt == ':')
            return snapfleet_usage_error (NULL, "option '%s' needs a value",
                                          argv [optind - 1]);
        else
        if (opt == '?')
            return snapfleet_usage_error (NULL, "unknown option '%s'", argv [optind - 1]);
    }
    return SF_CLI_OK;
}

int
main (int argc, char *argv [])
{
    //  Keep the default signal handlers: Ctrl-C ends the CLI at once
    zsys_handler_set (NULL);
    snapfleet_t app = { .timeout_ms = SNAPFLEET_DEFAULT_TIMEOUT_MS };
    const char *env = getenv ("SNAPFLEET_ADMIN");
    app.admin = env && *env? env: SNAPFLEET_DEFAULT_ADMIN;
    bool done = false;
    int rc = s_parse_global (&app, argc, argv, &done);
    if (rc || done)
        return rc;
    if (optind >= argc)
        return snapfleet_usage_error (NULL, "no command given");
    const char *name = argv [optind];
    for (const snapfleet_cmd_t *cmd = snapfleet_cmds; cmd->name; cmd++)
        if (streq (cmd->name, name)) {
            app.slots = (const char **) zmalloc ((size_t) argc * sizeof (char *));
            rc = cmd->run (&app, cmd, argc - optind, argv + optind);
            sf_cli_destroy (&app.cli);
            free (app.slots);
            return rc;
        }
    return snapfleet_usage_error (NULL, "unknown command '%s'", name);
}
