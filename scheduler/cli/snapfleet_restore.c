/*  =========================================================================
    snapfleet_restore - the CLI's restore command: a stored image back into
    a disk file, as a job on the node that holds the image
    =========================================================================
*/
#include "snapfleet_cmds.h"
#include "snapfleet_view.h"

//  Polling interval of restore --wait
#define s_str snapfleet_str

static int
s_cmd_restore (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    snapfleet_opts_t opts;
    int rc;
    if (snapfleet_start (app, cmd, argc, argv, -1, &opts, &rc))
        return rc;
    if (argc - opts.first != 1)
        return snapfleet_usage_error (cmd, "'restore' takes one image id (as 'snapfleet "
                                      "images' lists it)");
    if (opts.to && opts.rbd)
        return snapfleet_usage_error (cmd, "'restore' takes one of --to FILE and --rbd "
                                      "POOL/NAME");
    if (!opts.to && !opts.rbd && !opts.as_domain)
        return snapfleet_usage_error (cmd, "'restore' needs --to FILE (the file to make), "
                                      "--rbd POOL/NAME (the RBD image to make) or "
                                      "--as-domain NAME");
    if (opts.flatten && !opts.rbd)
        return snapfleet_usage_error (cmd, "--flatten applies to --rbd");
    if (opts.as_domain && opts.rbd)
        return snapfleet_usage_error (cmd, "--as-domain defines a domain on a restored file, "
                                      "not on --rbd");
    json_t *request = json_pack ("{s:s, s:s}", "cmd", "restore", "image", argv [opts.first]);
    if (opts.to)
        json_object_set_new (request, "to", json_string (opts.to));
    if (opts.rbd)
        json_object_set_new (request, "rbd", json_string (opts.rbd));
    if (opts.flatten)
        json_object_set_new (request, "flatten", json_true ());
    if (opts.as_domain)
        json_object_set_new (request, "as_domain", json_string (opts.as_domain));
    if (opts.select.node)
        json_object_set_new (request, "node", json_string (opts.select.node));
    if (opts.image_format)
        json_object_set_new (request, "format", json_string (opts.image_format));
    json_t *job = NULL;
    rc = snapfleet_call_job (app, request, opts.wait, opts.wait_ms, false, &job);
    json_decref (request);
    if (rc)
        return rc;
    json_t *restore = json_object_get (job, "restore");
    if (app->json)
        snapfleet_print_json (job);
    else
    if (opts.wait)
        snapfleet_print_job (job);
    else {
        char *target = sf_log_escape_dup (*s_str (restore, "target")
                                          ? s_str (restore, "target")
                                          : "beside the original's disk");
        printf ("job %s %s: restore of image %s to '%s' (%s)%s%s on node '%s'\n",
                s_str (job, "job_id"), s_str (job, "state"), s_str (restore, "image_id"),
                target, s_str (restore, "format"),
                *s_str (restore, "as_domain")? " as domain ": "",
                s_str (restore, "as_domain"), s_str (job, "node"));
        free (target);
    }
    rc = streq (s_str (job, "state"), "done") || !opts.wait? SF_CLI_OK: SF_CLI_FAILED;
    if (rc)
        snapfleet_job_failure (job, s_str (json_object_get (job, "error"), "text"));
    json_decref (job);
    return rc;
}

const snapfleet_cmd_t snapfleet_cmd_restore = {
    "restore",
    "restore IMAGE (--to FILE | --rbd POOL/NAME [--flatten]) [--node N]\n"
    "      [--format qcow2|raw] [--wait] [--timeout SECS]\n"
    "  snapfleet restore IMAGE --as-domain NAME [--to FILE] [...]",
    "restore a stored image to a new disk file or RBD image",
    "Turn a stored image back into a disk file, as a job on the node that holds\n"
    "it (the node whose job made the image: a dir store is local to its node).\n"
    "IMAGE is an image id as 'snapfleet images' lists it. The worker checks the\n"
    "image against its recorded SHA-256 while it reads it (a mismatch fails the\n"
    "job and makes nothing), converts it with qemu-img into a temporary file\n"
    "beside FILE and then gives it its name; it never overwrites a file: a FILE\n"
    "that exists fails the job and stays as it was. A cancelled or failed\n"
    "restore leaves nothing. The job pauses nothing; it waits for an upload\n"
    "slot and a share of the bandwidth, as an upload does. Images of a dir\n"
    "store and RBD clones can be restored; an RBD clone has no stored hash\n"
    "(no bytes were copied), so it is not checked. Restores that read or write\n"
    "RBD run on a node with the Ceph cluster (the image's node if it has it).\n"
    "--rbd makes a new RBD image under a temporary name beside POOL/NAME and\n"
    "renames it (Ceph refuses a name that exists: never overwritten): from an\n"
    "RBD clone a new clone of its parent snapshot (instant, no bytes copied;\n"
    "that snapshot then stays while the new image depends on it), or with\n"
    "--flatten a copy of its bytes; from a dir image a copy. Prints the new\n"
    "job, or with --wait the ended job (exit 1 if it did not end done).\n\n"
    "With --as-domain NAME the worker then defines a new libvirt domain NAME,\n"
    "not started, from the guest's XML as it was at the snapshot: the same\n"
    "devices with the restored disk (owned by the original disk's owner), a\n"
    "new uuid and new MAC addresses, other data disks left out. Only images\n"
    "whose job made one disk image can be restored so yet. A NAME that exists\n"
    "fails the job before anything is made; a failed define removes the\n"
    "restored file. Without --to the file goes beside the original's disk,\n"
    "as NAME.qcow2 (or .raw).\n\n"
    "Options:\n"
    "  --to FILE             the file to make: an absolute path on the node,\n"
    "                        without '.' or '..' components, outside the\n"
    "                        worker's workdir and image store\n"
    "  --as-domain NAME      also define domain NAME with the restored disk\n"
    "  --rbd POOL/NAME       or the RBD image to make (POOL/NS/NAME too)\n"
    "  --flatten             with --rbd from an RBD clone: copy its bytes into\n"
    "                        an independent image instead of cloning\n"
    "  --node N              run it on node N instead\n"
    "  --format qcow2|raw    the new file's format (default qcow2); 'table' and\n"
    "                        'json' still choose the output\n"
    "  --wait                wait until the job ends, then print it\n"
    "  --timeout SECS        with --wait, give up waiting after SECS (exit 75);\n"
    "                        the job goes on\n"
    SNAPFLEET_HELP_FORMAT
    SNAPFLEET_HELP_HELP,
    "hfntwTXrF",
    s_cmd_restore
};
