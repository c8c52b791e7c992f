/*  =========================================================================
    snapfleet_cmds - the CLI's commands: option parsing, the request each
    one sends, and its table and JSON output

    JSON output is the scheduler's reply payload as is (one document, byte
    sizes as integers); tables are for people (aligned, sizes and durations
    human-readable).
    =========================================================================
*/
#include "snapfleet.h"

//  Polling interval of snapshot --wait for one job
#define WAIT_POLL_MS 150

#define s_str snapfleet_str
#define s_int snapfleet_int
#define s_size snapfleet_size

static const char *
s_ms (json_t *object, const char *key, char *buf, size_t size)
{
    return sf_table_duration (s_int (object, key), buf, size);
}

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
                if (snapfleet_parse_format (app, optarg))
                    return SF_CLI_USAGE;
                break;
            case 't':
                if (snapfleet_parse_seconds ("--timeout", optarg, streq (cmd->name, "snapshot")
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

#define s_start snapfleet_start
#define s_request snapfleet_request

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
    snapfleet_opts_t opts;
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
    snapfleet_opts_t opts;
    json_t *reply = NULL;
    int rc;
    if (s_start (app, cmd, argc, argv, 0, &opts, &rc)
    ||  (rc = s_request (app, "instances", "node", opts.select.node, &reply)))
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
    snapfleet_opts_t opts;
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
    snapfleet_opts_t opts;
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
    snapfleet_opts_t opts;
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
    snapfleet_opts_t opts;
    json_t *reply = NULL;
    int rc;
    if (s_start (app, cmd, argc, argv, 0, &opts, &rc))
        return rc;
    //  One instance and nothing only a bulk has: one job, as always
    const sf_cli_args_t *select = &opts.select;
    if (select->instance_count != 1 || select->node || select->all || select->tag
    ||  select->priority || select->deadline || select->window)
        return snapfleet_snapshot_bulk (app, cmd, &opts);
    json_t *request = json_pack ("{s:s, s:s}", "cmd", "snapshot", "instance",
                                 select->instances [0]);
    if (select->strategy)
        json_object_set_new (request, "strategy", json_string (select->strategy));
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
      "snapshot (--instance NAME|UUID ... | --node N | --all | --tag KEY=VALUE)\n"
      "      [--strategy S] [--priority P] [--deadline TIME]\n"
      "      [--window DURATION] [--wait] [--timeout SECS]",
      "snapshot one instance, or many as a bulk",
      "Snapshot one instance, or a set of instances as one bulk. The scheduler picks\n"
      "each instance's strategy from its storage class and state, records a job and\n"
      "sends it to the instance's node when the fleet's limits allow.\n\n"
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
      "One --instance (and no --priority, --deadline or --window) makes one job:\n"
      "prints the new job, or with --wait the finished job. Anything else makes a\n"
      "bulk: one job per selected instance, ordered by priority, then deadline.\n"
      "An instance that cannot be snapshotted (node down, busy, no strategy) gets\n"
      "a job that fails at once with the reason. Prints the bulk; exit 1 if a job\n"
      "failed at once. With --wait, on a terminal: a progress bar redrawn in place\n"
      "  [#####...............] 12/40 done, 1 failed, 0 skipped  3.2 GiB  41.0 MiB/s  ETA 1m20s\n"
      "then a summary line and the failures; off a terminal, or with --format json:\n"
      "one JSON object per line: {\"event\":\"progress\",...} when a count changes,\n"
      "{\"event\":\"job\",...} when a job ends, {\"event\":\"done\",\"bulk\":{...}} at\n"
      "the end. Exit 0 if every job is done, 1 if any failed or was skipped.\n\n"
      "Selectors (one kind):\n"
      "  --instance NAME|UUID  the instance; repeat for several; a name found on\n"
      "                        several nodes is refused, give the uuid then\n"
      "  --node N              every instance of node N\n"
      "  --all                 every instance the scheduler knows\n"
      "  --tag KEY=VALUE       every instance with that tag (<sf:tag> in the domain\n"
      "                        metadata)\n"
      "Options:\n"
      "  --strategy S          insist on strategy S (file-cold, rbd, mixed,\n"
      "                        offline): refused, with no job, if S does not fit\n"
      "                        the instance's storage class and state per the\n"
      "                        table above or its node's worker cannot run it\n"
      "  --priority P          bulk priority, an integer; higher goes first\n"
      "                        (default 0)\n"
      "  --deadline TIME       when the bulk should be over; jobs predicted to\n"
      "                        end later are reported late. TIME: +30m, +2h (from\n"
      "                        now), 2026-11-25T22:00[:SS] (local time; UTC with a\n"
      "                        trailing Z), 22:00 (today, or tomorrow if past) or\n"
      "                        epoch seconds\n"
      "  --window DURATION     the jobs must end within DURATION from now (90m,\n"
      "                        2h); a job whose estimate overruns it does not\n"
      "                        start and is recorded as skipped with the reason\n"
      "  --wait                wait until the job or every job of the bulk ended\n"
      "                        and print it; exit 1 if any failed or was skipped\n"
      "  --timeout SECS        with --wait: give up after SECS seconds (or a\n"
      "                        duration: 90s, 2h) with exit 75 (the jobs go on);\n"
      "                        default: no limit. Each request to the scheduler\n"
      "                        waits as long as the global --timeout (before the\n"
      "                        command; default 5)\n"
      FORMAT_HELP HELP_HELP, "fthinwsagpdW", s_cmd_snapshot },
    { "bulk", "bulk show ID [--jobs]", "show one bulk: progress, then failures with reasons",
      "Show one bulk: state, schedule, priority, deadline and window end, job counts\n"
      "(done, failed, skipped, running, queued), bytes stored and the estimated\n"
      "total, throughput, ETA, then the jobs that failed or were skipped with their\n"
      "reasons. JSON: the bulk with every job.\n\n"
      "  --jobs                list every job of the bulk, not only the failures\n"
      FORMAT_HELP TIMEOUT_HELP HELP_HELP, "fthj", snapfleet_cmd_bulk },
    { "bulks", "bulks", "list bulks with their progress",
      "List the bulks (the most recent ones, as the scheduler keeps them): state,\n"
      "the schedule that made each (if any), creation time, job counts and bytes\n"
      "stored.\n\n"
      FORMAT_HELP TIMEOUT_HELP HELP_HELP, "fth", snapfleet_cmd_bulks },
    { "plan",
      "plan (--instance NAME|UUID ... | --node N | --all | --tag KEY=VALUE)\n"
      "      [--strategy S] [--priority P] [--deadline TIME]\n"
      "      [--window DURATION] [--jobs]",
      "dry run of a bulk: predicted makespan, late and skipped jobs",
      "Plan a bulk without starting anything: the scheduler simulates it under the\n"
      "fleet's limits (pause and upload slots, bandwidth, scratch space), with job\n"
      "durations estimated from disk sizes, strategies and the throughput measured\n"
      "on earlier jobs. Prints the predicted makespan, its lower bound (the\n"
      "largest of total upload bytes / bandwidth, total pause time / max_paused,\n"
      "and each node's own bound), and the jobs that would end after the deadline\n"
      "(late) or would overrun the window (skipped), with the reasons. Exit 0.\n"
      "Selectors and options as for 'snapshot'.\n\n"
      "  --jobs                list every planned job, not only late and skipped\n"
      "                        ones\n"
      FORMAT_HELP TIMEOUT_HELP HELP_HELP, "fthinsagpdWj", snapfleet_cmd_plan },
    { "schedule",
      "schedule (add NAME --calendar EXPR SELECTOR [OPTIONS] | list | rm NAME)",
      "add, list or remove scheduled bulk snapshots",
      "Schedules make a bulk of the selected instances at each time the calendar\n"
      "expression names, then prune their images by the keep-* rules.\n\n"
      "  schedule add NAME --calendar EXPR SELECTOR [--strategy S] [--priority P]\n"
      "      [--window DURATION] [--keep-last N] [--keep-daily N] [--keep-weekly N]\n"
      "      [--keep-monthly N]\n"
      "                        add a schedule (NAME: letters, digits, . _ : -)\n"
      "  schedule list         list schedules with their next and last runs\n"
      "  schedule rm NAME      remove a schedule (its images stay)\n\n"
      "  --calendar EXPR       when to run, in systemd's OnCalendar syntax (see\n"
      "                        systemd.time(7)): 'daily', 'Mon..Fri 22:00',\n"
      "                        '*-*-* 02:30:00', 'Sat *-*-1..7 03:00'. A run\n"
      "                        missed while the scheduler was down is made up\n"
      "                        once when it starts again\n"
      "  SELECTOR              the instances, as for 'snapshot': --instance\n"
      "                        NAME|UUID (repeatable), --node N, --all or\n"
      "                        --tag KEY=VALUE\n"
      "  --strategy S, --priority P   as for 'snapshot'\n"
      "  --window DURATION     each run's jobs must end within DURATION of its\n"
      "                        start; jobs that would overrun are skipped\n"
      "  --keep-last N         keep the images of the last N successful runs\n"
      "  --keep-daily N        ... the last run of each of the last N days\n"
      "  --keep-weekly N       ... the last run of each of the last N weeks\n"
      "  --keep-monthly N      ... the last run of each of the last N months\n"
      "                        (an image any rule keeps stays; no keep-* option:\n"
      "                        nothing is pruned)\n"
      FORMAT_HELP TIMEOUT_HELP HELP_HELP, "fthinsagpWcLDKM", snapfleet_cmd_schedule },
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
