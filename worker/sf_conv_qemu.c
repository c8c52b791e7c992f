/*  =========================================================================
    sf_conv_qemu - the qemu-img converter

    `qemu-img convert -U -f FMT -O qcow2 -- SRC DST` reads through the
    whole backing chain (no -B), so the result stands alone. -U (force
    share) lets it read an image that a paused QEMU still holds open; the
    guest is paused, so nothing writes meanwhile. The source format comes
    from the domain XML, raw if it names none, and is always passed, so a
    raw disk is never probed (a guest could otherwise make its raw disk look
    like a qcow2 with a backing file of its choosing). "--" ends the
    options, and a source starting with '-' is refused before that anyway.
    =========================================================================
*/
#include "sf_worker_classes.h"
#include "sf_conv_driver.h"

SF_LOG_MODULE ("worker.conv");

static int
s_qemu_convert (sf_conv_t *self, const sf_hv_disk_t *disk, const char *tmp,
                zsock_t *cancel, int64_t deadline_ms, sf_err_t *err)
{
    (void) self;
    if (sf_hv_source_check (disk->target, disk->source, err))
        return -1;
    char *argv [] = { "qemu-img", "convert", "-U", "-f", (char *) sf_hv_disk_format (disk),
                      "-O", "qcow2", "--", disk->source, (char *) tmp, NULL };
    SF_DEBUG (NULL, "converting '%s' to '%s'", disk->source, tmp);
    sf_proc_t *proc = sf_proc_run (argv, cancel, deadline_ms, err);
    if (!proc)
        return sf_err_prefix (err, "cannot convert disk '%s'", disk->target);
    sf_proc_destroy (&proc);
    return 0;
}

const sf_conv_driver_t sf_conv_qemu_driver = {
    .name    = "qemu-img",
    .convert = s_qemu_convert,
};
