/*  =========================================================================
    snapfleet_status - the CLI's status command: the scheduler's counters
    =========================================================================
*/
#include "snapfleet_cmds.h"

static int
s_cmd_status (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    snapfleet_opts_t opts;
    int rc;
    if (snapfleet_start (app, cmd, argc, argv, 0, &opts, &rc))
        return rc;
    json_t *reply = NULL;
    rc = snapfleet_request (app, "status", NULL, NULL, &reply);
    json_t *status = json_object_get (reply, "status");
    if (rc == SF_CLI_OK && app->json)
        snapfleet_print_json (status);
    else
    if (rc == SF_CLI_OK) {
        const char *key;
        json_t *value;
        json_object_foreach (status, key, value) {
            char *text = json_is_string (value)? strdup (json_string_value (value))
                                               : json_dumps (value, JSON_ENCODE_ANY);
            printf ("%-18s %s\n", key, text);
            free (text);
        }
    }
    json_decref (reply);
    return rc;
}

const snapfleet_cmd_t snapfleet_cmd_status = {
    "status", "status", "the scheduler's version, nodes up and counters",
    "Show the scheduler's version, how many nodes are up, whether its sockets\n"
    "use CURVE, and what it refused or dropped: unenrolled (connections refused:\n"
    "key not enrolled, no CURVE, or another scheduler key pinned),\n"
    "worker_misnamed (hellos for another key's node),\n"
    "worker_invalid, worker_unknown, worker_unexpected, worker_fenced,\n"
    "admin_invalid; and admin_requests answered.\n\n"
    SNAPFLEET_HELP_FORMAT SNAPFLEET_HELP_TIMEOUT SNAPFLEET_HELP_HELP, "fth", s_cmd_status
};
