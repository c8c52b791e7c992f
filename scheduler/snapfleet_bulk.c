/*  =========================================================================
    snapfleet_bulk - the CLI's bulk commands: snapshot of several instances
    (with --wait: a progress bar or JSON event lines), bulk show, bulks and
    plan

    The requests, the progress bar and the events come from sf_cli (pure
    functions, tested there); this file prints.
    =========================================================================
*/
#include "snapfleet.h"

#include <sys/ioctl.h>

//  Polling interval of snapshot --wait for a bulk
#define BULK_POLL_MS 300

#define s_str snapfleet_str
#define s_int snapfleet_int

//  "12 done, 1 failed, 0 skipped, 3 running, 24 queued"

static void
s_print_counts (json_t *bulk, FILE *out)
{
    fprintf (out, "%" PRId64 " done, %" PRId64 " failed, %" PRId64 " skipped, %" PRId64
             " running, %" PRId64 " queued", s_int (bulk, "done"), s_int (bulk, "failed"),
             s_int (bulk, "skipped"), s_int (bulk, "running"), s_int (bulk, "queued"));
}

//  The failed and skipped jobs with their reasons; all jobs with all_jobs

static void
s_print_bulk_jobs (json_t *bulk, bool all_jobs)
{
    sf_table_t *table = all_jobs
        ? sf_table_new ("JOB|INSTANCE|NODE|STATE|PHASE|STRATEGY|>SIZE|ERROR")
        : sf_table_new ("JOB|INSTANCE|NODE|STATE|ERROR");
    json_t *jobs = json_object_get (bulk, all_jobs? "jobs": "failures");
    size_t index;
    json_t *job;
    json_array_foreach (jobs, index, job) {
        json_t *error = json_object_get (job, "error");
        char size [32];
        sf_table_add (table, s_str (job, "job_id"));
        sf_table_add (table, s_str (job, "instance"));
        sf_table_add (table, s_str (job, "node"));
        sf_table_add (table, s_str (job, "state"));
        if (all_jobs) {
            sf_table_add (table, s_str (job, "phase"));
            sf_table_add (table, s_str (job, "strategy"));
            sf_table_add (table, snapfleet_size (job, "bytes", size, sizeof (size)));
        }
        if (json_is_object (error))
            sf_table_addf (table, "%s: %s", sf_err_name ((int) s_int (error, "code")),
                           s_str (error, "text"));
        else
            sf_table_add (table, json_string_value (error));
    }
    if (sf_table_rows (table)) {
        printf ("\n");
        sf_table_print (table, stdout);
    }
    sf_table_destroy (&table);
}

static void
s_print_bulk (json_t *bulk, bool all_jobs)
{
    char buf [4][32];
    printf ("bulk         %s\n", s_str (bulk, "bulk_id"));
    printf ("state        %s\n", s_str (bulk, "state"));
    printf ("schedule     %s\n", *s_str (bulk, "schedule")? s_str (bulk, "schedule"): "-");
    printf ("created      %s\n", snapfleet_when (bulk, "created", buf [0], sizeof (buf [0])));
    printf ("priority     %" PRId64 "\n", s_int (bulk, "priority"));
    printf ("deadline     %s\n", snapfleet_when (bulk, "deadline", buf [0], sizeof (buf [0])));
    printf ("window end   %s\n", snapfleet_when (bulk, "window_end", buf [0],
                                                 sizeof (buf [0])));
    printf ("jobs         %" PRId64 ": ", s_int (bulk, "total"));
    s_print_counts (bulk, stdout);
    printf ("\nsize         %s of about %s\n",
            snapfleet_size (bulk, "bytes", buf [0], sizeof (buf [0])),
            snapfleet_size (bulk, "bytes_total", buf [1], sizeof (buf [1])));
    printf ("throughput   %s/s\n",
            snapfleet_size (bulk, "throughput_bps", buf [0], sizeof (buf [0])));
    printf ("eta          %s\n", snapfleet_ms (bulk, "eta_ms", buf [0], sizeof (buf [0])));
    printf ("started      %s\n", snapfleet_when (bulk, "started", buf [0], sizeof (buf [0])));
    printf ("finished     %s\n", snapfleet_when (bulk, "finished", buf [0], sizeof (buf [0])));
    s_print_bulk_jobs (bulk, all_jobs);
}

//  --------------------------------------------------------------------------
//  snapshot of several instances

typedef struct {
    bool tty;                   //  Draw the bar, else JSON lines
    int width;                  //  Terminal columns, 0 if unknown
} render_t;

