/*  =========================================================================
    sf_conv - disk conversion interface: turn a disk and its whole backing
    chain into one standalone qcow2 file

    The real driver runs `qemu-img convert` as a child process that a
    cancel stops at once; the "fake" driver (unit tests only, where libvirt's
    mock domains have no disk files) writes an empty qcow2 of the disk's
    virtual size after a short cancellable delay.

    A conversion writes DST.tmp and renames it to DST only on success, so a
    file named DST is always complete; on any failure nothing is left.
    =========================================================================
*/
#ifndef SF_CONV_H_INCLUDED
#define SF_CONV_H_INCLUDED

typedef struct _sf_conv_t sf_conv_t;

typedef struct {
    const char *name;
    //  Convert disk into tmp (a path that does not exist yet)
    int (*convert) (sf_conv_t *self, const sf_hv_disk_t *disk, const char *tmp,
                    zsock_t *cancel, int64_t deadline_ms, sf_err_t *err);
} sf_conv_driver_t;

//  Select a converter: "qemu-img" (NULL means this) or "fake". Returns NULL
//  with err (SF_EINVAL) for an unknown name. Caller owns the result.
sf_conv_t *
    sf_conv_new (const char *driver, sf_err_t *err);

//  Free. Nullifies *self_p.
void
    sf_conv_destroy (sf_conv_t **self_p);

//  Name of the selected driver.
const char *
    sf_conv_name (sf_conv_t *self);

//  Convert disk (its source, in its format, through its backing chain) to
//  a standalone qcow2 at dst. A message on cancel (may be NULL) stops it
//  with SF_ECANCELED; passing deadline_ms (monotonic, 0 = none) stops it
//  with SF_ETIMEDOUT. On success sets *bytes to the size of dst and returns
//  0; else returns -1 with err and leaves neither dst nor dst.tmp.
int
    sf_conv_convert (sf_conv_t *self, const sf_hv_disk_t *disk, const char *dst,
                     zsock_t *cancel, int64_t deadline_ms, uint64_t *bytes,
                     sf_err_t *err);

//  The drivers
extern const sf_conv_driver_t sf_conv_qemu_driver;

//  Self test of this class
void
    sf_conv_test (bool verbose);

#endif
