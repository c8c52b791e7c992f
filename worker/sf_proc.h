/*  =========================================================================
    sf_proc - a child process started with posix_spawn (never system() and
    never fork() of this threaded process without exec)

    The worker drives qemu-img and its own pause guard as child processes.
    A task thread must stay responsive while a child runs (a cancel or
    shutdown arrives on its actor pipe), so waiting polls the child's
    output pipes, a pidfd and an optional cancel socket together.

    The child starts with an empty signal mask and default dispositions,
    stdin from /dev/null, and stdout/stderr either captured (kept in memory,
    bounded) or inherited from the worker.

    A child dies with the worker (issue 11: no orphaned qemu-img): unless
    SF_PROC_SURVIVE, it is started as `setpriv --pdeathsig KILL -- /bin/sh
    -c CHECK NAME PPID PATH ARGS...` (util-linux): setpriv arms
    PR_SET_PDEATHSIG(SIGKILL), which survives the execs; the shell checks
    that its parent is still the worker PPID (the worker may have died
    before the prctl: then nobody would signal it) and execs PATH. The
    death signal fires when the *thread* that spawned the child exits;
    every caller waits for (or stops) its child on the thread that started
    it, so that is the worker's death. (A wrapper in this program would do
    as well, but a sanitized worker binary takes most of a second to
    start; setpriv and sh take milliseconds.)
    =========================================================================
*/
#ifndef SF_PROC_H_INCLUDED
#define SF_PROC_H_INCLUDED

#include <sys/types.h>

typedef struct _sf_proc_t sf_proc_t;

//  Flags for sf_proc_new
#define SF_PROC_CAPTURE     1   //  capture stdout and stderr (else inherit)
#define SF_PROC_NEWPGRP     2   //  own process group (a terminal ^C misses it)
#define SF_PROC_BLOCKTERM   4   //  start with SIGTERM/SIGINT/SIGHUP blocked,
                                //  for a child that sigwait()s for them
#define SF_PROC_SURVIVE     8   //  may outlive the worker (the pause guard);
                                //  else it is SIGKILLed when the worker dies

//  Results of sf_proc_wait
#define SF_PROC_EXITED      0   //  the child is gone, status available
#define SF_PROC_CANCELLED   1   //  the cancel socket has a message (not read)
#define SF_PROC_TIMEOUT     2   //  the deadline passed

//  Start argv [0] (looked up in PATH) with argv. Returns the running
//  process, or NULL with err (SF_EIO) if it cannot be spawned. Caller owns
//  the result; destroying a still-running process kills and reaps it.
sf_proc_t *
    sf_proc_new (char *const argv [], int flags, sf_err_t *err);

//  Like sf_proc_new, and pass_fd (>= 0) becomes the child's fd 3 (the
//  only descriptor it inherits besides 0..2).
sf_proc_t *
    sf_proc_new_pass (char *const argv [], int flags, int pass_fd, sf_err_t *err);

//  Kill (SIGKILL) a child that still runs, reap it, free everything.
//  Nullifies *self_p.
void
    sf_proc_destroy (sf_proc_t **self_p);

//  Let a running child go on alone: free everything but leave the process
//  running (it is reaped later, by any sf_proc_new or sf_proc_destroy).
//  Returns its pid. Nullifies *self_p.
pid_t
    sf_proc_release (sf_proc_t **self_p);

//  Hand fd to the process object: it is closed when the object is
//  destroyed or released (a pipe end whose closing the child watches).
void
    sf_proc_hold_fd (sf_proc_t *self, int fd);

//  Process id of the child.
pid_t
    sf_proc_pid (sf_proc_t *self);

//  Wait until the child exits, collecting captured output. Returns early
//  with SF_PROC_CANCELLED when cancel (may be NULL) is readable, leaving the
//  message there, or SF_PROC_TIMEOUT once sf_time_mono_ms () passes
//  deadline_ms (0 = no deadline). Returns SF_PROC_EXITED, or -1 with err.
int
    sf_proc_wait (sf_proc_t *self, zsock_t *cancel, int64_t deadline_ms, sf_err_t *err);

//  Stop the child: SIGTERM, wait up to grace_ms, then SIGKILL; reap it.
//  Safe to call on a child that already exited.
void
    sf_proc_stop (sf_proc_t *self, int grace_ms);

//  True once the child has been reaped.
bool
    sf_proc_exited (sf_proc_t *self);

//  Exit code (0..255), or 128+signal if it was killed; -1 if still running.
int
    sf_proc_exit_code (sf_proc_t *self);

//  Captured output (NUL-terminated, never NULL; empty unless
//  SF_PROC_CAPTURE). Valid until the process is destroyed.
const char *
    sf_proc_stdout (sf_proc_t *self);
const char *
    sf_proc_stderr (sf_proc_t *self);

//  If the child exited 0 return 0. Else return -1 with err (SF_EIO) set to
//  "'NAME' failed (exit code N): LAST STDERR LINE".
int
    sf_proc_check (sf_proc_t *self, sf_err_t *err);

//  Convenience: spawn with SF_PROC_CAPTURE, wait (cancel and deadline as
//  above) and check. On cancel or timeout the child is stopped and err is
//  SF_ECANCELED or SF_ETIMEDOUT. Returns the finished process (caller owns
//  it, to read its output) or NULL with err.
sf_proc_t *
    sf_proc_run (char *const argv [], zsock_t *cancel, int64_t deadline_ms, sf_err_t *err);

//  Self test of this class
void
    sf_proc_test (bool verbose);

#endif
