/*  =========================================================================
    snapfleet_cancel - the CLI's cancel command: cancel JOB... | --bulk ID
    =========================================================================
*/
#include "snapfleet_cmds.h"

//  What happened to one job, in words

static const char *
s_outcome_text (json_t *answer)
{
    const char *outcome = snapfleet_str (answer, "outcome");
    if (streq (outcome, "cancelled"))
        return "cancelled now (it had not been sent to its node)";
    if (streq (outcome, "cancel_sent"))
        return "cancel sent: the worker stops it, resumes the guest and removes "
               "what it made; it ends cancelled";
    return snapfleet_str (json_object_get (answer, "error"), "text");
}

static int
s_cmd_cancel (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    snapfleet_opts_t opts;
    int rc;
    if (snapfleet_start (app, cmd, argc, argv, -1, &opts, &rc))
        return rc;
    sf_err_t err = SF_ERR_INIT;
    json_t *request = sf_cli_cancel_request ((const char **) argv + opts.first,
                                             (size_t) (argc - opts.first), opts.bulk, &err);
    if (!request)
        return snapfleet_usage_error (cmd, "%s", err.text);
    json_t *reply = NULL;
    rc = snapfleet_call (app, request, &reply);
    json_decref (request);
    if (rc)
        return rc;
    json_t *answers = json_object_get (reply, "cancel");
    size_t index;
    json_t *answer;
    json_array_foreach (answers, index, answer)
        if (streq (snapfleet_str (answer, "outcome"), "refused"))
            fprintf (stderr, "snapfleet: cannot cancel job '%s': %s\n",
                     snapfleet_str (answer, "job_id"), s_outcome_text (answer));
    if (app->json)
        snapfleet_print_payload (reply, "cancel");
    else {
        sf_table_t *table = sf_table_new ("JOB|NODE|OUTCOME");
        json_array_foreach (answers, index, answer) {
            sf_table_add (table, snapfleet_str (answer, "job_id"));
            sf_table_add (table, snapfleet_str (answer, "node"));
            sf_table_add (table, s_outcome_text (answer));
        }
        if (sf_table_rows (table))
            sf_table_print (table, stdout);
        else
            printf ("bulk %s has no unfinished job\n", opts.bulk);
        sf_table_destroy (&table);
    }
    rc = sf_cli_cancel_status (answers);
    json_decref (reply);
    return rc;
}

const snapfleet_cmd_t snapfleet_cmd_cancel = {
    "cancel", "cancel JOB... | cancel --bulk ID", "cancel jobs, or a bulk's unfinished jobs",
    "Cancel jobs. A job still queued (never sent to its node, or waiting to be\n"
    "retried) ends 'cancelled' at once. A running one is stopped by its worker:\n"
    "a conversion or upload in progress is stopped, the guest resumed, what the\n"
    "job made removed; it ends 'cancelled' when the worker has answered (the\n"
    "cancel is kept by the scheduler and sent again when a node that is away\n"
    "comes back). A job that has already ended is left as it is: an error\n"
    "names its state. With --bulk, every unfinished job of the bulk; the bulk\n"
    "is over once they have ended.\n"
    "Prints what happened to each job. Exit status: 0 every job cancelled or\n"
    "its cancel sent, 1 none, 3 some.\n\n"
    "  --bulk ID             the unfinished jobs of bulk ID\n"
    SNAPFLEET_HELP_FORMAT SNAPFLEET_HELP_TIMEOUT SNAPFLEET_HELP_HELP, "fthB", s_cmd_cancel
};
