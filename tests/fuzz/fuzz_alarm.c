/*  =========================================================================
    fuzz_alarm - SIGALRM-safe setup and waits for the fuzz targets (see
    the header)
    =========================================================================
*/
#include "sf_core.h"
#include "fuzz_alarm.h"
#include <pthread.h>
#include <signal.h>

int LLVMFuzzerInitialize (int *argc, char ***argv);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    sigset_t alarm, old;
    sigemptyset (&alarm);
    sigaddset (&alarm, SIGALRM);
    pthread_sigmask (SIG_BLOCK, &alarm, &old);
    fuzz_setup ();
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    return 0;
}

bool
fuzz_alarm_wait (void *sock, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    zmq_pollitem_t item = { zsock_resolve (sock), 0, ZMQ_POLLIN, 0 };
    while (true) {
        int64_t left = timeout_ms < 0? -1: deadline - zclock_mono ();
        if (timeout_ms >= 0 && left <= 0)
            return false;
        int rc = zmq_poll (&item, 1, (long) left);
        if (rc > 0)
            return true;
        assert (rc == 0 || zmq_errno () == EINTR);
    }
}
