/*  =========================================================================
    sf_conv_fake - the fake converter, for unit tests against libvirt's
    mock, whose disks have no files. It waits (cancellably) so that tests
    can see a job run, then makes a real, empty qcow2 of the disk's
    virtual size.
    =========================================================================
*/
#include "sf_worker_classes.h"
#include "sf_conv_driver.h"
#include "sf_conv_fake.h"

#define S_FAKE_DELAY_MS  300

static int
s_fake_convert (sf_conv_t *self, const sf_hv_disk_t *disk, const char *tmp,
                zsock_t *cancel, int64_t deadline_ms, sf_err_t *err)
{
    (void) self;
    int64_t until = sf_time_mono_ms () + S_FAKE_DELAY_MS;
    while (sf_time_mono_ms () < until) {
        if (cancel && (zsock_events (cancel) & ZMQ_POLLIN))
            return sf_err_set (err, SF_ECANCELED, "conversion of disk '%s' cancelled",
                               disk->target);
        if (deadline_ms && sf_time_mono_ms () >= deadline_ms)
            return sf_err_set (err, SF_ETIMEDOUT, "conversion of disk '%s' did not "
                               "finish in time", disk->target);
        zclock_sleep (10);
    }
    char size [32];
    snprintf (size, sizeof (size), "%" PRIu64, disk->virtual_size ? disk->virtual_size
                                                                  : 1024 * 1024);
    char *argv [] = { "qemu-img", "create", "-q", "-f", "qcow2", "--", (char *) tmp, size,
                      NULL };
    sf_proc_t *proc = sf_proc_run (argv, cancel, deadline_ms, err);
    if (!proc)
        return -1;
    sf_proc_destroy (&proc);
    return 0;
}

const sf_conv_driver_t sf_conv_fake_driver = {
    .name    = "fake",
    .convert = s_fake_convert,
};