static void
s_render (json_t *bulk, json_t *events, void *arg)
{
    render_t *render = (render_t *) arg;
    sf_cli_bulk_render (bulk, events, render->tty, render->width, stdout);
}

//  "bulk B3 done: 38 of 40 done, 1 failed, 1 skipped; 3.2 GiB in 4m 10s
//  (41.0 MiB/s)", then the failures

static void
s_print_summary (json_t *bulk)
{
    char bytes [32], rate [32], took [32] = "";
    json_t *started = json_object_get (bulk, "started");
    json_t *finished = json_object_get (bulk, "finished");
    if (json_is_integer (started) && json_is_integer (finished)) {
        strcpy (took, " in ");
        sf_table_duration (json_integer_value (finished) - json_integer_value (started),
                           took + 4, sizeof (took) - 4);
    }
    printf ("bulk %s %s: %" PRId64 " of %" PRId64 " done, %" PRId64 " failed, %" PRId64
            " skipped; %s%s (%s/s)\n", s_str (bulk, "bulk_id"), s_str (bulk, "state"),
            s_int (bulk, "done"), s_int (bulk, "total"), s_int (bulk, "failed"),
            s_int (bulk, "skipped"), snapfleet_size (bulk, "bytes", bytes, sizeof (bytes)),
            took, snapfleet_size (bulk, "throughput_bps", rate, sizeof (rate)));
    s_print_bulk_jobs (bulk, false);
}

//  Exit status of a bulk: 1 if any job failed or was skipped

static int
s_bulk_status (json_t *bulk)
{
    int64_t bad = s_int (bulk, "failed") + s_int (bulk, "skipped");
    if (bad)
        fprintf (stderr, "snapfleet: bulk %s: %" PRId64 " of %" PRId64 " jobs failed or were "
                 "skipped\n", s_str (bulk, "bulk_id"), bad, s_int (bulk, "total"));
    return bad? SF_CLI_FAILED: SF_CLI_OK;
}

int
snapfleet_snapshot_bulk (snapfleet_t *app, const snapfleet_cmd_t *cmd,
                         const snapfleet_opts_t *opts)
{
    json_t *request = snapfleet_select_request (cmd, "bulk_create", opts);
    if (!request)
        return SF_CLI_USAGE;
    json_t *reply = NULL;
    int rc = snapfleet_call (app, request, &reply);
    json_decref (request);
    if (rc)
        return rc;
    json_t *bulk = json_incref (json_object_get (reply, "bulk"));
    json_decref (reply);
    if (!json_is_object (bulk)) {
        fprintf (stderr, "snapfleet: invalid bulk_create reply from scheduler\n");
        json_decref (bulk);
        return SF_CLI_FAILED;
    }
    if (!opts->wait) {
        if (app->json)
            snapfleet_print_json (bulk);
        else
            s_print_bulk (bulk, false);
        rc = s_bulk_status (bulk);
        json_decref (bulk);
        return rc;
    }
    render_t render = { .tty = !app->json && isatty (STDOUT_FILENO) };
    struct winsize size;
    if (render.tty && ioctl (STDOUT_FILENO, TIOCGWINSZ, &size) == 0)
        render.width = size.ws_col;
    sf_err_t err = SF_ERR_INIT;
    rc = sf_cli_bulk_wait (app->cli, &bulk, BULK_POLL_MS, opts->wait_ms, s_render, &render,
                           &err);
    if (render.tty)
        printf ("\n");
    if (rc == SF_CLI_OK) {
        if (render.tty)
            s_print_summary (bulk);
        rc = s_bulk_status (bulk);
    }
    else
        fprintf (stderr, "snapfleet: %s\n", err.text);
    json_decref (bulk);
    return rc;
}

//  --------------------------------------------------------------------------
//  bulk show, bulks

int
snapfleet_cmd_bulk (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    snapfleet_opts_t opts;
    json_t *reply = NULL;
    int rc;
    if (snapfleet_start (app, cmd, argc, argv, -1, &opts, &rc))
        return rc;
    int count = argc - opts.first;
    if (count == 0 || !streq (argv [opts.first], "show"))
        return snapfleet_usage_error (cmd, "'bulk' needs a subcommand: show");
    if (count != 2)
        return snapfleet_usage_error (cmd, "'bulk show' takes one bulk id");
    if ((rc = snapfleet_request (app, "bulk_show", "bulk_id", argv [opts.first + 1], &reply)))
        return rc;
    json_t *bulk = json_object_get (reply, "bulk");
    if (app->json)
        snapfleet_print_json (bulk);
    else
        s_print_bulk (bulk, opts.jobs);
    json_decref (reply);
    return SF_CLI_OK;
}

