/*  =========================================================================
    snapfleet_instance - the CLI's instance commands: instances
    =========================================================================
*/
#include "snapfleet_cmds.h"

#define s_str snapfleet_str
#define s_int snapfleet_int

static void
s_print_instances (json_t *instances)
{
    sf_table_t *table = sf_table_new ("NAME|UUID|NODE|STATE|STORAGE|STRATEGY|>DISKS|>SIZE");
    size_t index, d;
    json_t *instance, *disk;
    json_array_foreach (instances, index, instance) {
        json_t *disks = json_object_get (instance, "disks");
        uint64_t total = 0;
        json_array_foreach (disks, d, disk)
            total += (uint64_t) s_int (disk, "virtual_size");
        char size [32];
        sf_table_add (table, s_str (instance, "name"));
        sf_table_add (table, s_str (instance, "uuid"));
        sf_table_add (table, s_str (instance, "node"));
        sf_table_add (table, s_str (instance, "state"));
        sf_table_add (table, s_str (instance, "storage_class"));
        sf_table_add (table, s_str (instance, "strategy"));
        sf_table_addf (table, "%zu", json_array_size (disks));
        sf_table_add (table, sf_format_size (total, size, sizeof (size)));
    }
    sf_table_print (table, stdout);
    sf_table_destroy (&table);
}

static int
s_cmd_instances (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    snapfleet_opts_t opts;
    json_t *reply = NULL;
    int rc;
    if (snapfleet_start (app, cmd, argc, argv, 0, &opts, &rc)
    ||  (rc = snapfleet_request (app, "instances", "node", opts.select.node, &reply)))
        return rc;
    if (app->json)
        snapfleet_print_payload (reply, "instances");
    else
        s_print_instances (json_object_get (reply, "instances"));
    json_decref (reply);
    return SF_CLI_OK;
}

const snapfleet_cmd_t snapfleet_cmd_instances = {
    "instances", "instances [--node N]",
    "list instances with their storage class and strategy",
    "List the instances in the nodes' inventories, with their state, storage\n"
    "class (file, rbd, mixed or none), the snapshot strategy each would get\n"
    "('-' if it cannot be snapshotted: no disks, or neither running, paused\n"
    "nor shut off), their disks and total virtual size.\n\n"
    "  --node N              only the instances of node N\n"
    SNAPFLEET_HELP_FORMAT SNAPFLEET_HELP_TIMEOUT SNAPFLEET_HELP_HELP, "fthn", s_cmd_instances
};
