/*  =========================================================================
    snapfleet_verify - the CLI's verify command: check a stored image (its
    hash, qemu-img check, and with --boot a boot of a copy of the guest) as
    a job on the node that holds it
    =========================================================================
*/
#include "snapfleet_cmds.h"
#include "snapfleet_view.h"

#define s_str snapfleet_str

static int
s_cmd_verify (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    snapfleet_opts_t opts;
    int rc;
    if (snapfleet_start (app, cmd, argc, argv, -1, &opts, &rc))
        return rc;
    if (argc - opts.first != 1)
        return snapfleet_usage_error (cmd, "'verify' takes one image id (as 'snapfleet "
                                      "images' lists it)");
    json_t *request = json_pack ("{s:s, s:s, s:i}", "cmd", "verify",
                                 "image", argv [opts.first], "boot", opts.boot? 1: 0);
    if (opts.select.node)
        json_object_set_new (request, "node", json_string (opts.select.node));
    json_t *job = NULL;
    rc = snapfleet_call_job (app, request, opts.wait, opts.wait_ms, false, &job);
    json_decref (request);
    if (rc)
        return rc;
    json_t *verify = json_object_get (job, "verify");
    if (app->json)
        snapfleet_print_json (job);
    else
    if (opts.wait)
        snapfleet_print_job (job);
    else
        printf ("job %s %s: verification of image %s%s on node '%s'\n",
                s_str (job, "job_id"), s_str (job, "state"), s_str (verify, "image_id"),
                json_is_true (json_object_get (verify, "boot"))? " with a boot": "",
                s_str (job, "node"));
    rc = streq (s_str (job, "state"), "done") || !opts.wait? SF_CLI_OK: SF_CLI_FAILED;
    if (rc)
        snapfleet_job_failure (job, *s_str (verify, "text")? s_str (verify, "text")
                                    : s_str (json_object_get (job, "error"), "text"));
    json_decref (job);
    return rc;
}

const snapfleet_cmd_t snapfleet_cmd_verify = {
    "verify",
    "verify IMAGE [--boot] [--node N] [--wait] [--timeout SECS]",
    "check that a stored image is whole, and with --boot that it boots",
    "Check a stored image, as a job on the node that holds it (the node whose\n"
    "job made it). The worker reads the image against its recorded SHA-256\n"
    "and runs 'qemu-img check' on it. With --boot it then restores it to a\n"
    "scratch copy and starts a transient copy of the guest from the XML kept\n"
    "with the image (name snapfleet-verify-JOB, a new uuid, no network\n"
    "interfaces, serial console to a file), waits for a sign of life (the\n"
    "guest agent answering guest-ping, or a console line matching the\n"
    "worker's [verify] life_pattern) for at most [verify] boot_timeout,\n"
    "destroys it and removes the scratch copy, and reports the time to life.\n"
    "A verification pauses nothing; it waits for an upload slot and a share\n"
    "of the bandwidth, as a restore does. What it found is kept with the\n"
    "image: 'job show' and 'images' (VERIFIED) show it. Only images of a dir\n"
    "store can be verified yet, and --boot needs an image whose job made one\n"
    "disk image and kept the guest's XML. Prints the new job, or with --wait\n"
    "the ended job (exit 1 if it did not end done, i.e. the image failed).\n\n"
    "Options:\n"
    "  --boot                also boot a transient copy of the guest\n"
    "  --node N              run it on node N instead\n"
    "  --wait                wait until the job ends, then print it\n"
    "  --timeout SECS        with --wait, give up waiting after SECS (exit 75);\n"
    "                        the job goes on\n"
    SNAPFLEET_HELP_FORMAT
    SNAPFLEET_HELP_HELP,
    "hfntwb",
    s_cmd_verify
};