int
snapfleet_cmd_bulks (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    snapfleet_opts_t opts;
    json_t *reply = NULL;
    int rc;
    if (snapfleet_start (app, cmd, argc, argv, 0, &opts, &rc)
    ||  (rc = snapfleet_request (app, "bulks", NULL, NULL, &reply)))
        return rc;
    if (app->json) {
        json_t *payload = json_pack ("{s:O}", "bulks", json_object_get (reply, "bulks"));
        snapfleet_print_json (payload);
        json_decref (payload);
        json_decref (reply);
        return SF_CLI_OK;
    }
    sf_table_t *table = sf_table_new (
        "BULK|STATE|SCHEDULE|CREATED|>JOBS|>DONE|>FAILED|>SKIPPED|>RUNNING|>QUEUED|>SIZE");
    size_t index;
    json_t *bulk;
    json_array_foreach (json_object_get (reply, "bulks"), index, bulk) {
        char when [32], size [32];
        sf_table_add (table, s_str (bulk, "bulk_id"));
        sf_table_add (table, s_str (bulk, "state"));
        sf_table_add (table, s_str (bulk, "schedule"));
        sf_table_add (table, snapfleet_when (bulk, "created", when, sizeof (when)));
        sf_table_addf (table, "%" PRId64, s_int (bulk, "total"));
        sf_table_addf (table, "%" PRId64, s_int (bulk, "done"));
        sf_table_addf (table, "%" PRId64, s_int (bulk, "failed"));
        sf_table_addf (table, "%" PRId64, s_int (bulk, "skipped"));
        sf_table_addf (table, "%" PRId64, s_int (bulk, "running"));
        sf_table_addf (table, "%" PRId64, s_int (bulk, "queued"));
        sf_table_add (table, snapfleet_size (bulk, "bytes", size, sizeof (size)));
    }
    sf_table_print (table, stdout);
    sf_table_destroy (&table);
    json_decref (reply);
    return SF_CLI_OK;
}

//  --------------------------------------------------------------------------
//  plan

static void
s_print_plan (json_t *plan, bool all_jobs)
{
    char makespan [32], bound [32];
    printf ("plan: %" PRId64 " jobs, makespan %s (lower bound %s), %" PRId64 " late, %"
            PRId64 " skipped\n", s_int (plan, "total"),
            snapfleet_ms (plan, "makespan_ms", makespan, sizeof (makespan)),
            snapfleet_ms (plan, "lower_bound_ms", bound, sizeof (bound)),
            s_int (plan, "late"), s_int (plan, "skipped"));
    sf_table_t *table = sf_table_new ("INSTANCE|NODE|STRATEGY|>START|>END|VERDICT|REASON");
    size_t index;
    json_t *job;
    json_array_foreach (json_object_get (plan, "jobs"), index, job) {
        bool late = json_is_true (json_object_get (job, "late"));
        bool skipped = json_is_true (json_object_get (job, "skipped"));
        if (!all_jobs && !late && !skipped)
            continue;
        char start [32], end [32];
        sf_table_add (table, s_str (job, "instance"));
        sf_table_add (table, s_str (job, "node"));
        sf_table_add (table, s_str (job, "strategy"));
        if (skipped) {          //  Never starts
            sf_table_add (table, NULL);
            sf_table_add (table, NULL);
        }
        else {
            sf_table_addf (table, "+%s", snapfleet_ms (job, "start_ms", start, sizeof (start)));
            sf_table_addf (table, "+%s", snapfleet_ms (job, "end_ms", end, sizeof (end)));
        }
        sf_table_add (table, skipped? "skipped": late? "late": "on time");
        sf_table_add (table, s_str (job, "reason"));
    }
    if (sf_table_rows (table)) {
        printf ("\n");
        sf_table_print (table, stdout);
    }
    else
    if (json_array_size (json_object_get (plan, "jobs")))
        printf ("every job ends in time\n");
    sf_table_destroy (&table);
}

int
snapfleet_cmd_plan (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    snapfleet_opts_t opts;
    json_t *reply = NULL;
    int rc;
    if (snapfleet_start (app, cmd, argc, argv, 0, &opts, &rc))
        return rc;
    json_t *request = snapfleet_select_request (cmd, "plan", &opts);
    if (!request)
        return SF_CLI_USAGE;
    rc = snapfleet_call (app, request, &reply);
    json_decref (request);
    if (rc)
        return rc;
    json_t *plan = json_object_get (reply, "plan");
    if (app->json)
        snapfleet_print_json (plan);
    else
        s_print_plan (plan, opts.jobs);
    json_decref (reply);
    return SF_CLI_OK;
}
