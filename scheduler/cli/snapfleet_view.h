/*  =========================================================================
    snapfleet_view - one job or one bulk as a table for people, shared by
    the commands that show them (job show, bulk show, snapshot)
    =========================================================================
*/
#ifndef SNAPFLEET_VIEW_H_INCLUDED
#define SNAPFLEET_VIEW_H_INCLUDED

#include "snapfleet_opts.h"

//  Print a job (a JOB object of the admin protocol) on stdout: its fields,
//  then its phase events and its images, if any.
void
    snapfleet_print_job (json_t *job);

//  Print a bulk (a BULK object of the admin protocol) on stdout: its
//  fields, then the jobs that failed or were skipped with their reasons,
//  or every job if all_jobs.
void
    snapfleet_print_bulk (json_t *bulk, bool all_jobs);

//  Print a finished bulk as one line, "bulk B3 done: 38 of 40 done, 1
//  failed, 1 skipped; 3.2 GiB in 4m 10s (41.0 MiB/s)", then its failures.
void
    snapfleet_print_bulk_summary (json_t *bulk);

#endif
