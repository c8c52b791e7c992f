/*  =========================================================================
    snapfleet_job - the CLI's job commands: jobs, job show
    =========================================================================
*/
#include "snapfleet_cmds.h"
#include "snapfleet_view.h"

#define s_str snapfleet_str

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
        sf_table_add (table, snapfleet_duration (job, "pause_ms", pause, sizeof (pause)));
        sf_table_add (table, snapfleet_size (job, "bytes", size, sizeof (size)));
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
    if (snapfleet_start (app, cmd, argc, argv, 0, &opts, &rc)
    ||  (rc = snapfleet_request (app, "jobs", NULL, NULL, &reply)))
        return rc;
    if (app->json)
        snapfleet_print_payload (reply, "jobs");
    else
        s_print_jobs (json_object_get (reply, "jobs"));
    json_decref (reply);
    return SF_CLI_OK;
}

static int
s_cmd_job (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    snapfleet_opts_t opts;
    json_t *reply = NULL;
    int rc;
    if (snapfleet_start (app, cmd, argc, argv, -1, &opts, &rc))
        return rc;
    int count = argc - opts.first;
    if (count == 0 || !streq (argv [opts.first], "show"))
        return snapfleet_usage_error (cmd, "'job' needs a subcommand: show");
    if (count != 2)
        return snapfleet_usage_error (cmd, "'job show' takes one job id");
    if ((rc = snapfleet_request (app, "job_show", "job_id", argv [opts.first + 1], &reply)))
        return rc;
    json_t *job = json_object_get (reply, "job");
    if (app->json)
        snapfleet_print_json (job);
    else
        snapfleet_print_job (job);
    json_decref (reply);
    return SF_CLI_OK;
}

const snapfleet_cmd_t snapfleet_cmd_jobs = {
    "jobs", "jobs", "list all jobs",
    "List all jobs, oldest first: instance, node, state, phase, strategy, pause,\n"
    "size and error.\n\n"
    SNAPFLEET_HELP_FORMAT SNAPFLEET_HELP_TIMEOUT SNAPFLEET_HELP_HELP, "fth", s_cmd_jobs
};

const snapfleet_cmd_t snapfleet_cmd_job = {
    "job", "job show ID", "show one job with its phase events and images",
    "Show one job: its state and phase, timings, size, error, the note a\n"
    "successful job may carry (e.g. why the guest was paused instead of frozen),\n"
    "the phase events the worker reported and the images it made.\n\n"
    SNAPFLEET_HELP_FORMAT SNAPFLEET_HELP_TIMEOUT SNAPFLEET_HELP_HELP, "fth", s_cmd_job
};
