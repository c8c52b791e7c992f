/*  =========================================================================
    sf_cert - CURVE key pairs on disk, and the client side of CURVE
    =========================================================================
*/
#include "sf_core.h"
#include <sys/stat.h>

SF_LOG_MODULE ("core.cert");

//  Z85 text of 32 zero bytes: a cert loaded from a public file has it as
//  its secret key
#define NO_SECRET "0000000000000000000000000000000000000000"

static bool
s_exists (const char *path)
{
    struct stat st;
    return lstat (path, &st) == 0;
}

int
sf_cert_keygen (const char *path, const char *name, sf_err_t *err)
{
    assert (path && name);
    if (!sf_name_is_safe (name))
        return sf_err_set (err, SF_EINVAL, "'%s' is not a valid key name "
                           "(1-128 of A-Z a-z 0-9 . _ : -)", name);
    int rc = -1;
    char *secret = zsys_sprintf ("%s_secret", path);
    zcert_t *cert = zcert_new ();
    if (s_exists (path) || s_exists (secret)) {
        sf_err_set (err, SF_EEXIST, "'%s' or '%s' exists: not overwriting a key",
                    path, secret);
        goto cleanup;
    }
    zcert_set_meta (cert, SF_CERT_NAME, "%s", name);
    //  The secret file is never readable by anyone else, not even briefly
    mode_t mask = umask (077);
    int saved = zcert_save_secret (cert, secret);
    umask (mask);
    if (saved || chmod (secret, 0600)
    ||  zcert_save_public (cert, path)) {
        sf_err_set (err, SF_EIO, "cannot write key pair '%s': %s", path, strerror (errno));
        goto cleanup;
    }
    rc = 0;
 cleanup:
    zcert_destroy (&cert);
    zstr_free (&secret);
    return rc;
}

//  The file that holds the secret key of path: path_secret if it exists

static char *
s_secret_file (const char *path)
{
    char *secret = zsys_sprintf ("%s_secret", path);
    if (s_exists (secret))
        return secret;
    zstr_free (&secret);
    return strdup (path);
}

zcert_t *
sf_cert_load (const char *path, bool secret, sf_err_t *err)
{
    assert (path);
    zcert_t *cert = NULL;
    char *file = secret? s_secret_file (path): strdup (path);
    struct stat st;
    if (stat (file, &st)) {
        sf_err_set (err, errno == ENOENT? SF_ENOENT: SF_EIO, "cannot read key '%s': %s "
                    "(make one with 'snapfleet keygen')", file, strerror (errno));
        goto cleanup;
    }
    //  zcert_load reads FILE_secret first if there is one: ask for what
    //  we mean by naming the one file through its config
    zconfig_t *root = zconfig_load (file);
    const char *public_txt = root? zconfig_get (root, "/curve/public-key", ""): "";
    const char *secret_txt = root? zconfig_get (root, "/curve/secret-key", NO_SECRET): "";
    const char *name = root? zconfig_get (root, "/metadata/" SF_CERT_NAME, ""): "";
    if (strlen (public_txt) != 40 || (secret && strlen (secret_txt) != 40))
        sf_err_set (err, SF_EINVAL, "'%s' is not a CURVE key file", file);
    else
    if (secret && streq (secret_txt, NO_SECRET))
        sf_err_set (err, SF_EINVAL, "'%s' holds no secret key (give the "
                    "PATH_secret file of 'snapfleet keygen')", file);
    else
    if (secret && (st.st_mode & 077))
        sf_err_set (err, SF_EINVAL, "secret key '%s' is readable by others "
                    "(chmod 600 it)", file);
    else
    if ((secret || *name) && !sf_name_is_safe (name))
        sf_err_set (err, SF_EINVAL, "key '%s' has no valid '%s' in its metadata",
                    file, SF_CERT_NAME);
    else {
        byte public_key [32] = { 0 }, secret_key [32] = { 0 };
        if (zmq_z85_decode (public_key, public_txt)
        &&  (!secret || zmq_z85_decode (secret_key, secret_txt))) {
            cert = zcert_new_from (public_key, secret_key);
            if (*name)
                zcert_set_meta (cert, SF_CERT_NAME, "%s", name);
        }
        else
            sf_err_set (err, SF_EINVAL, "'%s' holds a malformed key", file);
    }
    zconfig_destroy (&root);
 cleanup:
    free (file);
    return cert;
}

void
sf_cert_client (void *sock, zcert_t *cert, zcert_t *server)
{
    assert (sock && cert && server);
    zcert_apply (cert, sock);
    zsock_set_curve_serverkey (sock, zcert_public_txt (server));
}

