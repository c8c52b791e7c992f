/*  =========================================================================
    sf_conv_qemu - the qemu-img converter

    `qemu-img convert -p -U -f FMT -O qcow2 -- SRC DST` reads through the
    whole backing chain (no -B), so the result stands alone. -U (force
    share) lets it read an image that a paused QEMU still holds open; the
    guest is paused, so nothing writes meanwhile. The source format comes
    from the domain XML, raw if it names none, and is always passed, so a
    raw disk is never probed (a guest could otherwise make its raw disk look
    like a qcow2 with a backing file of its choosing). "--" ends the
    options, and a source starting with '-' is refused before that anyway.

    Deadline by progress, not total time: -p makes qemu-img print its
    percentage (every 1 %, on stdout, even to a pipe), and the bytes it
    allocated in DST grow as it writes; either moving is progress. Neither
    moving for [conversion] stall_timeout stops it (hung storage, an NFS
    server gone), and the job fails saying so. A slow conversion that moves
    is never stopped. The pause deadline (max_pause) still bounds the
    whole conversion while a guest is paused.
    =========================================================================
*/
#include "sf_worker_classes.h"
#include "sf_conv_driver.h"

#include <sys/stat.h>

SF_LOG_MODULE ("worker.conv");

#define S_TICK_MS   1000        //  how often progress is looked at

//  Wait for qemu-img, watching its progress. Returns 0 once it exited
//  (its exit code not yet checked), or -1 with err: cancelled, past the
//  deadline, stalled for stall_ms, or the wait failed. It is still running
//  then.

static int
s_watch (sf_proc_t *proc, const char *tmp, zsock_t *cancel, int64_t deadline_ms,
         int64_t stall_ms, sf_err_t *err)
{
    sf_conv_progress_t progress;
    sf_conv_progress_init (&progress);
    while (true) {
        int64_t wake = sf_time_mono_ms () + S_TICK_MS;
        if (deadline_ms && deadline_ms < wake)
            wake = deadline_ms;
        int rc = sf_proc_wait (proc, cancel, wake, err);
        if (rc == SF_PROC_EXITED)
            return 0;
        if (rc == SF_PROC_CANCELLED)
            return sf_err_set (err, SF_ECANCELED, "'qemu-img' cancelled");
        if (rc == -1)
            return -1;
        if (deadline_ms && sf_time_mono_ms () >= deadline_ms)
            return sf_err_set (err, SF_ETIMEDOUT, "'qemu-img' did not finish in time");
        if (sf_conv_progress_check (&progress, proc, tmp, stall_ms, err))
            return -1;
    }
}

static int
s_qemu_convert (sf_conv_t *self, const sf_hv_disk_t *disk, const char *tmp,
                zsock_t *cancel, int64_t deadline_ms, sf_err_t *err)
{
    if (sf_hv_source_check (disk->target, disk->source, err))
        return -1;
    char rate [32];
    snprintf (rate, sizeof (rate), "%" PRIu64, sf_conv_rate_limit (self));
    char *argv [] = { "qemu-img", "convert", "-p", "-U", "-f",
                      (char *) sf_hv_disk_format (disk), "-O", "qcow2", "-r", rate,
                      "--", disk->source, (char *) tmp, NULL };
    if (sf_conv_rate_limit (self) == 0)         //  no -r: no limit
        memmove (argv + 8, argv + 10, 4 * sizeof (char *));
    SF_DEBUG (NULL, "converting '%s' to '%s'", disk->source, tmp);
    sf_proc_t *proc = sf_proc_new (argv, SF_PROC_CAPTURE, err);
    int rc = proc ? 0 : -1;
    if (rc == 0 && s_watch (proc, tmp, cancel, deadline_ms, sf_conv_stall_timeout (self),
                            err)) {
        sf_proc_stop (proc, 2000);
        rc = -1;
    }
    if (rc == 0)
        rc = sf_proc_check (proc, err);
    sf_proc_destroy (&proc);
    if (rc)
        return sf_err_prefix (err, "cannot convert disk '%s'", disk->target);
    return 0;
}

const sf_conv_driver_t sf_conv_qemu_driver = {
    .name    = "qemu-img",
    .convert = s_qemu_convert,
};
