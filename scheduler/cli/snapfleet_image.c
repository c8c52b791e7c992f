/*  =========================================================================
    snapfleet_image - the CLI's image commands: images
    =========================================================================
*/
#include "snapfleet_cmds.h"

//  The last verification: "ok", "ok boot 4.1s", "FAILED", "-" if none

static void
s_cell_verify (sf_table_t *table, json_t *row, const char *key)
{
    json_t *verify = json_object_get (row, key);
    if (!json_is_object (verify)) {
        sf_table_add (table, "-");
        return;
    }
    bool ok = json_is_true (json_object_get (verify, "ok"));
    if (ok && json_is_true (json_object_get (verify, "booted")))
        sf_table_addf (table, "ok boot %.1fs", (double) json_integer_value (
                       json_object_get (verify, "time_to_life_ms")) / 1000.0);
    else
        sf_table_add (table, ok? "ok": "FAILED");
}

static const snapfleet_column_t s_columns [] = {
    { "ID", "id", snapfleet_cell_str },
    { "INSTANCE", "instance", snapfleet_cell_str },
    { "JOB", "job_id", snapfleet_cell_str },
    { "DISK", "disk_target", snapfleet_cell_str },
    { ">SIZE", "size", snapfleet_cell_size },
    { ">OWN", "own_bytes", snapfleet_cell_size },
    { "PARENT", "parent", snapfleet_cell_str },
    { "CREATED", "created", snapfleet_cell_str },
    { "STORE", "store", snapfleet_cell_str },
    { "PATH", "path", snapfleet_cell_str },
    { "MISSING", "missing", snapfleet_cell_when },
    { "VERIFIED", "verify", s_cell_verify },
    { NULL }
};

static int
s_cmd_images (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    snapfleet_opts_t opts;
    int rc;
    if (snapfleet_start (app, cmd, argc, argv, 0, &opts, &rc))
        return rc;
    return snapfleet_list_page (app, "images", NULL, NULL, "images", s_columns, &opts);
}

const snapfleet_cmd_t snapfleet_cmd_images = {
    "images", "images [--limit N] [--after CURSOR]", "list stored images",
    "List the images jobs have stored: id, instance, job, disk, size, creation\n"
    "time, store and path, oldest first; MISSING is when the reconciler found\n"
    "its file gone from its node's store (see 'gc'), '-' while it is there.\n"
    "An incremental point (file-live) is a qcow2 overlay on its PARENT, the\n"
    "point before it; OWN is the bytes of that layer alone. Restoring it\n"
    "restores the whole chain; retention keeps every point a kept one needs.\n\n"
    SNAPFLEET_HELP_PAGE
    SNAPFLEET_HELP_FORMAT SNAPFLEET_HELP_TIMEOUT SNAPFLEET_HELP_HELP, "fthlA", s_cmd_images
};
