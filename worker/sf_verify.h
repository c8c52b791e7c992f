/*  =========================================================================
    sf_verify - one verify job (strategy "verify", issue 13), run as a
    zactor like a restore: a stored image of this node's dir store checked,
    and with boot, a transient copy of its guest started

    Steps: check the image (its id names a file of our store, of its
    recorded size), emit QUEUED; with wait_upload_grant emit UPLOAD_WAIT
    and wait for "GRANT"; read the image at the granted rate and compare its
    SHA-256 with the recorded one (hash_ok); run `qemu-img check -f FMT`
    on it (check_ok: exit 0, or 3 = leaked clusters only, which lose no
    data); emit CONVERTED ("hash ok, check ok"). With boot, if both passed:
    make the scratch directory <workdir>/verify/<catalogue>-<job> (mode
    0700, given to the owner of the original's disk file, whom QEMU runs
    as), convert the image into it (qcow2, at the tighter of [conversion]
    rate_limit and the granted rate, stopped when it stalls for
    stall_timeout), start a transient domain
    "snapfleet-verify-<job>" (sf_naming) from the XML kept with the image
    (sf_hv_domxml: a new uuid, no network, host devices or graphics, the
    serial console to console.log in the scratch directory), and wait up to
    the boot timeout for a sign of life: a console line matching the life
    pattern (POSIX extended regex) or the guest agent answering
    guest-ping. Then destroy the domain and remove the scratch directory
    (emit UPLOADED with the time to life). A cancel stops at the next
    step, destroys the domain and removes the scratch.

    The result is ok if every check passed (and the boot, if asked), and
    always carries a VerifyResult saying what passed and what did not.
    A worker killed midway leaves the scratch directory and perhaps the
    domain: sf_verify_sweep, at the next start, destroys the domains of
    the scratch directories it finds and removes them.

    The pipe speaks sf_restore's protocol (CANCEL, GRANT + rate, RATE +
    rate, $TERM in; EVENT, RESULT and APPLIED out).
    =========================================================================
*/
#ifndef SF_VERIFY_H_INCLUDED
#define SF_VERIFY_H_INCLUDED

//  What a verification needs; every string is copied before
//  sf_verify_new returns
typedef struct {
    const char *job_id;
    uint32_t attempt;
    const char *catalog_id;         //  names the scratch directory
    const sf_verify_t *verify;      //  JobAssign.verify (validated by sf_wire)
    const char *workdir;            //  the worker's: the scratch directory
    const char *store_driver;       //  this node's image store driver ("dir")
    const char *store_dir;          //  its directory
    const char *uri;                //  the hypervisor, for the boot
    const char *life_pattern;       //  [verify] life_pattern (the Verify's if set)
    int64_t boot_timeout_ms;        //  [verify] boot_timeout (the Verify's if set)
    uint64_t rate_limit;            //  [conversion] rate_limit: the scratch copy's
    int64_t stall_ms;               //  [conversion] stall_timeout: the same
    bool wait_upload_grant;         //  JobAssign.wait_upload_grant
} sf_verify_args_t;

//  Start the verification in a new actor. Returns the actor (caller
//  destroys it after the RESULT message, or to abandon it).
zactor_t *
    sf_verify_new (const sf_verify_args_t *args);

//  At the worker's start: destroy the domains of verifications killed
//  midway (named for the scratch directories under <workdir>/verify) on
//  uri and remove those directories. Returns how many were swept.
int
    sf_verify_sweep (const char *workdir, const char *uri);

//  Self test of this class
void
    sf_verify_test (bool verbose);

#endif
