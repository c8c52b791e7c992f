/*  =========================================================================
    snapfleet_bulk - the CLI's bulk commands: bulk show, bulks (a bulk is
    made by snapshot, planned by plan)
    =========================================================================
*/
#include "snapfleet_cmds.h"
#include "snapfleet_view.h"

#define s_str snapfleet_str
#define s_int snapfleet_int

static int
s_cmd_bulk (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
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
        snapfleet_print_bulk (bulk, opts.jobs);
    json_decref (reply);
    return SF_CLI_OK;
}

static int
s_cmd_bulks (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    snapfleet_opts_t opts;
    json_t *reply = NULL;
    int rc;
    if (snapfleet_start (app, cmd, argc, argv, 0, &opts, &rc)
    ||  (rc = snapfleet_request (app, "bulks", NULL, NULL, &reply)))
        return rc;
    if (app->json) {
        snapfleet_print_payload (reply, "bulks");
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

const snapfleet_cmd_t snapfleet_cmd_bulk = {
    "bulk", "bulk show ID [--jobs]", "show one bulk: progress, then failures with reasons",
    "Show one bulk: state, schedule, priority, deadline and window end, job counts\n"
    "(done, failed, skipped, running, queued), bytes stored and the estimated\n"
    "total, throughput, ETA, then the jobs that failed or were skipped with their\n"
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
