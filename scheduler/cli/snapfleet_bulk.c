/*  =========================================================================
    snapfleet_bulk - the CLI's bulk commands: bulk show, bulks (a bulk is
    made by snapshot, planned by plan)
    =========================================================================
*/
#include "snapfleet_cmds.h"
#include "snapfleet_view.h"

static int
s_cmd_bulk (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    snapfleet_opts_t opts;
    json_t *reply = NULL;
    int rc;
    if (snapfleet_start (app, cmd, argc, argv, -1, &opts, &rc)
    ||  (rc = snapfleet_show (app, cmd, argc, argv, &opts, &reply)))
        return rc;
    json_t *bulk = json_object_get (reply, "bulk");
    if (app->json)
        snapfleet_print_json (bulk);
    else
        snapfleet_print_bulk (bulk, opts.jobs);
    json_decref (reply);
    return SF_CLI_OK;
}

static const snapfleet_column_t s_columns [] = {
    { "BULK", "bulk_id", snapfleet_cell_str },
    { "STATE", "state", snapfleet_cell_str },
    { "SCHEDULE", "schedule", snapfleet_cell_str },
    { "CREATED", "created", snapfleet_cell_when },
    { ">JOBS", "total", snapfleet_cell_int },
    { ">DONE", "done", snapfleet_cell_int },
    { ">FAILED", "failed", snapfleet_cell_int },
    { ">SKIPPED", "skipped", snapfleet_cell_int },
    { ">CANCELLED", "cancelled", snapfleet_cell_int },
    { ">RUNNING", "running", snapfleet_cell_int },
    { ">QUEUED", "queued", snapfleet_cell_int },
    { ">SIZE", "bytes", snapfleet_cell_size },
    { NULL }
};

static int
s_cmd_bulks (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    snapfleet_opts_t opts;
    int rc;
    if (snapfleet_start (app, cmd, argc, argv, 0, &opts, &rc))
        return rc;
    return snapfleet_list (app, "bulks", NULL, NULL, "bulks", s_columns);
}

const snapfleet_cmd_t snapfleet_cmd_bulk = {
    "bulk", "bulk show ID [--jobs]", "show one bulk: progress, then failures with reasons",
    "Show one bulk: state, schedule, priority, deadline and window end, job counts\n"
    "(done, failed, skipped, cancelled, running, queued), bytes stored and the estimated\n"
    "total, throughput, ETA, then the jobs that failed, were skipped or cancelled with their\n"
    "reasons. JSON: the bulk with every job.\n\n"
    "  --jobs                list every job of the bulk, not only the failures\n"
    SNAPFLEET_HELP_FORMAT SNAPFLEET_HELP_TIMEOUT SNAPFLEET_HELP_HELP, "fthj", s_cmd_bulk
};

const snapfleet_cmd_t snapfleet_cmd_bulks = {
    "bulks", "bulks", "list bulks with their progress",
    "List the bulks (the most recent ones, as the scheduler keeps them): state,\n"
    "the schedule that made each (if any), creation time, job counts and bytes\n"
    "stored.\n\n"
    SNAPFLEET_HELP_FORMAT SNAPFLEET_HELP_TIMEOUT SNAPFLEET_HELP_HELP, "fth", s_cmd_bulks
};
