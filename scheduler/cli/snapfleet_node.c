/*  =========================================================================
    snapfleet_node - the CLI's node commands: nodes
    =========================================================================
*/
#include "snapfleet_cmds.h"

static const snapfleet_column_t s_columns [] = {
    { "NAME", "name", snapfleet_cell_str },
    { "STATE", "state", snapfleet_cell_str },
    { "LAST SEEN", "last_seen", snapfleet_cell_str },
    { ">INSTANCES", "instances", snapfleet_cell_int },
    { ">RUNNING", "running_jobs", snapfleet_cell_int },
    { NULL }
};

static int
s_cmd_nodes (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    snapfleet_opts_t opts;
    int rc;
    if (snapfleet_start (app, cmd, argc, argv, 0, &opts, &rc))
        return rc;
    return snapfleet_list (app, "nodes", NULL, NULL, "nodes", s_columns);
}

const snapfleet_cmd_t snapfleet_cmd_nodes = {
    "nodes", "nodes", "list worker nodes: state, last message, instances, jobs",
    "List the worker nodes the scheduler knows: up or down, when each last sent\n"
    "a message, how many instances it reported and how many jobs it runs.\n\n"
    SNAPFLEET_HELP_FORMAT SNAPFLEET_HELP_TIMEOUT SNAPFLEET_HELP_HELP, "fth", s_cmd_nodes
};
