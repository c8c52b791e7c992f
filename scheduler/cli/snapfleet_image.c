/*  =========================================================================
    snapfleet_image - the CLI's image commands: images
    =========================================================================
*/
#include "snapfleet_cmds.h"

#define s_str snapfleet_str

static void
s_print_images (json_t *images)
{
    sf_table_t *table = sf_table_new ("ID|INSTANCE|JOB|DISK|>SIZE|CREATED|STORE|PATH");
    size_t index;
    json_t *image;
    json_array_foreach (images, index, image) {
        char size [32];
        sf_table_add (table, s_str (image, "id"));
        sf_table_add (table, s_str (image, "instance"));
        sf_table_add (table, s_str (image, "job_id"));
        sf_table_add (table, s_str (image, "disk_target"));
        sf_table_add (table, snapfleet_size (image, "size", size, sizeof (size)));
        sf_table_add (table, s_str (image, "created"));
        sf_table_add (table, s_str (image, "store"));
        sf_table_add (table, s_str (image, "path"));
    }
    sf_table_print (table, stdout);
    sf_table_destroy (&table);
}

static int
s_cmd_images (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    snapfleet_opts_t opts;
    json_t *reply = NULL;
    int rc;
    if (snapfleet_start (app, cmd, argc, argv, 0, &opts, &rc)
    ||  (rc = snapfleet_request (app, "images", NULL, NULL, &reply)))
        return rc;
    if (app->json)
        snapfleet_print_payload (reply, "images");
    else
        s_print_images (json_object_get (reply, "images"));
    json_decref (reply);
    return SF_CLI_OK;
}

const snapfleet_cmd_t snapfleet_cmd_images = {
    "images", "images", "list stored images",
    "List the images jobs have stored: id, instance, job, disk, size, creation\n"
    "time, store and path.\n\n"
    SNAPFLEET_HELP_FORMAT SNAPFLEET_HELP_TIMEOUT SNAPFLEET_HELP_HELP, "fth", s_cmd_images
};
