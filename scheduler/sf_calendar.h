/*  =========================================================================
    sf_calendar - systemd OnCalendar expressions (stub, being written)
    =========================================================================
*/
#ifndef SF_CALENDAR_H_INCLUDED
#define SF_CALENDAR_H_INCLUDED

//  Self test of this class
void
    sf_calendar_test (bool verbose);

#endif
