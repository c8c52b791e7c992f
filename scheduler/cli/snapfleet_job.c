/*  =========================================================================
    snapfleet_job - the CLI's job commands: jobs, job show
    =========================================================================
*/
#include "snapfleet_cmds.h"
#include "snapfleet_view.h"

//  The error's text

static void
s_cell_error (sf_table_t *table, json_t *job, const char *key)
{
    sf_table_add (table, snapfleet_str (json_object_get (job, key), "text"));
}

static const snapfleet_column_t s_columns [] = {
    { "JOB", "job_id", snapfleet_cell_str },
    { "INSTANCE", "instance", snapfleet_cell_str },
    { "NODE", "node", snapfleet_cell_str },
    { "STATE", "state", snapfleet_cell_str },
    { "PHASE", "phase", snapfleet_cell_str },
    { "STRATEGY", "strategy", snapfleet_cell_str },
    { ">PAUSE", "pause_ms", snapfleet_cell_duration },
    { ">SIZE", "bytes", snapfleet_cell_size },
    { "UPDATED", "updated", snapfleet_cell_str },
    { "ERROR", "error", s_cell_error },
    { NULL }
};

static int
s_cmd_jobs (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    snapfleet_opts_t opts;
    int rc;
    if (snapfleet_start (app, cmd, argc, argv, 0, &opts, &rc))
        return rc;
    return snapfleet_list_page (app, "jobs", NULL, NULL, "jobs", s_columns, &opts);
}

static int
s_cmd_job (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    snapfleet_opts_t opts;
    json_t *reply = NULL;
    int rc;
    if (snapfleet_start (app, cmd, argc, argv, -1, &opts, &rc)
    ||  (rc = snapfleet_show (app, cmd, argc, argv, &opts, &reply)))
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
    "jobs", "jobs [--limit N] [--after CURSOR]", "list all jobs",
    "List all jobs, oldest first: instance, node, state, phase, strategy, pause,\n"
    "size and error. A page at a time: see --limit and --after.\n\n"
    SNAPFLEET_HELP_PAGE
    SNAPFLEET_HELP_FORMAT SNAPFLEET_HELP_TIMEOUT SNAPFLEET_HELP_HELP, "fthlA", s_cmd_jobs
};

const snapfleet_cmd_t snapfleet_cmd_job = {
    "job", "job show ID", "show one job with its phase events and images",
    "Show one job: its state and phase, timings, size, error, the note a\n"
    "successful job may carry (e.g. why the guest was paused instead of frozen),\n"
    "the phase events the worker reported, every attempt with its error when it\n"
    "was retried (--format json: 'attempts'), and the images it made.\n\n"
    SNAPFLEET_HELP_FORMAT SNAPFLEET_HELP_TIMEOUT SNAPFLEET_HELP_HELP, "fth", s_cmd_job
};