const char *
sf_cert_peer (zframe_t *frame)
{
    const char *name = frame? zframe_meta (frame, "User-Id"): NULL;
    return name && *name? name: NULL;
}

bool
sf_cert_is_local (const char *endpoint)
{
    assert (endpoint);
    if (strncmp (endpoint, "tcp://", 6))
        return true;            //  ipc:// and inproc:// never leave the host
    const char *host = endpoint + 6;
    static const char *loopback [] = { "127.", "localhost:", "[::1]:", "lo:", NULL };
    for (int i = 0; loopback [i]; i++)
        if (strncmp (host, loopback [i], strlen (loopback [i])) == 0)
            return true;
    return false;
}

//  --------------------------------------------------------------------------
//  Self test

void
sf_cert_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_cert: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    char dir [] = "/tmp/sf_cert_test.XXXXXX";
    assert (mkdtemp (dir));
    char *path = zsys_sprintf ("%s/hv01", dir);
    char *secret = zsys_sprintf ("%s/hv01_secret", dir);

    assert (sf_cert_keygen (path, "hv01", &err) == 0);
    struct stat st;
    assert (stat (secret, &st) == 0 && (st.st_mode & 0777) == 0600);
    assert (sf_cert_keygen (path, "hv01", &err) == -1 && err.code == SF_EEXIST);
    assert (sf_cert_keygen (path, "../x", &err) == -1 && err.code == SF_EINVAL);

    //  The pair, by either name; the public file alone is not a secret key
    zcert_t *pair = sf_cert_load (path, true, &err);
    assert (pair && streq (zcert_meta (pair, SF_CERT_NAME), "hv01"));
    zcert_t *same = sf_cert_load (secret, true, &err);
    assert (same && zcert_eq (pair, same));
    zcert_destroy (&same);
    zcert_t *pub = sf_cert_load (path, false, &err);
    assert (pub && streq (zcert_public_txt (pub), zcert_public_txt (pair)));
    assert (streq (zcert_secret_txt (pub), NO_SECRET));
    zcert_destroy (&pub);
    assert (unlink (secret) == 0);
    assert (sf_cert_load (path, true, &err) == NULL);
    assert (strstr (err.text, "holds no secret key"));

    //  A secret readable by others, a missing file, not a key file
    assert (zcert_save_secret (pair, secret) == 0);
    assert (chmod (secret, 0644) == 0);
    assert (sf_cert_load (path, true, &err) == NULL);
    assert (strstr (err.text, "readable by others"));
    assert (sf_cert_load ("/nonexistent/k", false, &err) == NULL);
    assert (err.code == SF_ENOENT);
    char *junk = zsys_sprintf ("%s/junk", dir);
    FILE *file = fopen (junk, "w");
    assert (file);
    fputs ("hello\n", file);
    fclose (file);
    assert (sf_cert_load (junk, false, &err) == NULL);
    assert (strstr (err.text, "not a CURVE key file"));
    zcert_destroy (&pair);

    //  A cert without a name: fine as a pinned public key, not as our pair
    zcert_t *anonymous = zcert_new ();
    char *anon = zsys_sprintf ("%s/anon", dir);
    char *anon_secret = zsys_sprintf ("%s/anon_secret", dir);
    assert (zcert_save (anonymous, anon) == 0 && chmod (anon_secret, 0600) == 0);
    zcert_destroy (&anonymous);
    anonymous = sf_cert_load (anon, false, &err);
    assert (anonymous && !zcert_meta (anonymous, SF_CERT_NAME));
    zcert_destroy (&anonymous);
    assert (sf_cert_load (anon, true, &err) == NULL);
    assert (strstr (err.text, "has no valid 'name'"));
    unlink (anon);
    unlink (anon_secret);
    zstr_free (&anon);
    zstr_free (&anon_secret);

    assert (sf_cert_is_local ("tcp://127.0.0.1:7600"));
    assert (sf_cert_is_local ("tcp://localhost:7600"));
    assert (sf_cert_is_local ("tcp://[::1]:7600"));
    assert (sf_cert_is_local ("ipc:///run/sf.sock"));
    assert (sf_cert_is_local ("inproc://x"));
    assert (!sf_cert_is_local ("tcp://0.0.0.0:7600"));
    assert (!sf_cert_is_local ("tcp://*:7600"));
    assert (!sf_cert_is_local ("tcp://10.0.0.1:7600"));
    assert (sf_cert_peer (NULL) == NULL);

    unlink (junk);
    unlink (secret);
    unlink (path);
    rmdir (dir);
    zstr_free (&junk);
    zstr_free (&secret);
    zstr_free (&path);
    //  @end
    printf ("OK\n");
}
