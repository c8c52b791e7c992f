/*  =========================================================================
    sf_stor_driver - what the block-storage drivers share
    =========================================================================
*/
#include "sf_worker_classes.h"
#include "sf_stor_driver.h"

int
sf_stor_fail (sf_err_t *err, int r, const char *format, ...)
{
    char what [400];
    va_list args;
    va_start (args, format);
    vsnprintf (what, sizeof (what), format, args);
    va_end (args);
    int errno_value = r < 0 ? -r : r;
    return sf_err_set (err, errno_value == EEXIST ? SF_EEXIST : SF_ECEPH, "ceph: cannot %s: %s",
                       what, strerror (errno_value));
}
