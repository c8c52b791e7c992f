/*  =========================================================================
    sf_verifies - the verifications table: what a job of strategy "verify"
    checks (an image, by store and id; with or without a boot) and what it
    found, kept with the image (issue 13)

    Plain functions on the store (no object): sf_verify makes the rows with
    their jobs, sf_dispatch reads one to build a JobAssign, sf_bulk to put
    a verification back into admission after a restart, sf_jobs to store a
    result and show a job, the images listing to show the last finding.
    =========================================================================
*/
#ifndef SF_VERIFIES_H_INCLUDED
#define SF_VERIFIES_H_INCLUDED

#include <jansson.h>

//  Record the verification of image (store, id) by job_id (boot: start a
//  copy of the guest). One statement: it joins the caller's transaction.
int
    sf_verifies_add (sf_store_t *store, const char *job_id, const char *image_store,
                     const char *image_id, bool boot, sf_err_t *err);

//  Keep what a result found, if result's job is a verification (else
//  nothing): its VerifyResult, or for a result without one (the job
//  failed before it checked anything) not ok with the error's text. In the
//  caller's transaction. Returns 0 or -1 with err.
int
    sf_verifies_result (sf_store_t *store, const sf_job_result_t *result, int64_t now,
                        sf_err_t *err);

//  The wire Verify of job_id, with its image as the images table has it
//  now and the guest's XML kept with it (boot); the life pattern and boot
//  timeout are the worker's. Returns 1 and sets *verify_p (free it with
//  sf_verifies_free), 0 if job_id has none or its image is gone, -1 with
//  err.
int
    sf_verifies_load (sf_store_t *store, const char *job_id, sf_verify_t **verify_p,
                      sf_err_t *err);

//  Free a Verify from sf_verifies_load. Nullifies *verify_p.
void
    sf_verifies_free (sf_verify_t **verify_p);

//  What admission needs of job_id (as a restore: no pause, an upload slot
//  and a bandwidth share for the image's bytes)
void
    sf_verifies_admit_job (sf_store_t *store, const char *job_id, sf_admit_job_t *job);

//  The verification of job_id as job show has it: {"image_store",
//  "image_id","boot","ok" (null until ended),"hash_ok","check_ok",
//  "booted","time_to_life_ms","text"}; an empty object if it has none.
//  NULL with err.
json_t *
    sf_verifies_json (sf_store_t *store, const char *job_id, sf_err_t *err);

//  The last ended verification of image (store, id) as sf_verifies_json
//  has it, with "job_id" and "at"; JSON null if it has none. NULL with err.
json_t *
    sf_verifies_last_json (sf_store_t *store, const char *image_store, const char *image_id,
                           sf_err_t *err);

#endif
