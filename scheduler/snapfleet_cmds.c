/*  =========================================================================
    snapfleet_cmds - the CLI's commands: option parsing, the request each
    one sends, and its table and JSON output

    JSON output is the scheduler's reply payload as is (one document, byte
    sizes as integers); tables are for people (aligned, sizes and durations
    human-readable).
    =========================================================================
*/
#include "snapfleet.h"

//  Options any command may take; each command lists the ones it accepts
typedef struct {
    const char *node;           //  instances --node
    const char *instance;       //  snapshot --instance
    const char *strategy;       //  snapshot --strategy
    bool wait;                  //  snapshot --wait
    int wait_ms;                //  snapshot --timeout, 0 = no limit
    bool help;
    int first;                  //  Index of the first positional argument
} opts_t;

//  Polling interval of snapshot --wait
#define WAIT_POLL_MS 150

//  --------------------------------------------------------------------------
//  Small helpers

static const char *
s_str (json_t *object, const char *key)
{
    const char *text = json_string_value (json_object_get (object, key));
    return text? text: "";
}

static int64_t
s_int (json_t *object, const char *key)
{
    return json_integer_value (json_object_get (object, key));
}

static const char *
s_size (json_t *object, const char *key, char *buf, size_t size)
{
    return sf_format_size ((uint64_t) s_int (object, key), buf, size);
}

static const char *
s_ms (json_t *object, const char *key, char *buf, size_t size)
{
    return sf_table_duration (s_int (object, key), buf, size);
}

