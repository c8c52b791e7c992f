/*  =========================================================================
    sf_restore - one restore job (strategy "restore", issue 13), run as a
    zactor like a snapshot task: a stored image of this node's dir store,
    or an RBD clone, back into a disk file or a new RBD image

    Steps: check the image (its id names a file of our store, its format)
    and the target (an absolute path without '.' or '..', whose directory
    exists and is neither in the workdir nor in the image store, and that
    does not exist), emit QUEUED; with wait_upload_grant emit UPLOAD_WAIT
    (bytes = the image's size) and wait for "GRANT"; record the job's temp
    directory (<workdir>/restores/<job>: a restore killed midway is swept
    by the next start, sf_restore_sweep), make it beside the target
    (.sf-restore-<catalogue>-<job>.d, mode 0700, mkdir fails if it exists);
    read the image once, SHA-256 (libcrypto EVP) at the granted rate, and
    compare with the recorded hash; convert the same open file (qemu-img
    convert -f FMT -O FORMAT /dev/fd/3, [conversion] rate_limit or the
    grant's rate as -r, stopped when it stalls for [conversion]
    stall_timeout) into the temp directory, give it mode 0640 (as the
    store's images), fsync it, emit CONVERTED; then
    publish it with link(2), which never replaces a file (a target made
    meanwhile fails the job), emit UPLOADED, and remove the temp name, the
    directory and the record. A cancel, a failure or a hash mismatch
    ("image X does not match its recorded SHA-256; not restored") removes
    the temp directory: nothing is left and no file is overwritten.

    With as_domain (restore --as-domain, issue 13): the domain's name must
    not exist (checked before the grant, "a domain named X exists; not
    redefined", nothing made) and the kept XML must have the image's disk;
    without to_file the file goes beside the original's disk as
    NAME.qcow2 (or .raw). The new file goes to the owner of the original's
    disk file, if it exists (whom QEMU runs as). After publishing, the
    domain is defined (sf_hv_define: sf_hv_domxml's copy of the XML with
    the new file, no uuid, no MACs), not started; a failed define removes
    the published file. The result's note names the domain and its uuid.
    RBD (with the worker's storage client; without one such a restore
    fails SF_ENOTSUP): an RBD image (store "rbd", id POOL/CLONE) must exist;
    it has no hash to check (the result's note says so). It is read by
    qemu-img from sf_stor_image_uri (the worker's ceph.conf, id, keyring).
    A target to_rbd that exists fails the job (SF_EEXIST, "RBD image 'X'
    exists; not overwritten"); else the new image is made as
    POOL/[NS/].sf-restore-<catalogue>-<job> (the record, "rbd SPEC", is
    durable first): a clone of the source's parent snapshot (an RBD source
    without flatten; no bytes), or written by qemu-img convert -O raw (a dir
    image after its hash check, or an RBD source with flatten); then
    renamed to the target's name (sf_stor_rename: Ceph refuses a name that
    exists, so nothing is overwritten). A cancel or failure removes only
    the temp image (kept in the record if that fails); sf_restore_sweep
    removes a killed restore's temp image, if its name is the job's.

    The pipe speaks sf_task's protocol: CANCEL, GRANT + rate, RATE + rate,
    $TERM to the actor; EVENT + frame, RESULT + frame from it; and also
    APPLIED + frame (the rate, decimal) once a GRANT's or RATE's rate
    applies: the owner answers the scheduler's grant with it (RateApplied).
    The hash read takes a new rate before its next chunk; a running
    qemu-img keeps its -r, so a cut below that is not answered: the
    scheduler keeps counting the old rate, which is what qemu-img uses,
    until UPLOADED (right after the conversion) frees the share.
    =========================================================================
*/
#ifndef SF_RESTORE_H_INCLUDED
#define SF_RESTORE_H_INCLUDED

//  What a restore needs; every string is copied before sf_restore_new
//  returns
typedef struct {
    const char *job_id;
    uint32_t attempt;
    const char *catalog_id;         //  names the temp directory
    const sf_restore_t *restore;    //  JobAssign.restore (validated by sf_wire)
    const char *workdir;            //  the worker's: records; no target in it
    const char *store_driver;       //  this node's image store driver ("dir")
    const char *store_dir;          //  its directory: the image; no target in it
    uint64_t rate_limit;            //  [conversion] rate_limit, bytes/s, 0 none
    int64_t stall_ms;               //  [conversion] stall_timeout
    bool wait_upload_grant;         //  JobAssign.wait_upload_grant
    const char *uri;                //  the hypervisor (--as-domain defines there)
    sf_stor_t *stor;                //  borrowed (outlives the actor): RBD sources
                                    //  and targets; NULL: RBD support is off
} sf_restore_args_t;

//  Start the restore in a new actor. Returns the actor (caller destroys it
//  after the RESULT message, or to abandon it: then it stops as on CANCEL).
zactor_t *
    sf_restore_new (const sf_restore_args_t *args);

//  At the worker's start: remove what restores killed midway left (their
//  temp directories or RBD temp images, named in <workdir>/restores, if
//  the names are a restore's of that job), and the records; an RBD one
//  stays recorded while stor is NULL or its removal fails. Returns how
//  many were swept.
int
    sf_restore_sweep (const char *workdir, sf_stor_t *stor);

//  Self test of this class
void
    sf_restore_test (bool verbose);

#endif
