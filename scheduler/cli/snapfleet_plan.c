/*  =========================================================================
    snapfleet_plan - the CLI's plan command: a bulk's dry run
    =========================================================================
*/
#include "snapfleet_cmds.h"

#define s_str snapfleet_str
#define s_int snapfleet_int

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
    //  Notes on the estimates, once per node (e.g. the RBD monitor's wait)
    zhashx_t *noted = zhashx_new ();
    json_array_foreach (json_object_get (plan, "jobs"), index, job) {
        const char *note = json_string_value (json_object_get (job, "note"));
        const char *node = s_str (job, "node");
        if (note && *note && node && !zhashx_lookup (noted, node)) {
            zhashx_insert (noted, node, (void *) node);
            printf ("note: node %s: %s\n", node, note);
        }
    }
    zhashx_destroy (&noted);
}

static int
s_cmd_plan (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
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

const snapfleet_cmd_t snapfleet_cmd_plan = {
    "plan",
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
    "(late) or would overrun the window (skipped), with the reasons, and notes\n"
    "on the estimates (a node whose RBD snapshots wait for the Ceph monitor).\n"
    "Exit 0.\n"
    "Selectors and options as for 'snapshot'.\n\n"
    "  --jobs                list every planned job, not only late and skipped\n"
    "                        ones\n"
    SNAPFLEET_HELP_FORMAT SNAPFLEET_HELP_TIMEOUT SNAPFLEET_HELP_HELP, "fthinsagpdWj",
    s_cmd_plan
};
