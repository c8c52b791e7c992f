/*  =========================================================================
    sf_calendar - systemd OnCalendar expressions (stub, being written)
    =========================================================================
*/
#include "sf_sched_classes.h"

void
sf_calendar_test (bool verbose)
{
    (void) verbose;
}
