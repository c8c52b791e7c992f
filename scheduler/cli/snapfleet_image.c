/*  =========================================================================
    snapfleet_image - the CLI's image commands: images
    =========================================================================
*/
#include "snapfleet_cmds.h"

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
