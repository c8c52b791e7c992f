/*  =========================================================================
    fuzz_alarm - for the fuzz targets with ZeroMQ sockets: libFuzzer
    checks its time limits on SIGALRM, which interrupts a blocking wait
    (zmq_poll, zmq_recv) and ends a zloop that it interrupts. So threads
    (libzmq's, an actor's) are started with SIGALRM blocked, and the
    fuzzing thread's waits resume after it.
    =========================================================================
*/
#ifndef FUZZ_ALARM_H_INCLUDED
#define FUZZ_ALARM_H_INCLUDED

#include <stdbool.h>

//  The target's setup (its sockets, threads): defined by the target,
//  called once by fuzz_alarm.c's LLVMFuzzerInitialize, before libFuzzer
//  starts its timer, with SIGALRM blocked, so that every thread it starts
//  keeps it blocked.
void
    fuzz_setup (void);

//  Wait until the ZeroMQ socket sock (a libzmq handle or a zsock_t) has a
//  message to read, resuming after signals. False if none came within
//  timeout_ms (-1: no limit).
bool
    fuzz_alarm_wait (void *sock, int timeout_ms);

#endif
