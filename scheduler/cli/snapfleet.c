/*  =========================================================================
    snapfleet - the operator CLI: global options and the command table

    snapfleet [--admin ENDPOINT] [--format table|json] [--timeout SECS]
              [--cert PATH] [--server-key PATH] [--insecure] COMMAND [ARGS]

    Output goes to stdout (a table, or one JSON document); errors go to
    stderr as one line "snapfleet: ...". Exit status: 0 ok, 1 failed,
    2 usage, 3 partly failed (cancel), 69 scheduler unreachable, 75 --wait
    timed out.

    Each command lives in its snapfleet_<noun>.c, with its help and
    options, and calls down into snapfleet_opts.c, sf_cli.c and sf_table.c
    (git's builtin/ and git.c).
    =========================================================================
*/
#include "snapfleet_cmds.h"

#define SNAPFLEET_DEFAULT_ADMIN "tcp://127.0.0.1:7601"
#define SNAPFLEET_DEFAULT_TIMEOUT_MS 5000
#define SNAPFLEET_DEFAULT_CERT "~/.snapfleet/admin"
#define SNAPFLEET_DEFAULT_SERVER_KEY "/etc/snapfleet/scheduler"

//  The commands, in the order the global help lists them
static const snapfleet_cmd_t *s_commands [] = {
    &snapfleet_cmd_nodes,
    &snapfleet_cmd_instances,
    &snapfleet_cmd_snapshot,
    &snapfleet_cmd_restore,
    &snapfleet_cmd_verify,
    &snapfleet_cmd_bulk,
    &snapfleet_cmd_bulks,
    &snapfleet_cmd_plan,
    &snapfleet_cmd_schedule,
    &snapfleet_cmd_jobs,
    &snapfleet_cmd_job,
    &snapfleet_cmd_cancel,
    &snapfleet_cmd_images,
    &snapfleet_cmd_gc,
    &snapfleet_cmd_status,
    &snapfleet_cmd_keygen,
    NULL
};

static const char *s_options =
    "Options:\n"
    "  --admin ENDPOINT  the scheduler's admin endpoint (default: $SNAPFLEET_ADMIN,\n"
    "                    else " SNAPFLEET_DEFAULT_ADMIN ")\n"
    "  --format FORMAT   'table' for people (default) or 'json': one document on\n"
    "                    stdout, sizes in bytes, durations in ms; also accepted\n"
    "                    after the command\n"
    "  --timeout SECS    how long to wait for each answer from the scheduler\n"
    "                    (default 5)\n"
    "  --cert PATH       our admin key pair, from 'snapfleet keygen' (default:\n"
    "                    $SNAPFLEET_CERT, else " SNAPFLEET_DEFAULT_CERT "); its public\n"
    "                    file must be in the scheduler's [security] admins directory\n"
    "  --server-key PATH the scheduler's public key: we talk to no other (default:\n"
    "                    $SNAPFLEET_SERVER_KEY, else " SNAPFLEET_DEFAULT_SERVER_KEY ")\n"
    "  --insecure        plaintext, for a scheduler with 'insecure = true' (also\n"
    "                    $SNAPFLEET_INSECURE=1)\n"
    "  -h, --help        show this help; 'snapfleet COMMAND --help' for a command\n"
    "  --version         show the version\n"
    "\n"
    "Exit status: 0 success, 1 the operation failed, 2 usage error, 3 some of\n"
    "the jobs given could not be cancelled, 69 scheduler unreachable,\n"
    "75 'snapshot --wait', 'restore --wait' or 'verify --wait' timed out.\n";

static void
s_print_help (FILE *out)
{
    fputs (SNAPFLEET_USAGE, out);
    fputs ("\nShow and drive a snapfleet scheduler through its admin endpoint.\n"
           "\nCommands:\n", out);
    for (const snapfleet_cmd_t **cmd = s_commands; *cmd; cmd++) {
        if (strlen ((*cmd)->synopsis) <= 28)
            fprintf (out, "  %-28s  %s\n", (*cmd)->synopsis, (*cmd)->summary);
        else
            fprintf (out, "  %s\n  %-28s  %s\n", (*cmd)->synopsis, "", (*cmd)->summary);
    }
    fputs ("\n", out);
    fputs (s_options, out);
}

//  --------------------------------------------------------------------------
//  Global options and dispatch

enum { OPT_ADMIN = 256, OPT_FORMAT, OPT_TIMEOUT, OPT_VERSION, OPT_CERT, OPT_SERVER_KEY,
       OPT_INSECURE };

static int
s_parse_global (snapfleet_t *app, int argc, char **argv, bool *done)
{
    static const struct option options [] = {
        { "admin", required_argument, NULL, OPT_ADMIN },
        { "format", required_argument, NULL, OPT_FORMAT },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "cert", required_argument, NULL, OPT_CERT },
        { "server-key", required_argument, NULL, OPT_SERVER_KEY },
        { "insecure", no_argument, NULL, OPT_INSECURE },
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
        if (opt == OPT_CERT)
            app->cert = optarg;
        else
        if (opt == OPT_SERVER_KEY)
            app->server_key = optarg;
        else
        if (opt == OPT_INSECURE)
            app->insecure = true;
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
    //  What the CLI writes (keygen's key pairs) is the user's only
    umask (077);
    snapfleet_t app = { .timeout_ms = SNAPFLEET_DEFAULT_TIMEOUT_MS };
    const char *env = getenv ("SNAPFLEET_ADMIN");
    app.admin = env && *env? env: SNAPFLEET_DEFAULT_ADMIN;
    env = getenv ("SNAPFLEET_CERT");
    char *home_cert = NULL;
    if (env && *env)
        app.cert = env;
    else
        app.cert = home_cert = zsys_sprintf ("%s/.snapfleet/admin",
                                             getenv ("HOME")? getenv ("HOME"): "");
    env = getenv ("SNAPFLEET_SERVER_KEY");
    app.server_key = env && *env? env: SNAPFLEET_DEFAULT_SERVER_KEY;
    env = getenv ("SNAPFLEET_INSECURE");
    app.insecure = env && streq (env, "1");
    bool done = false;
    int rc = s_parse_global (&app, argc, argv, &done);
    if (rc || done) {
        zstr_free (&home_cert);
        return rc;
    }
    if (optind >= argc) {
        zstr_free (&home_cert);
        return snapfleet_usage_error (NULL, "no command given");
    }
    const char *name = argv [optind];
    for (const snapfleet_cmd_t **cmd = s_commands; *cmd; cmd++)
        if (streq ((*cmd)->name, name)) {
            app.slots = (const char **) zmalloc ((size_t) argc * sizeof (char *));
            rc = (*cmd)->run (&app, *cmd, argc - optind, argv + optind);
            sf_cli_destroy (&app.cli);
            free (app.slots);
            zstr_free (&home_cert);
            return rc;
        }
    zstr_free (&home_cert);
    return snapfleet_usage_error (NULL, "unknown command '%s'", name);
}