static int
s_parse (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv, opts_t *opts)
{
    static const struct option options [] = {
        { "format", required_argument, NULL, 'f' },
        { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { "node", required_argument, NULL, 'n' },
        { "instance", required_argument, NULL, 'i' },
        { "wait", no_argument, NULL, 'w' },
        { "strategy", required_argument, NULL, 's' },
        { NULL, 0, NULL, 0 }
    };
    memset (opts, 0, sizeof (*opts));
    optind = 0;                 //  GNU getopt: start over on the command's argv
    opterr = 0;
    int opt, index = -1;
    while ((opt = getopt_long (argc, argv, ":hf:", options, &index)) != -1) {
        if (opt == ':')
            return snapfleet_usage_error (cmd, "option '%s' needs a value", argv [optind - 1]);
        if (opt == '?')
            return snapfleet_usage_error (cmd, "unknown option '%s' for '%s'",
                                          argv [optind - 1], cmd->name);
        if (!strchr (cmd->options, opt))
            return snapfleet_usage_error (cmd, "option '--%s' does not apply to '%s'",
                                          options [index].name, cmd->name);
        if (opt == 'h')
            opts->help = true;
        else
        if (opt == 'f' && snapfleet_parse_format (app, optarg))
            return SF_CLI_USAGE;
        else
        if (opt == 't' && snapfleet_parse_seconds ("--timeout", optarg,
                                                   streq (cmd->name, "snapshot")
                                                   ? &opts->wait_ms: &app->timeout_ms))
            return SF_CLI_USAGE;
        else
        if (opt == 'n')
            opts->node = optarg;
        else
        if (opt == 'i')
            opts->instance = optarg;
        else
        if (opt == 'w')
            opts->wait = true;
        else
        if (opt == 's')
            opts->strategy = optarg;
    }
    opts->first = optind;
    return SF_CLI_OK;
}

//  Parse options; print the command's help if asked. Returns -1 when the
//  command is done (exit status in *rc), 0 to go on.

static int
s_start (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv,
         int positionals, opts_t *opts, int *rc)
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

//  Send {"cmd": name, key: value} and return the reply in *reply_p

static int
s_request (snapfleet_t *app, const char *name, const char *key, const char *value,
           json_t **reply_p)
{
    json_t *request = json_pack ("{s:s}", "cmd", name);
    if (key && value)
        json_object_set_new (request, key, json_string (value));
    int rc = snapfleet_call (app, request, reply_p);
    json_decref (request);
    return rc;
}

//  Print {"key": reply[key]} as JSON

static void
s_print_payload (json_t *reply, const char *key)
{
    json_t *payload = json_pack ("{s:O}", key, json_object_get (reply, key));
    snapfleet_print_json (payload);
    json_decref (payload);
}

//  --------------------------------------------------------------------------
//  nodes, instances, images, jobs

static void
s_print_nodes (json_t *nodes)
{
    sf_table_t *table = sf_table_new ("NAME|STATE|LAST SEEN|>INSTANCES|>RUNNING");
    size_t index;
    json_t *node;
    json_array_foreach (nodes, index, node) {
        sf_table_add (table, s_str (node, "name"));
        sf_table_add (table, s_str (node, "state"));
        sf_table_add (table, s_str (node, "last_seen"));
        sf_table_addf (table, "%" PRId64, s_int (node, "instances"));
        sf_table_addf (table, "%" PRId64, s_int (node, "running_jobs"));
    }
    sf_table_print (table, stdout);
    sf_table_destroy (&table);
}

static int
s_cmd_nodes (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    opts_t opts;
    json_t *reply = NULL;
    int rc;
    if (s_start (app, cmd, argc, argv, 0, &opts, &rc)
    ||  (rc = s_request (app, "nodes", NULL, NULL, &reply)))
        return rc;
    if (app->json)
        s_print_payload (reply, "nodes");
    else
        s_print_nodes (json_object_get (reply, "nodes"));
    json_decref (reply);
    return SF_CLI_OK;
}

static void
s_print_instances (json_t *instances)
{
    sf_table_t *table = sf_table_new ("NAME|UUID|NODE|STATE|STORAGE|STRATEGY|>DISKS|>SIZE");
    size_t index, d;
    json_t *instance, *disk;
    json_array_foreach (instances, index, instance) {
        json_t *disks = json_object_get (instance, "disks");
        uint64_t total = 0;
        json_array_foreach (disks, d, disk)
            total += (uint64_t) s_int (disk, "virtual_size");
        char size [32];
        sf_table_add (table, s_str (instance, "name"));
        sf_table_add (table, s_str (instance, "uuid"));
        sf_table_add (table, s_str (instance, "node"));
        sf_table_add (table, s_str (instance, "state"));
        sf_table_add (table, s_str (instance, "storage_class"));
        sf_table_add (table, s_str (instance, "strategy"));
        sf_table_addf (table, "%zu", json_array_size (disks));
        sf_table_add (table, sf_format_size (total, size, sizeof (size)));
    }
    sf_table_print (table, stdout);
    sf_table_destroy (&table);
}

static int
s_cmd_instances (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    opts_t opts;
    json_t *reply = NULL;
    int rc;
    if (s_start (app, cmd, argc, argv, 0, &opts, &rc)
    ||  (rc = s_request (app, "instances", "node", opts.node, &reply)))
        return rc;
    if (app->json)
        s_print_payload (reply, "instances");
    else
        s_print_instances (json_object_get (reply, "instances"));
    json_decref (reply);
    return SF_CLI_OK;
}

static void
s_print_images (json_t *images)
{
    sf_table_t *table = sf_table_new ("ID|INSTANCE|JOB|DISK|>SIZE|CREATED|STORE|PATH");
    size_t index;
    json_t *image;
    json_array_foreach (images, index, image) {
        char size [32];
        sf_table_add (table, s_str (image, "id"));
        sf_table_add (table, s_str (image, "instance"));
        sf_table_add (table, s_str (image, "job_id"));
        sf_table_add (table, s_str (image, "disk_target"));
        sf_table_add (table, s_size (image, "size", size, sizeof (size)));
        sf_table_add (table, s_str (image, "created"));
        sf_table_add (table, s_str (image, "store"));
        sf_table_add (table, s_str (image, "path"));
    }
    sf_table_print (table, stdout);
    sf_table_destroy (&table);
}

static int
s_cmd_images (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    opts_t opts;
    json_t *reply = NULL;
    int rc;
    if (s_start (app, cmd, argc, argv, 0, &opts, &rc)
    ||  (rc = s_request (app, "images", NULL, NULL, &reply)))
        return rc;
    if (app->json)
        s_print_payload (reply, "images");
    else
        s_print_images (json_object_get (reply, "images"));
    json_decref (reply);
    return SF_CLI_OK;
}

static void
s_print_jobs (json_t *jobs)
{
    sf_table_t *table = sf_table_new (
        "JOB|INSTANCE|NODE|STATE|PHASE|STRATEGY|>PAUSE|>SIZE|UPDATED|ERROR");
    size_t index;
    json_t *job;
    json_array_foreach (jobs, index, job) {
        char pause [32], size [32];
        sf_table_add (table, s_str (job, "job_id"));
        sf_table_add (table, s_str (job, "instance"));
        sf_table_add (table, s_str (job, "node"));
        sf_table_add (table, s_str (job, "state"));
        sf_table_add (table, s_str (job, "phase"));
        sf_table_add (table, s_str (job, "strategy"));
        sf_table_add (table, s_ms (job, "pause_ms", pause, sizeof (pause)));
        sf_table_add (table, s_size (job, "bytes", size, sizeof (size)));
        sf_table_add (table, s_str (job, "updated"));
        sf_table_add (table, s_str (json_object_get (job, "error"), "text"));
    }
    sf_table_print (table, stdout);
    sf_table_destroy (&table);
}

static int
s_cmd_jobs (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    opts_t opts;
    json_t *reply = NULL;
    int rc;
    if (s_start (app, cmd, argc, argv, 0, &opts, &rc)
    ||  (rc = s_request (app, "jobs", NULL, NULL, &reply)))
        return rc;
    if (app->json)
        s_print_payload (reply, "jobs");
    else
        s_print_jobs (json_object_get (reply, "jobs"));
    json_decref (reply);
    return SF_CLI_OK;
}

//  --------------------------------------------------------------------------
//  job show, and the job as snapshot prints it

static void
s_print_job_fields (json_t *job)
{
    char buf [4][32];
    json_t *error = json_object_get (job, "error");
    printf ("job          %s\n", s_str (job, "job_id"));
    printf ("instance     %s (%s)\n", s_str (job, "instance"), s_str (job, "instance_uuid"));
    printf ("node         %s\n", s_str (job, "node"));
    printf ("state        %s\n", s_str (job, "state"));
    printf ("phase        %s\n", s_str (job, "phase"));
    printf ("attempt      %" PRId64 "\n", s_int (job, "attempt"));
    printf ("strategy     %s\n", s_str (job, "strategy"));
    printf ("consistency  %s\n", *s_str (job, "consistency")? s_str (job, "consistency"): "-");
    printf ("pause        %s\n", s_ms (job, "pause_ms", buf [0], sizeof (buf [0])));
    printf ("convert      %s\n", s_ms (job, "convert_ms", buf [1], sizeof (buf [1])));
    printf ("upload       %s\n", s_ms (job, "upload_ms", buf [2], sizeof (buf [2])));
    printf ("size         %s\n", s_size (job, "bytes", buf [3], sizeof (buf [3])));
    printf ("created      %s\n", s_str (job, "created"));
    printf ("updated      %s\n", s_str (job, "updated"));
    if (json_is_object (error))
        printf ("error        %s: %s\n", sf_err_name ((int) s_int (error, "code")),
                s_str (error, "text"));
    if (json_is_string (json_object_get (job, "note")))
        printf ("note         %s\n", s_str (job, "note"));
}

static void
s_print_job (json_t *job)
{
    s_print_job_fields (job);
    size_t index;
    json_t *item;
    sf_table_t *table = sf_table_new ("PHASE|>MS|>SIZE|AT|DETAIL");
    json_array_foreach (json_object_get (job, "events"), index, item) {
        char size [32];
        sf_table_add (table, s_str (item, "phase"));
        sf_table_addf (table, "%" PRId64, s_int (item, "ms"));
        sf_table_add (table, s_size (item, "bytes", size, sizeof (size)));
        sf_table_add (table, s_str (item, "at"));
        sf_table_add (table, s_str (item, "text"));
    }
    if (sf_table_rows (table)) {
        printf ("\n");
        sf_table_print (table, stdout);
    }
    sf_table_destroy (&table);
    table = sf_table_new ("IMAGE|DISK|>SIZE|SHA256|PATH");
    json_array_foreach (json_object_get (job, "images"), index, item) {
        char size [32];
        sf_table_add (table, s_str (item, "id"));
        sf_table_add (table, s_str (item, "disk_target"));
        sf_table_add (table, s_size (item, "size", size, sizeof (size)));
        sf_table_add (table, s_str (item, "sha256"));
        sf_table_add (table, s_str (item, "path"));
    }
    if (sf_table_rows (table)) {
        printf ("\n");
        sf_table_print (table, stdout);
    }
    sf_table_destroy (&table);
}

static int
s_cmd_job (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    opts_t opts;
    json_t *reply = NULL;
    int rc;
    if (s_start (app, cmd, argc, argv, -1, &opts, &rc))
        return rc;
    int count = argc - opts.first;
    if (count == 0 || !streq (argv [opts.first], "show"))
        return snapfleet_usage_error (cmd, "'job' needs a subcommand: show");
    if (count != 2)
        return snapfleet_usage_error (cmd, "'job show' takes one job id");
    if ((rc = s_request (app, "job_show", "job_id", argv [opts.first + 1], &reply)))
        return rc;
    json_t *job = json_object_get (reply, "job");
    if (app->json)
        snapfleet_print_json (job);
    else
        s_print_job (job);
    json_decref (reply);
    return SF_CLI_OK;
}

//  --------------------------------------------------------------------------
//  snapshot

static bool
s_finished (json_t *job)
{
    const char *state = s_str (job, "state");
    return streq (state, "done") || streq (state, "failed");
}

//  Poll the job until it is finished; *job_p is replaced by each new view

static int
s_wait (snapfleet_t *app, json_t **job_p, int wait_ms)
{
    int64_t deadline = sf_time_mono_ms () + wait_ms;
    bool progress = !app->json && isatty (STDERR_FILENO);
    char id [64];
    snprintf (id, sizeof (id), "%s", s_str (*job_p, "job_id"));
    char phase [64] = "";
    while (!s_finished (*job_p)) {
        if (progress && !streq (phase, s_str (*job_p, "phase"))) {
            snprintf (phase, sizeof (phase), "%s", s_str (*job_p, "phase"));
            fprintf (stderr, "%s: %s, phase %s\n", id, s_str (*job_p, "state"), phase);
        }
        if (wait_ms && sf_time_mono_ms () >= deadline) {
            fprintf (stderr, "snapfleet: timed out after %.1fs waiting for job '%s' "
                     "(state %s, phase %s); it goes on\n", wait_ms / 1000.0, id,
                     s_str (*job_p, "state"), s_str (*job_p, "phase"));
            return SF_CLI_TEMPFAIL;
        }
        zclock_sleep (WAIT_POLL_MS);
        json_t *reply = NULL;
        int rc = s_request (app, "job_show", "job_id", id, &reply);
        if (rc)
            return rc;
        json_decref (*job_p);
        *job_p = json_incref (json_object_get (reply, "job"));
        json_decref (reply);
    }
    return SF_CLI_OK;
}

static int
s_cmd_snapshot (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    opts_t opts;
    json_t *reply = NULL;
    int rc;
    if (s_start (app, cmd, argc, argv, 0, &opts, &rc))
        return rc;
    if (!opts.instance)
        return snapfleet_usage_error (cmd, "'snapshot' needs --instance NAME|UUID");
    json_t *request = json_pack ("{s:s, s:s}", "cmd", "snapshot", "instance", opts.instance);
    if (opts.strategy)
        json_object_set_new (request, "strategy", json_string (opts.strategy));
    rc = snapfleet_call (app, request, &reply);
    json_decref (request);
    if (rc)
        return rc;
    json_t *job = json_incref (json_object_get (reply, "job"));
    json_decref (reply);
    if (opts.wait && (rc = s_wait (app, &job, opts.wait_ms))) {
        json_decref (job);
        return rc;
    }
    if (app->json)
        snapfleet_print_json (job);
    else
    if (opts.wait)
        s_print_job (job);
    else
        printf ("job %s %s: snapshot of '%s' on node '%s' (%s)\n", s_str (job, "job_id"),
                s_str (job, "state"), s_str (job, "instance"), s_str (job, "node"),
                s_str (job, "strategy"));
    rc = streq (s_str (job, "state"), "failed")? SF_CLI_FAILED: SF_CLI_OK;
    if (rc)
        fprintf (stderr, "snapfleet: job %s failed: %s\n", s_str (job, "job_id"),
                 s_str (json_object_get (job, "error"), "text"));
    json_decref (job);
    return rc;
}

//  --------------------------------------------------------------------------
//  The command table

#define FORMAT_HELP \
    "  --format FORMAT       'table' (default) or 'json'\n"
#define TIMEOUT_HELP \
    "  --timeout SECS        how long to wait for the scheduler's answer (default 5)\n"
#define HELP_HELP \
    "  -h, --help            show this help\n"

const snapfleet_cmd_t snapfleet_cmds [] = {
    { "nodes", "nodes", "list worker nodes: state, last message, instances, jobs",
      "List the worker nodes the scheduler knows: up or down, when each last sent\n"
      "a message, how many instances it reported and how many jobs it runs.\n\n"
      FORMAT_HELP TIMEOUT_HELP HELP_HELP, "fth", s_cmd_nodes },
    { "instances", "instances [--node N]",
      "list instances with their storage class and strategy",
      "List the instances in the nodes' inventories, with their state, storage\n"
      "class (file, rbd, mixed or none), the snapshot strategy each would get\n"
      "('-' if it cannot be snapshotted: no disks, or neither running, paused\n"
      "nor shut off), their disks and total virtual size.\n\n"
      "  --node N              only the instances of node N\n"
      FORMAT_HELP TIMEOUT_HELP HELP_HELP, "fthn", s_cmd_instances },
    { "snapshot",
      "snapshot --instance NAME|UUID [--strategy S] [--wait] [--timeout SECS]",
      "snapshot one instance",
      "Snapshot one instance. The scheduler picks the strategy from the instance's\n"
      "storage class and state, records a job and sends it to the instance's node.\n"
      "Prints the new job, or with --wait the finished job.\n\n"
      "  storage class   running or paused   shut off\n"
      "  file            file-cold           offline\n"
      "  rbd             rbd                 offline\n"
      "  mixed           mixed               offline\n\n"
      "file-cold pauses the guest, converts its disks and resumes it. rbd freezes\n"
      "the guest's filesystems (or pauses it if no guest agent answers) just long\n"
      "enough to take an RBD snapshot of every disk, then clones or exports them.\n"
      "mixed covers RBD and file disks in one freeze or pause. offline converts\n"
      "(or snapshots) the disks of a shut-off guest directly. rbd and mixed need a\n"
      "worker with Ceph configured ([storage.rbd] in worker.conf).\n\n"
      "  --instance NAME|UUID  the instance; a name found on several nodes is\n"
      "                        refused, give the uuid then\n"
      "  --strategy S          insist on strategy S (file-cold, rbd, mixed,\n"
      "                        offline): refused, with no job, if S does not fit\n"
      "                        the instance's storage class and state per the\n"
      "                        table above or its node's worker cannot run it\n"
      "  --wait                wait until the job is done or failed and print it;\n"
      "                        exit 1 if it failed\n"
      "  --timeout SECS        with --wait: give up after SECS seconds with exit 75\n"
      "                        (the job goes on); default: no limit. Each request\n"
      "                        to the scheduler waits as long as the global\n"
      "                        --timeout (before the command; default 5)\n"
      FORMAT_HELP HELP_HELP, "fthiws", s_cmd_snapshot },
    { "jobs", "jobs", "list all jobs",
      "List all jobs, oldest first: instance, node, state, phase, strategy, pause,\n"
      "size and error.\n\n"
      FORMAT_HELP TIMEOUT_HELP HELP_HELP, "fth", s_cmd_jobs },
    { "job", "job show ID", "show one job with its phase events and images",
      "Show one job: its state and phase, timings, size, error, the note a\n"
      "successful job may carry (e.g. why the guest was paused instead of frozen),\n"
      "the phase events the worker reported and the images it made.\n\n"
      FORMAT_HELP TIMEOUT_HELP HELP_HELP, "fth", s_cmd_job },
    { "images", "images", "list stored images",
      "List the images jobs have stored: id, instance, job, disk, size, creation\n"
      "time, store and path.\n\n"
      FORMAT_HELP TIMEOUT_HELP HELP_HELP, "fth", s_cmd_images },
    { NULL }
};
