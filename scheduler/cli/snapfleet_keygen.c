/*  =========================================================================
    snapfleet_keygen - the CLI's keygen command: a CURVE key pair
    =========================================================================
*/
#include "snapfleet_cmds.h"

static int
s_cmd_keygen (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    snapfleet_opts_t opts;
    int rc;
    if (snapfleet_start (app, cmd, argc, argv, -1, &opts, &rc))
        return rc;
    int count = argc - opts.first;
    if (count < 1 || count > 2)
        return snapfleet_usage_error (cmd, "'keygen' takes a NAME and optionally a DIR");
    const char *name = argv [opts.first];
    const char *dir = count == 2? argv [opts.first + 1]: ".";
    char *path = zsys_sprintf ("%s/%s", dir, name);
    sf_err_t err = SF_ERR_INIT;
    rc = SF_CLI_OK;
    if (sf_cert_keygen (path, name, &err)) {
        fprintf (stderr, "snapfleet: %s\n", err.text);
        rc = SF_CLI_FAILED;
    }
    else
        printf ("%s\n%s_secret\n", path, path);
    zstr_free (&path);
    return rc;
}

const snapfleet_cmd_t snapfleet_cmd_keygen = {
    "keygen", "keygen NAME [DIR]", "make a CURVE key pair named NAME",
    "Write a new CURVE key pair for NAME into DIR (default: the current\n"
    "directory): DIR/NAME, the public key, and DIR/NAME_secret, the secret key\n"
    "(mode 0600). Existing files are never overwritten. NAME is written into\n"
    "the key: for a worker it must be the node's name, the only node this key\n"
    "may speak for. Enrol a worker or an admin by copying its public file\n"
    "into the scheduler's [security] workers or admins directory; give the\n"
    "scheduler's public file to every worker (scheduler_key) and CLI user\n"
    "(--server-key). Needs no scheduler. Prints the two paths.\n\n"
    SNAPFLEET_HELP_HELP, "h", s_cmd_keygen
};
