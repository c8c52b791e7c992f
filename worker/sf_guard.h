/*  =========================================================================
    sf_guard - the pause guard and the pause journal (DESIGN.md, safety
    property 1: a guest is never left paused)

    Before a task suspends a guest it (1) writes and fsyncs a journal entry
    <workdir>/paused/<uuid> and (2) spawns a guard: a fresh exec of this
    binary, `snapfleet-worker --guard --uri URI --domain UUID --deadline-ms
    EPOCH_MS --worker-fd 3 [--journal PATH] [--thaw]`, in its own process
    group, not killed with the worker (SF_PROC_SURVIVE). The guard acts
    (resumes the domain if it is still paused, thaws with --thaw) at the
    first of:
    - the deadline (now + [pause] max_pause);
    - SIGTERM, SIGINT or SIGHUP: after the task's own resume that finds the
      domain running and exits; if the worker is being killed as a group,
      the guest is resumed rather than abandoned;
    - its worker's death: fd 3 is the read end of a pipe whose write end
      only the worker holds (O_CLOEXEC, so no other child inherits it), so
      EOF there means the worker is gone, however it died (SIGKILL too).
      A pipe rather than a pidfd of the worker: nothing to race with pid
      reuse, and no pid to pass.
    With --journal it acts only while the entry is there and still names
    the job and run it was started for (read at start): an entry that is
    gone was dealt with (by the task, or a restarted worker's recovery);
    one that names another job belongs to a later pause it must not undo.
    It retries (one connection a second, each libvirt call bounded by
    libvirt keepalive, sf_hv) for as long as that entry stays, so a guard
    whose libvirtd hangs resumes the guest once libvirtd answers again;
    without --journal, S_CONNECT_TRIES times. A restarted worker resumes
    what older runs' entries name.

    Guard exit codes: 0 nothing to do, 3 resumed the domain, 1 could not
    check or resume, 2 usage.
    =========================================================================
*/
#ifndef SF_GUARD_H_INCLUDED
#define SF_GUARD_H_INCLUDED

#define SF_GUARD_EXIT_IDLE      0
#define SF_GUARD_EXIT_RESUMED   3
#define SF_GUARD_EXIT_FAILED    1
#define SF_GUARD_EXIT_USAGE     2
#define SF_GUARD_EXIT_BUSY      -2  //  sf_guard_stop: still at work, let go
#define SF_GUARD_STOP_MS        15000

//  One journal entry
typedef struct {
    char uuid [37];
    char run_id [40];           //  the worker run that paused it
    char job_id [130];
    int64_t deadline_ms;        //  wall clock
    bool frozen;                //  the task may have frozen its filesystems
} sf_guard_entry_t;

//  Write <workdir>/paused/<entry->uuid> durably (tmp + fsync + rename +
//  directory fsync). Returns 0 or -1 with err (SF_EIO).
int
    sf_guard_journal_write (const char *workdir, const sf_guard_entry_t *entry,
                            sf_err_t *err);

//  Remove the entry of uuid (absent is fine). Returns 0 or -1 with err.
int
    sf_guard_journal_remove (const char *workdir, const char *uuid, sf_err_t *err);

//  Path of the entry of uuid. Caller frees.
char *
    sf_guard_journal_path (const char *workdir, const char *uuid);

//  Resume every domain whose entry was written by another run than run_id
//  (a crashed or killed worker), if it is still paused, and remove those
//  entries. Entries of domains that no longer exist are removed; entries
//  whose domain cannot be checked stay for the next call. Returns the
//  number of domains resumed, or -1 if the journal cannot be read.
int
    sf_guard_recover (sf_hv_t *hv, const char *workdir, const char *run_id);

//  Start a guard for uuid on uri, deadline in wall-clock ms. exe is this
//  program (from /proc/self/exe); journal (may be NULL) is the entry the
//  guard removes after it resumes; thaw: it also thaws the guest's
//  filesystems. Returns the process (caller owns it; sf_guard_stop ends
//  it) or NULL with err.
sf_proc_t *
    sf_guard_spawn (const char *exe, const char *uri, const char *uuid,
                    int64_t deadline_ms, const char *journal, bool thaw, sf_err_t *err);

//  Tell the guard to stand down (SIGTERM: it checks, finds the guest
//  running, exits), wait for it, destroy it. Returns the guard's exit
//  code. A guard still at work after SF_GUARD_STOP_MS (its libvirtd does
//  not answer) is not killed but let go (sf_proc_release): it resumes the
//  guest once it can; then returns SF_GUARD_EXIT_BUSY. Nullifies *guard_p.
int
    sf_guard_stop (sf_proc_t **guard_p);

//  The guard's action: if uuid is paused on hv, resume it; then, with
//  thaw, thaw its filesystems (best effort, logged: the agent runs in the
//  guest, so only after the resume). Returns 0 if it was not paused, 1 if
//  it resumed it, -1 with err.
int
    sf_guard_check (sf_hv_t *hv, const char *uuid, bool thaw, sf_err_t *err);

//  main() of `snapfleet-worker --guard ...` (argv as given to main).
//  Returns the exit code.
int
    sf_guard_main (int argc, char *argv []);

//  Self test of this class
void
    sf_guard_test (bool verbose);

#endif
