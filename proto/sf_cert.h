/*  =========================================================================
    sf_cert - CURVE key pairs on disk, and the client side of CURVE

    A key pair is two zcert files: PATH holds the public key, PATH_secret
    the public and the secret key (mode 0600). Both carry the metadata
    "name" (the node or admin the key belongs to), which the scheduler's
    ZAP handler (sf_auth) reports as the peer's User-Id. An allow-list is a
    directory of public key files.

    Plaintext (insecure = true) is allowed only on endpoints that never
    leave the host: sf_cert_is_local says which.
    =========================================================================
*/
#ifndef SF_CERT_H_INCLUDED
#define SF_CERT_H_INCLUDED

//  Metadata key of a cert that names its node or admin
#define SF_CERT_NAME "name"

//  Generate a key pair for name (sf_name_is_safe) and write it to path
//  (public) and path_secret (secret, mode 0600), refusing to overwrite
//  either. Returns 0, or -1 with err set (SF_EEXIST, SF_EINVAL, SF_EIO).
int
    sf_cert_keygen (const char *path, const char *name, sf_err_t *err);

//  Load a cert file. If secret, the file must hold the secret key (the
//  PATH_secret file of a pair) and be readable by its owner only, and the
//  cert must carry a safe "name" (a public cert may have none). Returns
//  the cert, or NULL with err set naming the file. Caller owns the result.
zcert_t *
    sf_cert_load (const char *path, bool secret, sf_err_t *err);

//  Make sock (not yet connected) a CURVE client with cert's key pair,
//  that talks only to the server whose public key server holds.
void
    sf_cert_client (void *sock, zcert_t *cert, zcert_t *server);

//  The peer name that sf_auth attached to a received frame (its User-Id),
//  or NULL on a plaintext or unauthenticated socket. Valid while frame is.
//  A ROUTER's routing id frame carries none: ask the body frame.
const char *
    sf_cert_peer (zframe_t *frame);

//  True if endpoint never leaves the host: ipc://, inproc://, or tcp:// on
//  127.0.0.0/8, [::1], localhost or the lo interface.
bool
    sf_cert_is_local (const char *endpoint);

//  Self test of this class
void
    sf_cert_test (bool verbose);

#endif
