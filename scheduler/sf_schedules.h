/*  =========================================================================
    sf_schedules - schedules: calendar, window, catch-up (stub, being written)
    =========================================================================
*/
#ifndef SF_SCHEDULES_H_INCLUDED
#define SF_SCHEDULES_H_INCLUDED

//  Self test of this class
void
    sf_schedules_test (bool verbose);

#endif
