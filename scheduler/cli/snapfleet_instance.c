/*  =========================================================================
    snapfleet_instance - the CLI's instance commands: instances
    =========================================================================
*/
#include "snapfleet_cmds.h"

//  The number of disks, and their total virtual size

static void
s_cell_disks (sf_table_t *table, json_t *instance, const char *key)
{
    sf_table_addf (table, "%zu", json_array_size (json_object_get (instance, key)));
}

static void
s_cell_disks_size (sf_table_t *table, json_t *instance, const char *key)
{
    uint64_t total = 0;
    size_t index;
    json_t *disk;
    json_array_foreach (json_object_get (instance, key), index, disk)
        total += (uint64_t) snapfleet_int (disk, "virtual_size");
    char size [32];
    sf_table_add (table, sf_format_size (total, size, sizeof (size)));
}

static const snapfleet_column_t s_columns [] = {
    { "NAME", "name", snapfleet_cell_str },
    { "UUID", "uuid", snapfleet_cell_str },
    { "NODE", "node", snapfleet_cell_str },
    { "STATE", "state", snapfleet_cell_str },
    { "STORAGE", "storage_class", snapfleet_cell_str },
    { "STRATEGY", "strategy", snapfleet_cell_str },
    { ">DISKS", "disks", s_cell_disks },
    { ">SIZE", "disks", s_cell_disks_size },
    { "AMBIGUOUS", "ambiguous", snapfleet_cell_str },
    { NULL }
};

static int
s_cmd_instances (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    snapfleet_opts_t opts;
    int rc;
    if (snapfleet_start (app, cmd, argc, argv, 0, &opts, &rc))
        return rc;
    return snapfleet_list_page (app, "instances", "node", opts.select.node, "instances",
                                s_columns, &opts);
}

const snapfleet_cmd_t snapfleet_cmd_instances = {
    "instances", "instances [--node N] [--limit N] [--after CURSOR]",
    "list instances with their storage class and strategy",
    "List the instances in the nodes' inventories, with their state, storage\n"
    "class (file, rbd, mixed or none), the snapshot strategy each would get\n"
    "('-' if it cannot be snapshotted: no disks, or neither running, paused\n"
    "nor shut off), their disks and total virtual size, and why one is\n"
    "ambiguous (another node reports its uuid too: no snapshot of it until\n"
    "only one does).\n\n"
    "  --node N              only the instances of node N\n"
    SNAPFLEET_HELP_PAGE
    SNAPFLEET_HELP_FORMAT SNAPFLEET_HELP_TIMEOUT SNAPFLEET_HELP_HELP, "fthnlA", s_cmd_instances
};
