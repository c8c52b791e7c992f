/*  =========================================================================
    sf_plan - planner: estimates and the dry-run simulation (stub, being written)
    =========================================================================
*/
#ifndef SF_PLAN_H_INCLUDED
#define SF_PLAN_H_INCLUDED

//  Self test of this class
void
    sf_plan_test (bool verbose);

#endif
