/*  =========================================================================
    sf_conv_driver - the table a disk converter fills: what sf_conv.c
    dispatches to after its DST.tmp bookkeeping

    A driver includes this header after sf_worker_classes.h, defines one
    const sf_conv_driver_t and is either listed in s_drivers[] of sf_conv.c
    (production drivers, picked by name) or handed to sf_conv_new_with
    (a test's own driver).
    =========================================================================
*/
#ifndef SF_CONV_DRIVER_H_INCLUDED
#define SF_CONV_DRIVER_H_INCLUDED

struct _sf_conv_driver_t {
    const char *name;
    //  Convert disk into tmp (a path that does not exist yet), stopping
    //  with SF_ECANCELED at a message on cancel (may be NULL) and with
    //  SF_ETIMEDOUT at deadline_ms (monotonic, 0 = none). Returns 0 or -1
    //  with err; sf_conv removes what it left.
    int (*convert) (sf_conv_t *self, const sf_hv_disk_t *disk, const char *tmp,
                    zsock_t *cancel, int64_t deadline_ms, sf_err_t *err);
};

//  The production drivers
extern const sf_conv_driver_t sf_conv_qemu_driver;

#endif
