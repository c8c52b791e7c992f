/*  =========================================================================
    snapfleet_node - the CLI's node commands: nodes
    =========================================================================
*/
#include "snapfleet_cmds.h"

#define s_str snapfleet_str
#define s_int snapfleet_int

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
    if (snapfleet_start (app, cmd, argc, argv, 0, &opts, &rc)
    ||  (rc = snapfleet_request (app, "nodes", NULL, NULL, &reply)))
        return rc;
    if (app->json)
        snapfleet_print_payload (reply, "nodes");
    else
        s_print_nodes (json_object_get (reply, "nodes"));
    json_decref (reply);
    return SF_CLI_OK;
}

const snapfleet_cmd_t snapfleet_cmd_nodes = {
    "nodes", "nodes", "list worker nodes: state, last message, instances, jobs",
    "List the worker nodes the scheduler knows: up or down, when each last sent\n"
    "a message, how many instances it reported and how many jobs it runs.\n\n"
    SNAPFLEET_HELP_FORMAT SNAPFLEET_HELP_TIMEOUT SNAPFLEET_HELP_HELP, "fth", s_cmd_nodes
};
