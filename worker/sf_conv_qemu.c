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

//  The last percentage qemu-img -p printed ("    (37.00/100%)\r"), -1 if
//  none yet

static double
s_progress (const char *out)
{
    const char *mark = NULL;
    for (const char *at = strstr (out, "/100%)"); at; at = strstr (at + 1, "/100%)"))
        mark = at;
    const char *open = mark;
    while (open && open > out && open [-1] != '(')
        open--;
    if (!open || open == out)
        return -1;
    return strtod (open, NULL);
}

//  Bytes the converter has put in tmp so far (allocated, so that a
//  preallocated or sparse file counts what was written)

static uint64_t
s_written (const char *tmp)
{
    struct stat st;
    return stat (tmp, &st) ? 0 : (uint64_t) st.st_blocks * 512;
}

//  "120 s", or "1500 ms" for what is not whole seconds

static const char *
s_duration (int64_t ms, char *buf, size_t size)
{
    if (ms % 1000 == 0)
        snprintf (buf, size, "%" PRId64 " s", ms / 1000);
    else
        snprintf (buf, size, "%" PRId64 " ms", ms);
    return buf;
}

//  Wait for qemu-img, watching its progress. Returns 0 once it exited
//  (its exit code not yet checked), or -1 with err: cancelled, past the
//  deadline, stalled for stall_ms, or the wait failed. It is still running
//  then.

static int
s_watch (sf_proc_t *proc, const char *tmp, zsock_t *cancel, int64_t deadline_ms,
         int64_t stall_ms, sf_err_t *err)
{
    double last_pct = -1;
    uint64_t last_bytes = 0;
    int64_t last_move = sf_time_mono_ms ();
    while (true) {
        int64_t now = sf_time_mono_ms ();
        int64_t wake = now + S_TICK_MS;
        if (deadline_ms && deadline_ms < wake)
            wake = deadline_ms;
        int rc = sf_proc_wait (proc, cancel, wake, err);
        if (rc == SF_PROC_EXITED)
            return 0;
        if (rc == SF_PROC_CANCELLED)
            return sf_err_set (err, SF_ECANCELED, "'qemu-img' cancelled");
        if (rc == -1)
            return -1;
        now = sf_time_mono_ms ();
        if (deadline_ms && now >= deadline_ms)
            return sf_err_set (err, SF_ETIMEDOUT, "'qemu-img' did not finish in time");
        double pct = s_progress (sf_proc_stdout (proc));
        uint64_t bytes = s_written (tmp);
        if (pct > last_pct || bytes != last_bytes) {
            last_pct = pct > last_pct ? pct : last_pct;
            last_bytes = bytes;
            last_move = now;
        }
        else
        if (now - last_move >= stall_ms) {
            char took [32], size [32];
            return sf_err_set (err, SF_ETIMEDOUT, "qemu-img made no progress for %s at "
                               "%.0f%% (%s written); stopped it",
                               s_duration (stall_ms, took, sizeof (took)),
                               last_pct < 0 ? 0 : last_pct,
                               sf_format_size (bytes, size, sizeof (size)));
        }
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
